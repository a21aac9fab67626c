//! Scheduled reports: regenerate the reports of running experiments on an
//! interval into a directory (atomic writes, one report per experiment and
//! format, an index page). A job that fails keeps its last good report.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use flightdeck_obs_core::write_atomic;

use super::report::{render_html, render_markdown};
use super::{AnalysisError, ExperimentAnalysis, ExperimentAnalyzer};

/// A report format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    /// `<experiment>.md`.
    Markdown,
    /// `<experiment>.json` (the `analyze --json` document).
    Json,
    /// `<experiment>.html` (self-contained, with SVG plots).
    Html,
}

impl ReportFormat {
    /// The file extension.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Markdown => "md",
            Self::Json => "json",
            Self::Html => "html",
        }
    }

    /// Parses `md`, `json` or `html`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "md" | "markdown" => Some(Self::Markdown),
            "json" => Some(Self::Json),
            "html" => Some(Self::Html),
            _ => None,
        }
    }

    /// The report's text.
    pub fn render(self, a: &ExperimentAnalysis) -> String {
        match self {
            Self::Markdown => render_markdown(a),
            Self::Json => {
                let mut s = serde_json::to_string_pretty(a).expect("analyses serialize");
                s.push('\n');
                s
            }
            Self::Html => render_html(a),
        }
    }
}

/// One experiment to report on.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportJob {
    /// The experiment key.
    pub experiment: String,
    /// Its result records (JSON Lines).
    pub results: PathBuf,
    /// The configured split (equal when `None`).
    pub weights: Option<Vec<f64>>,
}

/// The outcome of one job in one run.
#[derive(Debug, Clone, PartialEq)]
pub struct JobOutcome {
    /// The experiment.
    pub experiment: String,
    /// The decision, or the error that kept the last good report.
    pub result: Result<String, String>,
    /// Files written.
    pub files: Vec<PathBuf>,
}

/// Regenerates reports into a directory.
#[derive(Debug, Clone)]
pub struct ReportGenerator {
    dir: PathBuf,
    analyzer: ExperimentAnalyzer,
    formats: Vec<ReportFormat>,
    jobs: Vec<ReportJob>,
}

/// A file name for an experiment key: safe characters kept, others `_`.
fn stem(key: &str) -> String {
    let s: String = key
        .chars()
        .take(100)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let s = s.trim_start_matches('.').to_owned();
    if s.is_empty() { "experiment".into() } else { s }
}

impl ReportGenerator {
    /// Reports into `dir` with `analyzer`, in every format.
    pub fn new(dir: impl Into<PathBuf>, analyzer: ExperimentAnalyzer) -> Self {
        Self {
            dir: dir.into(),
            analyzer,
            formats: vec![
                ReportFormat::Markdown,
                ReportFormat::Json,
                ReportFormat::Html,
            ],
            jobs: Vec::new(),
        }
    }

    /// Only these formats.
    #[must_use]
    pub fn with_formats(mut self, formats: &[ReportFormat]) -> Self {
        self.formats = formats.to_vec();
        self
    }

    /// Adds an experiment.
    #[must_use]
    pub fn with_job(mut self, job: ReportJob) -> Self {
        self.jobs.push(job);
        self
    }

    fn analyze(&self, job: &ReportJob) -> Result<ExperimentAnalysis, AnalysisError> {
        let file = File::open(&job.results).map_err(|source| AnalysisError::Io {
            file: job.results.display().to_string(),
            source,
        })?;
        self.analyzer.analyze_reader(
            BufReader::with_capacity(1 << 16, file),
            &job.results.display().to_string(),
            &job.experiment,
            job.weights.as_deref(),
        )
    }

    /// Runs every job once and rewrites the index.
    ///
    /// # Errors
    ///
    /// Only when the directory or the index cannot be written; a job's own
    /// failure is in its [`JobOutcome`] and keeps its last good report.
    pub fn run_once(&self) -> std::io::Result<Vec<JobOutcome>> {
        std::fs::create_dir_all(&self.dir)?;
        let mut outcomes = Vec::with_capacity(self.jobs.len());
        for job in &self.jobs {
            let mut files = Vec::new();
            let result = match self.analyze(job) {
                Ok(a) => {
                    for f in &self.formats {
                        let path =
                            self.dir
                                .join(format!("{}.{}", stem(&job.experiment), f.extension()));
                        write_atomic(&path, f.render(&a).as_bytes())?;
                        files.push(path);
                    }
                    Ok(serde_json::to_value(a.recommendation.decision)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default())
                }
                Err(e) => Err(e.to_string()),
            };
            outcomes.push(JobOutcome {
                experiment: job.experiment.clone(),
                result,
                files,
            });
        }
        write_atomic(
            &self.dir.join("index.html"),
            index(&outcomes, &self.formats).as_bytes(),
        )?;
        Ok(outcomes)
    }

    /// Runs every `every` on a background thread until the handle is stopped.
    pub fn spawn(self, every: Duration) -> ReportHandle {
        let (stop, rx) = mpsc::channel::<()>();
        let last: Arc<Mutex<Vec<JobOutcome>>> = Arc::default();
        let runs = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (last2, runs2) = (Arc::clone(&last), Arc::clone(&runs));
        let thread = std::thread::Builder::new()
            .name("flightdeck-reports".into())
            .spawn(move || {
                loop {
                    match self.run_once() {
                        Ok(o) => *last2.lock().unwrap_or_else(|p| p.into_inner()) = o,
                        Err(e) => tracing::warn!(target: "flightdeck::experiments", error = %e, "cannot write reports"),
                    }
                    runs2.fetch_add(1, std::sync::atomic::Ordering::Release);
                    match rx.recv_timeout(every) {
                        Err(RecvTimeoutError::Timeout) => {}
                        _ => return,
                    }
                }
            })
            .expect("a thread can be spawned");
        ReportHandle {
            stop: Some(stop),
            thread: Some(thread),
            last,
            runs,
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

fn index(outcomes: &[JobOutcome], formats: &[ReportFormat]) -> String {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let mut rows = String::new();
    for o in outcomes {
        let links: Vec<String> = formats
            .iter()
            .map(|f| {
                format!(
                    r#"<a href="{}.{}">{}</a>"#,
                    esc(&stem(&o.experiment)),
                    f.extension(),
                    f.extension()
                )
            })
            .collect();
        let status = match &o.result {
            Ok(d) => format!(
                r#"<span class="decision" data-decision="{0}">{0}</span>"#,
                esc(d)
            ),
            Err(e) => format!(
                r#"<span class="error">could not analyze: {}</span> (the last good report is kept)"#,
                esc(e)
            ),
        };
        rows.push_str(&format!(
            "<tr><td><code>{}</code></td><td>{status}</td><td>{}</td></tr>",
            esc(&o.experiment),
            links.join(" ")
        ));
    }
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Experiment reports</title></head><body><h1>Experiment reports</h1><table><tr><th>experiment</th><th>decision</th><th>reports</th></tr>{rows}</table></body></html>\n"
    )
}

/// A running [`ReportGenerator`]; stopping it (or dropping it) ends the thread.
#[derive(Debug)]
pub struct ReportHandle {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
    last: Arc<Mutex<Vec<JobOutcome>>>,
    runs: Arc<std::sync::atomic::AtomicU64>,
}

impl ReportHandle {
    /// The last run's outcomes.
    pub fn last(&self) -> Vec<JobOutcome> {
        self.last.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// How many runs have finished.
    pub fn runs(&self) -> u64 {
        self.runs.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Stops the thread and waits for it.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for ReportHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

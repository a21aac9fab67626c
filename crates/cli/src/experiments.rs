//! `flightdeck experiments`: assign a user, check a traffic split.

use std::io::Write;

use anyhow::Context as _;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use flightdeck::experiments::analysis::{
    AnalysisConfig, Engine, ExperimentAnalyzer, MetricSpec, ReportFormat, ReportGenerator,
    ReportJob, render_text,
};
use flightdeck::experiments::{
    Context, FeatureSet, load_experiment_file, read_exposures, srm_from_exposures,
};
use flightdeck::stats::Correction;
use flightdeck::stats::DEFAULT_SRM_ALPHA;
use serde::Serialize;

/// The `experiments` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum ExperimentsCommand {
    /// Which variation a context gets (GrowthBook's `run`).
    Assign(AssignArgs),
    /// Check exposure counts against the experiment's weights (SRM).
    Srm(SrmArgs),
    /// Analyze result records: GrowthBook's stats engine, health checks and a recommendation (exit 3 on an SRM).
    Analyze(AnalyzeArgs),
    /// Write Markdown, JSON or HTML reports into a directory, once or on a schedule (--every).
    Report(ReportArgs),
}

#[derive(Debug, Args)]
pub(crate) struct AnalysisArgs {
    /// Variation id of the control.
    #[arg(long, default_value_t = 0)]
    control: usize,
    /// Significance level (the intervals are 1 − alpha).
    #[arg(long, default_value_t = 0.05)]
    alpha: f64,
    /// Which engine decides: frequentist (p-values) or bayesian (chance to win and risk).
    #[arg(long, default_value = "frequentist", value_parser = ["frequentist", "bayesian"])]
    engine: String,
    /// Declare a metric: NAME:binomial|mean[:lower][:guardrail] (repeatable; the first goal decides).
    #[arg(long = "metric", value_name = "SPEC", value_parser = MetricSpec::parse)]
    metrics: Vec<MetricSpec>,
    /// Correction across treatments × goal metrics.
    #[arg(long, default_value = "holm", value_parser = ["holm", "bh", "bonferroni", "none"])]
    correction: String,
    /// The smallest relative change worth detecting on the primary goal (for the sample size).
    #[arg(long, default_value_t = 0.05)]
    mde: f64,
    /// Fewest users per arm before any verdict.
    #[arg(long, default_value_t = 100)]
    min_users: u64,
}

impl AnalysisArgs {
    fn config(&self) -> anyhow::Result<AnalysisConfig> {
        if !(self.alpha > 0.0 && self.alpha < 0.5) {
            crate::bad_input!("--alpha {}: must be above 0 and below 0.5", self.alpha);
        }
        if !(self.mde.is_finite() && self.mde > 0.0) {
            crate::bad_input!("--mde {}: must be above 0", self.mde);
        }
        Ok(AnalysisConfig {
            control: self.control,
            alpha: self.alpha,
            engine: if self.engine == "bayesian" {
                Engine::Bayesian
            } else {
                Engine::Frequentist
            },
            correction: match self.correction.as_str() {
                "holm" => Some(Correction::Holm),
                "bh" => Some(Correction::BenjaminiHochberg),
                "bonferroni" => Some(Correction::Bonferroni),
                _ => None,
            },
            metrics: self.metrics.clone(),
            mde: self.mde,
            min_users: self.min_users,
            ..AnalysisConfig::default()
        })
    }
}

#[derive(Debug, Args)]
pub(crate) struct AnalyzeArgs {
    /// The experiment (GrowthBook JSON: key, variations, weights).
    #[arg(long, value_name = "EXP.json")]
    experiment: PathBuf,
    /// Result records, JSON Lines (one line per user, as ResultsTracker writes them).
    #[arg(long, value_name = "RESULTS.jsonl")]
    results: PathBuf,
    #[command(flatten)]
    analysis: AnalysisArgs,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ReportArgs {
    /// The experiment (GrowthBook JSON).
    #[arg(long, value_name = "EXP.json")]
    experiment: PathBuf,
    /// Result records, JSON Lines.
    #[arg(long, value_name = "RESULTS.jsonl")]
    results: PathBuf,
    /// The directory for the reports and an index page.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Report formats (repeatable or comma-separated; default all three).
    #[arg(long, value_delimiter = ',', value_parser = ["md", "json", "html"])]
    format: Vec<String>,
    /// Regenerate on this interval until interrupted (e.g. 30s, 15m, 1h).
    #[arg(long, value_name = "DURATION", value_parser = parse_every)]
    every: Option<std::time::Duration>,
    #[command(flatten)]
    analysis: AnalysisArgs,
}

fn parse_every(s: &str) -> Result<std::time::Duration, String> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| {
        format!(
            "{} is not a duration such as 30s, 15m or 1h",
            crate::shown(s)
        )
    })?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => {
            return Err(format!(
                "{} is not a duration such as 30s, 15m or 1h",
                crate::shown(s)
            ));
        }
    };
    if secs == 0 || secs > 30 * 86_400 {
        return Err(format!("{s}: the interval must be between 1s and 30d"));
    }
    Ok(std::time::Duration::from_secs(secs))
}

#[derive(Debug, Args)]
pub(crate) struct AssignArgs {
    /// The experiment, in GrowthBook's JSON shape (`key`, `variations`, `weights`, …).
    #[arg(long, value_name = "FILE")]
    experiment: PathBuf,
    /// The context: `{"attributes": {...}, "url": ..., "forcedVariations": ...,
    /// "savedGroups": ..., "features": ...}`, or just the attributes object.
    #[arg(long, value_name = "JSON")]
    context: String,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct SrmArgs {
    /// Exposures as JSON Lines (as `JsonLinesExposureSink` writes them).
    #[arg(long, value_name = "FILE")]
    exposures: PathBuf,
    /// The experiment whose weights are expected.
    #[arg(long, value_name = "FILE")]
    experiment: PathBuf,
    /// Significance level for a mismatch.
    #[arg(long, default_value_t = DEFAULT_SRM_ALPHA)]
    alpha: f64,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct AssignOut<'a> {
    in_experiment: bool,
    variation_id: usize,
    key: &'a str,
    value: &'a serde_json::Value,
    hash_used: bool,
    bucket: Option<f64>,
}

/// Parses `--context`: GrowthBook's context shape (with `attributes`), or
/// just the attributes object.
pub(crate) fn parse_context(text: &str) -> anyhow::Result<(serde_json::Value, Context)> {
    let v: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| crate::BadInput::new(format!("--context: not valid JSON: {e}")))?;
    if !v.is_object() {
        crate::bad_input!(
            "--context: expected a JSON object, found {}",
            crate::shown(&v.to_string())
        );
    }
    if let Some(attrs) = v.get("attributes").filter(|a| !a.is_object()) {
        crate::bad_input!(
            "--context: \"attributes\" must be an object, found {}",
            crate::shown(&attrs.to_string())
        );
    }
    let ctx = if v.get("attributes").is_some() {
        Context::from_json(&v)
    } else {
        Context::new(v.clone())
    };
    Ok((v, ctx))
}

fn assign(a: &AssignArgs) -> anyhow::Result<()> {
    let exp = load_experiment_file(&a.experiment)?;
    let (v, ctx) = parse_context(&a.context)?;
    // Prerequisites and saved groups come with the context, as in the suite.
    let features = FeatureSet::from_json(
        v.get("features").unwrap_or(&serde_json::Value::Null),
        v.get("savedGroups"),
    );
    let r = exp.run_with(&ctx, &features, None);
    let out = AssignOut {
        in_experiment: r.in_experiment,
        variation_id: r.variation_id,
        key: r.key,
        value: r.value,
        hash_used: r.hash_used,
        bucket: r.bucket,
    };
    let mut stdout = std::io::stdout().lock();
    if a.json {
        serde_json::to_writer(&mut stdout, &out)?;
        writeln!(stdout)?;
    } else if r.in_experiment {
        writeln!(
            stdout,
            "{}: variation {} ({}) = {} [bucket {}]",
            exp.key(),
            r.variation_id,
            r.key,
            r.value,
            r.bucket.map_or("-".to_owned(), |b| b.to_string())
        )?;
    } else {
        writeln!(
            stdout,
            "{}: not in the experiment; serve variation 0 = {}",
            exp.key(),
            r.value
        )?;
    }
    Ok(())
}

fn srm(a: &SrmArgs) -> anyhow::Result<()> {
    if !(a.alpha > 0.0 && a.alpha < 1.0) {
        crate::bad_input!("--alpha {}: must be between 0 and 1", a.alpha);
    }
    let exp = load_experiment_file(&a.experiment)?;
    let exposures = read_exposures(&a.exposures)?;
    let check = srm_from_exposures(&exposures, &exp, a.alpha);
    let total: u64 = check.observed.iter().sum();
    if total == 0 && check.unknown_exposures == 0 {
        crate::bad_input!(
            "{}: no exposures of experiment {:?}",
            a.exposures.display(),
            exp.key()
        );
    }
    let mut stdout = std::io::stdout().lock();
    if a.json {
        serde_json::to_writer(&mut stdout, &check)?;
        writeln!(stdout)?;
    } else {
        let wsum: f64 = check.weights.iter().sum();
        for (i, (o, w)) in check.observed.iter().zip(&check.weights).enumerate() {
            writeln!(
                stdout,
                "variation {i}: {o} exposures ({:.2}%), expected {:.2}%",
                100.0 * *o as f64 / total as f64,
                100.0 * w / wsum
            )?;
        }
        if let Some(t) = &check.test {
            writeln!(
                stdout,
                "chi-square {:.4}, df {}, p = {:.6}",
                t.statistic, t.df, t.p_value
            )?;
        }
        if check.unknown_exposures > 0 {
            let ids: Vec<String> = check
                .unknown_variation_ids
                .iter()
                .map(ToString::to_string)
                .collect();
            writeln!(
                stdout,
                "{} exposures name variations experiment {:?} does not have (ids {})",
                check.unknown_exposures,
                exp.key(),
                ids.join(", ")
            )?;
        }
        for arm in &check.leaked_arms {
            writeln!(stdout, "variation {arm} has weight 0 but received traffic")?;
        }
        writeln!(
            stdout,
            "{}",
            if check.mismatch {
                "SAMPLE RATIO MISMATCH: do not trust this experiment's results"
            } else {
                "no sample ratio mismatch"
            }
        )?;
    }
    if check.mismatch {
        return Err(crate::Finding.into());
    }
    Ok(())
}

pub(crate) fn run(cmd: ExperimentsCommand) -> anyhow::Result<()> {
    match cmd {
        ExperimentsCommand::Assign(a) => assign(&a),
        ExperimentsCommand::Srm(a) => srm(&a),
        ExperimentsCommand::Analyze(a) => analyze(&a),
        ExperimentsCommand::Report(a) => report(&a),
    }
}

fn open_results(path: &std::path::Path) -> anyhow::Result<std::io::BufReader<std::fs::File>> {
    let f = std::fs::File::open(path).map_err(|e| {
        crate::BadInput::new(format!("cannot read --results {}: {e}", path.display()))
    })?;
    Ok(std::io::BufReader::with_capacity(1 << 16, f))
}

/// The analysis of `exp`'s lines in the results file; a bad line is bad
/// input (exit 2).
fn analyze_results(
    analyzer: &ExperimentAnalyzer,
    exp: &flightdeck::experiments::Experiment,
    results: &std::path::Path,
) -> anyhow::Result<flightdeck::experiments::analysis::ExperimentAnalysis> {
    analyzer
        .analyze_reader(
            open_results(results)?,
            &results.display().to_string(),
            exp.key(),
            Some(exp.weights()),
        )
        .map_err(|e| crate::BadInput::new(e.to_string()).into())
}

fn analyze(a: &AnalyzeArgs) -> anyhow::Result<()> {
    let exp = load_experiment_file(&a.experiment)?;
    let analyzer = ExperimentAnalyzer::new(a.analysis.config()?);
    let analysis = analyze_results(&analyzer, &exp, &a.results)?;
    let mut stdout = std::io::stdout().lock();
    if a.json {
        serde_json::to_writer_pretty(&mut stdout, &analysis)?;
        writeln!(stdout)?;
    } else {
        write!(stdout, "{}", render_text(&analysis))?;
    }
    drop(stdout);
    if analysis.other_experiments > 0 {
        let _ = writeln!(
            std::io::stderr(),
            "note: {} line(s) for other experiments were skipped",
            analysis.other_experiments
        );
    }
    if analysis.srm.mismatch {
        return Err(crate::Finding.into());
    }
    Ok(())
}

fn report(a: &ReportArgs) -> anyhow::Result<()> {
    let exp = load_experiment_file(&a.experiment)?;
    let formats: Vec<ReportFormat> = if a.format.is_empty() {
        vec![
            ReportFormat::Markdown,
            ReportFormat::Json,
            ReportFormat::Html,
        ]
    } else {
        a.format
            .iter()
            .filter_map(|f| ReportFormat::parse(f))
            .collect()
    };
    // Check the results once up front, so bad input fails at once (exit 2).
    let analyzer = ExperimentAnalyzer::new(a.analysis.config()?);
    analyze_results(&analyzer, &exp, &a.results)?;
    let generator = ReportGenerator::new(&a.out, analyzer)
        .with_formats(&formats)
        .with_job(ReportJob {
            experiment: exp.key().to_owned(),
            results: a.results.clone(),
            weights: Some(exp.weights().to_vec()),
        });
    let print = |outcomes: &[flightdeck::experiments::analysis::JobOutcome]| -> anyhow::Result<()> {
        let mut stdout = std::io::stdout().lock();
        for o in outcomes {
            match &o.result {
                Ok(decision) => {
                    for f in &o.files {
                        writeln!(stdout, "{}: {decision} -> {}", o.experiment, f.display())?;
                    }
                }
                Err(e) => writeln!(
                    stdout,
                    "{}: could not analyze ({e}); the last good report is kept",
                    o.experiment
                )?,
            }
        }
        Ok(())
    };
    let Some(every) = a.every else {
        let outcomes = generator
            .run_once()
            .with_context(|| format!("cannot write reports into {}", a.out.display()))?;
        return print(&outcomes);
    };
    let _running = generator.spawn(every);
    let _ = writeln!(
        std::io::stderr(),
        "regenerating reports in {} every {}s; stop with Ctrl-C",
        a.out.display(),
        every.as_secs()
    );
    // The generator runs on its own thread until the process is stopped.
    loop {
        std::thread::park();
    }
}

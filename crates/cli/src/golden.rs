//! `flightdeck golden …`: record golden traces, check captures against
//! them (text, `--json`, `--junit`), bless intended changes, show and diff.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use flightdeck::golden::{
    self, Case, CaseKey, CaseStatus, Checker, DiffKind, Difference, RawTrace, Recorder, Report,
    Spec, Store, Tolerances, Tree,
};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::{BadInput, Finding};

/// Files at least this large get a progress bar (on a terminal).
const PROGRESS_BYTES: u64 = 4 << 20;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum GoldenCommand {
    /// Record one golden case per trace (keyed by the root span's correlation id).
    Record(RecordArgs),
    /// Check captured traces against the golden cases (exit 3 when any case fails or is missing).
    Check(CheckArgs),
    /// Replace golden cases with a reviewed capture after an intended change.
    Bless(BlessArgs),
    /// Print golden cases as indented trees.
    Show(ShowArgs),
    /// Compare two captures and print the first as a tree with the differences marked.
    Diff(DiffArgs),
    /// Write the whole store as one JSONL file.
    Export(ExportArgs),
    /// Read a JSONL export into a store (every line is checked before anything is written).
    Import(ImportArgs),
    /// List the RAG shape templates `check --template` accepts.
    Templates,
}

#[derive(Debug, clap::Args)]
struct KeyArg {
    /// What names a trace's case: `correlation_id` (the root span's) or `attr:NAME` (a root attribute).
    #[arg(long, default_value = "correlation_id", value_parser = CaseKey::parse)]
    key: CaseKey,
}

#[derive(Debug, clap::Args)]
pub(crate) struct RecordArgs {
    /// Captured traces: traces.jsonl (span records) or OTLP JSON; `-` reads standard input.
    #[arg(long, value_name = "FILE")]
    traces: PathBuf,
    /// The golden directory (default: the `golden_traces_path` setting).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    #[command(flatten)]
    key: KeyArg,
    /// Keep N runs per case as a latency profile (the traces file holds N captures of each input).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    runs: u32,
}

#[derive(Debug, clap::Args)]
pub(crate) struct CheckArgs {
    /// The golden directory (default: the `golden_traces_path` setting).
    #[arg(long, value_name = "DIR", conflicts_with = "template")]
    golden: Option<PathBuf>,
    /// Check each trace's shape against a RAG template instead of goldens (see `golden templates`).
    #[arg(long, value_name = "NAME")]
    template: Option<String>,
    /// Captured traces: traces.jsonl or OTLP JSON; `-` reads standard input.
    #[arg(long, value_name = "FILE")]
    traces: PathBuf,
    #[command(flatten)]
    key: KeyArg,
    /// Allowed relative slow-down of a span's self time (default: golden.yaml, then the settings, then 0.2).
    #[arg(long, value_name = "F", value_parser = share)]
    latency_tolerance: Option<f64>,
    /// A slow-down must also exceed this many milliseconds to fail (default 5).
    #[arg(long, value_name = "MS", value_parser = share)]
    latency_floor_ms: Option<f64>,
    /// Allowed drop of a quality attribute (default: golden.yaml, then the settings, then 0.05).
    #[arg(long, value_name = "F", value_parser = share)]
    quality_tolerance: Option<f64>,
    /// Also write a JUnit XML report here.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Print the report as JSON instead of text.
    #[arg(long)]
    json: bool,
}

fn share(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("{} is not a number", crate::shown(s)))?;
    if v.is_finite() && v >= 0.0 {
        Ok(v)
    } else {
        Err(format!("{s} is not a number of 0 or more"))
    }
}

#[derive(Debug, clap::Args)]
pub(crate) struct BlessArgs {
    /// The golden directory (default: the `golden_traces_path` setting).
    #[arg(long, value_name = "DIR")]
    golden: Option<PathBuf>,
    /// The reviewed capture.
    #[arg(long, value_name = "FILE")]
    traces: PathBuf,
    /// Only these cases (repeatable); default: every case in the capture.
    #[arg(long = "case", value_name = "NAME")]
    cases: Vec<String>,
    #[command(flatten)]
    key: KeyArg,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ShowArgs {
    /// The golden directory (default: the `golden_traces_path` setting).
    #[arg(long, value_name = "DIR")]
    golden: Option<PathBuf>,
    /// Only these cases (repeatable); default: all.
    #[arg(long = "case", value_name = "NAME")]
    cases: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct DiffArgs {
    /// The capture taken as expected.
    #[arg(value_name = "EXPECTED")]
    expected: PathBuf,
    /// The capture compared with it.
    #[arg(value_name = "ACTUAL")]
    actual: PathBuf,
    #[command(flatten)]
    key: KeyArg,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ExportArgs {
    /// The golden directory (default: the `golden_traces_path` setting).
    #[arg(long, value_name = "DIR")]
    golden: Option<PathBuf>,
    /// The JSONL file to write.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ImportArgs {
    /// The golden directory to write into.
    #[arg(long, value_name = "DIR")]
    golden: Option<PathBuf>,
    /// The JSONL export to read.
    #[arg(long, value_name = "FILE")]
    file: PathBuf,
}

pub(crate) fn run(cmd: GoldenCommand) -> anyhow::Result<()> {
    match cmd {
        GoldenCommand::Record(a) => record(a),
        GoldenCommand::Check(a) => check(a),
        GoldenCommand::Bless(a) => bless(a),
        GoldenCommand::Show(a) => show(a),
        GoldenCommand::Diff(a) => diff(a),
        GoldenCommand::Export(a) => {
            let store = Store::new(golden_dir(a.golden)?);
            let text = store.export_jsonl()?;
            crate::files::write_atomic(&a.out, text.as_bytes())?;
            let n = text.lines().count();
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "exported {n} case(s) from {} to {}",
                store.dir().display(),
                a.out.display()
            )?;
            Ok(())
        }
        GoldenCommand::Import(a) => {
            let store = Store::new(golden_dir(a.golden)?);
            let text = crate::files::read_input(&a.file)?;
            let n = store.import_jsonl(&text, &a.file.display().to_string())?;
            let mut out = std::io::stdout().lock();
            writeln!(out, "imported {n} case(s) into {}", store.dir().display())?;
            Ok(())
        }
        GoldenCommand::Templates => {
            let mut out = std::io::stdout().lock();
            for t in golden::templates() {
                writeln!(out, "{:<14} {}", t.name, t.shape)?;
            }
            Ok(())
        }
    }
}

/// The golden settings: the `golden_*` keys of the settings file and variables.
fn settings() -> anyhow::Result<golden::GoldenSettings> {
    Ok(crate::files::load_settings(None)?.golden)
}

fn golden_dir(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    match given {
        Some(d) => Ok(d),
        None => Ok(settings()?.traces_path),
    }
}

/// Streams the traces of a file (span records or OTLP JSON) to `each`,
/// with a progress bar for large files on a terminal. Answers the number
/// of late spans (arrived after their trace's root).
pub(crate) fn for_each_trace(
    path: &Path,
    mut each: impl FnMut(RawTrace) -> anyhow::Result<()>,
) -> anyhow::Result<usize> {
    let name = path.display().to_string();
    let (mut input, size): (Box<dyn BufRead>, u64) = if path.as_os_str() == "-" {
        (Box::new(BufReader::new(std::io::stdin())), 0)
    } else {
        let file = std::fs::File::open(path)
            .map_err(|e| BadInput::new(format!("cannot read --traces {}: {e}", path.display())))?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        (Box::new(BufReader::with_capacity(1 << 16, file)), size)
    };
    let head = input
        .fill_buf()
        .with_context(|| format!("cannot read {name}"))?;
    let head_text = String::from_utf8_lossy(&head[..head.len().min(4096)]).into_owned();
    if golden::looks_like_otlp(&head_text) {
        let mut text = String::new();
        input
            .read_to_string(&mut text)
            .map_err(|e| BadInput::new(format!("{name}: not UTF-8 text ({e})")))?;
        for t in golden::read_otlp(&text, &name)? {
            each(t)?;
        }
        return Ok(0);
    }
    let progress = if size >= PROGRESS_BYTES {
        let p = ProgressBar::with_draw_target(Some(size), ProgressDrawTarget::stderr());
        p.set_style(
            ProgressStyle::with_template("{spinner} {bar:40} {bytes}/{total_bytes}  {msg}")
                .expect("the progress template is a valid constant"),
        );
        p
    } else {
        ProgressBar::hidden()
    };
    let mut reader = golden::TraceReader::new(input, name);
    let mut n = 0u64;
    while let Some(t) = reader.next() {
        each(t?)?;
        n += 1;
        if n.is_multiple_of(256) {
            progress.set_position(reader.bytes_read());
            progress.set_message(format!("{n} traces"));
        }
    }
    progress.finish_and_clear();
    Ok(reader.late_spans())
}

fn warn(text: &str) {
    let _ = writeln!(std::io::stderr(), "warning: {text}");
}

fn record(a: RecordArgs) -> anyhow::Result<()> {
    let dir = golden_dir(a.out)?;
    let mut rec = Recorder::new(a.key.key.clone(), a.runs as usize);
    let late = for_each_trace(&a.traces, |t| Ok(rec.add(t)?))?;
    let unkeyed = rec.unkeyed();
    let (cases, short) = rec.finish();
    if cases.is_empty() {
        return Err(BadInput::new(format!(
            "{} holds no trace whose root has a {} to name a case by",
            a.traces.display(),
            a.key.key
        ))
        .into());
    }
    let store = Store::new(&dir);
    for case in &cases {
        store.write(case)?;
    }
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "recorded {} case(s) in {}{}",
        cases.len(),
        dir.display(),
        if a.runs > 1 {
            format!(" with latency profiles of up to {} runs", a.runs)
        } else {
            String::new()
        }
    )?;
    drop(out);
    if unkeyed > 0 {
        warn(&format!(
            "{unkeyed} trace(s) had no {} on their root and were skipped",
            a.key.key
        ));
    }
    for (name, n) in short.iter().take(5) {
        warn(&format!(
            "case {} had {n} of {} runs",
            crate::shown(name),
            a.runs
        ));
    }
    if late > 0 {
        warn(&format!(
            "{late} span(s) ended after their trace's root and were left out"
        ));
    }
    Ok(())
}

fn tolerances(a: &CheckArgs, dir: Option<&Path>) -> anyhow::Result<Spec> {
    let base = settings()?.tolerances();
    let mut spec = match dir {
        Some(d) => Spec::load(d, base)?,
        None => Spec::load(Path::new("/nonexistent-golden-dir"), base)?,
    };
    let t = &mut spec.rules.tolerances;
    if let Some(v) = a.latency_tolerance {
        t.latency = v;
    }
    if let Some(v) = a.latency_floor_ms {
        t.latency_floor_ms = v;
        spec.profile.floor_ms = v;
    }
    if let Some(v) = a.quality_tolerance {
        if v > 1.0 {
            return Err(BadInput::new(format!("--quality-tolerance {v} is above 1")).into());
        }
        t.quality = v;
    }
    Ok(spec)
}

fn check(a: CheckArgs) -> anyhow::Result<()> {
    let report = if let Some(name) = &a.template {
        let Some(template) = golden::template(name) else {
            let names: Vec<_> = golden::templates().iter().map(|t| t.name).collect();
            return Err(BadInput::new(format!(
                "--template {} is not a template; use one of {}",
                crate::shown(name),
                names.join(", ")
            ))
            .into());
        };
        template_report(&a, &template)?
    } else {
        let dir = golden_dir(a.golden.clone())?;
        let store = Store::new(&dir);
        let cases = store.load()?;
        if cases.is_empty() {
            return Err(BadInput::new(format!(
                "{} holds no golden cases; record some with `flightdeck golden record --traces FILE --out {}`",
                dir.display(),
                dir.display()
            ))
            .into());
        }
        let spec = tolerances(&a, Some(&dir))?;
        let mut checker = Checker::new(&cases, &spec, a.key.key.clone());
        let late = for_each_trace(&a.traces, |t| Ok(checker.add(t)?))?;
        if late > 0 {
            warn(&format!(
                "{late} span(s) ended after their trace's root and were not compared"
            ));
        }
        checker.finish()
    };
    if let Some(path) = &a.junit {
        crate::files::write_atomic(path, report.to_junit("flightdeck golden").as_bytes())?;
    }
    let mut out = std::io::stdout().lock();
    if a.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        write!(out, "{}", render(&report, colour))?;
    }
    drop(out);
    if report.unkeyed > 0 {
        warn(&format!(
            "{} trace(s) had no {} on their root and were not compared",
            report.unkeyed, a.key.key
        ));
    }
    if report.ok() {
        Ok(())
    } else {
        Err(Finding.into())
    }
}

fn template_report(a: &CheckArgs, template: &golden::Template) -> anyhow::Result<Report> {
    let mut cases: BTreeMap<String, golden::CaseReport> = BTreeMap::new();
    let mut unkeyed = 0;
    let mut counter = 0usize;
    for_each_trace(&a.traces, |t| {
        counter += 1;
        let name = t.key(&a.key.key).unwrap_or_else(|| {
            unkeyed += 1;
            format!("trace-{counter}")
        });
        let tree = Tree::from_trace(t)?;
        // A failed request's shape is cut short by design; judge the shape
        // of requests that succeeded.
        if tree.spans().first().is_some_and(|r| r.status.is_error()) {
            return Ok(());
        }
        let diffs = template.check(&tree);
        let entry = cases
            .entry(name.clone())
            .or_insert_with(|| golden::CaseReport {
                name,
                status: CaseStatus::Pass,
                differences: Vec::new(),
                captures: 0,
                more_differences: 0,
            });
        entry.captures += 1;
        if !diffs.is_empty() && entry.status == CaseStatus::Pass {
            entry.status = CaseStatus::Fail;
            entry.differences = diffs;
        }
        Ok(())
    })?;
    let cases: Vec<_> = cases.into_values().collect();
    let failed = cases
        .iter()
        .filter(|c| c.status == CaseStatus::Fail)
        .count();
    Ok(Report {
        passed: cases.len() - failed,
        failed,
        missing: 0,
        new: 0,
        new_cases: Vec::new(),
        unkeyed: 0,
        cases,
    })
}

struct Paint(bool);

impl Paint {
    fn red(&self, s: &str) -> String {
        self.wrap("31", s)
    }
    fn green(&self, s: &str) -> String {
        self.wrap("32", s)
    }
    fn yellow(&self, s: &str) -> String {
        self.wrap("33", s)
    }
    fn dim(&self, s: &str) -> String {
        self.wrap("2", s)
    }
    fn wrap(&self, code: &str, s: &str) -> String {
        if self.0 {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_owned()
        }
    }
}

/// The text report: a summary line, then a readable diff per failing case.
pub(crate) fn render(report: &Report, colour: bool) -> String {
    use std::fmt::Write as _;
    let p = Paint(colour);
    let mut out = String::new();
    for c in &report.cases {
        match c.status {
            CaseStatus::Pass if c.differences.is_empty() => {}
            CaseStatus::Pass => {
                let _ = writeln!(out, "{} {}", p.green("pass"), c.name);
                for d in &c.differences {
                    let _ = writeln!(out, "  {} {}", p.yellow("·"), d.message);
                }
            }
            CaseStatus::Missing => {
                let _ = writeln!(
                    out,
                    "{} {}: no capture of this case",
                    p.red("MISSING"),
                    c.name
                );
            }
            CaseStatus::Fail => {
                let failing = c.differences.iter().filter(|d| d.fails).count();
                let _ = writeln!(
                    out,
                    "{} {} ({failing} difference{} in {} capture{})",
                    p.red("FAIL"),
                    c.name,
                    if failing == 1 { "" } else { "s" },
                    c.captures,
                    if c.captures == 1 { "" } else { "s" }
                );
                for d in &c.differences {
                    let mark = if d.fails {
                        p.red("✗")
                    } else {
                        p.yellow("·")
                    };
                    let _ = writeln!(out, "  {mark} {:<15} {}", d.kind.as_str(), d.message);
                }
                if c.more_differences > 0 {
                    let _ = writeln!(out, "  … and {} more", c.more_differences);
                }
            }
        }
    }
    if report.new > 0 {
        let shown: Vec<&str> = report
            .new_cases
            .iter()
            .take(10)
            .map(String::as_str)
            .collect();
        let _ = writeln!(
            out,
            "{} {} capture(s) with no golden case: {}{} (`flightdeck golden bless` adds them)",
            p.dim("new"),
            report.new,
            shown.join(", "),
            if report.new > shown.len() {
                ", …"
            } else {
                ""
            }
        );
    }
    let summary = format!(
        "golden check: {} passed, {} failed, {} missing, {} new",
        report.passed, report.failed, report.missing, report.new
    );
    let _ = writeln!(
        out,
        "{}",
        if report.ok() {
            p.green(&summary)
        } else {
            p.red(&summary)
        }
    );
    out
}

fn bless(a: BlessArgs) -> anyhow::Result<()> {
    let dir = golden_dir(a.golden)?;
    let store = Store::new(&dir);
    let old = store.load()?;
    let runs = old
        .values()
        .filter_map(|c| c.profile.as_ref().map(|p| p.runs))
        .max()
        .unwrap_or(1);
    let mut rec = Recorder::new(a.key.key.clone(), runs as usize);
    let only: std::collections::HashSet<&str> = a.cases.iter().map(String::as_str).collect();
    let key = a.key.key.clone();
    for_each_trace(&a.traces, |t| {
        if !only.is_empty() && !t.key(&key).is_some_and(|k| only.contains(k.as_str())) {
            return Ok(());
        }
        Ok(rec.add(t)?)
    })?;
    let (cases, _) = rec.finish();
    for name in &a.cases {
        if !cases.iter().any(|c| &c.name == name) {
            return Err(BadInput::new(format!(
                "--case {}: no trace in {} has that {}",
                crate::shown(name),
                a.traces.display(),
                a.key.key
            ))
            .into());
        }
    }
    let mut out = std::io::stdout().lock();
    let rules = golden::Rules::new();
    for case in &cases {
        let what = match old.get(&case.name) {
            None => "new".to_owned(),
            Some(prev) => {
                let n = golden::compare(&prev.tree, &case.tree, &rules).len();
                format!("{n} difference(s) from before")
            }
        };
        let path = store.write(case)?;
        writeln!(out, "blessed {} ({what}) -> {}", case.name, path.display())?;
    }
    writeln!(
        out,
        "{} case(s) blessed; review them with `git diff {}`",
        cases.len(),
        dir.display()
    )?;
    Ok(())
}

fn show(a: ShowArgs) -> anyhow::Result<()> {
    let dir = golden_dir(a.golden)?;
    let cases = Store::new(&dir).load()?;
    for name in &a.cases {
        if !cases.contains_key(name) {
            return Err(BadInput::new(format!(
                "--case {}: no such case in {}",
                crate::shown(name),
                dir.display()
            ))
            .into());
        }
    }
    let mut out = std::io::stdout().lock();
    for case in cases.values() {
        if !a.cases.is_empty() && !a.cases.contains(&case.name) {
            continue;
        }
        write!(out, "{}", render_case(case))?;
    }
    Ok(())
}

fn attr_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => crate::shown(s),
        other => other.to_string(),
    }
}

/// A case as an indented tree.
pub(crate) fn render_case(case: &Case) -> String {
    use std::fmt::Write as _;
    let mut out = format!("{}  ({} spans", case.name, case.tree.len());
    if let Some(p) = &case.profile {
        let _ = write!(out, "; latency profile of {} runs", p.runs);
    }
    out.push_str(")\n");
    for s in case.tree.spans() {
        out.push_str(&span_line(s, "  "));
    }
    out
}

fn span_line(s: &golden::Span, lead: &str) -> String {
    let kind = serde_json::to_value(s.kind)
        .ok()
        .map(|v| attr_text(&v))
        .unwrap_or_default();
    let status = match &s.status {
        flightdeck::obs::SpanStatus::Ok => "ok".to_owned(),
        flightdeck::obs::SpanStatus::Error { message } => {
            format!("error {}", crate::shown(message))
        }
    };
    let attrs: Vec<String> = s
        .attributes
        .iter()
        .map(|(k, v)| format!("{k}={}", attr_text(v)))
        .collect();
    let events: Vec<String> = s.events.iter().map(|e| crate::shown(&e.name)).collect();
    let segment = s.path.rsplit('/').next().unwrap_or(&s.name);
    format!(
        "{lead}{}{}  {}  {status}  {:.1} ms (self {:.1} ms){}{}\n",
        "  ".repeat(s.depth),
        segment,
        kind.trim_matches('"'),
        s.duration_ms,
        s.self_ms,
        if attrs.is_empty() {
            String::new()
        } else {
            format!("  {}", attrs.join(" "))
        },
        if events.is_empty() {
            String::new()
        } else {
            format!("  events [{}]", events.join(", "))
        },
    )
}

fn load_all(path: &Path, key: &CaseKey) -> anyhow::Result<BTreeMap<String, Tree>> {
    let mut out = BTreeMap::new();
    for_each_trace(path, |t| {
        if let Some(k) = t.key(key) {
            let tree = Tree::from_trace(t)?;
            out.entry(k).or_insert(tree);
        }
        Ok(())
    })?;
    Ok(out)
}

fn diff(a: DiffArgs) -> anyhow::Result<()> {
    let expected = load_all(&a.expected, &a.key.key)?;
    let actual = load_all(&a.actual, &a.key.key)?;
    let rules = golden::Rules::new();
    let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let p = Paint(colour);
    let mut out = std::io::stdout().lock();
    let mut differing = 0;
    for (name, e) in &expected {
        let Some(act) = actual.get(name) else {
            writeln!(
                out,
                "{} {name}: only in {}",
                p.red("-"),
                a.expected.display()
            )?;
            differing += 1;
            continue;
        };
        let diffs = golden::compare(e, act, &rules);
        if diffs.is_empty() {
            continue;
        }
        differing += 1;
        writeln!(out, "{name}")?;
        let mut by_path: BTreeMap<&str, Vec<&Difference>> = BTreeMap::new();
        for d in &diffs {
            by_path.entry(d.path.as_str()).or_default().push(d);
        }
        for s in e.spans() {
            let here = by_path.get(s.path.as_str());
            let missing = here.is_some_and(|v| v.iter().any(|d| d.kind == DiffKind::MissingSpan));
            let mark = if missing {
                p.red("-")
            } else if here.is_some() {
                p.yellow("!")
            } else {
                " ".to_owned()
            };
            out.write_all(span_line(s, &format!("{mark} ")).as_bytes())?;
            for d in here
                .into_iter()
                .flatten()
                .filter(|d| d.kind != DiffKind::MissingSpan)
            {
                writeln!(out, "    {}{}", "  ".repeat(s.depth), d.message)?;
            }
        }
        for d in diffs.iter().filter(|d| d.kind == DiffKind::UnexpectedSpan) {
            writeln!(out, "{} {}", p.green("+"), d.message)?;
        }
    }
    for name in actual.keys().filter(|k| !expected.contains_key(*k)) {
        writeln!(
            out,
            "{} {name}: only in {}",
            p.green("+"),
            a.actual.display()
        )?;
        differing += 1;
    }
    writeln!(
        out,
        "{differing} of {} trace(s) differ",
        expected.len().max(actual.len())
    )?;
    drop(out);
    if differing > 0 {
        Err(Finding.into())
    } else {
        Ok(())
    }
}

/// Tolerances as `golden check` would use them for a directory (the demo
/// reuses them).
pub(crate) fn spec_for(dir: &Path) -> anyhow::Result<Spec> {
    let base: Tolerances = settings()?.tolerances();
    Ok(Spec::load(dir, base)?)
}

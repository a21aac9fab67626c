//! `flightdeck release`: the canary judge, and the release controller's
//! commands.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use flightdeck::release::judge::{
    CanaryConfig, Judge, JudgeReport, MetricSetPair, Verdict, pairs_from_json,
};

/// `flightdeck release …`
#[derive(Debug, clap::Subcommand)]
pub(crate) enum ReleaseCommand {
    /// Judge a canary like Kayenta's NetflixACAJudge-v1.0: a Kayenta canary config and MetricSetPair list in, score and per-metric classification out (exit 3 unless the verdict is Pass).
    Judge(JudgeArgs),
    /// Start (or resume) a canary release from a spec and run it to the end: 5 → 25 → 100 while the analysis holds, promote, or roll back (exit 3 when rolled back).
    Run(RunArgs),
    /// The environment's current release state (from its ledger).
    Status(StateArgs),
    /// Every ledger entry of the environment: transitions, weights, analyses (with the judge's report), commands.
    History(StateArgs),
    /// Promote the running release now, skipping the remaining steps.
    Promote(CommandArgs),
    /// Abort the running release: traffic back to stable at once.
    Abort(CommandArgs),
    /// Roll back a promoted release within its rollback window (or abort a running one).
    Rollback(CommandArgs),
    /// Resume a paused release.
    Resume(CommandArgs),
    /// Guarded flag rollout: ramp a flag's rollout in a running service (through its flags file) while the flag-on cohort holds up against flag-off — the judge on errors, latency and relevance, and the cohort's SLO burn — and kill the flag at the first failed check (exit 3), recording why in the ledger.
    Guard(GuardArgs),
    /// Render the release for clusters: an Argo Rollouts Rollout (canary steps with analysis), its Services, an AnalysisTemplate (the judge's metrics as Prometheus metrics and a web metric calling `release judge --serve`), and a plain Deployment and Service.
    Manifests(ManifestArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct ManifestArgs {
    /// The application's name (Kubernetes names: lowercase letters, digits and -).
    #[arg(long)]
    name: String,
    /// A canary spec whose steps and metrics to carry over; default: 5 → 25 → 100 with the error ratio, p99 latency and the judge.
    #[arg(long, value_name = "canary.yaml")]
    spec: Option<PathBuf>,
    /// The Prometheus the default metrics query (in the cluster).
    #[arg(long, default_value = "http://prometheus:9090")]
    prometheus: String,
    /// The container image, tagged with the canary's version.
    #[arg(long)]
    image: String,
    /// Pods.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=1000))]
    replicas: u32,
    /// The namespace.
    #[arg(long)]
    namespace: Option<String>,
    /// Where `flightdeck release judge --serve … --prometheus …` answers in the cluster.
    #[arg(long, default_value = "http://flightdeck-judge:8081/analyze")]
    judge_url: String,
    /// Write rollout.yaml, services.yaml, analysis-template.yaml and deployment.yaml into DIR (atomically) instead of printing them.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct GuardArgs {
    /// The flag to roll out.
    #[arg(long)]
    flag: String,
    /// Rollout steps in percent; the last (100) is full coverage after every check passed.
    #[arg(long, default_value = "5,25,50,100", value_delimiter = ',')]
    steps: Vec<u32>,
    /// Time between checks.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    interval: std::time::Duration,
    /// How long each step holds before a pass moves it on (default: 5 intervals).
    #[arg(long, value_parser = parse_duration)]
    bake: Option<std::time::Duration>,
    /// The running service (its /metrics has the per-cohort answers).
    #[arg(long, default_value = "http://127.0.0.1:8080", value_name = "URL")]
    service: String,
    /// The flags file the service watches (the rollout is ramped in it; the kill switch lives beside it).
    #[arg(long, value_name = "FILE")]
    flags: PathBuf,
    /// The ledger's directory (default: beside the flags file, .guard-<flag>).
    #[arg(long, value_name = "DIR")]
    state: Option<PathBuf>,
    /// The flag-on cohort's availability objective, percent.
    #[arg(long, default_value_t = 99.9)]
    objective: f64,
    /// Answers each cohort needs in the judge's window before it is judged.
    #[arg(long, default_value_t = 20)]
    min_requests: u64,
    /// Print the final state as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct RunArgs {
    /// The canary spec (YAML: router, steps, analysis templates, judge).
    #[arg(long, value_name = "canary.yaml")]
    spec: PathBuf,
    /// The environment's state directory (ledger); default: the spec's stateDir.
    #[arg(long, value_name = "DIR")]
    state: Option<PathBuf>,
    /// A release id (default: <name>-<canaryVersion>).
    #[arg(long)]
    release: Option<String>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct StateArgs {
    /// The environment's state directory (ledger).
    #[arg(long, value_name = "DIR")]
    state: PathBuf,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct CommandArgs {
    /// The canary spec (names the router to move traffic with).
    #[arg(long, value_name = "canary.yaml")]
    spec: PathBuf,
    /// The environment's state directory; default: the spec's stateDir.
    #[arg(long, value_name = "DIR")]
    state: Option<PathBuf>,
    /// Who asks (recorded in the ledger); default: $USER.
    #[arg(long)]
    actor: Option<String>,
    /// Why (recorded in the ledger).
    #[arg(long, default_value = "asked from the command line")]
    reason: String,
}

#[derive(Debug, clap::Args)]
pub(crate) struct JudgeArgs {
    /// The Kayenta canary config (JSON).
    #[arg(long, value_name = "CONFIG.json")]
    config: PathBuf,
    /// The MetricSetPair list (JSON; NaN as "NaN"); `-` reads standard input. Not with --serve.
    #[arg(
        long,
        value_name = "PAIRS.json",
        required_unless_present = "serve",
        conflicts_with = "serve"
    )]
    pairs: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Answer over HTTP instead: POST /judge with the pairs (or {"config", "pairs"}) returns the JSON report (for an Argo Rollouts web metric).
    #[arg(long, value_name = "ADDR")]
    serve: Option<SocketAddr>,
    /// With --serve: also answer GET /analyze?baseline=SEL&canary=SEL by pulling both sides' series from this Prometheus (the config's query.customInlineTemplate, ${scope} replaced by each selector).
    #[arg(long, value_name = "URL", requires = "serve")]
    prometheus: Option<String>,
    /// With --prometheus: how far back /analyze looks.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    lookback: std::time::Duration,
    /// With --prometheus: the range query's step.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    step: std::time::Duration,
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    flightdeck::release::duration::parse(s)
}

pub(crate) fn run(cmd: ReleaseCommand) -> anyhow::Result<()> {
    match cmd {
        ReleaseCommand::Judge(a) => judge(a),
        ReleaseCommand::Run(a) => run_release(a),
        ReleaseCommand::Status(a) => status(a),
        ReleaseCommand::History(a) => history(a),
        ReleaseCommand::Promote(a) => command(a, "promote"),
        ReleaseCommand::Abort(a) => command(a, "abort"),
        ReleaseCommand::Rollback(a) => command(a, "rollback"),
        ReleaseCommand::Resume(a) => command(a, "resume"),
        ReleaseCommand::Manifests(a) => manifests(a),
        ReleaseCommand::Guard(a) => guard(a),
    }
}

/// The most bytes a config or pairs file may have.
const MAX_INPUT_BYTES: u64 = 256 * 1024 * 1024;

fn read_input(path: &Path) -> anyhow::Result<String> {
    crate::files::read_input_capped(path, MAX_INPUT_BYTES)
}

fn judge(a: JudgeArgs) -> anyhow::Result<()> {
    let config_text = read_input(&a.config)?;
    let config = CanaryConfig::from_json(&config_text, &a.config.display().to_string())?;
    if let Some(addr) = a.serve {
        let analyze = a.prometheus.map(|url| Analyze {
            prometheus: flightdeck::release::provider::Prometheus::new(
                &url,
                std::time::Duration::from_secs(10),
            ),
            lookback: a.lookback,
            step: a.step,
        });
        return serve(config, addr, analyze);
    }
    let pairs_path = a.pairs.as_deref().unwrap_or(Path::new("-"));
    let pairs = pairs_from_json(&read_input(pairs_path)?, &pairs_path.display().to_string())?;
    let report = Judge::default().judge(&config, &pairs)?;
    let mut out = std::io::stdout().lock();
    if a.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        write!(out, "{}", report.to_text())?;
    }
    out.flush()?;
    if report.classification != Verdict::Pass {
        return Err(crate::Finding.into());
    }
    Ok(())
}

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum JudgeBody {
    Pairs(Vec<MetricSetPair>),
    WithConfig {
        config: serde_json::Value,
        pairs: Vec<MetricSetPair>,
    },
}

fn judge_body(default: &CanaryConfig, body: &[u8]) -> Result<JudgeReport, (u16, String)> {
    let text =
        std::str::from_utf8(body).map_err(|e| (400, format!("the body is not UTF-8: {e}")))?;
    let config_owned;
    let (config, pairs) = if text.trim_start().starts_with('[') {
        (
            default,
            pairs_from_json(text, "<body>").map_err(|e| (400, e.to_string()))?,
        )
    } else {
        match serde_json::from_str::<JudgeBody>(text).map_err(|e| (400, format!("<body>: {e}")))? {
            JudgeBody::Pairs(p) => (default, p),
            JudgeBody::WithConfig { config, pairs } => {
                config_owned = CanaryConfig::from_json(&config.to_string(), "<body>.config")
                    .map_err(|e| (400, e.to_string()))?;
                (&config_owned, pairs)
            }
        }
    };
    Judge::default()
        .judge(config, &pairs)
        .map_err(|e| (400, e.to_string()))
}

/// `GET /analyze`: the judge over Prometheus series.
#[derive(Debug, Clone)]
struct Analyze {
    prometheus: flightdeck::release::provider::Prometheus,
    lookback: std::time::Duration,
    step: std::time::Duration,
}

fn analyze(
    config: &CanaryConfig,
    a: Option<&Analyze>,
    query: &std::collections::HashMap<String, String>,
) -> Result<serde_json::Value, (u16, String)> {
    let a = a.ok_or((
        404,
        "start the judge with --prometheus to serve /analyze".to_owned(),
    ))?;
    let side = |k: &str| {
        query
            .get(k)
            .filter(|v| !v.is_empty() && v.len() <= 512)
            .cloned()
            .ok_or((
                400,
                format!("give ?{k}=SELECTOR (1 to 512 bytes), e.g. role=\"canary\""),
            ))
    };
    let judge = flightdeck::release::provider::JudgeProvider {
        prometheus: a.prometheus.clone(),
        config: config.clone(),
        baseline: side("baseline")?,
        canary: side("canary")?,
        lookback: a.lookback,
        step: a.step,
        min_samples: 5,
    };
    use flightdeck::release::provider::Measured;
    match judge.measure().map_err(|e| (502, e.to_string()))? {
        Measured::Value(report) | Measured::NoData(report) | Measured::Decided(_, report) => {
            Ok(report)
        }
    }
}

fn serve(config: CanaryConfig, addr: SocketAddr, analyzer: Option<Analyze>) -> anyhow::Result<()> {
    use axum::body::Bytes;
    use axum::extract::{DefaultBodyLimit, Query, State};
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    use axum::routing::{get, post};
    let config = Arc::new(config);
    let analyzer = Arc::new(analyzer);
    let analyze_route = {
        let config = Arc::clone(&config);
        get(
            move |Query(q): Query<std::collections::HashMap<String, String>>| {
                let (config, analyzer) = (Arc::clone(&config), Arc::clone(&analyzer));
                async move {
                    let result = tokio::task::spawn_blocking(move || {
                        analyze(&config, analyzer.as_ref().as_ref(), &q)
                    })
                    .await
                    .unwrap_or_else(|e| Err((500, e.to_string())));
                    match result {
                        Ok(r) => axum::Json(r).into_response(),
                        Err((code, message)) => (
                            StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_GATEWAY),
                            axum::Json(serde_json::json!({ "error": message })),
                        )
                            .into_response(),
                    }
                }
            },
        )
    };
    let app = axum::Router::new()
        .route("/analyze", analyze_route)
        .route(
            "/judge",
            post(
                |State(c): State<Arc<CanaryConfig>>, body: Bytes| async move {
                    match judge_body(&c, &body) {
                        Ok(r) => axum::Json(r).into_response(),
                        Err((code, message)) => (
                            StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST),
                            axum::Json(serde_json::json!({ "error": message })),
                        )
                            .into_response(),
                    }
                },
            ),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .layer(DefaultBodyLimit::max(64 * 1024 * 1024))
        .with_state(config);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .worker_threads(2)
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        let local = listener.local_addr()?;
        let _ = writeln!(
            std::io::stderr(),
            "judging on http://{local}/judge (POST the MetricSetPair list, or {{\"config\", \"pairs\"}})"
        );
        // Bounded like the service: 64 connections, a 32 KiB head sent
        // within 10 s (slow or silent clients cannot hold a slot).
        let mut limits = flightdeck_service::ConnectionLimits::default();
        limits.max_connections = 64;
        flightdeck_service::serve_router(
            app,
            listener,
            limits,
            flightdeck_service::shutdown_signal(),
            std::time::Duration::from_secs(30),
        )
        .await
        .context("the judge server stopped")
    })
}

fn load_spec(path: &Path) -> anyhow::Result<flightdeck::release::spec::CanarySpec> {
    let text = read_input(path)?;
    Ok(flightdeck::release::spec::CanarySpec::from_yaml(
        &text, path,
    )?)
}

fn state_dir(
    given: Option<PathBuf>,
    spec: &flightdeck::release::spec::CanarySpec,
) -> anyhow::Result<PathBuf> {
    match given.or_else(|| spec.state_dir.clone()) {
        Some(d) => Ok(d),
        None => crate::bad_input!("no state directory: give --state DIR or stateDir in the spec"),
    }
}

fn manager(
    spec: &flightdeck::release::spec::CanarySpec,
    dir: PathBuf,
) -> anyhow::Result<flightdeck::release::controller::CanaryManager> {
    use flightdeck::release::controller::CanaryManager;
    use flightdeck::release::ledger::Ledger;
    Ok(CanaryManager::new(
        Ledger::open(dir)?,
        spec.router.build(),
        spec.progression.clone(),
    )
    .with_rollback_window(spec.rollback_window)
    .with_hooks(spec.hooks.clone()))
}

/// Writes one line to standard output (a closed pipe is not an error).
fn say(line: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{line}") {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

fn describe(s: &flightdeck::release::ledger::ReleaseState) -> String {
    format!(
        "{} {:?}: canary {} at {}% over stable {} (failed checks {}){}",
        s.release,
        s.phase,
        s.canary_version,
        s.weight,
        s.stable_version,
        s.failed_checks,
        s.reason
            .as_deref()
            .map(|r| format!(" — {r}"))
            .unwrap_or_default()
    )
}

fn run_release(a: RunArgs) -> anyhow::Result<()> {
    use flightdeck::release::ledger::ReleasePhase;
    use flightdeck::release::run::AnalysisRun;
    let spec = load_spec(&a.spec)?;
    let dir = state_dir(a.state, &spec)?;
    let m = manager(&spec, dir)?;
    let running = m.ledger().state()?.is_some_and(|s| !s.phase.is_terminal());
    if !running {
        let id = a
            .release
            .unwrap_or_else(|| format!("{}-{}", spec.name, spec.canary_version));
        m.start(&id, &spec.stable_version, &spec.canary_version)?;
    }
    let stop = stop_on_signal();
    let mut analysis = AnalysisRun::new(spec.metrics.clone());
    let mut last = String::new();
    let s = m.run(
        &mut analysis,
        &|| stop.load(std::sync::atomic::Ordering::SeqCst),
        |s| {
            let line = describe(s);
            if line != last {
                let _ = writeln!(std::io::stderr(), "{line}");
                last = line;
            }
        },
    )?;
    say(&describe(&s))?;
    match s.phase {
        ReleasePhase::Succeeded => Ok(()),
        ReleasePhase::RolledBack | ReleasePhase::Failed => Err(crate::Finding.into()),
        // Stopped by a signal: the ledger holds the state; run again to resume.
        _ => Ok(()),
    }
}

fn guard(a: GuardArgs) -> anyhow::Result<()> {
    use flightdeck::release::guard::{GuardOptions, run};
    use flightdeck::release::ledger::ReleasePhase;
    if !(a.objective > 0.0 && a.objective < 100.0) {
        crate::bad_input!(
            "--objective {}: a percentage between 0 and 100",
            a.objective
        );
    }
    if !a.flags.is_file() {
        crate::bad_input!("--flags {}: no such file", a.flags.display());
    }
    if a.interval < std::time::Duration::from_millis(100)
        || a.interval > std::time::Duration::from_secs(3600)
    {
        crate::bad_input!("--interval {:?}: use 100ms to 1h", a.interval);
    }
    if a.bake
        .is_some_and(|b| b > std::time::Duration::from_secs(86_400))
    {
        crate::bad_input!("--bake: at most 24h");
    }
    let url = a.service.trim_end_matches('/');
    if !url.starts_with("http://") {
        crate::bad_input!("--service {}: an http:// URL", crate::shown(url));
    }
    let state = a.state.unwrap_or_else(|| {
        a.flags
            .parent()
            .unwrap_or(Path::new("."))
            .join(format!(".guard-{}", a.flag))
    });
    let mut opts = GuardOptions::new(&a.flag, a.flags.clone(), &format!("{url}/metrics"), state);
    opts.steps = a.steps;
    opts.interval = a.interval;
    opts.bake = a.bake.unwrap_or(a.interval * 5);
    opts.objective = a.objective;
    opts.min_requests = a.min_requests;
    // Fail on bad steps before anything moves.
    flightdeck::release::guard::manager(&opts)?;
    let stop = stop_on_signal();
    let mut last = String::new();
    let s = run(
        &opts,
        &|| stop.load(std::sync::atomic::Ordering::SeqCst),
        &mut |s| {
            let line = describe(s);
            if line != last {
                let _ = writeln!(std::io::stderr(), "{line}");
                last = line;
            }
        },
    )?;
    if a.json {
        say(&serde_json::to_string_pretty(&s)?)?;
    } else {
        say(&describe(&s))?;
    }
    match s.phase {
        ReleasePhase::Succeeded => Ok(()),
        ReleasePhase::RolledBack | ReleasePhase::Failed => Err(crate::Finding.into()),
        _ => Ok(()),
    }
}

/// A flag set by SIGTERM or Ctrl-C: long runs stop between ticks, the
/// ledger keeps their state, and running again resumes.
fn stop_on_signal() -> std::sync::Arc<std::sync::atomic::AtomicBool> {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = std::sync::Arc::clone(&stop);
    std::thread::spawn(move || {
        if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            rt.block_on(flightdeck_service::shutdown_signal());
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    });
    stop
}

fn status(a: StateArgs) -> anyhow::Result<()> {
    let ledger = flightdeck::release::ledger::Ledger::open(&a.state)?;
    let Some(s) = ledger.state()? else {
        crate::bad_input!("{}: no release has started here", a.state.display());
    };
    if a.json {
        say(&serde_json::to_string_pretty(&s)?)?;
    } else {
        say(&describe(&s))?;
    }
    Ok(())
}

fn history(a: StateArgs) -> anyhow::Result<()> {
    let ledger = flightdeck::release::ledger::Ledger::open(&a.state)?;
    let entries = ledger.entries()?;
    let mut out = std::io::stdout().lock();
    for e in &entries {
        if a.json {
            serde_json::to_writer(&mut out, e)?;
            writeln!(out)?;
        } else {
            writeln!(
                out,
                "{:>4} {} {:<10} {:<12} {:>3}%{}",
                e.seq,
                e.time_ms,
                format!("{:?}", e.kind).to_lowercase(),
                format!("{:?}", e.phase),
                e.weight,
                e.reason
                    .as_deref()
                    .map(|r| format!("  {r}"))
                    .unwrap_or_default()
            )?;
        }
    }
    Ok(())
}

fn command(a: CommandArgs, what: &str) -> anyhow::Result<()> {
    let spec = load_spec(&a.spec)?;
    let dir = state_dir(a.state, &spec)?;
    let m = manager(&spec, dir)?;
    let actor = a
        .actor
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "unknown".into());
    let s = match what {
        "promote" => m.promote(&actor)?,
        "abort" => m.abort(&actor, &a.reason)?,
        "rollback" => m.rollback(&actor, &a.reason)?,
        _ => m.resume(&actor)?,
    };
    say(&describe(&s))
}

fn manifests(a: ManifestArgs) -> anyhow::Result<()> {
    use flightdeck::release::k8s::{K8sOptions, argo_manifests, default_metrics};
    use flightdeck::release::progression::{Progression, Steps};
    let dns = |s: &str| {
        !s.is_empty()
            && s.len() <= 50
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !s.starts_with('-')
            && !s.ends_with('-')
    };
    if !dns(&a.name) {
        crate::bad_input!(
            "--name {}: use 1 to 50 of a-z 0-9 - (a Kubernetes name), not starting or ending with -",
            crate::shown(&a.name)
        );
    }
    if a.image.trim().is_empty() || a.image.len() > 512 || a.image.chars().any(char::is_whitespace)
    {
        crate::bad_input!(
            "--image {}: give an image reference without spaces",
            crate::shown(&a.image)
        );
    }
    let version = a
        .image
        .rsplit_once(':')
        .map(|(_, tag)| tag)
        .filter(|t| !t.contains('/'))
        .unwrap_or("latest")
        .to_owned();
    let options = K8sOptions {
        image: a.image.clone(),
        replicas: a.replicas,
        namespace: a.namespace.clone(),
        judge_url: a.judge_url.clone(),
        ..K8sOptions::default()
    };
    let m = match &a.spec {
        Some(path) => {
            let spec = load_spec(path)?;
            argo_manifests(
                &a.name,
                &version,
                &spec.progression,
                &spec.metrics,
                &options,
            )
        }
        None => {
            let progression = Progression {
                interval: std::time::Duration::from_secs(60),
                steps: Steps::Explicit(vec![5, 25, 100]),
                ..Progression::default()
            };
            let mut metrics = default_metrics(&a.name, &a.prometheus, progression.interval)
                .map_err(anyhow::Error::msg)?;
            metrics.push(judge_metric(&a.prometheus, progression.interval)?);
            argo_manifests(&a.name, &version, &progression, &metrics, &options)
        }
    }
    .map_err(anyhow::Error::msg)?;
    for s in &m.skipped {
        let _ = writeln!(std::io::stderr(), "warning: {s}");
    }
    match a.out {
        Some(dir) => {
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create --out {}", dir.display()))?;
            for (file, text) in m.files() {
                crate::files::write_atomic(&dir.join(file), text.as_bytes())?;
                say(&dir.join(file).display().to_string())?;
            }
            Ok(())
        }
        None => {
            std::io::stdout().write_all(m.all().as_bytes())?;
            Ok(())
        }
    }
}

/// The judge as an analysis metric over the built-in Kayenta config (the
/// error ratio, critical, and mean latency of the answers).
fn judge_metric(
    prometheus: &str,
    interval: std::time::Duration,
) -> anyhow::Result<flightdeck::release::run::AnalysisMetric> {
    use flightdeck::release::analysis::MetricSpec;
    use flightdeck::release::provider::{JudgeProvider, Prometheus, Provider};
    let config = CanaryConfig::from_json(DEFAULT_KAYENTA, "built-in judge config")?;
    let mut spec = MetricSpec::new("judge");
    spec.interval = Some(interval);
    Ok(flightdeck::release::run::AnalysisMetric::new(
        spec,
        Provider::Judge(Box::new(JudgeProvider {
            prometheus: Prometheus::new(prometheus, std::time::Duration::from_secs(10)),
            config,
            baseline: "role=\"stable\"".into(),
            canary: "role=\"canary\"".into(),
            lookback: std::time::Duration::from_secs(300),
            step: std::time::Duration::from_secs(15),
            min_samples: 5,
        })),
    ))
}

/// The judge's built-in Kayenta config: the answers' error ratio (critical)
/// and mean latency, canary against stable.
const DEFAULT_KAYENTA: &str = r#"{
  "name": "flightdeck-default",
  "metrics": [
    {"name": "error_ratio", "groups": ["errors"],
     "query": {"type": "prometheus", "customInlineTemplate": "PromQL:sum(rate(http_server_requests_total{http_route=\"/v1/answer\",status_class=\"5xx\",${scope}}[1m])) / sum(rate(http_server_requests_total{http_route=\"/v1/answer\",${scope}}[1m]))"},
     "analysisConfigurations": {"canary": {"direction": "increase", "critical": true}}},
    {"name": "latency_mean", "groups": ["latency"],
     "query": {"type": "prometheus", "customInlineTemplate": "PromQL:sum(rate(http_server_request_duration_seconds_sum{http_route=\"/v1/answer\",${scope}}[1m])) / sum(rate(http_server_request_duration_seconds_count{http_route=\"/v1/answer\",${scope}}[1m]))"},
     "analysisConfigurations": {"canary": {"direction": "increase", "effectSize": {"allowedIncrease": 1.2}}}}
  ],
  "classifier": {"groupWeights": {"errors": 70, "latency": 30}, "scoreThresholds": {"pass": 95, "marginal": 75}}
}"#;

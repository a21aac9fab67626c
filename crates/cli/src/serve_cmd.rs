//! `flightdeck serve`: the reference RAG service.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use flightdeck_service::{Faults, Service, ServiceOptions};

/// Arguments of `flightdeck serve`.
#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on; anything but loopback needs an admin token.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    listen: SocketAddr,
    /// Token for the mutating endpoints (/admin/*); or FLIGHTDECK_ADMIN_TOKEN.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "FLIGHTDECK_ADMIN_TOKEN",
        hide_env_values = true
    )]
    admin_token: Option<String>,
    /// Multiplies every simulated latency; 0 makes the stages instant.
    #[arg(long, default_value_t = 1.0)]
    time_scale: f64,
    /// Seed for the simulated latencies, tokens and scores.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// A fault from the start: KIND=VALUE (error_rate, added_latency_ms, health_check_failure, dependency_failure).
    #[arg(long = "fault", value_name = "KIND=VALUE")]
    faults: Vec<String>,
    /// A flags file to watch (live reload, last good kept; kills beside it). Default: built-in flags.
    #[arg(long, value_name = "FILE")]
    flags: Option<PathBuf>,
    /// Serve POST /test, the W3C Trace Context harness protocol (calls out to loopback URLs only).
    #[arg(long)]
    w3c_test_endpoint: bool,
    /// Seconds in-flight requests get to finish after SIGTERM or Ctrl-C.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    grace_secs: u64,
    /// Directory for traces.jsonl, logs.jsonl, exposures.jsonl and results.jsonl (default: in memory).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Record this share (0 to 1) of the traces, chosen by trace id, as golden cases in OUT/golden when the service stops (needs --out).
    #[arg(long, value_name = "RATE", requires = "out", default_value_t = 0.0)]
    golden_sample: f64,
    /// The build's version, exported as flightdeck_build_info{version} (a release labels stable and canary by it).
    #[arg(long, value_name = "VERSION", default_value = env!("CARGO_PKG_VERSION"))]
    build_version: String,
    /// A settings file (TOML). FLIGHTDECK_* and OTEL_* variables still apply on top.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Threads serving connections, each with its own runtime (default: the machine's cores).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    threads: Option<u16>,
}

pub(crate) fn run(args: ServeArgs) -> anyhow::Result<()> {
    if !(args.time_scale.is_finite() && (0.0..=100.0).contains(&args.time_scale)) {
        crate::bad_input!(
            "--time-scale {}: must be between 0 and 100",
            args.time_scale
        );
    }
    if !args.listen.ip().is_loopback() && args.admin_token.is_none() {
        crate::bad_input!(
            "--listen {}: binding a non-loopback address needs an admin token (--admin-token or FLIGHTDECK_ADMIN_TOKEN)",
            args.listen
        );
    }
    if let Some(t) = &args.admin_token
        && t.len() < 16
    {
        crate::bad_input!(
            "--admin-token: use at least 16 characters (got {})",
            t.len()
        );
    }
    if args.build_version.is_empty()
        || args.build_version.len() > 64
        || !args
            .build_version
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-+".contains(&b))
    {
        crate::bad_input!(
            "--build-version {}: use 1 to 64 of A-Z a-z 0-9 . _ - +",
            crate::shown(&args.build_version)
        );
    }
    if !(0.0..=1.0).contains(&args.golden_sample) {
        crate::bad_input!(
            "--golden-sample {}: a share between 0 and 1",
            args.golden_sample
        );
    }
    let mut faults = Faults::default();
    for f in &args.faults {
        faults
            .set(f)
            .map_err(|e| crate::BadInput::new(format!("--fault {e}")))?;
    }
    let loaded = crate::files::load_settings(args.config.as_deref())?;
    let mut settings = loaded.observability;
    settings.metrics_enabled = true;
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create --out {}", dir.display()))?;
        crate::files::record_to(
            &mut settings,
            &dir.join("traces.jsonl"),
            &dir.join("logs.jsonl"),
        );
    }
    let guard = flightdeck::init(settings.clone()).context("cannot set up observability")?;
    let options = ServiceOptions {
        time_scale: args.time_scale,
        seed: args.seed,
        admin_token: args.admin_token.clone(),
        faults,
        w3c_test_endpoint: args.w3c_test_endpoint,
        data_dir: args.out.clone(),
        flags_file: args.flags.clone(),
        version: args.build_version.clone(),
        ..ServiceOptions::default()
    };
    let service = Service::new(
        options,
        guard.metrics().clone(),
        guard.prometheus().cloned(),
        &loaded.slo,
    )
    .map_err(crate::BadInput::new)?;
    let threads = args
        .threads
        .and_then(|n| std::num::NonZeroUsize::new(usize::from(n)))
        .or_else(|| std::thread::available_parallelism().ok())
        .unwrap_or(std::num::NonZeroUsize::MIN);
    let grace = Duration::from_secs(args.grace_secs);
    let listener = std::net::TcpListener::bind(args.listen)
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    let _ = writeln!(
        std::io::stderr(),
        "listening on http://{addr} (POST /v1/answer, GET /metrics, /healthz, /readyz, /api/dashboard)"
    );
    let served = flightdeck_service::serve_on_threads(
        Arc::clone(&service),
        listener,
        threads,
        flightdeck_service::shutdown_signal(),
        grace,
    )
    .context("the server stopped");
    service.flush(Duration::from_secs(10));
    let report = guard.shutdown(Duration::from_secs(10));
    let _ = writeln!(
        std::io::stderr(),
        "stopped after {} answers{}",
        service.answers(),
        match &report {
            Ok(r) => format!(
                "; {} spans and {} log lines written",
                r.spans.written, r.logs.written
            ),
            Err(e) => format!("; not everything was flushed: {e}"),
        }
    );
    served?;
    report.context("not every span and log line reached its file")?;
    if let Some(dir) = args.out.as_deref().filter(|_| args.golden_sample > 0.0) {
        capture_golden(dir, args.golden_sample)?;
    }
    Ok(())
}

/// Records the sampled share of `dir/traces.jsonl` as golden cases in
/// `dir/golden` (keyed by correlation id), for `golden check` later.
fn capture_golden(dir: &std::path::Path, rate: f64) -> anyhow::Result<()> {
    use flightdeck::golden::{CaseKey, Recorder, Store, sampled};
    let mut rec = Recorder::new(CaseKey::CorrelationId, 1);
    let mut seen = 0usize;
    crate::golden::for_each_trace(&dir.join("traces.jsonl"), |t| {
        seen += 1;
        if sampled(&t.trace_id, rate) {
            rec.add(t)?;
        }
        Ok(())
    })?;
    let (cases, _) = rec.finish();
    let store = Store::new(dir.join("golden"));
    for case in &cases {
        store.write(case)?;
    }
    let _ = writeln!(
        std::io::stderr(),
        "recorded {} of {seen} traces as golden cases (sample {rate}) in {}",
        cases.len(),
        dir.join("golden").display()
    );
    Ok(())
}

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
}

pub(crate) fn run(cmd: ReleaseCommand) -> anyhow::Result<()> {
    match cmd {
        ReleaseCommand::Judge(a) => judge(a),
    }
}

/// The most bytes a config or pairs file may have.
const MAX_INPUT_BYTES: u64 = 256 * 1024 * 1024;

fn read_input(path: &Path) -> anyhow::Result<String> {
    use std::io::Read;
    let mut text = String::new();
    if path == Path::new("-") {
        std::io::stdin()
            .take(MAX_INPUT_BYTES + 1)
            .read_to_string(&mut text)
            .context("cannot read standard input")?;
    } else {
        std::fs::File::open(path)
            .with_context(|| format!("cannot open {}", path.display()))?
            .take(MAX_INPUT_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(|e| crate::BadInput::new(format!("{}: {e}", path.display())))?;
    }
    if text.len() as u64 > MAX_INPUT_BYTES {
        crate::bad_input!(
            "{}: larger than {} MiB",
            path.display(),
            MAX_INPUT_BYTES >> 20
        );
    }
    Ok(text)
}

fn judge(a: JudgeArgs) -> anyhow::Result<()> {
    let config_text = read_input(&a.config)?;
    let config = CanaryConfig::from_json(&config_text, &a.config.display().to_string())?;
    if let Some(addr) = a.serve {
        return serve(config, addr);
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

fn serve(config: CanaryConfig, addr: SocketAddr) -> anyhow::Result<()> {
    use axum::body::Bytes;
    use axum::extract::{DefaultBodyLimit, State};
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    use axum::routing::{get, post};
    let config = Arc::new(config);
    let app = axum::Router::new()
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
        axum::serve(listener, app)
            .with_graceful_shutdown(flightdeck_service::shutdown_signal())
            .await
            .context("the judge server stopped")
    })
}

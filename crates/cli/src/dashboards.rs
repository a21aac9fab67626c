//! `flightdeck dashboards`: dashboards for tools teams already run.

use std::io::Write;
use std::path::PathBuf;

use flightdeck_service::grafana::{GrafanaOptions, dashboard};

/// `flightdeck dashboards …`
#[derive(Debug, clap::Subcommand)]
pub(crate) enum DashboardsCommand {
    /// Write a Grafana dashboard (JSON model) with the same panels as the service's /dashboard page, over its Prometheus metrics.
    Grafana(GrafanaArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct GrafanaArgs {
    /// Write to FILE (atomically) instead of standard output.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// The dashboard's title.
    #[arg(long, default_value = "Flightdeck RAG service")]
    title: String,
    /// The dashboard's uid (re-importing replaces the dashboard with this uid).
    #[arg(long, default_value = "flightdeck-rag")]
    uid: String,
    /// The Prometheus job the $job variable selects by default.
    #[arg(long, default_value = "flightdeck")]
    job: String,
}

pub(crate) fn run(cmd: DashboardsCommand) -> anyhow::Result<()> {
    match cmd {
        DashboardsCommand::Grafana(a) => grafana(a),
    }
}

fn grafana(a: GrafanaArgs) -> anyhow::Result<()> {
    // Grafana uids are at most 40 characters of [A-Za-z0-9_-].
    if a.uid.is_empty()
        || a.uid.len() > 40
        || !a
            .uid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        crate::bad_input!(
            "--uid {}: use 1 to 40 of A-Z a-z 0-9 - _ (Grafana's rule)",
            crate::shown(&a.uid)
        );
    }
    if a.title.trim().is_empty() || a.title.len() > 200 {
        crate::bad_input!("--title: use 1 to 200 characters");
    }
    if a.job.is_empty() || a.job.len() > 200 {
        crate::bad_input!("--job: use 1 to 200 characters");
    }
    let d = dashboard(&GrafanaOptions {
        title: a.title,
        uid: a.uid,
        job: a.job,
    });
    let mut text = serde_json::to_string_pretty(&d)?;
    text.push('\n');
    match a.out {
        Some(path) => crate::files::write_atomic(&path, text.as_bytes()),
        None => {
            std::io::stdout().write_all(text.as_bytes())?;
            Ok(())
        }
    }
}

//! The `flightdeck` command.
//!
//! * `flightdeck demo`: runs simulated RAG requests (embed → retrieve →
//!   rerank → generate) instrumented only through Flightdeck's public API,
//!   writes `traces.jsonl`, `logs.jsonl`, `dashboard.json` and `metrics.prom`,
//!   and prints the dashboard.
//! * `flightdeck slo rules|validate`: Sloth-compatible Prometheus rules from
//!   SLO specs.
//! * `flightdeck stats ...`: t-tests, Mann-Whitney, chi-square, SRM, power and
//!   proportions on files of numbers, with `--json` for other tools.

mod demo;
mod experiments;
mod files;
mod flags;
mod serve;
mod slo;
mod stats;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Flightdeck: see what your service does, change it safely, ship it without fear.
#[derive(Debug, Parser)]
#[command(name = "flightdeck", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run simulated RAG requests and show what Flightdeck records.
    Demo(demo::DemoArgs),
    /// Statistical tests for experiments and canaries (scipy/statsmodels/R-exact).
    #[command(subcommand)]
    Stats(stats::StatsCommand),
    /// SLOs: generate Sloth-compatible Prometheus rules, validate specs.
    #[command(subcommand)]
    Slo(slo::SloCommand),
    /// Experiments: deterministic assignment, SRM checks on exposure logs.
    #[command(subcommand)]
    Experiments(experiments::ExperimentsCommand),
    /// Feature flags: evaluate, validate, kill and restore.
    #[command(subcommand)]
    Flags(flags::FlagsCommand),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() => {
            // Bad arguments: one line naming the problem (other tools parse our stderr).
            let rendered = e.render().to_string();
            let line = rendered
                .lines()
                .take_while(|l| !l.trim().is_empty())
                .map(str::trim)
                .collect::<Vec<_>>()
                .join(" ");
            let _ = std::io::Write::write_fmt(&mut std::io::stderr(), format_args!("{line}\n"));
            return ExitCode::from(2);
        }
        Err(e) => {
            // --help and --version.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
    };
    let result = match cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Stats(cmd) => stats::run(cmd),
        Command::Slo(cmd) => slo::run(cmd),
        Command::Experiments(cmd) => experiments::run(cmd),
        Command::Flags(cmd) => flags::run(cmd),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<Finding>().is_some() => {
            // The command ran and reported a negative finding on stdout.
            ExitCode::from(3)
        }
        Err(e) => {
            // `{:#}` prints the whole context chain on one line.
            let _ =
                std::io::Write::write_fmt(&mut std::io::stderr(), format_args!("error: {e:#}\n"));
            ExitCode::FAILURE
        }
    }
}

/// A check that ran and found a problem (an SRM, say): already reported on
/// stdout, exits 3 so scripts can tell it from a failure to run (1) or a
/// usage error (2).
#[derive(Debug)]
pub(crate) struct Finding;

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("check failed")
    }
}

impl std::error::Error for Finding {}

/// The default output directory of `demo`.
fn default_out() -> PathBuf {
    PathBuf::from("flightdeck-out")
}

//! The `flightdeck` command.
//!
//! * `flightdeck demo`: runs simulated RAG requests (embed → retrieve →
//!   rerank → generate) instrumented only through Flightdeck's public API,
//!   writes `traces.jsonl`, `logs.jsonl`, `dashboard.json` and `metrics.prom`,
//!   and prints the dashboard.

mod demo;
mod files;
mod serve;

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => demo::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}` prints the whole context chain on one line.
            let _ =
                std::io::Write::write_fmt(&mut std::io::stderr(), format_args!("error: {e:#}\n"));
            ExitCode::FAILURE
        }
    }
}

/// The default output directory of `demo`.
fn default_out() -> PathBuf {
    PathBuf::from("flightdeck-out")
}

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
//! * `flightdeck golden record|check|bless|show|diff`: golden traces, with
//!   JSON and JUnit reports for CI.

mod dashboards;
mod demo;
mod experiments;
mod files;
mod flags;
mod golden;
mod load;
mod release;
mod serve;
mod serve_cmd;
mod slo;
mod stats;

/// mimalloc, a thread-caching allocator, for the whole process. Under glibc's
/// allocator the OTel export thread frees the span data each request's thread
/// allocated, and the two contend on the allocator's arena lock: in a profile
/// of the service's request path, futex waits and wakes under `malloc` and
/// `free` were 18 % of the request thread's time, and the instrumentation
/// overhead per request fell from 31.5 to 16.0 µs under mimalloc
/// (docs/benchmarks.md, `overhead` against `overhead_mimalloc`).
///
/// Built without transparent huge pages (the workspace turns on mimalloc's
/// `no_thp`): faults in its huge-page arena zeroed 2 MiB at a time, some
/// after a compaction, and stalled a thread for up to tens of milliseconds;
/// the load test's p99 fell from 83–217 ms to 12.5–13.6 ms without them
/// (ADR 0024).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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

/// The exit codes, shown in every `--help`.
const EXIT_CODES: &str = "Exit codes (every command): 0 ok, 1 could not run (I/O, network, a port in use), \
2 bad arguments or input (names the value and where it is), 3 a finding (an SRM, a failed check).";

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
    /// Golden traces: record, check (JSON, JUnit), bless, show, diff.
    #[command(subcommand)]
    Golden(golden::GoldenCommand),
    /// Run the reference RAG service (HTTP; graceful shutdown on SIGTERM or Ctrl-C).
    Serve(serve_cmd::ServeArgs),
    /// Canary releases: the Kayenta judge.
    #[command(subcommand)]
    Release(release::ReleaseCommand),
    /// Dashboards for the tools teams already run (Grafana).
    #[command(subcommand)]
    Dashboards(dashboards::DashboardsCommand),
    /// Open-loop load at a fixed rate, latency from each request's intended send time (HDR histogram).
    Load(load::LoadArgs),
    /// Run a program and restart it when it crashes (exit other than 0), with backoff; how local environments keep their processes up.
    Supervise(SuperviseArgs),
}

#[derive(Debug, clap::Args)]
struct SuperviseArgs {
    /// Restarts allowed after crashes (the count resets after a minute of running).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(0..=1000))]
    restarts: u32,
    /// The program and its arguments (after --).
    #[arg(last = true, required = true, value_name = "PROGRAM")]
    argv: Vec<std::ffi::OsString>,
}

/// `flightdeck supervise`: exits with the program's last exit code.
fn supervise(a: SuperviseArgs) -> anyhow::Result<()> {
    match flightdeck::release::env::process::supervise(&a.argv, a.restarts) {
        Ok(0) => Ok(()),
        Ok(code) => std::process::exit(code),
        Err(e) => Err(anyhow::anyhow!(e)),
    }
}

fn main() -> ExitCode {
    let cli = match parse() {
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
        Command::Golden(cmd) => golden::run(cmd),
        Command::Serve(args) => serve_cmd::run(args),
        Command::Load(args) => load::run(args),
        Command::Dashboards(cmd) => dashboards::run(cmd),
        Command::Release(cmd) => release::run(cmd),
        Command::Supervise(args) => supervise(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let code = exit_code(&e);
            if code != 3 {
                // `{:#}` prints the whole context chain on one line.
                let _ = std::io::Write::write_fmt(
                    &mut std::io::stderr(),
                    format_args!("error: {}\n", one_line(&e)),
                );
            }
            ExitCode::from(code)
        }
    }
}

/// Parses the arguments, with the exit codes after every command's help.
fn parse() -> Result<Cli, clap::Error> {
    use clap::{CommandFactory, FromArgMatches};
    fn with_exit_codes(cmd: clap::Command) -> clap::Command {
        cmd.after_help(EXIT_CODES).mut_subcommands(with_exit_codes)
    }
    let matches = with_exit_codes(Cli::command()).try_get_matches()?;
    Cli::from_arg_matches(&matches)
}

/// The exit code convention every command follows (also in `--help`):
/// 0 ok, 1 could not run, 2 bad arguments or input, 3 a finding.
fn exit_code(e: &anyhow::Error) -> u8 {
    use flightdeck::{experiments, flags, obs, slo};
    for cause in e.chain() {
        if cause.is::<Finding>() {
            return 3;
        }
        if cause.is::<BadInput>()
            || cause.is::<slo::SpecError>()
            || cause.is::<experiments::LoadError>()
            || cause.is::<obs::SettingsError>()
            || cause.is::<flightdeck::stats::StatsError>()
            || cause.is::<flags::DecryptError>()
            || cause
                .downcast_ref::<flightdeck::release::ReleaseError>()
                .is_some_and(flightdeck::release::ReleaseError::is_input)
        {
            return 2;
        }
        if let Some(l) = cause.downcast_ref::<flags::LoadError>() {
            return match l {
                flags::LoadError::Read { source, .. }
                    if source.kind() != std::io::ErrorKind::NotFound =>
                {
                    1
                }
                _ => 2,
            };
        }
        if let Some(i) = cause.downcast_ref::<flightdeck::InitError>() {
            // Bad settings or OTEL_* variables are bad input; a second
            // init or an unopenable file is a failure to run.
            return if i.is_bad_input() { 2 } else { 1 };
        }
        if let Some(r) = cause.downcast_ref::<experiments::ResultsError>() {
            return match r {
                experiments::ResultsError::BadRecord { .. } => 2,
                experiments::ResultsError::Io { source, .. }
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    2
                }
                _ => 1,
            };
        }
        if let Some(g) = cause.downcast_ref::<flightdeck::golden::GoldenError>() {
            return match g {
                flightdeck::golden::GoldenError::Io { source, .. }
                    if source.kind() != std::io::ErrorKind::NotFound =>
                {
                    1
                }
                _ => 2,
            };
        }
        if let Some(j) = cause.downcast_ref::<serde_json::Error>() {
            return if j.is_io() { 1 } else { 2 };
        }
    }
    1
}

/// The error chain on one line, each cause once: a library error that
/// already prints its source is not followed by that source again.
fn one_line(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

/// Bad arguments or input, reported as such (exit 2).
#[derive(Debug)]
pub(crate) struct BadInput(String);

impl BadInput {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl std::fmt::Display for BadInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadInput {}

/// Returns early with a [`BadInput`] error.
#[macro_export]
macro_rules! bad_input {
    ($($t:tt)*) => {
        return Err($crate::BadInput::new(format!($($t)*)).into())
    };
}

/// A value from the user as it may be shown in a message: quoted, control
/// characters and quotes escaped, at most 64 bytes of it.
pub(crate) fn shown(value: &str) -> String {
    flightdeck::obs::shown(value)
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

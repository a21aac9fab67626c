//! See <https://github.com/matklad/cargo-xtask/>.
//!
//! `cargo xtask ci` runs everything CI runs (and installs what the tests
//! need); `cargo xtask tidy` checks the layer rules and crate hygiene of
//! `docs/style.md`.

mod ci;
mod deploy;
mod docker;
mod eval_gate;
mod fuzz;
mod golden;
mod lint;
mod pipeline;
mod rehearse;
mod release;
mod smoke;
mod tidy;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

const USAGE: &str = "usage: cargo xtask <task> [arguments]

Repository tasks:

  ci                 install test dependencies when missing, then fmt check, clippy -D warnings,
                     tests, docs with -D warnings, tidy, hadolint on the Dockerfile, the demo's
                     golden traces and the fuzz smoke run
  tidy               check the crate layer rules and crate hygiene (docs/style.md §2, §3)
  install-test-deps  install what the tests need (prometheus, promtool, chromium, haproxy) when missing
  fuzz [--seconds N | --runs N] [--no-asan] [TARGET...]
                     run the cargo-fuzz targets in fuzz/ for N seconds each (default 20),
                     or for N inputs from seed 1 (reproducible; what CI runs)
  golden [--bless]   check the demo pipeline against tests/golden/demo (JUnit in target/golden);
                     --bless re-records the goldens after an intended change
  docker-build [--tag NAME:VERSION]
                     build the service image from Dockerfile with docker or podman, or say
                     exactly why no engine can here (exit 1)
  docker-push --tag REGISTRY/NAME:VERSION
                     push the image docker-build made (same engine rules)

Delivery (local environments under target/flightdeck/, or --root DIR / XTASK_DEPLOY_ROOT;
docs/ci-cd-pipeline.md):
  build [--version V] [--binary PATH] [--profile release|dev]
                     build the service and add it to the artifact store (manifest: version,
                     commit, sha256); the version defaults to <crate version>+<commit>
  deploy-staging [--version V]
                     staging runs that build (default: a fresh build): ready, smoke-checked,
                     recorded; the old instance drains and stops
  eval-gate [--thresholds FILE] [--out DIR]
                     golden suite on the staging build + a short load against staging, compared
                     with config/eval_thresholds.json; Markdown and JSON report (exit 3 if it fails)
  deploy-canary [--version V] [--interval D] [--steps 5,25] [--fault KIND=VALUE]
                     start a canary of staging's build in production (HAProxy + Prometheus +
                     steady traffic) and move it through the steps while the judge, the SLO burn
                     and readiness hold; it waits at the last step for approval, or rolls back
                     on its own (exit 3)
  deploy-prod --approve [--approver NAME] [--version V]
                     approve the waiting canary and promote it (or deploy production's first
                     build); without --approve it asks on a terminal and refuses otherwise
  rollback --env staging|production [--to VERSION] [--reason R]
                     abort a running release (traffic on stable at once), or return to the
                     version that served before (or VERSION)
  canary-health [--json]
                     one analysis of the running canary now (exit 3 if it fails)
  deploy-status [--env E] [--json]
                     versions, health, processes (from the ledger and pid records)
  deploy-history --env E [--json]
                     every deploy, step, analysis, approval and rollback in the ledger
  pipeline [--approve --approver NAME] [--skip-tests]
                     build -> test (cargo xtask ci) -> staging -> eval gate -> canary ->
                     production, stopping at the first failure with the reason
  release [patch|minor|major|VERSION] [--execute]
                     version bump, changelog from the commits since the last tag, and a tag;
                     a dry run that changes nothing unless --execute
  down               stop every process this checkout's environments run
  rehearse-rollback [--scenario NAME | --all] [--non-interactive] [--json FILE] [--notes FILE]
                     break a canary in each of the six ways (and a healthy control) in a fresh
                     local production, let the pipeline roll it back, and measure detection,
                     rollback, failed requests and stable's availability (docs/rollback-playbook.md);
                     report with timeline pictures under target/flightdeck/rehearsal/runs/
  deploy-smoke       the whole sequence above on a scratch workspace (target/flightdeck-ci) with
                     the debug build; `ci` runs it

Common deploy flags: --root DIR, --interval D (default 2s), --steps 5,25, --time-scale X (0.2),
--traffic-rps N (40), --actor NAME.

Exit codes: 0 ok, 1 could not run, 2 bad arguments or input, 3 a finding (a failed gate,
a rolled-back canary).";

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            let code = exit_code(&e);
            if code != 3 {
                say(&format!("error: {e:#}"));
            }
            std::process::ExitCode::from(code)
        }
    }
}

/// 0 ok, 1 could not run, 2 bad arguments or input, 3 a finding.
fn exit_code(e: &anyhow::Error) -> u8 {
    for cause in e.chain() {
        if cause.is::<Finding>() {
            return 3;
        }
        if cause.is::<BadArgs>()
            || cause
                .downcast_ref::<flightdeck_release::ReleaseError>()
                .is_some_and(|r| {
                    r.is_input() || matches!(r, flightdeck_release::ReleaseError::Conflict(_))
                })
        {
            return 2;
        }
    }
    1
}

/// Bad arguments or input (exit 2).
#[derive(Debug)]
pub(crate) struct BadArgs(pub(crate) String);

impl std::fmt::Display for BadArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadArgs {}

/// A check that ran and failed, already reported (exit 3).
#[derive(Debug)]
pub(crate) struct Finding;

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a check failed")
    }
}

impl std::error::Error for Finding {}

/// Prints a result line on stdout (what other tools read).
pub(crate) fn print(msg: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout(), "{msg}");
}

fn run() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = project_root();
    std::env::set_current_dir(&root).with_context(|| format!("cannot cd to {}", root.display()))?;
    let rest = args.get(1..).unwrap_or_default();
    match args.first().map(String::as_str) {
        Some("ci") => ci::run(&root),
        Some("tidy") => tidy::run(&root),
        Some("install-test-deps") => ci::install_test_deps(),
        Some("fuzz") => fuzz::run(&root, &args[1..]),
        Some("golden") => golden::run(&root, &args[1..]),
        Some("deploy-smoke") => smoke::run(&root),
        Some("docker-build") => docker::build(&root, &args[1..]),
        Some("docker-push") => docker::push(rest),
        Some("build") => deploy::build(&root, rest).map(|v| print(&v)),
        Some("deploy-staging") => deploy::deploy_staging(&root, rest),
        Some("deploy-canary") => deploy::deploy_canary(&root, rest),
        Some("deploy-prod") => deploy::deploy_prod(&root, rest),
        Some("rollback") => deploy::rollback(&root, rest),
        Some("canary-health") => deploy::canary_health(&root, rest),
        Some("deploy-status") => deploy::status(&root, rest),
        Some("deploy-history") => deploy::history(&root, rest),
        Some("down") => deploy::down(&root, rest),
        Some("eval-gate") => eval_gate::run(&root, rest),
        Some("pipeline") => pipeline::run(&root, rest),
        Some("release") => release::run(&root, rest),
        Some("rehearse-rollback") => rehearse::run(&root, rest),
        Some("-h" | "--help" | "help") | None => {
            say(USAGE);
            Ok(())
        }
        Some(other) => Err(BadArgs(format!("unknown task {other:?}\n{USAGE}")).into()),
    }
}

/// The workspace root: the parent of this crate's directory.
pub(crate) fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

/// Prints a progress line on stderr.
pub(crate) fn say(msg: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{msg}");
}

/// Runs a command, failing with the command line when it fails.
pub(crate) fn run_cmd(cmd: &mut Command) -> anyhow::Result<()> {
    let shown = format!("{cmd:?}");
    say(&format!("$ {shown}"));
    let status = cmd
        .status()
        .with_context(|| format!("cannot start {shown}"))?;
    if !status.success() {
        bail!("{shown} failed with {status}");
    }
    Ok(())
}

/// The output of a command, or an error naming it.
pub(crate) fn output_of(cmd: &mut Command) -> anyhow::Result<String> {
    let shown = format!("{cmd:?}");
    let out = cmd
        .output()
        .with_context(|| format!("cannot start {shown}"))?;
    if !out.status.success() {
        bail!("{shown} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8(out.stdout)?)
}

#[cfg(test)]
mod tests {
    /// Every Makefile target is one `cargo xtask TASK` (or cargo) line, and
    /// TASK is one this binary dispatches: the Makefile keeps no logic.
    #[test]
    fn makefile_targets_are_xtask_aliases() {
        let root = super::project_root();
        let make = std::fs::read_to_string(root.join("Makefile")).unwrap();
        let main = std::fs::read_to_string(root.join("xtask/src/main.rs")).unwrap();
        let mut seen = Vec::new();
        for line in make.lines().filter(|l| l.starts_with('\t')) {
            let cmd = line.trim();
            if let Some(rest) = cmd.strip_prefix("cargo xtask ") {
                let task = rest.split_whitespace().next().unwrap();
                assert!(
                    main.contains(&format!("Some(\"{task}\")")),
                    "the Makefile runs `cargo xtask {task}`, which xtask does not know"
                );
                seen.push(task.to_owned());
            } else {
                assert!(
                    cmd.starts_with("cargo run ") || cmd.starts_with("cargo fmt "),
                    "a Makefile recipe that is not an alias: {cmd}"
                );
            }
        }
        for seed in [
            "docker-build",
            "docker-push",
            "deploy-staging",
            "deploy-canary",
            "deploy-prod",
            "rollback",
            "canary-health",
            "rehearse-rollback",
            "deploy-status",
            "deploy-history",
        ] {
            assert!(
                seen.iter().any(|t| t == seed),
                "no Makefile target runs {seed}"
            );
        }
    }
}

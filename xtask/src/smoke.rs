//! The delivery pipeline end to end, as `cargo xtask ci` runs it on a
//! fresh clone: each task is this very binary run as `cargo xtask TASK`
//! would run it, against a scratch workspace (`target/flightdeck-ci`),
//! with the debug `flightdeck` the tests built as the deployed build.
//!
//! deploy-staging → deploy-status → eval-gate → deploy-prod --approve (the
//! first production build) → a new build through deploy-staging,
//! eval-gate, deploy-canary and deploy-prod --approve → rollback →
//! deploy-history → down, which must leave no process behind.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail, ensure};
use serde_json::Value;

use crate::say;

fn xtask(root: &Path, ws: &Path, args: &[&str]) -> anyhow::Result<String> {
    xtask_exit(root, ws, args, 0)
}

/// Runs a task that must exit with `code`; answers its stdout.
fn xtask_exit(root: &Path, ws: &Path, args: &[&str], code: i32) -> anyhow::Result<String> {
    let me = std::env::current_exe().context("cannot find the xtask binary")?;
    let shown = format!("cargo xtask {}", args.join(" "));
    say(&format!("$ {shown}"));
    let t = Instant::now();
    let out = Command::new(me)
        .args(args)
        .env("XTASK_DEPLOY_ROOT", ws)
        .current_dir(root)
        .output()
        .with_context(|| format!("cannot run {shown}"))?;
    let err = String::from_utf8_lossy(&out.stderr);
    for line in err
        .lines()
        .filter(|l| l.starts_with("xtask") || l.starts_with("  "))
    {
        say(&format!("  | {line}"));
    }
    if out.status.code() != Some(code) {
        bail!(
            "{shown} exited with {} (expected {code}):\n{err}",
            out.status
        );
    }
    say(&format!("  ({:.1}s)", t.elapsed().as_secs_f64()));
    Ok(String::from_utf8(out.stdout)?)
}

fn status(root: &Path, ws: &Path, env: &str) -> anyhow::Result<Value> {
    let text = xtask(root, ws, &["deploy-status", "--env", env, "--json"])?;
    Ok(serde_json::from_str(&text)?)
}

/// Runs the sequence; `down` runs whatever happened.
pub(crate) fn run(root: &Path) -> anyhow::Result<()> {
    let ws = root.join("target/flightdeck-ci");
    let _ = xtask(root, &ws, &["down"]);
    let _ = std::fs::remove_dir_all(&ws);
    let binary = root.join("target/debug/flightdeck");
    ensure!(
        binary.is_file(),
        "{} is missing: the tests build it",
        binary.display()
    );
    let result = sequence(root, &ws, &binary.display().to_string());
    let down = xtask(root, &ws, &["down"]);
    result?;
    down?;
    // Nothing this workspace started is left running.
    let left: Vec<String> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|d| std::fs::read(d.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(&ws.display().to_string()))
        .collect();
    ensure!(left.is_empty(), "processes left after down: {left:?}");
    say("xtask ci: the delivery pipeline ran end to end and down left no process behind");
    Ok(())
}

/// The production ledger after the sequence: the canary's steps, the
/// approval and its approver, the transitions, traffic back on stable
/// within a second of the rollback decision, and the rollback's cause.
fn check_history(root: &Path, ws: &Path) -> anyhow::Result<()> {
    let history = xtask(
        root,
        ws,
        &["deploy-history", "--env", "production", "--json"],
    )?;
    let entries: Vec<Value> = history
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    let weights: Vec<u64> = entries
        .iter()
        .filter(|e| e["kind"] == "weight")
        .filter_map(|e| e["weight"].as_u64())
        .collect();
    ensure!(
        weights.starts_with(&[5, 25]),
        "the canary's steps: {weights:?}"
    );
    ensure!(
        entries.iter().any(
            |e| e["detail"]["command"] == "approve" && e["detail"]["approver"] == "ci-reviewer"
        ),
        "the approval and its approver are in the ledger"
    );
    let phases: Vec<&str> = entries
        .iter()
        .filter(|e| e["kind"] == "transition")
        .filter_map(|e| e["phase"].as_str())
        .collect();
    ensure!(
        phases.ends_with(&[
            "Promoting",
            "Succeeded",
            "RolledBack",
            "RollingBack",
            "RolledBack"
        ]),
        "transitions: {phases:?}"
    );
    let decided = entries
        .iter()
        .rev()
        .find(|e| e["phase"] == "RollingBack")
        .and_then(|e| e["time_ms"].as_u64());
    let done = entries.last().and_then(|e| e["time_ms"].as_u64());
    let (Some(a), Some(b)) = (decided, done) else {
        bail!("no rollback decision in the ledger");
    };
    ensure!(
        b - a <= 1000,
        "traffic back on stable {} ms after the rollback decision",
        b - a
    );
    say(&format!(
        "xtask ci: traffic was back on stable {} ms after the rollback decision",
        b - a
    ));
    let reason = entries
        .last()
        .and_then(|e| e["reason"].as_str())
        .unwrap_or("");
    ensure!(
        reason.contains("judge") || reason.contains("slo"),
        "the rollback names its cause: {reason}"
    );
    Ok(())
}

fn sequence(root: &Path, ws: &Path, binary: &str) -> anyhow::Result<()> {
    let fast = ["--interval", "1s", "--time-scale", "0.1"];
    let build = |version: &str| {
        let args = [
            "build",
            "--binary",
            binary,
            "--version",
            version,
            "--profile",
            "dev",
        ];
        xtask(root, ws, &args)
    };
    build("1.0.0")?;
    xtask(root, ws, &["deploy-staging", "--version", "1.0.0"])?;
    let s = status(root, ws, "staging")?;
    ensure!(
        s["version"] == "1.0.0" && s["healthy"] == true,
        "staging after deploy: {s:#}"
    );
    xtask(root, ws, &["eval-gate"])?;
    xtask(root, ws, &["deploy-prod", "--approve", "--approver", "ci"])?;
    let p = status(root, ws, "production")?;
    ensure!(
        p["version"] == "1.0.0" && p["healthy"] == true,
        "production after its first deploy: {p:#}"
    );

    build("1.1.0")?;
    xtask(root, ws, &["deploy-staging", "--version", "1.1.0"])?;
    xtask(root, ws, &["eval-gate"])?;
    let mut canary = vec!["deploy-canary"];
    canary.extend(fast);
    xtask(root, ws, &canary)?;
    let p = status(root, ws, "production")?;
    ensure!(
        p["release"]["phase"] == "Progressing" && p["release"]["canary_version"] == "1.1.0",
        "the canary waits for approval: {p:#}"
    );
    // One analysis of the waiting canary, on demand.
    let health: Value = serde_json::from_str(&xtask(root, ws, &["canary-health", "--json"])?)?;
    ensure!(
        health["outcome"] == "pass" && health["canary_version"] == "1.1.0",
        "canary-health of a healthy canary: {health:#}"
    );
    // Without an approval and without a terminal, production refuses (2).
    xtask_exit(root, ws, &["deploy-prod"], 2)?;
    let mut prod = vec!["deploy-prod", "--approve", "--approver", "ci-reviewer"];
    prod.extend(fast);
    xtask(root, ws, &prod)?;
    let p = status(root, ws, "production")?;
    ensure!(
        p["version"] == "1.1.0" && p["healthy"] == true,
        "production after promotion: {p:#}"
    );

    xtask(
        root,
        ws,
        &["rollback", "--env", "production", "--reason", "ci drill"],
    )?;
    let p = status(root, ws, "production")?;
    ensure!(
        p["version"] == "1.0.0" && p["healthy"] == true,
        "production after rollback: {p:#}"
    );

    // A canary that fails 20 % of its requests is rolled back on its own
    // (exit 3), and traffic is back on stable within a second of the
    // decision.
    let mut faulty = vec![
        "deploy-canary",
        "--version",
        "1.1.0",
        "--fault",
        "error_rate=0.2",
    ];
    faulty.extend(fast);
    xtask_exit(root, ws, &faulty, 3)?;
    let p = status(root, ws, "production")?;
    ensure!(
        p["version"] == "1.0.0" && p["release"]["phase"] == "RolledBack" && p["healthy"] == true,
        "production after the faulty canary: {p:#}"
    );
    let canary_left = p["processes"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|x| x["name"].as_str().is_some_and(|n| n.starts_with("canary-")));
    ensure!(!canary_left, "the rolled-back canary was stopped: {p:#}");

    check_history(root, ws)?;

    // The whole pipeline in one task, with this checkout's debug build
    // (the tests are what `ci` is already running, so they are skipped).
    let mut pipeline = vec![
        "pipeline",
        "--skip-tests",
        "--profile",
        "dev",
        "--approve",
        "--approver",
        "ci-pipeline",
    ];
    pipeline.extend(fast);
    xtask(root, ws, &pipeline)?;
    let p = status(root, ws, "production")?;
    let version = p["version"].as_str().unwrap_or_default().to_owned();
    ensure!(
        version.contains('+'),
        "the pipeline's build serves production: {p:#}"
    );
    ensure!(p["healthy"] == true, "production after the pipeline: {p:#}");
    // `release` is a dry run unless --execute: it prints the plan and
    // changes nothing.
    let before = std::fs::read_to_string(root.join("Cargo.toml"))?;
    let plan = xtask(root, ws, &["release", "minor"])?;
    ensure!(plan.contains("release plan:"), "{plan}");
    ensure!(
        std::fs::read_to_string(root.join("Cargo.toml"))? == before,
        "a dry run changed Cargo.toml"
    );
    Ok(())
}

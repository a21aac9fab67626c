//! The release tasks over local environments: `build`, `deploy-staging`,
//! `deploy-canary`, `deploy-prod`, `rollback`, `canary-health`,
//! `deploy-status`, `deploy-history` and `down`. The work is the release
//! crate's ([`flightdeck_release::env`]); these parse arguments, build the
//! service and print.
//!
//! State lives under `target/flightdeck/` of this checkout (or
//! `--root DIR` / `XTASK_DEPLOY_ROOT`), so two checkouts never collide.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};
use flightdeck_release::env::{CanaryOutcome, DeployOptions, Workspace};
use flightdeck_release::ledger::{EntryKind, ReleaseState};

use crate::{BadArgs, Finding, output_of, run_cmd, say};

/// Parsed `--flag value` and `--switch` arguments of one task.
#[derive(Debug, Default)]
pub(crate) struct Flags {
    values: Vec<(String, String)>,
    switches: Vec<String>,
}

impl Flags {
    /// Parses `args`: `takes_value` names the flags with a value.
    pub(crate) fn parse(
        args: &[String],
        takes_value: &[&str],
        switches: &[&str],
    ) -> anyhow::Result<Self> {
        let mut f = Self::default();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let (name, inline) = match a.split_once('=') {
                Some((n, v)) if n.starts_with("--") => (n, Some(v.to_owned())),
                _ => (a.as_str(), None),
            };
            if takes_value.contains(&name) {
                let v = match inline {
                    Some(v) => v,
                    None => it
                        .next()
                        .cloned()
                        .ok_or_else(|| BadArgs(format!("{name} needs a value")))?,
                };
                f.values.push((name.to_owned(), v));
            } else if switches.contains(&name) && inline.is_none() {
                f.switches.push(name.to_owned());
            } else {
                let mut known: Vec<&str> = takes_value.to_vec();
                known.extend_from_slice(switches);
                return Err(BadArgs(format!(
                    "unknown argument {a:?} (this task takes {})",
                    if known.is_empty() {
                        "no arguments".to_owned()
                    } else {
                        known.join(", ")
                    }
                ))
                .into());
            }
        }
        Ok(f)
    }

    pub(crate) fn value(&self, name: &str) -> Option<&str> {
        self.values
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn has(&self, name: &str) -> bool {
        self.switches.iter().any(|s| s == name)
    }
}

/// The flags every deploy task takes.
pub(crate) const COMMON: &[&str] = &[
    "--root",
    "--interval",
    "--steps",
    "--time-scale",
    "--traffic-rps",
    "--actor",
];

/// The workspace: `--root`, `XTASK_DEPLOY_ROOT`, or `target/flightdeck`.
pub(crate) fn workspace(root: &Path, f: &Flags) -> Workspace {
    let dir = f
        .value("--root")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XTASK_DEPLOY_ROOT").map(PathBuf::from))
        .unwrap_or_else(|| root.join("target/flightdeck"));
    Workspace::new(dir)
}

fn duration(name: &str, v: &str) -> anyhow::Result<Duration> {
    flightdeck_release::duration::parse(v).map_err(|e| BadArgs(format!("{name} {v:?}: {e}")).into())
}

/// Deploy options from the common flags.
pub(crate) fn options(f: &Flags) -> anyhow::Result<DeployOptions> {
    let mut o = DeployOptions::default();
    if let Some(a) = f
        .value("--actor")
        .map(str::to_owned)
        .or_else(|| std::env::var("GITHUB_ACTOR").ok())
    {
        o.actor = a;
    }
    if let Some(v) = f.value("--interval") {
        o.interval = duration("--interval", v)?;
        if o.interval < Duration::from_millis(500) || o.interval > Duration::from_secs(600) {
            return Err(BadArgs(format!("--interval {v}: use 500ms to 10m")).into());
        }
    }
    if let Some(v) = f.value("--steps") {
        let steps: Result<Vec<u32>, _> = v.split(',').map(|s| s.trim().parse::<u32>()).collect();
        match steps {
            Ok(s)
                if !s.is_empty()
                    && s.windows(2).all(|w| w[0] < w[1])
                    && s.iter().all(|w| (1..100).contains(w)) =>
            {
                o.steps = s
            }
            _ => {
                return Err(BadArgs(format!(
                    "--steps {v:?}: rising percentages from 1 to 99, such as 5,25"
                ))
                .into());
            }
        }
    }
    if let Some(v) = f.value("--time-scale") {
        o.time_scale = v
            .parse::<f64>()
            .ok()
            .filter(|t| (0.0..=10.0).contains(t))
            .ok_or_else(|| BadArgs(format!("--time-scale {v:?}: a number from 0 to 10")))?;
    }
    if let Some(v) = f.value("--traffic-rps") {
        o.traffic_rps = v
            .parse::<u32>()
            .ok()
            .filter(|r| *r <= 10_000)
            .ok_or_else(|| BadArgs(format!("--traffic-rps {v:?}: 0 to 10000")))?;
    }
    Ok(o)
}

/// The current checkout's commit (short) and whether the tree is dirty.
fn commit(root: &Path) -> (String, bool) {
    let sha =
        output_of(
            Command::new("git")
                .current_dir(root)
                .args(["rev-parse", "--short=10", "HEAD"]),
        )
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into());
    let dirty = output_of(Command::new("git").current_dir(root).args([
        "status",
        "--porcelain",
        "--untracked-files=no",
    ]))
    .is_ok_and(|s| !s.trim().is_empty());
    (sha, dirty)
}

/// `cargo xtask build [--version V] [--binary PATH] [--profile release|dev]`:
/// builds the service and adds it to the artifact store. Answers its version.
pub(crate) fn build(root: &Path, args: &[String]) -> anyhow::Result<String> {
    let f = Flags::parse(args, &["--root", "--version", "--binary", "--profile"], &[])?;
    build_with(root, &f)
}

fn build_with(root: &Path, f: &Flags) -> anyhow::Result<String> {
    let ws = workspace(root, f);
    let profile = f
        .value("--profile")
        .map(str::to_owned)
        .or_else(|| std::env::var("FLIGHTDECK_BUILD_PROFILE").ok())
        .unwrap_or_else(|| "release".into());
    let binary = match f.value("--binary") {
        Some(b) => PathBuf::from(b),
        None => {
            let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
            cmd.current_dir(root).args([
                "build",
                "--locked",
                "-p",
                "flightdeck-cli",
                "--bin",
                "flightdeck",
            ]);
            match profile.as_str() {
                "release" => {
                    cmd.arg("--release");
                }
                "dev" => {}
                other => return Err(BadArgs(format!("--profile {other:?}: release or dev")).into()),
            }
            run_cmd(&mut cmd)?;
            root.join("target")
                .join(if profile == "dev" { "debug" } else { "release" })
                .join("flightdeck")
        }
    };
    if !binary.is_file() {
        return Err(BadArgs(format!("--binary {}: no such file", binary.display())).into());
    }
    let (sha, dirty) = commit(root);
    let version = match f.value("--version") {
        Some(v) => v.to_owned(),
        None => {
            let pkg = workspace_version(root)?;
            if dirty {
                // A dirty tree names its build by the binary's digest, so
                // two different dirty builds never share a version.
                let digest = flightdeck_release::env::artifacts::digest(&binary)?;
                format!("{pkg}+{sha}.dirty.{}", &digest[..8])
            } else {
                format!("{pkg}+{sha}")
            }
        }
    };
    let m = ws.artifacts().add(
        &binary,
        &version,
        &format!("{sha}{}", if dirty { "-dirty" } else { "" }),
        &profile,
    )?;
    say(&format!(
        "xtask build: {} ({} bytes, sha256 {}) in {}",
        m.version,
        m.size,
        &m.sha256[..16],
        ws.artifacts().dir().display()
    ));
    Ok(m.version)
}

/// The workspace's version from the root Cargo.toml.
fn workspace_version(root: &Path) -> anyhow::Result<String> {
    workspace_version_of(&std::fs::read_to_string(root.join("Cargo.toml"))?)
}

/// The `[workspace.package]` version in a manifest's text.
pub(crate) fn workspace_version_of(text: &str) -> anyhow::Result<String> {
    let mut in_package = false;
    for line in text.lines() {
        let l = line.trim();
        if l.starts_with('[') {
            in_package = l == "[workspace.package]";
        } else if in_package
            && let Some(v) = l
                .strip_prefix("version")
                .map(str::trim)
                .and_then(|r| r.strip_prefix('='))
        {
            return Ok(v.trim().trim_matches('"').to_owned());
        }
    }
    bail!("no version in [workspace.package] of Cargo.toml")
}

/// The version a task deploys: `--version`, or a fresh build of the checkout.
fn version_or_build(root: &Path, f: &Flags) -> anyhow::Result<String> {
    match f.value("--version") {
        Some(v) => Ok(v.to_owned()),
        None => build_with(root, f),
    }
}

fn print_state(s: &ReleaseState) {
    say(&format!(
        "  {} {:?}: canary {} at {}% over stable {}{}",
        s.release,
        s.phase,
        s.canary_version,
        s.weight,
        s.stable_version,
        s.reason
            .as_deref()
            .map(|r| format!(" — {r}"))
            .unwrap_or_default()
    ));
}

/// `cargo xtask deploy-staging [--version V]`.
pub(crate) fn deploy_staging(root: &Path, args: &[String]) -> anyhow::Result<()> {
    let mut takes = COMMON.to_vec();
    takes.extend(["--version", "--binary", "--profile"]);
    let f = Flags::parse(args, &takes, &[])?;
    let ws = workspace(root, &f);
    let opts = options(&f)?;
    let version = version_or_build(root, &f)?;
    let art = ws.artifacts().get(&version)?;
    let started = std::time::Instant::now();
    let s = ws.env("staging")?.deploy_staging(&art, &opts)?;
    print_state(&s);
    say(&format!(
        "xtask deploy-staging: {version} is healthy in staging ({:.1}s)",
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// `cargo xtask deploy-canary [--version V]`: default, the build staging runs.
pub(crate) fn deploy_canary(root: &Path, args: &[String]) -> anyhow::Result<()> {
    let mut takes = COMMON.to_vec();
    takes.extend(["--version", "--fault"]);
    let f = Flags::parse(args, &takes, &[])?;
    let ws = workspace(root, &f);
    let mut opts = options(&f)?;
    if let Some(fault) = f.value("--fault") {
        opts.serve_args = vec!["--fault".into(), fault.into()];
    }
    let version = match f.value("--version") {
        Some(v) => v.to_owned(),
        None => ws.env("staging")?.serving()?.ok_or_else(|| {
            BadArgs("nothing runs in staging: deploy-staging first, or give --version".into())
        })?,
    };
    if !crate::eval_gate::passed(ws.root(), &version) {
        say(&format!(
            "xtask deploy-canary: {version} has not passed the eval gate (cargo xtask eval-gate against staging); no canary without it"
        ));
        return Err(Finding.into());
    }
    let art = ws.artifacts().get(&version)?;
    let prod = ws.env("production")?;
    say(&format!(
        "xtask deploy-canary: {version} into production, steps {:?} every {:?}",
        opts.steps, opts.interval
    ));
    let outcome = prod.deploy_canary(&art, &art.binary, &opts, &mut progress())?;
    report(&outcome, "deploy-canary")
}

/// Prints each state once, as it changes.
fn progress() -> impl FnMut(&ReleaseState) {
    let mut last = String::new();
    move |s: &ReleaseState| {
        let line = format!("{:?} {} {:?}", s.phase, s.weight, s.reason);
        if line != last {
            print_state(s);
            last = line;
        }
    }
}

fn report(outcome: &CanaryOutcome, task: &str) -> anyhow::Result<()> {
    match outcome {
        CanaryOutcome::AwaitingApproval(s) => {
            say(&format!(
                "xtask {task}: {} is healthy at {}%; promote it with `cargo xtask deploy-prod --approve` (or roll it back with `cargo xtask rollback --env production`)",
                s.canary_version, s.weight
            ));
            Ok(())
        }
        CanaryOutcome::Promoted(s) => {
            say(&format!(
                "xtask {task}: {} is the new stable in production",
                s.canary_version
            ));
            Ok(())
        }
        CanaryOutcome::RolledBack(s) => {
            say(&format!(
                "xtask {task}: rolled back; {} serves production: {}",
                s.stable_version,
                s.reason.as_deref().unwrap_or("no reason recorded")
            ));
            Err(Finding.into())
        }
        CanaryOutcome::Paused(s) => {
            say(&format!(
                "xtask {task}: the release is paused ({}); look with `cargo xtask canary-health`, then approve or roll back",
                s.reason.as_deref().unwrap_or("no reason recorded")
            ));
            Err(Finding.into())
        }
    }
}

/// Who approves production: `--approve [--approver NAME]`, or a person at
/// a terminal; refused otherwise.
fn approval(f: &Flags, what: &str) -> anyhow::Result<String> {
    let fallback = || {
        std::env::var("GITHUB_ACTOR")
            .or_else(|_| std::env::var("USER"))
            .unwrap_or_else(|_| "unknown".into())
    };
    if f.has("--approve") {
        return Ok(f.value("--approver").map_or_else(fallback, str::to_owned));
    }
    if f.value("--approver").is_some() {
        return Err(BadArgs("--approver needs --approve".into()).into());
    }
    if !std::io::stdin().is_terminal() {
        return Err(BadArgs(
            "production needs an approval: pass --approve [--approver NAME] in automation, or run this on a terminal to confirm".into(),
        )
        .into());
    }
    let mut err = std::io::stderr();
    write!(err, "Approve {what}? Type yes to approve: ")?;
    err.flush()?;
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    if line.trim() != "yes" {
        return Err(BadArgs("not approved (the answer was not yes)".into()).into());
    }
    Ok(fallback())
}

/// `cargo xtask deploy-prod --approve [--approver NAME] [--version V]`.
pub(crate) fn deploy_prod(root: &Path, args: &[String]) -> anyhow::Result<()> {
    let mut takes = COMMON.to_vec();
    takes.extend(["--version", "--approver"]);
    let f = Flags::parse(args, &takes, &["--approve"])?;
    let ws = workspace(root, &f);
    let opts = options(&f)?;
    let prod = ws.env("production")?;
    let running = prod.ledger().state()?.filter(|s| !s.phase.is_terminal());
    if let Some(s) = running {
        if f.value("--version").is_some_and(|v| v != s.canary_version) {
            return Err(BadArgs(format!(
                "release {} of {} is running; --version names another build",
                s.release, s.canary_version
            ))
            .into());
        }
        let approver = approval(
            &f,
            &format!(
                "{} for production (canary at {}%)",
                s.canary_version, s.weight
            ),
        )?;
        say(&format!(
            "xtask deploy-prod: approved by {approver}; promoting {}",
            s.canary_version
        ));
        let outcome = prod.approve(&approver, &opts, &mut progress())?;
        return report(&outcome, "deploy-prod");
    }
    if prod
        .status()?
        .processes
        .iter()
        .any(|p| p.record.name.starts_with("stable-") && p.alive)
    {
        return Err(BadArgs("no release is waiting for approval in production: start one with `cargo xtask deploy-canary`".into()).into());
    }
    // The first production deploy: nothing to compare a canary with.
    let version = match f.value("--version") {
        Some(v) => v.to_owned(),
        None => ws.env("staging")?.serving()?.ok_or_else(|| {
            BadArgs(
                "nothing runs in staging to promote: deploy-staging first, or give --version"
                    .into(),
            )
        })?,
    };
    let approver = approval(&f, &format!("{version} as production's first build"))?;
    if !crate::eval_gate::passed(ws.root(), &version) {
        say(&format!(
            "xtask deploy-prod: {version} has not passed the eval gate (cargo xtask eval-gate against staging); production refuses it"
        ));
        return Err(Finding.into());
    }
    let art = ws.artifacts().get(&version)?;
    let s = prod.bootstrap_production(&art, &art.binary, &opts, &approver)?;
    print_state(&s);
    say(&format!(
        "xtask deploy-prod: {version} serves production (approved by {approver})"
    ));
    Ok(())
}

/// `cargo xtask rollback --env staging|production [--to VERSION] [--reason R]`.
pub(crate) fn rollback(root: &Path, args: &[String]) -> anyhow::Result<()> {
    let mut takes = COMMON.to_vec();
    takes.extend(["--env", "--to", "--reason"]);
    let f = Flags::parse(args, &takes, &[])?;
    let Some(env) = f.value("--env") else {
        return Err(BadArgs("rollback needs --env staging|production".into()).into());
    };
    let ws = workspace(root, &f);
    let opts = options(&f)?;
    let e = ws.env(env)?;
    let reason = f
        .value("--reason")
        .unwrap_or("asked for with cargo xtask rollback");
    let started = std::time::Instant::now();
    let s = e.rollback(ws.artifacts(), f.value("--to"), reason, &opts)?;
    print_state(&s);
    say(&format!(
        "xtask rollback: {} serves {env} ({:.1}s)",
        e.serving()?.unwrap_or_default(),
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// `cargo xtask deploy-status [--env E] [--json]`.
pub(crate) fn status(root: &Path, args: &[String]) -> anyhow::Result<()> {
    let f = Flags::parse(args, &["--root", "--env"], &["--json"])?;
    let ws = workspace(root, &f);
    let envs: Vec<&str> = match f.value("--env") {
        Some(e) => vec![e],
        None => flightdeck_release::env::ENVIRONMENTS.to_vec(),
    };
    let mut all = Vec::new();
    for name in envs {
        all.push(ws.env(name)?.status()?);
    }
    if f.has("--json") {
        let v = if f.value("--env").is_some() {
            serde_json::to_value(&all[0])?
        } else {
            serde_json::to_value(&all)?
        };
        crate::print(&serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    for s in &all {
        crate::print(&format!(
            "{}: {} {}{}",
            s.env,
            s.version.as_deref().unwrap_or("(nothing deployed)"),
            if s.healthy {
                "healthy"
            } else if s.processes.is_empty() {
                "down (no process runs: deploy again, or it was stopped by `down`)"
            } else {
                "NOT healthy"
            },
            s.url
                .as_deref()
                .map(|u| format!(" at {u}"))
                .unwrap_or_default()
        ));
        if let Some(r) = &s.release {
            crate::print(&format!(
                "  last release {} {:?}{}",
                r.release,
                r.phase,
                r.reason
                    .as_deref()
                    .map(|x| format!(": {x}"))
                    .unwrap_or_default()
            ));
        }
        for p in &s.processes {
            crate::print(&format!(
                "  {:<28} pid {:<7} {}{}{}",
                p.record.name,
                p.record.pid,
                if p.alive { "running" } else { "gone" },
                match p.ready {
                    Some(true) => ", ready",
                    Some(false) => ", NOT ready",
                    None => "",
                },
                p.record
                    .addr
                    .as_deref()
                    .map(|a| format!(" on {a}"))
                    .unwrap_or_default()
            ));
        }
    }
    Ok(())
}

/// `cargo xtask deploy-history --env E [--json]`.
pub(crate) fn history(root: &Path, args: &[String]) -> anyhow::Result<()> {
    let f = Flags::parse(args, &["--root", "--env"], &["--json"])?;
    let Some(env) = f.value("--env") else {
        return Err(BadArgs("deploy-history needs --env staging|production".into()).into());
    };
    let ws = workspace(root, &f);
    let e = ws.env(env)?;
    let entries = e.ledger().entries()?;
    if f.has("--json") {
        let mut out = String::new();
        for en in &entries {
            out.push_str(&serde_json::to_string(en)?);
            out.push('\n');
        }
        crate::print(out.trim_end());
        return Ok(());
    }
    for en in entries.iter().filter(|en| {
        // The readable view skips the per-interval analyses that passed.
        !(en.kind == EntryKind::Analysis && en.detail["outcome"] == "pass")
    }) {
        crate::print(&format!(
            "{:>4} {} {:<10} {:<12} {:>3}% {}{}",
            en.seq,
            time_of(en.time_ms),
            format!("{:?}", en.kind).to_lowercase(),
            format!("{:?}", en.phase),
            en.weight,
            en.release,
            en.reason
                .as_deref()
                .map(|r| format!("  {r}"))
                .unwrap_or_default()
        ));
    }
    Ok(())
}

/// Now, in Unix milliseconds.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Unix milliseconds as `YYYY-MM-DD hh:mm:ss` (UTC).
pub(crate) fn time_of(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// `cargo xtask canary-health [--json]`: one analysis of the running
/// release now (judge, SLO burn, readiness); exit 3 when it fails.
pub(crate) fn canary_health(root: &Path, args: &[String]) -> anyhow::Result<()> {
    let f = Flags::parse(args, &["--root"], &["--json"])?;
    let ws = workspace(root, &f);
    let prod = ws.env("production")?;
    let Some(s) = prod.ledger().state()?.filter(|s| !s.phase.is_terminal()) else {
        return Err(BadArgs(
            "no canary is running in production (cargo xtask deploy-canary starts one)".into(),
        )
        .into());
    };
    let health = prod.canary_health()?;
    if f.has("--json") {
        crate::print(&serde_json::to_string_pretty(&serde_json::json!({
            "release": s.release,
            "canary_version": s.canary_version,
            "weight": s.weight,
            "outcome": health.outcome,
            "message": health.message,
            "analysis": health.detail,
        }))?);
    } else {
        crate::print(&format!(
            "{} at {}%: {:?}{}",
            s.canary_version,
            s.weight,
            health.outcome,
            health
                .message
                .as_deref()
                .map(|m| format!(" — {m}"))
                .unwrap_or_default()
        ));
        if let Some(ms) = health.detail["metrics"].as_array() {
            for m in ms {
                crate::print(&format!(
                    "  {:<14} {}",
                    m["name"].as_str().unwrap_or("?"),
                    m["phase"].as_str().unwrap_or("?")
                ));
            }
        }
    }
    match health.outcome {
        flightdeck_release::progression::CheckOutcome::Pass => Ok(()),
        _ => Err(Finding.into()),
    }
}

/// `cargo xtask down`: stops every process this checkout's environments run.
pub(crate) fn down(root: &Path, args: &[String]) -> anyhow::Result<()> {
    let f = Flags::parse(args, &["--root"], &[])?;
    let ws = workspace(root, &f);
    let stopped = ws.down(Duration::from_secs(5)).context("xtask down")?;
    say(&format!(
        "xtask down: stopped {}",
        if stopped.is_empty() {
            "nothing (nothing was running)".to_owned()
        } else {
            stopped.join(", ")
        }
    ));
    Ok(())
}

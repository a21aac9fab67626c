//! `cargo xtask ci`: the whole CI job, runnable locally.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};

use crate::{run_cmd, say};

/// Runs every CI step in order, stopping at the first failure.
pub(crate) fn run(root: &Path) -> anyhow::Result<()> {
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
    // obs-core must also work with no optional features (STYLE.md B.7).
    run_cmd(Command::new("cargo").args([
        "test",
        "--package",
        "flightdeck-obs-core",
        "--no-default-features",
        "--locked",
        "--lib",
    ]))?;
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
    say("xtask ci: all steps passed");
    Ok(())
}

fn have(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Installs what the tests need when it is missing: `promtool` and
/// `prometheus` from Debian's `prometheus` package, and Debian's `chromium`
/// (a real browser for the dashboard picture).
pub(crate) fn install_test_deps() -> anyhow::Result<()> {
    let mut packages = Vec::new();
    if !(have("promtool") && have("prometheus")) {
        packages.push("prometheus");
    }
    if !have("chromium") {
        packages.push("chromium");
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
            "test dependencies are missing and apt-get is not available; install Prometheus 2.x (promtool, prometheus) and Chromium"
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
    if !have("promtool") || !have("chromium") {
        bail!(
            "installed {} but promtool or chromium is still not on PATH",
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

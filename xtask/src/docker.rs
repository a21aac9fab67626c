//! `cargo xtask docker-build` and the Dockerfile lint CI runs.
//!
//! Images need a container engine with a daemon and a registry for the
//! base images; these machines have neither, so `docker-build` looks for a
//! working engine (docker, then podman) and, without one, says exactly why
//! and exits 1 (could not run) rather than half-building.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};

use crate::{run_cmd, say};

/// Why no engine can build here, or the engine that can.
fn engine() -> Result<&'static str, String> {
    let mut why = Vec::new();
    for e in ["docker", "podman"] {
        match Command::new(e).arg("info").output() {
            Ok(o) if o.status.success() => return Ok(e),
            Ok(o) => {
                let err = String::from_utf8_lossy(&o.stderr);
                let line = err
                    .lines()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("no output")
                    .trim()
                    .to_owned();
                why.push(format!("{e} is installed but `{e} info` fails: {line}"));
            }
            Err(_) => why.push(format!("{e} is not installed")),
        }
    }
    Err(why.join("; "))
}

/// `docker-build [--tag T]`: builds the image with a working engine.
pub(crate) fn build(root: &Path, args: &[String]) -> anyhow::Result<()> {
    let mut tag = format!("flightdeck:{}", env!("CARGO_PKG_VERSION"));
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--tag" => tag = it.next().context("--tag needs a value")?.clone(),
            other => bail!("docker-build: unknown argument {other:?} (use --tag NAME:VERSION)"),
        }
    }
    let engine = match engine() {
        Ok(e) => e,
        Err(why) => bail!(
            "cannot build the image here: {why}. The Dockerfile is checked by hadolint in `cargo xtask ci`; build where a container engine and a registry for the base images (rust, debian) are reachable"
        ),
    };
    run_cmd(
        Command::new(engine)
            .args(["build", "--tag", &tag, "--file"])
            .arg(root.join("Dockerfile"))
            .arg(root),
    )
    .with_context(|| format!("{engine} build failed"))?;
    say(&format!("built {tag} with {engine}"));
    Ok(())
}

/// `docker-push --tag REGISTRY/NAME:VERSION`: pushes a built image with a
/// working engine, or says why it cannot.
pub(crate) fn push(args: &[String]) -> anyhow::Result<()> {
    let f = crate::deploy::Flags::parse(args, &["--tag"], &[])?;
    let Some(tag) = f.value("--tag") else {
        return Err(crate::BadArgs(
            "docker-push needs --tag REGISTRY/NAME:VERSION (the image docker-build tagged)".into(),
        )
        .into());
    };
    if !tag.contains('/') || !tag.contains(':') {
        return Err(crate::BadArgs(format!(
            "--tag {tag:?}: name a registry and a version, such as ghcr.io/acme/flightdeck:1.2.0"
        ))
        .into());
    }
    let engine = match engine() {
        Ok(e) => e,
        Err(why) => bail!(
            "cannot push the image from here: {why}. Push from where docker-build ran (the deploy workflow does it on GitHub's runners)"
        ),
    };
    run_cmd(Command::new(engine).args(["push", tag]))
        .with_context(|| format!("{engine} push {tag} failed"))?;
    say(&format!("pushed {tag} with {engine}"));
    Ok(())
}

//! `cargo xtask pipeline`: every stage in order — build, test, staging,
//! eval gate, canary, production — stopping at the first failure with the
//! reason. What `.github/workflows/deploy.yml` runs job by job.

use std::path::Path;
use std::time::Instant;

use crate::deploy::{COMMON, Flags};
use crate::{BadArgs, say};

/// `cargo xtask pipeline [--approve --approver NAME] [--skip-tests] [deploy flags]`.
pub(crate) fn run(root: &Path, args: &[String]) -> anyhow::Result<()> {
    let mut takes = COMMON.to_vec();
    takes.extend(["--approver", "--profile"]);
    let f = Flags::parse(args, &takes, &["--approve", "--skip-tests"])?;
    // The flags every stage shares, passed on as given.
    let mut common: Vec<String> = Vec::new();
    for name in COMMON {
        if let Some(v) = f.value(name) {
            common.extend([(*name).to_owned(), v.to_owned()]);
        }
    }
    let with = |extra: &[&str]| -> Vec<String> {
        let mut v = common.clone();
        v.extend(extra.iter().map(|s| (*s).to_owned()));
        v
    };
    let root_only: Vec<String> = f
        .value("--root")
        .map(|r| vec!["--root".to_owned(), r.to_owned()])
        .unwrap_or_default();
    let mut done: Vec<(String, f64)> = Vec::new();
    let mut stage =
        |name: &str, work: &mut dyn FnMut() -> anyhow::Result<()>| -> anyhow::Result<()> {
            say(&format!("== pipeline: {name}"));
            let t = Instant::now();
            match work() {
                Ok(()) => {
                    done.push((name.to_owned(), t.elapsed().as_secs_f64()));
                    Ok(())
                }
                Err(e) => {
                    for (n, s) in &done {
                        say(&format!("   {n:<12} passed in {s:.1}s"));
                    }
                    say(&format!("   {name:<12} FAILED: {e:#}"));
                    say("== pipeline stopped; nothing after this stage ran");
                    Err(e)
                }
            }
        };
    let mut version = String::new();
    stage("build", &mut || {
        let mut b = root_only.clone();
        if let Some(p) = f.value("--profile") {
            b.extend(["--profile".to_owned(), p.to_owned()]);
        }
        version = crate::deploy::build(root, &b)?;
        Ok(())
    })?;
    if f.has("--skip-tests") {
        say("== pipeline: test skipped (--skip-tests)");
    } else {
        stage("test", &mut || crate::ci::run(root))?;
    }
    let v = version.clone();
    stage("staging", &mut || {
        crate::deploy::deploy_staging(root, &with(&["--version", &v]))
    })?;
    stage("eval-gate", &mut || crate::eval_gate::run(root, &root_only))?;
    let approve: Vec<&str> = if f.has("--approve") {
        match f.value("--approver") {
            Some(a) => vec!["--approve", "--approver", a],
            None => vec!["--approve"],
        }
    } else if f.value("--approver").is_some() {
        return Err(BadArgs("--approver needs --approve".into()).into());
    } else {
        Vec::new()
    };
    let ws = crate::deploy::workspace(root, &f);
    let first = ws.env("production")?.serving()?.is_none()
        || !ws
            .env("production")?
            .status()?
            .processes
            .iter()
            .any(|p| p.alive && p.record.role == "service");
    if first {
        say("== pipeline: production has no running build yet: its first deploy needs no canary");
    } else {
        stage("canary", &mut || {
            crate::deploy::deploy_canary(root, &with(&["--version", &v]))
        })?;
    }
    let mut prod = with(&approve);
    if first {
        prod.extend(["--version".to_owned(), v.clone()]);
    }
    stage("production", &mut || {
        crate::deploy::deploy_prod(root, &prod)
    })?;
    for (n, s) in &done {
        say(&format!("   {n:<12} passed in {s:.1}s"));
    }
    say(&format!("== pipeline: {version} is in production"));
    Ok(())
}

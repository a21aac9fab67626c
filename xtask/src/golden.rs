//! `cargo xtask golden [--bless]`: runs the demo pipeline and checks it
//! against the golden traces committed in `tests/golden/demo/`, writing a
//! JUnit report to `target/golden/junit.xml`; `--bless` re-records them
//! after an intended change (review with `git diff tests/golden`).

use std::path::Path;
use std::process::Command;

use anyhow::bail;

use crate::{run_cmd, say};

/// The demo run the goldens were recorded from: keep in step with them.
pub(crate) const DEMO: &[&str] = &[
    "--requests",
    "24",
    "--seed",
    "42",
    "--time-scale",
    "0.3",
    "--concurrency",
    "8",
];

pub(crate) fn run(root: &Path, args: &[String]) -> anyhow::Result<()> {
    let bless = match args {
        [] => false,
        [a] if a == "--bless" => true,
        other => bail!("usage: cargo xtask golden [--bless] (got {other:?})"),
    };
    let out = root.join("target/golden");
    let golden = root.join("tests/golden/demo");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out)?;
    let flightdeck = |args: &[&str]| {
        let mut c = Command::new("cargo");
        c.args(["run", "--quiet", "--locked", "-p", "flightdeck-cli", "--"])
            .args(args);
        c
    };
    // --golden gives every request a stable case name; the scratch store
    // it records into is thrown away.
    let scratch = out.join("scratch");
    let demo_out = out.join("demo");
    let mut demo = flightdeck(&["demo"]);
    demo.args(DEMO)
        .arg("--out")
        .arg(&demo_out)
        .arg("--golden")
        .arg(&scratch);
    run_cmd(&mut demo)?;
    let traces = demo_out.join("traces.jsonl");
    if bless {
        let mut b = flightdeck(&["golden", "bless", "--golden"]);
        b.arg(&golden).arg("--traces").arg(&traces);
        run_cmd(&mut b)?;
        say("xtask golden: blessed; review with `git diff tests/golden` before committing");
        return Ok(());
    }
    let mut check = flightdeck(&["golden", "check", "--golden"]);
    check
        .arg(&golden)
        .arg("--traces")
        .arg(&traces)
        .arg("--junit")
        .arg(out.join("junit.xml"));
    run_cmd(&mut check)?;
    say("xtask golden: the demo pipeline matches its golden traces");
    Ok(())
}

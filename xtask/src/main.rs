//! See <https://github.com/matklad/cargo-xtask/>.
//!
//! `cargo xtask ci` runs everything CI runs (and installs what the tests
//! need); `cargo xtask tidy` checks the layer rules and crate hygiene of
//! `docs/style.md`.

mod ci;
mod docker;
mod fuzz;
mod golden;
mod tidy;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

const USAGE: &str = "usage: cargo xtask <ci|tidy|install-test-deps|fuzz|golden|docker-build>

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
                     exactly why no engine can here (exit 1)";

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = project_root();
    std::env::set_current_dir(&root).with_context(|| format!("cannot cd to {}", root.display()))?;
    match args.first().map(String::as_str) {
        Some("ci") => ci::run(&root),
        Some("tidy") => tidy::run(&root),
        Some("install-test-deps") => ci::install_test_deps(),
        Some("fuzz") => fuzz::run(&root, &args[1..]),
        Some("golden") => golden::run(&root, &args[1..]),
        Some("docker-build") => docker::build(&root, &args[1..]),
        Some("-h" | "--help" | "help") | None => {
            say(USAGE);
            Ok(())
        }
        Some(other) => bail!("unknown task {other:?}\n{USAGE}"),
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

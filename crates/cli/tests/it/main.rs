//! End-to-end tests of the `flightdeck` binary. One binary (docs/style.md §6).

mod analysis;
mod bad_input;
mod canary;
mod crash;
mod demo;
mod experiments;
mod flags;
mod golden;
mod guard;
mod hardening;
mod otlp;
mod prometheus;
mod rehearsal;
mod release;
mod service;
mod slo;
mod stats;

use std::path::Path;
use std::process::{Command, Output};

/// The `flightdeck` binary under test.
pub(crate) fn flightdeck() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flightdeck"));
    // Keep the developer's settings out of the tests.
    for (k, _) in std::env::vars() {
        if k.starts_with("FLIGHTDECK_") || k.starts_with("OTEL_") || k == "RUST_LOG" {
            cmd.env_remove(k);
        }
    }
    cmd
}

pub(crate) fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("the flightdeck binary runs");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub(crate) fn read_jsonl(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
        .lines()
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{}:{}: {e}: {l}", path.display(), i + 1))
        })
        .collect()
}

/// `promtool`, which `cargo xtask ci` installs from Debian's prometheus package.
pub(crate) fn tool(name: &str) -> Command {
    // HAProxy knows only -v.
    let flag = if name == "haproxy" { "-v" } else { "--version" };
    let ok = Command::new(name)
        .arg(flag)
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "{name} is not installed; run `cargo xtask install-test-deps` (Debian's prometheus, chromium and haproxy packages)"
    );
    Command::new(name)
}

/// The DOM a real headless Chromium leaves after loading `page` (written
/// to `dir/name`; the browser's profile lives in `dir` too), for tests
/// whose script measures what the browser drew into `data-*` attributes.
pub(crate) fn browser_dom(dir: &Path, name: &str, page: &str) -> String {
    let html = dir.join(name);
    std::fs::write(&html, page).unwrap();
    let out = chromium(&dir.join("chromium-profile"))
        .arg("--dump-dom")
        .arg(format!("file://{}", html.display()))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Headless Chromium as every browser test runs it (the flags keep it off
/// the closed network), with its own profile directory.
pub(crate) fn chromium(profile: &Path) -> Command {
    let mut cmd = tool("chromium");
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    cmd
}

//! `cargo xtask fuzz [--seconds N] [--no-asan] [TARGET...]`: runs the `cargo fuzz`
//! targets in `fuzz/`, each for N seconds (default 20, the CI smoke run),
//! starting from the committed seeds and past crash inputs.
//!
//! Each target's working corpus grows under `target/fuzz-corpus/TARGET`
//! (not committed); `fuzz/seeds/TARGET` holds the committed seeds and
//! `fuzz/regressions/TARGET` every input that once failed, replayed first
//! on every run. A finding fails the task, with the input kept under
//! `fuzz/artifacts/TARGET` for a regression test.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};

use crate::{run_cmd, say};

/// The targets, in the order they run.
pub(crate) const TARGETS: &[&str] = &[
    "trace_context",
    "flags_file",
    "yaml_subset",
    "growthbook",
    "experiment_file",
    "slo_spec",
    "stats_numbers",
    "nesting_guard",
    "golden_traces",
    "golden_files",
    "experiment_results",
    "release_inputs",
];

/// Whether a nightly toolchain is installed (cargo fuzz needs one).
pub(crate) fn have_nightly() -> bool {
    Command::new("cargo")
        .args(["+nightly", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn have_cargo_fuzz() -> bool {
    Command::new("cargo")
        .args(["+nightly", "fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Installs `cargo-fuzz` from crates.io when it is missing.
pub(crate) fn install() -> anyhow::Result<()> {
    if have_cargo_fuzz() {
        return Ok(());
    }
    say("installing cargo-fuzz (cargo install cargo-fuzz --locked)");
    run_cmd(Command::new("cargo").args(["install", "cargo-fuzz", "--locked"]))
        .context("cannot install cargo-fuzz")
}

pub(crate) fn run(root: &Path, args: &[String]) -> anyhow::Result<()> {
    let mut seconds: u64 = 20;
    let mut runs: Option<u64> = None;
    let mut sanitizer = "address";
    let mut targets: Vec<&str> = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--seconds" => {
                let v = it.next().context("--seconds needs a number")?;
                seconds = v
                    .parse()
                    .ok()
                    .filter(|s| *s > 0)
                    .with_context(|| format!("--seconds {v:?}: not a positive whole number"))?;
            }
            // A fixed number of inputs from a fixed seed: the same inputs on
            // every run of one commit, so the CI smoke run is reproducible
            // (a time limit runs more inputs on a faster machine).
            "--runs" => {
                let v = it.next().context("--runs needs a number")?;
                runs = Some(
                    v.parse()
                        .ok()
                        .filter(|s| *s > 0)
                        .with_context(|| format!("--runs {v:?}: not a positive whole number"))?,
                );
            }
            // Without AddressSanitizer: a build about a third faster, for
            // the CI smoke run (our code forbids `unsafe`; the long runs
            // keep ASan for the dependencies' unsafe code).
            "--no-asan" => sanitizer = "none",
            other => match TARGETS.iter().find(|t| **t == other) {
                Some(t) => targets.push(t),
                None => bail!(
                    "unknown fuzz argument {other:?}; targets: {}",
                    TARGETS.join(", ")
                ),
            },
        }
    }
    if targets.is_empty() {
        targets = TARGETS.to_vec();
    }
    install()?;
    let fuzz = root.join("fuzz");
    for t in targets {
        let corpus = root.join("target/fuzz-corpus").join(t);
        std::fs::create_dir_all(&corpus)
            .with_context(|| format!("cannot create {}", corpus.display()))?;
        let mut cmd = Command::new("cargo");
        cmd.current_dir(&fuzz)
            .args([
                "+nightly",
                "fuzz",
                "run",
                "--release",
                "--sanitizer",
                sanitizer,
                t,
            ])
            .arg(&corpus);
        for extra in ["seeds", "regressions"] {
            let dir = fuzz.join(extra).join(t);
            if dir.is_dir() {
                cmd.arg(dir);
            }
        }
        let limit = match runs {
            Some(n) => vec![format!("-runs={n}"), "-seed=1".to_owned()],
            None => vec![format!("-max_total_time={seconds}")],
        };
        cmd.arg("--").args(limit).args([
            "-rss_limit_mb=2048".to_owned(),
            "-timeout=10".to_owned(),
            "-print_final_stats=1".to_owned(),
        ]);
        say(&match runs {
            Some(n) => format!("fuzzing {t} for {n} inputs from seed 1"),
            None => format!("fuzzing {t} for {seconds} s"),
        });
        // libFuzzer prints a line per new input: keep it in a log and show
        // the summary (and the tail on a failure).
        let logs = root.join("target/fuzz-logs");
        std::fs::create_dir_all(&logs)?;
        let log_path = logs.join(format!("{t}.log"));
        let log = std::fs::File::create(&log_path)
            .with_context(|| format!("cannot create {}", log_path.display()))?;
        cmd.stdout(log.try_clone()?).stderr(log);
        let status = cmd
            .status()
            .with_context(|| format!("cannot start cargo fuzz for {t}"))?;
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        let summary = summarize(&text);
        if !status.success() {
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            say(&tail.join("\n"));
            bail!(
                "fuzz target {t} failed ({status}); the input is under fuzz/artifacts/{t}, the log in {}",
                log_path.display()
            );
        }
        say(&format!("fuzz {t}: {summary}"));
    }
    Ok(())
}

/// "N runs, cov C, ft F, corpus K" from libFuzzer's output.
fn summarize(log: &str) -> String {
    let runs = log
        .lines()
        .find_map(|l| l.strip_prefix("stat::number_of_executed_units:"))
        .map_or("?".to_owned(), |v| v.trim().to_owned());
    let last = log
        .lines()
        .rev()
        .find(|l| l.starts_with('#') && l.contains("cov:"))
        .unwrap_or("");
    let field = |name: &str| {
        last.split_whitespace()
            .skip_while(|w| *w != name)
            .nth(1)
            .unwrap_or("?")
            .to_owned()
    };
    format!(
        "{runs} runs, coverage {} edges, {} features, corpus {}",
        field("cov:"),
        field("ft:"),
        field("corp:")
    )
}

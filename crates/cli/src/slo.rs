//! `flightdeck slo`: Prometheus rules from SLO specs.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use flightdeck::slo::{
    AlertWindows, GenerateOptions, PromDuration, SloSpec, generate, promtool_tests,
    validate_openslo,
};

use crate::files::write_atomic;

/// The `slo` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum SloCommand {
    /// Generate recording and alerting rules (Sloth-compatible) from a spec.
    Rules(RulesArgs),
    /// Check a spec; prints nothing and exits 0 when it is valid.
    Validate(ValidateArgs),
}

#[derive(Debug, Args)]
pub(crate) struct RulesArgs {
    /// A Sloth prometheus/v1 spec or an OpenSLO v1alpha SLO (YAML).
    #[arg(long, value_name = "FILE")]
    spec: PathBuf,
    /// Write the rules here (atomically) instead of standard output.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// The SLO period (30d and 28d have built-in windows; others need --windows).
    #[arg(long, value_name = "DURATION")]
    period: Option<String>,
    /// A Sloth AlertWindows file for custom periods or windows.
    #[arg(long, value_name = "FILE")]
    windows: Option<PathBuf>,
    /// Also write a `promtool test rules` file proving each SLO's alerts fire
    /// under a fast burn and stay quiet at 0.5x (needs --out).
    #[arg(long, value_name = "FILE", requires = "out")]
    tests: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct ValidateArgs {
    /// The spec to check.
    file: PathBuf,
}

/// Whether any document in `text` declares `apiVersion: openslo/v1`.
fn is_openslo_v1(text: &str) -> bool {
    text.lines().any(|l| {
        let l = l.trim_start_matches(['-', ' ']).trim();
        l.strip_prefix("apiVersion:")
            .is_some_and(|v| v.trim().trim_matches(['"', '\'']) == "openslo/v1")
    })
}

fn load_spec(path: &PathBuf) -> anyhow::Result<SloSpec> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(SloSpec::from_yaml(&text, &path.display().to_string())?)
}

pub(crate) fn run(cmd: SloCommand) -> anyhow::Result<()> {
    match cmd {
        SloCommand::Validate(a) => {
            let text = std::fs::read_to_string(&a.file)
                .with_context(|| format!("cannot read {}", a.file.display()))?;
            if is_openslo_v1(&text) {
                let file = a.file.display().to_string();
                let problems =
                    validate_openslo(&text).map_err(|e| anyhow::anyhow!("{file}: {e}"))?;
                if problems.is_empty() {
                    return Ok(());
                }
                let mut err = std::io::stderr().lock();
                for p in &problems {
                    writeln!(err, "{}", p.line(&file))?;
                }
                anyhow::bail!("{file}: {} problem(s)", problems.len());
            }
            SloSpec::from_yaml(&text, &a.file.display().to_string())?;
            Ok(())
        }
        SloCommand::Rules(a) => {
            let spec = load_spec(&a.spec)?;
            let mut options = GenerateOptions::new();
            if let Some(p) = &a.period {
                let period =
                    PromDuration::parse(p).map_err(|m| anyhow::anyhow!("--period: {m}"))?;
                options = options.with_period(period);
            }
            if let Some(w) = &a.windows {
                let text = std::fs::read_to_string(w)
                    .with_context(|| format!("cannot read {}", w.display()))?;
                options =
                    options.with_windows(AlertWindows::from_yaml(&text, &w.display().to_string())?);
            }
            let yaml = generate(&spec, &options)?.to_yaml();
            match &a.out {
                Some(path) => {
                    write_atomic(path, yaml.as_bytes())?;
                    if let Some(tests) = &a.tests {
                        // promtool resolves rule_files relative to the test file; an
                        // absolute path works wherever the two files live.
                        let rules = std::fs::canonicalize(path)
                            .with_context(|| format!("cannot resolve {}", path.display()))?;
                        let text = promtool_tests(&spec, &options, &rules.display().to_string())?;
                        write_atomic(tests, text.as_bytes())?;
                    }
                    Ok(())
                }
                None => {
                    std::io::stdout().lock().write_all(yaml.as_bytes())?;
                    Ok(())
                }
            }
        }
    }
}

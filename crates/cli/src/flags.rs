//! `flightdeck flags`: evaluate, validate, kill and restore.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use flightdeck::flags::{FeatureFlagManager, FlagKind, FlagSet, KillStore, LoadError};

/// The `flags` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum FlagsCommand {
    /// Evaluate flags for a context.
    Eval(EvalArgs),
    /// Check a flags file: a summary, or every problem as file:line:column.
    Validate(ValidateArgs),
    /// Turn a flag off for everyone (recorded in <FILE>.audit.jsonl).
    Kill(KillArgs),
    /// Lift a kill switch (recorded in <FILE>.audit.jsonl).
    Restore(KillArgs),
}

#[derive(Debug, Args)]
pub(crate) struct EvalArgs {
    /// The flags file (simple format or GrowthBook payload, YAML or JSON).
    #[arg(long, value_name = "FILE")]
    flags: PathBuf,
    /// The context: attributes, or `{"attributes": {...}, ...}`.
    #[arg(long, value_name = "JSON")]
    context: String,
    /// Evaluate only this flag.
    #[arg(long, value_name = "KEY")]
    flag: Option<String>,
    /// Decryption key for an encrypted GrowthBook payload.
    #[arg(long, value_name = "BASE64")]
    decryption_key: Option<String>,
    /// Print one JSON object per flag.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ValidateArgs {
    /// The flags file.
    file: PathBuf,
    /// Decryption key for an encrypted GrowthBook payload.
    #[arg(long, value_name = "BASE64")]
    decryption_key: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct KillArgs {
    /// The flag.
    flag: String,
    /// The flags file the flag is defined in.
    #[arg(long, value_name = "FILE")]
    flags: PathBuf,
    /// Why (kept in the audit log).
    #[arg(long)]
    reason: String,
    /// Who (defaults to $USER).
    #[arg(long)]
    actor: Option<String>,
}

fn load(path: &Path, key: Option<&str>) -> anyhow::Result<FlagSet> {
    FlagSet::load(path, key).map_err(|e| match e {
        LoadError::Invalid(problems) => anyhow::anyhow!(
            "{}",
            problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        ),
        other => other.into(),
    })
}

fn eval(a: &EvalArgs) -> anyhow::Result<()> {
    let set = load(&a.flags, a.decryption_key.as_deref())?;
    let manager =
        FeatureFlagManager::with_flags(set).with_kill_store(KillStore::beside(&a.flags))?;
    let (_, ctx) = crate::experiments::parse_context(&a.context)?;
    let keys = match &a.flag {
        Some(k) => {
            if !manager.flag_keys().contains(k) {
                anyhow::bail!("--flag {k}: no such flag in {}", a.flags.display());
            }
            vec![k.clone()]
        }
        None => manager.flag_keys(),
    };
    let mut out = std::io::stdout().lock();
    for key in keys {
        let e = manager.evaluate(&key, &ctx);
        if a.json {
            serde_json::to_writer(&mut out, &e.to_json())?;
            writeln!(out)?;
        } else {
            let variation = e
                .variation_key
                .as_deref()
                .map(|k| format!(" variation {k}"))
                .unwrap_or_default();
            let rule = if e.rule_id.is_empty() {
                String::new()
            } else {
                format!(" rule {}", e.rule_id)
            };
            writeln!(
                out,
                "{key}: {} = {} ({}{rule}{variation})",
                if e.on { "on" } else { "off" },
                e.value,
                e.source.as_str()
            )?;
        }
    }
    Ok(())
}

fn validate(a: &ValidateArgs) -> anyhow::Result<()> {
    let set = match FlagSet::load(&a.file, a.decryption_key.as_deref()) {
        Ok(set) => set,
        Err(LoadError::Invalid(problems)) => {
            let mut err = std::io::stderr().lock();
            for p in &problems {
                writeln!(err, "{p}")?;
            }
            anyhow::bail!("{}: {} problem(s)", a.file.display(), problems.len());
        }
        Err(e) => return Err(e.into()),
    };
    let today = today();
    let (mut bools, mut typed, mut disabled, mut killed) = (0, 0, 0, 0);
    let mut expired = Vec::new();
    for key in set.keys() {
        let Some(m) = set.meta(key) else { continue };
        if m.kind == FlagKind::Bool {
            bools += 1;
        } else {
            typed += 1;
        }
        disabled += usize::from(!m.enabled);
        killed += usize::from(m.kill_switch);
        if let Some(e) = m.expires.as_deref().filter(|e| *e < today.as_str()) {
            expired.push(format!("{key} ({e})"));
        }
    }
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{}: {} flags ({bools} boolean, {typed} typed), {disabled} disabled, {killed} killed in the file",
        a.file.display(),
        set.len()
    )?;
    if !expired.is_empty() {
        writeln!(out, "past their expiry date: {}", expired.join(", "))?;
    }
    Ok(())
}

/// Today as YYYY-MM-DD (UTC).
fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (y, m, d) = flightdeck::obs::civil_from_days((secs / 86_400) as i64);
    format!("{y:04}-{m:02}-{d:02}")
}

fn kill(a: &KillArgs, restore: bool) -> anyhow::Result<()> {
    let set = load(&a.flags, None)?;
    let manager =
        FeatureFlagManager::with_flags(set).with_kill_store(KillStore::beside(&a.flags))?;
    let actor = a
        .actor
        .clone()
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "cli".to_owned());
    let mut out = std::io::stdout().lock();
    if restore {
        if !manager.kills().contains_key(&a.flag) {
            anyhow::bail!("{}: flag {:?} is not killed", a.flags.display(), a.flag);
        }
        manager.restore(&a.flag, &actor, &a.reason)?;
        writeln!(out, "restored {} (by {actor}: {})", a.flag, a.reason)?;
    } else {
        manager.kill(&a.flag, &actor, &a.reason)?;
        writeln!(
            out,
            "killed {} for everyone (by {actor}: {})",
            a.flag, a.reason
        )?;
    }
    Ok(())
}

pub(crate) fn run(cmd: FlagsCommand) -> anyhow::Result<()> {
    match cmd {
        FlagsCommand::Eval(a) => eval(&a),
        FlagsCommand::Validate(a) => validate(&a),
        FlagsCommand::Kill(a) => kill(&a, false),
        FlagsCommand::Restore(a) => kill(&a, true),
    }
}

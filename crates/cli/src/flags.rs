//! `flightdeck flags`: evaluate, validate, kill and restore.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use flightdeck::flags::{
    AuditAction, AuditEntry, FeatureFlagManager, FlagKind, FlagSet, KillStore, LoadError,
};

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
    warn_unused_key(path, key)?;
    FlagSet::load(path, key).map_err(|e| match e {
        LoadError::Invalid(problems) => crate::BadInput::new(
            problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        )
        .into(),
        other => other.into(),
    })
}

/// Warns when `--decryption-key` is given for a file with nothing
/// encrypted in it (the key is then unused: a likely mistake).
fn warn_unused_key(path: &Path, key: Option<&str>) -> anyhow::Result<()> {
    if key.is_some() {
        let text = std::fs::read(path).unwrap_or_default();
        if !String::from_utf8_lossy(&text).contains("\"encryptedFeatures\"") {
            writeln!(
                std::io::stderr().lock(),
                "warning: --decryption-key given but {} has no encryptedFeatures; the key is unused",
                path.display()
            )?;
        }
    }
    Ok(())
}

fn eval(a: &EvalArgs) -> anyhow::Result<()> {
    let set = load(&a.flags, a.decryption_key.as_deref())?;
    let manager =
        FeatureFlagManager::with_flags(set).with_kill_store(KillStore::beside(&a.flags))?;
    let (_, ctx) = crate::experiments::parse_context(&a.context)?;
    let keys = match &a.flag {
        Some(k) => {
            if !manager.flag_keys().contains(k) {
                crate::bad_input!(
                    "--flag {}: no such flag in {}",
                    crate::shown(k),
                    a.flags.display()
                );
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
    warn_unused_key(&a.file, a.decryption_key.as_deref())?;
    let set = match FlagSet::load(&a.file, a.decryption_key.as_deref()) {
        Ok(set) => set,
        Err(LoadError::Invalid(problems)) => {
            let mut err = std::io::stderr().lock();
            for p in &problems {
                writeln!(err, "{p}")?;
            }
            crate::bad_input!("{}: {} problem(s)", a.file.display(), problems.len());
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

/// Whether `flag` appears in `text` as a whole word (a key or id of a file
/// that no longer loads).
fn named_in(text: &str, flag: &str) -> bool {
    let word = |c: char| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '/');
    !flag.is_empty()
        && text.match_indices(flag).any(|(i, _)| {
            !text[..i].chars().next_back().is_some_and(word)
                && !text[i + flag.len()..].chars().next().is_some_and(word)
        })
}

/// `kill` and `restore`. An emergency tool must not depend on the health of
/// what it stops: a flags file that no longer loads is reported as
/// warnings, and the kill goes ahead for a flag the file names; a corrupt
/// kill file is set aside and replaced.
fn kill(a: &KillArgs, restore: bool) -> anyhow::Result<()> {
    if a.reason.trim().is_empty() {
        crate::bad_input!("--reason: a kill switch needs a reason (who is paged reads it)");
    }
    let store = KillStore::beside(&a.flags);
    let mut err = std::io::stderr().lock();
    let kills = match store.load() {
        Ok(k) => k,
        Err(e) => {
            writeln!(err, "warning: {e}")?;
            Default::default()
        }
    };
    let known = match FlagSet::load(&a.flags, None) {
        Ok(set) => set.keys().contains(&a.flag.as_str()),
        Err(e) => {
            for line in e.to_string().lines() {
                writeln!(err, "warning: {line}")?;
            }
            let text = std::fs::read(&a.flags).unwrap_or_default();
            let named = named_in(&String::from_utf8_lossy(&text), &a.flag);
            if named {
                writeln!(
                    err,
                    "warning: {} does not load; going ahead because it names {}",
                    a.flags.display(),
                    crate::shown(&a.flag)
                )?;
            }
            named
        }
    };
    drop(err);
    if restore && !kills.contains_key(&a.flag) {
        crate::bad_input!(
            "{}: flag {} is not killed",
            a.flags.display(),
            crate::shown(&a.flag)
        );
    }
    if !known && !restore {
        crate::bad_input!(
            "{}: unknown flag {}",
            a.flags.display(),
            crate::shown(&a.flag)
        );
    }
    let actor = a
        .actor
        .clone()
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "cli".to_owned());
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let entry = AuditEntry {
        timestamp_ms: now_ms,
        action: if restore {
            AuditAction::Restore
        } else {
            AuditAction::Kill
        },
        flag: a.flag.clone(),
        actor: actor.clone(),
        reason: a.reason.clone(),
    };
    let (_, set_aside) = store.apply(&kills, &entry)?;
    if let Some(copy) = set_aside {
        writeln!(
            std::io::stderr().lock(),
            "warning: replaced the corrupt kill file; its old contents are in {}",
            copy.display()
        )?;
    }
    let mut out = std::io::stdout().lock();
    if restore {
        writeln!(out, "restored {} (by {actor}: {})", a.flag, a.reason)?;
    } else {
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

//! Kill switches: one call turns a flag off for everyone, recorded with
//! who, when and why in an append-only audit log.
//!
//! The set of killed flags lives beside a flags file as
//! `<file>.kills.json` (replaced atomically) and every change is appended to
//! `<file>.audit.jsonl`. A service watching the flags file picks up kills
//! made by `flightdeck flags kill` from another process.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::error::KillError;

/// Who turned a flag off, when and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KillRecord {
    /// Who (a person or a system).
    pub actor: String,
    /// Why.
    pub reason: String,
    /// When, in Unix milliseconds.
    pub at_ms: u64,
}

/// What happened to a kill switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditAction {
    /// Turned off for everyone.
    Kill,
    /// Back to its rules.
    Restore,
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// When, in Unix milliseconds.
    pub timestamp_ms: u64,
    /// Kill or restore.
    pub action: AuditAction,
    /// The flag.
    pub flag: String,
    /// Who.
    pub actor: String,
    /// Why.
    pub reason: String,
}

/// Killed flags, by key.
pub type KillSet = BTreeMap<String, KillRecord>;

/// Where kill switches are kept: the set of killed flags and the audit log.
#[derive(Debug, Default)]
pub struct KillStore {
    kill_file: Option<PathBuf>,
    audit: Option<(PathBuf, Mutex<()>)>,
}

impl KillStore {
    /// Kills in memory only, with no audit log.
    pub fn in_memory() -> Self {
        Self::default()
    }

    /// Kills beside `flags_file`: `<file>.kills.json` and `<file>.audit.jsonl`.
    pub fn beside(flags_file: &Path) -> Self {
        let with = |suffix: &str| {
            let mut s = flags_file.as_os_str().to_owned();
            s.push(suffix);
            PathBuf::from(s)
        };
        Self {
            kill_file: Some(with(".kills.json")),
            audit: Some((with(".audit.jsonl"), Mutex::new(()))),
        }
    }

    /// The file holding the killed set, if any.
    pub fn kill_file(&self) -> Option<&Path> {
        self.kill_file.as_deref()
    }

    /// The audit log, if any.
    pub fn audit_file(&self) -> Option<&Path> {
        self.audit.as_ref().map(|(p, _)| p.as_path())
    }

    /// The killed set on disk (empty when there is no file yet).
    ///
    /// # Errors
    ///
    /// [`KillError::Corrupt`] when the file does not parse (a kill or
    /// restore repairs it), [`KillError::Audit`] when it cannot be read.
    pub fn load(&self) -> Result<KillSet, KillError> {
        let Some(path) = &self.kill_file else {
            return Ok(KillSet::new());
        };
        match std::fs::read(path) {
            Ok(bytes) => parse_kills(path, &bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(KillSet::new()),
            Err(source) => Err(KillError::Audit {
                path: path.clone(),
                source,
            }),
        }
    }

    /// Applies `entry` (a kill or a restore of `entry.flag`) and answers the
    /// killed set after it, with the copy of a corrupt kill file that was
    /// set aside, if any.
    ///
    /// With a kill file, the change is a read-modify-write of the file on
    /// disk under an OS lock, so kills made at the same time by other
    /// processes are kept, and `current` is not used; a corrupt file is
    /// copied to `<file>.corrupt` and replaced. The audit line is appended
    /// (and synced) only once the new set is durable, so the log never
    /// records a flip that did not happen. Without a kill file the change
    /// applies to `current`.
    ///
    /// # Errors
    ///
    /// [`KillError::Audit`] when a file cannot be locked, read or written;
    /// nothing changed then, unless only the audit append failed.
    pub fn apply(
        &self,
        current: &KillSet,
        entry: &AuditEntry,
    ) -> Result<(KillSet, Option<PathBuf>), KillError> {
        let change = |set: &mut KillSet| match entry.action {
            AuditAction::Kill => {
                set.insert(
                    entry.flag.clone(),
                    KillRecord {
                        actor: entry.actor.clone(),
                        reason: entry.reason.clone(),
                        at_ms: entry.timestamp_ms,
                    },
                );
            }
            AuditAction::Restore => {
                set.remove(&entry.flag);
            }
        };
        let Some(path) = &self.kill_file else {
            let mut next = current.clone();
            change(&mut next);
            self.append_audit(entry)?;
            return Ok((next, None));
        };
        let io = |source| KillError::Audit {
            path: path.clone(),
            source,
        };
        let mut next = KillSet::new();
        let mut set_aside = None;
        flightdeck_obs_core::update_locked(
            path,
            |old| {
                if let Some(bytes) = old {
                    match parse_kills(path, bytes) {
                        Ok(set) => next = set,
                        Err(_) => {
                            let mut copy = path.as_os_str().to_owned();
                            copy.push(".corrupt");
                            let copy = PathBuf::from(copy);
                            flightdeck_obs_core::write_atomic(&copy, bytes).map_err(io)?;
                            set_aside = Some(copy);
                        }
                    }
                }
                change(&mut next);
                let bytes = serde_json::to_vec_pretty(&next).unwrap_or_default();
                Ok::<_, KillError>(Some(bytes))
            },
            |_| self.append_audit(entry),
        )
        .map_err(|e| match e {
            KillError::Io(source) => io(source),
            other => other,
        })?;
        Ok((next, set_aside))
    }

    /// Appends one line to the audit log (one `write`, then `fsync`).
    fn append_audit(&self, entry: &AuditEntry) -> Result<(), KillError> {
        let Some((path, lock)) = &self.audit else {
            return Ok(());
        };
        let _guard = lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut line = serde_json::to_vec(entry).unwrap_or_default();
        line.push(b'\n');
        let write = || -> std::io::Result<()> {
            let mut f = OpenOptions::new().create(true).append(true).open(path)?;
            f.write_all(&line)?;
            f.sync_data()
        };
        write().map_err(|source| KillError::Audit {
            path: path.clone(),
            source,
        })
    }
}

fn parse_kills(path: &Path, bytes: &[u8]) -> Result<KillSet, KillError> {
    serde_json::from_slice(bytes).map_err(|e| KillError::Corrupt {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Reads an audit log.
///
/// # Errors
///
/// The I/O error, or `InvalidData` naming the line that does not parse.
pub fn read_audit_log(path: &Path) -> std::io::Result<Vec<AuditEntry>> {
    let text = std::fs::read_to_string(path)?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}:{}: {e}", path.display(), i + 1),
                )
            })
        })
        .collect()
}

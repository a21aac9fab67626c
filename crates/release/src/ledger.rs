//! The deployment ledger: every transition and every analysis result of an
//! environment, appended as JSON Lines (fsynced) under a file lock, with the
//! current state beside it (`state.json`, written atomically).
//!
//! The ledger is the truth; `state.json` is a cache of folding it. A
//! controller killed at any moment resumes from the ledger: a line cut short
//! by the kill is ignored (it never took effect), the state is folded again,
//! and an unfinished promotion or rollback is finished, not repeated.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ReleaseError;

/// A release's phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReleasePhase {
    /// Created; no traffic on the canary yet.
    Pending,
    /// Moving through the weight steps.
    Progressing,
    /// Held for a person (no data, inconclusive, or asked).
    Paused,
    /// Promotion started (the canary gets all traffic).
    Promoting,
    /// The canary is the new stable.
    Succeeded,
    /// Rollback started (traffic goes back to stable).
    RollingBack,
    /// Traffic is back on stable; the reason is recorded.
    RolledBack,
    /// Could not proceed (a router that failed for good).
    Failed,
}

impl ReleasePhase {
    /// Whether nothing more happens without a new release.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::RolledBack | Self::Failed)
    }
}

/// What an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// A new release began.
    Start,
    /// The phase changed.
    Transition,
    /// The canary's weight changed (after the router applied it).
    Weight,
    /// An analysis ran.
    Analysis,
    /// A person or a tool asked for something (promote, abort, rollback, resume).
    Command,
    /// Something went wrong that did not change the phase (a router error).
    Error,
    /// A webhook ran (post-rollout), or a gate held the release.
    Hook,
}

/// One line of the ledger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Position in the ledger, from 1.
    pub seq: u64,
    /// When (Unix milliseconds).
    pub time_ms: u64,
    /// The release it belongs to.
    pub release: String,
    /// What it records.
    pub kind: EntryKind,
    /// The phase after it.
    pub phase: ReleasePhase,
    /// The canary's weight after it.
    pub weight: u32,
    /// Failed checks so far in the run.
    #[serde(default)]
    pub failed_checks: u32,
    /// Why, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Details: the analysis report (with the judge's), versions, the
    /// command's actor.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub detail: Value,
}

/// The environment's current state (the fold of its ledger).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReleaseState {
    /// The release's id.
    pub release: String,
    /// The version serving as stable.
    pub stable_version: String,
    /// The version under test.
    pub canary_version: String,
    /// The phase.
    pub phase: ReleasePhase,
    /// The canary's weight (percent).
    pub weight: u32,
    /// Failed checks in this run.
    pub failed_checks: u32,
    /// When the weight last moved (Unix ms): the progress deadline counts
    /// from here.
    pub progressed_ms: u64,
    /// When the release reached a terminal phase (Unix ms).
    #[serde(default)]
    pub finished_ms: Option<u64>,
    /// Why it is paused, rolled back or failed.
    #[serde(default)]
    pub reason: Option<String>,
    /// The last entry folded.
    pub seq: u64,
}

impl ReleaseState {
    /// Folds one entry.
    fn apply(&mut self, e: &Entry) {
        if e.kind == EntryKind::Start {
            if let Some(s) = e.detail.get("stable_version").and_then(Value::as_str) {
                s.clone_into(&mut self.stable_version);
            }
            if let Some(s) = e.detail.get("canary_version").and_then(Value::as_str) {
                s.clone_into(&mut self.canary_version);
            }
            e.release.clone_into(&mut self.release);
            self.progressed_ms = e.time_ms;
            self.finished_ms = None;
            self.reason = None;
        }
        if e.kind == EntryKind::Weight && e.weight != self.weight {
            self.progressed_ms = e.time_ms;
        }
        // A gate holding the release explains it; a post-rollout hook does
        // not replace why the release ended.
        let holds = e.kind == EntryKind::Hook && !e.phase.is_terminal();
        if e.phase != self.phase || e.kind == EntryKind::Start || holds {
            self.reason.clone_from(&e.reason);
        }
        if e.phase.is_terminal() && !self.phase.is_terminal() {
            self.finished_ms = Some(e.time_ms);
        }
        self.phase = e.phase;
        self.weight = e.weight;
        self.failed_checks = e.failed_checks;
        self.seq = e.seq;
    }
}

/// One environment's ledger directory.
#[derive(Debug, Clone)]
pub struct Ledger {
    dir: PathBuf,
    /// The fold so far and the byte offset it reaches: a tick reads only
    /// the lines appended since (the file is append-only; a shorter or
    /// replaced file is read again from the start).
    cache: std::sync::Arc<std::sync::Mutex<Fold>>,
}

#[derive(Debug, Default)]
struct Fold {
    offset: u64,
    file_id: Option<(u64, u64)>,
    state: Option<ReleaseState>,
}

fn file_id(m: &std::fs::Metadata) -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Some((m.dev(), m.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = m;
        None
    }
}

fn fold(state: &mut Option<ReleaseState>, e: &Entry) {
    let s = state.get_or_insert_with(|| ReleaseState {
        release: e.release.clone(),
        stable_version: String::new(),
        canary_version: String::new(),
        phase: e.phase,
        weight: 0,
        failed_checks: 0,
        progressed_ms: e.time_ms,
        finished_ms: None,
        reason: None,
        seq: 0,
    });
    s.apply(e);
}

/// The longest ledger line read back (a line longer than this is corrupt).
const MAX_LINE: usize = 16 * 1024 * 1024;

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Ledger {
    /// The ledger in `dir` (created when missing).
    ///
    /// # Errors
    ///
    /// [`ReleaseError::Io`] when the directory cannot be created.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, ReleaseError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)
            .map_err(|e| ReleaseError::io(format!("cannot create {}", dir.display()), e))?;
        Ok(Self {
            dir,
            cache: std::sync::Arc::default(),
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self) -> PathBuf {
        self.dir.join("ledger.jsonl")
    }

    fn lock(&self) -> Result<File, ReleaseError> {
        let p = self.dir.join(".ledger.lock");
        let f = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&p)
            .map_err(|e| ReleaseError::io(format!("cannot open {}", p.display()), e))?;
        f.lock()
            .map_err(|e| ReleaseError::io(format!("cannot lock {}", p.display()), e))?;
        Ok(f)
    }

    /// Every entry, oldest first. A last line cut short by a crash is
    /// skipped; a bad line elsewhere is an error naming it.
    ///
    /// # Errors
    ///
    /// [`ReleaseError::Io`] when the file cannot be read,
    /// [`ReleaseError::Input`] for a corrupt line that is not the last.
    pub fn entries(&self) -> Result<Vec<Entry>, ReleaseError> {
        Ok(self.read_from(0)?.0)
    }

    /// The entries from byte `offset` on, and the offset after the last
    /// complete line read (a torn last line is left unread).
    fn read_from(&self, offset: u64) -> Result<(Vec<Entry>, u64), ReleaseError> {
        use std::io::{Seek, SeekFrom};
        let path = self.path();
        let what = || format!("cannot read {}", path.display());
        let mut f = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
            Err(e) => return Err(ReleaseError::io(what(), e)),
        };
        f.seek(SeekFrom::Start(offset))
            .map_err(|e| ReleaseError::io(what(), e))?;
        let mut out = Vec::new();
        let mut pending_bad: Option<(usize, String, bool)> = None;
        let mut reader = BufReader::new(f);
        let mut line = String::new();
        let mut n = 0;
        let mut end = offset;
        loop {
            line.clear();
            let read = (&mut reader)
                .take(MAX_LINE as u64 + 1)
                .read_line(&mut line)
                .map_err(|e| ReleaseError::io(what(), e))?;
            if read == 0 {
                break;
            }
            n += 1;
            if let Some((ln, msg, _)) = pending_bad.take() {
                return Err(self.corrupt(offset, ln, msg));
            }
            let complete = line.ends_with('\n');
            match serde_json::from_str::<Entry>(line.trim_end()) {
                Ok(e) if complete => {
                    out.push(e);
                    end += read as u64;
                }
                Ok(_) => pending_bad = Some((n, "the line is cut short".into(), false)),
                Err(e) => pending_bad = Some((n, e.to_string(), complete)),
            }
        }
        // A last line without its newline is a write a crash interrupted: it
        // never happened. A complete line that does not parse is corruption.
        if let Some((ln, msg, true)) = pending_bad {
            return Err(self.corrupt(offset, ln, msg));
        }
        Ok((out, end))
    }

    /// A corrupt line, numbered from the start of the file.
    fn corrupt(&self, offset: u64, line_in_read: usize, message: String) -> ReleaseError {
        let before = if offset == 0 {
            0
        } else {
            std::fs::read(self.path())
                .map(|b| {
                    let cut = usize::try_from(offset).unwrap_or(usize::MAX).min(b.len());
                    b[..cut].iter().filter(|c| **c == b'\n').count()
                })
                .unwrap_or(0)
        };
        ReleaseError::Input {
            file: self.path().display().to_string(),
            line: before + line_in_read,
            column: 1,
            path: "entry".into(),
            message,
        }
    }

    /// The current state, folded from the ledger (`None` before any release).
    /// Only the lines appended since the last call are read.
    ///
    /// # Errors
    ///
    /// As [`entries`](Self::entries).
    pub fn state(&self) -> Result<Option<ReleaseState>, ReleaseError> {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let meta = match std::fs::metadata(self.path()) {
            Ok(m) => Some(m),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(ReleaseError::io(
                    format!("cannot read {}", self.path().display()),
                    e,
                ));
            }
        };
        let (len, id) = meta.as_ref().map_or((0, None), |m| (m.len(), file_id(m)));
        if len < cache.offset || id != cache.file_id {
            *cache = Fold {
                file_id: id,
                ..Fold::default()
            };
        }
        if len > cache.offset {
            let (entries, end) = self.read_from(cache.offset)?;
            for e in &entries {
                fold(&mut cache.state, e);
            }
            cache.offset = end;
        }
        Ok(cache.state.clone())
    }

    /// Appends an entry (its `seq` and time are filled in), fsyncs it, and
    /// rewrites `state.json`, all under the ledger's lock. Returns the new
    /// state.
    ///
    /// # Errors
    ///
    /// [`ReleaseError::Io`] when the write or the fsync fails (the entry
    /// then did not happen).
    pub fn append(&self, entry: Entry) -> Result<ReleaseState, ReleaseError> {
        self.append_after(entry, None)
    }

    /// [`append`](Self::append), but only if the ledger's last entry is
    /// still `expected` (the state the caller decided on): a command from
    /// another process in between makes it a [`ReleaseError::Conflict`].
    ///
    /// # Errors
    ///
    /// As [`append`](Self::append), and [`ReleaseError::Conflict`].
    pub fn append_after(
        &self,
        mut entry: Entry,
        expected: Option<u64>,
    ) -> Result<ReleaseState, ReleaseError> {
        let _lock = self.lock()?;
        let state = self.state()?;
        if let Some(seq) = expected {
            let now = state.as_ref().map_or(0, |s| s.seq);
            if now != seq {
                return Err(ReleaseError::Conflict(format!(
                    "the ledger moved on (entry {now}, expected {seq}): another command changed the release"
                )));
            }
        }
        entry.seq = state.as_ref().map_or(0, |s| s.seq) + 1;
        if entry.time_ms == 0 {
            entry.time_ms = now_ms();
        }
        let path = self.path();
        let what = || format!("cannot append to {}", path.display());
        let mut line = serde_json::to_vec(&entry)
            .map_err(|e| ReleaseError::io("cannot encode a ledger entry", e))?;
        line.push(b'\n');
        let mut f = File::options()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| ReleaseError::io(what(), e))?;
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        // A torn last line (a crash mid-write) is cut before appending.
        let len = f.metadata().map_err(|e| ReleaseError::io(what(), e))?.len();
        if len > cache.offset {
            f.set_len(cache.offset)
                .map_err(|e| ReleaseError::io(what(), e))?;
        }
        f.write_all(&line)
            .and_then(|()| f.sync_all())
            .map_err(|e| ReleaseError::io(what(), e))?;
        cache.offset += line.len() as u64;
        cache.file_id = f.metadata().ok().as_ref().and_then(file_id);
        fold(&mut cache.state, &entry);
        let s = cache
            .state
            .clone()
            .unwrap_or_else(|| unreachable!("just folded an entry"));
        drop(cache);
        // state.json is a cache of the fold, rebuilt from the ledger at
        // will: replaced atomically, without its own fsync.
        let json = serde_json::to_vec_pretty(&s)
            .map_err(|e| ReleaseError::io("cannot encode the state", e))?;
        let tmp = self.dir.join(".state.json.tmp");
        std::fs::write(&tmp, &json)
            .and_then(|()| std::fs::rename(&tmp, self.dir.join("state.json")))
            .map_err(|e| {
                ReleaseError::io(format!("cannot write {}/state.json", self.dir.display()), e)
            })?;
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(kind: EntryKind, phase: ReleasePhase, weight: u32) -> Entry {
        Entry {
            seq: 0,
            time_ms: 0,
            release: "r1".into(),
            kind,
            phase,
            weight,
            failed_checks: 0,
            reason: None,
            detail: Value::Null,
        }
    }

    #[test]
    fn the_state_is_the_fold_and_a_torn_tail_never_happened() {
        let dir = tempfile::tempdir().unwrap();
        let l = Ledger::open(dir.path()).unwrap();
        let mut start = entry(EntryKind::Start, ReleasePhase::Pending, 0);
        start.detail = serde_json::json!({"stable_version": "1.0", "canary_version": "1.1"});
        l.append(start).unwrap();
        l.append(entry(EntryKind::Weight, ReleasePhase::Progressing, 5))
            .unwrap();
        let s = l.state().unwrap().unwrap();
        assert_eq!(
            (s.phase, s.weight, s.seq),
            (ReleasePhase::Progressing, 5, 2)
        );
        assert_eq!(s.canary_version, "1.1");
        // A kill in the middle of a write leaves half a line.
        let mut f = File::options()
            .append(true)
            .open(dir.path().join("ledger.jsonl"))
            .unwrap();
        f.write_all(br#"{"seq":3,"time_ms":1,"release":"r1","kind":"weight","pha"#)
            .unwrap();
        drop(f);
        let s = l.state().unwrap().unwrap();
        assert_eq!((s.weight, s.seq), (5, 2), "the torn entry never happened");
        let s = l
            .append(entry(EntryKind::Weight, ReleasePhase::Progressing, 25))
            .unwrap();
        assert_eq!((s.weight, s.seq), (25, 3));
        assert_eq!(l.entries().unwrap().len(), 3);
        let cached: ReleaseState =
            serde_json::from_slice(&std::fs::read(dir.path().join("state.json")).unwrap()).unwrap();
        assert_eq!(cached, s);
    }

    #[test]
    fn a_corrupt_line_in_the_middle_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let l = Ledger::open(dir.path()).unwrap();
        l.append(entry(EntryKind::Start, ReleasePhase::Pending, 0))
            .unwrap();
        let p = dir.path().join("ledger.jsonl");
        let mut text = std::fs::read_to_string(&p).unwrap();
        text.push_str("garbage\n");
        std::fs::write(&p, &text).unwrap();
        l.append(entry(EntryKind::Weight, ReleasePhase::Progressing, 5))
            .unwrap_err();
        let mut text = std::fs::read_to_string(&p).unwrap();
        text.push_str(
            &serde_json::to_string(&entry(EntryKind::Weight, ReleasePhase::Progressing, 5))
                .unwrap(),
        );
        text.push('\n');
        std::fs::write(&p, &text).unwrap();
        let err = l.entries().unwrap_err().to_string();
        assert!(err.contains("ledger.jsonl:2:1"), "{err}");
    }
}

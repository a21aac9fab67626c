//! Golden cases and the store: a directory with one pretty-printed JSON
//! file per case (stable key order, so diffs review well in git), written
//! atomically under one store lock; the whole store also exports to and
//! imports from one JSONL file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use flightdeck_obs_core::locate::{MAX_NESTING, check_nesting, shown};
use serde::{Deserialize, Serialize};

use crate::error::GoldenError;
use crate::profile::Profile;
use crate::tree::{Span, Tree};

/// The format marker every case file carries.
pub const FORMAT_VERSION: u32 = 1;

/// The assertions file beside the cases (see [`crate::Spec`]).
pub const SPEC_FILE: &str = "golden.yaml";

const LOCK_FILE: &str = ".golden.lock";

/// One golden case: a name and the canonical tree of one trace, with a
/// latency profile when it was recorded over several runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    /// The case's name (the key its captures are filed under).
    pub name: String,
    /// The canonical span tree.
    pub tree: Tree,
    /// Per-path self-time distributions, from `record --runs N`.
    pub profile: Option<Profile>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    flightdeck_golden: u32,
    name: String,
    spans: Vec<Span>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    profile: Option<Profile>,
}

impl Case {
    /// A case from a tree.
    pub fn new(name: impl Into<String>, tree: Tree) -> Self {
        Self {
            name: name.into(),
            tree,
            profile: None,
        }
    }

    /// The case as pretty-printed JSON (keys in a fixed order, attributes
    /// sorted), ending in a newline.
    pub fn to_json_pretty(&self) -> String {
        let mut s = serde_json::to_string_pretty(&self.file()).expect("cases serialize");
        s.push('\n');
        s
    }

    /// The case as one JSON line (for the JSONL export).
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(&self.file()).expect("cases serialize")
    }

    fn file(&self) -> CaseFile {
        CaseFile {
            flightdeck_golden: FORMAT_VERSION,
            name: self.name.clone(),
            spans: self.tree.spans().to_vec(),
            profile: self.profile.clone(),
        }
    }

    /// Reads a case from JSON text; `file` (and `line`, for JSONL) name it
    /// in errors.
    ///
    /// # Errors
    ///
    /// [`GoldenError::Parse`] at `file:line:column`, or
    /// [`GoldenError::Invalid`] naming the field.
    pub fn from_json(text: &str, file: &str, line: usize) -> Result<Self, GoldenError> {
        if let Err(e) = check_nesting(text, MAX_NESTING) {
            return Err(GoldenError::Parse {
                file: file.to_owned(),
                line: line + e.line,
                column: e.column,
                message: format!("nested deeper than {} levels", e.limit),
            });
        }
        let f: CaseFile =
            serde_json::from_str(text).map_err(|e| GoldenError::parse_json(file, line, &e))?;
        let at = if line > 0 {
            format!("{file}:{}", line + 1)
        } else {
            file.to_owned()
        };
        if f.flightdeck_golden != FORMAT_VERSION {
            return Err(GoldenError::Invalid {
                file: at,
                field: "flightdeck_golden".into(),
                message: format!("version {} is not {FORMAT_VERSION}", f.flightdeck_golden),
            });
        }
        if f.name.is_empty() {
            return Err(GoldenError::Invalid {
                file: at,
                field: "name".into(),
                message: "the case name is empty".into(),
            });
        }
        let tree = Tree::from_spans(f.spans, &at)?;
        if tree.is_empty() {
            return Err(GoldenError::Invalid {
                file: at,
                field: "spans".into(),
                message: "a case needs at least one span".into(),
            });
        }
        if let Some(p) = &f.profile {
            p.validate(&at)?;
        }
        Ok(Self {
            name: f.name,
            tree,
            profile: f.profile,
        })
    }
}

/// The file name a case is stored under: its name with anything but
/// `A-Z a-z 0-9 . _ -` replaced by `_`, plus a short hash of the name when
/// anything was replaced (so two names never share a file).
pub fn file_name(case: &str) -> String {
    let mut out: String = case
        .chars()
        .take(100)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out != case || out.starts_with('.') {
        // FNV-1a: stable across runs and platforms.
        let mut h: u32 = 0x811c_9dc5;
        for b in case.bytes() {
            h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
        }
        out = format!("{}-{h:08x}", out.trim_start_matches('.'));
    }
    out.push_str(".json");
    out
}

/// A directory of golden cases.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// The store in `dir` (created on the first write).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file a case lives in.
    pub fn path_of(&self, case: &str) -> PathBuf {
        self.dir.join(file_name(case))
    }

    /// Every case, by name. A missing directory is an empty store.
    ///
    /// # Errors
    ///
    /// [`GoldenError::Io`] for an unreadable file, a parse error naming
    /// `file:line:column` for a bad one, and [`GoldenError::Invalid`] when
    /// two files hold the same case name.
    pub fn load(&self) -> Result<BTreeMap<String, Case>, GoldenError> {
        let mut out = BTreeMap::new();
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(GoldenError::io(&self.dir, e)),
        };
        let mut files: Vec<PathBuf> = Vec::new();
        for entry in entries {
            let path = entry.map_err(|e| GoldenError::io(&self.dir, e))?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.ends_with(".json") && !name.starts_with('.') {
                files.push(path);
            }
        }
        files.sort();
        let mut from: BTreeMap<String, PathBuf> = BTreeMap::new();
        for path in files {
            let bytes = std::fs::read(&path).map_err(|e| GoldenError::io(&path, e))?;
            let shown_path = path.display().to_string();
            let text = std::str::from_utf8(&bytes).map_err(|e| GoldenError::Parse {
                file: shown_path.clone(),
                line: 1,
                column: e.valid_up_to() + 1,
                message: "not UTF-8".into(),
            })?;
            let case = Case::from_json(text, &shown_path, 0)?;
            if let Some(first) = from.insert(case.name.clone(), path.clone()) {
                return Err(GoldenError::Invalid {
                    file: shown_path,
                    field: "name".into(),
                    message: format!("case {} is also in {}", shown(&case.name), first.display()),
                });
            }
            out.insert(case.name.clone(), case);
        }
        Ok(out)
    }

    /// Writes a case atomically (temporary file, fsync, rename) under the
    /// store's lock, replacing an earlier version.
    ///
    /// # Errors
    ///
    /// [`GoldenError::Io`] naming the file.
    pub fn write(&self, case: &Case) -> Result<PathBuf, GoldenError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| GoldenError::io(&self.dir, e))?;
        let path = self.path_of(&case.name);
        let body = case.to_json_pretty().into_bytes();
        flightdeck_obs_core::update_locked_by(
            &path,
            &self.dir.join(LOCK_FILE),
            |_| Ok::<_, std::io::Error>(Some(body)),
            |_| Ok(()),
        )
        .map_err(|e| GoldenError::io(&path, e))?;
        Ok(path)
    }

    /// The whole store as JSONL, one case per line, in name order.
    ///
    /// # Errors
    ///
    /// As [`load`](Self::load).
    pub fn export_jsonl(&self) -> Result<String, GoldenError> {
        let mut out = String::new();
        for case in self.load()?.values() {
            out.push_str(&case.to_json_line());
            out.push('\n');
        }
        Ok(out)
    }

    /// Reads a JSONL export and writes each case into this store; answers
    /// how many. Every line is checked before anything is written.
    ///
    /// # Errors
    ///
    /// A parse error naming `file:line`, or an I/O error.
    pub fn import_jsonl(&self, text: &str, file: &str) -> Result<usize, GoldenError> {
        let mut cases: Vec<Case> = Vec::new();
        let mut names = std::collections::HashSet::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let case = Case::from_json(line, file, i)?;
            if !names.insert(case.name.clone()) {
                return Err(GoldenError::Invalid {
                    file: format!("{file}:{}", i + 1),
                    field: "name".into(),
                    message: format!("case {} appears twice", shown(&case.name)),
                });
            }
            cases.push(case);
        }
        for case in &cases {
            self.write(case)?;
        }
        Ok(cases.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_safe_and_distinct() {
        assert_eq!(file_name("req-1"), "req-1.json");
        let a = file_name("a/b");
        let b = file_name("a_b");
        assert_ne!(a, b);
        assert!(a.starts_with("a_b-") && a.ends_with(".json"), "{a}");
        assert!(!file_name("..").starts_with('.'));
    }
}

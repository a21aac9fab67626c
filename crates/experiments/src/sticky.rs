//! Sticky bucketing: a user keeps the variation they were first assigned,
//! even when weights or coverage change later.
//!
//! Documents are keyed as the spec keys them: `"{attribute}||{value}"`
//! holding `{"{experiment}__{bucketVersion}": "{variation key}"}`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use serde::{Deserialize, Serialize};

use crate::error::StickyError;

/// One attribute value's assignments, as GrowthBook stores them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StickyAssignmentsDocument {
    /// The attribute's name, such as `id` or `deviceId`.
    pub attribute_name: String,
    /// The attribute's value as text.
    pub attribute_value: String,
    /// `"{experiment key}__{bucket version}"` → variation key.
    pub assignments: BTreeMap<String, String>,
}

impl StickyAssignmentsDocument {
    /// The document's key: `"{attribute_name}||{attribute_value}"`.
    pub fn key(&self) -> String {
        sticky_key(&self.attribute_name, &self.attribute_value)
    }
}

/// `"{attribute_name}||{attribute_value}"`.
pub fn sticky_key(attribute_name: &str, attribute_value: &str) -> String {
    format!("{attribute_name}||{attribute_value}")
}

/// Where sticky assignments live.
///
/// Reads happen during assignment, so implementations should be fast (an
/// in-process cache in front of any remote store). A failed save is logged
/// and the assignment still returned: stickiness degrades, serving does not.
pub trait StickyBucketService: Send + Sync + std::fmt::Debug + 'static {
    /// The document for one attribute value, if any.
    fn get_assignments(
        &self,
        attribute_name: &str,
        attribute_value: &str,
    ) -> Option<StickyAssignmentsDocument>;

    /// Replaces the document with the same key.
    ///
    /// # Errors
    ///
    /// [`StickyError`] when the store cannot be written.
    fn save_assignments(&self, doc: StickyAssignmentsDocument) -> Result<(), StickyError>;
}

/// Sticky assignments in memory (tests, single-process services).
#[derive(Debug, Default)]
pub struct InMemoryStickyBucketService {
    docs: RwLock<HashMap<String, StickyAssignmentsDocument>>,
}

impl InMemoryStickyBucketService {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every document, keyed `"{attribute}||{value}"`.
    pub fn all(&self) -> BTreeMap<String, StickyAssignmentsDocument> {
        self.docs
            .read()
            .map(|d| d.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    }
}

impl StickyBucketService for InMemoryStickyBucketService {
    fn get_assignments(&self, name: &str, value: &str) -> Option<StickyAssignmentsDocument> {
        self.docs
            .read()
            .ok()?
            .get(&sticky_key(name, value))
            .cloned()
    }

    fn save_assignments(&self, doc: StickyAssignmentsDocument) -> Result<(), StickyError> {
        let mut docs = self.docs.write().map_err(|_| StickyError::Poisoned)?;
        docs.insert(doc.key(), doc);
        Ok(())
    }
}

/// Sticky assignments on disk: one JSON file per attribute value in a
/// directory, each replaced atomically (write to a temporary file, then
/// rename), with an in-memory cache in front so reads never touch the disk
/// after the first.
#[derive(Debug)]
pub struct FileStickyBucketService {
    dir: PathBuf,
    cache: RwLock<HashMap<String, Option<StickyAssignmentsDocument>>>,
}

impl FileStickyBucketService {
    /// Uses (and creates) `dir`.
    ///
    /// # Errors
    ///
    /// [`StickyError::Io`] when the directory cannot be created.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, StickyError> {
        let dir = dir.into();
        // The documents' lock files live in `.locks/` (see `lock_for`).
        let locks = dir.join(".locks");
        std::fs::create_dir_all(&locks).map_err(|source| StickyError::Io {
            path: locks,
            source,
        })?;
        Ok(Self {
            dir,
            cache: RwLock::new(HashMap::new()),
        })
    }

    /// The file holding one key: the key percent-encoded so any attribute
    /// value is a safe file name.
    pub fn path_for(&self, key: &str) -> PathBuf {
        let mut name = String::with_capacity(key.len() + 5);
        for b in key.bytes() {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.' {
                name.push(char::from(b));
            } else {
                name.push_str(&format!("%{b:02X}"));
            }
        }
        name.push_str(".json");
        self.dir.join(name)
    }

    /// The lock file guarding `key`'s document: one of 64 in `.locks/`
    /// (created by [`open`](Self::open)), chosen by the key's FNV-1a hash,
    /// which every process computes alike (a lock file beside every
    /// document would double the store's files).
    fn lock_for(&self, key: &str) -> PathBuf {
        self.dir
            .join(".locks")
            .join(format!("{:02}.lock", crate::hash::fnv1a32(key) % 64))
    }

    fn read(path: &Path) -> Result<Option<StickyAssignmentsDocument>, StickyError> {
        match std::fs::read(path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|e| StickyError::Corrupt {
                        path: path.to_path_buf(),
                        message: e.to_string(),
                    })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StickyError::Io {
                path: path.to_path_buf(),
                source,
            }),
        }
    }
}

impl StickyBucketService for FileStickyBucketService {
    fn get_assignments(&self, name: &str, value: &str) -> Option<StickyAssignmentsDocument> {
        let key = sticky_key(name, value);
        if let Some(hit) = self.cache.read().ok()?.get(&key) {
            return hit.clone();
        }
        let doc = match Self::read(&self.path_for(&key)) {
            Ok(doc) => doc,
            Err(e) => {
                // A corrupt file means no assignment: the user is bucketed
                // afresh and the next save replaces the file.
                tracing::warn!(error = %e, "ignoring unreadable sticky bucket document");
                None
            }
        };
        if let Ok(mut cache) = self.cache.write() {
            cache.insert(key, doc.clone());
        }
        doc
    }

    fn save_assignments(&self, doc: StickyAssignmentsDocument) -> Result<(), StickyError> {
        let key = doc.key();
        let path = self.path_for(&key);
        // A read-modify-write under the file's lock: another process may
        // have saved this user's assignment to another experiment since
        // this one read the document, and that assignment must stay. The
        // new assignments win where both name an experiment.
        let mut merged = doc;
        let lock = self.lock_for(&key);
        flightdeck_obs_core::update_locked_by(
            &path,
            &lock,
            |old| {
                if let Some(old) =
                    old.and_then(|b| serde_json::from_slice::<StickyAssignmentsDocument>(b).ok())
                {
                    for (k, v) in old.assignments {
                        merged.assignments.entry(k).or_insert(v);
                    }
                }
                serde_json::to_vec_pretty(&merged)
                    .map(Some)
                    .map_err(|e| StickyError::Corrupt {
                        path: path.clone(),
                        message: e.to_string(),
                    })
            },
            |_| Ok(()),
        )
        .map_err(|e| match e {
            StickyError::Io { source, .. } => StickyError::Io {
                path: path.clone(),
                source,
            },
            other => other,
        })?;
        self.cache
            .write()
            .map_err(|_| StickyError::Poisoned)?
            .insert(key, Some(merged));
        Ok(())
    }
}

//! State files that several threads or processes update: written whole and
//! atomically, and changed under an OS file lock so no update is lost.
//!
//! A writer writes a temporary file beside the target, syncs it, renames it
//! over the target and syncs the directory, so a reader (or a crash) sees
//! the old file or the new one, never half of one. A read-modify-write
//! ([`update_locked`]) holds an exclusive `flock` on `<file>.lock` from the
//! read to the rename, so two processes changing the same file one after
//! the other both land. Temporary files left by a writer killed mid-write
//! are removed by the next locked update.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The directory holding `path` (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// The prefix of `path`'s temporary files: `.<name>.tmp-`.
fn temp_prefix(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!(".{name}.tmp-")
}

/// Writes `contents` to `path` through a temporary file in the same directory
/// and a rename, then syncs the directory, so a reader never sees half a
/// file, a failed write leaves the previous file in place, and a completed
/// write survives a crash.
///
/// # Errors
///
/// The I/O error of the step that failed; the temporary file is removed.
pub fn write_atomic(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let dir = parent_dir(path);
    // The process id and a counter keep concurrent writers in one process
    // (or two processes) from sharing a temporary file.
    let tmp = dir.join(format!(
        "{}{}-{}",
        temp_prefix(path),
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let write = || -> std::io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })?;
    sync_dir(dir)
}

/// Makes a rename in `dir` durable.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    match File::open(dir) {
        Ok(d) => d.sync_all().or_else(|e| {
            // Some file systems refuse to sync a directory; the rename
            // itself has happened.
            if e.kind() == std::io::ErrorKind::InvalidInput {
                Ok(())
            } else {
                Err(e)
            }
        }),
        Err(e) => Err(e),
    }
}

/// The lock file guarding `path`: `<path>.lock`.
pub(crate) fn lock_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".lock");
    PathBuf::from(s)
}

/// Removes the temporary files of `path` that writers killed mid-write left
/// behind. Only safe while holding `path`'s lock, so no live writer of
/// `path` is mid-write.
fn remove_stale_temps(path: &Path) {
    let prefix = temp_prefix(path);
    let Ok(entries) = std::fs::read_dir(parent_dir(path)) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Changes `path` under an exclusive OS lock: `change` gets the current
/// contents (`None` when the file does not exist) and answers the new
/// contents, or `None` to leave the file as it is, or an error. The new
/// contents are written with [`write_atomic`] before the lock is released,
/// and `after` then runs, still under the lock (to append an audit line
/// only once the change is durable, say).
///
/// Every writer of `path` must go through this function for updates not
/// to be lost; readers need no lock.
///
/// ```
/// # fn main() -> std::io::Result<()> {
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("count.txt");
/// for _ in 0..3 {
///     flightdeck_obs_core::update_locked(&path, |old| {
///         let n: u32 = old.map_or(0, |b| String::from_utf8_lossy(b).parse().unwrap_or(0));
///         Ok::<_, std::io::Error>(Some((n + 1).to_string().into_bytes()))
///     }, |_| Ok(()))?;
/// }
/// assert_eq!(std::fs::read_to_string(&path)?, "3");
/// # Ok(())
/// # }
/// ```
///
/// # Errors
///
/// What `change` or `after` return, or an I/O error (converted into `E`)
/// taking the lock, reading or writing.
pub fn update_locked<T, E: From<std::io::Error>>(
    path: &Path,
    change: impl FnOnce(Option<&[u8]>) -> Result<Option<Vec<u8>>, E>,
    after: impl FnOnce(bool) -> Result<T, E>,
) -> Result<T, E> {
    update_locked_by(path, &lock_path(path), change, after)
}

/// [`update_locked`] with the lock held on `lock` instead of
/// `<path>.lock`: a store of many small files can share a few lock files
/// (striped by key) rather than keep one beside each file. Every writer of
/// `path` must use the same lock file.
///
/// # Errors
///
/// As [`update_locked`].
pub fn update_locked_by<T, E: From<std::io::Error>>(
    path: &Path,
    lock: &Path,
    change: impl FnOnce(Option<&[u8]>) -> Result<Option<Vec<u8>>, E>,
    after: impl FnOnce(bool) -> Result<T, E>,
) -> Result<T, E> {
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(lock)?;
    lock.lock()?;
    remove_stale_temps(path);
    let old = match std::fs::read(path) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e.into()),
    };
    let changed = match change(old.as_deref())? {
        Some(new) => {
            write_atomic(path, &new)?;
            true
        }
        None => false,
    };
    let result = after(changed);
    drop(lock);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_locked_update_removes_stale_temporaries_of_its_file_only() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("kills.json");
        std::fs::write(dir.path().join(".kills.json.tmp-999-0"), b"half").unwrap();
        std::fs::write(dir.path().join(".other.json.tmp-999-0"), b"x").unwrap();
        update_locked(
            &p,
            |old| {
                assert!(old.is_none());
                Ok::<_, std::io::Error>(Some(b"{}".to_vec()))
            },
            |changed| {
                assert!(changed);
                Ok(())
            },
        )
        .unwrap();
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [".other.json.tmp-999-0", "kills.json", "kills.json.lock"]
        );
    }

    #[test]
    fn concurrent_locked_updates_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("n.txt");
        let barrier = std::sync::Barrier::new(8);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    barrier.wait();
                    for _ in 0..25 {
                        update_locked(
                            &p,
                            |old| {
                                let n: u32 = old
                                    .map(|b| String::from_utf8_lossy(b).parse().unwrap())
                                    .unwrap_or(0);
                                Ok::<_, std::io::Error>(Some((n + 1).to_string().into_bytes()))
                            },
                            |_| Ok(()),
                        )
                        .unwrap();
                    }
                });
            }
        });
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "200");
    }
}

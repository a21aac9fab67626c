//! The artifact store: each build is the service's binary under
//! `<store>/<version>/` with a manifest (version, git commit, sha256, size,
//! build time). Builds are immutable: adding a version again with another
//! binary is refused, and every read checks the digest.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::ReleaseError;

/// The binary's file name inside a build.
const BINARY: &str = "flightdeck";

/// What a build is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The version deploys name it by.
    pub version: String,
    /// The git commit it was built from (`unknown` outside a checkout).
    pub commit: String,
    /// The binary's SHA-256, lowercase hex.
    pub sha256: String,
    /// The binary's size in bytes.
    pub size: u64,
    /// When it entered the store (Unix milliseconds).
    pub built_ms: u64,
    /// The cargo profile it was built with (`release`, or `dev` in tests).
    pub profile: String,
}

/// One build: its manifest and its binary's path.
#[derive(Debug, Clone)]
pub struct Artifact {
    /// The manifest.
    pub manifest: Manifest,
    /// The binary.
    pub binary: PathBuf,
}

/// The store's directory.
#[derive(Debug, Clone)]
pub struct ArtifactStore {
    dir: PathBuf,
}

/// Checks a version string: 1 to 64 of `A-Z a-z 0-9 . _ - +`, the same
/// rule `flightdeck serve --build-version` applies.
///
/// # Errors
///
/// [`ReleaseError::Invalid`] naming the value.
pub fn check_version(version: &str) -> Result<(), ReleaseError> {
    let ok = !version.is_empty()
        && version.len() <= 64
        && !version.starts_with('.')
        && version
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-+".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ReleaseError::Invalid(format!(
            "version {}: use 1 to 64 of A-Z a-z 0-9 . _ - + (not starting with .)",
            flightdeck_obs_core::shown(version)
        )))
    }
}

/// A file's SHA-256, lowercase hex.
///
/// # Errors
///
/// [`ReleaseError::Io`] when it cannot be read.
pub fn digest(path: &Path) -> Result<String, ReleaseError> {
    Ok(sha256_of(path)?.0)
}

fn sha256_of(path: &Path) -> Result<(String, u64), ReleaseError> {
    let mut f = File::open(path)
        .map_err(|e| ReleaseError::io(format!("cannot read {}", path.display()), e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut size = 0u64;
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| ReleaseError::io(format!("cannot read {}", path.display()), e))?;
        if n == 0 {
            break;
        }
        size += n as u64;
        hasher.update(&buf[..n]);
    }
    let digest = hasher.finalize();
    let hex = digest.iter().map(|b| format!("{b:02x}")).collect();
    Ok((hex, size))
}

impl ArtifactStore {
    /// The store at `dir` (created on the first build).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Adds `binary` as `version`. Adding the same binary again is a no-op
    /// that answers the existing manifest.
    ///
    /// # Errors
    ///
    /// [`ReleaseError::Invalid`] for a bad version or a version already
    /// built from another binary; [`ReleaseError::Io`] when copying fails
    /// (nothing is left half-written: the build appears by one rename).
    pub fn add(
        &self,
        binary: &Path,
        version: &str,
        commit: &str,
        profile: &str,
    ) -> Result<Manifest, ReleaseError> {
        check_version(version)?;
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| ReleaseError::io(format!("cannot create {}", self.dir.display()), e))?;
        let lock = File::create(self.dir.join(".lock"))?;
        lock.lock()?;
        let (sha256, size) = sha256_of(binary)?;
        let target = self.dir.join(version);
        if target.exists() {
            let have = self.get(version)?;
            if have.manifest.sha256 == sha256 {
                return Ok(have.manifest);
            }
            return Err(ReleaseError::Invalid(format!(
                "version {version} is already built from another binary (sha256 {}); builds are immutable: give the new build a new version",
                have.manifest.sha256
            )));
        }
        let tmp = self
            .dir
            .join(format!(".tmp-{version}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp)?;
        let dest = tmp.join(BINARY);
        std::fs::copy(binary, &dest).map_err(|e| {
            ReleaseError::io(
                format!("cannot copy {} into the artifact store", binary.display()),
                e,
            )
        })?;
        let (copied, _) = sha256_of(&dest)?;
        if copied != sha256 {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(ReleaseError::io(
                format!("copying {}", binary.display()),
                "the copy's digest differs from the source's (was it being rebuilt?)",
            ));
        }
        let manifest = Manifest {
            version: version.to_owned(),
            commit: commit.to_owned(),
            sha256,
            size,
            built_ms: crate::ledger::now_ms(),
            profile: profile.to_owned(),
        };
        let mut f = File::create(tmp.join("manifest.json"))?;
        f.write_all(
            serde_json::to_string_pretty(&manifest)
                .unwrap_or_default()
                .as_bytes(),
        )?;
        f.sync_all()?;
        File::open(&dest)?.sync_all()?;
        std::fs::rename(&tmp, &target)
            .map_err(|e| ReleaseError::io(format!("cannot publish {}", target.display()), e))?;
        Ok(manifest)
    }

    /// The build of `version`, its digest checked.
    ///
    /// # Errors
    ///
    /// [`ReleaseError::Invalid`] when there is no such build (naming the
    /// ones there are) or its binary no longer matches its manifest.
    pub fn get(&self, version: &str) -> Result<Artifact, ReleaseError> {
        check_version(version)?;
        let dir = self.dir.join(version);
        let text = match std::fs::read_to_string(dir.join("manifest.json")) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let known: Vec<String> = self
                    .list()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|m| m.version)
                    .collect();
                return Err(ReleaseError::Invalid(format!(
                    "no build of version {version} in {} (built: {}); build it first (cargo xtask build)",
                    self.dir.display(),
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                )));
            }
            Err(e) => {
                return Err(ReleaseError::io(
                    format!("cannot read {}", dir.display()),
                    e,
                ));
            }
        };
        let manifest: Manifest = serde_json::from_str(&text)
            .map_err(|e| ReleaseError::Invalid(format!("{}/manifest.json: {e}", dir.display())))?;
        let binary = dir.join(BINARY);
        let (sha, _) = sha256_of(&binary)?;
        if sha != manifest.sha256 {
            return Err(ReleaseError::Invalid(format!(
                "{}: sha256 {sha} does not match the manifest's {}; the build was altered, rebuild it under a new version",
                binary.display(),
                manifest.sha256
            )));
        }
        Ok(Artifact { manifest, binary })
    }

    /// Every build's manifest, oldest first.
    ///
    /// # Errors
    ///
    /// [`ReleaseError::Io`] when the directory cannot be read.
    pub fn list(&self) -> Result<Vec<Manifest>, ReleaseError> {
        let mut out = Vec::new();
        let rd = match std::fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => {
                return Err(ReleaseError::io(
                    format!("cannot read {}", self.dir.display()),
                    e,
                ));
            }
        };
        for d in rd.flatten() {
            let name = d.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            if let Ok(text) = std::fs::read_to_string(d.path().join("manifest.json"))
                && let Ok(m) = serde_json::from_str::<Manifest>(&text)
            {
                out.push(m);
            }
        }
        out.sort_by(|a, b| a.built_ms.cmp(&b.built_ms).then(a.version.cmp(&b.version)));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_are_immutable_and_checked_on_read() {
        let dir = tempfile::tempdir().unwrap();
        let store = ArtifactStore::new(dir.path().join("artifacts"));
        let bin = dir.path().join("bin");
        std::fs::write(&bin, b"one").unwrap();
        let m = store.add(&bin, "1.0.0", "abc", "dev").unwrap();
        assert_eq!(
            m.sha256,
            "7692c3ad3540bb803c020b3aee66cd8887123234ea0c6e7143c0add73ff431ed"
        );
        // Again with the same bytes: the same build.
        assert_eq!(store.add(&bin, "1.0.0", "abc", "dev").unwrap(), m);
        std::fs::write(&bin, b"two").unwrap();
        let err = store
            .add(&bin, "1.0.0", "def", "dev")
            .unwrap_err()
            .to_string();
        assert!(err.contains("already built from another binary"), "{err}");
        store.add(&bin, "1.1.0", "def", "dev").unwrap();
        let versions: Vec<String> = store
            .list()
            .unwrap()
            .into_iter()
            .map(|m| m.version)
            .collect();
        assert_eq!(versions.len(), 2);
        // An altered binary is refused by name.
        std::fs::write(store.dir().join("1.0.0/flightdeck"), b"evil").unwrap();
        let err = store.get("1.0.0").unwrap_err().to_string();
        assert!(err.contains("does not match the manifest"), "{err}");
        let err = store.get("9.9.9").unwrap_err().to_string();
        assert!(
            err.contains("no build of version 9.9.9") && err.contains("1.1.0"),
            "{err}"
        );
        let err = store.add(&bin, "../x", "c", "dev").unwrap_err().to_string();
        assert!(
            err.contains("version \"../x\"") || err.contains("version ../x"),
            "{err}"
        );
    }
}

//! Errors, one enum per operation family.

use std::path::PathBuf;

/// One problem in a flags file, located as `file:line:column` (obs-core's
/// [`Problem`](flightdeck_obs_core::locate::Problem), shared with experiment
/// files).
pub use flightdeck_obs_core::locate::Problem;

/// A flags file (or payload) could not be loaded. Nothing changes in what
/// is served: the last good configuration stays.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The file could not be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// The file is malformed or invalid; every problem found is listed.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Problem>),
    /// An encrypted payload could not be decrypted.
    #[error("{path}: encrypted features: {source}")]
    Decrypt {
        /// Where the payload came from.
        path: String,
        /// Why.
        #[source]
        source: DecryptError,
    },
}

impl LoadError {
    /// The problems, when the content was invalid.
    pub fn problems(&self) -> &[Problem] {
        match self {
            LoadError::Invalid(p) => p,
            _ => &[],
        }
    }
}

/// Decrypting a GrowthBook payload failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecryptError {
    /// The key is not base64 for 16 bytes (AES-128).
    #[error("the decryption key is not base64 of 16 bytes")]
    BadKey,
    /// The payload is not `base64(iv).base64(ciphertext)` with a 16-byte iv.
    #[error("the payload is not `iv.ciphertext` in base64 with a 16-byte iv")]
    BadPayload,
    /// Decryption failed (wrong key or corrupted ciphertext).
    #[error("decryption failed: wrong key or corrupted payload")]
    Failed,
    /// No key was configured for an encrypted payload.
    #[error("the payload is encrypted but no decryption key is configured")]
    MissingKey,
}

/// A kill switch or its audit log failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KillError {
    /// No flag with this key is loaded.
    #[error("unknown flag {0:?}")]
    UnknownFlag(String),
    /// The audit log could not be written; the switch was not flipped.
    #[error("cannot append to the audit log {path}: {source}")]
    Audit {
        /// The audit log.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// A reason is required.
    #[error("a kill switch needs a reason (who is paged reads it)")]
    MissingReason,
    /// The kill file exists but does not parse. A kill or restore sets it
    /// aside as `<file>.corrupt` and writes a good one.
    #[error(
        "the kill file {path} is corrupt ({message}); a kill or restore replaces it, keeping a copy"
    )]
    Corrupt {
        /// The kill file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// An I/O error without a path yet (converted to `Audit` by the store).
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// A flag source could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The poller thread could not start.
    #[error("cannot start the flag source thread: {0}")]
    Thread(#[source] std::io::Error),
    /// The endpoint URL is not usable.
    #[error("invalid flag source URL {url:?}: {reason}")]
    BadUrl {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_print_as_file_line_column() {
        let p = Problem::new(
            "flags.yaml",
            7,
            5,
            "flag \"x\": rollout_percentage 120 is outside 0..=100",
        );
        assert_eq!(
            p.to_string(),
            "flags.yaml:7:5: flag \"x\": rollout_percentage 120 is outside 0..=100"
        );
        let e = LoadError::Invalid(vec![p.clone(), p]);
        assert_eq!(e.to_string().lines().count(), 2);
    }
}

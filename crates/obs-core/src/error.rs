//! Error types, one per operation family.

use std::path::PathBuf;

/// A trace or span id string that is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} \"{value}\": {reason}")]
pub struct ParseIdError {
    pub(crate) kind: &'static str,
    pub(crate) value: String,
    pub(crate) reason: &'static str,
}

/// A correlation id that is not valid. Fix the caller, or let
/// [`CorrelationId::from_inbound`](crate::CorrelationId::from_inbound) replace it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CorrelationIdError {
    /// The value is empty.
    #[error("invalid correlation id: it is empty")]
    Empty,
    /// The value is longer than allowed.
    #[error("invalid correlation id: {len} bytes is longer than the maximum of {max}")]
    TooLong {
        /// Length of the rejected value in bytes.
        len: usize,
        /// The maximum length.
        max: usize,
    },
    /// The value holds a byte outside visible ASCII.
    #[error(
        "invalid correlation id \"{value}\": byte {position} is not visible ASCII (allowed: '!' to '~')"
    )]
    InvalidByte {
        /// Index of the first bad byte.
        position: usize,
        /// The value with unprintable bytes escaped, at most 64 bytes of it.
        value: String,
    },
}

/// Building a layer, exporter or collector failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A file could not be created or opened for writing. Check that the
    /// directory exists (or can be created) and is writable.
    #[error("cannot open {path} for writing: {source}")]
    OpenFile {
        /// The path that failed.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// A setting is outside its allowed range.
    #[error("invalid {name} = {value}: {expected}")]
    InvalidValue {
        /// The setting's name.
        name: &'static str,
        /// The rejected value.
        value: String,
        /// What would be accepted.
        expected: &'static str,
    },
    /// The background writer thread could not be started.
    #[error("cannot start the background writer thread: {0}")]
    Thread(#[source] std::io::Error),
}

/// Flushing or shutting down an exporter did not deliver everything.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExportError {
    /// The deadline passed before the queue drained; `pending` records may be lost.
    #[error("flush did not finish within {timeout_ms} ms; {pending} records still queued")]
    Timeout {
        /// The deadline that passed.
        timeout_ms: u64,
        /// Records still waiting.
        pending: u64,
    },
    /// Some records were dropped or failed to write since the exporter started.
    #[error("{dropped} records dropped (queue full) and {failed} failed to write")]
    Lost {
        /// Records dropped because the queue was full.
        dropped: u64,
        /// Records whose write failed (for example, a full disk).
        failed: u64,
    },
    /// The exporter was already shut down.
    #[error("the exporter is already shut down")]
    AlreadyShutDown,
    /// The writer thread stopped unexpectedly.
    #[error("the writer thread stopped unexpectedly")]
    WriterGone,
}

/// A settings file, environment variable or value is invalid.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// The settings file could not be read.
    #[error("cannot read settings file {path}: {message}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        message: String,
    },
    /// The settings file is not valid TOML or has a wrongly typed value.
    /// The message includes the line and column.
    #[error("invalid settings file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A key that is not a setting. Check the spelling against the list.
    #[error("unknown setting `{key}` in {origin}; known settings: {known}")]
    UnknownKey {
        /// The unknown key.
        key: String,
        /// Where it came from (a file path or "environment").
        origin: String,
        /// The accepted keys.
        known: String,
    },
    /// A value outside its allowed range.
    #[error(
        "invalid value for `{key}` from {origin}: {} ({expected})",
        crate::locate::shown(value)
    )]
    InvalidValue {
        /// The setting's key.
        key: &'static str,
        /// The value as given.
        value: String,
        /// Where it came from.
        origin: String,
        /// The accepted range or form.
        expected: String,
    },
}

/// Setting up observability failed.
///
/// The facade's `flightdeck::InitError` wraps it and adds the OpenTelemetry
/// export's errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InitError {
    /// The settings are invalid.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// A layer or exporter could not be built.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// A global subscriber or metrics recorder is already installed; `init`
    /// can run once per process.
    #[error("a global {what} is already installed; call init once per process")]
    AlreadyInstalled {
        /// Which global: "tracing subscriber" or "metrics recorder".
        what: &'static str,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_lowercase_and_name_the_value() {
        let e = BuildError::OpenFile {
            path: "/nope/traces.jsonl".into(),
            source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        };
        assert!(
            e.to_string()
                .starts_with("cannot open /nope/traces.jsonl for writing")
        );
        let e = ExportError::Lost {
            dropped: 3,
            failed: 1,
        };
        assert_eq!(
            e.to_string(),
            "3 records dropped (queue full) and 1 failed to write"
        );
        let e = SettingsError::InvalidValue {
            key: "trace_sample_rate",
            value: "1.5".into(),
            origin: "file a.toml".into(),
            expected: "a number from 0.0 to 1.0".into(),
        };
        assert_eq!(
            e.to_string(),
            "invalid value for `trace_sample_rate` from file a.toml: \"1.5\" (a number from 0.0 to 1.0)"
        );
    }
}

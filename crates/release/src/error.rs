//! The release crate's one error type.

/// What went wrong, naming the bad value and where it is.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReleaseError {
    /// A file that does not parse or validate: `file:line:column: path: message`.
    #[error("{file}:{line}:{column}: {path}: {message}")]
    Input {
        /// The file (or a label such as `<stdin>`).
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The field's path (`metrics[2].name`).
        path: String,
        /// What is wrong.
        message: String,
    },
    /// Input that parsed but cannot be used (a pair naming no metric, say).
    #[error("{0}")]
    Invalid(String),
    /// The ledger changed between reading the state and acting on it.
    #[error("{0}")]
    Conflict(String),
    /// A provider, router or the ledger failed.
    #[error("{what}: {message}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        message: String,
    },
}

impl From<std::io::Error> for ReleaseError {
    fn from(e: std::io::Error) -> Self {
        Self::io("a locked file (lock, read or write)", e)
    }
}

impl ReleaseError {
    /// Whether the error is bad input (exit 2) rather than a failure to run.
    pub fn is_input(&self) -> bool {
        matches!(self, Self::Input { .. } | Self::Invalid(_))
    }

    pub(crate) fn io(what: impl Into<String>, e: impl std::fmt::Display) -> Self {
        Self::Io {
            what: what.into(),
            message: e.to_string(),
        }
    }
}

//! Errors, one enum per operation family.

use std::path::PathBuf;

/// An experiment file could not be loaded. Every variant names the file and,
/// where it can, the line, column and field.
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
    /// The file is not valid JSON, or a field has the wrong type. Fix the
    /// value at the position given.
    /// Printed as `file:line:column: field: message` (obs-core's located
    /// [`Problem`](flightdeck_obs_core::locate::Problem), as flag files'
    /// problems are); the field is a path such as `weights[1]` (`.` for the
    /// document).
    #[error("{0}")]
    Invalid(flightdeck_obs_core::locate::Problem),
}

/// A sticky-bucket store failed.
#[derive(Debug, thiserror::Error)]
pub enum StickyError {
    /// Reading or writing a document failed; check the directory's
    /// permissions and free space.
    #[error("sticky bucket store {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// A stored document is not valid; it is ignored and will be replaced.
    #[error("sticky bucket document {path} is corrupt: {message}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A thread panicked while holding the store's lock.
    #[error("sticky bucket store lock poisoned by a panicking thread")]
    Poisoned,
}

impl From<std::io::Error> for StickyError {
    /// An I/O error whose path the store fills in.
    fn from(source: std::io::Error) -> Self {
        Self::Io {
            path: PathBuf::new(),
            source,
        }
    }
}

/// Recording or reading experiment results failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResultsError {
    /// The results file could not be opened or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// A line of a results or exposures file is not a valid record.
    #[error("{path}:{line}: {message}")]
    BadRecord {
        /// The file.
        path: String,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The writer could not start.
    #[error("cannot start the results writer: {0}")]
    Writer(#[from] flightdeck_obs_core::BuildError),
    /// No experiment is registered under this id.
    #[error("unknown experiment {0:?}; register it first")]
    UnknownExperiment(String),
    /// A metric value is not finite.
    #[error("metric {metric:?} has non-finite value {value}")]
    NonFinite {
        /// The metric.
        metric: String,
        /// The value.
        value: f64,
    },
    /// The statistics could not be computed.
    #[error("statistics: {0}")]
    Stats(#[from] flightdeck_stats::StatsError),
}

/// Registering or changing an experiment in the manager failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ManagerError {
    /// An experiment with this id is already registered.
    #[error("experiment {0:?} is already registered")]
    Duplicate(String),
    /// No experiment is registered under this id.
    #[error("unknown experiment {0:?}; register it first")]
    Unknown(String),
    /// The lifecycle does not allow this step.
    #[error("experiment {id:?} cannot go from {from} to {to}")]
    BadTransition {
        /// The experiment.
        id: String,
        /// Its current state.
        from: &'static str,
        /// The state asked for.
        to: &'static str,
    },
    /// The variation chosen to serve after stopping does not exist.
    #[error("experiment {id:?} has no variation {index}")]
    NoSuchVariation {
        /// The experiment.
        id: String,
        /// The index asked for.
        index: usize,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_errors_name_file_line_and_field() {
        let e = LoadError::Invalid(
            flightdeck_obs_core::locate::Problem::new(
                "exp.json",
                3,
                14,
                "invalid type: string \"x\", expected f64",
            )
            .with_field("weights[1]"),
        );
        assert_eq!(
            e.to_string(),
            "exp.json:3:14: weights[1]: invalid type: string \"x\", expected f64"
        );
    }
}

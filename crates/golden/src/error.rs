//! Errors. Every message names the bad value (escaped and cut with
//! [`shown`](flightdeck_obs_core::locate::shown)) and where it is.

use std::path::PathBuf;

/// What is wrong with one trace's span tree.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TraceProblem {
    /// Two spans share an id.
    #[error("span {name} reuses span id {id}")]
    DuplicateSpanId {
        /// The second span's name, as shown.
        name: String,
        /// The id, in hex.
        id: String,
    },
    /// A span's parent is not in the trace.
    #[error("span {name} (id {id}) is an orphan: its parent {parent} is not in the trace")]
    Orphan {
        /// The span's name, as shown.
        name: String,
        /// Its id, in hex.
        id: String,
        /// The missing parent's id, in hex.
        parent: String,
    },
    /// Spans whose parents form a loop (no root above them).
    #[error(
        "span {name} (id {id}) is in a parent cycle: following its parents never reaches a root"
    )]
    Cycle {
        /// One span in the loop, as shown.
        name: String,
        /// Its id, in hex.
        id: String,
    },
    /// The tree is deeper than [`MAX_DEPTH`](crate::MAX_DEPTH).
    #[error("span {name} is nested deeper than {limit} levels")]
    TooDeep {
        /// The span that crossed the limit, as shown.
        name: String,
        /// The limit.
        limit: usize,
    },
    /// A span ends before it starts.
    #[error("span {name} ends before it starts ({start} > {end} ns)")]
    EndsBeforeStart {
        /// The span, as shown.
        name: String,
        /// Its start, Unix nanoseconds.
        start: u64,
        /// Its end, Unix nanoseconds.
        end: u64,
    },
    /// A trace with no spans.
    #[error("the trace has no spans")]
    Empty,
}

/// An error from this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GoldenError {
    /// A trace whose spans do not form a tree.
    #[error("trace {trace}: {problem}")]
    Trace {
        /// The trace id (hex), or where the trace came from.
        trace: String,
        /// What is wrong.
        problem: TraceProblem,
    },
    /// Text that does not parse, with its place.
    #[error("{file}:{line}:{column}: {message}")]
    Parse {
        /// The file (or `-` for standard input).
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// A file that parses but holds a bad value.
    #[error("{file}: {field}: {message}")]
    Invalid {
        /// The file.
        file: String,
        /// The field (a dotted path), e.g. `spans[3].path`.
        field: String,
        /// What is wrong, naming the value.
        message: String,
    },
    /// A selector or assertion that does not parse.
    #[error("{what} {text}: column {column}: {message}")]
    Syntax {
        /// `selector` or `assertion`.
        what: &'static str,
        /// The text, as shown.
        text: String,
        /// 1-based column of the problem.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl GoldenError {
    /// Whether the input (a file, a trace, a selector) is bad, as opposed
    /// to the machine failing to read or write it.
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, Self::Io { .. })
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn parse_json(file: &str, line_offset: usize, e: &serde_json::Error) -> Self {
        // serde_json's Display appends " at line L column C"; keep only the message.
        let text = e.to_string();
        let message = text
            .rsplit_once(" at line ")
            .map_or(text.as_str(), |(m, _)| m)
            .to_owned();
        Self::Parse {
            file: file.to_owned(),
            line: line_offset + e.line(),
            column: e.column(),
            message,
        }
    }
}

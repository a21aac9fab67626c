//! Error types.

/// An SLO spec, alert-windows file or duration that cannot be used.
///
/// Messages name the document, the field and the value, so the fix is clear.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// The YAML does not parse, or does not fit the spec's shape.
    #[error("{origin}: {message}")]
    Parse {
        /// The file (or "input").
        origin: String,
        /// The parser's message, with line and column when known.
        message: String,
    },
    /// A field has a value the spec does not allow.
    #[error("{origin}: {field}: {message}")]
    Invalid {
        /// The file (or "input"), with the document or SLO when known.
        origin: String,
        /// The field path, e.g. `slos[1].objective`.
        field: String,
        /// What is wrong, naming the value.
        message: String,
    },
}

impl SpecError {
    /// Refuses text nested deeper than
    /// [`MAX_NESTING`](flightdeck_obs_core::locate::MAX_NESTING) before
    /// `serde_norway` sees it: its recursion would overflow the stack, and
    /// it takes quadratic time on deep flows.
    pub(crate) fn check_nesting(text: &str, origin: &str) -> Result<(), Self> {
        use flightdeck_obs_core::locate;
        locate::check_nesting(text, locate::MAX_NESTING).map_err(|e| Self::Parse {
            origin: origin.to_owned(),
            message: format!(
                "collections nested deeper than {} levels at line {} column {}",
                e.limit, e.line, e.column
            ),
        })
    }

    pub(crate) fn invalid(
        origin: &str,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self::Invalid {
            origin: origin.to_owned(),
            field: field.into(),
            message: message.into(),
        }
    }
}

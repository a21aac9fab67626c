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
    /// A field has a value the spec does not allow: obs-core's located
    /// [`Problem`](flightdeck_obs_core::locate::Problem), as experiment and
    /// flag files report theirs. `file:line:column: field: message` when the
    /// field is found in the text, else `origin: field: message`; the field
    /// is a path such as `slos[1].objective`.
    #[error("{0}")]
    Invalid(flightdeck_obs_core::locate::Problem),
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
        Self::Invalid(
            flightdeck_obs_core::locate::Problem::new(origin, 0, 0, message).with_field(field),
        )
    }

    /// The same error, with an invalid field's line and column in `text`
    /// when they can be found.
    #[must_use]
    pub(crate) fn located_in(self, text: &str) -> Self {
        match self {
            Self::Invalid(p) => Self::Invalid(p.located_in(text)),
            other => other,
        }
    }
}

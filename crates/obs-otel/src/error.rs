//! Errors, one enum per operation family.

/// A setting (usually an `OTEL_*` variable) has a value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// The value is not one of those accepted; the message lists them.
    #[error("{name}={value:?}: {expected}")]
    Invalid {
        /// The variable or setting.
        name: &'static str,
        /// The rejected value.
        value: String,
        /// What would be accepted.
        expected: &'static str,
    },
}

//! The attribute value length limit: how much of one string value a span
//! attribute, an event attribute or a log field keeps.
//!
//! OpenTelemetry's `OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT` has no limit by
//! default; here it defaults to 4096 bytes, so a 100 KB `user-agent` header
//! is not copied into every log line of its request. Values are cut on a
//! character boundary.

use std::sync::atomic::{AtomicUsize, Ordering};

/// The default limit, in bytes.
pub const DEFAULT_ATTRIBUTE_VALUE_LIMIT: usize = 4096;

/// The environment variable that sets the limit (OpenTelemetry's name).
pub const ENV_ATTRIBUTE_VALUE_LENGTH_LIMIT: &str = "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT";

static LIMIT: AtomicUsize = AtomicUsize::new(DEFAULT_ATTRIBUTE_VALUE_LIMIT);

/// Sets the process-wide attribute value length limit, in bytes (at least 1).
pub fn set_attribute_value_limit(bytes: usize) {
    LIMIT.store(bytes.max(1), Ordering::Relaxed);
}

/// The attribute value length limit in force, in bytes.
pub fn attribute_value_limit() -> usize {
    LIMIT.load(Ordering::Relaxed)
}

/// Reads `OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT` into the limit when it is set.
///
/// # Errors
///
/// [`SettingsError::InvalidValue`](crate::SettingsError::InvalidValue) when
/// the value is not a positive whole number.
pub fn attribute_value_limit_from_env() -> Result<(), crate::SettingsError> {
    match std::env::var(ENV_ATTRIBUTE_VALUE_LENGTH_LIMIT) {
        Ok(v) if !v.trim().is_empty() => match v.trim().parse::<usize>() {
            Ok(n) if n > 0 => {
                set_attribute_value_limit(n);
                Ok(())
            }
            _ => Err(crate::SettingsError::InvalidValue {
                key: "attribute_value_length_limit",
                value: v,
                origin: format!("environment {ENV_ATTRIBUTE_VALUE_LENGTH_LIMIT}"),
                expected: "a positive whole number of bytes".into(),
            }),
        },
        _ => Ok(()),
    }
}

/// `value` cut to the limit on a character boundary.
///
/// ```
/// use flightdeck_obs_core::limits::capped;
/// assert_eq!(capped("short"), "short");
/// assert_eq!(capped(&"é".repeat(5000)).len(), 4096);
/// ```
#[inline]
pub fn capped(value: &str) -> &str {
    crate::locate::prefix(value, attribute_value_limit())
}

//! [`InitError`]: why [`init`](crate::init) or [`layers`](crate::layers) could not set up.

use flightdeck_obs_core::{BuildError, SettingsError};

/// Why [`init`](crate::init) or [`layers`](crate::layers) could not set up:
/// obs-core's reasons (bad settings, a file that cannot be opened, a global
/// already installed), or the OpenTelemetry export, which only the facade builds.
///
/// Nothing is installed when one of these comes back, so the call can be
/// retried once the cause is fixed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InitError {
    /// Settings, a layer or exporter, or an already installed global.
    #[error(transparent)]
    Core(#[from] flightdeck_obs_core::InitError),
    /// The OpenTelemetry export could not be set up (a bad `OTEL_*` variable
    /// or endpoint); the message names it.
    #[error("OpenTelemetry export: {0}")]
    Otel(String),
}

impl InitError {
    /// A global subscriber or metrics recorder is already installed.
    pub(crate) fn already_installed(what: &'static str) -> Self {
        Self::Core(flightdeck_obs_core::InitError::AlreadyInstalled { what })
    }

    /// Whether the cause is bad input (settings or `OTEL_*` variables) rather
    /// than a failure to run (a file that cannot be opened, a second `init`).
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            Self::Otel(_) | Self::Core(flightdeck_obs_core::InitError::Settings(_))
        )
    }
}

impl From<SettingsError> for InitError {
    fn from(e: SettingsError) -> Self {
        Self::Core(e.into())
    }
}

impl From<BuildError> for InitError {
    fn from(e: BuildError) -> Self {
        Self::Core(e.into())
    }
}

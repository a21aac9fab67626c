//! Errors, one enum per operation family.

/// A setting (usually an `OTEL_*` variable) has a value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// The value is not one of those accepted; the message lists them.
    #[error("{name}={}: {expected}", flightdeck_obs_core::shown(value))]
    Invalid {
        /// The variable or setting.
        name: &'static str,
        /// The rejected value.
        value: String,
        /// What would be accepted.
        expected: &'static str,
    },
}

/// The OTLP pipeline could not be built or did not deliver everything.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PipelineError {
    /// The exporter rejected its configuration (usually the endpoint).
    #[error("cannot build the OTLP exporter for {endpoint}: {message}")]
    Exporter {
        /// The endpoint.
        endpoint: String,
        /// The exporter's reason.
        message: String,
    },
    /// The runtime gRPC export needs could not start.
    #[error("cannot start the gRPC export runtime: {0}")]
    Runtime(String),
    /// Some spans were not delivered by the deadline.
    #[error(
        "{} of {} spans were not delivered ({} dropped from a full queue, {} in failed exports, the rest still queued at the deadline)",
        .0.undelivered(), .0.ended, .0.dropped, .0.failed
    )]
    Undelivered(crate::pipeline::ExportReport),
}

//! Request start/end helpers: a root span plus a start log line and an end
//! log line with `duration_ms` and the outcome, even when the request fails,
//! panics or is cancelled.

use std::fmt;
use std::future::Future;
use std::time::Instant;

use tracing::Instrument;
use tracing::field::Empty;

use crate::correlation::CorrelationId;
use crate::names::{attr, span};

/// The log target of request start and end lines.
pub const REQUEST_TARGET: &str = "flightdeck.request";

/// How a request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It succeeded.
    Ok,
    /// It failed with this message.
    Error(String),
    /// A panic unwound through it.
    Panicked,
    /// It was dropped before finishing (for example a cancelled future).
    Cancelled,
}

impl Outcome {
    /// The label used in logs and span attributes.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Error(_) => "error",
            Self::Panicked => "panicked",
            Self::Cancelled => "cancelled",
        }
    }
}

/// The level of a [`RequestScope`]'s `request started` line.
///
/// Behind a server layer that already marks the request's start (obs-otel's
/// `ServerLayer` opens the HTTP server span), the start line repeats it:
/// [`Debug`](Self::Debug) keeps it out of an `info` log and off the hot path,
/// and the finish line still carries the duration and the outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartLine {
    /// Logged at `info` (the default).
    #[default]
    Info,
    /// Logged at `debug`.
    Debug,
}

/// One request: its root span (named [`span::REQUEST`]), its correlation
/// id, and the start time.
///
/// Creating it logs `request started`; finishing or dropping it logs
/// `request finished` with `duration_ms` and `outcome`, sets the span's
/// outcome attribute, and marks the span failed unless the outcome is `ok`.
///
/// ```
/// use flightdeck_obs_core::{CorrelationId, RequestScope};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let request = RequestScope::start("answer", CorrelationId::new("req-9")?);
/// let answer = request.in_scope(|| {
///     tracing::info!("working");
///     42
/// });
/// request.finish_ok();
/// assert_eq!(answer, 42);
/// # Ok(())
/// # }
/// ```
pub struct RequestScope {
    span: tracing::Span,
    correlation_id: CorrelationId,
    started: Instant,
    finished: bool,
}

impl fmt::Debug for RequestScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestScope")
            .field("correlation_id", &self.correlation_id)
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

impl RequestScope {
    /// Opens the request span for `operation` and logs the start line.
    pub fn start(operation: &str, correlation_id: CorrelationId) -> Self {
        Self::start_with(operation, correlation_id, StartLine::Info)
    }

    /// As [`start`](Self::start), with the start line at `start_line`'s level.
    pub fn start_with(
        operation: &str,
        correlation_id: CorrelationId,
        start_line: StartLine,
    ) -> Self {
        let span = tracing::info_span!(
            target: REQUEST_TARGET,
            span::REQUEST,
            correlation_id = %correlation_id,
            otel.kind = "server",
            { attr::FLIGHTDECK_REQUEST_OPERATION } = operation,
            { attr::FLIGHTDECK_REQUEST_OUTCOME } = Empty,
            otel.status_code = Empty,
            otel.status_message = Empty,
        );
        Self::begin(span, operation, correlation_id, start_line)
    }

    /// The request in the current span, when that span is a server span
    /// declaring the request's fields ([`attr::FLIGHTDECK_REQUEST_OPERATION`]
    /// and [`attr::FLIGHTDECK_REQUEST_OUTCOME`], as obs-otel's `ServerLayer`
    /// span does): that span is the request's root, and no second span is
    /// opened. Its outcome, status and the finish line are as with
    /// [`start_with`](Self::start_with). Without such a span it is
    /// `start_with`.
    ///
    /// One span per request instead of two: each span costs its way through
    /// every layer (OpenTelemetry, span records, log fields).
    pub fn in_current_span(
        operation: &str,
        correlation_id: CorrelationId,
        start_line: StartLine,
    ) -> Self {
        let span = tracing::Span::current();
        let declares = |name: &str| {
            span.metadata()
                .is_some_and(|m| m.fields().field(name).is_some())
        };
        if !(declares(attr::FLIGHTDECK_REQUEST_OPERATION)
            && declares(attr::FLIGHTDECK_REQUEST_OUTCOME))
        {
            return Self::start_with(operation, correlation_id, start_line);
        }
        span.record(attr::FLIGHTDECK_REQUEST_OPERATION, operation);
        Self::begin(span, operation, correlation_id, start_line)
    }

    /// Logs the start line in `span` and starts the clock.
    fn begin(
        span: tracing::Span,
        operation: &str,
        correlation_id: CorrelationId,
        start_line: StartLine,
    ) -> Self {
        span.in_scope(|| Self::log_start(operation, start_line));
        Self {
            span,
            correlation_id,
            started: Instant::now(),
            finished: false,
        }
    }

    fn log_start(operation: &str, start_line: StartLine) {
        match start_line {
            StartLine::Info => {
                tracing::info!(target: REQUEST_TARGET, operation, "request started");
            }
            StartLine::Debug => {
                tracing::debug!(target: REQUEST_TARGET, operation, "request started");
            }
        }
    }

    /// The request's root span; child work should run inside it.
    pub fn span(&self) -> &tracing::Span {
        &self.span
    }

    /// The request's correlation id.
    pub fn correlation_id(&self) -> &CorrelationId {
        &self.correlation_id
    }

    /// Runs `f` inside the request span.
    pub fn in_scope<T>(&self, f: impl FnOnce() -> T) -> T {
        self.span.in_scope(f)
    }

    /// Ends the request successfully.
    pub fn finish_ok(mut self) {
        self.finish(Outcome::Ok);
    }

    /// Ends the request with an error.
    pub fn finish_err(mut self, error: &dyn fmt::Display) {
        self.finish(Outcome::Error(error.to_string()));
    }

    /// Runs `fut` inside the request span and ends the request by its result.
    ///
    /// A panic inside `fut` ends the request as `panicked`, and dropping the
    /// returned future early ends it as `cancelled`.
    pub async fn run<T, E, F>(self, fut: F) -> Result<T, E>
    where
        F: Future<Output = Result<T, E>>,
        E: fmt::Display,
    {
        let span = self.span.clone();
        let result = fut.instrument(span).await;
        match &result {
            Ok(_) => self.finish_ok(),
            Err(e) => self.finish_err(e),
        }
        result
    }

    fn finish(&mut self, outcome: Outcome) {
        if self.finished {
            return;
        }
        self.finished = true;
        let duration_ms = self.started.elapsed().as_secs_f64() * 1e3;
        let span = &self.span;
        span.record(attr::FLIGHTDECK_REQUEST_OUTCOME, outcome.as_str());
        let _enter = span.enter();
        match &outcome {
            Outcome::Ok => {
                tracing::info!(target: REQUEST_TARGET, duration_ms, outcome = outcome.as_str(), "request finished");
            }
            Outcome::Error(message) => {
                span.record("otel.status_code", "ERROR");
                span.record("otel.status_message", message.as_str());
                tracing::warn!(
                    target: REQUEST_TARGET,
                    duration_ms,
                    outcome = outcome.as_str(),
                    error = message.as_str(),
                    "request finished"
                );
            }
            Outcome::Panicked | Outcome::Cancelled => {
                span.record("otel.status_code", "ERROR");
                span.record("otel.status_message", outcome.as_str());
                tracing::warn!(target: REQUEST_TARGET, duration_ms, outcome = outcome.as_str(), "request finished");
            }
        }
    }
}

impl Drop for RequestScope {
    fn drop(&mut self) {
        if !self.finished {
            let outcome = if std::thread::panicking() {
                Outcome::Panicked
            } else {
                Outcome::Cancelled
            };
            self.finish(outcome);
        }
    }
}

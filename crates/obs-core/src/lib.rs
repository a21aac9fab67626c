//! Observability for Rust services on embedded defaults: span records,
//! correlation IDs, structured JSON logs, and latency, cost and quality
//! metrics, all fed by plain [`tracing`] instrumentation.
//!
//! This crate provides:
//!
//! * [`SpanLayer`]: a `tracing-subscriber` layer that turns spans into
//!   [`SpanRecord`]s with W3C-shaped [`TraceId`]s and [`SpanId`]s and hands
//!   them to a [`SpanExporter`]: [`JsonLinesExporter`], [`ConsoleExporter`],
//!   [`InMemoryExporter`], [`NoopSpanExporter`] or a [`FanOutExporter`].
//! * [`JsonLogLayer`]: one JSON line per event with the correlation id,
//!   trace id, span id and the enclosing spans' fields.
//! * [`CorrelationId`] and [`CorrelationContext`]: one id per request, on
//!   every span record and log line.
//! * [`RequestScope`]: a request's root span with start and end log lines.
//! * [`MetricsCollector`]: per-operation latency quantiles from a
//!   [`LatencySketch`], token cost from a [`PriceTable`], quality signals,
//!   and a [`DashboardData`] snapshot; everything is mirrored into the
//!   [`metrics`] facade and rendered by [`PrometheusExposition`].
//! * [`ObservabilitySettings`]: defaults, then TOML, then environment.
//! * [`names`]: span, attribute and metric names (OpenTelemetry GenAI
//!   semantic conventions where they exist).
//! * [`TraceContextHook`]: how `flightdeck-obs-otel` makes our ids equal the
//!   OpenTelemetry ids, without this crate depending on OpenTelemetry.
//!
//! # Usage
//!
//! ```
//! use flightdeck_obs_core::{names, InMemoryExporter, InMemoryLogs, JsonLogLayer, SpanLayer};
//! use tracing_subscriber::layer::SubscriberExt;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let spans = InMemoryExporter::new();
//! let logs = InMemoryLogs::new();
//! let subscriber = tracing_subscriber::registry()
//!     .with(SpanLayer::builder().with_exporter(spans.clone()).build()?)
//!     .with(JsonLogLayer::builder().with_in_memory(logs.clone()).build()?);
//!
//! tracing::subscriber::with_default(subscriber, || {
//!     let request = tracing::info_span!(names::span::REQUEST, correlation_id = "req-1");
//!     let _enter = request.enter();
//!     tracing::info_span!(names::span::RETRIEVE).in_scope(|| tracing::info!("searching"));
//! });
//!
//! let records = spans.records();
//! assert_eq!(records.len(), 2);
//! assert_eq!(records[0].parent_span_id, Some(records[1].span_id));
//! assert_eq!(logs.json()[0]["correlation_id"], "req-1");
//! assert_eq!(logs.json()[0]["trace_id"], records[1].trace_id.to_string());
//! # Ok(())
//! # }
//! ```
//!
//! # Feature flags
//!
//! None yet. [`InMemoryExporter`] and [`InMemoryLogs`] are always available,
//! not behind docs/style.md's usual `testing` feature, because golden-trace
//! capture uses the in-memory exporter in production code (see
//! `docs/architecture.md`).
//!
//! # Layer
//!
//! Layer 1 in `docs/architecture.md`: depends only on `tracing`,
//! `tracing-subscriber`, `metrics` (+ the Prometheus text renderer), `serde`,
//! `toml` and `thiserror`. No network, no async runtime, no OpenTelemetry.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod clock;
mod correlation;
mod error;
mod export;
mod ids;
mod layer;
pub mod limits;
pub mod locate;
mod log;
pub mod metrics;
pub mod names;
mod record;
mod request;
mod sampler;
mod settings;
mod state_file;
mod strict;
mod writer;

pub use self::clock::{Clock, ManualClock, SystemClock, civil_from_days};
pub use self::correlation::{
    CORRELATION_HEADERS, CorrelationContext, CorrelationId, CorrelationSource,
    MAX_CORRELATION_ID_LEN,
};
pub use self::error::{
    BuildError, CorrelationIdError, ExportError, InitError, ParseIdError, SettingsError,
};
pub use self::export::{
    ConsoleExporter, DEFAULT_QUEUE_CAPACITY, FanOutExporter, InMemoryExporter, JsonLinesExporter,
    NoopSpanExporter, SpanExporter,
};
pub use self::ids::{SpanId, TraceId};
pub use self::layer::{
    HookIds, SpanContext, SpanLayer, SpanLayerBuilder, TraceContextHook, current_span_context,
};
pub use self::locate::shown;
pub use self::log::{
    DEFAULT_LOG_QUEUE_CAPACITY, InMemoryLogs, JsonLogLayer, JsonLogLayerBuilder, LogHandle,
    format_rfc3339,
};
pub use self::metrics::{
    DashboardData, LabelCap, LatencyHandle, LatencySketch, LocalPrometheus, MetricsCollector,
    ModelPrice, OperationTimer, PriceTable, PrometheusExposition,
};
pub use self::record::{AttrValue, Attributes, SpanEvent, SpanKind, SpanRecord, SpanStatus};
pub use self::request::{Outcome, REQUEST_TARGET, RequestScope};
pub use self::sampler::{SAMPLER_NAMES, Sampler, SamplerError};
pub use self::settings::{
    DEFAULT_SERVICE_NAME, ENV_CONFIG, ENV_OTEL_SERVICE_NAME, ENV_OTEL_TRACES_SAMPLER,
    ENV_OTEL_TRACES_SAMPLER_ARG, ENV_PREFIX, ENV_RUST_LOG, KNOWN_KEYS, ObservabilitySettings,
};
pub use self::state_file::{update_locked, update_locked_by, write_atomic};
pub use self::strict::UniqueKeys;
pub use self::writer::{JsonLinesWriter, WriterStats};

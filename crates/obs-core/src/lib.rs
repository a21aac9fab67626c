#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod clock;
mod correlation;
mod error;
mod export;
mod ids;
mod json;
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
    ModelPrice, OperationTimer, PriceTable, PrometheusExposition, UPKEEP_INTERVAL, Upkeep,
};
pub use self::record::{
    AttrValue, Attributes, MAX_TRACESTATE_LEN, SpanEvent, SpanKind, SpanRecord, SpanStatus,
};
pub use self::request::{Outcome, REQUEST_TARGET, RequestScope, StartLine};
pub use self::sampler::{SAMPLER_NAMES, Sampler, SamplerError};
pub use self::settings::{
    DEFAULT_SERVICE_NAME, ENV_CONFIG, ENV_OTEL_SERVICE_NAME, ENV_OTEL_TRACES_SAMPLER,
    ENV_OTEL_TRACES_SAMPLER_ARG, ENV_PREFIX, ENV_RUST_LOG, KNOWN_KEYS, ObservabilitySettings,
    SettingValue, SettingsCheck, SettingsSection, config_file_from,
};
pub use self::state_file::{update_locked, update_locked_by, write_atomic};
pub use self::strict::UniqueKeys;
pub use self::writer::{JsonLinesWriter, WriterStats};

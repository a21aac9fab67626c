#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod bridge;
mod error;
mod ids;
mod middleware;
mod pipeline;
mod propagation;
mod settings;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;

pub use self::bridge::RecordBridge;
pub use self::error::{PipelineError, SettingsError};
pub use self::ids::OtelIds;
pub use self::middleware::{
    CORRELATION_BAGGAGE_KEY, CORRELATION_HEADER, ClientLayer, ClientService,
    HTTP_SERVER_REQUEST_DURATION, HTTP_SERVER_REQUESTS_TOTAL, ServerLayer, ServerService,
};
pub use self::pipeline::{
    BatchSettings, ExportReport, OTLP_EXPORT_FAILURES_TOTAL, OTLP_SPANS_DROPPED_TOTAL, OtelPipeline,
};
pub use self::propagation::{
    BAGGAGE, MAX_TRACESTATE_MEMBERS, TRACEPARENT, TRACESTATE, W3cPropagator, extract, inject,
    parse_traceparent, parse_tracestate, tracestate_members,
};
pub use self::settings::{
    ENV_ENDPOINT, ENV_HEADERS, ENV_PROTOCOL, ENV_RESOURCE_ATTRIBUTES, ENV_SDK_DISABLED,
    ENV_SERVICE_NAME, ENV_TIMEOUT, ENV_TRACES_ENDPOINT, ENV_TRACES_HEADERS, ENV_TRACES_PROTOCOL,
    ENV_TRACES_SAMPLER, ENV_TRACES_SAMPLER_ARG, ENV_TRACES_TIMEOUT, OtlpProtocol, OtlpSettings,
    Sampler,
};

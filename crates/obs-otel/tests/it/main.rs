//! Integration tests for flightdeck-obs-otel (one binary, see docs/style.md §6).

mod client;
mod export;
mod grpc;
mod ids;
mod red;
mod resilience;
mod services;

use std::time::Duration;

use flightdeck_obs_core::{InMemoryExporter, InMemoryLogs, JsonLogLayer, SpanLayer};
use flightdeck_obs_otel::testing::Collector;
use flightdeck_obs_otel::{BatchSettings, OtelIds, OtelPipeline, OtlpSettings};
use tracing_subscriber::layer::SubscriberExt;

/// The whole stack as a service runs it: OTLP export over HTTP to
/// `collector`, obs-core span records with the OTel ids, JSON log lines.
pub(crate) struct FullStack {
    pub(crate) pipeline: OtelPipeline,
    pub(crate) records: InMemoryExporter,
    pub(crate) logs: InMemoryLogs,
    pub(crate) dispatch: tracing::Dispatch,
}

pub(crate) fn full_stack(collector: &Collector, service: &str) -> FullStack {
    let settings = OtlpSettings::default()
        .with_traces_endpoint(format!("http://127.0.0.1:{}/v1/traces", collector.http))
        .with_service_name(service);
    let batch = BatchSettings {
        delay: Duration::from_millis(50),
        ..BatchSettings::default()
    };
    let pipeline = OtelPipeline::build(&settings, batch).unwrap().unwrap();
    let records = InMemoryExporter::new();
    let logs = InMemoryLogs::new();
    let subscriber = tracing_subscriber::registry()
        .with(pipeline.layer())
        .with(
            SpanLayer::builder()
                .with_exporter(records.clone())
                .with_trace_context_hook(OtelIds)
                .build()
                .unwrap(),
        )
        .with(
            JsonLogLayer::builder()
                .with_in_memory(logs.clone())
                .build()
                .unwrap(),
        );
    FullStack {
        pipeline,
        records,
        logs,
        dispatch: tracing::Dispatch::new(subscriber),
    }
}

/// A two-worker runtime whose threads all report to `dispatch`.
pub(crate) fn runtime(dispatch: &tracing::Dispatch) -> tokio::runtime::Runtime {
    let for_threads = dispatch.clone();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .on_thread_start(move || std::mem::forget(tracing::dispatcher::set_default(&for_threads)))
        .build()
        .unwrap()
}

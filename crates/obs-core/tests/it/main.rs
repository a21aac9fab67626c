//! obs-core integration tests. One binary (docs/style.md §6).

mod correlation;
mod export;
mod logs;
mod metrics;
mod request;
mod spans;

use flightdeck_obs_core::{InMemoryExporter, InMemoryLogs, JsonLogLayer, SpanLayer};
use tracing_subscriber::layer::SubscriberExt;

/// A subscriber with both layers writing to memory.
pub(crate) fn capture() -> (
    impl tracing::Subscriber + Send + Sync,
    InMemoryExporter,
    InMemoryLogs,
) {
    let spans = InMemoryExporter::new();
    let logs = InMemoryLogs::new();
    let subscriber = tracing_subscriber::registry()
        .with(
            SpanLayer::builder()
                .with_service_name("it")
                .with_exporter(spans.clone())
                .build()
                .unwrap(),
        )
        .with(
            JsonLogLayer::builder()
                .with_service_name("it")
                .with_in_memory(logs.clone())
                .build()
                .unwrap(),
        );
    (subscriber, spans, logs)
}

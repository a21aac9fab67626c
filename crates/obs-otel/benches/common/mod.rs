//! The span-cost comparison shared by `otel.rs` (system allocator) and
//! `otel_mimalloc.rs`: the full Flightdeck stack against the bare
//! `tracing-subscriber` JSON layer + `tracing-opentelemetry` composition,
//! both exporting to the same no-op exporter.

use std::hint::black_box;
use std::time::Duration;

use criterion::Criterion;
use flightdeck_obs_core::{JsonLinesExporter, JsonLogLayer, SpanLayer};
use flightdeck_obs_otel::{BatchSettings, OtelIds, OtelPipeline, OtlpSettings};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{BatchSpanProcessor, SdkTracerProvider, SpanData, SpanExporter};
use tracing_subscriber::layer::SubscriberExt;

#[derive(Debug, Clone, Copy)]
pub(crate) struct NoopExporter;

impl SpanExporter for NoopExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        black_box(batch);
        Ok(())
    }
}

fn work() {
    let span = tracing::info_span!("rag.retrieve", retrieve.k = 8, index = "docs");
    let _e = span.enter();
    tracing::info!(hits = 5, "retrieved");
}

/// Our stack over `pipeline`: span records (JSON Lines to a sink, with the
/// OTel ids) and JSON log lines (to a sink).
pub(crate) fn flightdeck_stack(pipeline: &OtelPipeline) -> tracing::Dispatch {
    let records =
        JsonLinesExporter::to_writer_with_capacity(std::io::sink(), 65_536).expect("records");
    let subscriber = tracing_subscriber::registry()
        .with(pipeline.layer())
        .with(
            SpanLayer::builder()
                .with_exporter(records)
                .with_trace_context_hook(OtelIds)
                .build()
                .expect("span layer"),
        )
        .with(
            JsonLogLayer::builder()
                .with_blocking_writer(std::io::sink())
                .build()
                .expect("logs"),
        );
    tracing::Dispatch::new(subscriber)
}

pub(crate) fn bench_span(c: &mut Criterion) {
    let mut g = c.benchmark_group("span");
    g.bench_function("bare", |b| {
        let provider = SdkTracerProvider::builder()
            .with_span_processor(BatchSpanProcessor::builder(NoopExporter).build())
            .build();
        let subscriber = tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::sink),
            )
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("bench")));
        tracing::subscriber::with_default(subscriber, || b.iter(work));
        let _ = provider.shutdown();
    });
    let pipeline = OtelPipeline::with_exporter(
        NoopExporter,
        &OtlpSettings::default(),
        BatchSettings {
            max_queue: 65_536,
            ..BatchSettings::default()
        },
    )
    .expect("pipeline");
    tracing::dispatcher::with_default(&flightdeck_stack(&pipeline), || {
        g.bench_function("flightdeck", |b| b.iter(work));
    });
    let report = pipeline.report();
    let _ = pipeline.shutdown(Duration::from_secs(10));
    #[allow(clippy::print_stderr)]
    {
        eprintln!(
            "flightdeck pipeline: {} spans ended, {} exported, {} dropped (queue full)",
            report.ended, report.exported, report.dropped
        );
    }
    g.finish();
}

//! The OTLP trace pipeline: an exporter (gRPC or HTTP/protobuf), the SDK's
//! batch processor (export happens off the request path), and an honest
//! account of what was delivered.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig, WithTonicConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, SdkTracer, SdkTracerProvider, SpanData, SpanExporter,
    SpanProcessor,
};

use crate::error::PipelineError;
use crate::settings::{OtlpProtocol, OtlpSettings, Sampler};

/// Counter: spans the exporter could not deliver.
pub const EXPORT_FAILURES_TOTAL: &str = "flightdeck_otel_export_failures_total";
/// Counter: spans dropped before export (the queue was full).
pub const SPANS_DROPPED_TOTAL: &str = "flightdeck_otel_spans_dropped_total";

/// What the pipeline did with the spans given to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExportReport {
    /// Spans that ended (handed to the processor).
    pub ended: u64,
    /// Spans the collector accepted.
    pub exported: u64,
    /// Spans in batches the collector did not accept.
    pub failed: u64,
}

impl ExportReport {
    /// Spans neither exported nor known to have failed: dropped from a full
    /// queue, or still queued at the deadline.
    pub fn undelivered(&self) -> u64 {
        self.ended.saturating_sub(self.exported)
    }
}

#[derive(Debug, Default)]
struct Counts {
    ended: AtomicU64,
    exported: AtomicU64,
    failed: AtomicU64,
}

/// Wraps the OTLP exporter to count delivered and failed spans.
#[derive(Debug)]
struct CountingExporter<E> {
    inner: E,
    counts: Arc<Counts>,
    failures: metrics::Counter,
}

impl<E: SpanExporter> SpanExporter for CountingExporter<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let n = batch.len() as u64;
        let r = self.inner.export(batch).await;
        match &r {
            Ok(()) => {
                self.counts.exported.fetch_add(n, Ordering::Relaxed);
            }
            Err(_) => {
                self.counts.failed.fetch_add(n, Ordering::Relaxed);
                self.failures.increment(n);
            }
        }
        r
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// Counts spans as they end, then hands them to the batch processor.
#[derive(Debug)]
struct CountingProcessor {
    inner: BatchSpanProcessor,
    counts: Arc<Counts>,
}

impl SpanProcessor for CountingProcessor {
    fn on_start(&self, span: &mut opentelemetry_sdk::trace::Span, cx: &opentelemetry::Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        self.counts.ended.fetch_add(1, Ordering::Relaxed);
        self.inner.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

fn sampler(s: Sampler) -> opentelemetry_sdk::trace::Sampler {
    use opentelemetry_sdk::trace::Sampler as S;
    match s {
        Sampler::AlwaysOn => S::AlwaysOn,
        Sampler::AlwaysOff => S::AlwaysOff,
        Sampler::TraceIdRatio(r) => S::TraceIdRatioBased(r),
        Sampler::ParentBasedAlwaysOn => S::ParentBased(Box::new(S::AlwaysOn)),
        Sampler::ParentBasedAlwaysOff => S::ParentBased(Box::new(S::AlwaysOff)),
        Sampler::ParentBasedTraceIdRatio(r) => S::ParentBased(Box::new(S::TraceIdRatioBased(r))),
    }
}

/// Settings for the batch processor.
///
/// | setting | default |
/// |---|---|
/// | queue | 2048 spans (full: the span is dropped and counted) |
/// | batch | 512 spans |
/// | delay between exports | 1 s |
#[derive(Debug, Clone, Copy)]
pub struct BatchSettings {
    /// Spans queued at most.
    pub max_queue: usize,
    /// Spans per export request at most.
    pub max_batch: usize,
    /// Time between exports.
    pub delay: Duration,
}

impl Default for BatchSettings {
    fn default() -> Self {
        Self {
            max_queue: 2048,
            max_batch: 512,
            delay: Duration::from_secs(1),
        }
    }
}

/// A running OTLP trace pipeline. Keep it alive until [`shutdown`](Self::shutdown).
#[derive(Debug)]
pub struct OtelPipeline {
    provider: SdkTracerProvider,
    counts: Arc<Counts>,
    service_name: String,
    // gRPC needs a live multi-thread runtime until shutdown
    // (../shared/notes/otel-stack.md, pitfall 3).
    runtime: Option<tokio::runtime::Runtime>,
}

impl OtelPipeline {
    /// Builds the pipeline, or `None` when `settings` turn export off.
    ///
    /// # Errors
    ///
    /// [`PipelineError`] when the exporter cannot be built (a bad endpoint).
    pub fn build(
        settings: &OtlpSettings,
        batch: BatchSettings,
    ) -> Result<Option<Self>, PipelineError> {
        let Some(endpoint) = settings.traces_endpoint() else {
            return Ok(None);
        };
        let counts = Arc::new(Counts::default());
        let mut runtime = None;
        let headers: std::collections::HashMap<String, String> =
            settings.headers().iter().cloned().collect();
        let exporter = match settings.protocol() {
            OtlpProtocol::HttpProtobuf => opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary)
                .with_endpoint(&endpoint)
                .with_timeout(settings.timeout())
                .with_headers(headers)
                .build(),
            OtlpProtocol::Grpc => {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .thread_name("flightdeck-otlp-grpc")
                    .enable_all()
                    .build()
                    .map_err(|e| PipelineError::Runtime(e.to_string()))?;
                let mut metadata = tonic_metadata(&headers);
                let built = {
                    let _guard = rt.enter();
                    opentelemetry_otlp::SpanExporter::builder()
                        .with_tonic()
                        .with_endpoint(&endpoint)
                        .with_timeout(settings.timeout())
                        .with_metadata(std::mem::take(&mut metadata))
                        .build()
                };
                runtime = Some(rt);
                built
            }
        }
        .map_err(|e| PipelineError::Exporter {
            endpoint: endpoint.clone(),
            message: e.to_string(),
        })?;
        let exporter = CountingExporter {
            inner: exporter,
            counts: counts.clone(),
            failures: metrics::counter!(EXPORT_FAILURES_TOTAL),
        };
        let processor = BatchSpanProcessor::builder(exporter)
            .with_batch_config(
                BatchConfigBuilder::default()
                    .with_max_queue_size(batch.max_queue)
                    .with_max_export_batch_size(batch.max_batch)
                    .with_scheduled_delay(batch.delay)
                    .build(),
            )
            .build();
        let mut attrs = vec![KeyValue::new(
            "service.name",
            settings.service_name().to_owned(),
        )];
        attrs.extend(
            settings
                .resource_attributes()
                .map(|(k, v)| KeyValue::new(k.to_owned(), v.to_owned())),
        );
        if !attrs.iter().any(|kv| kv.key.as_str() == "service.version") {
            attrs.push(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")));
        }
        let provider = SdkTracerProvider::builder()
            .with_span_processor(CountingProcessor {
                inner: processor,
                counts: counts.clone(),
            })
            .with_sampler(sampler(settings.sampler()))
            .with_resource(Resource::builder().with_attributes(attrs).build())
            .build();
        Ok(Some(Self {
            provider,
            counts,
            service_name: settings.service_name().to_owned(),
            runtime,
        }))
    }

    /// A tracer for `tracing-opentelemetry`'s layer.
    pub fn tracer(&self) -> SdkTracer {
        self.provider.tracer(self.service_name.clone())
    }

    /// The `tracing` layer that turns spans into OTel spans.
    pub fn layer<S>(&self) -> tracing_opentelemetry::OpenTelemetryLayer<S, SdkTracer>
    where
        S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        tracing_opentelemetry::layer().with_tracer(self.tracer())
    }

    /// What happened so far.
    pub fn report(&self) -> ExportReport {
        ExportReport {
            ended: self.counts.ended.load(Ordering::Relaxed),
            exported: self.counts.exported.load(Ordering::Relaxed),
            failed: self.counts.failed.load(Ordering::Relaxed),
        }
    }

    /// Exports what is queued and stops, within `deadline`. Unlike the SDK's
    /// `shutdown`, which returns `Ok` even when nothing arrived, the report
    /// says how many spans were delivered.
    ///
    /// # Errors
    ///
    /// [`PipelineError::Undelivered`] with the report when any span was not
    /// delivered.
    pub fn shutdown(self, deadline: Duration) -> Result<ExportReport, PipelineError> {
        let start = Instant::now();
        let _ = self.provider.shutdown_with_timeout(deadline);
        let report = self.report();
        if let Some(rt) = self.runtime {
            rt.shutdown_timeout(deadline.saturating_sub(start.elapsed()));
        }
        if report.undelivered() > 0 {
            let dropped = report.undelivered().saturating_sub(report.failed);
            metrics::counter!(SPANS_DROPPED_TOTAL).increment(dropped);
            return Err(PipelineError::Undelivered(report));
        }
        Ok(report)
    }
}

fn tonic_metadata(
    headers: &std::collections::HashMap<String, String>,
) -> tonic::metadata::MetadataMap {
    let mut map = tonic::metadata::MetadataMap::new();
    for (k, v) in headers {
        if let (Ok(k), Ok(v)) = (
            tonic::metadata::MetadataKey::from_bytes(k.to_ascii_lowercase().as_bytes()),
            v.parse(),
        ) {
            map.insert(k, v);
        }
    }
    map
}

//! The OTLP trace pipeline: an exporter (gRPC or HTTP/protobuf) behind a
//! bounded queue and an exporter thread (export never happens on the
//! request path), and an honest account of what was delivered.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;
use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig, WithTonicConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    SdkTracer, SdkTracerProvider, SpanData, SpanExporter, SpanProcessor,
};

use crate::error::PipelineError;
use crate::settings::{OtlpProtocol, OtlpSettings, Sampler};

/// Counter: spans the exporter could not deliver.
pub const OTLP_EXPORT_FAILURES_TOTAL: &str = "flightdeck_otel_export_failures_total";
/// Counter: spans dropped before export (the queue was full).
pub const OTLP_SPANS_DROPPED_TOTAL: &str = "flightdeck_otel_spans_dropped_total";

/// What the pipeline did with the spans given to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExportReport {
    /// Spans that ended (handed to the processor).
    pub ended: u64,
    /// Spans the collector accepted.
    pub exported: u64,
    /// Spans in batches the collector did not accept.
    pub failed: u64,
    /// Spans dropped because the queue was full.
    pub dropped: u64,
}

impl ExportReport {
    /// Spans not delivered: dropped, failed, or still queued at the deadline.
    pub fn undelivered(&self) -> u64 {
        self.ended.saturating_sub(self.exported)
    }

    /// Spans discarded at the shutdown deadline: neither exported, nor in a
    /// failed export, nor dropped from a full queue (still queued, or cut
    /// off when the deadline passed).
    pub fn discarded(&self) -> u64 {
        self.ended
            .saturating_sub(self.exported)
            .saturating_sub(self.failed)
            .saturating_sub(self.dropped)
    }
}

#[derive(Debug, Default)]
struct Counts {
    ended: AtomicU64,
    dropped: AtomicU64,
    exported: AtomicU64,
    failed: AtomicU64,
    // Set when the export thread has returned (or unwound).
    worker_exited: std::sync::atomic::AtomicBool,
}

/// Marks the export thread as gone when it returns or unwinds.
struct ExitFlag(Arc<Counts>);

impl Drop for ExitFlag {
    fn drop(&mut self) {
        self.0.worker_exited.store(true, Ordering::Release);
    }
}

/// How long shutdown waits, past its deadline, for an export that was cut
/// off to end: the exporter logs the failure, and that line should reach
/// the logs before they close. Cancelled gRPC exports end at once; a
/// blocking HTTP export ends by its own timeout and is not waited for.
const CUT_OFF_EXPORT_GRACE: Duration = Duration::from_millis(250);

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

// Spans are almost every message: boxing them would cost an allocation per
// span for the sake of the rare control messages.
#[allow(clippy::large_enum_variant)]
enum Msg {
    Span(Item),
    Flush(std::sync::mpsc::SyncSender<()>),
    Shutdown(std::sync::mpsc::SyncSender<()>),
}

/// A span on the queue: the SDK's, or a span record from `RecordBridge`,
/// converted on the worker thread (the span's thread only moves it).
#[allow(clippy::large_enum_variant)]
enum Item {
    Data(SpanData),
    Record(
        flightdeck_obs_core::SpanRecord,
        opentelemetry::InstrumentationScope,
    ),
}

/// How many finished records wait to go back to the threads that made them.
const RETURNS: usize = 4096;

impl Item {
    /// The SDK's span. A record is copied, then put on `returns` so that a
    /// span's thread frees it: under glibc's allocator, freeing on this
    /// worker what a request thread allocated contends for that thread's
    /// arena lock (docs/benchmarks.md, sixth and seventh sessions). When
    /// `returns` is full, the record is freed here.
    fn into_span_data(self, returns: &ArrayQueue<flightdeck_obs_core::SpanRecord>) -> SpanData {
        match self {
            Self::Data(span) => span,
            Self::Record(record, scope) => {
                let data = crate::bridge::span_data(&record, &scope);
                let _ = returns.push(record);
                data
            }
        }
    }
}

/// How the worker runs an export future: plain `block_on` for HTTP (the
/// blocking client needs no reactor), or a tokio runtime for gRPC.
#[derive(Clone, Debug)]
enum Executor {
    Plain,
    Tokio(tokio::runtime::Handle),
}

impl Executor {
    fn run<F: Future>(&self, f: F) -> F::Output {
        match self {
            Executor::Plain => futures_executor::block_on(f),
            Executor::Tokio(h) => h.block_on(f),
        }
    }
}

/// How long the export thread sleeps between polls of an empty queue.
const POLL_INTERVAL: Duration = Duration::from_millis(1);

/// Empty polls (about 20 ms) before the export thread parks.
const IDLE_POLLS_BEFORE_PARKING: u32 = 20;

/// A bounded queue in front of an exporter thread.
///
/// Hand-written instead of the SDK's `BatchSpanProcessor`, which counts the
/// spans it drops only privately and reports them once, at shutdown: here a
/// full queue drops the span and counts it in
/// `flightdeck_otel_spans_dropped_total` at once, every failed export is
/// counted in `flightdeck_otel_export_failures_total`, and each batch is a
/// fresh attempt, so export resumes by itself when the collector returns.
#[derive(Debug)]
pub(crate) struct QueueProcessor {
    tx: std::sync::mpsc::SyncSender<Msg>,
    counts: Arc<Counts>,
    dropped: metrics::Counter,
    worker: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
    exporter: Arc<std::sync::Mutex<Box<dyn DynExporter>>>,
    // Set by shutdown: past this instant the worker exports nothing more and
    // discards what is queued (counted as undelivered), so a collector that
    // never answers cannot hold shutdown past its deadline.
    give_up_at: Arc<std::sync::Mutex<Option<Instant>>>,
    /// Records the worker has converted, for span threads to free.
    returns: Arc<ArrayQueue<flightdeck_obs_core::SpanRecord>>,
}

fn given_up(at: &std::sync::Mutex<Option<Instant>>) -> bool {
    at.lock()
        .unwrap_or_else(|p| p.into_inner())
        .is_some_and(|t| Instant::now() >= t)
}

/// Object-safe view of an exporter, run on the worker thread.
trait DynExporter: Send + std::fmt::Debug {
    fn export_batch(&self, exec: &Executor, batch: Vec<SpanData>) -> OTelSdkResult;
    fn set_resource(&mut self, resource: &Resource);
    fn shutdown(&self, timeout: Duration);
}

impl<E: SpanExporter + 'static> DynExporter for CountingExporter<E> {
    fn export_batch(&self, exec: &Executor, batch: Vec<SpanData>) -> OTelSdkResult {
        exec.run(self.export(batch))
    }

    fn set_resource(&mut self, resource: &Resource) {
        SpanExporter::set_resource(self, resource);
    }

    fn shutdown(&self, timeout: Duration) {
        let _ = self.shutdown_with_timeout(timeout);
    }
}

impl QueueProcessor {
    fn spawn(
        exporter: Box<dyn DynExporter>,
        exec: Executor,
        batch: BatchSettings,
        counts: Arc<Counts>,
    ) -> Result<Self, PipelineError> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Msg>(batch.max_queue.max(1));
        let exporter = Arc::new(std::sync::Mutex::new(exporter));
        let worker_exporter = exporter.clone();
        let give_up_at = Arc::new(std::sync::Mutex::new(None));
        let worker_counts = Arc::clone(&counts);
        let worker_give_up = Arc::clone(&give_up_at);
        let returns = Arc::new(ArrayQueue::new(RETURNS));
        let worker_returns = Arc::clone(&returns);
        let worker = std::thread::Builder::new()
            .name("flightdeck-otlp".into())
            .spawn(move || {
                let _exit = ExitFlag(worker_counts);
                let mut pending: Vec<SpanData> = Vec::with_capacity(batch.max_batch);
                let export = |pending: &mut Vec<SpanData>| {
                    while !pending.is_empty() {
                        if given_up(&worker_give_up) {
                            pending.clear();
                            return;
                        }
                        let take = pending.len().min(batch.max_batch);
                        let chunk: Vec<SpanData> = pending.drain(..take).collect();
                        let e = worker_exporter.lock().unwrap_or_else(|p| p.into_inner());
                        let _ = e.export_batch(&exec, chunk);
                    }
                };
                let mut deadline = Instant::now() + batch.delay;
                // While busy, poll: a receiver parked in `recv` would cost
                // every span a futex wake (a syscall on the request path).
                // Park only after a stretch of idleness.
                let mut idle = 0u32;
                loop {
                    let next = if idle >= IDLE_POLLS_BEFORE_PARKING {
                        let wait = if pending.is_empty() {
                            Duration::from_secs(1)
                        } else {
                            deadline.saturating_duration_since(Instant::now())
                        };
                        match rx.recv_timeout(wait) {
                            Ok(m) => Some(m),
                            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => None,
                            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                                export(&mut pending);
                                return;
                            }
                        }
                    } else {
                        match rx.try_recv() {
                            Ok(m) => Some(m),
                            Err(std::sync::mpsc::TryRecvError::Empty) => None,
                            Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                                export(&mut pending);
                                return;
                            }
                        }
                    };
                    match next {
                        Some(Msg::Span(item)) => {
                            idle = 0;
                            pending.push(item.into_span_data(&worker_returns));
                            if pending.len() >= batch.max_batch {
                                export(&mut pending);
                                deadline = Instant::now() + batch.delay;
                            }
                        }
                        // The queue is first in, first out: every span sent
                        // before a control message is already pending.
                        Some(Msg::Flush(ack)) => {
                            idle = 0;
                            export(&mut pending);
                            deadline = Instant::now() + batch.delay;
                            let _ = ack.send(());
                        }
                        Some(Msg::Shutdown(ack)) => {
                            export(&mut pending);
                            let _ = ack.send(());
                            return;
                        }
                        None => {
                            if !pending.is_empty() && Instant::now() >= deadline {
                                export(&mut pending);
                                deadline = Instant::now() + batch.delay;
                            }
                            if idle < IDLE_POLLS_BEFORE_PARKING {
                                idle += 1;
                                std::thread::sleep(POLL_INTERVAL);
                            }
                        }
                    }
                }
            })
            .map_err(|e| PipelineError::Runtime(e.to_string()))?;
        Ok(Self {
            tx,
            counts,
            dropped: metrics::counter!(OTLP_SPANS_DROPPED_TOTAL),
            worker: std::sync::Mutex::new(Some(worker)),
            exporter,
            give_up_at,
            returns,
        })
    }

    fn control(
        &self,
        make: impl FnOnce(std::sync::mpsc::SyncSender<()>) -> Msg,
        timeout: Duration,
    ) -> OTelSdkResult {
        let (ack_tx, ack_rx) = std::sync::mpsc::sync_channel(1);
        let deadline = Instant::now() + timeout;
        let mut msg = make(ack_tx);
        // The queue may be full: retry until the deadline.
        loop {
            match self.tx.try_send(msg) {
                Ok(()) => break,
                Err(std::sync::mpsc::TrySendError::Full(m)) if Instant::now() < deadline => {
                    msg = m;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(_) => {
                    return Err(opentelemetry_sdk::error::OTelSdkError::Timeout(timeout));
                }
            }
        }
        ack_rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .map_err(|_| opentelemetry_sdk::error::OTelSdkError::Timeout(timeout))
    }
}

impl QueueProcessor {
    /// Queues an ended span without blocking the caller: a full queue drops
    /// it, counted.
    fn enqueue(&self, item: Item) {
        self.counts.ended.fetch_add(1, Ordering::Relaxed);
        if self.tx.try_send(Msg::Span(item)).is_err() {
            self.counts.dropped.fetch_add(1, Ordering::Relaxed);
            self.dropped.increment(1);
        }
    }

    /// Queues a span record (always sampled: obs-core exports only those),
    /// after freeing up to two records the worker handed back, so frees keep
    /// pace with records.
    pub(crate) fn queue_record(
        &self,
        record: flightdeck_obs_core::SpanRecord,
        scope: opentelemetry::InstrumentationScope,
    ) {
        for _ in 0..2 {
            match self.returns.pop() {
                Some(done) => drop(done),
                None => break,
            }
        }
        self.enqueue(Item::Record(record, scope));
    }

    /// Hands the pipeline's resource to the exporter.
    fn set_exporter_resource(&self, resource: &Resource) {
        if let Ok(mut e) = self.exporter.lock() {
            e.set_resource(resource);
        }
    }

    /// Waits until everything queued so far is exported, within `timeout`.
    /// After shutdown there is nothing left to flush: shutdown delivered
    /// what it could and its report says so.
    pub(crate) fn flush_within(&self, timeout: Duration) -> OTelSdkResult {
        if self
            .give_up_at
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
        {
            return Ok(());
        }
        self.control(Msg::Flush, timeout)
    }
}

/// The queue processor shared between the provider (tracing-opentelemetry's
/// spans) and [`RecordBridge`](crate::RecordBridge) (span records).
#[derive(Debug)]
struct SharedProcessor(Arc<QueueProcessor>);

impl SpanProcessor for SharedProcessor {
    fn on_start(&self, span: &mut opentelemetry_sdk::trace::Span, cx: &opentelemetry::Context) {
        self.0.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        self.0.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.0.set_exporter_resource(resource);
    }
}

impl SpanProcessor for QueueProcessor {
    fn on_start(&self, _span: &mut opentelemetry_sdk::trace::Span, _cx: &opentelemetry::Context) {}

    fn on_end(&self, span: SpanData) {
        if !span.span_context.is_sampled() {
            return;
        }
        self.enqueue(Item::Data(span));
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.control(Msg::Flush, Duration::from_secs(30))
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        let deadline = Instant::now() + timeout;
        *self.give_up_at.lock().unwrap_or_else(|p| p.into_inner()) = Some(deadline);
        let r = self.control(Msg::Shutdown, timeout);
        if r.is_ok()
            && let Some(w) = self.worker.lock().ok().and_then(|mut w| w.take())
        {
            let _ = w.join();
        }
        // An export still in flight at the deadline holds the exporter; it
        // ends by its own timeout, and shutdown does not wait for it.
        loop {
            let exporter = match self.exporter.try_lock() {
                Ok(e) => e,
                Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(1));
                    continue;
                }
                Err(std::sync::TryLockError::WouldBlock) => break,
            };
            exporter.shutdown(deadline.saturating_duration_since(Instant::now()));
            break;
        }
        r
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.set_exporter_resource(resource);
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
    processor: Arc<QueueProcessor>,
    counts: Arc<Counts>,
    service_name: String,
    // gRPC needs a live multi-thread runtime until shutdown
    // (docs/otel.md).
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
        let exec = match &runtime {
            Some(rt) => Executor::Tokio(rt.handle().clone()),
            None => Executor::Plain,
        };
        Self::assemble(exporter, exec, runtime, settings, batch).map(Some)
    }

    /// Builds the pipeline around any SDK exporter (the OTLP one is what
    /// [`build`](Self::build) uses; benches and tests use others), with the
    /// service name, resource and sampler from `settings`. Export runs on
    /// a plain thread with `block_on`, so `exporter` must not need a tokio
    /// reactor.
    ///
    /// # Errors
    ///
    /// [`PipelineError::Runtime`] when the exporter thread cannot start.
    pub fn with_exporter<E: SpanExporter + 'static>(
        exporter: E,
        settings: &OtlpSettings,
        batch: BatchSettings,
    ) -> Result<Self, PipelineError> {
        Self::assemble(exporter, Executor::Plain, None, settings, batch)
    }

    fn assemble<E: SpanExporter + 'static>(
        exporter: E,
        exec: Executor,
        runtime: Option<tokio::runtime::Runtime>,
        settings: &OtlpSettings,
        batch: BatchSettings,
    ) -> Result<Self, PipelineError> {
        let counts = Arc::new(Counts::default());
        let exporter = CountingExporter {
            inner: exporter,
            counts: counts.clone(),
            failures: metrics::counter!(OTLP_EXPORT_FAILURES_TOTAL),
        };
        let processor = Arc::new(QueueProcessor::spawn(
            Box::new(exporter),
            exec,
            batch,
            counts.clone(),
        )?);
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
            // Unknown, and said so, rather than a made-up version.
            attrs.push(KeyValue::new("service.version", "unknown"));
        }
        let provider = SdkTracerProvider::builder()
            .with_span_processor(SharedProcessor(Arc::clone(&processor)))
            .with_sampler(sampler(settings.sampler()))
            .with_resource(Resource::builder().with_attributes(attrs).build())
            .build();
        Ok(Self {
            provider,
            processor,
            counts,
            service_name: settings.service_name().to_owned(),
            runtime,
        })
    }

    /// An obs-core span exporter that sends span records over this
    /// pipeline: one span pipeline instead of two, without
    /// tracing-opentelemetry's layer (see [`RecordBridge`](crate::RecordBridge)).
    /// Add it to the `SpanLayer`'s exporters, and leave [`layer`](Self::layer)
    /// and `OtelIds` out.
    pub fn record_exporter(&self) -> crate::RecordBridge {
        crate::RecordBridge::new(Arc::clone(&self.processor), &self.service_name)
    }

    /// A tracer for `tracing-opentelemetry`'s layer.
    pub fn tracer(&self) -> SdkTracer {
        self.provider.tracer(self.service_name.clone())
    }

    /// The `tracing` layer that turns spans into OTel spans.
    ///
    /// Leaner than `tracing-opentelemetry`'s defaults: no `code.*` location
    /// and `thread.*` attributes on every span and event, and no busy/idle
    /// time tracked on every enter and exit. Each span is seven attributes
    /// lighter on the wire, a span's place in the code is its name, and the
    /// service's overhead bench measured 1.4 and 2.8 µs less per request in
    /// two runs (`docs/benchmarks.md`, fifth session).
    pub fn layer<S>(&self) -> tracing_opentelemetry::OpenTelemetryLayer<S, SdkTracer>
    where
        S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        tracing_opentelemetry::layer()
            .with_location(false)
            .with_threads(false)
            .with_tracked_inactivity(false)
            .with_tracer(self.tracer())
    }

    /// What happened so far.
    pub fn report(&self) -> ExportReport {
        ExportReport {
            ended: self.counts.ended.load(Ordering::Relaxed),
            exported: self.counts.exported.load(Ordering::Relaxed),
            failed: self.counts.failed.load(Ordering::Relaxed),
            dropped: self.counts.dropped.load(Ordering::Relaxed),
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
        let grace = Instant::now() + CUT_OFF_EXPORT_GRACE;
        while !self.counts.worker_exited.load(Ordering::Acquire) && Instant::now() < grace {
            std::thread::sleep(Duration::from_millis(2));
        }
        if report.undelivered() > 0 {
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

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt as _;

    #[derive(Debug)]
    struct Discard;

    impl SpanExporter for Discard {
        async fn export(&self, _batch: Vec<SpanData>) -> OTelSdkResult {
            Ok(())
        }
    }

    #[test]
    fn converted_records_go_back_to_be_freed_by_the_spans_thread() {
        let pipeline = OtelPipeline::with_exporter(
            Discard,
            &OtlpSettings::default(),
            BatchSettings::default(),
        )
        .unwrap();
        let layer = flightdeck_obs_core::SpanLayer::builder()
            .with_exporter(pipeline.record_exporter())
            .build()
            .unwrap();
        let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
        let span =
            || tracing::dispatcher::with_default(&dispatch, || drop(tracing::info_span!("s")));
        let returned = || pipeline.processor.returns.len();
        for _ in 0..10 {
            span();
        }
        pipeline
            .processor
            .flush_within(Duration::from_secs(5))
            .unwrap();
        assert_eq!(returned(), 10, "every converted record waits to go back");
        // The next span's thread frees two of them before queueing its own.
        span();
        assert_eq!(returned(), 8);
        pipeline
            .processor
            .flush_within(Duration::from_secs(5))
            .unwrap();
        assert_eq!(returned(), 9);
        let report = pipeline.shutdown(Duration::from_secs(5)).unwrap();
        assert_eq!((report.ended, report.exported), (11, 11));
    }
}

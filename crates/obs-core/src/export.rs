//! Span exporters: where finished [`SpanRecord`]s go.
//!
//! | exporter | for |
//! |---|---|
//! | [`JsonLinesExporter`] | `traces.jsonl`, one record per line, written off the hot path |
//! | [`ConsoleExporter`] | a human-readable line per span on stderr, for development |
//! | [`InMemoryExporter`] | tests and golden-trace capture |
//! | [`NoopSpanExporter`] | turning export off without changing the pipeline |
//! | [`FanOutExporter`] | several of the above at once |

use std::fmt::Write as _;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::{BuildError, ExportError};
use crate::names::metric;
use crate::record::{SpanRecord, SpanStatus};
use crate::writer::{BackgroundWriter, LinePool, LossCounters, WriterStats};

/// Receives finished spans.
///
/// `export` runs on the application's thread when a span closes, so it must
/// not block: queue the record and do slow work elsewhere.
pub trait SpanExporter: Send + Sync + 'static {
    /// Takes one finished span.
    fn export(&self, record: SpanRecord);

    /// Takes one finished span by reference, for an exporter that only
    /// reads it (encodes or prints it). [`FanOutExporter`] hands the record
    /// this way to every exporter but the last, which gets it by value, so
    /// a record is not cloned per exporter. The default clones it into
    /// [`export`](Self::export).
    fn export_ref(&self, record: &SpanRecord) {
        self.export(record.clone());
    }

    /// Waits until everything exported so far has been delivered.
    ///
    /// # Errors
    ///
    /// [`ExportError`] when the deadline passed or the exporter is shut down.
    fn flush(&self, timeout: Duration) -> Result<(), ExportError> {
        let _ = timeout;
        Ok(())
    }

    /// Delivers everything accepted and releases resources.
    ///
    /// # Errors
    ///
    /// [`ExportError`] when something was dropped or failed, or the deadline passed.
    fn shutdown(&self, timeout: Duration) -> Result<(), ExportError> {
        self.flush(timeout)
    }
}

impl<E: SpanExporter + ?Sized> SpanExporter for Arc<E> {
    fn export(&self, record: SpanRecord) {
        (**self).export(record);
    }
    fn export_ref(&self, record: &SpanRecord) {
        (**self).export_ref(record);
    }
    fn flush(&self, timeout: Duration) -> Result<(), ExportError> {
        (**self).flush(timeout)
    }
    fn shutdown(&self, timeout: Duration) -> Result<(), ExportError> {
        (**self).shutdown(timeout)
    }
}

impl<E: SpanExporter + ?Sized> SpanExporter for Box<E> {
    fn export(&self, record: SpanRecord) {
        (**self).export(record);
    }
    fn export_ref(&self, record: &SpanRecord) {
        (**self).export_ref(record);
    }
    fn flush(&self, timeout: Duration) -> Result<(), ExportError> {
        (**self).flush(timeout)
    }
    fn shutdown(&self, timeout: Duration) -> Result<(), ExportError> {
        (**self).shutdown(timeout)
    }
}

/// Discards every span.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopSpanExporter;

impl SpanExporter for NoopSpanExporter {
    fn export(&self, _record: SpanRecord) {}
    fn export_ref(&self, _record: &SpanRecord) {}
}

/// Keeps spans in memory, for tests and golden-trace capture.
///
/// Clones share the same storage.
///
/// ```
/// use flightdeck_obs_core::{InMemoryExporter, SpanLayer};
/// use tracing_subscriber::layer::SubscriberExt;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let spans = InMemoryExporter::new();
/// let layer = SpanLayer::builder().with_exporter(spans.clone()).build()?;
/// let subscriber = tracing_subscriber::registry().with(layer);
/// tracing::subscriber::with_default(subscriber, || {
///     tracing::info_span!("rag.embed").in_scope(|| {});
/// });
/// assert_eq!(spans.records()[0].name, "rag.embed");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct InMemoryExporter {
    records: Arc<Mutex<Vec<SpanRecord>>>,
}

impl InMemoryExporter {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of every record so far, in the order spans closed.
    pub fn records(&self) -> Vec<SpanRecord> {
        self.lock().clone()
    }

    /// Takes every record so far, leaving the store empty.
    pub fn take(&self) -> Vec<SpanRecord> {
        std::mem::take(&mut *self.lock())
    }

    /// Number of records held.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no records are held.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<SpanRecord>> {
        // A panic while holding this lock cannot leave the Vec inconsistent.
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl SpanExporter for InMemoryExporter {
    fn export(&self, record: SpanRecord) {
        self.lock().push(record);
    }
}

/// Writes one human-readable line per span to stderr (or any writer).
///
/// Format: `duration  status  name  [trace/span<-parent]  corr=…  key=value …`.
pub struct ConsoleExporter {
    out: Mutex<Box<dyn Write + Send>>,
}

impl std::fmt::Debug for ConsoleExporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleExporter").finish_non_exhaustive()
    }
}

impl Default for ConsoleExporter {
    fn default() -> Self {
        Self::stderr()
    }
}

impl ConsoleExporter {
    /// Writes to standard error.
    pub fn stderr() -> Self {
        Self::to_writer(std::io::stderr())
    }

    /// Writes to `out`.
    pub fn to_writer(out: impl Write + Send + 'static) -> Self {
        Self {
            out: Mutex::new(Box::new(out)),
        }
    }

    /// Formats a record the way this exporter prints it (without the newline).
    pub fn format(record: &SpanRecord) -> String {
        let mut line = String::with_capacity(160);
        let status = match &record.status {
            SpanStatus::Ok => "ok".to_owned(),
            SpanStatus::Error { message } => format!("ERROR({message:?})"),
        };
        let trace = record.trace_id.to_string();
        let _ = write!(
            line,
            "{:>10.3}ms  {status}  {}  [{}/{}",
            record.duration_ms(),
            record.name,
            &trace[..8],
            record.span_id
        );
        match record.parent_span_id {
            Some(p) => {
                let _ = write!(line, "<-{p}]");
            }
            None => line.push_str(" root]"),
        }
        if let Some(c) = &record.correlation_id {
            let _ = write!(line, "  corr={c}");
        }
        for (k, v) in record.attributes.iter() {
            let _ = write!(line, "  {k}={v}");
        }
        line
    }
}

impl SpanExporter for ConsoleExporter {
    fn export(&self, record: SpanRecord) {
        self.export_ref(&record);
    }

    fn export_ref(&self, record: &SpanRecord) {
        let mut line = Self::format(record);
        line.push('\n');
        if let Ok(mut out) = self.out.lock() {
            // Console output is best effort: a closed stderr must not break the app.
            let _ = out.write_all(line.as_bytes());
        }
    }

    fn flush(&self, _timeout: Duration) -> Result<(), ExportError> {
        if let Ok(mut out) = self.out.lock() {
            let _ = out.flush();
        }
        Ok(())
    }
}

/// Writes span records as JSON Lines (one record per line) from a background
/// thread.
///
/// `export` encodes the record on the calling thread into a buffer taken
/// from a pool, and puts the buffer on a bounded queue; the writer thread
/// hands the buffer back after writing it. So nothing allocated by the
/// application's threads is freed by the writer thread: under glibc's
/// allocator such frees contend for the allocating thread's arena lock,
/// which cost about a fifth of the span's time in the obs-otel bench.
///
/// A full queue drops the record and counts it (it never blocks the
/// application). Write errors, such
/// as a full disk, are counted and the application keeps running. Both also
/// show up in the `metrics` facade as
/// [`flightdeck_spans_dropped_total`](metric::SPANS_DROPPED_TOTAL) and
/// [`flightdeck_span_export_failures_total`](metric::SPAN_EXPORT_FAILURES_TOTAL).
/// Clones share the queue and writer thread.
///
/// | setting | default |
/// |---|---|
/// | queue capacity | 65,536 records |
/// | file mode | append (created if missing, parent directories too) |
#[derive(Debug, Clone)]
pub struct JsonLinesExporter {
    writer: Arc<BackgroundWriter<Vec<u8>>>,
    pool: Arc<LinePool>,
    path: Option<Arc<Path>>,
}

/// Default queue capacity of [`JsonLinesExporter`].
pub const DEFAULT_QUEUE_CAPACITY: usize = 65_536;

impl JsonLinesExporter {
    /// Appends to the file at `path`, creating it and its parent directories.
    ///
    /// # Errors
    ///
    /// [`BuildError::OpenFile`] naming `path` when it cannot be opened for writing.
    pub fn to_file(path: impl AsRef<Path>) -> Result<Self, BuildError> {
        Self::to_file_with_capacity(path, DEFAULT_QUEUE_CAPACITY)
    }

    /// Like [`to_file`](Self::to_file) with a queue of `capacity` records.
    ///
    /// # Errors
    ///
    /// [`BuildError::OpenFile`] naming `path` when it cannot be opened for writing.
    pub fn to_file_with_capacity(
        path: impl AsRef<Path>,
        capacity: usize,
    ) -> Result<Self, BuildError> {
        let path = path.as_ref();
        let file = open_append(path)?;
        let mut exporter = Self::to_writer_with_capacity(file, capacity)?;
        exporter.path = Some(Arc::from(path));
        Ok(exporter)
    }

    /// Writes to any writer, with a queue of `capacity` records.
    ///
    /// # Errors
    ///
    /// [`BuildError::Thread`] when the writer thread cannot start.
    pub fn to_writer_with_capacity(
        out: impl Write + Send + 'static,
        capacity: usize,
    ) -> Result<Self, BuildError> {
        let loss = LossCounters {
            dropped: metrics::counter!(metric::SPANS_DROPPED_TOTAL),
            failed: metrics::counter!(metric::SPAN_EXPORT_FAILURES_TOTAL),
        };
        let pool = LinePool::new();
        let writer = BackgroundWriter::spawn(
            "flightdeck-spans",
            capacity,
            Box::new(out),
            pool.encoder(),
            loss,
        )?;
        Ok(Self {
            writer: Arc::new(writer),
            pool,
            path: None,
        })
    }

    /// The file being written, when writing to a file.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// What happened to the records so far.
    pub fn stats(&self) -> WriterStats {
        self.writer.stats()
    }
}

impl SpanExporter for JsonLinesExporter {
    fn export(&self, record: SpanRecord) {
        self.export_ref(&record);
    }

    fn export_ref(&self, record: &SpanRecord) {
        let mut line = self.pool.take();
        crate::json::write_record(&mut line, record);
        line.push(b'\n');
        self.writer.send(line);
    }

    fn flush(&self, timeout: Duration) -> Result<(), ExportError> {
        self.writer.flush(timeout)
    }

    fn shutdown(&self, timeout: Duration) -> Result<(), ExportError> {
        self.writer.shutdown(timeout).map(|_| ())
    }
}

/// Opens `path` for appending, creating missing parent directories.
pub(crate) fn open_append(path: &Path) -> Result<std::fs::File, BuildError> {
    let err = |source| BuildError::OpenFile {
        path: PathBuf::from(path),
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(err)?;
    }
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(err)
}

/// Sends every span to several exporters.
#[derive(Default)]
pub struct FanOutExporter {
    exporters: Vec<Box<dyn SpanExporter>>,
}

impl std::fmt::Debug for FanOutExporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FanOutExporter")
            .field("exporters", &self.exporters.len())
            .finish()
    }
}

impl FanOutExporter {
    /// No exporters yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an exporter.
    #[must_use]
    pub fn with(mut self, exporter: impl SpanExporter) -> Self {
        self.exporters.push(Box::new(exporter));
        self
    }

    /// Number of exporters.
    pub fn len(&self) -> usize {
        self.exporters.len()
    }

    /// Whether there are no exporters.
    pub fn is_empty(&self) -> bool {
        self.exporters.is_empty()
    }
}

impl SpanExporter for FanOutExporter {
    /// Lends the record to every exporter but the last, which takes it: put
    /// the exporter that keeps records (a queue to another thread) last.
    fn export(&self, record: SpanRecord) {
        if let Some((last, rest)) = self.exporters.split_last() {
            for e in rest {
                e.export_ref(&record);
            }
            last.export(record);
        }
    }

    fn export_ref(&self, record: &SpanRecord) {
        for e in &self.exporters {
            e.export_ref(record);
        }
    }

    fn flush(&self, timeout: Duration) -> Result<(), ExportError> {
        first_error(self.exporters.iter().map(|e| e.flush(timeout)))
    }

    fn shutdown(&self, timeout: Duration) -> Result<(), ExportError> {
        first_error(self.exporters.iter().map(|e| e.shutdown(timeout)))
    }
}

/// Runs every step (no short-circuit: each exporter must be flushed or shut
/// down even when an earlier one reported a loss) and keeps the first error.
fn first_error(results: impl Iterator<Item = Result<(), ExportError>>) -> Result<(), ExportError> {
    let mut first = Ok(());
    for r in results {
        if first.is_ok() {
            first = r;
        }
    }
    first
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{AttrValue, Attributes, SpanKind};
    use crate::{CorrelationId, SpanId, TraceId};

    #[test]
    fn console_lines_show_duration_status_ids_and_attributes() {
        let mut attributes = Attributes::new();
        attributes.set("rag.retrieval.top_k", AttrValue::I64(10));
        let record = SpanRecord {
            trace_id: TraceId::from_u128(0xabcdef12 << 96).unwrap(),
            span_id: SpanId::from_u64(2).unwrap(),
            parent_span_id: Some(SpanId::from_u64(1).unwrap()),
            parent_is_remote: false,
            name: "rag.retrieve".into(),
            kind: SpanKind::Internal,
            start_unix_nanos: 0,
            end_unix_nanos: 12_500_000,
            duration_nanos: 12_500_000,
            attributes,
            events: vec![],
            dropped_events: 0,
            status: SpanStatus::Error {
                message: "timed out".into(),
            },
            correlation_id: Some(CorrelationId::new("req-1").unwrap()),
            service_name: Arc::from("svc"),
            trace_state: None,
        };
        assert_eq!(
            ConsoleExporter::format(&record),
            "    12.500ms  ERROR(\"timed out\")  rag.retrieve  [abcdef12/0000000000000002<-0000000000000001]  corr=req-1  rag.retrieval.top_k=10"
        );
        let shared = Arc::new(Mutex::new(Vec::new()));
        struct W(Arc<Mutex<Vec<u8>>>);
        impl Write for W {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let exporter = ConsoleExporter::to_writer(W(Arc::clone(&shared)));
        exporter.export(record);
        assert!(
            String::from_utf8(shared.lock().unwrap().clone())
                .unwrap()
                .ends_with("=10\n")
        );
    }

    #[test]
    fn fan_out_reaches_every_exporter_and_shuts_all_down() {
        let a = InMemoryExporter::new();
        let b = InMemoryExporter::new();
        let fan = FanOutExporter::new()
            .with(a.clone())
            .with(b.clone())
            .with(NoopSpanExporter);
        assert_eq!(fan.len(), 3);
        let record = SpanRecord {
            trace_id: TraceId::random(),
            span_id: SpanId::random(),
            parent_span_id: None,
            parent_is_remote: false,
            name: "x".into(),
            kind: SpanKind::Internal,
            start_unix_nanos: 0,
            end_unix_nanos: 0,
            duration_nanos: 0,
            attributes: Attributes::new(),
            events: vec![],
            dropped_events: 0,
            status: SpanStatus::Ok,
            correlation_id: None,
            service_name: Arc::from("svc"),
            trace_state: None,
        };
        fan.export(record);
        assert_eq!((a.len(), b.len()), (1, 1));
        assert!(fan.shutdown(Duration::from_secs(1)).is_ok());
    }

    /// Says how each record arrived.
    #[derive(Clone, Default)]
    struct Calls(Arc<Mutex<Vec<&'static str>>>);

    impl SpanExporter for Calls {
        fn export(&self, _record: SpanRecord) {
            self.0.lock().unwrap().push("owned");
        }
        fn export_ref(&self, _record: &SpanRecord) {
            self.0.lock().unwrap().push("lent");
        }
    }

    #[test]
    fn fan_out_lends_the_record_and_gives_it_to_the_last() {
        let calls = Calls::default();
        let fan = FanOutExporter::new()
            .with(calls.clone())
            .with(calls.clone())
            .with(calls.clone());
        let mut record = crate::record::tests::sample();
        fan.export(record.clone());
        assert_eq!(*calls.0.lock().unwrap(), ["lent", "lent", "owned"]);
        calls.0.lock().unwrap().clear();
        // A fan-out lent a record lends it on to all.
        FanOutExporter::new().with(fan).export_ref(&record);
        assert_eq!(*calls.0.lock().unwrap(), ["lent", "lent", "lent"]);

        // JSON lines from a lent record are those from an owned one.
        let out = crate::writer::tests::Shared::default();
        let lines = JsonLinesExporter::to_writer_with_capacity(out.clone(), 8).unwrap();
        record.trace_state = Some(Arc::from("a=1"));
        lines.export_ref(&record);
        lines.export(record.clone());
        lines.shutdown(Duration::from_secs(5)).unwrap();
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let back: Vec<SpanRecord> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(back, [record.clone(), record]);
    }
}

//! [`JsonLogLayer`]: one JSON object per `tracing` event, with the request's
//! correlation id and trace context on every line.
//!
//! A line looks like this (one line; wrapped here):
//!
//! ```json
//! {"timestamp":"2026-11-23T22:46:10.123456Z","level":"INFO","target":"rag.retrieval",
//!  "message":"found documents","service":"rag-service","correlation_id":"req-1",
//!  "trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7",
//!  "span":"rag.retrieve","fields":{"documents":5},"span_fields":{"rag.retrieval.top_k":10}}
//! ```
//!
//! `fields` holds the event's own fields; `span_fields` holds the fields of the
//! enclosing spans merged from the root down (an inner span's field wins over
//! an outer one of the same name). `correlation_id`, `trace_id`, `span_id` and
//! `span` are left out when there is no value (outside any span and scope).
//! Every string is JSON-escaped, so a message with quotes or newlines can never
//! forge a second line.
//!
//! Span fields are rendered to JSON once, at a span's first event (and again
//! after `Span::record` changes one there or in an ancestor), not on every
//! event; a span's rendering extends its parent's, so a request span's
//! fields are rendered once per request, not once per line below it. That
//! is what makes this layer several times faster than re-serializing span
//! fields per event. A span that logs nothing never renders them.

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes as SpanAttributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::{LookupSpan, SpanRef};

use crate::clock::{Clock, SystemClock, civil_from_days};
use crate::correlation::CorrelationContext;
use crate::error::{BuildError, ExportError};
use crate::export::open_append;
use crate::json::{escape_into, write_int, write_json_str};
use crate::layer::{SpanData, error_chain, span_data_ids};
use crate::names::{attr, metric};
use crate::record::AttrValue;
use crate::writer::{BackgroundWriter, LinePool, LossCounters, WriterStats};

/// Default number of log lines the non-blocking queue holds.
pub const DEFAULT_LOG_QUEUE_CAPACITY: usize = 65_536;

/// Where log lines go.
enum Output {
    /// A writer thread behind a bounded queue (stdout or a file).
    Background(Arc<BackgroundWriter<Vec<u8>>>, Arc<LinePool>),
    /// Written in place under a lock (for benchmarks and simple tools).
    Blocking(Mutex<Box<dyn Write + Send>>),
    /// Kept in memory (tests).
    Memory(InMemoryLogs),
}

/// Log lines kept in memory. Clones share storage.
#[derive(Debug, Clone, Default)]
pub struct InMemoryLogs {
    lines: Arc<Mutex<Vec<String>>>,
}

impl InMemoryLogs {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every line so far, without trailing newlines.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Every line parsed as JSON.
    ///
    /// # Panics
    ///
    /// Never for lines this layer wrote; a line that is not JSON would be a bug.
    pub fn json(&self) -> Vec<serde_json::Value> {
        self.lines()
            .iter()
            .map(|l| serde_json::from_str(l).expect("the JSON log layer writes valid JSON lines"))
            .collect()
    }

    fn push(&self, line: &[u8]) {
        let text = String::from_utf8_lossy(line.strip_suffix(b"\n").unwrap_or(line)).into_owned();
        self.lines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(text);
    }
}

/// Flushes or shuts down a [`JsonLogLayer`]'s output after the layer has
/// been moved into a subscriber.
#[derive(Debug, Clone)]
pub struct LogHandle {
    writer: Option<Arc<BackgroundWriter<Vec<u8>>>>,
}

impl LogHandle {
    /// Waits until every line logged so far is written.
    ///
    /// # Errors
    ///
    /// [`ExportError`] when the deadline passes or the writer is shut down.
    pub fn flush(&self, timeout: Duration) -> Result<(), ExportError> {
        self.writer.as_ref().map_or(Ok(()), |w| w.flush(timeout))
    }

    /// Writes every accepted line and stops the writer thread.
    ///
    /// # Errors
    ///
    /// [`ExportError::Lost`] when lines were dropped or failed to write.
    pub fn shutdown(&self, timeout: Duration) -> Result<(), ExportError> {
        self.writer
            .as_ref()
            .map_or(Ok(()), |w| w.shutdown(timeout).map(|_| ()))
    }

    /// What happened to the lines so far (zeros for blocking or memory output).
    pub fn stats(&self) -> WriterStats {
        self.writer.as_ref().map(|w| w.stats()).unwrap_or_default()
    }
}

/// A `tracing-subscriber` layer writing structured JSON logs.
///
/// Install [`SpanLayer`](crate::SpanLayer) too: it supplies the trace and span
/// ids and the span's correlation id. Without it, lines carry only the
/// [`CorrelationContext`] scope's id.
///
/// ```
/// use flightdeck_obs_core::{InMemoryLogs, JsonLogLayer, SpanLayer};
/// use tracing_subscriber::layer::SubscriberExt;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let logs = InMemoryLogs::new();
/// let subscriber = tracing_subscriber::registry()
///     .with(SpanLayer::builder().build()?)
///     .with(JsonLogLayer::builder().with_in_memory(logs.clone()).build()?);
/// tracing::subscriber::with_default(subscriber, || {
///     let span = tracing::info_span!("rag.request", correlation_id = "req-1", user = "ada");
///     span.in_scope(|| tracing::info!(target: "rag.retrieval", documents = 5, "found \"docs\""));
/// });
/// let line = &logs.json()[0];
/// assert_eq!(line["message"], "found \"docs\"");
/// assert_eq!(line["correlation_id"], "req-1");
/// assert_eq!(line["fields"]["documents"], 5);
/// assert_eq!(line["span_fields"]["user"], "ada");
/// # Ok(())
/// # }
/// ```
pub struct JsonLogLayer {
    service_name: Arc<str>,
    output: Output,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for JsonLogLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonLogLayer")
            .field("service_name", &self.service_name)
            .finish_non_exhaustive()
    }
}

enum OutputChoice {
    Stdout,
    File(std::path::PathBuf),
    NonBlocking(Box<dyn Write + Send>),
    Blocking(Box<dyn Write + Send>),
    Memory(InMemoryLogs),
}

/// Builds a [`JsonLogLayer`].
///
/// | setting | default |
/// |---|---|
/// | output | standard output, through a non-blocking queue |
/// | queue capacity | 65,536 lines; a full queue drops and counts |
/// | service name | `rag-service` |
/// | clock | [`SystemClock`] |
pub struct JsonLogLayerBuilder {
    service_name: Arc<str>,
    output: OutputChoice,
    capacity: usize,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for JsonLogLayerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonLogLayerBuilder")
            .field("service_name", &self.service_name)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl Default for JsonLogLayerBuilder {
    fn default() -> Self {
        Self {
            service_name: Arc::from(crate::settings::DEFAULT_SERVICE_NAME),
            output: OutputChoice::Stdout,
            capacity: DEFAULT_LOG_QUEUE_CAPACITY,
            clock: Arc::new(SystemClock),
        }
    }
}

impl JsonLogLayerBuilder {
    /// The `service` on every line. Defaults to `rag-service`.
    #[must_use]
    pub fn with_service_name(mut self, name: impl Into<String>) -> Self {
        self.service_name = Arc::from(name.into());
        self
    }

    /// Writes to standard output through the non-blocking queue. The default.
    #[must_use]
    pub fn with_stdout(mut self) -> Self {
        self.output = OutputChoice::Stdout;
        self
    }

    /// Appends to the file at `path` (created with its parent directories)
    /// through the non-blocking queue. Defaults to standard output.
    #[must_use]
    pub fn with_file(mut self, path: impl AsRef<Path>) -> Self {
        self.output = OutputChoice::File(path.as_ref().to_path_buf());
        self
    }

    /// Writes to `out` through the non-blocking queue. Defaults to standard output.
    #[must_use]
    pub fn with_non_blocking_writer(mut self, out: impl Write + Send + 'static) -> Self {
        self.output = OutputChoice::NonBlocking(Box::new(out));
        self
    }

    /// Writes to `out` on the logging thread, under a lock. Defaults to
    /// standard output through the non-blocking queue.
    #[must_use]
    pub fn with_blocking_writer(mut self, out: impl Write + Send + 'static) -> Self {
        self.output = OutputChoice::Blocking(Box::new(out));
        self
    }

    /// Keeps lines in `logs`. Defaults to standard output.
    #[must_use]
    pub fn with_in_memory(mut self, logs: InMemoryLogs) -> Self {
        self.output = OutputChoice::Memory(logs);
        self
    }

    /// Lines the non-blocking queue holds before it drops. Defaults to 65,536.
    #[must_use]
    pub fn with_queue_capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }

    /// The clock for timestamps. Defaults to [`SystemClock`].
    #[must_use]
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Opens the output and builds the layer.
    ///
    /// # Errors
    ///
    /// [`BuildError::OpenFile`] naming the path when the log file cannot be
    /// opened; [`BuildError::InvalidValue`] for a zero queue capacity.
    pub fn build(self) -> Result<JsonLogLayer, BuildError> {
        if self.capacity == 0 {
            return Err(BuildError::InvalidValue {
                name: "log queue capacity",
                value: "0".into(),
                expected: "at least 1 line",
            });
        }
        let background = |out: Box<dyn Write + Send>| -> Result<Output, BuildError> {
            let loss = LossCounters {
                dropped: metrics::counter!(metric::LOG_LINES_DROPPED_TOTAL),
                failed: metrics::Counter::noop(),
            };
            let pool = LinePool::new();
            let w = BackgroundWriter::spawn(
                "flightdeck-logs",
                self.capacity,
                out,
                pool.encoder(),
                loss,
            )?;
            Ok(Output::Background(Arc::new(w), pool))
        };
        let output = match self.output {
            OutputChoice::Stdout => background(Box::new(std::io::stdout()))?,
            OutputChoice::File(path) => background(Box::new(open_append(&path)?))?,
            OutputChoice::NonBlocking(out) => background(out)?,
            OutputChoice::Blocking(out) => Output::Blocking(Mutex::new(out)),
            OutputChoice::Memory(logs) => Output::Memory(logs),
        };
        Ok(JsonLogLayer {
            service_name: self.service_name,
            output,
            clock: self.clock,
        })
    }
}

impl JsonLogLayer {
    /// A builder with the defaults in [`JsonLogLayerBuilder`].
    pub fn builder() -> JsonLogLayerBuilder {
        JsonLogLayerBuilder::default()
    }

    /// A handle to flush and shut down the output once the layer is installed.
    pub fn handle(&self) -> LogHandle {
        LogHandle {
            writer: match &self.output {
                Output::Background(w, _) => Some(Arc::clone(w)),
                _ => None,
            },
        }
    }

    fn write_line(&self, line: &[u8]) {
        match &self.output {
            Output::Background(w, pool) => {
                let mut buf = pool.take();
                buf.extend_from_slice(line);
                w.send(buf);
            }
            Output::Blocking(out) => {
                if let Ok(mut out) = out.lock() {
                    // Logging is best effort: a failed write must not fail the caller.
                    let _ = out.write_all(line);
                }
            }
            Output::Memory(logs) => logs.push(line),
        }
    }

    /// Formats one event into `buf` (which ends with a newline).
    fn format_event<S>(&self, event: &Event<'_>, ctx: &Context<'_, S>, buf: &mut Vec<u8>)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let meta = event.metadata();
        let mut visitor = JsonFieldVisitor::new();
        event.record(&mut visitor);

        buf.extend_from_slice(b"{\"timestamp\":\"");
        write_rfc3339_micros(buf, self.clock.now_unix_nanos());
        buf.extend_from_slice(b"\",\"level\":\"");
        buf.extend_from_slice(meta.level().as_str().as_bytes());
        buf.extend_from_slice(b"\",\"target\":");
        write_json_str(buf, meta.target());
        buf.extend_from_slice(b",\"message\":");
        match &visitor.message {
            Some(m) => buf.extend_from_slice(m),
            None => buf.extend_from_slice(b"\"\""),
        }
        buf.extend_from_slice(b",\"service\":");
        write_json_str(buf, &self.service_name);

        let span = ctx.event_span(event);
        let span_fields = span.as_ref().and_then(LogSpanFields::for_event);
        let ids = span.as_ref().and_then(|s| span_data_ids(&s.extensions()));
        let correlation = match &ids {
            Some((_, _, Some(c))) => Some(c.clone()),
            _ => CorrelationContext::current_scope(),
        };
        if let Some(c) = correlation {
            buf.extend_from_slice(b",\"correlation_id\":");
            write_json_str(buf, c.as_str());
        }
        if let Some((trace_id, span_id, _)) = ids {
            buf.extend_from_slice(b",\"trace_id\":\"");
            buf.extend_from_slice(&trace_id.hex_digits());
            buf.extend_from_slice(b"\",\"span_id\":\"");
            buf.extend_from_slice(&span_id.hex_digits());
            buf.push(b'"');
        }
        if let Some(span) = &span {
            buf.extend_from_slice(b",\"span\":");
            write_json_str(buf, span.name());
        }
        if !visitor.fields.is_empty() {
            buf.extend_from_slice(b",\"fields\":{");
            buf.extend_from_slice(&visitor.fields);
            buf.push(b'}');
        }
        if let Some(fields) = span_fields.filter(|f| !f.json.is_empty()) {
            buf.extend_from_slice(b",\"span_fields\":{");
            buf.extend_from_slice(&fields.json);
            buf.push(b'}');
        }
        buf.extend_from_slice(b"}\n");
    }
}

/// A span's own fields for log lines. A log line shows the fields of its
/// span and of every ancestor (the nearest span's value wins), merged and
/// rendered as `"k":v,...` (no braces) at the span's first event and kept
/// until the span records a field again. Nothing is merged or copied when
/// a span is made: most spans never log. A span that obs-core's
/// [`SpanLayer`](crate::SpanLayer) saw first keeps no pairs here: its fields
/// are read from the span layer's attributes (the same fields, capped the
/// same way), so they are collected once, not twice.
///
/// A span's rendering starts from its parent's (rendered once, kept on the
/// parent) and appends its own fields, unless one of them overrides an
/// ancestor's; then the whole scope is merged. The request span's fields are
/// thus rendered once per request, not once per line below it.
struct LogSpanFields {
    /// (name, JSON value) pairs, in the order first recorded.
    pairs: Vec<(&'static str, Box<[u8]>)>,
    rendered: Option<Arc<Rendered>>,
    /// When the span last recorded a field ([`RECORDS`]); 0 for never.
    last_record: u64,
}

/// Counts `Span::record` calls process-wide. A rendering is kept only while
/// no span in its scope has recorded since it was built, so a line always
/// shows its ancestors' current fields.
static RECORDS: AtomicU64 = AtomicU64::new(1);

/// A span's fields merged with its ancestors', as they go into a line.
struct Rendered {
    /// [`RECORDS`] when it was built.
    built_at: u64,
    /// `"k":v,...`, no braces; escaped JSON throughout.
    json: Vec<u8>,
    /// The keys in `json`, in order.
    keys: Vec<Cow<'static, str>>,
}

/// A field value on its way into a line: rendered already, or a span
/// layer's attribute.
#[derive(Clone, Copy)]
enum FieldValue<'a> {
    Json(&'a [u8]),
    Attr(&'a AttrValue),
}

/// (key, value) pairs of fields on their way into a line.
type Fields<'a> = Vec<(Cow<'static, str>, FieldValue<'a>)>;

impl LogSpanFields {
    fn empty() -> Self {
        Self {
            pairs: Vec::new(),
            rendered: None,
            last_record: 0,
        }
    }

    /// The merged fields of `span` and its ancestors, rendered once.
    fn for_event<S>(span: &SpanRef<'_, S>) -> Option<Arc<Rendered>>
    where
        S: for<'a> LookupSpan<'a>,
    {
        let scope: Vec<SpanRef<'_, S>> = span.scope().from_root().collect();
        // Each span's rendering, and the latest record in its scope.
        let mut newest_record = 0;
        let mut state = Vec::with_capacity(scope.len());
        for s in &scope {
            let ext = s.extensions();
            let f = ext.get::<Self>();
            newest_record = newest_record.max(f.map_or(0, |f| f.last_record));
            state.push((f.and_then(|f| f.rendered.clone()), newest_record));
        }
        // Start below the nearest span whose rendering is still current.
        let mut from = 0;
        let mut acc: Option<Arc<Rendered>> = None;
        for (i, (rendered, newest)) in state.into_iter().enumerate().rev() {
            if let Some(r) = rendered.filter(|r| r.built_at > newest) {
                acc = Some(r);
                from = i + 1;
                break;
            }
        }
        for i in from..scope.len() {
            let built_at = RECORDS.load(Ordering::Acquire);
            let appended = {
                let ext = scope[i].extensions();
                let own = Self::own(&ext);
                let overrides = acc.as_ref().is_some_and(|parent| {
                    own.iter().any(|(k, _)| parent.keys.iter().any(|p| p == k))
                });
                (!overrides).then(|| Self::render(built_at, acc.as_deref(), &own))
            };
            let rendered = Arc::new(match appended {
                Some(r) => r,
                None => Self::merge_scope(built_at, &scope[..=i]),
            });
            let mut ext = scope[i].extensions_mut();
            match ext.get_mut::<Self>() {
                Some(f) => f.rendered = Some(Arc::clone(&rendered)),
                None => {
                    let mut f = Self::empty();
                    f.rendered = Some(Arc::clone(&rendered));
                    ext.insert(f);
                }
            }
            acc = Some(rendered);
        }
        acc
    }

    /// A span's own fields: its pairs here, else the span layer's attributes.
    fn own<'a>(ext: &'a tracing_subscriber::registry::Extensions<'_>) -> Fields<'a> {
        if let Some(own) = ext.get::<Self>().filter(|f| !f.pairs.is_empty()) {
            own.pairs
                .iter()
                .map(|(k, v)| (Cow::Borrowed(*k), FieldValue::Json(v)))
                .collect()
        } else if let Some(data) = ext.get::<SpanData>() {
            data.attributes()
                .entries()
                .iter()
                .filter(|(k, _)| log_keeps(k))
                .map(|(k, v)| (k.clone(), FieldValue::Attr(v)))
                .collect()
        } else {
            Vec::new()
        }
    }

    /// Every span's fields in `scope` (root first), a nearer span's value
    /// replacing an ancestor's in place.
    fn merge_scope<S>(built_at: u64, scope: &[SpanRef<'_, S>]) -> Rendered
    where
        S: for<'a> LookupSpan<'a>,
    {
        let guards: Vec<_> = scope.iter().map(SpanRef::extensions).collect();
        let mut merged: Fields<'_> = Vec::new();
        for ext in &guards {
            for (k, v) in Self::own(ext) {
                upsert(&mut merged, k, v);
            }
        }
        Self::render(built_at, None, &merged)
    }

    /// `prefix`'s fields, then `pairs`.
    fn render(
        built_at: u64,
        prefix: Option<&Rendered>,
        pairs: &[(Cow<'static, str>, FieldValue<'_>)],
    ) -> Rendered {
        let (mut json, mut keys) = match prefix {
            Some(p) => (p.json.clone(), p.keys.clone()),
            None => (
                Vec::with_capacity(pairs.len() * 24),
                Vec::with_capacity(pairs.len()),
            ),
        };
        for (k, v) in pairs {
            if !json.is_empty() {
                json.push(b',');
            }
            write_json_str(&mut json, k);
            json.push(b':');
            match v {
                FieldValue::Json(v) => json.extend_from_slice(v),
                FieldValue::Attr(AttrValue::Str(s)) => write_json_str(&mut json, s),
                FieldValue::Attr(AttrValue::I64(n)) => write_int(&mut json, *n),
                FieldValue::Attr(AttrValue::U64(n)) => write_int(&mut json, *n),
                FieldValue::Attr(AttrValue::F64(x)) => write_json_f64(&mut json, *x),
                FieldValue::Attr(AttrValue::Bool(b)) => {
                    json.extend_from_slice(if *b { b"true" } else { b"false" });
                }
            }
            keys.push(k.clone());
        }
        Rendered {
            built_at,
            json,
            keys,
        }
    }
}

/// Replaces `key`'s value where it stands (a field keeps its first place),
/// or appends it.
fn upsert<K: PartialEq, V>(pairs: &mut Vec<(K, V)>, key: K, value: V) {
    match pairs.iter_mut().find(|(k, _)| *k == key) {
        Some(slot) => slot.1 = value,
        None => pairs.push((key, value)),
    }
}

/// Whether a span field belongs in log lines' `span_fields`. These are
/// routed elsewhere: correlation_id has its own key, otel.* are span
/// metadata, log.* come from the `log` crate bridge, and the caller's trace
/// context is in the line's trace id already.
fn log_keeps(name: &str) -> bool {
    name != attr::CORRELATION_ID
        && !name.starts_with("otel.")
        && !name.starts_with("log.")
        && name != attr::FLIGHTDECK_REMOTE_PARENT
        && name != attr::FLIGHTDECK_TRACESTATE
}

/// Collects span fields as (name, JSON value) pairs. Each value is written
/// into one reused scratch buffer and kept as exact-size bytes; fields
/// routed elsewhere are skipped before they are formatted.
struct SpanFieldCollector<'a> {
    pairs: &'a mut Vec<(&'static str, Box<[u8]>)>,
    scratch: Vec<u8>,
}

impl<'a> SpanFieldCollector<'a> {
    fn new(pairs: &'a mut Vec<(&'static str, Box<[u8]>)>) -> Self {
        Self {
            pairs,
            scratch: Vec::new(),
        }
    }

    fn put(&mut self, field: &Field, write: impl FnOnce(&mut Vec<u8>)) {
        if !log_keeps(field.name()) {
            return;
        }
        self.scratch.clear();
        write(&mut self.scratch);
        let value: Box<[u8]> = Box::from(self.scratch.as_slice());
        upsert(self.pairs, field.name(), value);
    }
}

impl Visit for SpanFieldCollector<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, |v| write_json_str(v, crate::limits::capped(value)));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, |v| write_json_debug(v, value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, |v| write_int(v, value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, |v| write_int(v, value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, |v| write_json_f64(v, value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, |v| {
            v.extend_from_slice(if value { b"true" } else { b"false" });
        });
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.record_str(field, &error_chain(value));
    }
}

/// Writes an event's fields straight into JSON; keeps the message apart.
struct JsonFieldVisitor {
    message: Option<Vec<u8>>,
    fields: Vec<u8>,
}

impl JsonFieldVisitor {
    fn new() -> Self {
        Self {
            message: None,
            fields: Vec::new(),
        }
    }

    /// Starts a field; returns `None` when the field is the message.
    fn key(&mut self, field: &Field) -> Option<&mut Vec<u8>> {
        let name = field.name();
        if name == "message" {
            return None;
        }
        if !self.fields.is_empty() {
            self.fields.push(b',');
        }
        write_json_str(&mut self.fields, name);
        self.fields.push(b':');
        Some(&mut self.fields)
    }

    fn skip(field: &Field) -> bool {
        field.name().starts_with("log.")
    }
}

impl Visit for JsonFieldVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if Self::skip(field) {
            return;
        }
        match self.key(field) {
            Some(out) => write_json_str(out, crate::limits::capped(value)),
            None => {
                let mut m = Vec::with_capacity(value.len() + 2);
                write_json_str(&mut m, value);
                self.message = Some(m);
            }
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if Self::skip(field) {
            return;
        }
        match self.key(field) {
            Some(out) => write_json_debug(out, value),
            None => {
                let mut m = Vec::with_capacity(64);
                write_json_debug_capped(&mut m, value, usize::MAX);
                self.message = Some(m);
            }
        }
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        if let Some(out) = self.key(field) {
            write_int(out, value);
        }
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        if let Some(out) = self.key(field) {
            write_int(out, value);
        }
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        if let Some(out) = self.key(field) {
            write_json_f64(out, value);
        }
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        if let Some(out) = self.key(field) {
            out.extend_from_slice(if value { b"true" } else { b"false" });
        }
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.record_str(field, &error_chain(value));
    }
}

thread_local! {
    static LINE_BUF: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(512));
}

impl<S> Layer<S> for JsonLogLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &SpanAttributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        if span.extensions().get::<SpanData>().is_some() {
            // The span layer came first and keeps the fields.
            return;
        }
        let mut pairs = Vec::new();
        attrs.record(&mut SpanFieldCollector::new(&mut pairs));
        if pairs.is_empty() {
            return;
        }
        span.extensions_mut().insert(LogSpanFields {
            pairs,
            ..LogSpanFields::empty()
        });
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut ext = span.extensions_mut();
        let from_span_layer = ext.get_mut::<SpanData>().is_some();
        if ext.get_mut::<LogSpanFields>().is_none() {
            ext.insert(LogSpanFields::empty());
        }
        let Some(fields) = ext.get_mut::<LogSpanFields>() else {
            return;
        };
        // Pairs of its own: this layer saw the span first and keeps its
        // fields; none: they are the span layer's.
        if !fields.pairs.is_empty() || !from_span_layer {
            values.record(&mut SpanFieldCollector::new(&mut fields.pairs));
        }
        fields.rendered = None;
        fields.last_record = RECORDS.fetch_add(1, Ordering::AcqRel);
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        LINE_BUF.with(|cell| match cell.try_borrow_mut() {
            Ok(mut buf) => {
                buf.clear();
                self.format_event(event, &ctx, &mut buf);
                self.write_line(&buf);
                // Keep the buffer from growing for good after one huge event.
                if buf.capacity() > 64 * 1024 {
                    *buf = Vec::with_capacity(512);
                }
            }
            // A field's Debug impl logged while we were formatting: use a fresh buffer.
            Err(_) => {
                let mut buf = Vec::with_capacity(512);
                self.format_event(event, &ctx, &mut buf);
                self.write_line(&buf);
            }
        });
    }
}

/// Escapes `Debug` output straight into the buffer, with no temporary String.
/// Escapes into JSON, keeping at most `left` bytes of the text (cut on a
/// character boundary); formatting stops once the budget is spent.
struct JsonEscaper<'a> {
    out: &'a mut Vec<u8>,
    left: usize,
}

impl fmt::Write for JsonEscaper<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if s.len() <= self.left {
            escape_into(self.out, s);
            self.left -= s.len();
            return Ok(());
        }
        escape_into(self.out, crate::locate::prefix(s, self.left));
        self.left = 0;
        Err(fmt::Error)
    }
}

/// A `Debug` value as a JSON string of at most `limit` bytes of text.
fn write_json_debug_capped(out: &mut Vec<u8>, value: &dyn fmt::Debug, limit: usize) {
    out.push(b'"');
    let _ = write!(JsonEscaper { out, left: limit }, "{value:?}");
    out.push(b'"');
}

/// A `Debug` value as a JSON string, cut to the attribute value limit.
fn write_json_debug(out: &mut Vec<u8>, value: &dyn fmt::Debug) {
    write_json_debug_capped(out, value, crate::limits::attribute_value_limit());
}

fn write_json_f64(out: &mut Vec<u8>, value: f64) {
    if value.is_finite() {
        let _ = write!(out, "{value}");
    } else {
        // JSON has no NaN or infinity; keep the information as a string.
        let _ = write!(out, "\"{value}\"");
    }
}

/// Writes `unix_nanos` as RFC 3339 UTC with microseconds: `2026-11-23T22:46:10.123456Z`.
///
/// Digits go straight into a template: `write!` with padded fields cost
/// about 2,800 instructions per timestamp, two timestamps per request in the
/// service's overhead bench (callgrind).
pub(crate) fn write_rfc3339_micros(out: &mut Vec<u8>, unix_nanos: u64) {
    /// Fills `dst` with the low decimal digits of `v`, zero-padded.
    fn digits(dst: &mut [u8], mut v: u64) {
        for d in dst.iter_mut().rev() {
            *d = b'0' + (v % 10) as u8;
            v /= 10;
        }
    }
    let secs = unix_nanos / 1_000_000_000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    let mut t = *b"0000-00-00T00:00:00.000000Z";
    // u64 nanoseconds end in 2554, so the year always has four digits.
    digits(&mut t[0..4], y.clamp(0, 9999) as u64);
    digits(&mut t[5..7], u64::from(m));
    digits(&mut t[8..10], u64::from(d));
    digits(&mut t[11..13], rem / 3600);
    digits(&mut t[14..16], (rem % 3600) / 60);
    digits(&mut t[17..19], rem % 60);
    digits(&mut t[20..26], (unix_nanos % 1_000_000_000) / 1_000);
    out.extend_from_slice(&t);
}

/// Renders a timestamp as RFC 3339 UTC with microseconds.
pub fn format_rfc3339(unix_nanos: u64) -> String {
    let mut buf = Vec::with_capacity(27);
    write_rfc3339_micros(&mut buf, unix_nanos);
    String::from_utf8(buf).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00.000000Z");
        // 2024-02-29T12:34:56.789012Z, a leap day.
        assert_eq!(
            format_rfc3339(1_709_210_096_789_012_345),
            "2024-02-29T12:34:56.789012Z"
        );
        assert_eq!(
            format_rfc3339(4_102_444_800_000_000_000),
            "2100-01-01T00:00:00.000000Z"
        );
        assert_eq!(format_rfc3339(u64::MAX), "2554-07-21T23:34:33.709551Z");
        // A spread of instants over five centuries, against `write!` with
        // padded fields.
        for n in (0..200_000_u64).map(|i| i * 7_777_777_777_777 + i * 86_399_000_001) {
            let secs = n / 1_000_000_000;
            let (y, m, d) = civil_from_days((secs / 86_400) as i64);
            let r = secs % 86_400;
            let slow = format!(
                "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:06}Z",
                r / 3600,
                (r % 3600) / 60,
                r % 60,
                (n % 1_000_000_000) / 1_000
            );
            assert_eq!(format_rfc3339(n), slow);
        }
    }

    #[test]
    fn non_finite_floats_stay_valid_json() {
        let mut out = Vec::new();
        write_json_f64(&mut out, f64::NAN);
        assert_eq!(out, b"\"NaN\"");
    }
}

//! [`SpanLayer`]: turns `tracing` spans into [`SpanRecord`]s.
//!
//! The layer gives every span a W3C-style trace id and span id, follows the
//! `tracing` span tree for parent links (so `.instrument()`ed tasks and spans
//! entered on other threads link up), carries the correlation id down the
//! tree, collects fields as attributes and events, and hands each finished
//! span to a [`SpanExporter`].

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes as SpanAttributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::Registry;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::{Extensions, LookupSpan};

use crate::clock::{Clock, SystemClock};
use crate::correlation::{CorrelationContext, CorrelationId};
use crate::error::BuildError;
use crate::export::{NoopSpanExporter, SpanExporter};
use crate::names::attr;
use crate::record::{AttrValue, Attributes, SpanEvent, SpanKind, SpanRecord, SpanStatus};
use crate::{SpanId, TraceId};

/// Ids another layer chose for a span (see [`TraceContextHook`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HookIds {
    /// The trace id.
    pub trace_id: TraceId,
    /// The span id.
    pub span_id: SpanId,
    /// For a root span continuing a remote trace: the remote parent's span id.
    pub remote_parent: Option<SpanId>,
    /// The other layer's sampling decision, if it made one.
    pub sampled: Option<bool>,
}

/// Lets another layer decide a span's ids, so ours equal its ids.
///
/// obs-otel implements this to make the trace and span ids in span records
/// and log lines exactly the OpenTelemetry ids a collector receives, without
/// obs-core depending on OpenTelemetry. Install the other layer *below*
/// [`SpanLayer`] (`registry().with(otel).with(span_layer)`) so it has seen
/// the span when [`SpanLayer`] asks. The hook is called with no span
/// extensions locked, so it may look the span up itself.
pub trait TraceContextHook: Send + Sync + 'static {
    /// Returns the ids to use for the newly opened span `id`, or `None` to
    /// keep ours. `parent` is the parent span's ids as [`SpanLayer`]
    /// recorded them.
    ///
    /// `dispatch` is the subscriber the span belongs to (inside a subscriber
    /// callback `tracing::dispatcher::get_default` is a no-op dispatcher).
    fn span_ids(
        &self,
        dispatch: &tracing::Dispatch,
        id: &Id,
        parent: Option<(TraceId, SpanId)>,
    ) -> Option<HookIds>;
}

/// The identity of a span as [`SpanLayer`] sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpanContext {
    /// The trace id.
    pub trace_id: TraceId,
    /// The span id.
    pub span_id: SpanId,
    /// The correlation id in effect for the span.
    pub correlation_id: Option<CorrelationId>,
    /// Whether the span's record will be exported.
    pub sampled: bool,
    /// The caller's W3C `tracestate`, when the trace came from another
    /// process with one ([`attr::FLIGHTDECK_TRACESTATE`]).
    pub trace_state: Option<Arc<str>>,
}

/// Per-span state, stored in the span's registry extensions.
#[derive(Debug)]
pub(crate) struct SpanData {
    pub(crate) trace_id: TraceId,
    pub(crate) span_id: SpanId,
    parent_span_id: Option<SpanId>,
    parent_is_remote: bool,
    pub(crate) correlation_id: Option<CorrelationId>,
    sampled: bool,
    trace_state: Option<Arc<str>>,
    start_unix_nanos: u64,
    name: Cow<'static, str>,
    kind: SpanKind,
    status: SpanStatus,
    attributes: Attributes,
    events: Vec<SpanEvent>,
    dropped_events: u32,
}

impl SpanData {
    /// The span's attributes so far (the log layer renders them into the
    /// lines logged inside the span).
    pub(crate) fn attributes(&self) -> &Attributes {
        &self.attributes
    }

    fn context(&self) -> SpanContext {
        SpanContext {
            trace_id: self.trace_id,
            span_id: self.span_id,
            correlation_id: self.correlation_id.clone(),
            sampled: self.sampled,
            trace_state: self.trace_state.clone(),
        }
    }
}

/// The [`SpanContext`] of the current span, when [`SpanLayer`] is installed.
///
/// ```
/// use flightdeck_obs_core::{current_span_context, SpanLayer};
/// use tracing_subscriber::layer::SubscriberExt;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let subscriber = tracing_subscriber::registry().with(SpanLayer::builder().build()?);
/// tracing::subscriber::with_default(subscriber, || {
///     assert!(current_span_context().is_none());
///     tracing::info_span!("work").in_scope(|| {
///         let ctx = current_span_context().expect("inside a span");
///         assert_eq!(ctx.trace_id.to_string().len(), 32);
///     });
/// });
/// # Ok(())
/// # }
/// ```
pub fn current_span_context() -> Option<SpanContext> {
    with_current_span_data(SpanData::context)
}

pub(crate) fn current_span_correlation() -> Option<CorrelationId> {
    with_current_span_data(|d| d.correlation_id.clone()).flatten()
}

fn with_current_span_data<T>(f: impl FnOnce(&SpanData) -> T) -> Option<T> {
    let mut f = Some(f);
    tracing::dispatcher::get_default(|dispatch| {
        let registry = dispatch.downcast_ref::<Registry>()?;
        let current = dispatch.current_span();
        let span = registry.span(current.id()?)?;
        let ext = span.extensions();
        let data = ext.get::<SpanData>()?;
        f.take().map(|f| f(data))
    })
}

/// Reads [`SpanData`] ids from an extensions map (for the JSON log layer).
pub(crate) fn span_data_ids(
    ext: &Extensions<'_>,
) -> Option<(TraceId, SpanId, Option<CorrelationId>)> {
    ext.get::<SpanData>()
        .map(|d| (d.trace_id, d.span_id, d.correlation_id.clone()))
}

struct Config {
    service_name: Arc<str>,
    exporter: Box<dyn SpanExporter>,
    sample_rate: f64,
    max_events_per_span: usize,
    hook: Option<Arc<dyn TraceContextHook>>,
    clock: Arc<dyn Clock>,
}

/// A `tracing-subscriber` layer that records spans and exports them.
///
/// Build it with [`SpanLayer::builder`]. Install exactly one per subscriber.
pub struct SpanLayer {
    // The subscriber this layer is part of, for the hook.
    dispatch: std::sync::OnceLock<tracing::dispatcher::WeakDispatch>,
    service_name: Arc<str>,
    exporter: Box<dyn SpanExporter>,
    /// Traces whose id hashes below this threshold are sampled (as OTel's
    /// `TraceIdRatioBased`: compares the low 63 bits of the trace id).
    sample_threshold: u64,
    max_events_per_span: usize,
    hook: Option<Arc<dyn TraceContextHook>>,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for SpanLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpanLayer")
            .field("service_name", &self.service_name)
            .field("sample_threshold", &self.sample_threshold)
            .field("max_events_per_span", &self.max_events_per_span)
            .field("hook", &self.hook.is_some())
            .finish_non_exhaustive()
    }
}

/// Builds a [`SpanLayer`].
///
/// | setting | default |
/// |---|---|
/// | service name | `rag-service` |
/// | exporter | [`NoopSpanExporter`] |
/// | sample rate | 1.0 (every trace) |
/// | events kept per span | 128 |
/// | trace context hook | none (our own random ids) |
/// | clock | [`SystemClock`] |
pub struct SpanLayerBuilder {
    config: Config,
}

impl fmt::Debug for SpanLayerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpanLayerBuilder")
            .field("service_name", &self.config.service_name)
            .field("sample_rate", &self.config.sample_rate)
            .finish_non_exhaustive()
    }
}

impl Default for SpanLayerBuilder {
    fn default() -> Self {
        Self {
            config: Config {
                service_name: Arc::from(crate::settings::DEFAULT_SERVICE_NAME),
                exporter: Box::new(NoopSpanExporter),
                sample_rate: 1.0,
                max_events_per_span: 128,
                hook: None,
                clock: Arc::new(SystemClock),
            },
        }
    }
}

impl SpanLayerBuilder {
    /// The `service_name` written on every record. Defaults to `rag-service`.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let layer = flightdeck_obs_core::SpanLayer::builder().with_service_name("search-api").build()?;
    /// # drop(layer); Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn with_service_name(mut self, name: impl Into<String>) -> Self {
        self.config.service_name = Arc::from(name.into());
        self
    }

    /// Where finished spans go. Defaults to [`NoopSpanExporter`].
    #[must_use]
    pub fn with_exporter(mut self, exporter: impl SpanExporter) -> Self {
        self.config.exporter = Box::new(exporter);
        self
    }

    /// The share of traces exported, from 0.0 to 1.0, decided once per trace
    /// from its trace id (children follow their root). Defaults to 1.0.
    #[must_use]
    pub fn with_sample_rate(mut self, rate: f64) -> Self {
        self.config.sample_rate = rate;
        self
    }

    /// Events kept per span; later ones are counted in `dropped_events`.
    /// Defaults to 128.
    #[must_use]
    pub fn with_max_events_per_span(mut self, max: usize) -> Self {
        self.config.max_events_per_span = max;
        self
    }

    /// Lets another layer choose span ids (see [`TraceContextHook`]). Defaults to none.
    #[must_use]
    pub fn with_trace_context_hook(mut self, hook: impl TraceContextHook) -> Self {
        self.config.hook = Some(Arc::new(hook));
        self
    }

    /// The clock for start and end times. Defaults to [`SystemClock`].
    #[must_use]
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.config.clock = Arc::new(clock);
        self
    }

    /// Validates the settings and builds the layer.
    ///
    /// # Errors
    ///
    /// [`BuildError::InvalidValue`] when the sample rate is not within 0.0 to 1.0.
    pub fn build(self) -> Result<SpanLayer, BuildError> {
        let c = self.config;
        if !(0.0..=1.0).contains(&c.sample_rate) {
            return Err(BuildError::InvalidValue {
                name: "sample rate",
                value: c.sample_rate.to_string(),
                expected: "a number from 0.0 to 1.0",
            });
        }
        Ok(SpanLayer {
            dispatch: std::sync::OnceLock::new(),
            service_name: c.service_name,
            exporter: c.exporter,
            sample_threshold: sample_threshold(c.sample_rate),
            max_events_per_span: c.max_events_per_span,
            hook: c.hook,
            clock: c.clock,
        })
    }
}

fn sample_threshold(rate: f64) -> u64 {
    if rate >= 1.0 {
        u64::MAX
    } else {
        (rate * (1u64 << 63) as f64) as u64
    }
}

impl SpanLayer {
    /// A builder with the defaults in [`SpanLayerBuilder`].
    pub fn builder() -> SpanLayerBuilder {
        SpanLayerBuilder::default()
    }

    fn sampled(&self, trace_id: TraceId) -> bool {
        if self.sample_threshold == u64::MAX {
            return true;
        }
        let low = (trace_id.to_u128() as u64) >> 1;
        low < self.sample_threshold
    }
}

impl<S> Layer<S> for SpanLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_register_dispatch(&self, subscriber: &tracing::Dispatch) {
        let _ = self.dispatch.set(subscriber.downgrade());
    }

    fn on_new_span(&self, attrs: &SpanAttributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let parent = span.parent().and_then(|p| {
            let ext = p.extensions();
            ext.get::<SpanData>().map(|d| {
                let ids = (d.trace_id, d.span_id, d.sampled);
                (ids, d.correlation_id.clone(), d.trace_state.clone())
            })
        });
        let metadata = attrs.metadata();
        let mut visitor = AttrVisitor::new(
            Attributes::with_capacity(metadata.fields().len()),
            SpanFields::default(),
        );
        attrs.record(&mut visitor);
        let AttrVisitor {
            attributes,
            special: fields,
        } = visitor;

        let mut parent_is_remote = false;
        let mut trace_state = None;
        let (mut trace_id, mut span_id, mut parent_span_id, inherited, mut sampled) = match parent {
            Some(((t, s, sampled), c, state)) => {
                trace_state = state;
                (t, SpanId::random(), Some(s), c, sampled)
            }
            None => match fields.remote_parent {
                // Continuing a remote trace: its trace id, its span as the
                // (remote) parent, its sampling decision, its tracestate.
                Some((t, p, sampled)) => {
                    parent_is_remote = true;
                    trace_state = fields.trace_state;
                    (
                        t,
                        SpanId::random(),
                        Some(p),
                        CorrelationContext::current_scope(),
                        sampled,
                    )
                }
                None => {
                    let t = TraceId::random();
                    (
                        t,
                        SpanId::random(),
                        None,
                        CorrelationContext::current_scope(),
                        self.sampled(t),
                    )
                }
            },
        };
        let dispatch = self
            .dispatch
            .get()
            .and_then(tracing::dispatcher::WeakDispatch::upgrade);
        if let (Some(hook), Some(dispatch)) = (&self.hook, dispatch) {
            let parent_ids = parent_span_id.map(|p| (trace_id, p));
            if let Some(ids) = hook.span_ids(&dispatch, id, parent_ids) {
                if parent_span_id.is_none() {
                    parent_span_id = ids.remote_parent;
                    parent_is_remote = parent_span_id.is_some();
                    if ids.trace_id != trace_id {
                        sampled = self.sampled(ids.trace_id);
                    }
                }
                if let Some(s) = ids.sampled {
                    sampled = s;
                }
                trace_id = ids.trace_id;
                span_id = ids.span_id;
            }
        }
        let data = SpanData {
            trace_id,
            span_id,
            parent_span_id,
            parent_is_remote,
            correlation_id: fields.correlation_id.or(inherited),
            sampled,
            trace_state,
            start_unix_nanos: self.clock.now_unix_nanos(),
            name: fields
                .name
                .map_or(Cow::Borrowed(metadata.name()), Cow::Owned),
            kind: fields.kind.unwrap_or_default(),
            status: fields.status.unwrap_or_default(),
            attributes,
            events: Vec::new(),
            dropped_events: 0,
        };
        span.extensions_mut().insert(data);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut ext = span.extensions_mut();
        let Some(data) = ext.get_mut::<SpanData>() else {
            return;
        };
        let mut visitor =
            AttrVisitor::new(std::mem::take(&mut data.attributes), SpanFields::default());
        values.record(&mut visitor);
        let AttrVisitor {
            attributes,
            special: fields,
        } = visitor;
        data.attributes = attributes;
        if let Some(c) = fields.correlation_id {
            data.correlation_id = Some(c);
        }
        if let Some(k) = fields.kind {
            data.kind = k;
        }
        if let Some(s) = fields.status {
            data.status = s;
        }
        if let Some(n) = fields.name {
            data.name = Cow::Owned(n);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.event_span(event) else {
            return;
        };
        let mut ext = span.extensions_mut();
        let Some(data) = ext.get_mut::<SpanData>() else {
            return;
        };
        let is_error = *event.metadata().level() == tracing::Level::ERROR;
        if !data.sampled {
            return;
        }
        let mut visitor = AttrVisitor::new(Attributes::default(), EventMessage::default());
        event.record(&mut visitor);
        let AttrVisitor {
            attributes,
            special: EventMessage(message),
        } = visitor;
        if is_error && !data.status.is_error() {
            data.status = SpanStatus::Error {
                message: message.clone(),
            };
        }
        if data.events.len() >= self.max_events_per_span {
            data.dropped_events = data.dropped_events.saturating_add(1);
            return;
        }
        data.events.push(SpanEvent {
            name: message,
            time_unix_nanos: self.clock.now_unix_nanos(),
            level: Cow::Borrowed(event.metadata().level().as_str()),
            attributes,
        });
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let data = span.extensions_mut().remove::<SpanData>();
        let Some(data) = data else { return };
        if !data.sampled {
            return;
        }
        let end = self.clock.now_unix_nanos().max(data.start_unix_nanos);
        self.exporter.export(SpanRecord {
            trace_id: data.trace_id,
            span_id: data.span_id,
            parent_span_id: data.parent_span_id,
            parent_is_remote: data.parent_is_remote,
            name: data.name,
            kind: data.kind,
            start_unix_nanos: data.start_unix_nanos,
            end_unix_nanos: end,
            duration_nanos: end - data.start_unix_nanos,
            attributes: data.attributes,
            events: data.events,
            dropped_events: data.dropped_events,
            status: data.status,
            correlation_id: data.correlation_id,
            service_name: Arc::clone(&self.service_name),
            trace_state: data.trace_state,
        });
    }
}

/// Records a span's or an event's fields as attributes. String fields go to
/// `special` first, which claims those it routes elsewhere (the span's
/// `otel.*` and `correlation_id` fields, an event's message). One visitor
/// for spans and events, so both cap and convert values alike.
struct AttrVisitor<S> {
    attributes: Attributes,
    special: S,
}

/// The string fields a visitor routes away from the attributes.
trait Special {
    /// Takes `value` when `field` is one of its own; `false` leaves it to
    /// the attributes.
    fn claim(&mut self, field: &Field, value: &str) -> bool;
}

impl<S: Special> AttrVisitor<S> {
    fn new(attributes: Attributes, special: S) -> Self {
        Self {
            attributes,
            special,
        }
    }
}

impl<S: Special> Visit for AttrVisitor<S> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if !self.special.claim(field, value) {
            self.attributes.set(
                field.name(),
                AttrValue::Str(crate::limits::capped(value).to_owned()),
            );
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.record_str(field, &format!("{value:?}"));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.attributes.set(field.name(), AttrValue::I64(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        let v = i64::try_from(value).map_or(AttrValue::U64(value), AttrValue::I64);
        self.attributes.set(field.name(), v);
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.attributes.set(field.name(), AttrValue::F64(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.attributes.set(field.name(), AttrValue::Bool(value));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.record_str(field, &error_chain(value));
    }
}

/// A span's special fields: `otel.*` and `correlation_id`.
#[derive(Default)]
struct SpanFields {
    correlation_id: Option<CorrelationId>,
    kind: Option<SpanKind>,
    status: Option<SpanStatus>,
    name: Option<String>,
    /// (trace id, parent span id, sampled) from an inbound `traceparent`.
    remote_parent: Option<(TraceId, SpanId, bool)>,
    /// The inbound `tracestate` beside it.
    trace_state: Option<Arc<str>>,
}

/// A `tracestate` worth carrying: not empty, printable ASCII, bounded.
fn tracestate(v: &str) -> Option<Arc<str>> {
    let ok = !v.is_empty()
        && v.len() <= crate::MAX_TRACESTATE_LEN
        && v.bytes().all(|b| (0x20..=0x7e).contains(&b));
    ok.then(|| Arc::from(v))
}

/// A W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`), strictly: lowercase
/// hex, non-zero ids, version not `ff`; later versions may append fields.
fn parse_traceparent(v: &str) -> Option<(TraceId, SpanId, bool)> {
    let hex = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let b = v.as_bytes();
    if b.len() < 55 || b[2] != b'-' || b[35] != b'-' || b[52] != b'-' {
        return None;
    }
    let (version, trace, span, flags) = (&v[..2], &v[3..35], &v[36..52], &v[53..55]);
    if !(hex(version) && hex(trace) && hex(span) && hex(flags)) || version == "ff" {
        return None;
    }
    if version == "00" && b.len() != 55 || version != "00" && b.len() > 55 && b[55] != b'-' {
        return None;
    }
    let trace_id = TraceId::from_u128(u128::from_str_radix(trace, 16).ok()?)?;
    let span_id = SpanId::from_u64(u64::from_str_radix(span, 16).ok()?)?;
    let sampled = u8::from_str_radix(flags, 16).ok()? & 1 == 1;
    Some((trace_id, span_id, sampled))
}

impl Special for SpanFields {
    fn claim(&mut self, field: &Field, value: &str) -> bool {
        match field.name() {
            attr::CORRELATION_ID => {
                // An invalid id is replaced, never copied, as for inbound headers.
                self.correlation_id = Some(CorrelationId::from_inbound(Some(value.as_bytes())).0);
            }
            attr::OTEL_KIND => self.kind = SpanKind::parse(value),
            attr::OTEL_STATUS_CODE => {
                if value.eq_ignore_ascii_case("error") {
                    let message = match self.status.take() {
                        Some(SpanStatus::Error { message }) => message,
                        _ => String::new(),
                    };
                    self.status = Some(SpanStatus::Error { message });
                } else if value.eq_ignore_ascii_case("ok") {
                    self.status = Some(SpanStatus::Ok);
                }
            }
            attr::OTEL_STATUS_MESSAGE => {
                self.status = Some(SpanStatus::Error {
                    message: value.to_owned(),
                });
            }
            attr::OTEL_NAME => self.name = Some(value.to_owned()),
            attr::FLIGHTDECK_REMOTE_PARENT => self.remote_parent = parse_traceparent(value),
            attr::FLIGHTDECK_TRACESTATE => self.trace_state = tracestate(value),
            _ => return false,
        }
        true
    }
}

/// An event's message; `log.*` fields from the `log` bridge are dropped.
#[derive(Default)]
struct EventMessage(String);

impl Special for EventMessage {
    fn claim(&mut self, field: &Field, value: &str) -> bool {
        if field.name() == "message" {
            value.clone_into(&mut self.0);
            return true;
        }
        field.name().starts_with("log.")
    }
}

/// `error: cause: root cause`, as people expect to read an error.
pub(crate) fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut s = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparents_parse_strictly() {
        let ok =
            parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        assert_eq!(ok.0.to_u128(), 0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736);
        assert_eq!(ok.1.to_u64(), 0x00f0_67aa_0ba9_02b7);
        assert!(ok.2);
        assert!(
            !parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")
                .unwrap()
                .2
        );
        for bad in [
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "garbage",
        ] {
            assert!(parse_traceparent(bad).is_none(), "{bad}");
        }
        assert!(
            parse_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future")
                .is_some()
        );
    }
    use crate::clock::ManualClock;
    use crate::export::InMemoryExporter;
    use tracing_subscriber::layer::SubscriberExt;

    fn capture(rate: f64, f: impl FnOnce()) -> Vec<SpanRecord> {
        let spans = InMemoryExporter::new();
        let layer = SpanLayer::builder()
            .with_exporter(spans.clone())
            .with_sample_rate(rate)
            .build()
            .unwrap();
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), f);
        spans.take()
    }

    #[test]
    fn the_callers_tracestate_is_kept_when_valid_and_inherited() {
        let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let longest = format!("k={}", "v".repeat(crate::MAX_TRACESTATE_LEN - 2));
        let too_long = format!("{longest}v");
        // The root's and its child's record, continuing `parent` with `state`.
        let kept = |state: &str| {
            let records = capture(1.0, || {
                tracing::info_span!(
                    "root",
                    flightdeck.remote_parent = parent,
                    flightdeck.tracestate = state,
                )
                .in_scope(|| {
                    let inside = current_span_context().unwrap().trace_state;
                    let child = tracing::info_span!("child");
                    let child_inside =
                        child.in_scope(|| current_span_context().unwrap().trace_state);
                    assert_eq!(inside, child_inside, "the context carries it too");
                });
            });
            let [child, root] = records.as_slice() else {
                panic!("two records: {records:?}")
            };
            assert_eq!(root.trace_state, child.trace_state, "children inherit it");
            root.trace_state.as_deref().map(str::to_owned)
        };
        assert_eq!(kept("a=1,b=2").as_deref(), Some("a=1,b=2"));
        assert_eq!(kept(&longest).as_deref(), Some(longest.as_str()));
        assert_eq!(kept(&too_long), None, "past the W3C maximum");
        assert_eq!(kept(""), None);
        assert_eq!(kept("a=\u{e9}"), None, "not printable ASCII");
        // Without a remote parent there is nothing to continue.
        let records = capture(1.0, || {
            drop(tracing::info_span!("root", flightdeck.tracestate = "a=1"));
        });
        assert_eq!(records[0].trace_state, None);
    }

    #[test]
    fn special_fields_set_kind_status_and_name() {
        let records = capture(1.0, || {
            let s = tracing::info_span!(
                "x",
                otel.kind = "client",
                otel.status_code = "ERROR",
                otel.status_message = "upstream 503",
                otel.name = "GET /search",
                plain = 3u64
            );
            drop(s);
        });
        let r = &records[0];
        assert_eq!(r.kind, SpanKind::Client);
        assert_eq!(r.name, "GET /search");
        assert_eq!(
            r.status,
            SpanStatus::Error {
                message: "upstream 503".into()
            }
        );
        assert_eq!(r.attributes.len(), 1, "otel.* fields are not attributes");
        assert_eq!(r.attribute("plain"), Some(&AttrValue::I64(3)));
    }

    #[test]
    fn error_events_mark_the_span_failed_and_are_kept_as_events() {
        let records = capture(1.0, || {
            tracing::info_span!("op").in_scope(|| {
                tracing::info!(attempt = 1, "retrying");
                tracing::error!("gave up");
            });
        });
        let r = &records[0];
        assert_eq!(r.events.len(), 2);
        assert_eq!(r.events[0].name, "retrying");
        assert_eq!(
            r.events[0].attributes.get("attempt"),
            Some(&AttrValue::I64(1))
        );
        assert_eq!(
            r.status,
            SpanStatus::Error {
                message: "gave up".into()
            }
        );
    }

    #[test]
    fn events_beyond_the_limit_are_counted() {
        let spans = InMemoryExporter::new();
        let layer = SpanLayer::builder()
            .with_exporter(spans.clone())
            .with_max_events_per_span(2)
            .build()
            .unwrap();
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
            tracing::info_span!("op").in_scope(|| {
                for i in 0..5 {
                    tracing::info!(i, "tick");
                }
            });
        });
        let r = &spans.take()[0];
        assert_eq!(r.events.len(), 2);
        assert_eq!(r.dropped_events, 3);
    }

    #[test]
    fn late_recorded_fields_and_correlation_are_kept() {
        let records = capture(1.0, || {
            let s = tracing::info_span!(
                "op",
                result = tracing::field::Empty,
                correlation_id = tracing::field::Empty
            );
            s.record("result", "hit");
            s.record("correlation_id", "late-1");
            drop(s);
        });
        assert_eq!(
            records[0].attribute("result"),
            Some(&AttrValue::Str("hit".into()))
        );
        assert_eq!(
            records[0].correlation_id.as_ref().map(|c| c.as_str()),
            Some("late-1")
        );
    }

    #[test]
    fn sampling_is_per_trace_and_respects_the_rate() {
        let none = capture(0.0, || {
            tracing::info_span!("root").in_scope(|| drop(tracing::info_span!("child")));
        });
        assert!(none.is_empty());
        let records = capture(0.5, || {
            for _ in 0..2000 {
                tracing::info_span!("root").in_scope(|| drop(tracing::info_span!("child")));
            }
        });
        let roots = records
            .iter()
            .filter(|r| r.parent_span_id.is_none())
            .count();
        // Binomial(2000, 0.5): 99.99% of runs fall within 1000 +- 90.
        assert!((910..=1090).contains(&roots), "{roots}");
        // Children follow their root: exactly one child per exported root.
        assert_eq!(records.len(), roots * 2);
    }

    #[test]
    fn invalid_sample_rate_is_a_build_error() {
        let err = SpanLayer::builder()
            .with_sample_rate(1.5)
            .build()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid sample rate = 1.5: a number from 0.0 to 1.0"
        );
    }

    #[test]
    fn times_come_from_the_injected_clock() {
        let clock = ManualClock::new(1_000_000);
        let spans = InMemoryExporter::new();
        let layer = SpanLayer::builder()
            .with_exporter(spans.clone())
            .with_clock(clock.clone())
            .build()
            .unwrap();
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
            let s = tracing::info_span!("op");
            clock.advance_nanos(250);
            drop(s);
        });
        let r = &spans.take()[0];
        assert_eq!(
            (r.start_unix_nanos, r.end_unix_nanos, r.duration_nanos),
            (1_000_000, 1_000_250, 250)
        );
    }

    struct FixedIds;
    impl TraceContextHook for FixedIds {
        fn span_ids(
            &self,
            _dispatch: &tracing::Dispatch,
            _id: &Id,
            parent: Option<(TraceId, SpanId)>,
        ) -> Option<HookIds> {
            let trace = parent.map_or(TraceId::from_u128(7).unwrap(), |(t, _)| t);
            let span = SpanId::from_u64(if parent.is_some() { 9 } else { 8 }).unwrap();
            Some(HookIds {
                trace_id: trace,
                span_id: span,
                remote_parent: parent.is_none().then(|| SpanId::from_u64(5).unwrap()),
                sampled: None,
            })
        }
    }

    #[test]
    fn a_hook_decides_the_ids() {
        let spans = InMemoryExporter::new();
        let layer = SpanLayer::builder()
            .with_exporter(spans.clone())
            .with_trace_context_hook(FixedIds)
            .build()
            .unwrap();
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
            tracing::info_span!("root").in_scope(|| drop(tracing::info_span!("child")));
        });
        let records = spans.take();
        let child = &records[0];
        let root = &records[1];
        assert_eq!(root.trace_id.to_u128(), 7);
        assert_eq!(root.span_id.to_u64(), 8);
        assert_eq!(
            root.parent_span_id.map(SpanId::to_u64),
            Some(5),
            "the remote parent"
        );
        assert!(root.parent_is_remote && !child.parent_is_remote);
        assert_eq!(child.trace_id.to_u128(), 7);
        assert_eq!(child.parent_span_id, Some(root.span_id));
        assert_eq!(child.span_id.to_u64(), 9);
    }
}

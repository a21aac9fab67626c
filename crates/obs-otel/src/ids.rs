//! One source of truth for ids: obs-core's span records and log lines use
//! the OpenTelemetry ids the collector receives.

use flightdeck_obs_core::{HookIds, SpanId, TraceContextHook, TraceId};
use opentelemetry::trace::TraceContextExt;
use tracing::span::Id;

/// A [`TraceContextHook`] that reads each span's OpenTelemetry ids from
/// `tracing-opentelemetry`'s layer, which must sit below obs-core's
/// `SpanLayer` (`registry().with(otel_layer).with(span_layer)`).
///
/// A root span continuing a remote trace (the server middleware attaches
/// the extracted context before opening its span) records the remote
/// parent's span id, so span records link across services too.
#[derive(Debug, Clone, Copy, Default)]
pub struct OtelIds;

impl TraceContextHook for OtelIds {
    fn span_ids(
        &self,
        dispatch: &tracing::Dispatch,
        id: &Id,
        parent: Option<(TraceId, SpanId)>,
    ) -> Option<HookIds> {
        let cx = tracing_opentelemetry::get_otel_context(id, dispatch)?;
        let span = cx.span();
        let sc = span.span_context();
        if !sc.is_valid() {
            return None;
        }
        let trace_id = TraceId::from_u128(u128::from_be_bytes(sc.trace_id().to_bytes()))?;
        let span_id = SpanId::from_u64(u64::from_be_bytes(sc.span_id().to_bytes()))?;
        let remote_parent = if parent.is_none() {
            let current = opentelemetry::Context::current();
            let remote = current.span();
            let rsc = remote.span_context();
            (rsc.is_valid() && rsc.trace_id() == sc.trace_id())
                .then(|| SpanId::from_u64(u64::from_be_bytes(rsc.span_id().to_bytes())))
                .flatten()
        } else {
            None
        };
        Some(HookIds {
            trace_id,
            span_id,
            remote_parent,
            sampled: Some(sc.is_sampled()),
        })
    }
}

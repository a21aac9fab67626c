//! `traceparent`, `tracestate` and `baggage` from an untrusted client: no
//! panic, and whatever parses round-trips through injection unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use opentelemetry::trace::TraceContextExt;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(3, '\n');
    let (tp, ts, bag) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
    );
    if let Some(sc) = flightdeck_obs_otel::parse_traceparent(tp) {
        assert!(sc.is_valid(), "an invalid context parsed from {tp:?}");
    }
    if let Some(state) = flightdeck_obs_otel::parse_tracestate(ts) {
        let n = state.header().split(',').filter(|m| !m.is_empty()).count();
        assert!(
            n <= flightdeck_obs_otel::MAX_TRACESTATE_MEMBERS,
            "{n} members kept"
        );
    }
    let mut headers = http::HeaderMap::new();
    for (name, value) in [("traceparent", tp), ("tracestate", ts), ("baggage", bag)] {
        if let Ok(v) = http::HeaderValue::from_str(value) {
            headers.insert(name, v);
        }
    }
    let cx = flightdeck_obs_otel::extract(&headers, &opentelemetry::Context::new());
    let span = cx.span();
    let sc = span.span_context();
    if sc.is_valid() {
        let mut out = http::HeaderMap::new();
        flightdeck_obs_otel::inject(&cx, &mut out);
        let again = flightdeck_obs_otel::extract(&out, &opentelemetry::Context::new());
        assert_eq!(again.span().span_context().trace_id(), sc.trace_id());
        assert_eq!(again.span().span_context().span_id(), sc.span_id());
    }
});

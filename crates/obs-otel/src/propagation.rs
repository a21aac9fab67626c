//! W3C Trace Context (`traceparent`, `tracestate`) and W3C Baggage on
//! `http::HeaderMap`.
//!
//! The trace-context parser is hand-written to follow the specification
//! (<https://www.w3.org/TR/trace-context/>) exactly, because the SDK's
//! `TraceContextPropagator` accepts ids of the wrong length (it parses them
//! as numbers) and keeps the first 32 `tracestate` members of a longer list.
//! Baggage uses the SDK's `BaggagePropagator`.
//!
//! | input | what happens |
//! |---|---|
//! | version `ff`, non-hex or wrong-length fields, upper-case hex | ignored: a new trace starts |
//! | all-zero trace id or span id | ignored: a new trace starts |
//! | version `00` with extra fields | ignored |
//! | a future version with extra fields | the first four fields are used |
//! | flags other than `sampled` | kept on the wire, ignored here |
//! | `tracestate` with more than 32 members, a bad member or a duplicate key | the `tracestate` is dropped, the `traceparent` kept |

use http::{HeaderMap, HeaderValue};
use opentelemetry::Context;
use opentelemetry::baggage::BaggageExt;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use opentelemetry_sdk::propagation::BaggagePropagator;

/// The `traceparent` header.
pub const TRACEPARENT: &str = "traceparent";
/// The `tracestate` header.
pub const TRACESTATE: &str = "tracestate";
/// The `baggage` header.
pub const BAGGAGE: &str = "baggage";
/// The most `tracestate` list members the specification allows.
pub const MAX_TRACESTATE_MEMBERS: usize = 32;

fn lower_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Parses a `traceparent` value as the specification says: `None` when it
/// must be ignored.
///
/// ```
/// use flightdeck_obs_otel::parse_traceparent;
/// let sc = parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
/// assert!(sc.is_sampled());
/// assert!(parse_traceparent("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01").is_none());
/// assert!(parse_traceparent("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").is_none());
/// ```
pub fn parse_traceparent(value: &str) -> Option<SpanContext> {
    let value = value.trim_matches([' ', '\t']);
    // version "-" trace-id "-" parent-id "-" flags: 55 characters.
    if value.len() < 55 || !value.is_ascii() {
        return None;
    }
    let version = &value[..2];
    if !lower_hex(version, 2) || version == "ff" {
        return None;
    }
    let bytes = value.as_bytes();
    if bytes[2] != b'-' || bytes[35] != b'-' || bytes[52] != b'-' {
        return None;
    }
    if version == "00" && value.len() != 55 {
        return None;
    }
    // A future version may append fields, each after a '-'.
    if value.len() > 55 && bytes[55] != b'-' {
        return None;
    }
    let (trace, span, flags) = (&value[3..35], &value[36..52], &value[53..55]);
    if !lower_hex(trace, 32) || !lower_hex(span, 16) || !lower_hex(flags, 2) {
        return None;
    }
    let trace_id = TraceId::from_hex(trace).ok()?;
    let span_id = SpanId::from_hex(span).ok()?;
    if trace_id == TraceId::INVALID || span_id == SpanId::INVALID {
        return None;
    }
    let flags = u8::from_str_radix(flags, 16).ok()?;
    Some(SpanContext::new(
        trace_id,
        span_id,
        TraceFlags::new(flags) & TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    ))
}

fn valid_key(key: &str) -> bool {
    // Trace Context level 2: key = ( lcalpha / DIGIT ) 0*255 keychar, with
    // keychar = lcalpha / DIGIT / "_" / "-" / "*" / "/" / "@" (the W3C
    // harness's grammar; level 1's tenant@system keys are a subset).
    let b = key.as_bytes();
    !b.is_empty()
        && b.len() <= 256
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b[1..].iter().all(|c| {
            c.is_ascii_lowercase()
                || c.is_ascii_digit()
                || matches!(c, b'_' | b'-' | b'*' | b'/' | b'@')
        })
}

fn valid_value(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 256
        && v.bytes()
            .all(|c| (0x20..=0x7e).contains(&c) && c != b',' && c != b'=')
        && !v.ends_with(' ')
}

/// The members of a `tracestate` value, in order: `None` when it must be
/// dropped (more than 32 members, an invalid member). Empty members are
/// skipped, and a key's later duplicates too (the first wins, as the W3C
/// harness accepts). Keys follow Trace Context level 2.
pub fn tracestate_members(value: &str) -> Option<Vec<(String, String)>> {
    let mut members: Vec<(String, String)> = Vec::new();
    for raw in value.split(',') {
        let m = raw.trim_matches([' ', '\t']);
        if m.is_empty() {
            continue;
        }
        let (k, v) = m.split_once('=')?;
        if !valid_key(k) || !valid_value(v) {
            return None;
        }
        if members.iter().any(|(x, _)| x == k) {
            continue;
        }
        members.push((k.to_owned(), v.to_owned()));
        if members.len() > MAX_TRACESTATE_MEMBERS {
            return None;
        }
    }
    Some(members)
}

/// Parses a `tracestate` value into OpenTelemetry's `TraceState`
/// ([`tracestate_members`]; `None` also when the `opentelemetry` crate
/// refuses a key the level 2 grammar allows, such as `foo@@bar`).
pub fn parse_tracestate(value: &str) -> Option<TraceState> {
    TraceState::from_key_value(tracestate_members(value)?).ok()
}

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

struct HeaderInjector<'a>(&'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(v)) = (
            http::HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, v);
        }
    }
}

/// Extracts the remote span context and baggage from `headers` into a
/// context derived from `parent` (usually `Context::current()`).
///
/// Several `traceparent` headers mean none can be trusted: the trace
/// restarts. Baggage is kept either way.
pub fn extract(headers: &HeaderMap, parent: &Context) -> Context {
    let baggage_cx =
        BaggagePropagator::new().extract_with_context(parent, &HeaderExtractor(headers));
    let mut parents = headers.get_all(TRACEPARENT).iter();
    let (Some(tp), None) = (parents.next(), parents.next()) else {
        return baggage_cx;
    };
    let Some(sc) = tp.to_str().ok().and_then(parse_traceparent) else {
        return baggage_cx;
    };
    // Several tracestate headers are one list, joined in order.
    let joined: Vec<&str> = headers
        .get_all(TRACESTATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let state = if joined.is_empty() {
        TraceState::default()
    } else {
        parse_tracestate(&joined.join(",")).unwrap_or_default()
    };
    let sc = SpanContext::new(sc.trace_id(), sc.span_id(), sc.trace_flags(), true, state);
    baggage_cx.with_remote_span_context(sc)
}

/// Writes `traceparent`, `tracestate` (when not empty) and `baggage` (when
/// not empty) for `cx` into `headers`.
pub fn inject(cx: &Context, headers: &mut HeaderMap) {
    let span = cx.span();
    let sc = span.span_context();
    if sc.is_valid() {
        let value = format!(
            "00-{}-{}-{:02x}",
            sc.trace_id(),
            sc.span_id(),
            sc.trace_flags().to_u8() & TraceFlags::SAMPLED.to_u8()
        );
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(TRACEPARENT, v);
        }
        let state = sc.trace_state().header();
        if !state.is_empty()
            && let Ok(v) = HeaderValue::from_str(&state)
        {
            headers.insert(TRACESTATE, v);
        }
    }
    if !cx.baggage().is_empty() {
        BaggagePropagator::new().inject_context(cx, &mut HeaderInjector(headers));
    }
}

/// A [`TextMapPropagator`] with this module's trace-context rules plus W3C
/// baggage, for `opentelemetry::global::set_text_map_propagator`.
#[derive(Debug, Default, Clone, Copy)]
pub struct W3cPropagator;

impl TextMapPropagator for W3cPropagator {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        let mut headers = HeaderMap::new();
        inject(cx, &mut headers);
        for (k, v) in &headers {
            if let Ok(v) = v.to_str() {
                injector.set(k.as_str(), v.to_owned());
            }
        }
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        let mut headers = HeaderMap::new();
        for key in [TRACEPARENT, TRACESTATE, BAGGAGE] {
            if let Some(v) = extractor
                .get(key)
                .and_then(|v| HeaderValue::from_str(v).ok())
            {
                headers.insert(key, v);
            }
        }
        extract(&headers, cx)
    }

    fn fields(&self) -> opentelemetry::propagation::text_map_propagator::FieldIter<'_> {
        static FIELDS: std::sync::LazyLock<[String; 3]> = std::sync::LazyLock::new(|| {
            [
                TRACEPARENT.to_owned(),
                TRACESTATE.to_owned(),
                BAGGAGE.to_owned(),
            ]
        });
        opentelemetry::propagation::text_map_propagator::FieldIter::new(&*FIELDS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const SPAN: &str = "00f067aa0ba902b7";

    fn tp(s: &str) -> Option<SpanContext> {
        parse_traceparent(s)
    }

    #[test]
    fn valid_traceparents() {
        let sc = tp(&format!("00-{TRACE}-{SPAN}-01")).unwrap();
        assert_eq!(sc.trace_id().to_string(), TRACE);
        assert_eq!(sc.span_id().to_string(), SPAN);
        assert!(sc.is_sampled() && sc.is_remote());
        assert!(!tp(&format!("00-{TRACE}-{SPAN}-00")).unwrap().is_sampled());
        // Unknown flags are ignored, sampled kept.
        assert!(tp(&format!("00-{TRACE}-{SPAN}-09")).unwrap().is_sampled());
        // Surrounding optional whitespace.
        assert!(tp(&format!(" 00-{TRACE}-{SPAN}-01\t")).is_some());
    }

    #[test]
    fn a_future_version_with_extra_fields_uses_the_first_four() {
        assert!(tp(&format!("cc-{TRACE}-{SPAN}-01-what-the-future-holds")).is_some());
        assert!(tp(&format!("cc-{TRACE}-{SPAN}-01")).is_some());
        // ...but the extra part must start with '-'.
        assert!(tp(&format!("cc-{TRACE}-{SPAN}-01x")).is_none());
        // Version 00 has no extra fields.
        assert!(tp(&format!("00-{TRACE}-{SPAN}-01-extra")).is_none());
    }

    #[test]
    fn invalid_traceparents_are_ignored() {
        for bad in [
            format!("ff-{TRACE}-{SPAN}-01"),
            format!("00-{}-{SPAN}-01", TRACE.to_uppercase()),
            format!("00-{TRACE}-{}-01", SPAN.to_uppercase()),
            format!("00-{TRACE}-{SPAN}-0A"),
            format!("0-{TRACE}-{SPAN}-01"),
            format!("00-{}-{SPAN}-01", &TRACE[1..]),
            format!("00-{TRACE}0-{SPAN}-01"),
            format!("00-{TRACE}-{}-01", &SPAN[1..]),
            format!("00-{}-{SPAN}-01", "0".repeat(32)),
            format!("00-{TRACE}-{}-01", "0".repeat(16)),
            format!("00-{TRACE}-{SPAN}-1"),
            format!("00_{TRACE}_{SPAN}_01"),
            format!("00-{}-{SPAN}-01", "g".repeat(32)),
            format!("zz-{TRACE}-{SPAN}-01"),
            String::new(),
            "garbage".to_owned(),
            format!("00-{TRACE}-{SPAN}-01é"),
        ] {
            assert!(tp(&bad).is_none(), "accepted {bad:?}");
        }
    }

    #[test]
    fn tracestate_limits_and_validity() {
        let ok = parse_tracestate("rojo=00f067aa0ba902b7, congo=t61rcWkgMzE,, vendor@tenant1=x")
            .unwrap();
        assert_eq!(ok.get("congo"), Some("t61rcWkgMzE"));
        assert_eq!(ok.get("vendor@tenant1"), Some("x"));
        let thirty_two: Vec<String> = (0..32).map(|i| format!("k{i}=v")).collect();
        assert!(parse_tracestate(&thirty_two.join(",")).is_some());
        let thirty_three: Vec<String> = (0..33).map(|i| format!("k{i}=v")).collect();
        assert!(parse_tracestate(&thirty_three.join(",")).is_none());
        assert!(parse_tracestate("Upper=1").is_none());
        // A duplicate key keeps the first member.
        assert_eq!(parse_tracestate("a=1,a=2").unwrap().header(), "a=1");
        assert!(
            parse_tracestate("foo@=1,bar=2").is_some(),
            "level 2 keys may hold @"
        );
        assert!(parse_tracestate("@foo=1,bar=2").is_none());
        assert!(parse_tracestate(&format!("{}=1", "z".repeat(257))).is_none());
        assert!(parse_tracestate("a=").is_none());
        assert!(parse_tracestate("a=x,b").is_none());
        assert!(parse_tracestate("a=x=y").is_none());
    }

    #[test]
    fn extract_keeps_traceparent_when_tracestate_is_bad_and_round_trips() {
        let mut h = HeaderMap::new();
        h.insert(
            TRACEPARENT,
            HeaderValue::from_str(&format!("00-{TRACE}-{SPAN}-01")).unwrap(),
        );
        let many: Vec<String> = (0..40).map(|i| format!("k{i}=v")).collect();
        h.insert(TRACESTATE, HeaderValue::from_str(&many.join(",")).unwrap());
        h.insert(
            BAGGAGE,
            HeaderValue::from_static("correlation_id=abc,user=42"),
        );
        let cx = extract(&h, &Context::new());
        let span = cx.span();
        let sc = span.span_context();
        assert_eq!(sc.trace_id().to_string(), TRACE);
        assert_eq!(sc.trace_state().header(), "");
        assert_eq!(
            cx.baggage().get("correlation_id").map(|v| v.to_string()),
            Some("abc".into())
        );
        let mut out = HeaderMap::new();
        inject(&cx, &mut out);
        assert_eq!(out[TRACEPARENT], format!("00-{TRACE}-{SPAN}-01").as_str());
        assert!(
            out[BAGGAGE]
                .to_str()
                .unwrap()
                .contains("correlation_id=abc")
        );
    }

    #[test]
    fn two_traceparents_restart_the_trace() {
        let mut h = HeaderMap::new();
        h.append(
            TRACEPARENT,
            HeaderValue::from_str(&format!("00-{TRACE}-{SPAN}-01")).unwrap(),
        );
        h.append(
            TRACEPARENT,
            HeaderValue::from_str(&format!("00-{TRACE}-{SPAN}-00")).unwrap(),
        );
        assert!(
            !extract(&h, &Context::new())
                .span()
                .span_context()
                .is_valid()
        );
    }
}

//! Span records: what a finished span looks like on disk and in memory.
//!
//! One [`SpanRecord`] is one line of `traces.jsonl`:
//!
//! ```json
//! {"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7",
//!  "parent_span_id":null,"name":"rag.request","kind":"server",
//!  "start_unix_nanos":1700000000000000000,"end_unix_nanos":1700000000250000000,
//!  "duration_nanos":250000000,"attributes":{"flightdeck.request.operation":"answer"},
//!  "events":[],"status":{"code":"ok"},"correlation_id":"req-1","service_name":"rag-service"}
//! ```

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{CorrelationId, SpanId, TraceId};

/// A finished span.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpanRecord {
    /// The trace this span belongs to.
    pub trace_id: TraceId,
    /// This span's id.
    pub span_id: SpanId,
    /// The parent span's id; `None` for a trace's root.
    pub parent_span_id: Option<SpanId>,
    /// Whether the parent lives in another process (this span continues a
    /// trace from an inbound `traceparent`): the span is this service's
    /// local root, and its parent is not in this service's records.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub parent_is_remote: bool,
    /// The span name (a `names::span` constant for pipeline stages).
    pub name: Cow<'static, str>,
    /// The span kind.
    pub kind: SpanKind,
    /// Start time, nanoseconds since the Unix epoch.
    pub start_unix_nanos: u64,
    /// End time, nanoseconds since the Unix epoch.
    pub end_unix_nanos: u64,
    /// `end - start` in nanoseconds.
    pub duration_nanos: u64,
    /// The span's fields, in the order they were first recorded.
    pub attributes: Attributes,
    /// Events (log lines) emitted inside the span, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<SpanEvent>,
    /// Events not kept because the span hit its event limit.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dropped_events: u32,
    /// Whether the operation succeeded.
    pub status: SpanStatus,
    /// The request's correlation id, when there is one.
    pub correlation_id: Option<CorrelationId>,
    /// The service that produced the span.
    pub service_name: Arc<str>,
    /// The W3C `tracestate` of the trace this span continues (the caller's,
    /// from [`attr::FLIGHTDECK_TRACESTATE`](crate::names::attr::FLIGHTDECK_TRACESTATE)),
    /// shared by every span of the trace in this service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_state: Option<Arc<str>>,
}

/// The longest `tracestate` kept: 32 members of a 256-byte key, `=` and a
/// 256-byte value, with 31 commas between them (W3C Trace Context §3.3).
pub const MAX_TRACESTATE_LEN: usize = 32 * (256 + 1 + 256) + 31;

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl SpanRecord {
    /// Looks up an attribute by name.
    pub fn attribute(&self, key: &str) -> Option<&AttrValue> {
        self.attributes.get(key)
    }

    /// The duration in milliseconds, as a float.
    pub fn duration_ms(&self) -> f64 {
        self.duration_nanos as f64 / 1e6
    }
}

/// The role of a span in a distributed trace, as in OpenTelemetry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpanKind {
    /// Work inside the service (the default).
    #[default]
    Internal,
    /// Handling an inbound request.
    Server,
    /// Making an outbound request.
    Client,
    /// Sending a message to a queue.
    Producer,
    /// Receiving a message from a queue.
    Consumer,
}

impl SpanKind {
    /// Every kind, in declaration order.
    pub const ALL: [Self; 5] = [
        Self::Internal,
        Self::Server,
        Self::Client,
        Self::Producer,
        Self::Consumer,
    ];

    /// The lowercase name, as the span record's JSON writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Internal => "internal",
            Self::Server => "server",
            Self::Client => "client",
            Self::Producer => "producer",
            Self::Consumer => "consumer",
        }
    }

    /// Parses the `otel.kind` field's values, case-insensitively.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(s))
    }
}

/// Whether a span succeeded.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum SpanStatus {
    /// It succeeded (the default unless something marked it failed).
    #[default]
    Ok,
    /// It failed. Set by `otel.status_code = "ERROR"` or an `ERROR`-level event.
    Error {
        /// What went wrong.
        message: String,
    },
}

impl SpanStatus {
    /// Whether this is an error status.
    pub fn is_error(&self) -> bool {
        matches!(self, Self::Error { .. })
    }
}

/// An event (log line) recorded inside a span.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpanEvent {
    /// The event's message.
    pub name: String,
    /// When it happened, nanoseconds since the Unix epoch.
    pub time_unix_nanos: u64,
    /// The `tracing` level, e.g. `INFO`.
    pub level: Cow<'static, str>,
    /// The event's other fields.
    #[serde(default, skip_serializing_if = "Attributes::is_empty")]
    pub attributes: Attributes,
}

/// An attribute value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AttrValue {
    /// A boolean.
    Bool(bool),
    /// A signed integer.
    I64(i64),
    /// An unsigned integer too large for `i64`.
    U64(u64),
    /// A float.
    F64(f64),
    /// A string (also `Debug`-formatted values).
    Str(String),
}

impl AttrValue {
    /// The value as `i64`, when it is an integer that fits.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Self::I64(v) => Some(*v),
            Self::U64(v) => i64::try_from(*v).ok(),
            _ => None,
        }
    }

    /// The value as `f64`, when it is numeric.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Self::I64(v) => Some(*v as f64),
            Self::U64(v) => Some(*v as f64),
            Self::F64(v) => Some(*v),
            _ => None,
        }
    }

    /// The value as a string slice, when it is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::Str(s) => Some(s),
            _ => None,
        }
    }
}

impl fmt::Display for AttrValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bool(v) => write!(f, "{v}"),
            Self::I64(v) => write!(f, "{v}"),
            Self::U64(v) => write!(f, "{v}"),
            Self::F64(v) => write!(f, "{v}"),
            Self::Str(v) => write!(f, "{v:?}"),
        }
    }
}

/// Ordered attributes; serialized as a JSON object in insertion order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Attributes(Vec<(Cow<'static, str>, AttrValue)>);

impl Attributes {
    /// An empty set.
    pub fn new() -> Self {
        Self(Vec::new())
    }

    /// An empty set with room for `n` attributes.
    pub fn with_capacity(n: usize) -> Self {
        Self(Vec::with_capacity(n))
    }

    /// Sets `key`, replacing an earlier value of the same key.
    pub fn set(&mut self, key: impl Into<Cow<'static, str>>, value: AttrValue) {
        let key = key.into();
        if let Some(slot) = self.0.iter_mut().find(|(k, _)| *k == key) {
            slot.1 = value;
        } else {
            self.0.push((key, value));
        }
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&AttrValue> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The entries in insertion order, keys as stored (a borrowed
    /// `'static` key stays borrowed when an exporter copies it).
    pub fn entries(&self) -> &[(Cow<'static, str>, AttrValue)] {
        &self.0
    }

    /// Iterates in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &AttrValue)> {
        self.0.iter().map(|(k, v)| (k.as_ref(), v))
    }

    /// Number of attributes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The attributes by value, in insertion order (for exporters that convert
/// them without copying the strings).
impl IntoIterator for Attributes {
    type Item = (Cow<'static, str>, AttrValue);
    type IntoIter = std::vec::IntoIter<(Cow<'static, str>, AttrValue)>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl Serialize for Attributes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Attributes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AttrVisitor;
        impl<'de> Visitor<'de> for AttrVisitor {
            type Value = Attributes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of attribute names to values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Attributes, A::Error> {
                let mut out = Attributes::with_capacity(access.size_hint().unwrap_or(0));
                while let Some((k, v)) = access.next_entry::<String, AttrValue>()? {
                    out.set(k, v);
                }
                Ok(out)
            }
        }
        deserializer.deserialize_map(AttrVisitor)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample() -> SpanRecord {
        let mut attributes = Attributes::new();
        attributes.set("gen_ai.request.model", AttrValue::Str("m".into()));
        attributes.set("gen_ai.usage.input_tokens", AttrValue::I64(12));
        attributes.set("score", AttrValue::F64(0.5));
        attributes.set("ok", AttrValue::Bool(true));
        SpanRecord {
            trace_id: TraceId::from_u128(1).unwrap(),
            span_id: SpanId::from_u64(2).unwrap(),
            parent_span_id: None,
            parent_is_remote: false,
            name: "rag.generate".into(),
            kind: SpanKind::Client,
            start_unix_nanos: 10,
            end_unix_nanos: 30,
            duration_nanos: 20,
            attributes,
            events: vec![],
            dropped_events: 0,
            status: SpanStatus::Error {
                message: "timeout".into(),
            },
            correlation_id: Some(CorrelationId::new("c-1").unwrap()),
            service_name: Arc::from("svc"),
            trace_state: None,
        }
    }

    #[test]
    fn record_round_trips_through_json_in_attribute_order() {
        let r = sample();
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains(
            r#""attributes":{"gen_ai.request.model":"m","gen_ai.usage.input_tokens":12,"score":0.5,"ok":true}"#
        ), "{json}");
        assert!(json.contains(r#""status":{"code":"error","message":"timeout"}"#));
        assert!(json.contains(r#""parent_span_id":null"#));
        let back: SpanRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn setting_a_key_twice_replaces_it() {
        let mut a = Attributes::new();
        a.set("k", AttrValue::I64(1));
        a.set("k", AttrValue::I64(2));
        assert_eq!(a.len(), 1);
        assert_eq!(a.get("k"), Some(&AttrValue::I64(2)));
    }

    #[test]
    fn span_kind_parses_case_insensitively() {
        assert_eq!(SpanKind::parse("SERVER"), Some(SpanKind::Server));
        assert_eq!(SpanKind::parse("bogus"), None);
        for kind in SpanKind::ALL {
            assert_eq!(SpanKind::parse(kind.as_str()), Some(kind));
            // The serde name is the same word.
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                serde_json::Value::from(kind.as_str())
            );
        }
    }
}

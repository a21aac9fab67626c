//! Where traces come from: our `traces.jsonl` span records (streamed, one
//! trace at a time), an in-process [`InMemoryExporter`], and OTLP JSON as a
//! collector's file exporter writes it.

use std::collections::{HashMap, HashSet};
use std::io::BufRead;

use flightdeck_obs_core::locate::{MAX_NESTING, check_nesting, shown};
use flightdeck_obs_core::{InMemoryExporter, SpanKind, SpanRecord, SpanStatus};
use serde_json::Value;

use crate::error::GoldenError;
use crate::tree::{Attrs, Event, RawSpan, RawTrace};

/// The longest `traces.jsonl` line read (a span with huge attributes);
/// longer lines are an error rather than unbounded memory.
pub const MAX_LINE_BYTES: usize = 16 << 20;

#[derive(Debug, Default)]
struct Pending {
    spans: Vec<RawSpan>,
    ids: HashSet<u64>,
    /// Parent ids referenced but not seen yet, with how many spans wait.
    waiting: HashMap<u64, u32>,
    root_seen: bool,
}

/// Streams the traces of a `traces.jsonl` file (one [`SpanRecord`] per
/// line, traces interleaved as their spans closed).
///
/// A trace is handed out as soon as its root has arrived and every parent
/// its spans name is present, so memory holds the traces still open, not
/// the file. Spans that arrive after their trace was handed out are
/// counted in [`late_spans`](Self::late_spans); traces still open at the
/// end are handed out last (a missing parent then shows as an orphan).
#[derive(Debug)]
pub struct TraceReader<R> {
    input: R,
    file: String,
    line_no: usize,
    buf: Vec<u8>,
    pending: HashMap<u128, Pending>,
    order: Vec<u128>,
    finished: HashSet<u128>,
    late: usize,
    spans: usize,
    done: bool,
    bytes: u64,
}

impl<R: BufRead> TraceReader<R> {
    /// Reads `input`; `file` names it in errors.
    pub fn new(input: R, file: impl Into<String>) -> Self {
        Self {
            input,
            file: file.into(),
            line_no: 0,
            buf: Vec::new(),
            pending: HashMap::new(),
            order: Vec::new(),
            finished: HashSet::new(),
            late: 0,
            spans: 0,
            done: false,
            bytes: 0,
        }
    }

    /// Spans that arrived after their trace had been handed out (not
    /// compared; a sign the service ends spans after their root).
    pub fn late_spans(&self) -> usize {
        self.late
    }

    /// Span lines read so far.
    pub fn spans_read(&self) -> usize {
        self.spans
    }

    /// Bytes read so far (for progress bars).
    pub fn bytes_read(&self) -> u64 {
        self.bytes
    }

    fn read_line(&mut self) -> Result<bool, GoldenError> {
        self.buf.clear();
        let mut limited = std::io::Read::take(&mut self.input, MAX_LINE_BYTES as u64 + 1);
        let n = limited
            .read_until(b'\n', &mut self.buf)
            .map_err(|e| GoldenError::io(&self.file, e))?;
        self.bytes += n as u64;
        if n == 0 {
            return Ok(false);
        }
        self.line_no += 1;
        if self.buf.len() > MAX_LINE_BYTES {
            return Err(GoldenError::Parse {
                file: self.file.clone(),
                line: self.line_no,
                column: 1,
                message: format!("the line is longer than {MAX_LINE_BYTES} bytes"),
            });
        }
        Ok(true)
    }

    fn next_span(&mut self) -> Result<Option<(u128, RawSpan)>, GoldenError> {
        loop {
            if !self.read_line()? {
                return Ok(None);
            }
            let text = match std::str::from_utf8(&self.buf) {
                Ok(t) => t.trim(),
                Err(e) => {
                    return Err(GoldenError::Parse {
                        file: self.file.clone(),
                        line: self.line_no,
                        column: e.valid_up_to() + 1,
                        message: "not UTF-8".into(),
                    });
                }
            };
            if text.is_empty() {
                continue;
            }
            let record: SpanRecord = serde_json::from_str(text)
                .map_err(|e| GoldenError::parse_json(&self.file, self.line_no - 1, &e))?;
            self.spans += 1;
            return Ok(Some((
                record.trace_id.to_u128(),
                RawSpan::from_record(&record),
            )));
        }
    }

    fn take(&mut self, trace: u128) -> Option<RawTrace> {
        let p = self.pending.remove(&trace)?;
        self.finished.insert(trace);
        Some(RawTrace {
            trace_id: format!("{trace:032x}"),
            spans: p.spans,
        })
    }
}

impl<R: BufRead> Iterator for TraceReader<R> {
    type Item = Result<RawTrace, GoldenError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            let (trace, span) = match self.next_span() {
                Ok(Some(s)) => s,
                Ok(None) => {
                    self.done = true;
                    break;
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            };
            if self.finished.contains(&trace) {
                self.late += 1;
                continue;
            }
            let p = self.pending.entry(trace).or_insert_with(|| {
                self.order.push(trace);
                Pending::default()
            });
            if let Some(parent) = span.parent_span_id.filter(|_| !span.parent_is_remote) {
                if !p.ids.contains(&parent) {
                    *p.waiting.entry(parent).or_insert(0) += 1;
                }
            } else {
                p.root_seen = true;
            }
            p.waiting.remove(&span.span_id);
            p.ids.insert(span.span_id);
            p.spans.push(span);
            if p.root_seen && p.waiting.is_empty() {
                return self.take(trace).map(Ok);
            }
        }
        // End of input: the traces still open, oldest first.
        while let Some(&trace) = self.order.first() {
            self.order.remove(0);
            if let Some(t) = self.take(trace) {
                return Some(Ok(t));
            }
        }
        None
    }
}

/// Groups span records into traces, in order of each trace's first span.
pub fn traces_from_records(records: &[SpanRecord]) -> Vec<RawTrace> {
    let mut index: HashMap<u128, usize> = HashMap::new();
    let mut out: Vec<RawTrace> = Vec::new();
    for r in records {
        let id = r.trace_id.to_u128();
        let at = *index.entry(id).or_insert_with(|| {
            out.push(RawTrace {
                trace_id: format!("{id:032x}"),
                spans: Vec::new(),
            });
            out.len() - 1
        });
        out[at].spans.push(RawSpan::from_record(r));
    }
    out
}

/// Takes the spans an [`InMemoryExporter`] holds and keeps a share of the
/// traces: `sample_rate` 1.0 keeps all, 0.1 about one in ten. The choice
/// depends only on the trace id, so every span of a kept trace is kept.
///
/// # Panics
///
/// Never; a rate outside 0 to 1 is clamped.
pub fn capture(exporter: &InMemoryExporter, sample_rate: f64) -> Vec<RawTrace> {
    let rate = if sample_rate.is_nan() {
        0.0
    } else {
        sample_rate.clamp(0.0, 1.0)
    };
    let records = exporter.take();
    let mut traces = traces_from_records(&records);
    traces.retain(|t| sampled(&t.trace_id, rate));
    traces
}

/// Whether a trace is in a `rate` sample (0 to 1, clamped): decided by its
/// id alone (the low 64 bits), so every span of a kept trace is kept, and
/// every process sampling the same rate keeps the same traces.
pub fn sampled(trace_id: &str, rate: f64) -> bool {
    if rate.is_nan() || rate <= 0.0 {
        return false;
    }
    let low = u128::from_str_radix(trace_id, 16).unwrap_or(0) as u64;
    rate >= 1.0 || (low as f64 / u64::MAX as f64) < rate
}

/// Whether `text` looks like OTLP JSON (a collector's file exporter output)
/// rather than our span records.
pub fn looks_like_otlp(text: &str) -> bool {
    let mut end = text.len().min(4096);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].contains("\"resourceSpans\"")
}

/// Reads OTLP JSON: one `ExportTraceServiceRequest` object, or one per line
/// as the collector's file exporter writes them. Spans are grouped by trace
/// in order of first appearance, whatever order the file lists them in.
///
/// # Errors
///
/// [`GoldenError::Parse`] with `file:line:column` for text that is not
/// JSON, [`GoldenError::Invalid`] naming the field (e.g.
/// `resourceSpans[0].scopeSpans[0].spans[2].spanId`) for a bad value.
pub fn read_otlp(text: &str, file: &str) -> Result<Vec<RawTrace>, GoldenError> {
    if let Err(e) = check_nesting(text, MAX_NESTING) {
        return Err(GoldenError::Parse {
            file: file.to_owned(),
            line: e.line,
            column: e.column,
            message: format!("nested deeper than {} levels", e.limit),
        });
    }
    let mut docs = Vec::new();
    match serde_json::from_str::<Value>(text) {
        Ok(v) => docs.push((0, v)),
        Err(whole) => {
            // JSON lines: one request per line.
            let mut any = false;
            for (i, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                any = true;
                let v = serde_json::from_str::<Value>(line)
                    .map_err(|e| GoldenError::parse_json(file, i, &e))?;
                docs.push((i + 1, v));
            }
            if !any {
                return Err(GoldenError::parse_json(file, 0, &whole));
            }
        }
    }
    let mut out = Traces::default();
    for (line, doc) in &docs {
        let at = if docs.len() > 1 {
            format!("{file}:{line}")
        } else {
            file.to_owned()
        };
        otlp_document(doc, &at, &mut out)?;
    }
    Ok(out.traces)
}

/// Reads an OTLP document already parsed (e.g. from YAML).
///
/// # Errors
///
/// As [`read_otlp`].
pub fn read_otlp_value(doc: &Value, file: &str) -> Result<Vec<RawTrace>, GoldenError> {
    let mut out = Traces::default();
    otlp_document(doc, file, &mut out)?;
    Ok(out.traces)
}

#[derive(Default)]
struct Traces {
    index: HashMap<String, usize>,
    traces: Vec<RawTrace>,
}

fn invalid(file: &str, field: &str, message: String) -> GoldenError {
    GoldenError::Invalid {
        file: file.to_owned(),
        field: field.to_owned(),
        message,
    }
}

fn array<'a>(v: &'a Value, key: &str, file: &str, field: &str) -> Result<&'a [Value], GoldenError> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(other) => Err(invalid(
            file,
            &format!("{field}.{key}"),
            format!("expected a list, found {}", kind_of(other)),
        )),
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn otlp_document(doc: &Value, file: &str, out: &mut Traces) -> Result<(), GoldenError> {
    if !doc.is_object() {
        return Err(invalid(
            file,
            "(top)",
            format!("expected an object, found {}", kind_of(doc)),
        ));
    }
    for (r, rs) in array(doc, "resourceSpans", file, "")?.iter().enumerate() {
        let rf = format!("resourceSpans[{r}]");
        for (s, ss) in array(rs, "scopeSpans", file, &rf)?.iter().enumerate() {
            let sf = format!("{rf}.scopeSpans[{s}]");
            for (k, span) in array(ss, "spans", file, &sf)?.iter().enumerate() {
                let field = format!("{sf}.spans[{k}]");
                let (trace_id, raw) = otlp_span(span, file, &field)?;
                let at = *out.index.entry(trace_id.clone()).or_insert_with(|| {
                    out.traces.push(RawTrace {
                        trace_id,
                        spans: Vec::new(),
                    });
                    out.traces.len() - 1
                });
                out.traces[at].spans.push(raw);
            }
        }
    }
    Ok(())
}

fn str_field<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn hex_id(s: &str, digits: usize) -> Option<u128> {
    (s.len() == digits && s.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| u128::from_str_radix(s, 16).ok())
        .flatten()
}

/// A nanosecond time: OTLP JSON writes 64-bit integers as strings.
fn nanos(v: Option<&Value>) -> Option<u64> {
    match v? {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

static SYNTHETIC: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// OTLP span flags: bit 8 says whether bit 9 (the parent is remote) is known.
const FLAGS_HAS_IS_REMOTE: u64 = 0x100;
const FLAGS_IS_REMOTE: u64 = 0x200;

fn otlp_span(span: &Value, file: &str, field: &str) -> Result<(String, RawSpan), GoldenError> {
    let bad = |key: &str, message: String| invalid(file, &format!("{field}.{key}"), message);
    let trace = str_field(span, "traceId").unwrap_or("");
    let trace_id = hex_id(trace, 32).filter(|&t| t != 0).ok_or_else(|| {
        bad(
            "traceId",
            format!("{} is not a 32-digit hex trace id", shown(trace)),
        )
    })?;
    let id = str_field(span, "spanId").unwrap_or("");
    let span_id = if id.is_empty() {
        // No id (ptracetest's fixtures drop them): a span nothing can name
        // as its parent; ids are never compared.
        u64::MAX - u64::from(SYNTHETIC.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
    } else {
        hex_id(id, 16).filter(|&s| s != 0).ok_or_else(|| {
            bad(
                "spanId",
                format!("{} is not a 16-digit hex span id", shown(id)),
            )
        })? as u64
    };
    let parent = str_field(span, "parentSpanId").unwrap_or("");
    let parent_span_id = if parent.is_empty() {
        None
    } else {
        Some(hex_id(parent, 16).ok_or_else(|| {
            bad(
                "parentSpanId",
                format!("{} is not a 16-digit hex span id", shown(parent)),
            )
        })? as u64)
    };
    let name = str_field(span, "name").unwrap_or("").to_owned();
    let kind = match span.get("kind") {
        None | Some(Value::Null) => SpanKind::Internal,
        Some(Value::Number(n)) => match n.as_u64() {
            Some(0 | 1) => SpanKind::Internal,
            Some(2) => SpanKind::Server,
            Some(3) => SpanKind::Client,
            Some(4) => SpanKind::Producer,
            Some(5) => SpanKind::Consumer,
            _ => return Err(bad("kind", format!("{n} is not a span kind (0 to 5)"))),
        },
        Some(Value::String(s)) => SpanKind::parse(s.strip_prefix("SPAN_KIND_").unwrap_or(s))
            .or_else(|| (s == "SPAN_KIND_UNSPECIFIED").then_some(SpanKind::Internal))
            .ok_or_else(|| bad("kind", format!("{} is not a span kind", shown(s))))?,
        Some(other) => {
            return Err(bad(
                "kind",
                format!("expected a number, found {}", kind_of(other)),
            ));
        }
    };
    let start = nanos(span.get("startTimeUnixNano")).unwrap_or(0);
    let end = nanos(span.get("endTimeUnixNano")).unwrap_or(start);
    let status = match span.get("status") {
        None | Some(Value::Null) => SpanStatus::Ok,
        Some(s) => {
            let code = s.get("code");
            let error = match code {
                None | Some(Value::Null) => false,
                Some(Value::Number(n)) => n.as_u64() == Some(2),
                Some(Value::String(c)) => {
                    c == "STATUS_CODE_ERROR" || c.eq_ignore_ascii_case("error")
                }
                Some(other) => {
                    return Err(bad(
                        "status.code",
                        format!("expected a number, found {}", kind_of(other)),
                    ));
                }
            };
            if error {
                SpanStatus::Error {
                    message: str_field(s, "message").unwrap_or("").to_owned(),
                }
            } else {
                SpanStatus::Ok
            }
        }
    };
    let attributes = key_values(
        array(span, "attributes", file, field)?,
        file,
        &format!("{field}.attributes"),
    )?;
    let mut events = Vec::new();
    for (e, ev) in array(span, "events", file, field)?.iter().enumerate() {
        let ef = format!("{field}.events[{e}]");
        events.push(Event {
            name: str_field(ev, "name").unwrap_or("").to_owned(),
            attributes: key_values(
                array(ev, "attributes", file, &ef)?,
                file,
                &format!("{ef}.attributes"),
            )?,
        });
    }
    Ok((
        format!("{trace_id:032x}"),
        RawSpan {
            span_id,
            parent_span_id,
            parent_is_remote: span
                .get("flags")
                .and_then(Value::as_u64)
                .is_some_and(|f| f & FLAGS_HAS_IS_REMOTE != 0 && f & FLAGS_IS_REMOTE != 0),
            name,
            kind,
            start_unix_nanos: start,
            end_unix_nanos: end.max(start),
            correlation_id: attributes
                .get("correlation_id")
                .and_then(Value::as_str)
                .map(str::to_owned),
            attributes,
            events,
            status,
        },
    ))
}

fn key_values(list: &[Value], file: &str, field: &str) -> Result<Attrs, GoldenError> {
    let mut out = Attrs::new();
    for (i, kv) in list.iter().enumerate() {
        let Some(key) = str_field(kv, "key") else {
            return Err(invalid(
                file,
                &format!("{field}[{i}].key"),
                "missing or not a string".into(),
            ));
        };
        let value = any_value(kv.get("value").unwrap_or(&Value::Null))
            .map_err(|m| invalid(file, &format!("{field}[{i}].value"), m))?;
        out.insert(key.to_owned(), value);
    }
    Ok(out)
}

/// An OTLP `AnyValue` as plain JSON. The input is already bounded in depth
/// (parsed by serde_json, which stops at 128 levels).
fn any_value(v: &Value) -> Result<Value, String> {
    let Some(obj) = v.as_object() else {
        return Ok(Value::Null);
    };
    let Some((k, inner)) = obj.iter().next() else {
        return Ok(Value::Null);
    };
    Ok(match (k.as_str(), inner) {
        ("stringValue", Value::String(s)) => Value::String(s.clone()),
        ("boolValue", Value::Bool(b)) => Value::Bool(*b),
        ("intValue", Value::String(s)) => Value::from(
            s.parse::<i64>()
                .map_err(|_| format!("intValue {} is not a 64-bit integer", shown(s)))?,
        ),
        ("intValue", Value::Number(n)) if n.is_i64() || n.is_u64() => Value::Number(n.clone()),
        ("doubleValue", Value::Number(n)) => Value::Number(n.clone()),
        ("doubleValue", Value::String(s)) => Value::String(s.clone()), // "NaN", "Infinity"
        ("bytesValue", Value::String(s)) => Value::String(s.clone()),
        ("arrayValue", a) => Value::Array(
            a.get("values")
                .and_then(Value::as_array)
                .map(|vals| vals.iter().map(any_value).collect::<Result<Vec<_>, _>>())
                .transpose()?
                .unwrap_or_default(),
        ),
        ("kvlistValue", kv) => {
            let mut m = Attrs::new();
            for item in kv
                .get("values")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(key) = str_field(item, "key") {
                    m.insert(
                        key.to_owned(),
                        any_value(item.get("value").unwrap_or(&Value::Null))?,
                    );
                }
            }
            Value::Object(m)
        }
        (other, _) => return Err(format!("{} is not an OTLP value type", shown(other))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = r#"{"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7","parent_span_id":null,"name":"rag.request","kind":"server","start_unix_nanos":1,"end_unix_nanos":5,"duration_nanos":4,"attributes":{},"status":{"code":"ok"},"correlation_id":"req-1","service_name":"s"}"#;

    fn child(trace: &str, id: &str, parent: &str) -> String {
        format!(
            r#"{{"trace_id":"{trace}","span_id":"{id}","parent_span_id":"{parent}","name":"c","kind":"internal","start_unix_nanos":2,"end_unix_nanos":3,"duration_nanos":1,"attributes":{{}},"status":{{"code":"ok"}},"correlation_id":"req-1","service_name":"s"}}"#
        )
    }

    #[test]
    fn traces_stream_out_as_their_roots_close() {
        let other = "0000000000000000000000000000000a";
        let text = format!(
            "{}\n{}\n\n{LINE}\n{}\n",
            child(
                "4bf92f3577b34da6a3ce929d0e0e4736",
                "0000000000000002",
                "00f067aa0ba902b7"
            ),
            child(other, "0000000000000003", "0000000000000009"),
            child(
                "4bf92f3577b34da6a3ce929d0e0e4736",
                "0000000000000004",
                "00f067aa0ba902b7"
            ),
        );
        let mut r = TraceReader::new(text.as_bytes(), "t.jsonl");
        let first = r.next().unwrap().unwrap();
        assert_eq!(first.spans.len(), 2);
        // The late child of the finished trace is counted, and the orphan
        // trace comes out at the end.
        let second = r.next().unwrap().unwrap();
        assert_eq!(second.trace_id, other);
        assert!(r.next().is_none());
        assert_eq!(r.late_spans(), 1);
    }

    #[test]
    fn bad_lines_name_file_and_line() {
        let text = format!("{LINE}\n{{\"trace_id\": 5}}\n");
        let mut r = TraceReader::new(text.as_bytes(), "t.jsonl");
        assert!(r.next().unwrap().is_ok());
        let err = r.next().unwrap().unwrap_err().to_string();
        assert!(err.starts_with("t.jsonl:2:"), "{err}");
        assert!(r.next().is_none());
    }

    #[test]
    fn otlp_values_become_plain_json() {
        let doc = serde_json::json!({"resourceSpans": [{"scopeSpans": [{"spans": [{
        "traceId": "9b458af7378cba65253d7042d34fc72e", "spanId": "cd7cf7bf939930b7",
        "name": "n", "kind": "SPAN_KIND_CLIENT",
        "startTimeUnixNano": "10", "endTimeUnixNano": "30",
        "status": {"code": 2, "message": "boom"},
        "attributes": [
            {"key": "i", "value": {"intValue": "100"}},
            {"key": "a", "value": {"arrayValue": {"values": [{"stringValue": "x"}, {"boolValue": true}]}}},
            {"key": "m", "value": {"kvlistValue": {"values": [{"key": "k", "value": {"doubleValue": 0.5}}]}}}
        ]}]}]}]});
        let t = read_otlp_value(&doc, "f.json").unwrap();
        let s = &t[0].spans[0];
        assert_eq!(s.kind, SpanKind::Client);
        assert_eq!(s.attributes["i"], 100);
        assert_eq!(s.attributes["a"], serde_json::json!(["x", true]));
        assert_eq!(s.attributes["m"], serde_json::json!({"k": 0.5}));
        assert!(s.status.is_error());
        let bad = serde_json::json!({"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]});
        let err = read_otlp_value(&bad, "f.json").unwrap_err().to_string();
        assert_eq!(
            err,
            r#"f.json: resourceSpans[0].scopeSpans[0].spans[0].traceId: "zz" is not a 32-digit hex trace id"#
        );
    }
}

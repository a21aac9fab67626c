//! JSON written by hand where serde's general path measured slow: strings
//! escaped eight bytes at a time, and span records encoded field by field.
//!
//! A span record's line through `serde_json::to_writer` cost about 18,000
//! instructions in the service's overhead bench (one record of 14 fields and
//! two events per request, callgrind), a fifth of the request's
//! instrumentation; [`write_record`] writes the same JSON with a fraction of
//! that. The output reads back with serde into an equal record (tested
//! below over generated records); bytes differ from serde's only for
//! control characters and DEL (`\u0008` here for serde's `\b`; DEL escaped
//! here, written raw there).

use crate::record::{AttrValue, Attributes, SpanEvent, SpanRecord, SpanStatus};

/// Writes `s` as a JSON string, quotes included.
pub(crate) fn write_json_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    escape_into(out, s);
    out.push(b'"');
}

pub(crate) fn escape_into(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    let mut start = 0;
    while start < bytes.len() {
        let i = start + first_to_escape(&bytes[start..]);
        out.extend_from_slice(&bytes[start..i]);
        let Some(&b) = bytes.get(i) else { break };
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => {
                out.extend_from_slice(b"\\u00");
                out.extend_from_slice(&crate::ids::hex_byte(b));
            }
        }
        start = i + 1;
    }
}

/// Whether JSON output escapes this byte: a quote, a backslash, a control or DEL.
fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\' || b == 0x7f
}

/// The index of the first byte to escape, or `bytes.len()`.
///
/// Eight bytes at a time: log values are mostly long runs that need no
/// escaping, and a byte-by-byte scan was a tenth of a request's
/// instructions in the service's overhead bench (callgrind). Each test
/// below sets the high bit of a byte that matches; a borrow can also flag
/// bytes after a true match, never before one, so the lowest flag is exact.
fn first_to_escape(bytes: &[u8]) -> usize {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    let zero_byte = |w: u64| w.wrapping_sub(ONES) & !w & HIGHS;
    let mut chunks = bytes.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut chunks {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        let found = (w.wrapping_sub(ONES * 0x20) & !w & HIGHS)
            | zero_byte(w ^ (ONES * u64::from(b'"')))
            | zero_byte(w ^ (ONES * u64::from(b'\\')))
            | zero_byte(w ^ (ONES * 0x7f));
        if found != 0 {
            return at + (found.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    at + chunks
        .remainder()
        .iter()
        .position(|&b| needs_escape(b))
        .unwrap_or(chunks.remainder().len())
}

/// Appends an integer in decimal.
pub(crate) fn write_int(out: &mut Vec<u8>, v: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// Appends `v` as serde_json writes an `f64`: the shortest round-trip
/// form, `null` when not finite.
fn write_f64(out: &mut Vec<u8>, v: f64) {
    if v.is_finite() {
        let _ = serde_json::to_writer(&mut *out, &v);
    } else {
        out.extend_from_slice(b"null");
    }
}

/// Appends one attribute value.
fn write_value(out: &mut Vec<u8>, v: &AttrValue) {
    match v {
        AttrValue::Bool(true) => out.extend_from_slice(b"true"),
        AttrValue::Bool(false) => out.extend_from_slice(b"false"),
        AttrValue::I64(i) => write_int(out, *i),
        AttrValue::U64(u) => write_int(out, *u),
        AttrValue::F64(f) => write_f64(out, *f),
        AttrValue::Str(s) => write_json_str(out, s),
    }
}

/// Appends attributes as a JSON object, in insertion order.
fn write_attributes(out: &mut Vec<u8>, attributes: &Attributes) {
    out.push(b'{');
    for (i, (k, v)) in attributes.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_json_str(out, k);
        out.push(b':');
        write_value(out, v);
    }
    out.push(b'}');
}

fn write_event(out: &mut Vec<u8>, e: &SpanEvent) {
    out.extend_from_slice(b"{\"name\":");
    write_json_str(out, &e.name);
    out.extend_from_slice(b",\"time_unix_nanos\":");
    write_int(out, e.time_unix_nanos);
    out.extend_from_slice(b",\"level\":");
    write_json_str(out, &e.level);
    if !e.attributes.is_empty() {
        out.extend_from_slice(b",\"attributes\":");
        write_attributes(out, &e.attributes);
    }
    out.push(b'}');
}

/// Appends `record` as one JSON object (no newline), with the fields, names
/// and order of its serde form.
pub(crate) fn write_record(out: &mut Vec<u8>, r: &SpanRecord) {
    out.extend_from_slice(b"{\"trace_id\":\"");
    out.extend_from_slice(&r.trace_id.hex_digits());
    out.extend_from_slice(b"\",\"span_id\":\"");
    out.extend_from_slice(&r.span_id.hex_digits());
    out.extend_from_slice(b"\",\"parent_span_id\":");
    match r.parent_span_id {
        Some(p) => {
            out.push(b'"');
            out.extend_from_slice(&p.hex_digits());
            out.push(b'"');
        }
        None => out.extend_from_slice(b"null"),
    }
    if r.parent_is_remote {
        out.extend_from_slice(b",\"parent_is_remote\":true");
    }
    out.extend_from_slice(b",\"name\":");
    write_json_str(out, &r.name);
    out.extend_from_slice(b",\"kind\":\"");
    out.extend_from_slice(r.kind.as_str().as_bytes());
    out.extend_from_slice(b"\",\"start_unix_nanos\":");
    write_int(out, r.start_unix_nanos);
    out.extend_from_slice(b",\"end_unix_nanos\":");
    write_int(out, r.end_unix_nanos);
    out.extend_from_slice(b",\"duration_nanos\":");
    write_int(out, r.duration_nanos);
    out.extend_from_slice(b",\"attributes\":");
    write_attributes(out, &r.attributes);
    if !r.events.is_empty() {
        out.extend_from_slice(b",\"events\":[");
        for (i, e) in r.events.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_event(out, e);
        }
        out.push(b']');
    }
    if r.dropped_events != 0 {
        out.extend_from_slice(b",\"dropped_events\":");
        write_int(out, u64::from(r.dropped_events));
    }
    match &r.status {
        SpanStatus::Ok => out.extend_from_slice(b",\"status\":{\"code\":\"ok\"}"),
        SpanStatus::Error { message } => {
            out.extend_from_slice(b",\"status\":{\"code\":\"error\",\"message\":");
            write_json_str(out, message);
            out.push(b'}');
        }
    }
    out.extend_from_slice(b",\"correlation_id\":");
    match &r.correlation_id {
        Some(c) => write_json_str(out, c.as_str()),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"service_name\":");
    write_json_str(out, &r.service_name);
    if let Some(ts) = &r.trace_state {
        out.extend_from_slice(b",\"trace_state\":");
        write_json_str(out, ts);
    }
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_handles_quotes_newlines_and_control_bytes() {
        let mut out = Vec::new();
        write_json_str(&mut out, "a\"b\\c\nd\u{1}e\u{7f}é");
        let s = String::from_utf8(out).unwrap();
        assert_eq!(s, "\"a\\\"b\\\\c\\nd\\u0001e\\u007fé\"");
        let back: String = serde_json::from_str(&s).unwrap();
        assert_eq!(back, "a\"b\\c\nd\u{1}e\u{7f}é");
    }

    #[test]
    fn the_word_scan_finds_the_first_byte_to_escape_at_every_position() {
        // Every ASCII byte and a multi-byte character's bytes, at every
        // position of a 19-byte run (two words and a remainder), after
        // bytes that must not be flagged: the scan agrees with the
        // byte-by-byte test, and the escaped text reads back.
        let fillers = ["a", "\u{e9}", "\u{20ac}", "~ "];
        for filler in fillers {
            for at in 0..19 {
                for b in (0u8..0x80).chain([0xc3]) {
                    let mut bytes: Vec<u8> = filler.bytes().cycle().take(at).collect();
                    bytes.push(b);
                    bytes.extend(filler.bytes().cycle().take(19 - at));
                    let want = bytes.iter().position(|&c| needs_escape(c));
                    assert_eq!(
                        first_to_escape(&bytes),
                        want.unwrap_or(bytes.len()),
                        "{bytes:?}"
                    );
                    if let Ok(text) = std::str::from_utf8(&bytes) {
                        let mut out = Vec::new();
                        write_json_str(&mut out, text);
                        let back: String = serde_json::from_slice(&out).unwrap();
                        assert_eq!(back, text);
                    }
                }
            }
        }
    }

    /// Records that cover every optional field, value type and status,
    /// with strings that need escaping.
    fn records() -> Vec<SpanRecord> {
        use crate::{CorrelationId, SpanId, SpanKind, TraceId};
        use std::sync::Arc;
        let strings = [
            "",
            "plain",
            "quote \" and \\ back",
            "tab\tnew\nline\r",
            "caf\u{e9} \u{1f680}",
        ];
        let values = |i: usize| -> Vec<AttrValue> {
            vec![
                AttrValue::Bool(i.is_multiple_of(2)),
                AttrValue::I64(i64::MIN + i as i64),
                AttrValue::I64(-7),
                AttrValue::U64(u64::MAX - i as u64),
                AttrValue::F64(0.5),
                AttrValue::F64(1.0),
                AttrValue::F64(-0.0),
                AttrValue::F64(1e300),
                AttrValue::F64(0.25 * i as f64 - 3.0),
                AttrValue::F64(1.0 / 3.0),
                AttrValue::Str(strings[i % strings.len()].to_owned()),
            ]
        };
        let kinds = [
            SpanKind::Internal,
            SpanKind::Server,
            SpanKind::Client,
            SpanKind::Producer,
            SpanKind::Consumer,
        ];
        (0..40)
            .map(|i| {
                let mut attributes = Attributes::new();
                for (j, v) in values(i).into_iter().enumerate().take(i % 12) {
                    attributes.set(format!("{}.{j}", strings[j % strings.len()]), v);
                }
                let events = (0..i % 3)
                    .map(|e| SpanEvent {
                        name: strings[(i + e) % strings.len()].to_owned(),
                        time_unix_nanos: 1_700_000_000_000_000_000 + e as u64,
                        level: if e == 0 {
                            "INFO".into()
                        } else {
                            "ERROR".into()
                        },
                        attributes: if e == 1 {
                            attributes.clone()
                        } else {
                            Attributes::new()
                        },
                    })
                    .collect();
                SpanRecord {
                    trace_id: TraceId::from_u128(u128::MAX - i as u128).unwrap(),
                    span_id: SpanId::from_u64(1 + i as u64).unwrap(),
                    parent_span_id: (i % 2 == 1).then(|| SpanId::from_u64(0xabc).unwrap()),
                    parent_is_remote: i % 4 == 1,
                    name: strings[i % strings.len()].to_owned().into(),
                    kind: kinds[i % kinds.len()],
                    start_unix_nanos: i as u64,
                    end_unix_nanos: u64::MAX - i as u64,
                    duration_nanos: 12_345 * i as u64,
                    attributes,
                    events,
                    dropped_events: if i % 5 == 0 { 0 } else { i as u32 * 1000 },
                    status: if i % 3 == 0 {
                        SpanStatus::Ok
                    } else {
                        SpanStatus::Error {
                            message: strings[i % strings.len()].to_owned(),
                        }
                    },
                    correlation_id: i
                        .is_multiple_of(2)
                        .then(|| CorrelationId::new("req-1").unwrap()),
                    service_name: Arc::from(strings[(i + 1) % strings.len()]),
                    trace_state: (i % 3 == 2).then(|| Arc::from("rojo=00f067aa0ba902b7")),
                }
            })
            .collect()
    }

    #[test]
    fn records_are_serdes_json_byte_for_byte_and_read_back_equal() {
        for r in records() {
            let mut ours = Vec::new();
            write_record(&mut ours, &r);
            let serde = serde_json::to_vec(&r).unwrap();
            assert_eq!(
                String::from_utf8_lossy(&ours),
                String::from_utf8_lossy(&serde)
            );
            let back: SpanRecord = serde_json::from_slice(&ours).unwrap();
            assert_eq!(back, r);
        }
    }

    #[test]
    fn control_characters_and_non_finite_floats_stay_valid_json() {
        let mut r = records().remove(3);
        r.name = "bell\u{7} form\u{c} back\u{8} del\u{7f} nul\u{0}".into();
        r.attributes.set("nan", AttrValue::F64(f64::NAN));
        r.attributes.set("inf", AttrValue::F64(f64::NEG_INFINITY));
        let mut ours = Vec::new();
        write_record(&mut ours, &r);
        let read: serde_json::Value = serde_json::from_slice(&ours).unwrap();
        assert_eq!(read["name"], r.name.as_ref());
        assert_eq!(read["attributes"]["nan"], serde_json::Value::Null);
        assert_eq!(read["attributes"]["inf"], serde_json::Value::Null);
        assert_eq!(read, serde_json::to_value(&r).unwrap(), "as serde reads it");
    }
}

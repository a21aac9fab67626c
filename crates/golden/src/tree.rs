//! The canonical tree of one trace: what a golden case stores and what
//! captures are compared as.
//!
//! Ids and absolute timestamps are dropped. Each span keeps its name, kind,
//! status, attributes, events, its duration and its *self time* (the part of
//! its duration not covered by its children), and gets a stable path such
//! as `rag.request/rag.retrieve/rag.retrieve.shard[1]`: span names joined by
//! `/`, children ordered by start time, and the second and later siblings
//! of the same name numbered `[1]`, `[2]`, … by start order (the first has
//! no number, so adding a sibling never renames it). A `/`, `[` or `\` in a
//! span name is escaped with `\`.
//!
//! The tree is built without recursion, so a trace of any shape costs no
//! stack; one deeper than [`MAX_DEPTH`] is refused.

use std::collections::HashMap;

use flightdeck_obs_core::locate::shown;
use flightdeck_obs_core::{AttrValue, SpanKind, SpanRecord, SpanStatus};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{GoldenError, TraceProblem};

/// Attributes of a canonical span: sorted by key, so files diff well.
pub type Attrs = Map<String, Value>;

/// The deepest span tree accepted. Real pipelines are a few levels deep;
/// the limit keeps paths (which repeat their ancestors' names) bounded.
pub const MAX_DEPTH: usize = 256;

/// An event inside a span: its name and attributes (its time is dropped).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// The event's name (a log line's message).
    pub name: String,
    /// The event's attributes.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub attributes: Attrs,
}

/// A span as a source hands it over, before it has a place in a tree.
#[derive(Debug, Clone, PartialEq)]
pub struct RawSpan {
    /// The span id.
    pub span_id: u64,
    /// The parent's id, `None` for a root.
    pub parent_span_id: Option<u64>,
    /// Whether the parent lives in another process: the span is a local
    /// root even though it names a parent.
    pub parent_is_remote: bool,
    /// The span name.
    pub name: String,
    /// The span kind.
    pub kind: SpanKind,
    /// Start, Unix nanoseconds.
    pub start_unix_nanos: u64,
    /// End, Unix nanoseconds.
    pub end_unix_nanos: u64,
    /// Attributes.
    pub attributes: Attrs,
    /// Events, oldest first.
    pub events: Vec<Event>,
    /// Status.
    pub status: SpanStatus,
    /// The request's correlation id, when the source has one.
    pub correlation_id: Option<String>,
}

/// A JSON value for an attribute (a non-finite float becomes its text).
pub fn attr_to_json(v: &AttrValue) -> Value {
    match v {
        AttrValue::Bool(b) => Value::Bool(*b),
        AttrValue::I64(i) => Value::from(*i),
        AttrValue::U64(u) => Value::from(*u),
        AttrValue::F64(f) => serde_json::Number::from_f64(*f)
            .map_or_else(|| Value::String(f.to_string()), Value::Number),
        AttrValue::Str(s) => Value::String(s.clone()),
    }
}

impl RawSpan {
    /// An internal, ok span with no attributes or events.
    pub fn new(
        span_id: u64,
        parent_span_id: Option<u64>,
        name: impl Into<String>,
        start_unix_nanos: u64,
        end_unix_nanos: u64,
    ) -> Self {
        Self {
            span_id,
            parent_span_id,
            parent_is_remote: false,
            name: name.into(),
            kind: SpanKind::Internal,
            start_unix_nanos,
            end_unix_nanos,
            attributes: Attrs::new(),
            events: Vec::new(),
            status: SpanStatus::Ok,
            correlation_id: None,
        }
    }

    /// The span of one of our span records (a `traces.jsonl` line).
    pub fn from_record(r: &SpanRecord) -> Self {
        Self {
            span_id: r.span_id.to_u64(),
            parent_span_id: r.parent_span_id.map(|p| p.to_u64()),
            parent_is_remote: r.parent_is_remote,
            name: r.name.to_string(),
            kind: r.kind,
            start_unix_nanos: r.start_unix_nanos,
            end_unix_nanos: r.end_unix_nanos,
            attributes: r
                .attributes
                .iter()
                .map(|(k, v)| (k.to_owned(), attr_to_json(v)))
                .collect(),
            events: r
                .events
                .iter()
                .map(|e| Event {
                    name: e.name.clone(),
                    attributes: e
                        .attributes
                        .iter()
                        .map(|(k, v)| (k.to_owned(), attr_to_json(v)))
                        .collect(),
                })
                .collect(),
            status: r.status.clone(),
            correlation_id: r.correlation_id.as_ref().map(ToString::to_string),
        }
    }
}

/// All spans of one trace, in any order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RawTrace {
    /// The trace id in hex (only for messages).
    pub trace_id: String,
    /// The spans.
    pub spans: Vec<RawSpan>,
}

/// Which value names a trace's golden case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaseKey {
    /// The root span's correlation id (the default: the id a test harness
    /// sets per golden input).
    CorrelationId,
    /// A root span attribute.
    Attribute(String),
}

impl CaseKey {
    /// Parses `correlation_id` or `attr:NAME`.
    ///
    /// # Errors
    ///
    /// A message naming the value when it is neither.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "correlation_id" => Ok(Self::CorrelationId),
            _ => match s.strip_prefix("attr:") {
                Some(name) if !name.is_empty() => Ok(Self::Attribute(name.to_owned())),
                _ => Err(format!(
                    "{} is not a key: use correlation_id or attr:NAME",
                    shown(s)
                )),
            },
        }
    }
}

impl std::fmt::Display for CaseKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::CorrelationId => f.write_str("correlation_id"),
            Self::Attribute(a) => write!(f, "attr:{a}"),
        }
    }
}

impl RawTrace {
    /// The first root span (no parent, or a remote one), if any; for a
    /// fragment of a distributed trace whose spans carry no remote flag,
    /// the first span whose parent is not in the trace.
    pub fn root(&self) -> Option<&RawSpan> {
        self.spans
            .iter()
            .find(|s| s.parent_span_id.is_none() || s.parent_is_remote)
            .or_else(|| {
                let ids: std::collections::HashSet<u64> =
                    self.spans.iter().map(|s| s.span_id).collect();
                self.spans
                    .iter()
                    .filter(|s| s.parent_span_id.is_some_and(|p| !ids.contains(&p)))
                    .min_by_key(|s| s.start_unix_nanos)
            })
    }

    /// The case name this trace is filed under, read from its root span.
    pub fn key(&self, key: &CaseKey) -> Option<String> {
        let root = self.root()?;
        match key {
            CaseKey::CorrelationId => root.correlation_id.clone().or_else(|| {
                root.attributes
                    .get("correlation_id")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            }),
            CaseKey::Attribute(name) => root.attributes.get(name).map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            }),
        }
    }
}

/// One span of a canonical tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Span {
    /// The stable path, e.g. `rag.request/rag.retrieve/rag.retrieve.shard[1]`.
    pub path: String,
    /// The span kind.
    pub kind: SpanKind,
    /// The status (an error keeps its message).
    pub status: SpanStatus,
    /// The duration in milliseconds.
    pub duration_ms: f64,
    /// The part of the duration no child covers, in milliseconds: what
    /// latency comparisons use, so a slow stage is blamed, not its parents.
    pub self_ms: f64,
    /// Attributes, sorted by key.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub attributes: Attrs,
    /// Events in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<Event>,
    /// The span name (the path's last segment, unescaped).
    #[serde(skip)]
    pub name: String,
    /// The parent's index in the tree.
    #[serde(skip)]
    pub parent: Option<usize>,
    /// 0 for a root.
    #[serde(skip)]
    pub depth: usize,
}

/// A canonical span tree: spans in depth-first pre-order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Tree {
    spans: Vec<Span>,
    by_path: HashMap<String, usize>,
}

fn hex(id: u64) -> String {
    format!("{id:016x}")
}

/// Escapes a span name for use as a path segment.
pub fn escape_segment(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if matches!(c, '/' | '[' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Splits a path at its last unescaped `/`: (parent path, last segment).
fn split_last(path: &str) -> (Option<&str>, &str) {
    let b = path.as_bytes();
    let mut last = None;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'/' => last = Some(i),
            _ => {}
        }
        i += 1;
    }
    match last {
        Some(at) => (Some(&path[..at]), &path[at + 1..]),
        None => (None, path),
    }
}

/// A segment's name and ordinal: `a\/b[2]` is (`a/b`, 2).
fn parse_segment(segment: &str) -> Result<(String, usize), String> {
    let mut name = String::with_capacity(segment.len());
    let mut chars = segment.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, e)) => name.push(e),
                None => return Err("ends with a lone \\".into()),
            },
            '[' => {
                let rest = &segment[at + 1..];
                let digits = rest
                    .strip_suffix(']')
                    .ok_or_else(|| "has a [ without a closing ] at its end".to_owned())?;
                let n: usize = digits
                    .parse()
                    .map_err(|_| format!("has a bad sibling number [{digits}]"))?;
                if n == 0 || digits.starts_with('0') {
                    return Err("numbers its first sibling; the first has no [n]".into());
                }
                return Ok((name, n));
            }
            '/' => return Err("has an unescaped /".into()),
            c => name.push(c),
        }
    }
    if name.is_empty() {
        return Err("has an empty span name".into());
    }
    Ok((name, 0))
}

impl Tree {
    /// Builds the canonical tree of a trace.
    ///
    /// # Errors
    ///
    /// [`GoldenError::Trace`] naming the span for duplicate ids, orphans,
    /// parent cycles, a span ending before it starts, nesting deeper than
    /// [`MAX_DEPTH`], or an empty trace.
    pub fn build(trace: &RawTrace) -> Result<Self, GoldenError> {
        Self::from_trace(trace.clone())
    }

    /// [`build`](Self::build), taking the trace by value so attributes and
    /// events move instead of being copied (what the check runner does).
    ///
    /// # Errors
    ///
    /// As [`build`](Self::build).
    pub fn from_trace(trace: RawTrace) -> Result<Self, GoldenError> {
        let RawTrace {
            trace_id,
            spans: mut owned,
        } = trace;
        let fail = |problem| GoldenError::Trace {
            trace: trace_id.clone(),
            problem,
        };
        let raw = &owned;
        if raw.is_empty() {
            return Err(fail(TraceProblem::Empty));
        }
        let mut by_id: HashMap<u64, usize> = HashMap::with_capacity(raw.len());
        for (i, s) in raw.iter().enumerate() {
            if s.end_unix_nanos < s.start_unix_nanos {
                return Err(fail(TraceProblem::EndsBeforeStart {
                    name: shown(&s.name),
                    start: s.start_unix_nanos,
                    end: s.end_unix_nanos,
                }));
            }
            if by_id.insert(s.span_id, i).is_some() {
                return Err(fail(TraceProblem::DuplicateSpanId {
                    name: shown(&s.name),
                    id: hex(s.span_id),
                }));
            }
        }
        let mut children: Vec<Vec<usize>> = vec![Vec::new(); raw.len()];
        let mut roots = Vec::new();
        // A fragment of a distributed trace (no local root, no remote flags):
        // the spans under the one parent outside the trace are its roots.
        let has_root = raw
            .iter()
            .any(|s| s.parent_span_id.is_none() || s.parent_is_remote);
        let mut outside: Option<u64> = None;
        for (i, s) in raw.iter().enumerate() {
            match s.parent_span_id {
                None => roots.push(i),
                Some(p) if s.parent_is_remote && !by_id.contains_key(&p) => roots.push(i),
                Some(p) => match by_id.get(&p) {
                    Some(&pi) => children[pi].push(i),
                    None if !has_root && outside.is_none_or(|o| o == p) => {
                        outside = Some(p);
                        roots.push(i);
                    }
                    None => {
                        return Err(fail(TraceProblem::Orphan {
                            name: shown(&s.name),
                            id: hex(s.span_id),
                            parent: hex(p),
                        }));
                    }
                },
            }
        }
        // Start order; ties broken by end and name, so the order (and the
        // paths) never depend on the order spans were written in.
        let by_start = |list: &mut Vec<usize>| {
            list.sort_by(|&a, &b| {
                let (x, y) = (&raw[a], &raw[b]);
                (x.start_unix_nanos, x.end_unix_nanos, &x.name, a).cmp(&(
                    y.start_unix_nanos,
                    y.end_unix_nanos,
                    &y.name,
                    b,
                ))
            });
        };
        by_start(&mut roots);
        for list in &mut children {
            by_start(list);
        }

        // Paths: a sibling list's second and later same-name spans get [k].
        let mut segment = vec![String::new(); raw.len()];
        let mut ordinals: HashMap<&str, usize> = HashMap::new();
        for list in std::iter::once(&roots).chain(children.iter()) {
            ordinals.clear();
            for &i in list {
                let k = ordinals.entry(raw[i].name.as_str()).or_insert(0);
                segment[i] = if *k == 0 {
                    escape_segment(&raw[i].name)
                } else {
                    format!("{}[{k}]", escape_segment(&raw[i].name))
                };
                *k += 1;
            }
        }

        let self_ns: Vec<u64> = raw
            .iter()
            .enumerate()
            .map(|(i, s)| {
                (s.end_unix_nanos - s.start_unix_nanos).saturating_sub(covered(
                    s,
                    &children[i],
                    raw,
                ))
            })
            .collect();
        let n = raw.len();
        // Pre-order walk with an explicit stack: (raw index, parent tree index, depth).
        let mut spans: Vec<Span> = Vec::with_capacity(n);
        let mut stack: Vec<(usize, Option<usize>, usize)> =
            roots.iter().rev().map(|&r| (r, None, 0)).collect();
        while let Some((i, parent, depth)) = stack.pop() {
            let s = &mut owned[i];
            if depth >= MAX_DEPTH {
                return Err(fail(TraceProblem::TooDeep {
                    name: shown(&s.name),
                    limit: MAX_DEPTH,
                }));
            }
            let path = match parent {
                Some(p) => format!("{}/{}", spans[p].path, segment[i]),
                None => std::mem::take(&mut segment[i]),
            };
            let me = spans.len();
            let duration = s.end_unix_nanos - s.start_unix_nanos;
            spans.push(Span {
                path,
                kind: s.kind,
                status: std::mem::take(&mut s.status),
                duration_ms: ns_to_ms(duration),
                self_ms: ns_to_ms(self_ns[i]),
                attributes: std::mem::take(&mut s.attributes),
                events: std::mem::take(&mut s.events),
                name: std::mem::take(&mut s.name),
                parent,
                depth,
            });
            for &c in children[i].iter().rev() {
                stack.push((c, Some(me), depth + 1));
            }
        }
        if spans.len() < n {
            // Whatever the walk from the roots never reached hangs in a loop.
            let raw = &owned;
            let mut reached = vec![false; n];
            let mut stack = roots.clone();
            while let Some(i) = stack.pop() {
                reached[i] = true;
                stack.extend_from_slice(&children[i]);
            }
            let lost = reached.iter().position(|r| !r).unwrap_or(0);
            return Err(fail(TraceProblem::Cycle {
                name: shown(&raw[lost].name),
                id: hex(raw[lost].span_id),
            }));
        }
        Ok(Self::index(spans))
    }

    fn index(spans: Vec<Span>) -> Self {
        let by_path = spans
            .iter()
            .enumerate()
            .map(|(i, s)| (s.path.clone(), i))
            .collect();
        Self { spans, by_path }
    }

    /// Rebuilds a tree from spans read from a golden file, checking that
    /// the paths are well formed, unique and in pre-order (each parent
    /// before its children).
    ///
    /// # Errors
    ///
    /// [`GoldenError::Invalid`] naming `file` and the span's index.
    pub fn from_spans(mut spans: Vec<Span>, file: &str) -> Result<Self, GoldenError> {
        let mut by_path: HashMap<String, usize> = HashMap::with_capacity(spans.len());
        for i in 0..spans.len() {
            let bad = |message: String| GoldenError::Invalid {
                file: file.to_owned(),
                field: format!("spans[{i}].path"),
                message,
            };
            let path = spans[i].path.clone();
            let (parent_path, last) = split_last(&path);
            let (name, _) = parse_segment(last)
                .map_err(|m| bad(format!("{}: its last segment {m}", shown(&path))))?;
            let parent = match parent_path {
                None => None,
                Some(pp) => Some(*by_path.get(pp).ok_or_else(|| {
                    bad(format!(
                        "{}: its parent {} is not listed before it",
                        shown(&path),
                        shown(pp)
                    ))
                })?),
            };
            let depth = parent.map_or(0, |p| spans[p].depth + 1);
            if depth >= MAX_DEPTH {
                return Err(bad(format!("nested deeper than {MAX_DEPTH} levels")));
            }
            if let Some(p) = parent {
                // Pre-order: a child follows its parent's subtree so far, so
                // its parent must be on the current path from the root.
                let mut q = i - 1;
                while q != p {
                    match spans[q].parent {
                        Some(up) if up >= p => q = up,
                        _ => {
                            return Err(bad(format!("{}: not in depth-first order", shown(&path))));
                        }
                    }
                }
            }
            for (what, v) in [
                ("duration_ms", spans[i].duration_ms),
                ("self_ms", spans[i].self_ms),
            ] {
                if !(v.is_finite() && v >= 0.0) {
                    return Err(GoldenError::Invalid {
                        file: file.to_owned(),
                        field: format!("spans[{i}].{what}"),
                        message: format!("{v} is not a duration (0 or more milliseconds)"),
                    });
                }
            }
            if by_path.insert(path.clone(), i).is_some() {
                return Err(bad(format!("{} appears twice", shown(&path))));
            }
            let s = &mut spans[i];
            s.name = name;
            s.parent = parent;
            s.depth = depth;
        }
        Ok(Self { spans, by_path })
    }

    /// The spans in depth-first pre-order.
    pub fn spans(&self) -> &[Span] {
        &self.spans
    }

    /// The spans, to change them (tests and blessing). Paths must not change.
    pub fn spans_mut(&mut self) -> &mut [Span] {
        &mut self.spans
    }

    /// Consumes the tree, returning its spans.
    pub fn into_spans(self) -> Vec<Span> {
        self.spans
    }

    /// The span at `path`.
    pub fn get(&self, path: &str) -> Option<&Span> {
        self.by_path.get(path).map(|&i| &self.spans[i])
    }

    /// The index of the span at `path`.
    pub fn index_of(&self, path: &str) -> Option<usize> {
        self.by_path.get(path).copied()
    }

    /// Number of spans.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether the tree has no spans.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The names of a span's children, in start order.
    pub fn children(&self, index: usize) -> impl Iterator<Item = usize> + '_ {
        // Children follow their parent in pre-order; stop at the first span
        // no deeper than the parent.
        let depth = self.spans[index].depth;
        self.spans[index + 1..]
            .iter()
            .enumerate()
            .take_while(move |(_, s)| s.depth > depth)
            .filter(move |(_, s)| s.depth == depth + 1)
            .map(move |(k, _)| index + 1 + k)
    }

    /// Whether `ancestor` is a strict ancestor of `span`.
    pub fn is_ancestor(&self, ancestor: usize, span: usize) -> bool {
        let mut at = self.spans[span].parent;
        while let Some(p) = at {
            if p == ancestor {
                return true;
            }
            at = self.spans[p].parent;
        }
        false
    }
}

fn ns_to_ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// Nanoseconds of `s` that its children cover (their union, clipped to `s`).
fn covered(s: &RawSpan, children: &[usize], raw: &[RawSpan]) -> u64 {
    // `children` is sorted by start, so one sweep merges the intervals.
    let (lo, hi) = (s.start_unix_nanos, s.end_unix_nanos);
    let mut total = 0u64;
    let mut run: Option<(u64, u64)> = None;
    for &c in children {
        let a = raw[c].start_unix_nanos.clamp(lo, hi);
        let b = raw[c].end_unix_nanos.clamp(lo, hi);
        run = match run {
            Some((x, y)) if a <= y => Some((x, y.max(b))),
            Some((x, y)) => {
                total += y - x;
                Some((a, b))
            }
            None => Some((a, b)),
        };
    }
    if let Some((x, y)) = run {
        total += y - x;
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn raw(id: u64, parent: Option<u64>, name: &str, start: u64, end: u64) -> RawSpan {
        RawSpan::new(id, parent, name, start, end)
    }

    fn trace(spans: Vec<RawSpan>) -> RawTrace {
        RawTrace {
            trace_id: "t".into(),
            spans,
        }
    }

    #[test]
    fn paths_number_later_same_name_siblings_by_start_order() {
        let t = Tree::build(&trace(vec![
            raw(5, Some(2), "shard", 30, 40),
            raw(1, None, "req", 0, 100),
            raw(2, Some(1), "retrieve", 10, 50),
            raw(3, Some(2), "shard", 10, 20),
            raw(4, Some(2), "shard", 20, 45),
        ]))
        .unwrap();
        let paths: Vec<_> = t.spans().iter().map(|s| s.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "req",
                "req/retrieve",
                "req/retrieve/shard",
                "req/retrieve/shard[1]",
                "req/retrieve/shard[2]"
            ]
        );
        // retrieve (10..50) is covered by shards over 10..45: 5 ns of self time.
        assert_eq!(t.get("req/retrieve").unwrap().self_ms, 5e-6);
        assert_eq!(t.get("req").unwrap().self_ms, 60e-6);
        assert_eq!(t.children(1).collect::<Vec<_>>(), [2, 3, 4]);
    }

    #[test]
    fn broken_trees_are_errors_naming_the_span() {
        let orphan = Tree::build(&trace(vec![
            raw(1, None, "a", 0, 1),
            raw(2, Some(9), "lost", 0, 1),
        ]));
        assert!(
            orphan
                .unwrap_err()
                .to_string()
                .contains(r#"span "lost" (id 0000000000000002) is an orphan"#)
        );
        let dup = Tree::build(&trace(vec![
            raw(1, None, "a", 0, 1),
            raw(1, Some(1), "b", 0, 1),
        ]));
        assert!(dup.unwrap_err().to_string().contains("reuses span id"));
        let cycle = Tree::build(&trace(vec![
            raw(1, None, "a", 0, 1),
            raw(2, Some(3), "b", 0, 1),
            raw(3, Some(2), "c", 0, 1),
        ]));
        assert!(
            cycle
                .unwrap_err()
                .to_string()
                .contains(r#"span "b" (id 0000000000000002) is in a parent cycle"#)
        );
        let deep: Vec<_> = (1..=300u64)
            .map(|i| raw(i, (i > 1).then(|| i - 1), "n", 0, 1))
            .collect();
        assert!(
            Tree::build(&trace(deep))
                .unwrap_err()
                .to_string()
                .contains("deeper than 256")
        );
        assert!(matches!(
            Tree::build(&trace(vec![])).unwrap_err(),
            GoldenError::Trace {
                problem: TraceProblem::Empty,
                ..
            }
        ));
    }

    #[test]
    fn names_with_slashes_round_trip_through_paths() {
        let t = Tree::build(&trace(vec![
            raw(1, None, "GET /users/[id]", 0, 10),
            raw(2, Some(1), "a\\b", 1, 2),
        ]))
        .unwrap();
        assert_eq!(t.spans()[1].path, r"GET \/users\/\[id]/a\\b");
        let back = Tree::from_spans(t.clone().into_spans(), "f").unwrap();
        assert_eq!(back.spans()[1].name, "a\\b");
        assert_eq!(back.spans()[0].name, "GET /users/[id]");
        assert_eq!(back, t);
    }

    #[test]
    fn files_out_of_order_or_with_bad_paths_are_refused() {
        let t = Tree::build(&trace(vec![
            raw(1, None, "r", 0, 10),
            raw(2, Some(1), "a", 1, 2),
            raw(3, Some(2), "x", 1, 2),
            raw(4, Some(1), "b", 3, 4),
        ]))
        .unwrap();
        let mut spans = t.into_spans();
        spans.swap(2, 3); // r/a/x after r/b: not depth-first
        let err = Tree::from_spans(spans.clone(), "g.json")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("g.json: spans[3].path") && err.contains("depth-first"),
            "{err}"
        );
        spans.swap(2, 3);
        spans[1].path = "r/a[0]".into();
        let err = Tree::from_spans(spans, "g.json").unwrap_err().to_string();
        assert!(err.contains("first has no [n]"), "{err}");
    }
}

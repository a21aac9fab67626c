//! Comparing a capture with its golden: a list of [`Difference`]s, each
//! with a kind, a path, the expected and actual values and a one-line
//! message in the style of collector-contrib's `ptracetest`
//! (`span "rag.request/rag.rerank": missing`).

use flightdeck_obs_core::locate::shown;
use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::tree::{Attrs, Span, Tree};

/// What kind of difference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiffKind {
    /// A golden span the capture lacks.
    MissingSpan,
    /// A captured span the golden lacks.
    UnexpectedSpan,
    /// An attribute (or the span kind) differs.
    Attribute,
    /// The status differs (ok against error, or the error's message).
    Status,
    /// The events differ (their names in order, or their attributes).
    Event,
    /// The span's self time is beyond the latency tolerance.
    Latency,
    /// A quality attribute moved beyond the quality tolerance.
    Quality,
}

impl DiffKind {
    /// The name used in JSON and JUnit.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MissingSpan => "missing_span",
            Self::UnexpectedSpan => "unexpected_span",
            Self::Attribute => "attribute",
            Self::Status => "status",
            Self::Event => "event",
            Self::Latency => "latency",
            Self::Quality => "quality",
        }
    }
}

/// One difference between a golden case and a capture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Difference {
    /// What kind of difference.
    pub kind: DiffKind,
    /// The span's path.
    pub path: String,
    /// The golden's value (`null` when it has none).
    pub expected: Value,
    /// The capture's value (`null` when it has none).
    pub actual: Value,
    /// One line for a reviewer.
    pub message: String,
    /// Whether it fails the case. Faster spans and better quality are
    /// reported but do not fail.
    pub fails: bool,
}

/// The numeric tolerances.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerances {
    /// Allowed relative slow-down of a span's self time (0.2 = 20 %).
    pub latency: f64,
    /// A slow-down must also exceed this many milliseconds to fail, so a
    /// 3 ms span taking 4 ms is not a regression.
    pub latency_floor_ms: f64,
    /// Allowed absolute drop of a quality attribute.
    pub quality: f64,
}

impl Default for Tolerances {
    fn default() -> Self {
        Self {
            latency: 0.2,
            latency_floor_ms: 5.0,
            quality: 0.05,
        }
    }
}

/// How one attribute is compared.
#[derive(Debug, Clone)]
pub enum AttrRule {
    /// Not compared.
    Ignore,
    /// Values (as text) that both match are equal; others must be equal.
    Regex(Regex),
    /// Numeric, equal within this absolute amount.
    Tolerance(f64),
}

/// A key pattern: `*` matches any run of characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPattern(String);

impl KeyPattern {
    /// A pattern; `*` is the only wildcard.
    pub fn new(pattern: impl Into<String>) -> Self {
        Self(pattern.into())
    }

    /// The pattern text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `key` matches.
    pub fn matches(&self, key: &str) -> bool {
        glob(self.0.as_bytes(), key.as_bytes())
    }
}

/// Glob matching with `*` only, iterative (no recursion, linear backtrack).
fn glob(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if pi < p.len() && p[pi] == s[si] {
            pi += 1;
            si += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// Attributes that differ on every run (ids, timestamps, threads, measured
/// durations: latency is compared on the spans themselves), ignored
/// unless a rule says otherwise.
pub const DEFAULT_VOLATILE: &[&str] = &[
    "*.id",
    "*_id",
    "*.uuid",
    "*timestamp*",
    "*.time",
    "*_time",
    "*time_unix*",
    "thread.*",
    "*duration*",
    "*elapsed*",
    "*latency*",
];

/// Token counts and what is priced from them, ignored when asked
/// ([`Rules::ignore_token_counts`]): a prompt change moves them.
pub const TOKEN_COUNTS: &[&str] = &[
    "gen_ai.usage.*",
    "*token_count*",
    "*.tokens",
    "flightdeck.cost_usd_micros",
];

/// The default quality attribute.
pub const DEFAULT_QUALITY: &str = "rag.relevance_score";

/// How captures are compared with goldens.
#[derive(Debug, Clone)]
pub struct Rules {
    /// The numeric tolerances.
    pub tolerances: Tolerances,
    rules: Vec<(KeyPattern, AttrRule)>,
    volatile: Vec<KeyPattern>,
    quality: Vec<KeyPattern>,
    status_messages: bool,
}

impl Default for Rules {
    fn default() -> Self {
        Self {
            tolerances: Tolerances::default(),
            rules: Vec::new(),
            volatile: DEFAULT_VOLATILE
                .iter()
                .map(|p| KeyPattern::new(*p))
                .collect(),
            quality: vec![KeyPattern::new(DEFAULT_QUALITY)],
            status_messages: true,
        }
    }
}

impl Rules {
    /// The defaults: exact attributes except [`DEFAULT_VOLATILE`], quality
    /// on [`DEFAULT_QUALITY`], [`Tolerances::default`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the tolerances.
    #[must_use]
    pub fn with_tolerances(mut self, t: Tolerances) -> Self {
        self.tolerances = t;
        self
    }

    /// Adds a rule for attributes matching `pattern`; the first matching
    /// rule wins, and rules win over the volatile defaults.
    #[must_use]
    pub fn with_rule(mut self, pattern: &str, rule: AttrRule) -> Self {
        self.rules.push((KeyPattern::new(pattern), rule));
        self
    }

    /// Adds a volatile (ignored) attribute pattern.
    #[must_use]
    pub fn with_volatile(mut self, pattern: &str) -> Self {
        self.volatile.push(KeyPattern::new(pattern));
        self
    }

    /// Ignores token counts and cost too ([`TOKEN_COUNTS`]).
    #[must_use]
    pub fn ignore_token_counts(mut self) -> Self {
        self.volatile
            .extend(TOKEN_COUNTS.iter().map(|p| KeyPattern::new(*p)));
        self
    }

    /// Adds a quality attribute pattern (higher is better).
    #[must_use]
    pub fn with_quality(mut self, pattern: &str) -> Self {
        self.quality.push(KeyPattern::new(pattern));
        self
    }

    /// Replaces the quality attribute patterns.
    #[must_use]
    pub fn with_quality_only(mut self, patterns: &[&str]) -> Self {
        self.quality = patterns.iter().map(|p| KeyPattern::new(*p)).collect();
        self
    }

    /// Whether error messages are compared (on by default); off compares
    /// only ok against error.
    #[must_use]
    pub fn compare_status_messages(mut self, on: bool) -> Self {
        self.status_messages = on;
        self
    }

    fn rule(&self, key: &str) -> Option<&AttrRule> {
        if let Some((_, r)) = self.rules.iter().find(|(p, _)| p.matches(key)) {
            return Some(r);
        }
        self.volatile
            .iter()
            .any(|p| p.matches(key))
            .then_some(&AttrRule::Ignore)
    }

    fn classify(&self, key: &str) -> Class {
        if self.quality.iter().any(|p| p.matches(key)) {
            return Class::Quality;
        }
        match self.rules.iter().position(|(p, _)| p.matches(key)) {
            Some(i) => Class::Rule(i),
            None if self.volatile.iter().any(|p| p.matches(key)) => Class::Ignore,
            None => Class::Exact,
        }
    }
}

/// How an attribute key is compared, decided once per key and comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Ignore,
    Quality,
    Rule(usize),
    Exact,
}

fn numbers_equal(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn value_shown(v: &Value) -> String {
    match v {
        Value::String(s) => shown(s),
        Value::Null => "none".into(),
        other => {
            let t = other.to_string();
            if t.len() > 64 { shown(&t) } else { t }
        }
    }
}

/// One attribute's verdict under the rules: `None` when it agrees, or the
/// (message, fails) pair.
fn attribute_verdict(rules: &Rules, key: &str, e: &Value, a: &Value) -> Option<String> {
    match rules.rule(key) {
        Some(AttrRule::Ignore) => None,
        Some(AttrRule::Regex(re)) => {
            // Values matching the pattern are interchangeable; others must
            // be equal.
            if numbers_equal(e, a) {
                return None;
            }
            if a.is_null() || e.is_null() {
                let (which, v) = if a.is_null() {
                    ("missing", e)
                } else {
                    ("unexpected", a)
                };
                return Some(format!(
                    "attribute {} {which} ({})",
                    shown(key),
                    value_shown(v)
                ));
            }
            let (em, am) = (re.is_match(&text_of(e)), re.is_match(&text_of(a)));
            (!(em && am)).then(|| {
                format!(
                    "attribute {} expected {}, actual {} (values matching /{}/ count as equal)",
                    shown(key),
                    value_shown(e),
                    value_shown(a),
                    re.as_str()
                )
            })
        }
        Some(AttrRule::Tolerance(t)) => match (e.as_f64(), a.as_f64()) {
            (Some(x), Some(y)) if (x - y).abs() <= *t => None,
            _ => Some(format!(
                "attribute {} expected {} ± {t}, actual {}",
                shown(key),
                value_shown(e),
                value_shown(a)
            )),
        },
        None => (!numbers_equal(e, a)).then(|| match (e.is_null(), a.is_null()) {
            (false, true) => format!(
                "attribute {} missing (expected {})",
                shown(key),
                value_shown(e)
            ),
            (true, false) => format!(
                "attribute {} unexpected (actual {})",
                shown(key),
                value_shown(a)
            ),
            _ => format!(
                "attribute {} expected {}, actual {}",
                shown(key),
                value_shown(e),
                value_shown(a)
            ),
        }),
    }
}

/// Walks two sorted attribute maps together: each key once, with the value
/// on each side (`None` where a side lacks it).
fn merged<'a>(
    e: &'a Attrs,
    a: &'a Attrs,
    mut f: impl FnMut(&'a str, Option<&'a Value>, Option<&'a Value>),
) {
    let (mut x, mut y) = (e.iter().peekable(), a.iter().peekable());
    loop {
        match (x.peek(), y.peek()) {
            (Some((kx, _)), Some((ky, _))) => match kx.as_str().cmp(ky.as_str()) {
                std::cmp::Ordering::Less => {
                    let (k, v) = x.next().expect("peeked");
                    f(k, Some(v), None);
                }
                std::cmp::Ordering::Greater => {
                    let (k, v) = y.next().expect("peeked");
                    f(k, None, Some(v));
                }
                std::cmp::Ordering::Equal => {
                    let (k, v) = x.next().expect("peeked");
                    let (_, w) = y.next().expect("peeked");
                    f(k, Some(v), Some(w));
                }
            },
            (Some(_), None) => {
                let (k, v) = x.next().expect("peeked");
                f(k, Some(v), None);
            }
            (None, Some(_)) => {
                let (k, v) = y.next().expect("peeked");
                f(k, None, Some(v));
            }
            (None, None) => return,
        }
    }
}

struct Out<'r> {
    rules: &'r Rules,
    diffs: Vec<Difference>,
    classes: std::collections::HashMap<String, Class>,
}

impl Out<'_> {
    fn push(
        &mut self,
        kind: DiffKind,
        path: &str,
        expected: Value,
        actual: Value,
        message: String,
        fails: bool,
    ) {
        self.diffs.push(Difference {
            kind,
            path: path.to_owned(),
            expected,
            actual,
            message: format!("span {}: {message}", shown_path(path)),
            fails,
        });
    }

    fn span(&mut self, e: &Span, a: &Span) {
        let path = e.path.as_str();
        if e.kind != a.kind {
            let k = |s: &Span| serde_json::to_value(s.kind).unwrap_or(Value::Null);
            let (ek, ak) = (k(e), k(a));
            let message = format!("kind expected {}, actual {}", text_of(&ek), text_of(&ak));
            self.push(DiffKind::Attribute, path, ek, ak, message, true);
        }
        self.status(e, a);
        self.attributes(e, a);
        self.events(e, a);
        self.latency(e, a);
    }

    fn status(&mut self, e: &Span, a: &Span) {
        use flightdeck_obs_core::SpanStatus::{Error, Ok};
        let describe = |s: &flightdeck_obs_core::SpanStatus| match s {
            Ok => "ok".to_owned(),
            Error { message } => format!("error {}", shown(message)),
        };
        let differs = match (&e.status, &a.status) {
            (Ok, Ok) => false,
            (Error { message: x }, Error { message: y }) => self.rules.status_messages && x != y,
            _ => true,
        };
        if differs {
            let v = |s| serde_json::to_value(s).unwrap_or(Value::Null);
            let message = format!(
                "status expected {}, actual {}",
                describe(&e.status),
                describe(&a.status)
            );
            self.push(
                DiffKind::Status,
                &e.path,
                v(&e.status),
                v(&a.status),
                message,
                true,
            );
        }
    }

    fn class(&mut self, key: &str) -> Class {
        if let Some(c) = self.classes.get(key) {
            return *c;
        }
        let c = self.rules.classify(key);
        self.classes.insert(key.to_owned(), c);
        c
    }

    fn attributes(&mut self, e: &Span, a: &Span) {
        let null = Value::Null;
        let mut found: Vec<(DiffKind, &str, &Value, &Value)> = Vec::new();
        merged(&e.attributes, &a.attributes, |key, ev, av| {
            let (ev, av) = (ev.unwrap_or(&null), av.unwrap_or(&null));
            if ev == av {
                return;
            }
            found.push((DiffKind::Attribute, key, ev, av));
        });
        for (_, key, ev, av) in found {
            match self.class(key) {
                Class::Ignore => {}
                Class::Quality if ev.is_number() && av.is_number() => {
                    let (x, y) = (ev.as_f64().unwrap_or(0.0), av.as_f64().unwrap_or(0.0));
                    self.quality(&e.path, key, x, y, ev, av);
                }
                _ => {
                    if let Some(message) = attribute_verdict(self.rules, key, ev, av) {
                        self.push(
                            DiffKind::Attribute,
                            &e.path,
                            ev.clone(),
                            av.clone(),
                            message,
                            true,
                        );
                    }
                }
            }
        }
    }

    fn quality(&mut self, path: &str, key: &str, x: f64, y: f64, ev: &Value, av: &Value) {
        let tol = self.rules.tolerances.quality;
        let drop = x - y;
        if drop > tol {
            let message = format!(
                "quality {} dropped by {drop:.3}: {x} → {y} (tolerance {tol})",
                shown(key)
            );
            self.push(
                DiffKind::Quality,
                path,
                ev.clone(),
                av.clone(),
                message,
                true,
            );
        } else if -drop > tol {
            let message = format!(
                "quality {} rose by {:.3}: {x} → {y} (reported, not a failure)",
                shown(key),
                -drop
            );
            self.push(
                DiffKind::Quality,
                path,
                ev.clone(),
                av.clone(),
                message,
                false,
            );
        }
    }

    fn events(&mut self, e: &Span, a: &Span) {
        fn names(s: &Span) -> Vec<&str> {
            s.events.iter().map(|ev| ev.name.as_str()).collect()
        }
        let (en, an) = (names(e), names(a));
        if en != an {
            let message = format!(
                "events expected [{}], actual [{}]",
                en.iter().map(|n| shown(n)).collect::<Vec<_>>().join(", "),
                an.iter().map(|n| shown(n)).collect::<Vec<_>>().join(", ")
            );
            self.push(
                DiffKind::Event,
                &e.path,
                Value::from(en),
                Value::from(an),
                message,
                true,
            );
            return;
        }
        let null = Value::Null;
        for (i, (ee, ae)) in e.events.iter().zip(&a.events).enumerate() {
            let mut found: Vec<(&str, &Value, &Value)> = Vec::new();
            merged(&ee.attributes, &ae.attributes, |key, ev, av| {
                let (ev, av) = (ev.unwrap_or(&null), av.unwrap_or(&null));
                if ev != av {
                    found.push((key, ev, av));
                }
            });
            for (key, ev, av) in found {
                if let Some(m) = attribute_verdict(self.rules, key, ev, av) {
                    let message = format!("event[{i}] {}: {m}", shown(&ee.name));
                    self.push(
                        DiffKind::Event,
                        &e.path,
                        ev.clone(),
                        av.clone(),
                        message,
                        true,
                    );
                }
            }
        }
    }

    fn latency(&mut self, e: &Span, a: &Span) {
        let t = self.rules.tolerances;
        let (x, y) = (e.self_ms, a.self_ms);
        let slower = y > x * (1.0 + t.latency) && y - x > t.latency_floor_ms;
        let faster = y < x * (1.0 - t.latency) && x - y > t.latency_floor_ms;
        if !(slower || faster) {
            return;
        }
        let ratio = if x > 0.0 {
            format!("{:.1}× ", y / x)
        } else {
            String::new()
        };
        let message = if slower {
            format!(
                "{ratio}slower: self time {y:.1} ms against {x:.1} ms (allowed +{:.0} % and at least {} ms)",
                t.latency * 100.0,
                t.latency_floor_ms
            )
        } else {
            format!(
                "{ratio}faster: self time {y:.1} ms against {x:.1} ms (reported, not a failure)"
            )
        };
        self.push(DiffKind::Latency, &e.path, ms(x), ms(y), message, slower);
    }
}

fn ms(v: f64) -> Value {
    serde_json::Number::from_f64((v * 1000.0).round() / 1000.0).map_or(Value::Null, Value::Number)
}

/// A path as messages quote it.
pub(crate) fn shown_path(path: &str) -> String {
    shown(path)
}

/// Compares a capture with its golden. Differences come in the golden's
/// span order, then unexpected spans in the capture's order. A missing or
/// unexpected subtree is one difference at its top span.
pub fn compare(golden: &Tree, actual: &Tree, rules: &Rules) -> Vec<Difference> {
    let mut out = Out {
        rules,
        diffs: Vec::new(),
        classes: std::collections::HashMap::new(),
    };
    absent(
        golden,
        actual,
        DiffKind::MissingSpan,
        &mut out,
        |out, e, a| out.span(e, a),
    );
    absent(
        actual,
        golden,
        DiffKind::UnexpectedSpan,
        &mut out,
        |_, _, _| {},
    );
    out.diffs
}

/// Walks `from` in pre-order; spans `other` lacks become one difference per
/// missing subtree; spans both have go to `both`.
fn absent(
    from: &Tree,
    other: &Tree,
    kind: DiffKind,
    out: &mut Out<'_>,
    mut both: impl FnMut(&mut Out<'_>, &Span, &Span),
) {
    let spans = from.spans();
    let mut i = 0;
    while i < spans.len() {
        let s = &spans[i];
        if let Some(o) = other.get(&s.path) {
            if kind == DiffKind::MissingSpan {
                both(out, s, o);
            }
            i += 1;
            continue;
        }
        let mut end = i + 1;
        while end < spans.len() && spans[end].depth > s.depth {
            end += 1;
        }
        let below = end - i - 1;
        let extra = match below {
            0 => String::new(),
            1 => " (with 1 span below it)".into(),
            n => format!(" (with {n} spans below it)"),
        };
        let (word, expected, actual) = if kind == DiffKind::MissingSpan {
            ("missing", Value::from(s.name.clone()), Value::Null)
        } else {
            ("unexpected", Value::Null, Value::from(s.name.clone()))
        };
        out.push(
            kind,
            &s.path,
            expected,
            actual,
            format!("{word}{extra}"),
            true,
        );
        i = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_like_shells() {
        for (p, s, m) in [
            ("*.id", "gen_ai.response.id", true),
            ("*.id", "id", false),
            ("gen_ai.usage.*", "gen_ai.usage.input_tokens", true),
            ("*time*", "x.timestamp", true),
            ("a*b*c", "aXbYbZc", true),
            ("a*b*c", "aXbYbZ", false),
            ("exact", "exact", true),
            ("", "", true),
        ] {
            assert_eq!(KeyPattern::new(p).matches(s), m, "{p} {s}");
        }
    }
}

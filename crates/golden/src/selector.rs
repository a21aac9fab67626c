//! Tracetest's selector and assertion language, over any span tree.
//!
//! Selectors: `span[name="rag.generate" gen_ai.request.model="gpt-4o-mini"]`
//! (a space inside the brackets means AND), `,` for OR, a space between
//! `span[…]` groups for the descendant combinator (any depth below, never
//! the span itself), and `:first`, `:last`, `:nth_child(n)` (1-based, over
//! what the step matched). `""` and `span[]` select every span. Filters use
//! the assertion operators; `name` and `kind` are pseudo-attributes.
//!
//! Assertions: `attr:x = v`, `!=`, `<`, `<=`, `>`, `>=`, `contains`,
//! `not-contains`; values are quoted strings, numbers, durations (`500ms`,
//! units `ns us ms s m h`, compared in nanoseconds) or `attr:y`. An
//! assertion holds on a selection when it holds on every selected span;
//! `attr:tracetest.selected_spans.count` is the selection's size and
//! `attr:tracetest.span.duration` a span's duration in nanoseconds.

use std::borrow::Cow;

use flightdeck_obs_core::locate::shown;
use serde_json::Value;

use crate::error::GoldenError;
use crate::tree::Tree;

/// A span tree selectors run on, spans numbered in depth-first pre-order.
pub trait Selectable {
    /// Number of spans.
    fn span_count(&self) -> usize;
    /// A span's parent.
    fn parent_of(&self, span: usize) -> Option<usize>;
    /// A span's name.
    fn name_of(&self, span: usize) -> &str;
    /// A span's kind.
    fn kind_of(&self, span: usize) -> Cow<'_, str>;
    /// A span's attribute, including `tracetest.span.duration`.
    fn attribute_of(&self, span: usize, key: &str) -> Option<Value>;
}

impl Selectable for Tree {
    fn span_count(&self) -> usize {
        self.len()
    }
    fn parent_of(&self, span: usize) -> Option<usize> {
        self.spans()[span].parent
    }
    fn name_of(&self, span: usize) -> &str {
        &self.spans()[span].name
    }
    fn kind_of(&self, span: usize) -> Cow<'_, str> {
        match serde_json::to_value(self.spans()[span].kind) {
            Ok(Value::String(s)) => Cow::Owned(s),
            _ => Cow::Borrowed("internal"),
        }
    }
    fn attribute_of(&self, span: usize, key: &str) -> Option<Value> {
        let s = &self.spans()[span];
        match key {
            "tracetest.span.duration" => Some(Value::from((s.duration_ms * 1e6).round() as u64)),
            "tracetest.span.name" => Some(Value::from(s.name.clone())),
            "tracetest.span.kind" => Some(Value::from(self.kind_of(span).into_owned())),
            "tracetest.span.status" => Some(Value::from(if s.status.is_error() {
                "error"
            } else {
                "ok"
            })),
            _ => s.attributes.get(key).cloned(),
        }
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `contains`
    Contains,
    /// `not-contains`
    NotContains,
}

impl Op {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "=" => Self::Eq,
            "!=" => Self::Ne,
            "<" => Self::Lt,
            "<=" => Self::Le,
            ">" => Self::Gt,
            ">=" => Self::Ge,
            "contains" => Self::Contains,
            "not-contains" => Self::NotContains,
            _ => return None,
        })
    }
}

/// A value in a filter or assertion.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    /// A literal.
    Literal(Value),
    /// `attr:NAME` of the span at hand.
    Attr(String),
}

fn number_of(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Applies `op`: numbers compare as numbers (a numeric string counts),
/// anything else as text.
///
/// # Errors
///
/// A message when an ordering operator meets a value that is not a number.
pub fn apply(op: Op, left: &Value, right: &Value) -> Result<bool, String> {
    let nums = (number_of(left), number_of(right));
    Ok(match op {
        Op::Eq | Op::Ne => {
            let eq = match nums {
                (Some(a), Some(b)) => a == b,
                _ => text_of(left) == text_of(right),
            };
            eq == (op == Op::Eq)
        }
        Op::Contains => text_of(left).contains(&text_of(right)),
        Op::NotContains => !text_of(left).contains(&text_of(right)),
        Op::Lt | Op::Le | Op::Gt | Op::Ge => {
            let (Some(a), Some(b)) = nums else {
                let culprit = if nums.0.is_none() { left } else { right };
                return Err(format!(
                    "cannot order {} as a number",
                    shown(&text_of(culprit))
                ));
            };
            match op {
                Op::Lt => a < b,
                Op::Le => a <= b,
                Op::Gt => a > b,
                _ => a >= b,
            }
        }
    })
}

#[derive(Debug, Clone, PartialEq)]
struct Filter {
    key: String,
    op: Op,
    value: Value,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Pseudo {
    First,
    Last,
    NthChild(usize),
}

#[derive(Debug, Clone, PartialEq)]
struct Step {
    filters: Vec<Filter>,
    pseudo: Option<Pseudo>,
}

/// A parsed selector.
#[derive(Debug, Clone, PartialEq)]
pub struct Selector {
    text: String,
    /// OR of groups; each group is a chain of descendant steps (empty: all).
    groups: Vec<Vec<Step>>,
}

struct Lexer<'a> {
    text: &'a str,
    at: usize,
    what: &'static str,
}

impl<'a> Lexer<'a> {
    fn err(&self, message: impl Into<String>) -> GoldenError {
        GoldenError::Syntax {
            what: self.what,
            text: shown(self.text),
            column: self.text[..self.at.min(self.text.len())].chars().count() + 1,
            message: message.into(),
        }
    }
    fn rest(&self) -> &'a str {
        &self.text[self.at..]
    }
    fn skip_ws(&mut self) -> bool {
        let before = self.at;
        let trimmed = self.rest().trim_start();
        self.at = self.text.len() - trimmed.len();
        self.at > before
    }
    fn eat(&mut self, s: &str) -> bool {
        if self.rest().starts_with(s) {
            self.at += s.len();
            true
        } else {
            false
        }
    }
    fn word(&mut self, stop: impl Fn(char) -> bool) -> &'a str {
        let rest = self.rest();
        let end = rest
            .find(|c: char| c.is_whitespace() || stop(c))
            .unwrap_or(rest.len());
        self.at += end;
        &rest[..end]
    }
    fn quoted(&mut self) -> Result<String, GoldenError> {
        // At the opening quote.
        self.at += 1;
        let mut out = String::new();
        let mut chars = self.rest().char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.at += i + 1;
                    return Ok(out);
                }
                '\\' => match chars.next() {
                    Some((_, e)) => out.push(e),
                    None => break,
                },
                c => out.push(c),
            }
        }
        self.at = self.text.len();
        Err(self.err("a quoted value has no closing \""))
    }
    fn value(&mut self, stop: impl Fn(char) -> bool) -> Result<Operand, GoldenError> {
        if self.rest().starts_with('"') {
            return Ok(Operand::Literal(Value::String(self.quoted()?)));
        }
        let start = self.at;
        let w = self.word(stop);
        if w.is_empty() {
            self.at = start;
            return Err(self.err("expected a value"));
        }
        Ok(literal_or_attr(w))
    }
}

/// A bare word as a value: `attr:x`, a duration (in ns), a number, a
/// boolean, or text.
fn literal_or_attr(w: &str) -> Operand {
    if let Some(a) = w.strip_prefix("attr:") {
        return Operand::Attr(a.to_owned());
    }
    if let Some(ns) = duration_ns(w) {
        return Operand::Literal(Value::from(ns));
    }
    if let Ok(i) = w.parse::<i64>() {
        return Operand::Literal(Value::from(i));
    }
    if let Some(n) = w.parse::<f64>().ok().and_then(serde_json::Number::from_f64) {
        return Operand::Literal(Value::Number(n));
    }
    match w {
        "true" => Operand::Literal(Value::Bool(true)),
        "false" => Operand::Literal(Value::Bool(false)),
        _ => Operand::Literal(Value::String(w.to_owned())),
    }
}

/// `500ms` → 500000000 (ns); `None` when not a duration.
fn duration_ns(w: &str) -> Option<f64> {
    let split = w.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (num, unit) = w.split_at(split);
    let v: f64 = num.parse().ok()?;
    let scale = match unit {
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        "m" => 60e9,
        "h" => 3600e9,
        _ => return None,
    };
    Some(v * scale)
}

impl Selector {
    /// Parses a selector.
    ///
    /// # Errors
    ///
    /// [`GoldenError::Syntax`] naming the column.
    pub fn parse(text: &str) -> Result<Self, GoldenError> {
        let mut lx = Lexer {
            text,
            at: 0,
            what: "selector",
        };
        let mut groups = Vec::new();
        lx.skip_ws();
        if lx.rest().is_empty() {
            return Ok(Self {
                text: text.to_owned(),
                groups: vec![Vec::new()],
            });
        }
        loop {
            let mut steps = Vec::new();
            loop {
                lx.skip_ws();
                if !lx.eat("span") {
                    return Err(lx.err("expected span[…]"));
                }
                if !lx.eat("[") {
                    return Err(lx.err("expected [ after span"));
                }
                let filters = parse_filters(&mut lx)?;
                let pseudo = parse_pseudo(&mut lx)?;
                steps.push(Step { filters, pseudo });
                let spaced = lx.skip_ws();
                if lx.rest().is_empty() || lx.rest().starts_with(',') {
                    break;
                }
                if !spaced {
                    return Err(lx.err("expected a space, a comma or the end"));
                }
            }
            groups.push(steps);
            if lx.rest().is_empty() {
                break;
            }
            lx.eat(",");
        }
        Ok(Self {
            text: text.to_owned(),
            groups,
        })
    }

    /// The selector's text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The selected spans, in pre-order, each once.
    pub fn select<T: Selectable + ?Sized>(&self, tree: &T) -> Vec<usize> {
        let n = tree.span_count();
        let mut chosen = vec![false; n];
        for steps in &self.groups {
            if steps.is_empty() {
                chosen.iter_mut().for_each(|c| *c = true);
                continue;
            }
            let mut prev: Option<Vec<bool>> = None;
            for step in steps {
                let mut hits: Vec<usize> = (0..n)
                    .filter(|&i| step.filters.iter().all(|f| filter_holds(tree, i, f)))
                    .filter(|&i| match &prev {
                        None => true,
                        Some(mask) => {
                            let mut at = tree.parent_of(i);
                            let mut found = false;
                            while let Some(p) = at {
                                if mask[p] {
                                    found = true;
                                    break;
                                }
                                at = tree.parent_of(p);
                            }
                            found
                        }
                    })
                    .collect();
                hits = match step.pseudo {
                    None => hits,
                    Some(Pseudo::First) => hits.into_iter().take(1).collect(),
                    Some(Pseudo::Last) => hits.pop().into_iter().collect(),
                    Some(Pseudo::NthChild(k)) => hits.get(k - 1).copied().into_iter().collect(),
                };
                let mut mask = vec![false; n];
                for i in hits {
                    mask[i] = true;
                }
                prev = Some(mask);
            }
            if let Some(mask) = prev {
                for (c, m) in chosen.iter_mut().zip(mask) {
                    *c |= m;
                }
            }
        }
        (0..n).filter(|&i| chosen[i]).collect()
    }
}

fn filter_holds<T: Selectable + ?Sized>(tree: &T, span: usize, f: &Filter) -> bool {
    let value = match f.key.as_str() {
        "name" => Some(Value::from(tree.name_of(span))),
        "kind" => Some(Value::from(tree.kind_of(span).into_owned())),
        key => tree.attribute_of(span, key),
    };
    value.is_some_and(|v| apply(f.op, &v, &f.value).unwrap_or(false))
}

fn is_op_char(c: char) -> bool {
    matches!(c, '=' | '!' | '<' | '>')
}

fn parse_filters(lx: &mut Lexer<'_>) -> Result<Vec<Filter>, GoldenError> {
    let mut out = Vec::new();
    loop {
        lx.skip_ws();
        if lx.eat("]") {
            return Ok(out);
        }
        if lx.rest().is_empty() {
            return Err(lx.err("expected ] to close span["));
        }
        let key = lx.word(|c| is_op_char(c) || c == ']' || c == '"');
        if key.is_empty() {
            return Err(lx.err("expected an attribute name"));
        }
        lx.skip_ws();
        let op_text = if lx.rest().starts_with(is_op_char) {
            lx.word(|c| !is_op_char(c))
        } else {
            lx.word(|c| c == '"' || c == ']')
        };
        let Some(op) = Op::parse(op_text) else {
            return Err(lx.err(format!("{} is not an operator", shown(op_text))));
        };
        lx.skip_ws();
        let value = match lx.value(|c| c == ']')? {
            Operand::Literal(v) => v,
            Operand::Attr(a) => Value::String(format!("attr:{a}")),
        };
        out.push(Filter {
            key: key.to_owned(),
            op,
            value,
        });
    }
}

fn parse_pseudo(lx: &mut Lexer<'_>) -> Result<Option<Pseudo>, GoldenError> {
    if !lx.eat(":") {
        return Ok(None);
    }
    if lx.eat("first") {
        return Ok(Some(Pseudo::First));
    }
    if lx.eat("last") {
        return Ok(Some(Pseudo::Last));
    }
    if lx.eat("nth_child(") {
        let n = lx.word(|c| c == ')');
        if !lx.eat(")") {
            return Err(lx.err("expected ) after :nth_child(n"));
        }
        // An invalid n selects nothing, as in Tracetest.
        let k = n
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|k| *k >= 1)
            .unwrap_or(usize::MAX);
        return Ok(Some(Pseudo::NthChild(k)));
    }
    Err(lx.err("expected :first, :last or :nth_child(n)"))
}

/// A parsed assertion.
#[derive(Debug, Clone, PartialEq)]
pub struct Assertion {
    text: String,
    left: Operand,
    op: Op,
    right: Operand,
}

/// The outcome of one assertion on one selection.
#[derive(Debug, Clone, PartialEq)]
pub struct AssertionOutcome {
    /// Whether it held on every selected span.
    pub passed: bool,
    /// The first failing span (when it failed on a span).
    pub span: Option<usize>,
    /// What was seen, for the message (`"gpt-4o"`, `3`, `attribute missing`).
    pub observed: String,
}

/// The selection's size, as an assertion reads it.
pub const SELECTED_SPANS_COUNT: &str = "tracetest.selected_spans.count";

impl Assertion {
    /// Parses an assertion.
    ///
    /// # Errors
    ///
    /// [`GoldenError::Syntax`] naming the column.
    pub fn parse(text: &str) -> Result<Self, GoldenError> {
        let mut lx = Lexer {
            text,
            at: 0,
            what: "assertion",
        };
        if let Some(bar) = text.find(" | ") {
            lx.at = bar + 1;
            return Err(lx.err("filters (| json_path, | regex, …) are not supported"));
        }
        lx.skip_ws();
        let left = lx.value(is_op_char)?;
        lx.skip_ws();
        let op_text = if lx.rest().starts_with(is_op_char) {
            lx.word(|c| !is_op_char(c))
        } else {
            lx.word(|_| false)
        };
        let Some(op) = Op::parse(op_text) else {
            return Err(lx.err(format!("{} is not an operator", shown(op_text))));
        };
        lx.skip_ws();
        let right = lx.value(|_| false)?;
        lx.skip_ws();
        if !lx.rest().is_empty() {
            return Err(lx.err("unexpected text after the value (arithmetic is not supported)"));
        }
        Ok(Self {
            text: text.trim().to_owned(),
            left,
            op,
            right,
        })
    }

    /// The assertion's text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Checks the assertion on `selection` (span indices of `tree`).
    pub fn check<T: Selectable + ?Sized>(&self, tree: &T, selection: &[usize]) -> AssertionOutcome {
        let count = || Value::from(selection.len());
        let counts = |o: &Operand| matches!(o, Operand::Attr(a) if a == SELECTED_SPANS_COUNT);
        if counts(&self.left) || counts(&self.right) {
            let resolve = |o: &Operand| match o {
                Operand::Attr(a) if a == SELECTED_SPANS_COUNT => Some(count()),
                Operand::Attr(_) => None,
                Operand::Literal(v) => Some(v.clone()),
            };
            return match (resolve(&self.left), resolve(&self.right)) {
                (Some(l), Some(r)) => outcome(apply(self.op, &l, &r), None, &l),
                _ => AssertionOutcome {
                    passed: false,
                    span: None,
                    observed: "a span attribute beside the selection count".into(),
                },
            };
        }
        if selection.is_empty() {
            // As Tracetest: an attribute of no span is an error, not a pass.
            return AssertionOutcome {
                passed: false,
                span: None,
                observed: "the selector matched no spans (add `when:` to run the check only where it does)"
                    .into(),
            };
        }
        for &span in selection {
            let resolve = |o: &Operand| match o {
                Operand::Attr(a) => tree.attribute_of(span, a),
                Operand::Literal(v) => Some(v.clone()),
            };
            let (Some(l), Some(r)) = (resolve(&self.left), resolve(&self.right)) else {
                return AssertionOutcome {
                    passed: false,
                    span: Some(span),
                    observed: "attribute missing".into(),
                };
            };
            let o = outcome(apply(self.op, &l, &r), Some(span), &l);
            if !o.passed {
                return o;
            }
        }
        AssertionOutcome {
            passed: true,
            span: None,
            observed: String::new(),
        }
    }
}

fn outcome(r: Result<bool, String>, span: Option<usize>, seen: &Value) -> AssertionOutcome {
    match r {
        Ok(passed) => AssertionOutcome {
            passed,
            span,
            observed: match seen {
                Value::String(s) => shown(s),
                other => other.to_string(),
            },
        },
        Err(m) => AssertionOutcome {
            passed: false,
            span,
            observed: m,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_errors_name_the_column() {
        let e = Selector::parse(r#"span[name="x""#).unwrap_err().to_string();
        assert!(e.contains("expected ] to close"), "{e}");
        let e = Selector::parse("div[x=1]").unwrap_err().to_string();
        assert!(e.contains("column 1: expected span"), "{e}");
        let e = Assertion::parse("attr:x ~ 3").unwrap_err().to_string();
        assert!(e.contains(r#""~" is not an operator"#), "{e}");
        let e = Assertion::parse("attr:x = 1 + 2").unwrap_err().to_string();
        assert!(e.contains("arithmetic"), "{e}");
        assert!(Assertion::parse(r#"attr:body | json_path '$.id' = "1""#).is_err());
    }

    #[test]
    fn values_compare_as_numbers_when_both_are() {
        assert!(apply(Op::Eq, &Value::from("200"), &Value::from(200)).unwrap());
        assert!(apply(Op::Lt, &Value::from(400_000_000u64), &Value::from(5e8)).unwrap());
        assert!(apply(Op::Lt, &Value::from("x"), &Value::from(1)).is_err());
        assert!(
            apply(
                Op::Contains,
                &Value::from("INSERT INTO"),
                &Value::from("INSERT")
            )
            .unwrap()
        );
        assert_eq!(duration_ns("500ms"), Some(5e8));
        assert_eq!(duration_ns("1.5s"), Some(1.5e9));
        assert_eq!(duration_ns("12"), None);
    }
}

//! GrowthBook's targeting conditions (a MongoDB-like language), compiled once.
//!
//! [`Condition::compile`] turns the JSON into a tree of resolved paths,
//! pre-lowercased strings, compiled regexes and padded version strings, so
//! evaluation does no parsing. What the reference SDK would reject at run
//! time (an invalid regex, an unknown operator) evaluates to `false`, as the
//! spec says, and is reported once as a [`ConditionWarning`] at compile time.

use std::cmp::Ordering;
use std::collections::HashMap;

use regex::{Regex, RegexBuilder};
use serde_json::{Map, Value};

use crate::attr::{self, AttrId};
use crate::js::{
    NULL, eq_lowercase, js_compare, js_string_eq, json_eq, strict_eq, to_js_string, to_number,
    truthy,
};

/// Saved groups: a group id and the attribute values that belong to it
/// (`$inGroup` / `$notInGroup`).
pub type SavedGroups = HashMap<String, Vec<Value>>;

/// A problem found while compiling a condition. The condition still
/// compiles; the offending part evaluates to `false`, as the spec says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionWarning {
    /// Where in the condition, as a JSON path such as `$.country.$regex`.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for ConditionWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// A compiled targeting condition.
///
/// ```
/// use flightdeck_experiments::{Condition, SavedGroups};
/// use serde_json::json;
/// let (cond, warnings) = Condition::compile(&json!({
///     "country": {"$in": ["US", "CA"]},
///     "age": {"$gt": 18},
/// }));
/// assert!(warnings.is_empty());
/// let groups = SavedGroups::new();
/// assert!(cond.eval(&json!({"country": "US", "age": 30}), &groups));
/// assert!(!cond.eval(&json!({"country": "FR", "age": 30}), &groups));
/// ```
#[derive(Debug, Clone)]
pub struct Condition {
    clauses: Vec<Clause>,
}

#[derive(Debug, Clone)]
enum Clause {
    Or(Vec<Condition>),
    Nor(Vec<Condition>),
    And(Vec<Condition>),
    Not(Box<Condition>),
    Path(Path, CondValue),
    /// A path clause with a shortcut for the value types targeting
    /// usually meets; any other type goes through the general `CondValue`.
    Fast(Path, Fast, CondValue),
    /// Malformed input: always false.
    Never,
}

#[derive(Debug, Clone)]
struct Path {
    literal: String,
    parts: Vec<String>,
    // The first part's interned id, to find it in a context's attributes.
    first: AttrId,
}

impl Path {
    fn new(literal: &str) -> Self {
        let parts: Vec<String> = literal.split('.').map(str::to_owned).collect();
        Self {
            literal: literal.to_owned(),
            first: attr::intern(&parts[0]),
            parts,
        }
    }

    /// GrowthBook's `getPath`: a missing step reads as `null`.
    fn get<'v>(&self, root: Root<'v>) -> &'v Value {
        let (mut current, parts) = match root {
            Root::Value(v) => (v, &self.parts[..]),
            Root::Field(name, v) => match self.parts.split_first() {
                Some((first, rest)) if first == name => (v, rest),
                _ => return &NULL,
            },
            Root::Context(ctx) => match ctx.top_level(self.first, &self.parts[0]) {
                Some(v) => (v, &self.parts[1..]),
                None => return &NULL,
            },
        };
        for part in parts {
            current = match current {
                Value::Object(map) => match map.get(part) {
                    Some(v) => v,
                    None => return &NULL,
                },
                Value::Array(items) => {
                    match part.parse::<usize>().ok().and_then(|i| items.get(i)) {
                        Some(v) => v,
                        None => return &NULL,
                    }
                }
                _ => return &NULL,
            };
        }
        current
    }
}

/// What a condition is evaluated against: a JSON value, or an object with
/// one field that is never built (`{"value": v}` for prerequisites).
#[derive(Debug, Clone, Copy)]
enum Root<'v> {
    Value(&'v Value),
    Field(&'v str, &'v Value),
    Context(&'v crate::Context),
}

#[derive(Debug, Clone)]
enum CondValue {
    Str { exact: String },
    Num(f64),
    Bool(bool),
    Null,
    Json(Value),
    Ops(Vec<Op>),
}

#[derive(Debug, Clone)]
enum Op {
    Version(Ordering, bool, String),
    Eq(Value),
    Ne(Value),
    Lt(Value),
    Lte(Value),
    Gt(Value),
    Gte(Value),
    Exists(bool),
    In(Vec<Value>, bool),
    Nin(Vec<Value>, bool),
    InGroup(String, bool),
    Not(Box<CondValue>),
    Size(Box<CondValue>),
    ElemMatch(ElemMatch),
    All(Vec<CondValue>, bool),
    Regex(Regex),
    Type(String),
    /// An operator whose argument is unusable (a `$in` without an array, an
    /// invalid regex) or an unknown operator: false, as the spec says.
    False,
}

/// The common single-operator clauses, evaluated without JavaScript
/// coercion when the attribute has the type that makes coercion moot.
#[derive(Debug, Clone)]
enum Fast {
    /// `$in` / `$nin` over strings only, or an exact string: a string
    /// attribute is (not) among them.
    Strings(Box<[Box<str>]>, bool),
    /// `$eq`, `$ne`, `$gt`, `$gte`, `$lt`, `$lte` with a number, or an
    /// exact number: a number attribute compared as `f64`.
    Number(NumOp, f64),
}

#[derive(Debug, Clone, Copy)]
enum NumOp {
    Eq,
    Ne,
    Gt,
    Gte,
    Lt,
    Lte,
}

impl Fast {
    /// The shortcut for `cv`, if it has one.
    fn of(cv: &CondValue) -> Option<Self> {
        let strings = |items: &[Value], negate: bool| {
            let set: Option<Box<[Box<str>]>> =
                items.iter().map(|v| v.as_str().map(Box::from)).collect();
            set.map(|set| Fast::Strings(set, negate))
        };
        let number = |op: NumOp, v: &Value| v.as_f64().map(|n| Fast::Number(op, n));
        match cv {
            CondValue::Str { exact } => {
                Some(Fast::Strings(Box::new([exact.as_str().into()]), false))
            }
            CondValue::Num(n) if !n.is_nan() => Some(Fast::Number(NumOp::Eq, *n)),
            CondValue::Ops(ops) => match ops.as_slice() {
                [Op::In(items, false)] => strings(items, false),
                [Op::Nin(items, false)] => strings(items, true),
                [Op::Eq(v)] => number(NumOp::Eq, v),
                [Op::Ne(v)] => number(NumOp::Ne, v),
                [Op::Gt(v)] => number(NumOp::Gt, v),
                [Op::Gte(v)] => number(NumOp::Gte, v),
                [Op::Lt(v)] => number(NumOp::Lt, v),
                [Op::Lte(v)] => number(NumOp::Lte, v),
                _ => None,
            },
            _ => None,
        }
    }

    /// The outcome for `actual`: the shortcut's when its type allows, else
    /// the general evaluation `general`'s.
    #[inline(always)]
    fn eval_or(&self, actual: &Value, general: &CondValue, groups: &SavedGroups) -> bool {
        match self.eval(actual) {
            Some(b) => b,
            None => general.eval(actual, groups, false),
        }
    }

    /// The outcome for `actual`, or `None` when its type needs the general
    /// evaluation.
    #[inline(always)]
    fn eval(&self, actual: &Value) -> Option<bool> {
        match (self, actual) {
            (Fast::Strings(set, negate), Value::String(s)) => {
                let s = s.as_bytes();
                Some(set.iter().any(|x| short_eq(x.as_bytes(), s)) != *negate)
            }
            (Fast::Number(op, rhs), Value::Number(n)) => {
                let n = n.as_f64()?;
                Some(match op {
                    NumOp::Eq => n == *rhs,
                    NumOp::Ne => n != *rhs,
                    NumOp::Gt => n > *rhs,
                    NumOp::Gte => n >= *rhs,
                    NumOp::Lt => n < *rhs,
                    NumOp::Lte => n <= *rhs,
                })
            }
            _ => None,
        }
    }
}

/// Byte equality without a call into `memcmp` or a loop for the short
/// strings targeting compares (country codes, plan names): up to 16 bytes
/// are compared as two overlapping words, so the work does not depend on the
/// length beyond picking the word size.
#[inline]
fn short_eq(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let u64_at = |s: &[u8], i: usize| {
        s.get(i..i + 8)
            .map(|w| u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]))
    };
    let u32_at = |s: &[u8], i: usize| {
        s.get(i..i + 4)
            .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
    };
    match n {
        0 => true,
        // Three bytes cover lengths 1 to 3, with overlap.
        1..=3 => a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1],
        4..=7 => u32_at(a, 0) == u32_at(b, 0) && u32_at(a, n - 4) == u32_at(b, n - 4),
        8..=16 => u64_at(a, 0) == u64_at(b, 0) && u64_at(a, n - 8) == u64_at(b, n - 8),
        _ => a == b,
    }
}

#[derive(Debug, Clone)]
enum ElemMatch {
    Value(Box<CondValue>),
    Condition(Box<Condition>),
}

struct Compiler {
    warnings: Vec<ConditionWarning>,
    // How many conditions enclose the one being compiled.
    depth: usize,
    // Whether some part was nested past the limit.
    too_deep: bool,
}

/// How deep conditions may nest (`$not`, `$and`, `$or`, `$nor`,
/// `$elemMatch`): compiling and evaluating recurse once per level, so a
/// limit keeps a hostile condition from overflowing the stack. Real
/// targeting nests a handful of levels.
pub const MAX_CONDITION_DEPTH: usize = 32;

/// Where in a condition the compiler is, as a chain on the stack: rendered
/// only for a warning, so compiling allocates no path strings.
#[derive(Clone, Copy)]
enum At<'p> {
    Root,
    Key(&'p At<'p>, &'p str),
    Index(&'p At<'p>, usize),
}

impl At<'_> {
    fn render(&self) -> String {
        match self {
            At::Root => "$".to_owned(),
            At::Key(parent, k) => format!("{}.{k}", parent.render()),
            At::Index(parent, i) => format!("{}[{i}]", parent.render()),
        }
    }
}

impl Compiler {
    /// The compiled condition, or one that never passes when part of it was
    /// too deep (a cut-off part under `$not` would otherwise pass).
    fn finish(self, cond: Condition) -> (Condition, Vec<ConditionWarning>) {
        if self.too_deep {
            let never = Condition {
                clauses: vec![Clause::Never],
            };
            return (never, self.warnings);
        }
        (cond, self.warnings)
    }

    fn warn(&mut self, at: &At<'_>, message: impl Into<String>) {
        self.warnings.push(ConditionWarning {
            path: at.render(),
            message: message.into(),
        });
    }

    fn condition(&mut self, v: &Value, at: &At<'_>) -> Condition {
        if self.depth >= MAX_CONDITION_DEPTH {
            self.too_deep = true;
            self.warn(
                at,
                format!("conditions nested deeper than {MAX_CONDITION_DEPTH} levels"),
            );
            return Condition {
                clauses: vec![Clause::Never],
            };
        }
        let Value::Object(map) = v else {
            self.warn(at, format!("a condition must be an object, found {v}"));
            return Condition {
                clauses: vec![Clause::Never],
            };
        };
        self.object(map, at)
    }

    fn object(&mut self, map: &Map<String, Value>, at: &At<'_>) -> Condition {
        self.depth += 1;
        let clauses = map
            .iter()
            .map(|(k, v)| {
                let here = At::Key(at, k);
                match k.as_str() {
                    "$or" => Clause::Or(self.list(v, &here)),
                    "$nor" => Clause::Nor(self.list(v, &here)),
                    "$and" => Clause::And(self.list(v, &here)),
                    "$not" => Clause::Not(Box::new(self.condition(v, &here))),
                    path => {
                        let cv = self.value(v, &here);
                        match Fast::of(&cv) {
                            Some(fast) => Clause::Fast(Path::new(path), fast, cv),
                            None => Clause::Path(Path::new(path), cv),
                        }
                    }
                }
            })
            .collect();
        self.depth -= 1;
        Condition { clauses }
    }

    fn list(&mut self, v: &Value, at: &At<'_>) -> Vec<Condition> {
        match v {
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, c)| self.condition(c, &At::Index(at, i)))
                .collect(),
            other => {
                self.warn(
                    at,
                    format!("expected an array of conditions, found {other}"),
                );
                vec![Condition {
                    clauses: vec![Clause::Never],
                }]
            }
        }
    }

    fn value(&mut self, v: &Value, at: &At<'_>) -> CondValue {
        match v {
            Value::String(s) => CondValue::Str { exact: s.clone() },
            Value::Number(n) => CondValue::Num(n.as_f64().unwrap_or(f64::NAN)),
            Value::Bool(b) => CondValue::Bool(*b),
            Value::Null => CondValue::Null,
            Value::Object(map) if is_operator_object(map) => {
                if self.depth >= MAX_CONDITION_DEPTH {
                    self.too_deep = true;
                    self.warn(
                        at,
                        format!("conditions nested deeper than {MAX_CONDITION_DEPTH} levels"),
                    );
                    return CondValue::Ops(vec![Op::False]);
                }
                self.depth += 1;
                let ops = map
                    .iter()
                    .map(|(op, arg)| self.op(op, arg, &At::Key(at, op)))
                    .collect();
                self.depth -= 1;
                CondValue::Ops(ops)
            }
            other => CondValue::Json(other.clone()),
        }
    }

    fn array_arg(&mut self, arg: &Value, at: &At<'_>) -> Option<Vec<Value>> {
        match arg {
            Value::Array(items) => Some(items.clone()),
            other => {
                self.warn(at, format!("expected an array, found {other}"));
                None
            }
        }
    }

    fn op(&mut self, op: &str, arg: &Value, at: &At<'_>) -> Op {
        let version = |ord: Ordering, eq: bool| Op::Version(ord, eq, padded_version(arg));
        match op {
            "$veq" => version(Ordering::Equal, true),
            "$vne" => version(Ordering::Equal, false),
            "$vgt" => version(Ordering::Greater, false),
            "$vgte" => version(Ordering::Greater, true),
            "$vlt" => version(Ordering::Less, false),
            "$vlte" => version(Ordering::Less, true),
            "$eq" => Op::Eq(arg.clone()),
            "$ne" => Op::Ne(arg.clone()),
            "$lt" => Op::Lt(arg.clone()),
            "$lte" => Op::Lte(arg.clone()),
            "$gt" => Op::Gt(arg.clone()),
            "$gte" => Op::Gte(arg.clone()),
            "$exists" => Op::Exists(truthy(arg)),
            "$in" | "$ini" | "$nin" | "$nini" => match self.array_arg(arg, at) {
                Some(items) => {
                    let insensitive = op.ends_with('i') && op != "$in";
                    if op.starts_with("$in") {
                        Op::In(items, insensitive)
                    } else {
                        Op::Nin(items, insensitive)
                    }
                }
                None => Op::False,
            },
            "$inGroup" | "$notInGroup" => {
                Op::InGroup(to_js_string(arg).into_owned(), op == "$inGroup")
            }
            "$not" => Op::Not(Box::new(self.value(arg, at))),
            "$size" => Op::Size(Box::new(self.value(arg, at))),
            "$elemMatch" => match arg {
                Value::Object(map) if is_operator_object(map) => {
                    Op::ElemMatch(ElemMatch::Value(Box::new(self.value(arg, at))))
                }
                _ => Op::ElemMatch(ElemMatch::Condition(Box::new(self.condition(arg, at)))),
            },
            "$all" | "$alli" => match self.array_arg(arg, at) {
                Some(items) => Op::All(
                    items
                        .iter()
                        .enumerate()
                        .map(|(i, v)| self.value(v, &At::Index(at, i)))
                        .collect(),
                    op == "$alli",
                ),
                None => Op::False,
            },
            "$regex" | "$regexi" => {
                let pattern = to_js_string(arg);
                match RegexBuilder::new(&pattern)
                    .case_insensitive(op == "$regexi")
                    .build()
                {
                    Ok(re) => Op::Regex(re),
                    Err(e) => {
                        self.warn(at, format!("invalid regex {pattern:?}: {e}"));
                        Op::False
                    }
                }
            }
            "$type" => Op::Type(to_js_string(arg).into_owned()),
            unknown => {
                self.warn(at, format!("unknown operator {unknown}"));
                Op::False
            }
        }
    }
}

fn is_operator_object(map: &Map<String, Value>) -> bool {
    !map.is_empty() && map.keys().all(|k| k.starts_with('$'))
}

/// GrowthBook's `paddedVersionString`: versions compare as strings once
/// each numeric part is left-padded to five places and a release sorts
/// after its pre-releases.
pub(crate) fn padded_version(v: &Value) -> String {
    let owned;
    let input: &str = match v {
        Value::Number(_) => {
            owned = to_js_string(v).into_owned();
            &owned
        }
        Value::String(s) if !s.is_empty() => s,
        _ => "0",
    };
    let input = input.strip_prefix('v').unwrap_or(input);
    let input = input.split('+').next().unwrap_or("");
    let mut parts: Vec<&str> = input.split(['-', '.']).collect();
    if parts.len() == 3 {
        parts.push("~");
    }
    let mut out = String::with_capacity(input.len() + 16);
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            out.push('-');
        }
        if !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()) {
            for _ in part.len()..5 {
                out.push(' ');
            }
        }
        out.push_str(part);
    }
    out
}

impl Condition {
    /// Compiles a condition, returning it with every problem found.
    pub fn compile(v: &Value) -> (Self, Vec<ConditionWarning>) {
        let mut c = Compiler {
            warnings: Vec::new(),
            depth: 0,
            too_deep: false,
        };
        let cond = c.condition(v, &At::Root);
        c.finish(cond)
    }

    /// [`compile`](Self::compile) for a condition already known to be an
    /// object.
    pub fn compile_object(map: &Map<String, Value>) -> (Self, Vec<ConditionWarning>) {
        let mut c = Compiler {
            warnings: Vec::new(),
            depth: 0,
            too_deep: false,
        };
        let cond = c.object(map, &At::Root);
        c.finish(cond)
    }

    /// The condition that always passes (`{}`).
    pub fn always() -> Self {
        Self {
            clauses: Vec::new(),
        }
    }

    /// Whether the condition passes for `root` (the attributes object).
    pub fn eval(&self, root: &Value, groups: &SavedGroups) -> bool {
        self.eval_root(Root::Value(root), groups)
    }

    /// Whether the condition passes for the object `{field: value}`,
    /// without building it (prerequisites test `{"value": <flag value>}`).
    pub fn eval_field(&self, field: &str, value: &Value, groups: &SavedGroups) -> bool {
        self.eval_root(Root::Field(field, value), groups)
    }

    /// Whether the condition passes for `ctx`'s attributes.
    ///
    /// The clause targeting usually has (one top-level attribute, a string
    /// or number shortcut) is evaluated in this loop, with the attribute
    /// found by its interned id; every other clause takes the general path.
    pub fn eval_context(&self, ctx: &crate::Context, groups: &SavedGroups) -> bool {
        for clause in &self.clauses {
            let pass = match clause {
                Clause::Fast(path, fast, cv) if path.parts.len() == 1 => {
                    let actual = ctx.top_level(path.first, &path.parts[0]).unwrap_or(&NULL);
                    fast.eval_or(actual, cv, groups)
                }
                other => Self::eval_clause(other, Root::Context(ctx), groups),
            };
            if !pass {
                return false;
            }
        }
        true
    }

    fn eval_root(&self, root: Root<'_>, groups: &SavedGroups) -> bool {
        self.clauses
            .iter()
            .all(|clause| Self::eval_clause(clause, root, groups))
    }

    fn eval_clause(clause: &Clause, root: Root<'_>, groups: &SavedGroups) -> bool {
        match clause {
            Clause::Or(list) => list.is_empty() || list.iter().any(|c| c.eval_root(root, groups)),
            Clause::Nor(list) => {
                !(list.is_empty() || list.iter().any(|c| c.eval_root(root, groups)))
            }
            Clause::And(list) => list.iter().all(|c| c.eval_root(root, groups)),
            Clause::Not(c) => !c.eval_root(root, groups),
            Clause::Path(path, cv) => cv.eval(path.get(root), groups, false),
            Clause::Fast(path, fast, cv) => fast.eval_or(path.get(root), cv, groups),
            Clause::Never => false,
        }
    }

    /// The attribute paths the condition reads (for documentation and
    /// sticky-bucket attribute discovery).
    pub fn paths(&self) -> Vec<&str> {
        let mut out = Vec::new();
        for clause in &self.clauses {
            match clause {
                Clause::Or(l) | Clause::Nor(l) | Clause::And(l) => {
                    l.iter().for_each(|c| out.extend(c.paths()));
                }
                Clause::Not(c) => out.extend(c.paths()),
                Clause::Path(p, _) | Clause::Fast(p, _, _) => out.push(p.literal.as_str()),
                Clause::Never => {}
            }
        }
        out
    }
}

impl CondValue {
    fn eval(&self, actual: &Value, groups: &SavedGroups, insensitive: bool) -> bool {
        match self {
            CondValue::Str { exact } => {
                if insensitive {
                    match actual {
                        Value::String(s) => eq_lowercase(s, exact),
                        other => eq_lowercase(&to_js_string(other), exact),
                    }
                } else {
                    js_string_eq(actual, exact)
                }
            }
            CondValue::Num(n) => to_number(actual) == *n,
            CondValue::Bool(b) => !actual.is_null() && truthy(actual) == *b,
            CondValue::Null => actual.is_null(),
            CondValue::Json(expected) => json_eq(actual, expected),
            CondValue::Ops(ops) => ops.iter().all(|op| op.eval(actual, groups)),
        }
    }
}

fn is_in(actual: &Value, expected: &[Value], insensitive: bool) -> bool {
    let same = |a: &Value, b: &Value| {
        if insensitive && let (Value::String(x), Value::String(y)) = (a, b) {
            return eq_lowercase(x, y);
        }
        strict_eq(a, b)
    };
    match actual {
        Value::Array(items) => items.iter().any(|el| expected.iter().any(|e| same(el, e))),
        _ => expected.iter().any(|e| same(actual, e)),
    }
}

impl Op {
    fn eval(&self, actual: &Value, groups: &SavedGroups) -> bool {
        match self {
            Op::Version(ord, eq, expected) => {
                let got = padded_version(actual);
                let c = got.as_str().cmp(expected.as_str());
                match (ord, eq) {
                    (Ordering::Equal, true) => c == Ordering::Equal,
                    (Ordering::Equal, false) => c != Ordering::Equal,
                    (o, true) => c == *o || c == Ordering::Equal,
                    (o, false) => c == *o,
                }
            }
            Op::Eq(e) => strict_eq(actual, e),
            Op::Ne(e) => !strict_eq(actual, e),
            Op::Lt(e) => js_compare(actual, e) == Some(Ordering::Less),
            Op::Lte(e) => matches!(
                js_compare(actual, e),
                Some(Ordering::Less | Ordering::Equal)
            ),
            Op::Gt(e) => js_compare(actual, e) == Some(Ordering::Greater),
            Op::Gte(e) => matches!(
                js_compare(actual, e),
                Some(Ordering::Greater | Ordering::Equal)
            ),
            Op::Exists(want) => actual.is_null() != *want,
            Op::In(items, ci) => is_in(actual, items, *ci),
            Op::Nin(items, ci) => !is_in(actual, items, *ci),
            Op::InGroup(group, positive) => {
                let members = groups.get(group).map(Vec::as_slice).unwrap_or(&[]);
                is_in(actual, members, false) == *positive
            }
            Op::Not(cv) => !cv.eval(actual, groups, false),
            Op::Size(cv) => match actual {
                Value::Array(items) => cv.eval(&Value::from(items.len()), groups, false),
                _ => false,
            },
            Op::ElemMatch(m) => match actual {
                Value::Array(items) => items.iter().any(|el| {
                    truthy(el)
                        && match m {
                            ElemMatch::Value(cv) => cv.eval(el, groups, false),
                            ElemMatch::Condition(c) => c.eval(el, groups),
                        }
                }),
                _ => false,
            },
            Op::All(expected, ci) => match actual {
                Value::Array(items) => expected
                    .iter()
                    .all(|cv| items.iter().any(|el| cv.eval(el, groups, *ci))),
                _ => false,
            },
            Op::Regex(re) => match actual {
                Value::String(s) => re.is_match(s),
                other => re.is_match(&to_js_string(other)),
            },
            Op::Type(t) => {
                let got = match actual {
                    Value::Null => "null",
                    Value::Array(_) => "array",
                    Value::String(_) => "string",
                    Value::Number(_) => "number",
                    Value::Bool(_) => "boolean",
                    Value::Object(_) => "object",
                };
                got == t
            }
            Op::False => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_eq_is_byte_equality_at_every_length() {
        for n in 0..=20usize {
            let a: Vec<u8> = (0..n as u8).map(|i| b'a' + i).collect();
            assert!(short_eq(&a, &a.clone()), "{n}");
            for at in 0..n {
                let mut b = a.clone();
                b[at] ^= 1;
                assert!(!short_eq(&a, &b), "{n} differing at {at}");
            }
            let longer = [a.as_slice(), b"x"].concat();
            assert!(!short_eq(&a, &longer), "{n} against {}", n + 1);
        }
    }
    use serde_json::json;

    #[test]
    fn invalid_regex_and_unknown_operator_are_reported_once_and_fail() {
        let (c, w) = Condition::compile(&json!({"a": {"$regex": "("}, "b": {"$regx": "x"}}));
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].to_string().contains("$.a.$regex"), "{}", w[0]);
        assert!(w[1].message.contains("$regx"));
        assert!(!c.eval(&json!({"a": "(", "b": "x"}), &SavedGroups::new()));
    }

    #[test]
    fn contexts_built_before_a_condition_find_its_new_attributes() {
        // The names are new to the interner: the context is built before
        // they have ids, the conditions after.
        let ctx = crate::Context::new(json!({"ctx-first-a": "x", "ctx-first-b": 3}))
            .with_attribute("ctx-first-c", json!(true));
        let groups = SavedGroups::new();
        let (c, _) = Condition::compile(
            &json!({"ctx-first-a": "x", "ctx-first-b": {"$gt": 2}, "ctx-first-c": true}),
        );
        assert!(c.eval_context(&ctx, &groups));
        let (absent, _) = Condition::compile(&json!({"ctx-first-d": {"$exists": true}}));
        assert!(!absent.eval_context(&ctx, &groups));
        // Built after: found by id, and an id-less absence is still absent.
        let later = crate::Context::new(json!({"ctx-first-a": "y", "ctx-first-d": 1}));
        assert!(!c.eval_context(&later, &groups));
        assert!(absent.eval_context(&later, &groups));
        let changed = later.with_attribute("ctx-first-a", json!("x"));
        let (only_a, _) = Condition::compile(&json!({"ctx-first-a": "x"}));
        assert!(only_a.eval_context(&changed, &groups));
    }

    #[test]
    fn shortcuts_agree_with_the_general_evaluation() {
        let conditions = [
            json!("US"),
            json!(""),
            json!(10),
            json!(10.5),
            json!({"$in": ["US", "CA", ""]}),
            json!({"$nin": ["free", "10"]}),
            json!({"$in": []}),
            json!({"$eq": 10}),
            json!({"$ne": 10}),
            json!({"$gt": 18}),
            json!({"$gte": 18}),
            json!({"$lt": -1.5}),
            json!({"$lte": 0}),
        ];
        let actuals = [
            json!("US"),
            json!("us"),
            json!(""),
            json!("10"),
            json!("free"),
            json!("18.5"),
            json!(10),
            json!(10.5),
            json!(18),
            json!(-2),
            json!(0),
            json!(true),
            json!(false),
            json!(null),
            json!(["US"]),
            json!([10]),
            json!([]),
            json!({"a": 1}),
        ];
        let groups = SavedGroups::new();
        let mut shortcut_used = 0;
        for c in &conditions {
            let mut compiler = Compiler {
                warnings: Vec::new(),
                depth: 0,
                too_deep: false,
            };
            let cv = compiler.value(c, &At::Root);
            let fast = Fast::of(&cv).unwrap_or_else(|| panic!("no shortcut for {c}"));
            for a in &actuals {
                if let Some(b) = fast.eval(a) {
                    shortcut_used += 1;
                    assert_eq!(b, cv.eval(a, &groups, false), "{c} against {a}");
                }
            }
        }
        assert!(shortcut_used > 40, "{shortcut_used}");
    }

    #[test]
    fn conditions_nested_past_the_limit_fail_closed_with_a_warning() {
        // Wrapped by hand: `json!` would copy the inner value recursively.
        let not = |v: Value| {
            let mut m = Map::new();
            m.insert("$not".to_owned(), v);
            Value::Object(m)
        };
        let mut deep = json!({"country": "US"});
        let mut deep_value = json!("US");
        for _ in 0..2_000 {
            deep = not(deep);
            deep_value = not(deep_value);
        }
        let mut wrapped = Map::new();
        wrapped.insert("country".to_owned(), deep_value);
        let groups = SavedGroups::new();
        let ctx = json!({"country": "US"});
        for cond in [deep, Value::Object(wrapped)] {
            let (c, warnings) = Condition::compile(&cond);
            assert_eq!(warnings.len(), 1, "{warnings:?}");
            assert!(
                warnings[0].message.contains("deeper than 32"),
                "{warnings:?}"
            );
            assert!(!c.eval(&ctx, &groups));
            // Dropping the 2,000-deep value recurses in serde_json: leak it
            // rather than test serde_json's stack here.
            std::mem::forget(cond);
        }
        // Just within the limit compiles and evaluates.
        let mut ok = json!({"country": "US"});
        for _ in 0..15 {
            ok = json!({ "$not": { "$not": ok } });
        }
        let (c, warnings) = Condition::compile(&ok);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert!(c.eval(&ctx, &groups));
    }

    #[test]
    fn versions_pad_numeric_parts() {
        assert_eq!(
            padded_version(&json!("v1.2.3+build")),
            "    1-    2-    3-~"
        );
        assert!(padded_version(&json!("1.0.0")) > padded_version(&json!("1.0.0-beta")));
        assert_eq!(padded_version(&json!(null)), "    0");
    }
}

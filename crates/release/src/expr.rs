//! The condition expressions Argo Rollouts' docs use (expr-lang), for
//! `successCondition` and `failureCondition`: `result[0] >= 0.95`,
//! `len(result) == 0 || result[0] < 0.01`, `isNaN(result)`,
//! `default(result, 0) < 5`, `asFloat(result.value) > 1`, `result.Status
//! == 200`, with `&&`/`and`, `||`/`or`, `!`/`not`, comparisons, `+ - * /`
//! and parentheses.
//!
//! Hand-written: no maintained Rust crate evaluates expr-lang, and the
//! subset is small. Evaluation errors (an index past the end, a comparison
//! of a string with a number) are errors, as in Argo, so a measurement on
//! `[]` with `result[0]` is an Error, not a Failure.

use serde_json::Value;

/// The most bytes a condition may have.
pub const MAX_EXPR_BYTES: usize = 4096;
const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64),
    Str(String),
    Ident(String),
    Op(&'static str),
}

fn lex(s: &str) -> Result<Vec<Tok>, String> {
    if s.len() > MAX_EXPR_BYTES {
        return Err(format!(
            "the condition is longer than {MAX_EXPR_BYTES} bytes"
        ));
    }
    let b = s.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() {
            let start = i;
            while i < b.len()
                && (b[i].is_ascii_digit()
                    || b[i] == b'.'
                    || b[i] == b'e'
                    || b[i] == b'E'
                    || ((b[i] == b'-' || b[i] == b'+') && (b[i - 1] == b'e' || b[i - 1] == b'E')))
            {
                i += 1;
            }
            let t = &s[start..i];
            out.push(Tok::Num(
                t.parse()
                    .map_err(|_| format!("bad number {t:?} at {start}"))?,
            ));
        } else if c == b'"' || c == b'\'' {
            let q = c;
            let start = i;
            i += 1;
            let mut text = String::new();
            while i < b.len() && b[i] != q {
                if b[i] == b'\\' && i + 1 < b.len() {
                    i += 1;
                }
                let ch = s[i..].chars().next().unwrap_or('\u{fffd}');
                text.push(ch);
                i += ch.len_utf8();
            }
            if i >= b.len() {
                return Err(format!("a string starting at {start} is not closed"));
            }
            i += 1;
            out.push(Tok::Str(text));
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push(Tok::Ident(s[start..i].to_owned()));
        } else {
            let two = s.get(i..i + 2).unwrap_or("");
            let op = ["==", "!=", "<=", ">=", "&&", "||"]
                .into_iter()
                .find(|o| *o == two);
            if let Some(op) = op {
                out.push(Tok::Op(op));
                i += 2;
                continue;
            }
            let one = [
                "<", ">", "!", "(", ")", "[", "]", ",", ".", "+", "-", "*", "/",
            ]
            .into_iter()
            .find(|o| o.as_bytes()[0] == c);
            match one {
                Some(op) => {
                    out.push(Tok::Op(op));
                    i += 1;
                }
                None => {
                    return Err(format!(
                        "unexpected character {:?} at {i}",
                        s[i..].chars().next().unwrap_or('?')
                    ));
                }
            }
        }
    }
    Ok(out)
}

/// A parsed condition.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    text: String,
    ast: Node,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Lit(Value),
    Result,
    Index(Box<Node>, Box<Node>),
    Field(Box<Node>, String),
    Call(String, Vec<Node>),
    Not(Box<Node>),
    Neg(Box<Node>),
    Bin(&'static str, Box<Node>, Box<Node>),
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn eat_op(&mut self, op: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Op(o)) if *o == op) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn eat_word(&mut self, w: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Ident(i)) if i == w) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn enter(&mut self) -> Result<(), String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(format!("the condition nests deeper than {MAX_DEPTH}"));
        }
        Ok(())
    }
    fn or(&mut self) -> Result<Node, String> {
        self.enter()?;
        let mut l = self.and()?;
        while self.eat_op("||") || self.eat_word("or") {
            let r = self.and()?;
            l = Node::Bin("||", Box::new(l), Box::new(r));
        }
        self.depth -= 1;
        Ok(l)
    }
    fn and(&mut self) -> Result<Node, String> {
        let mut l = self.cmp()?;
        while self.eat_op("&&") || self.eat_word("and") {
            let r = self.cmp()?;
            l = Node::Bin("&&", Box::new(l), Box::new(r));
        }
        Ok(l)
    }
    fn cmp(&mut self) -> Result<Node, String> {
        let l = self.sum()?;
        for op in ["==", "!=", "<=", ">=", "<", ">"] {
            if self.eat_op(op) {
                let r = self.sum()?;
                return Ok(Node::Bin(op, Box::new(l), Box::new(r)));
            }
        }
        Ok(l)
    }
    fn sum(&mut self) -> Result<Node, String> {
        let mut l = self.product()?;
        loop {
            let op = if self.eat_op("+") {
                "+"
            } else if self.eat_op("-") {
                "-"
            } else {
                return Ok(l);
            };
            let r = self.product()?;
            l = Node::Bin(op, Box::new(l), Box::new(r));
        }
    }
    fn product(&mut self) -> Result<Node, String> {
        let mut l = self.unary()?;
        loop {
            let op = if self.eat_op("*") {
                "*"
            } else if self.eat_op("/") {
                "/"
            } else {
                return Ok(l);
            };
            let r = self.unary()?;
            l = Node::Bin(op, Box::new(l), Box::new(r));
        }
    }
    fn unary(&mut self) -> Result<Node, String> {
        if self.eat_op("!") || self.eat_word("not") {
            self.enter()?;
            let n = Node::Not(Box::new(self.unary()?));
            self.depth -= 1;
            return Ok(n);
        }
        if self.eat_op("-") {
            self.enter()?;
            let n = Node::Neg(Box::new(self.unary()?));
            self.depth -= 1;
            return Ok(n);
        }
        self.postfix()
    }
    fn postfix(&mut self) -> Result<Node, String> {
        let mut n = self.primary()?;
        loop {
            if self.eat_op("[") {
                let i = self.or()?;
                if !self.eat_op("]") {
                    return Err("expected ]".into());
                }
                n = Node::Index(Box::new(n), Box::new(i));
            } else if self.eat_op(".") {
                match self.toks.get(self.pos).cloned() {
                    Some(Tok::Ident(f)) => {
                        self.pos += 1;
                        n = Node::Field(Box::new(n), f);
                    }
                    _ => return Err("expected a field name after .".into()),
                }
            } else {
                return Ok(n);
            }
        }
    }
    fn primary(&mut self) -> Result<Node, String> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        match t {
            Some(Tok::Num(v)) => Ok(Node::Lit(Value::from(v))),
            Some(Tok::Str(s)) => Ok(Node::Lit(Value::from(s))),
            Some(Tok::Op("(")) => {
                let n = self.or()?;
                if !self.eat_op(")") {
                    return Err("expected )".into());
                }
                Ok(n)
            }
            Some(Tok::Ident(id)) => match id.as_str() {
                "true" => Ok(Node::Lit(Value::Bool(true))),
                "false" => Ok(Node::Lit(Value::Bool(false))),
                "nil" => Ok(Node::Lit(Value::Null)),
                "result" => Ok(Node::Result),
                "len" | "isNaN" | "isInf" | "isNil" | "default" | "asInt" | "asFloat" => {
                    if !self.eat_op("(") {
                        return Err(format!("expected ( after {id}"));
                    }
                    let mut args = Vec::new();
                    if !self.eat_op(")") {
                        loop {
                            args.push(self.or()?);
                            if self.eat_op(")") {
                                break;
                            }
                            if !self.eat_op(",") {
                                return Err(format!("expected , or ) in the arguments of {id}"));
                            }
                        }
                    }
                    let want = if id == "default" { 2 } else { 1 };
                    if args.len() != want {
                        return Err(format!("{id} takes {want} argument(s), got {}", args.len()));
                    }
                    Ok(Node::Call(id, args))
                }
                other => Err(format!(
                    "unknown name {other:?} (only result, true, false, nil and len, isNaN, isInf, isNil, default, asInt, asFloat)"
                )),
            },
            Some(t) => Err(format!("unexpected {t:?}")),
            None => Err("the condition ends too early".into()),
        }
    }
}

fn num(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) if s == "NaN" => Some(f64::NAN),
        Value::String(s) if s == "+Inf" || s == "Inf" || s == "Infinity" => Some(f64::INFINITY),
        Value::String(s) if s == "-Inf" || s == "-Infinity" => Some(f64::NEG_INFINITY),
        _ => None,
    }
}

/// A value during evaluation: JSON, or a float JSON cannot hold.
#[derive(Debug, Clone)]
enum V {
    J(Value),
    F(f64),
}

impl V {
    fn f(&self) -> Option<f64> {
        match self {
            V::F(x) => Some(*x),
            V::J(v) => num(v),
        }
    }
    fn truthy(&self) -> Result<bool, String> {
        match self {
            V::J(Value::Bool(b)) => Ok(*b),
            other => Err(format!("expected a boolean, got {}", other.describe())),
        }
    }
    fn describe(&self) -> String {
        match self {
            V::F(x) => x.to_string(),
            V::J(v) => flightdeck_obs_core::shown(&v.to_string()),
        }
    }
}

impl Condition {
    /// Parses a condition.
    ///
    /// # Errors
    ///
    /// A message naming the problem and where it is.
    pub fn parse(text: &str) -> Result<Self, String> {
        let toks = lex(text)?;
        if toks.is_empty() {
            return Err("the condition is empty".into());
        }
        let mut p = Parser {
            toks,
            pos: 0,
            depth: 0,
        };
        let ast = p.or()?;
        if p.pos < p.toks.len() {
            return Err(format!(
                "unexpected {:?} after the condition",
                p.toks[p.pos]
            ));
        }
        Ok(Self {
            text: text.to_owned(),
            ast,
        })
    }

    /// The condition's text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Evaluates the condition with `result` bound to the provider's value.
    ///
    /// # Errors
    ///
    /// A message when it cannot be evaluated (an index past the end, a
    /// non-boolean result, a comparison of different types).
    pub fn eval(&self, result: &Value) -> Result<bool, String> {
        eval(&self.ast, result)?.truthy()
    }
}

fn eval(n: &Node, result: &Value) -> Result<V, String> {
    Ok(match n {
        Node::Lit(v) => V::J(v.clone()),
        Node::Result => V::J(result.clone()),
        Node::Index(a, i) => {
            let a = eval(a, result)?;
            let i = eval(i, result)?;
            match (&a, i.f()) {
                (V::J(Value::Array(xs)), Some(k)) if k >= 0.0 && k.fract() == 0.0 => {
                    let k = k as usize;
                    V::J(xs.get(k).cloned().ok_or_else(|| {
                        format!("index {k} is out of range for a list of {}", xs.len())
                    })?)
                }
                _ => {
                    return Err(format!(
                        "cannot index {} with {}",
                        a.describe(),
                        i.describe()
                    ));
                }
            }
        }
        Node::Field(a, f) => match eval(a, result)? {
            V::J(Value::Object(m)) => V::J(m.get(f).cloned().unwrap_or(Value::Null)),
            other => return Err(format!("cannot read field {f} of {}", other.describe())),
        },
        Node::Call(name, args) => {
            let a = eval(&args[0], result)?;
            match name.as_str() {
                "len" => match &a {
                    V::J(Value::Array(xs)) => V::F(xs.len() as f64),
                    V::J(Value::String(s)) => V::F(s.chars().count() as f64),
                    V::J(Value::Object(m)) => V::F(m.len() as f64),
                    other => return Err(format!("len of {}", other.describe())),
                },
                "isNaN" => V::J(Value::Bool(first_num(&a).is_some_and(f64::is_nan))),
                "isInf" => V::J(Value::Bool(first_num(&a).is_some_and(f64::is_infinite))),
                "isNil" => V::J(Value::Bool(matches!(a, V::J(Value::Null)))),
                "default" => match a {
                    V::J(Value::Null) => eval(&args[1], result)?,
                    V::J(Value::Array(ref xs)) if xs.is_empty() => eval(&args[1], result)?,
                    other => other,
                },
                "asFloat" | "asInt" => {
                    let x = first_num(&a)
                        .or_else(|| match &a {
                            V::J(Value::String(s)) => s.trim().parse().ok(),
                            _ => None,
                        })
                        .ok_or_else(|| format!("{name} of {}", a.describe()))?;
                    V::F(if name == "asInt" { x.trunc() } else { x })
                }
                _ => return Err(format!("unknown function {name}")),
            }
        }
        Node::Not(a) => V::J(Value::Bool(!eval(a, result)?.truthy()?)),
        Node::Neg(a) => {
            let v = eval(a, result)?;
            V::F(
                -v.f()
                    .ok_or_else(|| format!("cannot negate {}", v.describe()))?,
            )
        }
        Node::Bin(op, l, r) => {
            if *op == "&&" {
                return Ok(V::J(Value::Bool(
                    eval(l, result)?.truthy()? && eval(r, result)?.truthy()?,
                )));
            }
            if *op == "||" {
                return Ok(V::J(Value::Bool(
                    eval(l, result)?.truthy()? || eval(r, result)?.truthy()?,
                )));
            }
            let (a, b) = (eval(l, result)?, eval(r, result)?);
            if let (Some(x), Some(y)) = (a.f(), b.f()) {
                return Ok(match *op {
                    "+" => V::F(x + y),
                    "-" => V::F(x - y),
                    "*" => V::F(x * y),
                    "/" => V::F(x / y),
                    "==" => V::J(Value::Bool(x == y)),
                    "!=" => V::J(Value::Bool(x != y)),
                    "<" => V::J(Value::Bool(x < y)),
                    "<=" => V::J(Value::Bool(x <= y)),
                    ">" => V::J(Value::Bool(x > y)),
                    ">=" => V::J(Value::Bool(x >= y)),
                    _ => return Err(format!("unknown operator {op}")),
                });
            }
            match (*op, &a, &b) {
                ("==", V::J(x), V::J(y)) => V::J(Value::Bool(x == y)),
                ("!=", V::J(x), V::J(y)) => V::J(Value::Bool(x != y)),
                _ => {
                    return Err(format!(
                        "cannot apply {op} to {} and {}",
                        a.describe(),
                        b.describe()
                    ));
                }
            }
        }
    })
}

/// A number, or the first element of a one-element vector (Prometheus
/// results are vectors; `isNaN(result)` looks at the first value).
fn first_num(v: &V) -> Option<f64> {
    match v {
        V::J(Value::Array(xs)) => xs.first().and_then(num),
        other => other.f(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn t(cond: &str, result: Value) -> Result<bool, String> {
        Condition::parse(cond)?.eval(&result)
    }

    #[test]
    fn the_forms_argo_documents_evaluate() {
        assert_eq!(t("result[0] >= 0.95", json!([0.97])), Ok(true));
        assert_eq!(t("result[0] >= 0.95", json!([0.9])), Ok(false));
        assert!(t("result[0] >= 0.95", json!([])).is_err());
        assert_eq!(
            t("len(result) == 0 || result[0] < 0.01", json!([])),
            Ok(true)
        );
        assert_eq!(
            t("len(result) == 0 || result[0] < 0.01", json!([0.5])),
            Ok(false)
        );
        assert_eq!(t("isNaN(result)", json!(["NaN"])), Ok(true));
        assert_eq!(t("isNaN(result)", json!([1.0])), Ok(false));
        assert_eq!(t("default(result, 0) < 5", Value::Null), Ok(true));
        assert_eq!(t("default(result, 0) < 5", json!(7)), Ok(false));
        assert_eq!(
            t("asFloat(result.value) > 1", json!({"value": "2.5"})),
            Ok(true)
        );
        assert_eq!(t("result.Status == 999", json!({"Status": 0})), Ok(false));
        assert_eq!(
            t(
                "result.ok == true and not (result.n > 3)",
                json!({"ok": true, "n": 2})
            ),
            Ok(true)
        );
        assert_eq!(
            t("result[0] * 100 - 1 > 90 + 2 * 2", json!([0.96])),
            Ok(true)
        );
        assert_eq!(t("asInt(result) == 3", json!(3.9)), Ok(true));
        assert_eq!(t("result == \"up\"", json!("up")), Ok(true));
    }

    #[test]
    fn bad_conditions_are_named_errors() {
        for bad in [
            "",
            "result[",
            "foo(result)",
            "result >= ",
            "len(result, 1)",
            "'open",
            "result @ 1",
        ] {
            assert!(Condition::parse(bad).is_err(), "{bad}");
        }
        assert!(Condition::parse(&"(".repeat(100)).is_err());
        assert!(t("result[0] > 1", json!(["a"])).is_err());
        assert!(t("result", json!(1)).is_err(), "a number is not a boolean");
    }
}

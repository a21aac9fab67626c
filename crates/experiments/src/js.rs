//! JavaScript value semantics over `serde_json::Value`.
//!
//! GrowthBook's reference SDK is JavaScript and its conformance suite encodes
//! JavaScript's coercions (`value + "" === "1"`, `null < 5`, `[5] == 5`), so
//! every other SDK has to reproduce them. These helpers do, without
//! allocating for the common cases (strings, numbers, booleans, null).

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt::Write as _;

use serde_json::Value;

/// The `null` an absent attribute reads as (GrowthBook's `getPath` returns
/// `null`, not `undefined`, for a missing path).
pub(crate) static NULL: Value = Value::Null;

/// JavaScript truthiness, which decides whether a flag is on: `null`,
/// `false`, `0`, `NaN` and `""` are falsy; everything else is truthy.
///
/// ```
/// use flightdeck_experiments::truthy;
/// use serde_json::json;
/// assert!(!truthy(&json!(0)) && !truthy(&json!("")) && truthy(&json!("off")));
/// ```
pub fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0 && !f.is_nan()),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// A number's text as JavaScript's `Number.prototype.toString` writes it,
/// into a fixed buffer (no allocation).
#[derive(Clone, Copy)]
pub(crate) struct NumText {
    buf: [u8; 40],
    len: usize,
}

impl std::fmt::Debug for NumText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl NumText {
    fn new() -> Self {
        Self {
            buf: [0; 40],
            len: 0,
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        // Only ASCII from the formatters below is ever written.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }

    #[cfg(test)]
    pub(crate) fn of_u64(n: u64) -> Self {
        let mut t = Self::new();
        let _ = write!(t, "{n}");
        t
    }

    pub(crate) fn of_number(n: &serde_json::Number) -> Self {
        let mut t = Self::new();
        if let Some(u) = n.as_u64() {
            let _ = write!(t, "{u}");
        } else if let Some(i) = n.as_i64() {
            let _ = write!(t, "{i}");
        } else {
            write_js_f64(&mut t, n.as_f64().unwrap_or(f64::NAN));
        }
        t
    }

    #[cfg(test)]
    pub(crate) fn of_f64(x: f64) -> Self {
        let mut t = Self::new();
        write_js_f64(&mut t, x);
        t
    }
}

impl std::fmt::Write for NumText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        if end > self.buf.len() {
            return Err(std::fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

fn write_js_f64(out: &mut impl std::fmt::Write, x: f64) {
    let _ = if x.is_nan() {
        out.write_str("NaN")
    } else if x.is_infinite() {
        out.write_str(if x > 0.0 { "Infinity" } else { "-Infinity" })
    } else if x == 0.0 {
        out.write_str("0")
    } else if (1e-6..1e21).contains(&x.abs()) {
        // Rust's shortest round-trip digits, printed positionally, are what
        // JavaScript prints in this range.
        write!(out, "{x}")
    } else {
        // JavaScript writes the exponent with an explicit sign: 1e+21.
        let mut t = NumText::new();
        let _ = write!(t, "{x:e}");
        let s = t.as_str();
        match s.split_once('e') {
            Some((m, e)) if !e.starts_with('-') => write!(out, "{m}e+{e}"),
            _ => out.write_str(s),
        }
    };
}

/// JavaScript's `String(v)`.
pub(crate) fn to_js_string(v: &Value) -> Cow<'_, str> {
    match v {
        Value::String(s) => Cow::Borrowed(s),
        Value::Null => Cow::Borrowed("null"),
        Value::Bool(true) => Cow::Borrowed("true"),
        Value::Bool(false) => Cow::Borrowed("false"),
        Value::Number(n) => Cow::Owned(NumText::of_number(n).as_str().to_owned()),
        Value::Array(items) => {
            // Array.prototype.join: null and undefined elements become "".
            let mut out = String::new();
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                if !item.is_null() {
                    out.push_str(&to_js_string(item));
                }
            }
            Cow::Owned(out)
        }
        Value::Object(_) => Cow::Borrowed("[object Object]"),
    }
}

/// Compares `v`'s JavaScript string form with `s`, allocating only for
/// arrays.
pub(crate) fn js_string_eq(v: &Value, s: &str) -> bool {
    match v {
        Value::String(x) => x == s,
        Value::Number(n) => NumText::of_number(n).as_str() == s,
        other => to_js_string(other) == s,
    }
}

/// JavaScript's `ToNumber` of a string (`StringToNumber`).
pub(crate) fn string_to_number(s: &str) -> f64 {
    let t = s.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
    if t.is_empty() {
        return 0.0;
    }
    let radix = |digits: &str, r: u32| {
        if digits.is_empty() {
            return f64::NAN;
        }
        digits
            .chars()
            .try_fold(0.0f64, |acc, c| {
                c.to_digit(r).map(|d| acc * f64::from(r) + f64::from(d))
            })
            .unwrap_or(f64::NAN)
    };
    let lower2 = t.get(..2).map(str::to_ascii_lowercase);
    match lower2.as_deref() {
        Some("0x") => return radix(&t[2..], 16),
        Some("0o") => return radix(&t[2..], 8),
        Some("0b") => return radix(&t[2..], 2),
        _ => {}
    }
    match t {
        "Infinity" | "+Infinity" => return f64::INFINITY,
        "-Infinity" => return f64::NEG_INFINITY,
        _ => {}
    }
    // Rust also accepts "inf", "nan" and "infinity"; JavaScript does not.
    if t.bytes()
        .any(|b| b.is_ascii_alphabetic() && b != b'e' && b != b'E')
    {
        return f64::NAN;
    }
    t.parse::<f64>().unwrap_or(f64::NAN)
}

/// JavaScript's `ToNumber(v)` (`v * 1`).
pub(crate) fn to_number(v: &Value) -> f64 {
    match v {
        Value::Null => 0.0,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
        Value::String(s) => string_to_number(s),
        Value::Array(_) => string_to_number(&to_js_string(v)),
        Value::Object(_) => f64::NAN,
    }
}

/// `a === b`: objects and arrays are only ever identical to themselves, and
/// two parsed JSON values are never the same object.
pub(crate) fn strict_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::String(x), Value::String(y)) => x == y,
        _ => false,
    }
}

/// A primitive after JavaScript's `ToPrimitive` (hint number).
enum Primitive<'a> {
    Str(Cow<'a, str>),
    Num(f64),
}

fn to_primitive(v: &Value) -> Primitive<'_> {
    match v {
        Value::String(s) => Primitive::Str(Cow::Borrowed(s)),
        Value::Array(_) | Value::Object(_) => Primitive::Str(to_js_string(v)),
        other => Primitive::Num(to_number(other)),
    }
}

/// Compares two strings by UTF-16 code units, as JavaScript does.
pub(crate) fn cmp_utf16(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

/// JavaScript's abstract relational comparison: `Some(ordering)`, or `None`
/// when a side is `NaN` (every comparison is then false).
pub(crate) fn js_compare(a: &Value, b: &Value) -> Option<Ordering> {
    // Fast paths for the types conditions compare in practice.
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => return x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => return Some(cmp_utf16(x, y)),
        _ => {}
    }
    match (to_primitive(a), to_primitive(b)) {
        (Primitive::Str(x), Primitive::Str(y)) => Some(cmp_utf16(&x, &y)),
        (x, y) => {
            let num = |p: Primitive<'_>| match p {
                Primitive::Str(s) => string_to_number(&s),
                Primitive::Num(n) => n,
            };
            num(x).partial_cmp(&num(y))
        }
    }
}

/// `JSON.stringify(a) === JSON.stringify(b)` for parsed values, comparing
/// numbers by value (so `1` equals `1.0`, as both print `1`). Object keys are
/// compared as sets: JSON parsing in this crate does not keep key order.
pub(crate) fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

/// Case-insensitive string equality as `a.toLowerCase() === b.toLowerCase()`,
/// without allocating.
pub(crate) fn eq_lowercase(a: &str, b: &str) -> bool {
    a.chars()
        .flat_map(char::to_lowercase)
        .eq(b.chars().flat_map(char::to_lowercase))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_print_as_javascript_prints_them() {
        for (x, s) in [
            (1.0, "1"),
            (0.5, "0.5"),
            (-2.25, "-2.25"),
            (1e21, "1e+21"),
            (1.5e-7, "1.5e-7"),
            (123456789.0, "123456789"),
            (0.000001, "0.000001"),
        ] {
            assert_eq!(NumText::of_f64(x).as_str(), s);
        }
        assert_eq!(NumText::of_u64(4_294_967_295).as_str(), "4294967295");
    }

    #[test]
    fn string_to_number_follows_javascript() {
        assert_eq!(string_to_number(" 42 "), 42.0);
        assert_eq!(string_to_number(""), 0.0);
        assert_eq!(string_to_number("0x1A"), 26.0);
        assert!(string_to_number("inf").is_nan());
        assert!(string_to_number("12px").is_nan());
        assert_eq!(string_to_number("1e3"), 1000.0);
        assert_eq!(string_to_number("-Infinity"), f64::NEG_INFINITY);
    }

    #[test]
    fn relational_comparison_coerces_like_javascript() {
        // null < 5 is 0 < 5.
        assert_eq!(js_compare(&json!(null), &json!(5)), Some(Ordering::Less));
        // "10" < "9" as strings, but "10" > 9 as numbers.
        assert_eq!(js_compare(&json!("10"), &json!("9")), Some(Ordering::Less));
        assert_eq!(js_compare(&json!("10"), &json!(9)), Some(Ordering::Greater));
        assert_eq!(js_compare(&json!("abc"), &json!(9)), None);
        assert_eq!(js_compare(&json!([5]), &json!(4)), Some(Ordering::Greater));
    }

    #[test]
    fn strings_of_values() {
        assert_eq!(to_js_string(&json!([1, null, "a", [2, 3]])), "1,,a,2,3");
        assert_eq!(to_js_string(&json!({"a": 1})), "[object Object]");
        assert!(js_string_eq(&json!(1.0), "1"));
        assert!(js_string_eq(&json!(true), "true"));
        assert!(json_eq(&json!({"a": [1.0]}), &json!({"a": [1]})));
        assert!(eq_lowercase("ÄBC", "äbc"));
    }
}

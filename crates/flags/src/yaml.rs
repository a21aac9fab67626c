//! A fast reader for the plain subset of YAML that flag files are written
//! in, with the full parser as the fallback.
//!
//! Every YAML crate measured parses a 10,000-flag file (1.4 MB) in 55 to
//! 200 ms on one core (`serde_norway` 90, `yaml-rust2` 60–90, `saphyr` 70,
//! `saphyr-parser` events alone 55, `serde-saphyr` 200): more than the
//! whole 50 ms reload budget. Flag files use a small part of YAML, and
//! this module reads that part, one flag at a time on the threads that
//! compile them. It answers `None` for anything else, and the caller then
//! parses the whole file with `serde_norway`, so the subset never has to
//! report errors or cover YAML.
//!
//! The subset: block mappings and sequences (spaces only), flow mappings
//! and sequences on one line, plain scalars on one line, single- and
//! double-quoted scalars on one line (double-quoted with the common
//! escapes), comments. Not in it: anchors, aliases, tags, block scalars,
//! multi-line scalars or flows, complex keys, directives, document
//! markers, duplicate keys, tabs, carriage returns, byte order marks.
//! Plain scalars resolve to null, booleans, integers and floats by
//! `serde_norway`'s own rules (ported below), and a [`Node`] deserializes
//! with the visitor calls `serde_norway` would make, so both readers give
//! the same values; tests compare them over generated and mutated
//! documents.

use std::borrow::Cow;

use serde::de::value::{Error, MapDeserializer, SeqDeserializer};
use serde::de::{IntoDeserializer, Visitor};
use serde::forward_to_deserialize_any;

/// The items of a simple-format file's top-level `flags:` sequence, as
/// text, when the file's top level is that one key in block style (the
/// items themselves are read by [`item`]).
pub(crate) fn flag_items(text: &str) -> Option<Vec<&str>> {
    if has_refused_bytes(text) {
        return None;
    }
    let mut lines = Lines::new(text);
    // The top level: `flags:` and nothing after it on its line.
    let first = lines.next_content()?;
    if first.indent != 0 || strip_comment(first.rest)? != "flags:" {
        return None;
    }
    let mut items: Vec<&str> = Vec::new();
    let mut dash_indent = None;
    let mut start = None;
    while let Some(line) = lines.next_content() {
        let is_dash = line.rest == "-" || line.rest.starts_with("- ");
        let indent = *dash_indent.get_or_insert(line.indent);
        if line.indent == indent && is_dash {
            if let Some(s) = start {
                items.push(&text[s..line.start]);
            }
            start = Some(line.start);
        } else if line.indent <= indent {
            // Another top-level key, or a broken file: the full parser
            // reports it.
            return None;
        }
    }
    if let Some(s) = start {
        items.push(&text[s..]);
    }
    (!items.is_empty()).then_some(items)
}

/// A node read from the subset: strings borrow the text where they can, and
/// it deserializes as `serde_norway` would deserialize the same YAML (the
/// same visitor calls), without building a `serde_json::Value` first.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node<'t> {
    Null,
    Bool(bool),
    U64(u64),
    I64(i64),
    F64(f64),
    Str(Cow<'t, str>),
    Seq(Vec<Node<'t>>),
    Map(Vec<(Cow<'t, str>, Node<'t>)>),
}

impl<'de> serde::Deserializer<'de> for Node<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self {
            Node::Null => visitor.visit_unit(),
            Node::Bool(b) => visitor.visit_bool(b),
            Node::U64(u) => visitor.visit_u64(u),
            Node::I64(i) => visitor.visit_i64(i),
            Node::F64(f) => visitor.visit_f64(f),
            Node::Str(Cow::Borrowed(s)) => visitor.visit_borrowed_str(s),
            Node::Str(Cow::Owned(s)) => visitor.visit_string(s),
            Node::Seq(items) => {
                let mut seq = SeqDeserializer::new(items.into_iter());
                let v = visitor.visit_seq(&mut seq)?;
                seq.end()?;
                Ok(v)
            }
            Node::Map(entries) => {
                let mut map = MapDeserializer::new(entries.into_iter());
                let v = visitor.visit_map(&mut map)?;
                map.end()?;
                Ok(v)
            }
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self {
            Node::Null => visitor.visit_none(),
            other => visitor.visit_some(other),
        }
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

impl<'de> IntoDeserializer<'de, Error> for Node<'de> {
    type Deserializer = Self;

    fn into_deserializer(self) -> Self {
        self
    }
}

/// One item of a block sequence (its text starts at the item's dash), or
/// `None` when it is outside the subset. The caller has checked the text
/// for tabs, carriage returns and byte order marks ([`flag_items`] does).
pub(crate) fn item(chunk: &str) -> Option<Node<'_>> {
    let mut p = Parser::new(chunk);
    let col = p.skip_to_content()?;
    let Node::Seq(mut items) = p.block_sequence(col)? else {
        return None;
    };
    if p.skip_to_content().is_some() || items.len() != 1 {
        return None;
    }
    items.pop()
}

/// Whether the subset reader, wherever it reads every item of a flag file,
/// reads them as `serde_norway` reads the whole file (for the fuzzer).
pub(crate) fn subset_agrees(text: &str) -> bool {
    use flightdeck_obs_core::locate;
    use serde::Deserialize;
    if locate::check_nesting(text, locate::MAX_NESTING).is_err() {
        return true; // refused before either reader runs
    }
    let Some(items) = flag_items(text) else {
        return true;
    };
    let mut ours = Vec::with_capacity(items.len());
    for chunk in items {
        match item(chunk) {
            Some(node) => match serde_json::Value::deserialize(node) {
                Ok(v) => ours.push(v),
                Err(_) => return true,
            },
            None => return true,
        }
    }
    // The subset read every item: the file never reaches serde_norway, so
    // serde_norway must read it, and read it the same.
    match serde_norway::from_str::<serde_json::Value>(text) {
        Ok(full) => full.get("flags") == Some(&serde_json::Value::Array(ours)),
        Err(_) => false,
    }
}

/// A whole document, or `None` when it is outside the subset.
#[cfg(test)]
pub(crate) fn document(text: &str) -> Option<Node<'_>> {
    if has_refused_bytes(text) {
        return None;
    }
    let mut p = Parser::new(text);
    let col = p.skip_to_content()?;
    let v = p.block_node(col)?;
    if p.skip_to_content().is_some() {
        return None;
    }
    Some(v)
}

/// Whether `text` holds a tab, a carriage return or the byte 0xEF, which
/// starts a byte order mark (and the rare characters U+F000 to U+FFFF):
/// the subset leaves all of them to the full parser. One pass without an
/// early exit, so it vectorizes.
fn has_refused_bytes(text: &str) -> bool {
    // One vectorizable pass: control characters (YAML refuses all but
    // tab and line feed; tabs and CRs are out of the subset anyway), DEL,
    // and 0xEF (byte order marks, U+FFFE/U+FFFF). 0xC2 and 0xE2 may start
    // a C1 control or NEL, or a line or paragraph separator, which
    // serde_norway's YAML 1.1 reads as line breaks: those are checked
    // exactly, only when present.
    let (hard, maybe) = text.bytes().fold((false, false), |(hard, maybe), b| {
        (
            hard | ((b < 0x20) & (b != b'\n')) | (b == 0x7F) | (b == 0xEF),
            maybe | (b == 0xC2) | (b == 0xE2),
        )
    });
    hard || (maybe
        && text
            .chars()
            .any(|c| matches!(c, '\u{80}'..='\u{9F}' | '\u{2028}' | '\u{2029}')))
}

struct Line<'t> {
    start: usize,
    indent: usize,
    rest: &'t str,
}

/// The lines of a text that hold more than a comment.
struct Lines<'t> {
    text: &'t str,
    pos: usize,
}

impl<'t> Lines<'t> {
    fn new(text: &'t str) -> Self {
        Self { text, pos: 0 }
    }

    fn next_content(&mut self) -> Option<Line<'t>> {
        while self.pos < self.text.len() {
            let start = self.pos;
            let end = self.text[start..]
                .find('\n')
                .map_or(self.text.len(), |i| start + i);
            self.pos = if end < self.text.len() { end + 1 } else { end };
            let line = &self.text[start..end];
            let body = line.trim_start_matches(' ');
            if body.is_empty() || body.starts_with('#') {
                continue;
            }
            return Some(Line {
                start,
                indent: line.len() - body.len(),
                rest: body.trim_end_matches(' '),
            });
        }
        None
    }
}

/// `s` without a trailing comment, when it holds no quote that could hide
/// a `#`.
fn strip_comment(s: &str) -> Option<&str> {
    if s.contains(['\'', '"']) {
        return None;
    }
    Some(match s.find(" #") {
        Some(i) => s[..i].trim_end_matches(' '),
        None => s,
    })
}

struct Parser<'t> {
    text: &'t str,
    s: &'t [u8],
    pos: usize,
    // Collections open around the position: past the limit the reader
    // bails (to the full parser, which the caller has guarded), so its
    // recursion stays bounded whatever text it is handed.
    depth: usize,
}

type Bail<T> = Option<T>;

impl<'t> Parser<'t> {
    fn new(text: &'t str) -> Self {
        Self {
            text,
            s: text.as_bytes(),
            pos: 0,
            depth: 0,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn at(&self, i: usize) -> Option<u8> {
        self.s.get(self.pos + i).copied()
    }

    /// The column of the current position.
    fn column(&self) -> usize {
        let line_start = self.s[..self.pos]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        self.pos - line_start
    }

    /// Whether the previous character is a space (a `#` after one starts a
    /// comment).
    fn after_space(&self) -> bool {
        self.pos > 0 && self.s[self.pos - 1] == b' '
    }

    fn skip_spaces(&mut self) {
        while self.peek() == Some(b' ') {
            self.pos += 1;
        }
    }

    /// Moves to the next character that is not a space, a line break or in
    /// a comment, and answers its column (`None` at the end). Refuses tabs,
    /// carriage returns and byte order marks.
    fn skip_to_content(&mut self) -> Option<usize> {
        loop {
            match self.peek()? {
                b' ' | b'\n' => self.pos += 1,
                b'#' => {
                    while !matches!(self.peek(), None | Some(b'\n')) {
                        self.pos += 1;
                    }
                }
                b'\t' | b'\r' | 0xEF => return None,
                _ => return Some(self.column()),
            }
        }
    }

    /// At the end of a line's content: spaces, then a comment or the line
    /// break. Consumes up to the line break.
    fn end_of_line(&mut self) -> Bail<()> {
        let before = self.pos;
        self.skip_spaces();
        match self.peek() {
            None | Some(b'\n') => Some(()),
            Some(b'#') if self.pos > before => Some(()),
            _ => None,
        }
    }

    /// A block node starting at the current position, at column `col`. A
    /// scalar ends its line; what follows more indented is a continuation,
    /// which the caller's loop refuses.
    fn block_node(&mut self, col: usize) -> Bail<Node<'t>> {
        if self.depth >= flightdeck_obs_core::locate::MAX_NESTING {
            return None;
        }
        self.depth += 1;
        let node = self.block_node_inner(col);
        self.depth -= 1;
        node
    }

    fn block_node_inner(&mut self, col: usize) -> Bail<Node<'t>> {
        if self.is_dash() {
            return self.block_sequence(col);
        }
        let save = self.pos;
        if let Some(first) = self.key() {
            return self.block_mapping(col, first);
        }
        self.pos = save;
        let v = self.value(false)?;
        self.end_of_line()?;
        Some(v)
    }

    fn is_dash(&self) -> bool {
        self.peek() == Some(b'-') && matches!(self.at(1), None | Some(b' ' | b'\n'))
    }

    /// A mapping key and its colon.
    fn key(&mut self) -> Bail<Cow<'t, str>> {
        let k = match self.peek()? {
            b'\'' | b'"' => {
                let k = self.quoted()?;
                if self.peek() != Some(b':') {
                    return None;
                }
                k
            }
            _ => {
                let start = self.pos;
                loop {
                    match self.peek() {
                        Some(b':') if matches!(self.at(1), None | Some(b' ' | b'\n')) => break,
                        None | Some(b'\n') => return None,
                        Some(b'#') if self.after_space() => return None,
                        _ => self.pos += 1,
                    }
                }
                let raw = self.text.get(start..self.pos)?;
                let raw = raw.trim_end_matches(' ');
                plain_ok(raw, false)?;
                if raw.starts_with('<') {
                    // `<<` merges in YAML 1.1 readers; leave keys like it
                    // to the full parser.
                    return None;
                }
                match resolve_plain(raw)? {
                    Node::Str(s) => s,
                    _ => return None,
                }
            }
        };
        self.pos += 1; // the colon
        Some(k)
    }

    /// A block mapping at `indent` whose first key (and colon) was read.
    fn block_mapping(&mut self, indent: usize, first: Cow<'t, str>) -> Bail<Node<'t>> {
        let mut map = Vec::new();
        let mut k = first;
        loop {
            let v = self.value_after_colon(indent)?;
            insert_new(&mut map, k, v)?;
            let save = self.pos;
            match self.skip_to_content() {
                Some(c) if c == indent && !self.is_dash() => k = self.key()?,
                // A continuation of the value, or a sequence entry where a
                // key belongs.
                Some(c) if c >= indent => return None,
                _ => {
                    self.pos = save;
                    return Some(Node::Map(map));
                }
            }
        }
    }

    fn value_after_colon(&mut self, indent: usize) -> Bail<Node<'t>> {
        let before = self.pos;
        self.skip_spaces();
        match self.peek() {
            None | Some(b'\n') => {}
            Some(b'#') if self.pos > before => {}
            _ => {
                if self.pos == before {
                    return None;
                }
                let v = self.value(false)?;
                self.end_of_line()?;
                return Some(v);
            }
        }
        // The value is on the following lines, or null.
        let save = self.pos;
        match self.skip_to_content() {
            Some(c) if c > indent => self.block_node(c),
            Some(c) if c == indent && self.is_dash() => self.block_sequence(c),
            _ => {
                self.pos = save;
                Some(Node::Null)
            }
        }
    }

    fn block_sequence(&mut self, indent: usize) -> Bail<Node<'t>> {
        let mut items = Vec::new();
        loop {
            if !self.is_dash() {
                return None;
            }
            self.pos += 1;
            let before = self.pos;
            self.skip_spaces();
            let item = match self.peek() {
                None | Some(b'\n') => self.value_on_next_lines(indent)?,
                Some(b'#') if self.pos > before => self.value_on_next_lines(indent)?,
                _ => {
                    let col = self.column();
                    self.block_node(col)?
                }
            };
            items.push(item);
            let save = self.pos;
            match self.skip_to_content() {
                Some(c) if c == indent && self.is_dash() => {}
                Some(c) if c > indent => return None,
                _ => {
                    self.pos = save;
                    return Some(Node::Seq(items));
                }
            }
        }
    }

    /// A sequence item's value that starts on the line after its dash.
    fn value_on_next_lines(&mut self, indent: usize) -> Bail<Node<'t>> {
        let save = self.pos;
        match self.skip_to_content() {
            Some(c) if c > indent => self.block_node(c),
            _ => {
                self.pos = save;
                Some(Node::Null)
            }
        }
    }

    /// A value that starts and ends on this line: a flow collection, a
    /// quoted scalar or a plain scalar (inside a flow collection when
    /// `flow`).
    fn value(&mut self, flow: bool) -> Bail<Node<'t>> {
        match self.peek()? {
            b'[' | b'{' => self.flow_node(),
            b'\'' | b'"' => self.quoted().map(Node::Str),
            _ => {
                let start = self.pos;
                self.plain_end(flow)?;
                let raw = self.text.get(start..self.pos)?;
                let trimmed = raw.trim_end_matches(' ');
                self.pos = start + trimmed.len();
                plain_ok(trimmed, flow)?;
                resolve_plain(trimmed)
            }
        }
    }

    /// Moves to the end of a plain scalar: the line's end or a comment, or
    /// in a flow collection a flow indicator or a key's colon. Refuses a
    /// colon that would make a block scalar a key, and comments inside
    /// flow collections.
    fn plain_end(&mut self, flow: bool) -> Bail<()> {
        loop {
            match self.peek() {
                None | Some(b'\n') => return Some(()),
                Some(b',' | b'[' | b']' | b'{' | b'}') if flow => return Some(()),
                Some(b':') if flow => return (self.at(1) == Some(b' ')).then_some(()),
                Some(b':') if matches!(self.at(1), None | Some(b' ' | b'\n')) => return None,
                Some(b'#') if self.after_space() => return (!flow).then_some(()),
                _ => self.pos += 1,
            }
        }
    }

    fn flow_node(&mut self) -> Bail<Node<'t>> {
        if self.depth >= flightdeck_obs_core::locate::MAX_NESTING {
            return None;
        }
        self.depth += 1;
        let node = self.flow_node_inner();
        self.depth -= 1;
        node
    }

    fn flow_node_inner(&mut self) -> Bail<Node<'t>> {
        match self.peek()? {
            b'[' => {
                let mut items = Vec::new();
                self.flow_entries(b']', |p| {
                    items.push(p.value(true)?);
                    Some(())
                })?;
                Some(Node::Seq(items))
            }
            b'{' => {
                let mut map = Vec::new();
                self.flow_entries(b'}', |p| {
                    let Node::Str(k) = p.value(true)? else {
                        return None;
                    };
                    if p.peek() != Some(b':') || p.at(1) != Some(b' ') {
                        return None;
                    }
                    p.pos += 1;
                    p.skip_spaces();
                    let v = p.value(true)?;
                    insert_new(&mut map, k, v)
                })?;
                Some(Node::Map(map))
            }
            _ => None,
        }
    }

    /// The entries of the flow collection opening here, up to `close`,
    /// each read by `entry`.
    fn flow_entries(
        &mut self,
        close: u8,
        mut entry: impl FnMut(&mut Self) -> Bail<()>,
    ) -> Bail<()> {
        self.pos += 1;
        self.skip_spaces();
        if self.peek() == Some(close) {
            self.pos += 1;
            return Some(());
        }
        loop {
            self.skip_spaces();
            entry(self)?;
            self.skip_spaces();
            match self.peek()? {
                b',' => self.pos += 1,
                c if c == close => {
                    self.pos += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// A single- or double-quoted scalar that ends on its line.
    fn quoted(&mut self) -> Bail<Cow<'t, str>> {
        let text = self.text;
        let q = self.peek()?;
        self.pos += 1;
        let start = self.pos;
        // Filled only once an escape is met; until then the scalar is a
        // slice of the text.
        let mut out: Option<String> = None;
        let mut run = self.pos;
        loop {
            match self.peek()? {
                b'\n' => return None,
                b'\'' if q == b'\'' && self.at(1) == Some(b'\'') => {
                    let o = out.get_or_insert_with(String::new);
                    o.push_str(text.get(run..self.pos)?);
                    o.push('\'');
                    self.pos += 2;
                    run = self.pos;
                }
                c if c == q => {
                    let end = self.pos;
                    self.pos += 1;
                    return Some(match out {
                        None => Cow::Borrowed(text.get(start..end)?),
                        Some(mut o) => {
                            o.push_str(text.get(run..end)?);
                            Cow::Owned(o)
                        }
                    });
                }
                b'\\' if q == b'"' => {
                    let o = out.get_or_insert_with(String::new);
                    o.push_str(text.get(run..self.pos)?);
                    let c = match self.at(1)? {
                        b'\\' => '\\',
                        b'"' => '"',
                        b'/' => '/',
                        b'n' => '\n',
                        b't' => '\t',
                        b'r' => '\r',
                        b'u' => {
                            let hex = text.get(self.pos + 2..self.pos + 6)?;
                            if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                                return None;
                            }
                            let code = u32::from_str_radix(hex, 16).ok()?;
                            self.pos += 4;
                            char::from_u32(code)?
                        }
                        _ => return None,
                    };
                    o.push(c);
                    self.pos += 2;
                    run = self.pos;
                }
                _ => self.pos += 1,
            }
        }
    }
}

/// Adds `k: v` to `map`, refusing a duplicate key (which YAML forbids and
/// readers treat differently).
fn insert_new<'t>(
    map: &mut Vec<(Cow<'t, str>, Node<'t>)>,
    k: Cow<'t, str>,
    v: Node<'t>,
) -> Bail<()> {
    if map.iter().any(|(seen, _)| *seen == k) {
        return None;
    }
    map.push((k, v));
    Some(())
}

/// Whether `s` may be a plain scalar of the subset: it must not start with
/// an indicator YAML gives a meaning (anchors, tags, block scalars,
/// directives, reserved characters, complex keys) nor hold a flow
/// indicator inside a flow collection.
fn plain_ok(s: &str, flow: bool) -> Bail<()> {
    let first = *s.as_bytes().first()?;
    if matches!(
        first,
        b'&' | b'*'
            | b'!'
            | b'|'
            | b'>'
            | b'%'
            | b'@'
            | b'`'
            | b'?'
            | b':'
            | b','
            | b'['
            | b']'
            | b'{'
            | b'}'
            | b'#'
            | b'\''
            | b'"'
    ) {
        return None;
    }
    // `-` alone or before a space is a block sequence entry, not a scalar.
    if first == b'-' && matches!(s.as_bytes().get(1), None | Some(b' ')) {
        return None;
    }
    if s == "---" || s == "..." || s.starts_with("--- ") || s.starts_with("... ") {
        return None;
    }
    if flow && s.contains([',', '[', ']', '{', '}']) {
        return None;
    }
    Some(())
}

/// A plain scalar's value by `serde_norway`'s rules (its
/// `visit_untagged_scalar`), or `None` for integers wider than 64 bits.
fn resolve_plain(v: &str) -> Bail<Node<'_>> {
    // Only these first characters can start a null, a boolean or a number
    // (Rust's float parser also reads `inf` and `nan`, which are not
    // finite and so stay strings).
    if let Some(first) = v.as_bytes().first()
        && !matches!(
            first,
            b'0'..=b'9' | b'+' | b'-' | b'.' | b'~' | b'n' | b'N' | b't' | b'T' | b'f' | b'F'
        )
    {
        return Some(Node::Str(Cow::Borrowed(v)));
    }
    if v.is_empty() || matches!(v, "null" | "Null" | "NULL" | "~") {
        return Some(Node::Null);
    }
    match v {
        "true" | "True" | "TRUE" => return Some(Node::Bool(true)),
        "false" | "False" | "FALSE" => return Some(Node::Bool(false)),
        _ => {}
    }
    if let Some(u) = parse_unsigned_int(v, u64::from_str_radix) {
        return Some(Node::U64(u));
    }
    if let Some(i) = parse_negative_int(v, i64::from_str_radix) {
        return Some(Node::I64(i));
    }
    if parse_unsigned_int(v, u128::from_str_radix).is_some()
        || parse_negative_int(v, i128::from_str_radix).is_some()
    {
        return None;
    }
    if !digits_but_not_number(v)
        && let Some(f) = parse_f64(v)
    {
        return Some(Node::F64(f));
    }
    Some(Node::Str(Cow::Borrowed(v)))
}

type Radix<T> = fn(&str, u32) -> Result<T, std::num::ParseIntError>;

// `parse_unsigned_int`, `parse_negative_int`, `parse_f64` and
// `digits_but_not_number` are `serde_norway` 0.9's (MIT OR Apache-2.0),
// so plain scalars resolve as the full parser resolves them.

fn parse_unsigned_int<T>(scalar: &str, from_str_radix: Radix<T>) -> Option<T> {
    let unpositive = scalar.strip_prefix('+').unwrap_or(scalar);
    for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] {
        if let Some(rest) = unpositive.strip_prefix(prefix) {
            if rest.starts_with(['+', '-']) {
                return None;
            }
            if let Ok(int) = from_str_radix(rest, radix) {
                return Some(int);
            }
        }
    }
    if unpositive.starts_with(['+', '-']) {
        return None;
    }
    if digits_but_not_number(scalar) {
        return None;
    }
    from_str_radix(unpositive, 10).ok()
}

fn parse_negative_int<T>(scalar: &str, from_str_radix: Radix<T>) -> Option<T> {
    for (prefix, radix) in [("-0x", 16), ("-0o", 8), ("-0b", 2)] {
        if let Some(rest) = scalar.strip_prefix(prefix) {
            let negative = format!("-{rest}");
            if let Ok(int) = from_str_radix(&negative, radix) {
                return Some(int);
            }
        }
    }
    if digits_but_not_number(scalar) {
        return None;
    }
    from_str_radix(scalar, 10).ok()
}

fn parse_f64(scalar: &str) -> Option<f64> {
    let unpositive = if let Some(unpositive) = scalar.strip_prefix('+') {
        if unpositive.starts_with(['+', '-']) {
            return None;
        }
        unpositive
    } else {
        scalar
    };
    if let ".inf" | ".Inf" | ".INF" = unpositive {
        return Some(f64::INFINITY);
    }
    if let "-.inf" | "-.Inf" | "-.INF" = scalar {
        return Some(f64::NEG_INFINITY);
    }
    if let ".nan" | ".NaN" | ".NAN" = scalar {
        return Some(f64::NAN.copysign(1.0));
    }
    match unpositive.parse::<f64>() {
        Ok(f) if f.is_finite() => Some(f),
        _ => None,
    }
}

fn digits_but_not_number(scalar: &str) -> bool {
    let scalar = scalar.strip_prefix(['-', '+']).unwrap_or(scalar);
    scalar.len() > 1 && scalar.starts_with('0') && scalar[1..].bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::Value;

    /// A node as the `Value` it deserializes to.
    fn value(node: Node<'_>) -> Value {
        Value::deserialize(node).unwrap()
    }

    /// The full parser's reading, or `None` when it refuses the text.
    fn norway(text: &str) -> Option<Value> {
        serde_norway::from_str::<Value>(text).ok()
    }

    /// Checks that the subset reader either refuses `text` or reads it as
    /// the full parser does; answers whether it read it.
    fn agrees(text: &str) -> bool {
        match document(text) {
            None => false,
            Some(fast) => {
                assert_eq!(Some(value(fast)), norway(text), "reading {text:?}");
                true
            }
        }
    }

    const SCALARS: &[&str] = &[
        "",
        "~",
        "null",
        "Null",
        "NULL",
        "nULL",
        "true",
        "True",
        "TRUE",
        "tRUE",
        "false",
        "yes",
        "no",
        "on",
        "off",
        "y",
        "0",
        "00",
        "007",
        "-0",
        "+0",
        "0x1F",
        "0x",
        "0o17",
        "0b101",
        "-0x1F",
        "+0x1F",
        "0x-1",
        "+1",
        "-1",
        "++1",
        "1.5",
        "-1.5",
        "1e3",
        "-1.5e-3",
        ".5",
        "5.",
        "+.5",
        ".inf",
        "-.inf",
        "+.inf",
        ".nan",
        ".NaN",
        "inf",
        "-inf",
        "NaN",
        "infinity",
        "1.0e400",
        "18446744073709551615",
        "18446744073709551616",
        "-9223372036854775808",
        "-9223372036854775809",
        "99999999999999999999999999",
        "2099-01-01",
        "12:30",
        "1_000",
        "a b",
        "a:b",
        "http://x.y/z?q=1",
        "a #b",
        "a#b",
        "$in",
        "US",
        "héllo wörld",
        "'quoted'",
        "'it''s'",
        "''",
        "\"\"",
        "\"dq \\\" \\\\ \\n\"",
        "\"\\u00e9\"",
        "\"\\x41\"",
        "\"\\ud800\"",
        "'a",
        "\"a",
        "-x",
        "-",
        "a, b",
        "a]",
        "&a x",
        "*a",
        "!tag x",
        "|",
        ">",
        "%x",
        "@x",
        "`x",
        "?x",
        ":x",
        "a: b",
        "<<",
        "{}",
        "[]",
        "[a, b]",
        "{a: 1}",
        "[a, [b, c], {d: e}]",
        "{a: [1, 2], b: {c: null}}",
        "[a,b]",
        "{a:1}",
        "[a, ]",
        "{a: }",
        "[ 'x, y', \"z\" ]",
        "{'k': v}",
        "[a # c]",
        "---",
        "...",
        "a\tb",
        "x  ",
        "#",
        "1 # one",
        "'a' # c",
        "[1] # c",
    ];

    /// What flag files mostly hold (every one is also in `SCALARS`' reach
    /// or plain text).
    const COMMON: &[&str] = &[
        "~",
        "null",
        "true",
        "false",
        "0",
        "25",
        "-1",
        "1.5",
        "2099-01-01",
        "US",
        "a b",
        "$in",
        "http://x.y/z?q=1",
        "a#b",
        "'it''s'",
        "\"dq \\\" \\\\ \\n\"",
        "héllo wörld",
        "0x1F",
        "007",
        "yes",
        "[a, b]",
        "{a: 1}",
        "-x",
        "1e3",
        ".inf",
    ];

    const KEYS: &[&str] = &[
        "id", "a b", "$in", "x-y", "\"q k\"", "'s k'", "1", "true", "null", "~", "<<", "k:v", "-k",
        "? k", "\"a\"", "'it''s'", "é", "k ", "&a k", "id", "enabled", "rollout",
    ];

    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
        fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
            xs[self.below(xs.len() as u64) as usize]
        }
        /// A scalar: mostly a common one, sometimes any.
        fn scalar(&mut self) -> &'static str {
            if self.below(8) == 0 {
                self.pick(SCALARS)
            } else {
                self.pick(COMMON)
            }
        }
        /// A key: mostly a plain word (rarely repeated: the subset
        /// leaves duplicate keys to the full parser), sometimes any.
        fn key(&mut self) -> String {
            let word = self.pick(&["id", "enabled", "a b", "$in", "x-y", "\"q k", "'é"]);
            match self.below(8) {
                0 => self.pick(KEYS).to_owned(),
                _ if word.starts_with(['"', '\'']) => {
                    format!("{word}{}{}", self.below(1_000), &word[..1])
                }
                _ => format!("{word}{}", self.below(1_000)),
            }
        }
    }

    fn flow(r: &mut Rng, depth: u32) -> String {
        match (depth, r.below(4)) {
            (0, _) | (_, 0 | 1) => r.scalar().to_owned(),
            (_, 2) => {
                let items: Vec<String> = (0..r.below(4)).map(|_| flow(r, depth - 1)).collect();
                format!("[{}]", items.join(", "))
            }
            _ => {
                let items: Vec<String> = (0..r.below(4))
                    .map(|_| format!("{}: {}", r.key(), flow(r, depth - 1)))
                    .collect();
                format!("{{{}}}", items.join(", "))
            }
        }
    }

    /// An inline value, sometimes with a comment after it.
    fn inline(r: &mut Rng, depth: u32) -> String {
        let v = flow(r, depth.min(2));
        if r.below(6) == 0 {
            format!("{v} # note")
        } else {
            v
        }
    }

    fn filler(r: &mut Rng, out: &mut String) {
        match r.below(10) {
            0 => out.push('\n'),
            1 => out.push_str("# a comment\n"),
            2 => out.push_str("   # indented comment\n"),
            _ => {}
        }
    }

    /// A block mapping at `indent`; its first line starts with `first`.
    fn mapping(r: &mut Rng, depth: u32, indent: usize, first: &str, out: &mut String) {
        for i in 0..1 + r.below(4) {
            if i == 0 {
                out.push_str(first);
            } else {
                filler(r, out);
                out.push_str(&" ".repeat(indent));
            }
            out.push_str(&r.key());
            out.push(':');
            match (depth, r.below(5)) {
                (0, _) | (_, 0 | 1) => {
                    out.push(' ');
                    out.push_str(&inline(r, depth));
                    out.push('\n');
                }
                (_, 2) => {
                    out.push('\n');
                    let deeper = indent + 1 + r.below(3) as usize;
                    mapping(r, depth - 1, deeper, &" ".repeat(deeper), out);
                }
                (_, 3) => {
                    out.push('\n');
                    let at = indent + 2 * r.below(2) as usize;
                    sequence(r, depth - 1, at, out);
                }
                _ => out.push('\n'),
            }
        }
    }

    fn sequence(r: &mut Rng, depth: u32, indent: usize, out: &mut String) {
        for _ in 0..1 + r.below(4) {
            filler(r, out);
            let dash = format!("{}- ", " ".repeat(indent));
            match (depth, r.below(4)) {
                (0, _) | (_, 0) => {
                    out.push_str(&dash);
                    out.push_str(&inline(r, depth));
                    out.push('\n');
                }
                (_, 1 | 2) => mapping(r, depth - 1, indent + 2, &dash, out),
                _ => {
                    out.push_str(&dash[..dash.len() - 1]);
                    out.push('\n');
                    sequence(r, depth - 1, indent + 2, out);
                }
            }
        }
    }

    /// A generated document, a mapping or a sequence nested `depth` deep.
    fn document_text(r: &mut Rng, depth: u32) -> String {
        let mut text = String::new();
        if r.below(2) == 0 {
            mapping(r, depth, 0, "", &mut text);
        } else {
            sequence(r, depth, 0, &mut text);
        }
        text
    }

    #[test]
    fn generated_documents_read_as_the_full_parser_reads_them() {
        let mut r = Rng(0x9E37_79B9_7F4A_7C15);
        let (mut read, mut total) = (0, 0);
        for _ in 0..20_000 {
            let text = document_text(&mut r, 3);
            total += 1;
            read += usize::from(agrees(&text));
        }
        // The subset must cover most of what it is given, or this checks
        // little.
        assert!(read * 5 > total * 2, "read {read} of {total}");
    }

    #[test]
    fn mutated_documents_are_refused_or_read_as_the_full_parser_reads_them() {
        // Broken and odd YAML: every reading the subset accepts must be the
        // full parser's, and nothing may panic.
        const BYTES: &[u8] = b" -:#'\"[]{},\n\\&*!|>?%@`~0a\t";
        let mut r = Rng(0x2545_F491_4F6C_DD1D);
        let (mut read, mut total) = (0, 0);
        for _ in 0..20_000 {
            let mut bytes = document_text(&mut r, 2).into_bytes();
            for _ in 0..1 + r.below(3) {
                let at = r.below(bytes.len() as u64 + 1) as usize;
                let b = BYTES[r.below(BYTES.len() as u64) as usize];
                match r.below(3) {
                    0 => bytes.insert(at, b),
                    1 if at < bytes.len() => {
                        bytes.remove(at);
                    }
                    _ if at < bytes.len() => bytes[at] = b,
                    _ => bytes.push(b),
                }
            }
            // Only valid UTF-8 is ever handed to the reader.
            let Ok(text) = String::from_utf8(bytes) else {
                continue;
            };
            total += 1;
            read += usize::from(agrees(&text));
            // The flag-file entry points too.
            let flags = format!("flags:\n{text}");
            if let Some(items) = flag_items(&flags) {
                let read: Option<Vec<Value>> = items.iter().map(|c| item(c).map(value)).collect();
                if let Some(read) = read {
                    let full = norway(&flags).and_then(|d| d.get("flags").cloned());
                    assert_eq!(Some(Value::Array(read)), full, "reading {flags:?}");
                }
            }
        }
        assert!(read * 10 > total, "read {read} of {total}");
    }

    #[test]
    fn single_scalars_read_as_the_full_parser_reads_them() {
        let mut read = 0;
        for s in SCALARS {
            read += usize::from(agrees(&format!("k: {s}\n")));
            read += usize::from(agrees(&format!("- {s}\n")));
            read += usize::from(agrees(&format!("{s}: v\n")));
        }
        assert!(read > SCALARS.len(), "read {read}");
    }

    #[test]
    fn control_characters_and_unicode_line_breaks_go_to_the_full_parser() {
        // Found by the yaml_subset fuzz target: a NUL inside a plain scalar
        // was read, where serde_norway refuses the file.
        for bad in [
            "a\0b",
            "a\u{7f}b",
            "a\u{85}b",
            "a\u{2028}b",
            "a\u{9f}b",
            "a\u{1b}b",
        ] {
            let text = format!("flags:\n  - id: {bad}\n    rollout_percentage: 5\n");
            assert_eq!(flag_items(&text), None, "{bad:?}");
            assert!(subset_agrees(&text), "{bad:?}");
        }
        // Other non-ASCII text stays in the subset.
        let text = "flags:\n  - id: caf\u{e9}\u{2014}\u{a3}\n    rollout_percentage: 5\n";
        assert!(flag_items(text).is_some());
        let found = include_str!("../../../fuzz/regressions/yaml_subset/control-characters");
        assert!(subset_agrees(found));
    }

    #[test]
    fn deep_nesting_bails_instead_of_overflowing_the_stack() {
        for deep in [
            format!("- {}{}\n", "[".repeat(10_000), "]".repeat(10_000)),
            format!("- {}x{}\n", "{$not: ".repeat(10_000), "}".repeat(10_000)),
            format!("- {}x\n", "- ".repeat(10_000)),
        ] {
            assert_eq!(item(&deep), None);
        }
        let shallow = format!("- {}1{}\n", "[".repeat(100), "]".repeat(100));
        assert!(item(&shallow).is_some());
    }

    #[test]
    fn a_flag_file_is_read_item_by_item() {
        let text = "# flags\nflags:\n  - id: search-v2\n    description: The new index # why\n    expires: 2099-01-01\n\n  - id: hybrid\n    rollout_percentage: 25.5\n    targeting:\n      user_ids: [vip, 'o''brien']\n      groups:\n      - beta\n      attributes: {country: {$in: [US, CA]}, age: {$gt: 18}, plan: {$ne: free}}\n    depends_on: [search-v2]\n  # between\n  - id: ranker\n    default: bm25\n    variants:\n      - {key: bm25, value: \"bm25\", weight: 1}\n      - key: colbert\n        value: {model: \"colbert-v2\", k: 10}\n        weight: 1\n  -\n    id: spaced\n";
        let items = flag_items(text).expect("a flags file");
        assert_eq!(items.len(), 4);
        let read: Vec<Value> = items.iter().map(|c| value(item(c).expect(c))).collect();
        let full = norway(text).unwrap();
        assert_eq!(Value::Array(read), full["flags"]);
    }

    #[test]
    fn what_serde_norway_writes_is_in_the_subset() {
        let flags: Vec<Value> = (0..50)
            .map(|i| {
                serde_json::json!({
                    "id": format!("flag-{i}"),
                    "rollout_percentage": i * 2,
                    "description": "it's a \"flag\": #1",
                    "targeting": {"user_ids": ["u-1", "007"], "attributes": {"age": {"$gt": 1.5}, "plan": {"$in": ["pro", "yes", ""]}}},
                    "variants": [{"key": "a", "value": {"k": null}, "weight": 1}],
                    "depends_on": [],
                })
            })
            .collect();
        let text = serde_norway::to_string(&serde_json::json!({ "flags": flags })).unwrap();
        let items = flag_items(&text).expect(&text);
        let read: Vec<Value> = items.iter().map(|c| value(item(c).expect(c))).collect();
        assert_eq!(read, flags);
        // Decoded straight into flag definitions, as reloads decode them.
        let defs: Vec<crate::FlagDefinition> = items
            .iter()
            .map(|c| crate::FlagDefinition::deserialize(item(c).unwrap()).unwrap())
            .collect();
        #[derive(Deserialize)]
        struct File {
            flags: Vec<crate::FlagDefinition>,
        }
        let full: File = serde_norway::from_str(&text).unwrap();
        assert_eq!(defs, full.flags);
    }

    #[test]
    fn what_the_subset_leaves_out_goes_to_the_full_parser() {
        for text in [
            "flags:\n  - id: a\n    description: |\n      long\n",
            "flags:\n  - &x\n    id: a\n  - *x\n",
            "flags:\n  - id: a\n    description: two\n      lines\n",
            "flags:\n  - id: a\n    description: \"two\n      lines\"\n",
            "flags:\n  - id: a\n    targeting: {user_ids: [a,\n      b]}\n",
            "flags:\n  - id: a\n    id: b\n",
            "flags:\n  - id: !!str a\n",
            "flags:\n\t- id: a\n",
            "flags:\r\n  - id: a\r\n",
            "flags:\n  - id: a\nother: 1\n",
            "---\nflags:\n  - id: a\n",
            "flags:\n  - id: a\n   x: 1\n",
        ] {
            let subset = flag_items(text).map(|items| items.iter().all(|c| item(c).is_some()));
            assert_ne!(subset, Some(true), "{text:?}");
        }
    }
}

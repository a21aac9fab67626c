//! Where a key sits in a configuration file's text, so that a value that
//! parsed but failed validation is reported as `file:line:column`.
//!
//! Hand-written: parsers locate syntax errors, but once a document is a
//! value tree the positions are gone, and keeping them (a spanned value type
//! per format) would slow every load to serve the rare bad one. The key is
//! found again in the text instead, for JSON and YAML alike.

/// One problem in a configuration file (experiments, flags, SLO specs),
/// located as `file:line:column`, with the field when it is known:
/// `flags.yaml:7:5: rollout_percentage: 120 is outside 0..=100`. A line of
/// 0 means the position is unknown (a value not read from a file): it prints
/// as `origin: field: message`.
///
/// ```
/// use flightdeck_obs_core::locate::Problem;
/// let p = Problem::at("flags.yaml", "a: 1\nbb: 2\n", 9, "2 is too many").with_field("bb");
/// assert_eq!(p.to_string(), "flags.yaml:2:5: bb: 2 is too many");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file (or `<inline>` for text given directly).
    pub path: String,
    /// 1-based line; 0 when unknown.
    pub line: usize,
    /// 1-based column; 0 when unknown.
    pub column: usize,
    /// The field, as a path such as `weights[1]` (`.` for the whole
    /// document); empty when the message names it.
    pub field: String,
    /// What is wrong, naming the value.
    pub message: String,
}

impl Problem {
    /// A problem at `line` and `column` of `path`.
    pub fn new(
        path: impl Into<String>,
        line: usize,
        column: usize,
        message: impl Into<String>,
    ) -> Self {
        Self {
            path: path.into(),
            line,
            column,
            field: String::new(),
            message: message.into(),
        }
    }

    /// A problem at byte `offset` of `text` (see [`line_column`]).
    pub fn at(
        path: impl Into<String>,
        text: &str,
        offset: usize,
        message: impl Into<String>,
    ) -> Self {
        let (line, column) = line_column(text, offset);
        Self::new(path, line, column, message)
    }

    /// A JSON syntax or type error from `serde_json`, at its line and column,
    /// with the parser's message less its trailing position.
    pub fn json(path: impl Into<String>, e: &serde_json::Error) -> Self {
        Self::new(
            path,
            e.line(),
            e.column().max(1),
            without_position(&e.to_string()),
        )
    }

    /// The same problem at the field's place in `text` when its position
    /// is unknown and [`find_path`] finds the field (or its nearest parent).
    #[must_use]
    pub fn located_in(mut self, text: &str) -> Self {
        if self.line == 0
            && let Some(at) = find_path(text, &self.field)
        {
            (self.line, self.column) = line_column(text, at);
        }
        self
    }

    /// The same problem, naming its field.
    #[must_use]
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = field.into();
        self
    }
}

/// The byte offset of a field path such as `slos[1].sli.events.error_query`
/// in a YAML or JSON text: each key is found after the one before it
/// ([`find_key`]); for `list[n]` the next key's `n+1`-th occurrence after
/// the list is taken as the item's. When a key cannot be found the nearest
/// parent's offset is the answer; `None` when not even the first key is
/// found. Best effort, like every locator here: it reads text, not a tree.
///
/// ```
/// use flightdeck_obs_core::locate::{find_path, line_column};
/// let text = "slos:\n  - name: a\n    objective: 99\n  - name: b\n    objective: 101\n";
/// let at = find_path(text, "slos[1].objective").unwrap();
/// assert_eq!(line_column(text, at), (5, 5));
/// // A missing key falls back to its nearest parent found: the list.
/// assert_eq!(find_path(text, "slos[1].missing").map(|at| line_column(text, at)), Some((1, 1)));
/// assert_eq!(find_path(text, "nowhere"), None);
/// ```
pub fn find_path(text: &str, path: &str) -> Option<usize> {
    // `a[1].b` → [("a", [1]), ("b", [])]
    let segments: Vec<(&str, Vec<usize>)> = path
        .split('.')
        .filter(|s| !s.is_empty())
        .map(|seg| {
            let (key, rest) = seg.split_once('[').unwrap_or((seg, ""));
            let indexes = rest
                .split('[')
                .filter_map(|i| i.trim_end_matches(']').parse().ok())
                .collect();
            (key, indexes)
        })
        .collect();
    let mut from = 0;
    let mut found = None;
    for (i, (key, indexes)) in segments.iter().enumerate() {
        if key.is_empty() {
            continue;
        }
        let Some(at) = find_key(text, key, from, text.len()) else {
            return found;
        };
        found = Some(at);
        from = at + key.len();
        // An item of a list: the next key's n+1-th occurrence from here.
        if let (Some(&n), Some((next, _))) = (indexes.first(), segments.get(i + 1)) {
            let mut item = from;
            for _ in 0..n {
                match find_key(text, next, item, text.len()) {
                    Some(at) => item = at + next.len(),
                    None => return found,
                }
            }
            match find_key(text, next, item, text.len()) {
                Some(at) => {
                    found = Some(at);
                    from = at;
                }
                None => return found,
            }
        }
    }
    found
}

/// A parser's message without its trailing ` at line L column C` (the
/// position is given as `file:line:column` instead).
///
/// ```
/// use flightdeck_obs_core::locate::without_position;
/// assert_eq!(without_position("expected `,` at line 3 column 7"), "expected `,`");
/// ```
pub fn without_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line == 0 {
            write!(f, "{}: ", self.path)?;
        } else {
            write!(f, "{}:{}:{}: ", self.path, self.line, self.column)?;
        }
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.message)
    }
}

/// 1-based line and column of byte `offset` in `text` (an offset past the
/// end counts as the end).
///
/// ```
/// use flightdeck_obs_core::locate::line_column;
/// assert_eq!(line_column("a: 1\nbb: 2\n", 5), (2, 1));
/// assert_eq!(line_column("a: 1\nbb: 2\n", 9), (2, 5));
/// ```
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text.as_bytes()[..offset];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let column = offset
        - before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1)
        + 1;
    (line, column)
}

/// The byte offset of key `key`, written `key:` (YAML) or `"key":` (JSON),
/// within `text[from..until]`; a hit inside a longer name (`my_key:`) does
/// not count.
///
/// ```
/// use flightdeck_obs_core::locate::find_key;
/// let yaml = "flags:\n  - id: a\n    my_id: b\n    id: c\n";
/// assert_eq!(find_key(yaml, "id", 0, yaml.len()), Some(11));
/// assert_eq!(find_key(yaml, "id", 12, yaml.len()), Some(34));
/// let json = r#"{"weights" : [1]}"#;
/// assert_eq!(find_key(json, "weights", 0, json.len()), Some(1));
/// assert_eq!(find_key(json, "variations", 0, json.len()), None);
/// ```
pub fn find_key(text: &str, key: &str, from: usize, until: usize) -> Option<usize> {
    if key.is_empty() {
        return None;
    }
    let until = until.min(text.len());
    let from = from.min(until);
    let hay = text.get(from..until)?;
    let bytes = hay.as_bytes();
    let mut start = 0;
    // One pass over the text: each hit of the bare key is checked for a
    // key's shape, so a search never rescans.
    while let Some(i) = hay[start..].find(key) {
        let at = start + i;
        let end = at + key.len();
        let quoted = at > 0 && bytes[at - 1] == b'"' && bytes.get(end) == Some(&b'"');
        let (begin, after) = if quoted { (at - 1, end + 1) } else { (at, end) };
        let boundary = begin == 0 || {
            let b = bytes[begin - 1];
            !(b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'"')
        };
        let colon = hay[after..]
            .trim_start_matches([' ', '\t'])
            .starts_with(':');
        if boundary && colon {
            return Some(from + begin);
        }
        start = end;
    }
    None
}

/// How deep a configuration file may nest collections (JSON arrays and
/// objects, YAML flow and block collections). `serde_json` stops at 128
/// too; no flag, experiment or SLO file comes near it.
pub const MAX_NESTING: usize = 128;

/// Text nested deeper than a limit: where the limit was crossed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooDeep {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// The limit that was crossed.
    pub limit: usize,
}

impl std::fmt::Display for TooDeep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}: nested deeper than {} levels",
            self.line, self.column, self.limit
        )
    }
}

/// Checks that JSON or YAML `text` nests collections at most `limit` deep,
/// in one pass and constant stack, before a recursive parser sees it.
///
/// Counted: open flow brackets (`[`, `{`) outside quoted scalars and
/// comments, plus the block levels open on each line (indentation levels
/// and the compact `- ` entries that start it). The count can only
/// over-estimate YAML's nesting slightly (a bracket inside a plain scalar),
/// never under-estimate it, so what passes here cannot overflow a parser's
/// stack or drive `serde_norway` into its quadratic time on deep flows.
///
/// ```
/// use flightdeck_obs_core::locate::check_nesting;
/// assert!(check_nesting("a:\n  b: [1, {c: 2}]\n", 4).is_ok());
/// let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
/// let err = check_nesting(&deep, 128).unwrap_err();
/// // The line's block level counts too: the 128th bracket crosses.
/// assert_eq!((err.line, err.column), (1, 128));
/// ```
///
/// # Errors
///
/// [`TooDeep`] at the first place the limit is crossed.
pub fn check_nesting(text: &str, limit: usize) -> Result<(), TooDeep> {
    let b = text.as_bytes();
    let too_deep = |at: usize| {
        let (line, column) = line_column(text, at);
        Err(TooDeep {
            line,
            column,
            limit,
        })
    };
    let mut flow = 0usize;
    // Columns of the block levels open at the current line.
    let mut blocks: Vec<usize> = Vec::new();
    let mut i = 0;
    let mut line_start = true;
    // Whether a scalar may start here (a quote then opens a quoted scalar).
    let mut scalar_start = true;
    while i < b.len() {
        if line_start && flow == 0 {
            line_start = false;
            let mut j = i;
            while j < b.len() && b[j] == b' ' {
                j += 1;
            }
            if j >= b.len() || matches!(b[j], b'\n' | b'\r' | b'#') {
                i = j;
                continue;
            }
            let col = j - i;
            while blocks.last().is_some_and(|&c| c > col) {
                blocks.pop();
            }
            if blocks.last() != Some(&col) {
                blocks.push(col);
            }
            // Compact entries: `- - - x` opens a level per dash.
            while j + 1 < b.len() && matches!(b[j], b'-' | b'?') && b[j + 1] == b' ' {
                j += 2;
                while j < b.len() && b[j] == b' ' {
                    j += 1;
                }
                blocks.push(j - i);
            }
            if blocks.len() > limit {
                return too_deep(j);
            }
            i = j;
            scalar_start = true;
            continue;
        }
        match b[i] {
            b'\n' => {
                line_start = true;
                scalar_start = true;
                i += 1;
            }
            b'#' if i == 0 || matches!(b[i - 1], b' ' | b'\t' | b'\n' | b'\r') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'"' if scalar_start => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
                scalar_start = false;
            }
            b'\'' if scalar_start => {
                i += 1;
                while i < b.len() {
                    if b[i] == b'\'' {
                        if b.get(i + 1) == Some(&b'\'') {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                i += 1;
                scalar_start = false;
            }
            b'[' | b'{' => {
                flow += 1;
                if flow + blocks.len() > limit {
                    return too_deep(i);
                }
                scalar_start = true;
                i += 1;
            }
            b']' | b'}' => {
                flow = flow.saturating_sub(1);
                scalar_start = false;
                i += 1;
            }
            // Indicators after which a scalar may start: `,` in a flow,
            // `- `, `? ` and `: `, and `:` right after a quoted flow key.
            b',' if flow > 0 => {
                scalar_start = true;
                i += 1;
            }
            b'-' | b'?' | b':'
                if matches!(b.get(i + 1), None | Some(b' ' | b'\n' | b'\r' | b'\t'))
                    || (b[i] == b':' && flow > 0 && i > 0 && matches!(b[i - 1], b'"' | b'\'')) =>
            {
                scalar_start = true;
                i += 1;
            }
            b' ' | b'\t' | b'\r' => i += 1,
            _ => {
                scalar_start = false;
                i += 1;
            }
        }
    }
    Ok(())
}

/// Input that is not UTF-8: where the first bad byte is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotUtf8 {
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in bytes).
    pub column: usize,
    /// The first byte that is not valid UTF-8 there.
    pub byte: u8,
}

impl std::fmt::Display for NotUtf8 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}: not UTF-8 text (byte 0x{:02x})",
            self.line, self.column, self.byte
        )
    }
}

/// The text of a configuration file's bytes: UTF-8, with a leading byte
/// order mark dropped (editors on Windows write one, and parsers then
/// report a confusing error at 1:1).
///
/// ```
/// use flightdeck_obs_core::locate::utf8_text;
/// assert_eq!(utf8_text(b"\xEF\xBB\xBFa: 1\n").unwrap(), "a: 1\n");
/// let err = utf8_text(b"a: 1\nb: \xff\n").unwrap_err();
/// assert_eq!((err.line, err.column, err.byte), (2, 4, 0xff));
/// ```
///
/// # Errors
///
/// [`NotUtf8`] locating the first invalid byte.
pub fn utf8_text(bytes: &[u8]) -> Result<&str, NotUtf8> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    std::str::from_utf8(bytes).map_err(|e| {
        let at = e.valid_up_to();
        // The valid prefix is text, so it can be located as text.
        let prefix = std::str::from_utf8(&bytes[..at]).unwrap_or_default();
        let (line, column) = line_column(prefix, at);
        NotUtf8 {
            line,
            column,
            byte: bytes[at],
        }
    })
}

/// The longest prefix of `s` of at most `max` bytes that ends on a
/// character boundary.
pub(crate) fn prefix(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// How many bytes of a bad value an error message shows.
pub const SHOWN_BYTES: usize = 64;

/// A value from input as an error message may show it: in double quotes,
/// with control characters, quotes and backslashes escaped, and cut to
/// [`SHOWN_BYTES`] bytes of the value (on a character boundary) with the
/// full length noted, so a message never echoes a megabyte or drives a
/// terminal.
///
/// ```
/// use flightdeck_obs_core::locate::shown;
/// assert_eq!(shown("a\u{1b}[2Jb"), r#""a\u{1b}[2Jb""#);
/// assert_eq!(shown(&"x".repeat(1000)), format!("\"{}\"... (1000 bytes)", "x".repeat(64)));
/// ```
pub fn shown(value: &str) -> String {
    let end = prefix(value, SHOWN_BYTES).len();
    let mut out = String::with_capacity(end + 16);
    out.push('"');
    for c in value[..end].chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.extend(c.escape_default()),
            c => out.push(c),
        }
    }
    out.push('"');
    if end < value.len() {
        out.push_str(&format!("... ({} bytes)", value.len()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_out_of_range_and_odd_bounds_do_not_panic() {
        let text = "é: 1\nkey: 2\n";
        assert_eq!(line_column(text, 999), (3, 1));
        assert_eq!(find_key(text, "key", 999, 3), None);
        // A start inside a multi-byte character finds nothing rather than
        // panicking.
        assert_eq!(find_key(text, "key", 1, text.len()), None);
        assert_eq!(find_key(text, "", 0, text.len()), None);
        assert_eq!(find_key(text, "key", 0, text.len()), Some(6));
    }

    #[test]
    fn nesting_counts_flows_and_blocks_but_not_quotes_or_comments() {
        let flow = |n: usize| format!("{}{}", "{a: ".repeat(n), "}".repeat(n));
        // The top line is a block level of its own: one level of slack.
        assert!(check_nesting(&flow(127), 128).is_ok());
        assert_eq!(
            check_nesting(&flow(128), 128).unwrap_err().column,
            1 + 4 * 127
        );
        let json = format!("{}1{}", "[".repeat(129), "]".repeat(129));
        assert!(check_nesting(&json, 128).is_err());
        // Block levels: one per indentation step and per compact dash.
        let mut block = String::new();
        for d in 0..10 {
            block.push_str(&format!("{}k{d}:\n", " ".repeat(d)));
        }
        assert!(check_nesting(&block, 10).is_ok());
        assert_eq!(check_nesting(&block, 9).unwrap_err().line, 10);
        // (an entry's content counts as a level: it may be a mapping)
        assert!(check_nesting("- - - - x\n", 5).is_ok());
        assert!(check_nesting("- - - - x\n", 4).is_err());
        // Brackets in quoted scalars and comments do not count; an
        // apostrophe inside a plain scalar opens no quote.
        let quoted = format!(
            "a: \"{}\"\nb: '{}'\n# {}\n",
            "[".repeat(500),
            "{".repeat(500),
            "[".repeat(500)
        );
        assert!(check_nesting(&quoted, 4).is_ok());
        let hidden = format!("a: don't\nb: {}\n", "[".repeat(200));
        assert!(check_nesting(&hidden, 128).is_err());
        let hidden = format!("a: b:'c, 'd\nb: {}\n", "[".repeat(200));
        assert!(check_nesting(&hidden, 128).is_err());
        // Closing more than was opened never goes below zero.
        assert!(check_nesting("]]]] [[", 3).is_ok());
    }
}

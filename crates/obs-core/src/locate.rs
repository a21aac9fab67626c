//! Where a key sits in a configuration file's text, so that a value that
//! parsed but failed validation is reported as `file:line:column`.
//!
//! Hand-written: parsers locate syntax errors, but once a document is a
//! value tree the positions are gone, and keeping them (a spanned value type
//! per format) would slow every load to serve the rare bad one. The key is
//! found again in the text instead, for JSON and YAML alike.

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
}

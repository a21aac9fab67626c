//! Shared helpers for Flightdeck's cross-crate end-to-end tests.
//!
//! The tests themselves live in `tests/it/` (one binary, see docs/style.md §6).

use std::path::Path;

/// Reads a JSON Lines file into values.
///
/// # Errors
///
/// A message naming the file and line when it cannot be read or a line is
/// not JSON.
pub fn read_jsonl(path: &Path) -> Result<Vec<serde_json::Value>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    text.lines()
        .enumerate()
        .map(|(i, line)| {
            serde_json::from_str(line)
                .map_err(|e| format!("{}:{}: not JSON: {e}", path.display(), i + 1))
        })
        .collect()
}

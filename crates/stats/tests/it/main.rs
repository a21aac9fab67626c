//! flightdeck-stats integration tests. One binary (docs/style.md §6).

mod aa;
mod kayenta;
mod reference;

use serde_json::Value;

/// Loads a fixture from `tests/fixtures`.
pub(crate) fn fixture(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub(crate) fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

pub(crate) fn nums(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(num)
        .collect()
}

/// The tolerance: relative 1e-9, or absolute 1e-12 for values below 1e-10.
#[track_caller]
pub(crate) fn assert_close(actual: f64, expected: f64, what: &str) {
    let ok = if expected.abs() < 1e-10 {
        (actual - expected).abs() <= 1e-12
    } else {
        (actual - expected).abs() <= 1e-9 * expected.abs()
    };
    assert!(
        ok,
        "{what}: got {actual:e}, expected {expected:e} (relative error {:e})",
        ((actual - expected) / expected).abs()
    );
}

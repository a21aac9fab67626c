//! Integration tests for flightdeck-flags (one binary, see docs/style.md §6).

mod conformance;
mod counts;
mod growthbook;
mod http;
mod kill;
mod openfeature;
mod properties;
mod reload;
mod simple;
mod simple_large;

use std::time::{Duration, Instant};

/// Waits (bounded) until `cond` holds, failing with `what` after `limit`.
pub(crate) fn eventually(what: &str, limit: Duration, cond: impl Fn() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

//! [`LabelCap`]: a bound on the distinct values of user-controlled labels.
//!
//! A label whose values come from user input (a model name from a request, an
//! operation name from a plugin) can otherwise create unbounded Prometheus
//! series. Each label keeps its first `max_values` distinct values; later new
//! values become [`OVERFLOW_LABEL_VALUE`](crate::names::metric::OVERFLOW_LABEL_VALUE)
//! and are counted in `flightdeck_label_overflow_total{label="…"}`.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, RwLock};

use crate::names::metric;

/// Default distinct values kept per label.
pub const DEFAULT_MAX_LABEL_VALUES: usize = 64;

/// Caps the number of distinct values per label name.
///
/// ```
/// use flightdeck_obs_core::LabelCap;
/// let cap = LabelCap::new(2);
/// assert_eq!(cap.cap("model", "a"), "a");
/// assert_eq!(cap.cap("model", "b"), "b");
/// assert_eq!(cap.cap("model", "c"), "other");
/// assert_eq!(cap.cap("model", "a"), "a");
/// assert_eq!(cap.overflows("model"), 1);
/// ```
#[derive(Debug)]
pub struct LabelCap {
    max_values: usize,
    seen: RwLock<HashMap<&'static str, HashSet<String>>>,
    overflows: Mutex<HashMap<&'static str, u64>>,
}

impl Default for LabelCap {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_LABEL_VALUES)
    }
}

impl LabelCap {
    /// Keeps at most `max_values` distinct values per label.
    pub fn new(max_values: usize) -> Self {
        Self {
            max_values,
            seen: RwLock::new(HashMap::new()),
            overflows: Mutex::new(HashMap::new()),
        }
    }

    /// Returns `value` when it is known or there is room, else `"other"`.
    pub fn cap(&self, label: &'static str, value: &str) -> String {
        {
            let seen = self.seen.read().unwrap_or_else(|e| e.into_inner());
            if seen.get(label).is_some_and(|s| s.contains(value)) {
                return value.to_owned();
            }
        }
        let mut seen = self.seen.write().unwrap_or_else(|e| e.into_inner());
        let values = seen.entry(label).or_default();
        if values.contains(value) || values.len() < self.max_values {
            values.insert(value.to_owned());
            return value.to_owned();
        }
        drop(seen);
        *self
            .overflows
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(label)
            .or_default() += 1;
        metrics::counter!(metric::LABEL_OVERFLOW_TOTAL, "label" => label).increment(1);
        metric::OVERFLOW_LABEL_VALUE.to_owned()
    }

    /// Whether `value` is one of the values kept for `label`.
    pub fn contains(&self, label: &str, value: &str) -> bool {
        let seen = self.seen.read().unwrap_or_else(|e| e.into_inner());
        seen.get(label).is_some_and(|s| s.contains(value))
    }

    /// How many values of `label` were folded into `other`.
    pub fn overflows(&self, label: &str) -> u64 {
        self.overflows
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(label)
            .copied()
            .unwrap_or(0)
    }

    /// Overflow counts for every label that overflowed.
    pub fn all_overflows(&self) -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> = self
            .overflows
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, n)| ((*k).to_owned(), *n))
            .collect();
        v.sort();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_capped_independently() {
        let cap = LabelCap::new(3);
        for i in 0..10 {
            cap.cap("operation", &format!("op{i}"));
        }
        assert_eq!(
            cap.cap("model", "m"),
            "m",
            "another label has its own budget"
        );
        assert_eq!(cap.overflows("operation"), 7);
        assert_eq!(cap.overflows("model"), 0);
        assert_eq!(cap.all_overflows(), vec![("operation".to_owned(), 7)]);
    }

    #[test]
    fn capping_is_consistent_under_concurrency() {
        let cap = std::sync::Arc::new(LabelCap::new(10));
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let cap = std::sync::Arc::clone(&cap);
                std::thread::spawn(move || {
                    (0..100)
                        .map(|i| cap.cap("user", &format!("u{}", (t * 100 + i) % 50)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut distinct = HashSet::new();
        for t in threads {
            distinct.extend(t.join().unwrap());
        }
        assert_eq!(distinct.len(), 11, "10 kept values plus `other`");
        assert!(distinct.contains("other"));
    }
}

//! [`LatencySketch`]: a lock-free quantile sketch for latencies.
//!
//! Values fall into log-linear bins, as in HdrHistogram: each power of two
//! above [`MIN_TRACKED_NANOS`] is split into [`SUB_BUCKETS`] equal-width
//! bins, so a bin `[a, b)` has `(b − a) / a ≤ 1/52`. A quantile is answered
//! with the estimate `2ab / (a + b)`, which is within `(b − a) / (a + b) <
//! 0.97 %` of every value in the bin, so quantiles carry a relative error
//! below 1 % (the rank rule is DDSketch's: Masson, Rim & Lee, VLDB 2019).
//! The bin index comes from the float's exponent bits and one multiply: no
//! logarithm on the hot path.
//!
//! Why not a crate: `sketches-ddsketch` and `hdrhistogram` both record
//! through `&mut self`, so a handle shared by every request needs a mutex,
//! and under contention that mutex serializes all recording threads (see the
//! contended benchmark in `docs/benchmarks.md`). Here every bin is an
//! `AtomicU64`, so threads record with two relaxed `fetch_add`s and no lock,
//! and memory stays fixed at 8 bytes per bin, whatever the sample count.

use std::sync::atomic::{AtomicU64, Ordering};

/// The guaranteed relative accuracy of quantiles (for values above
/// [`MIN_TRACKED_NANOS`]).
pub const RELATIVE_ACCURACY: f64 = 0.01;

/// Values at or below this many nanoseconds (about 1 µs) share the first bin.
pub const MIN_TRACKED_NANOS: f64 = 1_024.0;

/// Equal-width bins per power of two; `1 / (2 · 52) < 1 %`.
pub const SUB_BUCKETS: usize = 52;

/// The default number of bins: 1 µs to about 6.5 days.
pub const DEFAULT_MAX_BINS: usize = 2048;
/// The smallest bin count accepted: 1 µs to about 18 minutes.
pub const MIN_BINS: usize = 1600;

/// A lock-free, mergeable quantile sketch over nanosecond durations.
///
/// ```
/// use flightdeck_obs_core::LatencySketch;
/// let sketch = LatencySketch::new(2048);
/// for ms in 1..=100u64 {
///     sketch.record_nanos(ms * 1_000_000);
/// }
/// let p50 = sketch.quantile_nanos(0.5).unwrap() / 1e6;
/// assert!((p50 - 50.0).abs() / 50.0 <= 0.021, "{p50}");
/// ```
#[derive(Debug)]
pub struct LatencySketch {
    bins: Box<[AtomicU64]>,
    sum_nanos: AtomicU64,
    min_nanos: AtomicU64,
    max_nanos: AtomicU64,
}

/// Highest value (nanoseconds) the sketch resolves with `bins` bins;
/// larger values are counted in the last bin.
pub fn max_tracked_nanos(bins: usize) -> f64 {
    let (lo, hi) = bin_bounds(bins.max(2) - 1);
    // The last bin's upper edge.
    hi.max(lo)
}

/// The value range `[a, b)` of bin `i ≥ 1`, in nanoseconds.
fn bin_bounds(i: usize) -> (f64, f64) {
    let octave = ((i - 1) / SUB_BUCKETS) as i32;
    let sub = ((i - 1) % SUB_BUCKETS) as f64;
    let base = MIN_TRACKED_NANOS * 2f64.powi(octave);
    let width = base / SUB_BUCKETS as f64;
    (base + sub * width, base + (sub + 1.0) * width)
}

impl LatencySketch {
    /// A sketch with `max_bins` bins (raised to [`MIN_BINS`] when smaller).
    ///
    /// 2048 bins resolve 1 µs to about 6.5 days; memory is 8 bytes per bin.
    pub fn new(max_bins: usize) -> Self {
        let n = max_bins.max(MIN_BINS);
        Self {
            bins: (0..n).map(|_| AtomicU64::new(0)).collect(),
            sum_nanos: AtomicU64::new(0),
            min_nanos: AtomicU64::new(u64::MAX),
            max_nanos: AtomicU64::new(0),
        }
    }

    #[inline]
    fn index(&self, nanos: u64) -> usize {
        let v = nanos as f64 / MIN_TRACKED_NANOS;
        if v < 1.0 {
            return 0;
        }
        // v = 2^octave · m with m in [1, 2): the exponent bits give the octave,
        // and the mantissa's position within [1, 2) picks the sub-bucket.
        let bits = v.to_bits();
        let octave = ((bits >> 52) & 0x7ff) as usize - 1023;
        let mantissa = f64::from_bits((bits & ((1u64 << 52) - 1)) | (1023u64 << 52));
        let sub = ((mantissa - 1.0) * SUB_BUCKETS as f64) as usize;
        (1 + octave * SUB_BUCKETS + sub).min(self.bins.len() - 1)
    }

    /// Records one duration in nanoseconds. Lock-free; O(1).
    #[inline]
    pub fn record_nanos(&self, nanos: u64) {
        self.bins[self.index(nanos)].fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
        // Extremes change rarely; a plain load first avoids a locked instruction.
        if nanos < self.min_nanos.load(Ordering::Relaxed) {
            self.min_nanos.fetch_min(nanos, Ordering::Relaxed);
        }
        if nanos > self.max_nanos.load(Ordering::Relaxed) {
            self.max_nanos.fetch_max(nanos, Ordering::Relaxed);
        }
    }

    /// Adds every sample of `other` (same bin count or not) into this sketch.
    pub fn merge(&self, other: &LatencySketch) {
        let last = self.bins.len() - 1;
        for (i, b) in other.bins.iter().enumerate() {
            let n = b.load(Ordering::Relaxed);
            if n > 0 {
                self.bins[i.min(last)].fetch_add(n, Ordering::Relaxed);
            }
        }
        self.sum_nanos
            .fetch_add(other.sum_nanos.load(Ordering::Relaxed), Ordering::Relaxed);
        self.min_nanos
            .fetch_min(other.min_nanos.load(Ordering::Relaxed), Ordering::Relaxed);
        self.max_nanos
            .fetch_max(other.max_nanos.load(Ordering::Relaxed), Ordering::Relaxed);
    }

    /// Number of samples.
    pub fn count(&self) -> u64 {
        self.bins.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }

    /// Number of bins (fixed at construction).
    pub fn bins(&self) -> usize {
        self.bins.len()
    }

    /// The `q` quantile (0 ≤ q ≤ 1) in nanoseconds; `None` when empty or
    /// `q` is outside [0, 1].
    pub fn quantile_nanos(&self, q: f64) -> Option<f64> {
        self.quantiles_nanos(&[q]).pop().flatten()
    }

    /// Several quantiles from one pass over a consistent copy of the bins.
    pub fn quantiles_nanos(&self, qs: &[f64]) -> Vec<Option<f64>> {
        let counts: Vec<u64> = self
            .bins
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        let min = self.min_nanos.load(Ordering::Relaxed) as f64;
        let max = self.max_nanos.load(Ordering::Relaxed) as f64;
        qs.iter()
            .map(|&q| {
                if total == 0 || !(0.0..=1.0).contains(&q) {
                    return None;
                }
                // The extremes are tracked exactly.
                if q == 0.0 {
                    return Some(min);
                }
                if q == 1.0 {
                    return Some(max);
                }
                // The rank of the q quantile among 0..total, as DDSketch defines it.
                let rank = q * (total - 1) as f64;
                let mut seen = 0u64;
                for (i, &c) in counts.iter().enumerate() {
                    seen += c;
                    if seen as f64 > rank {
                        let v = self.bin_value(i);
                        // Clamp to what was actually seen: exact at the extremes.
                        return Some(v.max(min).min(max));
                    }
                }
                Some(max)
            })
            .collect()
    }

    fn bin_value(&self, i: usize) -> f64 {
        if i == 0 {
            return MIN_TRACKED_NANOS;
        }
        // The estimate with the smallest worst-case relative error in [a, b).
        let (a, b) = bin_bounds(i);
        2.0 * a * b / (a + b)
    }

    /// Sum of all samples in nanoseconds.
    pub fn sum_nanos(&self) -> u64 {
        self.sum_nanos.load(Ordering::Relaxed)
    }

    /// Smallest sample, when any.
    pub fn min_nanos(&self) -> Option<u64> {
        let v = self.min_nanos.load(Ordering::Relaxed);
        (v != u64::MAX).then_some(v)
    }

    /// Largest sample, when any.
    pub fn max_nanos(&self) -> Option<u64> {
        (self.count() > 0).then(|| self.max_nanos.load(Ordering::Relaxed))
    }

    /// Bytes used by the bins: fixed, whatever the number of samples.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.bins.len() * std::mem::size_of::<AtomicU64>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bin_is_narrow_enough_for_one_percent() {
        for i in 1..DEFAULT_MAX_BINS {
            let (a, b) = bin_bounds(i);
            assert!((b - a) / (a + b) < RELATIVE_ACCURACY, "bin {i}: [{a}, {b})");
        }
    }

    #[test]
    fn values_land_in_the_bin_that_contains_them() {
        let s = LatencySketch::new(DEFAULT_MAX_BINS);
        for v in [
            1_025u64,
            2_047,
            2_048,
            2_049,
            1_000_000,
            123_456_789,
            9_999_999_999,
        ] {
            let (a, b) = bin_bounds(s.index(v));
            assert!(a <= v as f64 && (v as f64) < b, "{v} not in [{a}, {b})");
        }
    }

    #[test]
    fn empty_sketch_has_no_quantiles() {
        let s = LatencySketch::new(DEFAULT_MAX_BINS);
        assert_eq!(s.quantile_nanos(0.5), None);
        assert_eq!(s.min_nanos(), None);
        assert_eq!(s.max_nanos(), None);
    }

    #[test]
    fn quantiles_are_within_one_percent_over_the_whole_range() {
        for &v in &[
            1_500u64,
            2_048,
            10_000,
            777_777,
            12_345_678,
            3_000_000_000,
            86_400_000_000_000,
        ] {
            let s = LatencySketch::new(DEFAULT_MAX_BINS);
            s.record_nanos(v);
            s.record_nanos(v);
            let q = s.quantile_nanos(0.5).unwrap();
            assert!(
                (q - v as f64).abs() / v as f64 <= RELATIVE_ACCURACY + 1e-12,
                "{v} -> {q}"
            );
        }
    }

    #[test]
    fn extremes_and_invalid_q() {
        let s = LatencySketch::new(DEFAULT_MAX_BINS);
        for v in [5_000u64, 7_000, 9_000] {
            s.record_nanos(v);
        }
        assert_eq!(s.quantile_nanos(0.0), Some(5_000.0));
        assert_eq!(s.quantile_nanos(1.0), Some(9_000.0));
        assert_eq!(s.quantile_nanos(1.5), None);
        assert_eq!(s.quantile_nanos(f64::NAN), None);
        assert_eq!(s.sum_nanos(), 21_000);
        assert_eq!(s.count(), 3);
    }

    #[test]
    fn huge_values_land_in_the_last_bin_without_panicking() {
        let s = LatencySketch::new(MIN_BINS);
        s.record_nanos(u64::MAX);
        assert_eq!(s.count(), 1);
        assert_eq!(s.max_nanos(), Some(u64::MAX));
        assert!(
            max_tracked_nanos(MIN_BINS) > 1_000e9,
            "1600 bins cover over 16 minutes"
        );
        assert!(
            max_tracked_nanos(DEFAULT_MAX_BINS) > 6.0 * 86_400e9,
            "2048 bins cover 6 days"
        );
    }

    #[test]
    fn merge_adds_counts() {
        let a = LatencySketch::new(DEFAULT_MAX_BINS);
        let b = LatencySketch::new(DEFAULT_MAX_BINS);
        a.record_nanos(2_000);
        b.record_nanos(4_000_000);
        a.merge(&b);
        assert_eq!(a.count(), 2);
        assert_eq!(a.min_nanos(), Some(2_000));
        assert_eq!(a.max_nanos(), Some(4_000_000));
    }

    #[test]
    fn memory_does_not_grow_with_samples() {
        let s = LatencySketch::new(DEFAULT_MAX_BINS);
        let before = s.memory_bytes();
        for i in 0..100_000u64 {
            s.record_nanos(1_000 + i * 997);
        }
        assert_eq!(s.memory_bytes(), before);
        assert!(before < 20 * 1024, "{before}");
    }
}

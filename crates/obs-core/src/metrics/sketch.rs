//! [`LatencySketch`]: a lock-free DDSketch for latency quantiles.
//!
//! Values fall into logarithmic bins `(m·γ^(i-1), m·γ^i]` with
//! `γ = (1 + α) / (1 − α)`; answering a quantile with the bin's midpoint
//! `2·m·γ^i / (γ + 1)` is within relative error `α` of the true value
//! (Masson, Rim & Lee, "DDSketch", VLDB 2019). Here `α = 1 %` and
//! `m = 1 µs`, so memory is one `AtomicU64` per bin whatever the sample count.
//!
//! Why not the `sketches-ddsketch` crate: its `add` takes `&mut self`, so a
//! shared handle needs a mutex per sample, which alone costs more than our
//! whole recording budget (see `docs/benchmarks.md`, where it is measured
//! side by side). Bins of atomics let every thread record with two relaxed
//! `fetch_add`s and no lock; the quantile arithmetic is the paper's.

use std::sync::atomic::{AtomicU64, Ordering};

/// The guaranteed relative accuracy of quantiles (for values ≥ 1 µs).
pub const RELATIVE_ACCURACY: f64 = 0.01;

/// Values at or below this many nanoseconds share the first bin.
pub const MIN_TRACKED_NANOS: f64 = 1_000.0;

/// The default and minimum number of bins.
pub const DEFAULT_MAX_BINS: usize = 2048;
/// The smallest bin count accepted: covers 1 µs to about 11 minutes.
pub const MIN_BINS: usize = 1024;

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

fn gamma() -> f64 {
    (1.0 + RELATIVE_ACCURACY) / (1.0 - RELATIVE_ACCURACY)
}

/// Highest value (nanoseconds) the sketch resolves with `bins` bins;
/// larger values are counted in the last bin.
pub fn max_tracked_nanos(bins: usize) -> f64 {
    MIN_TRACKED_NANOS * gamma().powi(bins as i32 - 1)
}

impl LatencySketch {
    /// A sketch with `max_bins` bins (at least [`MIN_BINS`]).
    ///
    /// 2048 bins resolve 1 µs to about 5·10⁸ seconds; memory is 8 bytes per bin.
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
        let v = nanos as f64;
        if v <= MIN_TRACKED_NANOS {
            return 0;
        }
        // ln(γ) for α = 1 %: ln(1.01 / 0.99).
        const INV_LN_GAMMA: f64 = 1.0 / 0.020_000_666_706_669_6;
        let i = ((v / MIN_TRACKED_NANOS).ln() * INV_LN_GAMMA).ceil() as usize;
        i.min(self.bins.len() - 1)
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
        let g = gamma();
        2.0 * MIN_TRACKED_NANOS * g.powi(i as i32) / (g + 1.0)
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
    fn ln_gamma_constant_matches_the_formula() {
        let expected = gamma().ln();
        assert!(
            (0.020_000_666_706_669_6 - expected).abs() < 1e-15,
            "{expected}"
        );
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
            max_tracked_nanos(MIN_BINS) > 600e9,
            "1024 bins cover ten minutes"
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

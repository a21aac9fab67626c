//! [`Summary`]: streaming, mergeable count, mean, variance, min and max.

use serde::{Deserialize, Serialize};

use crate::error::{StatsError, finite};

/// Count, mean, variance, minimum and maximum in O(1) memory.
///
/// Updates use Welford's algorithm, and [`merge`](Self::merge) uses Chan,
/// Golub and LeVeque's pairwise update, so partial summaries from threads or
/// partitions combine exactly as if the data had been seen in one pass. Both
/// stay accurate on data like `1e9 + small noise`, where the naive
/// sum-of-squares formula loses every digit.
///
/// ```
/// use flightdeck_stats::Summary;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut a = Summary::from_slice(&[1.0, 2.0, 3.0])?;
/// let b = Summary::from_slice(&[4.0, 5.0])?;
/// a.merge(&b);
/// assert_eq!(a.count(), 5);
/// assert_eq!(a.mean(), 3.0);
/// assert_eq!(a.variance(), 2.5);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    n: u64,
    mean: f64,
    m2: f64,
    min: f64,
    max: f64,
}

impl Default for Summary {
    fn default() -> Self {
        Self::new()
    }
}

/// Values summarized per block in [`Summary::from_slice`]: small enough to
/// stay in L1 cache for the block's second pass.
const BLOCK: usize = 1024;

/// Independent accumulators, so the additions do not form one serial
/// dependency chain and the compiler can keep them in vector registers.
const LANES: usize = 8;

fn lanes_sum_min_max(block: &[f64]) -> (f64, f64, f64) {
    let mut sum = [0.0; LANES];
    let mut min = [f64::INFINITY; LANES];
    let mut max = [f64::NEG_INFINITY; LANES];
    let chunks = block.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for i in 0..LANES {
            sum[i] += c[i];
            // Plain comparisons (not f64::min) vectorize; NaN is caught by the sum.
            min[i] = if c[i] < min[i] { c[i] } else { min[i] };
            max[i] = if c[i] > max[i] { c[i] } else { max[i] };
        }
    }
    let (mut s, mut lo, mut hi) = (sum.iter().sum::<f64>(), f64::INFINITY, f64::NEG_INFINITY);
    for i in 0..LANES {
        lo = lo.min(min[i]);
        hi = hi.max(max[i]);
    }
    for &x in rest {
        s += x;
        lo = lo.min(x);
        hi = hi.max(x);
    }
    (s, lo, hi)
}

fn lanes_centered_squares(block: &[f64], mean: f64) -> f64 {
    let mut acc = [0.0; LANES];
    let chunks = block.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for i in 0..LANES {
            let d = c[i] - mean;
            acc[i] += d * d;
        }
    }
    acc.iter().sum::<f64>() + rest.iter().map(|&x| (x - mean) * (x - mean)).sum::<f64>()
}

impl Summary {
    /// An empty summary.
    pub fn new() -> Self {
        Self {
            n: 0,
            mean: 0.0,
            m2: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }

    /// Adds one observation.
    ///
    /// # Errors
    ///
    /// [`StatsError::NonFinite`] for NaN or infinity; the summary is unchanged.
    pub fn push(&mut self, x: f64) -> Result<(), StatsError> {
        if !x.is_finite() {
            return Err(StatsError::NonFinite {
                input: "observation".into(),
                index: self.n as usize,
                value: x,
            });
        }
        self.n += 1;
        let delta = x - self.mean;
        self.mean += delta / self.n as f64;
        self.m2 += delta * (x - self.mean);
        self.min = self.min.min(x);
        self.max = self.max.max(x);
        Ok(())
    }

    /// Summarizes a slice in one pass over memory.
    ///
    /// Each block of 1,024 values is summarized with two passes while it sits
    /// in cache (mean, then centered squares), and blocks are merged with
    /// [`merge`](Self::merge): as accurate as Welford, several times faster.
    ///
    /// # Errors
    ///
    /// [`StatsError::NonFinite`] naming the first NaN or infinity.
    pub fn from_slice(values: &[f64]) -> Result<Self, StatsError> {
        Self::from_named_slice("sample", values)
    }

    pub(crate) fn from_named_slice(input: &str, values: &[f64]) -> Result<Self, StatsError> {
        let mut total = Self::new();
        for (b, block) in values.chunks(BLOCK).enumerate() {
            let (sum, min, max) = lanes_sum_min_max(block);
            if !sum.is_finite() || !min.is_finite() || !max.is_finite() {
                finite(input, block).map_err(|e| match e {
                    StatsError::NonFinite {
                        input,
                        index,
                        value,
                    } => StatsError::NonFinite {
                        input,
                        index: index + b * BLOCK,
                        value,
                    },
                    other => other,
                })?;
            }
            let n = block.len() as f64;
            let mean = sum / n;
            let m2 = lanes_centered_squares(block, mean);
            total.merge(&Self {
                n: block.len() as u64,
                mean,
                m2,
                min,
                max,
            });
        }
        Ok(total)
    }

    /// Builds a summary from known moments (for example stored aggregates).
    ///
    /// # Errors
    ///
    /// [`StatsError::InvalidArgument`] when the variance is negative or any
    /// value is not finite.
    pub fn from_moments(count: u64, mean: f64, variance: f64) -> Result<Self, StatsError> {
        if !mean.is_finite() || !variance.is_finite() || variance < 0.0 {
            return Err(StatsError::InvalidArgument {
                name: "moments",
                detail: format!(
                    "mean {mean} and variance {variance} must be finite, variance >= 0"
                ),
            });
        }
        let m2 = if count > 1 {
            variance * (count - 1) as f64
        } else {
            0.0
        };
        Ok(Self {
            n: count,
            mean,
            m2,
            min: f64::NAN,
            max: f64::NAN,
        })
    }

    /// Adds every observation summarized by `other`.
    pub fn merge(&mut self, other: &Summary) {
        if other.n == 0 {
            return;
        }
        if self.n == 0 {
            *self = *other;
            return;
        }
        let n = self.n + other.n;
        let delta = other.mean - self.mean;
        let (na, nb, nf) = (self.n as f64, other.n as f64, n as f64);
        self.mean += delta * nb / nf;
        self.m2 += other.m2 + delta * delta * na * nb / nf;
        self.n = n;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// Number of observations.
    pub fn count(&self) -> u64 {
        self.n
    }

    /// Mean (0 when empty).
    pub fn mean(&self) -> f64 {
        self.mean
    }

    /// Sample variance (denominator n − 1); 0 with fewer than 2 observations.
    pub fn variance(&self) -> f64 {
        if self.n < 2 {
            0.0
        } else {
            self.m2 / (self.n - 1) as f64
        }
    }

    /// Sample standard deviation.
    pub fn std_dev(&self) -> f64 {
        self.variance().sqrt()
    }

    /// Smallest observation (`inf` when empty; NaN when built from moments).
    pub fn min(&self) -> f64 {
        self.min
    }

    /// Largest observation (`-inf` when empty; NaN when built from moments).
    pub fn max(&self) -> f64 {
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_on_a_large_offset_with_small_noise() {
        let values: Vec<f64> = (0..10_000)
            .map(|i| 1e9 + [4.0, 7.0, 13.0, 16.0][i % 4])
            .collect();
        // The exact sample variance of the repeating 4, 7, 13, 16 pattern.
        let mean = 10.0;
        let exact = values.iter().map(|v| (v - 1e9 - mean).powi(2)).sum::<f64>() / 9_999.0;
        let s = Summary::from_slice(&values).unwrap();
        assert!(
            (s.variance() - exact).abs() / exact < 1e-9,
            "{}",
            s.variance()
        );
        let mut w = Summary::new();
        for v in &values {
            w.push(*v).unwrap();
        }
        assert!(
            (w.variance() - exact).abs() / exact < 1e-9,
            "{}",
            w.variance()
        );
        assert_eq!(s.mean(), 1e9 + 10.0);
    }

    #[test]
    fn merging_partitions_equals_one_pass() {
        let values: Vec<f64> = (0..5000)
            .map(|i| ((i * 7919) % 1000) as f64 / 7.0)
            .collect();
        let whole = Summary::from_slice(&values).unwrap();
        let mut parts = Summary::new();
        for chunk in values.chunks(333) {
            parts.merge(&Summary::from_slice(chunk).unwrap());
        }
        assert_eq!(parts.count(), whole.count());
        assert!((parts.mean() - whole.mean()).abs() < 1e-12);
        assert!((parts.variance() - whole.variance()).abs() / whole.variance() < 1e-12);
        assert_eq!((parts.min(), parts.max()), (whole.min(), whole.max()));
    }

    #[test]
    fn non_finite_input_is_named_by_position() {
        let mut v = vec![1.0; 3000];
        v[2500] = f64::INFINITY;
        let err = Summary::from_slice(&v).unwrap_err();
        assert_eq!(
            err.to_string(),
            "sample has a non-finite value inf at position 2500"
        );
        let mut s = Summary::new();
        assert!(s.push(f64::NAN).is_err());
        assert_eq!(s.count(), 0);
    }
}

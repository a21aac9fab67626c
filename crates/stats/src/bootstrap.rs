//! Bootstrap percentile intervals with an injected, seeded random source,
//! so every interval is reproducible from its seed.

use rand::Rng;

use crate::error::{StatsError, require_samples, unit_interval};

/// Percentile bootstrap interval for `mean(b) − mean(a)`: each of
/// `resamples` rounds draws both samples with replacement; the interval is
/// the `(1 − level)/2` and `(1 + level)/2` quantiles of the differences
/// (type-7 interpolation, as numpy's default).
///
/// ```
/// use flightdeck_stats::bootstrap_mean_diff;
/// use rand::SeedableRng;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let a = [1.0, 2.0, 3.0, 4.0, 5.0];
/// let b = [3.0, 4.0, 5.0, 6.0, 7.0];
/// let mut rng = rand::rngs::StdRng::seed_from_u64(42);
/// let (lo, hi) = bootstrap_mean_diff(&a, &b, 2_000, 0.95, &mut rng)?;
/// assert!(lo < 2.0 && 2.0 < hi);
/// # Ok(())
/// # }
/// ```
///
/// # Errors
///
/// [`StatsError::TooFewObservations`] for an empty sample,
/// [`StatsError::NonFinite`], [`StatsError::OutOfUnitInterval`] for the
/// level, and [`StatsError::InvalidArgument`] for fewer than 100 resamples.
pub fn bootstrap_mean_diff(
    a: &[f64],
    b: &[f64],
    resamples: usize,
    level: f64,
    rng: &mut impl Rng,
) -> Result<(f64, f64), StatsError> {
    unit_interval("confidence level", level)?;
    if resamples < 100 {
        return Err(StatsError::InvalidArgument {
            name: "resamples",
            detail: format!("{resamples} is too few for a percentile interval; use at least 100"),
        });
    }
    require_samples(a, b)?;
    let mean_of_resample = |s: &[f64], rng: &mut dyn rand::RngCore| {
        (0..s.len())
            .map(|_| s[rng.random_range(0..s.len())])
            .sum::<f64>()
            / s.len() as f64
    };
    let mut diffs: Vec<f64> = (0..resamples)
        .map(|_| {
            let ma = mean_of_resample(a, rng);
            let mb = mean_of_resample(b, rng);
            mb - ma
        })
        .collect();
    diffs.sort_unstable_by(f64::total_cmp);
    let quantile = |q: f64| {
        let h = q * (diffs.len() - 1) as f64;
        let (i, frac) = (h.floor() as usize, h - h.floor());
        let next = diffs[(i + 1).min(diffs.len() - 1)];
        diffs[i] + frac * (next - diffs[i])
    };
    Ok((quantile((1.0 - level) / 2.0), quantile((1.0 + level) / 2.0)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn the_same_seed_gives_the_same_interval() {
        let a: Vec<f64> = (0..50).map(|i| f64::from(i % 7)).collect();
        let b: Vec<f64> = (0..60).map(|i| f64::from(i % 9)).collect();
        let run = |seed| {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            bootstrap_mean_diff(&a, &b, 500, 0.9, &mut rng).unwrap()
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1), run(2));
    }

    #[test]
    fn bad_input_is_rejected() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        assert!(bootstrap_mean_diff(&[], &[1.0], 1000, 0.95, &mut rng).is_err());
        assert!(bootstrap_mean_diff(&[1.0], &[1.0], 10, 0.95, &mut rng).is_err());
        assert!(bootstrap_mean_diff(&[1.0], &[1.0], 1000, 1.0, &mut rng).is_err());
    }
}

//! Power and sample size, two-sided, two equal groups:
//!
//! * two proportions: statsmodels' `NormalIndPower` with
//!   `proportion_effectsize` (Cohen's h);
//! * two means: statsmodels' `TTestIndPower` (noncentral t, Cohen's d).

use serde::{Deserialize, Serialize};

use crate::distributions::{nct_cdf, nct_sf, norm_cdf, norm_ppf, norm_sf, t_ppf};
use crate::error::{StatsError, unit_interval};
use crate::mannwhitney::zeroin;

/// Cohen's h: `2·asin(√p1) − 2·asin(√p2)`, as statsmodels'
/// `proportion_effectsize(p1, p2)`.
///
/// # Errors
///
/// [`StatsError::InvalidArgument`] unless both rates are within [0, 1].
pub fn cohens_h(p1: f64, p2: f64) -> Result<f64, StatsError> {
    for (name, p) in [("baseline", p2), ("treatment", p1)] {
        if !(0.0..=1.0).contains(&p) {
            return Err(StatsError::InvalidArgument {
                name: "rate",
                detail: format!("{name} rate {p} is not within [0, 1]"),
            });
        }
    }
    Ok(2.0 * p1.sqrt().asin() - 2.0 * p2.sqrt().asin())
}

/// Power of a two-sided z-test with `n_per_group` in each of two equal
/// groups, for standardized effect `effect_size` (statsmodels
/// `NormalIndPower().power(effect_size, n, alpha)`).
///
/// # Errors
///
/// [`StatsError::OutOfUnitInterval`] for `alpha`, and
/// [`StatsError::InvalidArgument`] for a non-positive `n_per_group`.
pub fn normal_power(effect_size: f64, n_per_group: f64, alpha: f64) -> Result<f64, StatsError> {
    unit_interval("alpha", alpha)?;
    if !(n_per_group > 0.0 && n_per_group.is_finite() && effect_size.is_finite()) {
        return Err(StatsError::InvalidArgument {
            name: "sample size",
            detail: format!(
                "n per group {n_per_group} must be positive, effect size {effect_size} finite"
            ),
        });
    }
    Ok(power_unchecked(effect_size, n_per_group, alpha))
}

fn power_unchecked(effect_size: f64, n: f64, alpha: f64) -> f64 {
    let crit = -norm_ppf(alpha / 2.0);
    // Two equal groups: the effective n is 1 / (1/n + 1/n) = n / 2.
    let shift = effect_size * (n / 2.0).sqrt();
    norm_sf(crit - shift) + norm_cdf(-crit - shift)
}

/// A sample size: the exact solution and the whole number to plan with.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SampleSize {
    /// The smallest whole n per group reaching the power (`ceil` of the exact n).
    pub n_per_group: u64,
    /// The real-valued n per group where power equals the target exactly.
    pub n_per_group_exact: f64,
}

/// Per-group n for a two-sided z-test to reach `power` at `alpha`
/// (statsmodels `NormalIndPower().solve_power(effect_size, alpha=, power=)`).
///
/// ```
/// use flightdeck_stats::{cohens_h, normal_sample_size};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // Detect a lift from 10% to 12% conversion with 80% power.
/// let h = cohens_h(0.12, 0.10)?;
/// let n = normal_sample_size(h, 0.05, 0.8)?;
/// assert_eq!(n.n_per_group, 3835);
/// # Ok(())
/// # }
/// ```
///
/// # Errors
///
/// [`StatsError::OutOfUnitInterval`] for `alpha` or `power`, and
/// [`StatsError::InvalidArgument`] for a zero effect size or a power not
/// above `alpha`.
pub fn normal_sample_size(
    effect_size: f64,
    alpha: f64,
    power: f64,
) -> Result<SampleSize, StatsError> {
    solve_sample_size(effect_size, alpha, power, 1e-6, power_unchecked)
}

/// Checks `alpha` and `power`, and that the power exceeds `alpha`.
fn check_targets(alpha: f64, power: f64) -> Result<(), StatsError> {
    unit_interval("alpha", alpha)?;
    unit_interval("power", power)?;
    if power <= alpha {
        return Err(StatsError::InvalidArgument {
            name: "power",
            detail: format!("power {power} must exceed alpha {alpha}"),
        });
    }
    Ok(())
}

/// Solves `power_of(|d|, n, alpha) = power` for n ≥ `min_n` (power grows
/// with n): double the bracket from `[min_n, 2·max(min_n, 1)]`, then Brent.
fn solve_sample_size(
    effect_size: f64,
    alpha: f64,
    power: f64,
    min_n: f64,
    power_of: fn(f64, f64, f64) -> f64,
) -> Result<SampleSize, StatsError> {
    check_targets(alpha, power)?;
    let d = effect_size.abs();
    if !(d > 0.0 && d.is_finite()) {
        return Err(StatsError::InvalidArgument {
            name: "effect size",
            detail: format!("{effect_size}: a non-zero finite effect is needed"),
        });
    }
    let f = |n: f64| Ok(power_of(d, n, alpha) - power);
    let (mut lo, mut hi) = (min_n, 2.0 * min_n.max(1.0));
    if f(lo)? >= 0.0 {
        return Ok(SampleSize {
            n_per_group: min_n.ceil() as u64,
            n_per_group_exact: min_n,
        });
    }
    while f(hi)? < 0.0 {
        lo = hi;
        hi *= 2.0;
        if hi > 1e15 {
            return Err(StatsError::NoConvergence {
                what: "sample size",
                detail: format!("effect size {effect_size} is too small to reach power {power}"),
            });
        }
    }
    let exact = zeroin(lo, hi, f(lo)?, f(hi)?, f, 1e-12 * hi, 1000)?;
    Ok(SampleSize {
        n_per_group: exact.ceil() as u64,
        n_per_group_exact: exact,
    })
}

/// Solves `power_of(d, n, alpha) = power` for the effect d ≥ 0 (power grows with d).
fn solve_mde(
    n: f64,
    alpha: f64,
    power: f64,
    power_of: fn(f64, f64, f64) -> f64,
) -> Result<f64, StatsError> {
    check_targets(alpha, power)?;
    let f = |d: f64| Ok(power_of(d, n, alpha) - power);
    let mut hi = 1.0;
    while f(hi)? < 0.0 {
        hi *= 2.0;
    }
    zeroin(0.0, hi, f(0.0)?, f(hi)?, f, 1e-14, 1000)
}

/// The smallest standardized effect a two-sided z-test detects with
/// `power` at `alpha` with `n_per_group` in each group.
///
/// # Errors
///
/// As [`normal_sample_size`].
pub fn normal_minimum_detectable_effect(
    n_per_group: f64,
    alpha: f64,
    power: f64,
) -> Result<f64, StatsError> {
    normal_power(0.0, n_per_group, alpha)?;
    solve_mde(n_per_group, alpha, power, power_unchecked)
}

fn ttest_power_unchecked(d: f64, n: f64, alpha: f64) -> f64 {
    // statsmodels: df = n1 + n2 - 2, effective nobs = 1 / (1/n1 + 1/n2).
    let df = 2.0 * n - 2.0;
    let nc = d * (n / 2.0).sqrt();
    let crit = t_ppf(1.0 - alpha / 2.0, df);
    nct_sf(crit, df, nc) + nct_cdf(-crit, df, nc)
}

/// Power of a two-sided two-sample t-test with `n_per_group` in each group
/// for standardized effect `effect_size` (Cohen's d), as statsmodels'
/// `TTestIndPower().power(effect_size, n, alpha)`.
///
/// # Errors
///
/// [`StatsError::OutOfUnitInterval`] for `alpha`, and
/// [`StatsError::InvalidArgument`] unless `n_per_group > 1` and the effect
/// size is finite.
pub fn ttest_power(effect_size: f64, n_per_group: f64, alpha: f64) -> Result<f64, StatsError> {
    unit_interval("alpha", alpha)?;
    if !(n_per_group > 1.0 && n_per_group.is_finite() && effect_size.is_finite()) {
        return Err(StatsError::InvalidArgument {
            name: "sample size",
            detail: format!(
                "n per group {n_per_group} must exceed 1, effect size {effect_size} finite"
            ),
        });
    }
    Ok(ttest_power_unchecked(effect_size, n_per_group, alpha))
}

/// Per-group n for a two-sided two-sample t-test to reach `power` at
/// `alpha` (statsmodels `TTestIndPower().solve_power(effect_size, alpha=,
/// power=)`). The smallest answer is 2 per group: a t-test needs two
/// observations per arm.
///
/// ```
/// use flightdeck_stats::ttest_sample_size;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // A medium effect (d = 0.5) at 80% power: the textbook 64 per group.
/// assert_eq!(ttest_sample_size(0.5, 0.05, 0.8)?.n_per_group, 64);
/// # Ok(())
/// # }
/// ```
///
/// # Errors
///
/// As [`normal_sample_size`].
pub fn ttest_sample_size(
    effect_size: f64,
    alpha: f64,
    power: f64,
) -> Result<SampleSize, StatsError> {
    solve_sample_size(effect_size, alpha, power, 2.0, ttest_power_unchecked)
}

/// The smallest Cohen's d a two-sided t-test detects with `power` at
/// `alpha` with `n_per_group` in each group.
///
/// # Errors
///
/// As [`ttest_sample_size`].
pub fn ttest_minimum_detectable_effect(
    n_per_group: f64,
    alpha: f64,
    power: f64,
) -> Result<f64, StatsError> {
    ttest_power(0.0, n_per_group, alpha)?;
    solve_mde(n_per_group, alpha, power, ttest_power_unchecked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_at_the_solved_n_is_the_target() {
        let n = normal_sample_size(0.2, 0.05, 0.9).unwrap();
        let p = normal_power(0.2, n.n_per_group_exact, 0.05).unwrap();
        assert!((p - 0.9).abs() < 1e-12, "{p}");
        let d = normal_minimum_detectable_effect(n.n_per_group_exact, 0.05, 0.9).unwrap();
        assert!((d - 0.2).abs() < 1e-10, "{d}");
    }

    #[test]
    fn t_power_stays_finite_where_scipys_noncentral_t_returns_nan() {
        // statsmodels 0.15 / scipy 1.17 give NaN for both of these.
        let p = ttest_power(0.5, 1000.0, 0.05).unwrap();
        assert!(p > 0.999_999 && p <= 1.0, "{p}");
        let p = ttest_power(0.02, 1e6, 0.05).unwrap();
        let normal = normal_power(0.02, 1e6, 0.05).unwrap();
        assert!(
            (p - normal).abs() < 1e-6,
            "{p} vs normal approximation {normal}"
        );
    }

    #[test]
    fn invalid_inputs_are_errors() {
        assert!(normal_sample_size(0.0, 0.05, 0.8).is_err());
        assert!(normal_sample_size(0.2, 0.05, 0.01).is_err());
        assert!(
            cohens_h(1.2, 0.5)
                .unwrap_err()
                .to_string()
                .contains("treatment rate 1.2")
        );
    }
}

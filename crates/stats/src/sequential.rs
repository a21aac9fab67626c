//! Always-valid inference: the mixture sequential probability ratio test
//! (mSPRT) for a difference in means, so results can be checked after every
//! batch without inflating false positives.
//!
//! Method: Johari, Koomen, Pekelis and Walsh, "Always Valid Inference:
//! Continuous Monitoring of A/B Tests", *Operations Research* 70(3), 2022
//! (arXiv:1512.04922); the normal-mixture confidence sequence is that of
//! Robbins (1970) as used there. With `θ̂ = mean_b − mean_a`, its variance
//! `V = s_a²/n_a + s_b²/n_b` and a normal mixing distribution `N(0, τ²)` over
//! the effect, the mixture likelihood ratio against `θ = θ₀` is
//!
//! ```text
//! Λ(θ₀) = sqrt(V / (V + τ²)) · exp(τ² (θ̂ − θ₀)² / (2 V (V + τ²)))
//! ```
//!
//! and the test rejects when `Λ(0) ≥ 1/α`. The always-valid p-value is the
//! running minimum of `min(1, 1/Λ(0))`, and the confidence sequence is the set
//! of `θ₀` with `Λ(θ₀) < 1/α`:
//!
//! ```text
//! θ̂ ± sqrt(V (V + τ²) / τ² · (2 ln(1/α) + ln((V + τ²) / V)))
//! ```
//!
//! `τ²` is chosen once, from a planned sample size `N*` per arm and the
//! variance seen at the first look, so the interval is narrowest around
//! `N*` (the tuning GrowthBook and Eppo expose). The variance is a plug-in
//! estimate, as in the paper's practical version; the guarantee is
//! asymptotic in the per-arm sample size.

use serde::{Deserialize, Serialize};

use crate::error::{StatsError, require_counts, unit_interval};
use crate::summary::Summary;

/// Default planned sample size per arm used to tune the mixture.
pub const DEFAULT_TUNING_N: f64 = 5_000.0;

/// The result of one look.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SequentialLook {
    /// `mean_b − mean_a`.
    pub estimate: f64,
    /// Lower end of the always-valid `1 − alpha` confidence sequence,
    /// intersected with every earlier look's.
    pub ci_low: f64,
    /// Upper end of that interval.
    pub ci_high: f64,
    /// Always-valid p-value: the running minimum of `1/Λ` over looks.
    pub p_value: f64,
    /// Whether the null of no difference is rejected (p < alpha), now or earlier.
    pub reject: bool,
    /// The mixture likelihood ratio `Λ(0)` at this look.
    pub likelihood_ratio: f64,
}

/// A monitor that can be updated after every batch, keeping the running
/// p-value and interval so peeking never inflates the error rate.
///
/// ```
/// use flightdeck_stats::{SequentialMonitor, Summary};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut monitor = SequentialMonitor::new(0.05, 5_000.0)?;
/// let a = Summary::from_slice(&[10.0, 11.0, 9.5, 10.5, 10.2, 9.8])?;
/// let b = Summary::from_slice(&[10.4, 11.3, 9.9, 10.9, 10.6, 10.1])?;
/// let look = monitor.update(&a, &b)?;
/// assert!(look.ci_low < look.estimate && look.estimate < look.ci_high);
/// assert!(!look.reject); // six observations are far from enough
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SequentialMonitor {
    alpha: f64,
    tuning_n: f64,
    tau2: Option<f64>,
    p_value: f64,
    ci_low: f64,
    ci_high: f64,
}

/// The ratio `r = τ²/V*` that minimizes the interval width at the tuning
/// point: `g(r) = (1 + r)/r · (2 ln(1/α) + ln(1 + r))`, by golden-section
/// search (g is unimodal in r > 0).
fn optimal_ratio(alpha: f64) -> f64 {
    let l2 = 2.0 * (1.0 / alpha).ln();
    let g = |ln_r: f64| {
        let r = ln_r.exp();
        (1.0 + r) / r * (l2 + r.ln_1p())
    };
    let (mut lo, mut hi) = (-10.0f64, 10.0f64);
    let phi = (5f64.sqrt() - 1.0) / 2.0;
    for _ in 0..200 {
        let m1 = hi - phi * (hi - lo);
        let m2 = lo + phi * (hi - lo);
        if g(m1) < g(m2) {
            hi = m2;
        } else {
            lo = m1;
        }
    }
    ((lo + hi) / 2.0).exp()
}

impl SequentialMonitor {
    /// A monitor at significance `alpha`, tuned for `tuning_n` observations per arm.
    ///
    /// # Errors
    ///
    /// [`StatsError::OutOfUnitInterval`] for `alpha`, and
    /// [`StatsError::InvalidArgument`] unless `tuning_n` is at least 2.
    pub fn new(alpha: f64, tuning_n: f64) -> Result<Self, StatsError> {
        unit_interval("alpha", alpha)?;
        if !(tuning_n >= 2.0 && tuning_n.is_finite()) {
            return Err(StatsError::InvalidArgument {
                name: "tuning sample size",
                detail: format!("{tuning_n} must be at least 2 per arm"),
            });
        }
        Ok(Self {
            alpha,
            tuning_n,
            tau2: None,
            p_value: 1.0,
            ci_low: f64::NEG_INFINITY,
            ci_high: f64::INFINITY,
        })
    }

    /// The mixing variance, once fixed by the first look.
    pub fn tau2(&self) -> Option<f64> {
        self.tau2
    }

    /// Evaluates the test on the data so far (cumulative summaries of
    /// control `a` and treatment `b`).
    ///
    /// # Errors
    ///
    /// [`StatsError::TooFewObservations`] with fewer than 2 observations per
    /// arm, and [`StatsError::ZeroVariance`] when both arms are constant.
    pub fn update(&mut self, a: &Summary, b: &Summary) -> Result<SequentialLook, StatsError> {
        require_counts(&[("sample a", a.count()), ("sample b", b.count())], 2)?;
        let v = a.variance() / a.count() as f64 + b.variance() / b.count() as f64;
        if v <= 0.0 {
            return Err(StatsError::ZeroVariance {
                detail: "both arms are constant".into(),
            });
        }
        let tau2 = *self.tau2.get_or_insert_with(|| {
            // The variance of the estimate at the tuning point, from the
            // per-observation variances seen now.
            let v_star = (a.variance() + b.variance()) / self.tuning_n;
            optimal_ratio(self.alpha) * v_star
        });
        let estimate = b.mean() - a.mean();
        let ln_lambda =
            0.5 * (v / (v + tau2)).ln() + tau2 * estimate * estimate / (2.0 * v * (v + tau2));
        let likelihood_ratio = ln_lambda.exp();
        self.p_value = self.p_value.min((-ln_lambda).exp().min(1.0));
        let half = (v * (v + tau2) / tau2
            * (2.0 * (1.0 / self.alpha).ln() + ((v + tau2) / v).ln()))
        .sqrt();
        self.ci_low = self.ci_low.max(estimate - half);
        self.ci_high = self.ci_high.min(estimate + half);
        Ok(SequentialLook {
            estimate,
            ci_low: self.ci_low,
            ci_high: self.ci_high,
            p_value: self.p_value,
            reject: self.p_value < self.alpha,
            likelihood_ratio,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interval_excludes_zero_exactly_when_the_test_rejects() {
        // Inverting Λ(θ₀) < 1/α at θ₀ = 0 is the rejection rule itself.
        let mut m = SequentialMonitor::new(0.05, 1000.0).unwrap();
        let a = Summary::from_moments(2000, 10.0, 4.0).unwrap();
        for shift in [0.0, 0.05, 0.1, 0.2, 0.4] {
            let mut fresh = m.clone();
            let b = Summary::from_moments(2000, 10.0 + shift, 4.0).unwrap();
            let look = fresh.update(&a, &b).unwrap();
            let excludes_zero = look.ci_low > 0.0 || look.ci_high < 0.0;
            assert_eq!(excludes_zero, look.reject, "shift {shift}: {look:?}");
        }
        assert!(m.update(&a, &a).is_ok());
    }

    #[test]
    fn p_values_never_increase_and_intervals_never_widen() {
        let mut m = SequentialMonitor::new(0.05, 1000.0).unwrap();
        let mut last_p = 1.0;
        let mut last_width = f64::INFINITY;
        for (n, shift) in [(100u64, 0.5), (200, 0.1), (400, -0.2), (800, 0.0)] {
            let a = Summary::from_moments(n, 0.0, 1.0).unwrap();
            let b = Summary::from_moments(n, shift, 1.0).unwrap();
            let look = m.update(&a, &b).unwrap();
            assert!(look.p_value <= last_p);
            assert!(look.ci_high - look.ci_low <= last_width);
            last_p = look.p_value;
            last_width = look.ci_high - look.ci_low;
        }
    }

    #[test]
    fn the_tuning_ratio_minimizes_the_width() {
        let r = optimal_ratio(0.05);
        let g = |r: f64| (1.0 + r) / r * (2.0 * 20f64.ln() + r.ln_1p());
        assert!(g(r) <= g(r * 1.01) && g(r) <= g(r / 1.01), "{r}");
    }

    #[test]
    fn bad_parameters_are_errors() {
        assert!(SequentialMonitor::new(0.0, 100.0).is_err());
        assert!(SequentialMonitor::new(0.05, 1.0).is_err());
        let mut m = SequentialMonitor::new(0.05, 100.0).unwrap();
        let one = Summary::from_slice(&[1.0]).unwrap();
        assert!(m.update(&one, &one).is_err());
    }
}

//! GrowthBook's stats engine (gbstats 0.8.0) in closed form: per-arm
//! statistics, `TwoSidedTTest` and `EffectBayesianABTest` with the runner's
//! default flat prior. Every formula follows the reference's own code path,
//! guards included, so the numbers agree to 1e-9 (the fixtures in
//! `tests/fixtures/analysis/` were produced by gbstats itself).

use flightdeck_stats::distributions::{norm_cdf, norm_ppf, t_ppf, t_sf};
use serde::{Deserialize, Serialize};

/// A metric's kind: how per-arm variance is defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricKind {
    /// Every value 0 or 1: variance `p(1 − p)` (ddof 0), gbstats'
    /// `ProportionStatistic`.
    Binomial,
    /// Any number: variance `(Σx² − (Σx)²/n)/(n − 1)`, gbstats'
    /// `SampleMeanStatistic`.
    Mean,
}

/// One arm's sums for one metric.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct ArmSums {
    /// Units (users) in the arm.
    pub n: u64,
    /// Σ x.
    pub sum: f64,
    /// Σ x².
    pub sum_squares: f64,
}

impl ArmSums {
    /// Adds one value.
    pub fn push(&mut self, x: f64) {
        self.n += 1;
        self.sum += x;
        self.sum_squares += x * x;
    }

    /// gbstats' mean: `sum / n`, 0 when empty.
    pub fn mean(&self) -> f64 {
        if self.n == 0 {
            0.0
        } else {
            self.sum / self.n as f64
        }
    }

    /// gbstats' variance for `kind`.
    pub fn variance(&self, kind: MetricKind) -> f64 {
        match kind {
            MetricKind::Binomial => {
                let p = self.mean();
                p * (1.0 - p)
            }
            MetricKind::Mean => {
                if self.n <= 1 {
                    0.0
                } else {
                    let n = self.n as f64;
                    (self.sum_squares - self.sum * self.sum / n) / (n - 1.0)
                }
            }
        }
    }

    /// The sample variance with ddof 1 (what Welch's test uses on raw values).
    pub fn sample_variance(&self) -> f64 {
        if self.n <= 1 {
            0.0
        } else {
            let n = self.n as f64;
            (self.sum_squares - self.sum * self.sum / n) / (n - 1.0)
        }
    }
}

/// Why gbstats returned its default output instead of a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum GuardError {
    /// The control's mean is 0 (no relative lift exists).
    ZeroNegativeBaselineVariation,
    /// An arm's variance is 0 or less.
    ZeroNegativeVariance,
    /// An arm has no units.
    NoUnitsInVariation,
}

/// Relative (`(m_B − m_A)/m_A`, a fraction) or absolute (`m_B − m_A`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Difference {
    /// A fraction of the control's mean.
    Relative,
    /// In the metric's unit.
    Absolute,
}

/// gbstats' `TwoSidedTTest` result.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Frequentist {
    /// The lift `Δ`.
    pub estimate: f64,
    /// Lower end of the `1 − α` interval.
    pub ci_low: f64,
    /// Upper end.
    pub ci_high: f64,
    /// Two-sided p-value.
    pub p_value: f64,
    /// Set when a guard returned the default output.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<GuardError>,
}

/// gbstats' `EffectBayesianABTest` result.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bayesian {
    /// P(the treatment is better), direction-aware (for a lower-is-better
    /// metric, P(lift < 0)).
    pub chance_to_win: f64,
    /// Lower end of the `1 − α` credible interval.
    pub ci_low: f64,
    /// Upper end.
    pub ci_high: f64,
    /// Expected loss of keeping the control.
    pub risk_control: f64,
    /// Expected loss of shipping the treatment.
    pub risk_treatment: f64,
    /// Set when a guard returned the default output.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<GuardError>,
}

/// `Δ` and the delta-method variance `V` (gbstats' `frequentist_diff` and
/// `frequentist_variance`).
fn diff_and_variance(a: (f64, f64, f64), b: (f64, f64, f64), d: Difference) -> (f64, f64) {
    let ((m_a, v_a, n_a), (m_b, v_b, n_b)) = (a, b);
    match d {
        Difference::Relative => (
            (m_b - m_a) / m_a,
            v_b / (m_a * m_a * n_b) + v_a * m_b * m_b / (m_a.powi(4) * n_a),
        ),
        Difference::Absolute => (m_b - m_a, v_b / n_b + v_a / n_a),
    }
}

fn moments(s: &ArmSums, kind: MetricKind) -> (f64, f64, f64) {
    (s.mean(), s.variance(kind), s.n as f64)
}

/// gbstats' `TwoSidedTTest(stat_a, stat_b, FrequentistConfig(alpha, difference_type))`.
pub fn two_sided_ttest(
    a: &ArmSums,
    b: &ArmSums,
    kind: MetricKind,
    d: Difference,
    alpha: f64,
) -> Frequentist {
    let default = |error| Frequentist {
        estimate: 0.0,
        ci_low: 0.0,
        ci_high: 0.0,
        p_value: 1.0,
        error: Some(error),
    };
    let (ma, mb) = (moments(a, kind), moments(b, kind));
    if ma.0 == 0.0 {
        return default(GuardError::ZeroNegativeBaselineVariation);
    }
    if ma.1 <= 0.0 || mb.1 <= 0.0 {
        return default(GuardError::ZeroNegativeVariance);
    }
    let (delta, v) = diff_and_variance(ma, mb, d);
    let se = v.sqrt();
    let (va_n, vb_n) = (ma.1 / ma.2, mb.1 / mb.2);
    let dof = (va_n + vb_n).powi(2) / (vb_n * vb_n / (mb.2 - 1.0) + va_n * va_n / (ma.2 - 1.0));
    let t = delta / se;
    let p_value = (2.0 * t_sf(t.abs(), dof)).min(1.0);
    let q = t_ppf(1.0 - alpha / 2.0, dof);
    Frequentist {
        estimate: delta,
        ci_low: delta - q * se,
        ci_high: delta + q * se,
        p_value,
        error: None,
    }
}

fn norm_pdf(x: f64) -> f64 {
    (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

/// gbstats' `EffectBayesianABTest` with the runner's default improper
/// (flat) prior; `inverse` for lower-is-better metrics.
pub fn effect_bayesian(
    a: &ArmSums,
    b: &ArmSums,
    kind: MetricKind,
    d: Difference,
    alpha: f64,
    inverse: bool,
) -> Bayesian {
    let default = |error| Bayesian {
        chance_to_win: 0.5,
        ci_low: 0.0,
        ci_high: 0.0,
        risk_control: 0.0,
        risk_treatment: 0.0,
        error: Some(error),
    };
    let (ma, mb) = (moments(a, kind), moments(b, kind));
    if d == Difference::Relative && ma.0 == 0.0 {
        return default(GuardError::ZeroNegativeBaselineVariation);
    }
    if a.n == 0 || b.n == 0 {
        return default(GuardError::NoUnitsInVariation);
    }
    if ma.1 <= 0.0 || mb.1 <= 0.0 {
        return default(GuardError::ZeroNegativeVariance);
    }
    let (mu, v) = diff_and_variance(ma, mb, d);
    let sigma = v.sqrt();
    let z = mu / sigma;
    let win = norm_cdf(z);
    let q = -norm_ppf(alpha / 2.0);
    let risk_keep_control = mu * norm_cdf(z) + sigma * norm_pdf(z);
    let risk_ship = sigma * norm_pdf(z) - mu * norm_cdf(-z);
    let (risk_control, risk_treatment) = if inverse {
        (risk_ship, risk_keep_control)
    } else {
        (risk_keep_control, risk_ship)
    };
    Bayesian {
        chance_to_win: if inverse { 1.0 - win } else { win },
        ci_low: mu - q * sigma,
        ci_high: mu + q * sigma,
        risk_control,
        risk_treatment,
        error: None,
    }
}

/// Welch's t-test on the raw values of two arms, as
/// `scipy.stats.ttest_ind(b, a, equal_var=False)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Welch {
    /// t of `b − a`.
    pub statistic: f64,
    /// Two-sided p-value.
    pub p_value: f64,
    /// Welch–Satterthwaite degrees of freedom.
    pub df: f64,
}

/// Welch's test from sums; `None` with fewer than 2 values in an arm or no
/// variance at all.
pub fn welch(a: &ArmSums, b: &ArmSums) -> Option<Welch> {
    if a.n < 2 || b.n < 2 {
        return None;
    }
    let (va, vb) = (
        a.sample_variance() / a.n as f64,
        b.sample_variance() / b.n as f64,
    );
    if va + vb <= 0.0 {
        return None;
    }
    let statistic = (b.mean() - a.mean()) / (va + vb).sqrt();
    let df = (va + vb).powi(2) / (va * va / (a.n as f64 - 1.0) + vb * vb / (b.n as f64 - 1.0));
    Some(Welch {
        statistic,
        p_value: (2.0 * t_sf(statistic.abs(), df)).min(1.0),
        df,
    })
}

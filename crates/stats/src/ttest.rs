//! Two-sample t-tests: Welch (default) and Student.

use serde::{Deserialize, Serialize};

use crate::distributions::{norm_ppf, t_cdf, t_ppf, t_sf};
use crate::error::{StatsError, require_counts, unit_interval};
use crate::summary::Summary;

/// Which t-test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TTestKind {
    /// Unequal variances (Welch–Satterthwaite degrees of freedom). The default.
    Welch,
    /// Pooled variance, `n_a + n_b − 2` degrees of freedom.
    Student,
}

/// The result of a two-sample t-test of treatment `b` against control `a`.
///
/// Signs follow "treatment minus control": `diff = mean_b − mean_a`, and the
/// statistic has the sign of `diff` (as `scipy.stats.ttest_ind(b, a)`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TTest {
    /// Welch or Student.
    pub test: TTestKind,
    /// The t statistic.
    pub statistic: f64,
    /// Degrees of freedom.
    pub df: f64,
    /// Two-sided p-value.
    pub p_value: f64,
    /// One-sided p-value for "b is greater than a".
    pub p_value_greater: f64,
    /// One-sided p-value for "b is less than a".
    pub p_value_less: f64,
    /// Control mean.
    pub mean_a: f64,
    /// Treatment mean.
    pub mean_b: f64,
    /// `mean_b − mean_a`.
    pub diff: f64,
    /// Lower end of the `1 − alpha` interval for `diff`.
    pub ci_low: f64,
    /// Upper end of the `1 − alpha` interval for `diff`.
    pub ci_high: f64,
    /// The significance level used for the interval.
    pub alpha: f64,
    /// Relative lift `mean_b / mean_a − 1`, when `mean_a` is not 0.
    pub lift: Option<f64>,
    /// Delta-method `1 − alpha` interval for the lift (normal approximation).
    pub lift_ci: Option<(f64, f64)>,
}

/// Runs a t-test of `b` (treatment) against `a` (control) from summaries.
///
/// ```
/// use flightdeck_stats::{Summary, TTestKind, ttest};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let a = Summary::from_slice(&[5.1, 4.9, 5.6, 5.8, 6.0, 5.2])?;
/// let b = Summary::from_slice(&[6.1, 6.4, 5.9, 6.8, 7.0, 6.3])?;
/// let r = ttest(&a, &b, TTestKind::Welch, 0.05)?;
/// assert!(r.diff > 0.0 && r.statistic > 0.0 && r.p_value < 0.01);
/// assert!(r.ci_low > 0.0);
/// # Ok(())
/// # }
/// ```
///
/// # Errors
///
/// [`StatsError::TooFewObservations`] with fewer than 2 observations in an
/// arm, [`StatsError::ZeroVariance`] when both arms are constant, and
/// [`StatsError::OutOfUnitInterval`] for `alpha` outside (0, 1).
pub fn ttest(a: &Summary, b: &Summary, kind: TTestKind, alpha: f64) -> Result<TTest, StatsError> {
    unit_interval("alpha", alpha)?;
    require_counts(&[("sample a", a.count()), ("sample b", b.count())], 2)?;
    let (na, nb) = (a.count() as f64, b.count() as f64);
    let (va, vb) = (a.variance(), b.variance());
    if va == 0.0 && vb == 0.0 {
        return Err(StatsError::ZeroVariance {
            detail: format!(
                "sample a is all {} and sample b is all {}",
                a.mean(),
                b.mean()
            ),
        });
    }
    let (se, df) = match kind {
        TTestKind::Welch => {
            let (qa, qb) = (va / na, vb / nb);
            let se2 = qa + qb;
            let df = se2 * se2 / (qa * qa / (na - 1.0) + qb * qb / (nb - 1.0));
            (se2.sqrt(), df)
        }
        TTestKind::Student => {
            let df = na + nb - 2.0;
            let pooled = ((na - 1.0) * va + (nb - 1.0) * vb) / df;
            ((pooled * (1.0 / na + 1.0 / nb)).sqrt(), df)
        }
    };
    let diff = b.mean() - a.mean();
    let statistic = diff / se;
    // Summaries of huge values overflow their variance (inf) or the
    // difference of their means; the t distribution is then undefined.
    for (what, v) in [
        ("the variance", va + vb),
        ("the standard error", se),
        ("the difference of the means", diff),
        ("the degrees of freedom", df),
    ] {
        if !v.is_finite() {
            return Err(StatsError::Overflow {
                input: "samples a and b".into(),
                what,
            });
        }
    }
    let p_value = (2.0 * t_sf(statistic.abs(), df)).min(1.0);
    let q = t_ppf(1.0 - alpha / 2.0, df);
    let (lift, lift_ci) = if a.mean() != 0.0 {
        let ma = a.mean();
        let lift = b.mean() / ma - 1.0;
        let var = vb / (nb * ma * ma) + b.mean() * b.mean() * va / (na * ma.powi(4));
        let z = norm_ppf(1.0 - alpha / 2.0);
        (
            Some(lift),
            Some((lift - z * var.sqrt(), lift + z * var.sqrt())),
        )
    } else {
        (None, None)
    };
    Ok(TTest {
        test: kind,
        statistic,
        df,
        p_value,
        p_value_greater: t_sf(statistic, df),
        p_value_less: t_cdf(statistic, df),
        mean_a: a.mean(),
        mean_b: b.mean(),
        diff,
        ci_low: diff - q * se,
        ci_high: diff + q * se,
        alpha,
        lift,
        lift_ci,
    })
}

/// Like [`ttest`] on raw observations.
///
/// # Errors
///
/// As [`ttest`], plus [`StatsError::NonFinite`] naming the sample and position.
pub fn ttest_slices(
    a: &[f64],
    b: &[f64],
    kind: TTestKind,
    alpha: f64,
) -> Result<TTest, StatsError> {
    let sa = Summary::from_named_slice("sample a", a)?;
    let sb = Summary::from_named_slice("sample b", b)?;
    // The test is scale-invariant: values so large that their squares
    // overflow, or so small that they underflow, are divided by a power of
    // two (exact), and the results in the data's units are scaled back.
    let largest = a.iter().chain(b).fold(0.0f64, |m, x| m.max(x.abs()));
    // Tiny values underflow the same way (their squares round to 0, the
    // standard error to 0, the statistic to infinity); they are scaled up.
    if largest <= 1e150 && (largest == 0.0 || largest >= 1e-150) {
        return ttest(&sa, &sb, kind, alpha);
    }
    let scale = 2f64.powi(largest.log2().ceil() as i32);
    let scaled = |xs: &[f64]| xs.iter().map(|x| x / scale).collect::<Vec<_>>();
    let sa = Summary::from_named_slice("sample a", &scaled(a))?;
    let sb = Summary::from_named_slice("sample b", &scaled(b))?;
    let mut r = ttest(&sa, &sb, kind, alpha)?;
    for v in [
        &mut r.mean_a,
        &mut r.mean_b,
        &mut r.diff,
        &mut r.ci_low,
        &mut r.ci_high,
    ] {
        *v *= scale;
        if !v.is_finite() {
            return Err(StatsError::Overflow {
                input: "samples a and b".into(),
                what: "the difference of the means",
            });
        }
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_but_finite_values_are_scaled_or_refused_never_inf() {
        // The statistic and p-value are scale-invariant: 1e200-sized data
        // give the answer of the same data at 1e0, and the means scale.
        let small_a = [1.0, -1.0, 0.5];
        let small_b = [2.0, 1.0, 3.0];
        let big = |xs: &[f64]| xs.iter().map(|x| x * 1e200).collect::<Vec<_>>();
        for kind in [TTestKind::Welch, TTestKind::Student] {
            let r0 = ttest_slices(&small_a, &small_b, kind, 0.05).unwrap();
            let r = ttest_slices(&big(&small_a), &big(&small_b), kind, 0.05).unwrap();
            assert!((r.statistic - r0.statistic).abs() < 1e-12 * r0.statistic.abs());
            assert!((r.p_value - r0.p_value).abs() < 1e-12);
            assert!((r.diff / 1e200 - r0.diff).abs() < 1e-9);
            assert!(r.ci_low.is_finite() && r.ci_high.is_finite());
        }
        let r = ttest_slices(&[1e200, -1e200], &[1e200, -1e200], TTestKind::Welch, 0.05);
        assert!(
            matches!(r, Err(StatsError::ZeroVariance { .. }))
                || r.is_ok_and(|r| r.p_value.is_finite())
        );
        // Tiny values (squares underflow to 0) are scaled up the same way
        // (found by the stats_numbers fuzz target: the statistic was -inf
        // and the interval NaN).
        let tiny = |xs: &[f64]| xs.iter().map(|x| x * 1e-234).collect::<Vec<_>>();
        for kind in [TTestKind::Welch, TTestKind::Student] {
            let r0 = ttest_slices(&small_a, &small_b, kind, 0.05).unwrap();
            let r = ttest_slices(&tiny(&small_a), &tiny(&small_b), kind, 0.05).unwrap();
            assert!(
                (r.statistic - r0.statistic).abs() < 1e-12 * r0.statistic.abs(),
                "{r:?}"
            );
            assert!((r.p_value - r0.p_value).abs() < 1e-12);
            assert!(r.ci_low.is_finite() && r.ci_high.is_finite() && r.ci_low < r.ci_high);
        }
        // Summaries whose variance already overflowed are refused.
        let inf = Summary::from_moments(2, 0.0, f64::MAX).unwrap();
        let inf2 = Summary::from_moments(2, 0.0, f64::MAX).unwrap();
        let err = ttest(&inf, &inf2, TTestKind::Student, 0.05);
        assert!(matches!(err, Err(StatsError::Overflow { .. })), "{err:?}");
    }

    #[test]
    fn too_few_and_constant_samples_are_errors() {
        let one = Summary::from_slice(&[1.0]).unwrap();
        let two = Summary::from_slice(&[1.0, 2.0]).unwrap();
        let err = ttest(&one, &two, TTestKind::Welch, 0.05).unwrap_err();
        assert_eq!(
            err.to_string(),
            "sample a has 1 observations; at least 2 are needed"
        );
        let c = Summary::from_slice(&[3.0, 3.0]).unwrap();
        assert!(matches!(
            ttest(&c, &c, TTestKind::Student, 0.05),
            Err(StatsError::ZeroVariance { .. })
        ));
        assert!(ttest(&two, &two, TTestKind::Welch, 0.0).is_err());
        assert!(
            ttest_slices(&[1.0, f64::NAN], &[1.0, 2.0], TTestKind::Welch, 0.05)
                .unwrap_err()
                .to_string()
                .contains("sample a")
        );
    }

    #[test]
    fn one_sided_p_values_add_up() {
        let a = Summary::from_slice(&[1.0, 2.0, 3.0, 4.0]).unwrap();
        let b = Summary::from_slice(&[2.0, 3.5, 4.0, 6.0]).unwrap();
        let r = ttest(&a, &b, TTestKind::Welch, 0.05).unwrap();
        assert!((r.p_value_greater + r.p_value_less - 1.0).abs() < 1e-15);
        assert!((r.p_value - 2.0 * r.p_value_greater).abs() < 1e-15);
    }
}

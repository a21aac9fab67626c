//! Two-proportion z-test.

use serde::{Deserialize, Serialize};

use crate::distributions::{norm_ppf, norm_sf};
use crate::error::{StatsError, unit_interval};

/// Successes out of trials for one arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proportion {
    /// Successes.
    pub successes: u64,
    /// Trials.
    pub total: u64,
}

impl Proportion {
    /// `successes / total`, checked.
    ///
    /// # Errors
    ///
    /// [`StatsError::InvalidCount`] when `total` is 0 or `successes > total`.
    pub fn new(successes: u64, total: u64) -> Result<Self, StatsError> {
        if total == 0 || successes > total {
            return Err(StatsError::InvalidCount {
                input: "proportion".into(),
                detail: format!("{successes}/{total}: need total > 0 and successes <= total"),
            });
        }
        Ok(Self { successes, total })
    }

    /// The observed rate.
    pub fn rate(&self) -> f64 {
        self.successes as f64 / self.total as f64
    }
}

/// The result of a two-proportion z-test of `b` against `a`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ProportionsTest {
    /// z statistic with the pooled standard error; the sign of `diff`.
    pub statistic: f64,
    /// Two-sided p-value.
    pub p_value: f64,
    /// Rate of `a`.
    pub rate_a: f64,
    /// Rate of `b`.
    pub rate_b: f64,
    /// `rate_b − rate_a`.
    pub diff: f64,
    /// Lower end of the Wald `1 − alpha` interval for `diff` (unpooled).
    pub ci_low: f64,
    /// Upper end of that interval.
    pub ci_high: f64,
    /// The significance level.
    pub alpha: f64,
}

/// Pooled two-proportion z-test, as statsmodels' `proportions_ztest([b, a],
/// [n_b, n_a])`; the interval is statsmodels'
/// `confint_proportions_2indep(method="wald", compare="diff")`.
///
/// # Errors
///
/// [`StatsError::ZeroVariance`] when both arms are all successes or all
/// failures, and [`StatsError::OutOfUnitInterval`] for a bad `alpha`.
pub fn proportions_ztest(
    a: Proportion,
    b: Proportion,
    alpha: f64,
) -> Result<ProportionsTest, StatsError> {
    unit_interval("alpha", alpha)?;
    let (pa, pb) = (a.rate(), b.rate());
    let (na, nb) = (a.total as f64, b.total as f64);
    // In f64: the sum of two u64 counts can overflow u64.
    let pooled = (a.successes as f64 + b.successes as f64) / (na + nb);
    let se = (pooled * (1.0 - pooled) * (1.0 / na + 1.0 / nb)).sqrt();
    if se == 0.0 {
        return Err(StatsError::ZeroVariance {
            detail: format!("both arms have rate {pooled}"),
        });
    }
    let diff = pb - pa;
    let statistic = diff / se;
    let se_diff = (pa * (1.0 - pa) / na + pb * (1.0 - pb) / nb).sqrt();
    let z = norm_ppf(1.0 - alpha / 2.0);
    Ok(ProportionsTest {
        statistic,
        p_value: (2.0 * norm_sf(statistic.abs())).min(1.0),
        rate_a: pa,
        rate_b: pb,
        diff,
        ci_low: diff - z * se_diff,
        ci_high: diff + z * se_diff,
        alpha,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_counts_are_errors() {
        assert!(Proportion::new(5, 0).is_err());
        assert_eq!(
            Proportion::new(11, 10).unwrap_err().to_string(),
            "invalid count in proportion: 11/10: need total > 0 and successes <= total"
        );
        let all = Proportion::new(10, 10).unwrap();
        assert!(matches!(
            proportions_ztest(all, all, 0.05),
            Err(StatsError::ZeroVariance { .. })
        ));
    }
}

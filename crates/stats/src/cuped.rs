//! CUPED: variance reduction with a pre-experiment covariate.
//!
//! Deng, Xu, Kohavi and Walker, "Improving the Sensitivity of Online
//! Controlled Experiments by Utilizing Pre-Experiment Data", WSDM 2013.
//! Each observation `y` is replaced by `y − θ (x − x̄)`, where `x` is the
//! same unit's metric before the experiment, `x̄` its mean over both arms, and
//! `θ = cov(x, y) / var(x)` pooled over both arms (one θ for all arms keeps
//! the adjusted difference unbiased). The variance shrinks by the factor
//! `1 − ρ²`, so the same experiment detects smaller effects.

use serde::{Deserialize, Serialize};

use crate::error::{StatsError, finite};
use crate::summary::Summary;

/// Adjusted summaries for a t-test, and what the adjustment did.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CupedAdjustment {
    /// Control after adjustment.
    pub a: Summary,
    /// Treatment after adjustment.
    pub b: Summary,
    /// The pooled regression coefficient θ.
    pub theta: f64,
    /// `1 − var(adjusted) / var(raw)`, pooled over both arms.
    pub variance_reduction: f64,
}

/// Applies CUPED to control `(a_y, a_x)` and treatment `(b_y, b_x)`, where
/// `*_y` are the experiment metric and `*_x` the same units' pre-period metric.
///
/// ```
/// use flightdeck_stats::{TTestKind, cuped, ttest};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let a_x = [10.0, 20.0, 30.0, 40.0, 50.0];
/// let a_y = [11.0, 19.0, 32.0, 41.0, 49.0];
/// let b_x = [12.0, 22.0, 28.0, 39.0, 51.0];
/// let b_y = [14.0, 24.0, 31.0, 42.0, 55.0];
/// let adj = cuped(&a_y, &a_x, &b_y, &b_x)?;
/// assert!(adj.variance_reduction > 0.9);
/// let t = ttest(&adj.a, &adj.b, TTestKind::Welch, 0.05)?;
/// assert!(t.p_value < 0.05); // invisible without the covariate
/// # Ok(())
/// # }
/// ```
///
/// # Errors
///
/// [`StatsError::InvalidArgument`] when a metric and its covariate differ in
/// length or the covariate is constant, [`StatsError::NonFinite`] naming a
/// NaN or infinity, and [`StatsError::TooFewObservations`] under 2 per arm.
pub fn cuped(
    a_y: &[f64],
    a_x: &[f64],
    b_y: &[f64],
    b_x: &[f64],
) -> Result<CupedAdjustment, StatsError> {
    for (name, y, x) in [("a", a_y, a_x), ("b", b_y, b_x)] {
        if y.len() != x.len() {
            return Err(StatsError::InvalidArgument {
                name: "covariate",
                detail: format!(
                    "arm {name} has {} metric values but {} covariate values",
                    y.len(),
                    x.len()
                ),
            });
        }
        if y.len() < 2 {
            return Err(StatsError::TooFewObservations {
                input: format!("sample {name}"),
                n: y.len() as u64,
                min: 2,
            });
        }
        finite(&format!("sample {name}"), y)?;
        finite(&format!("covariate {name}"), x)?;
    }
    let n = (a_y.len() + b_y.len()) as f64;
    let mean = |v: &[f64], w: &[f64]| (v.iter().sum::<f64>() + w.iter().sum::<f64>()) / n;
    let (mx, my) = (mean(a_x, b_x), mean(a_y, b_y));
    let (mut sxx, mut sxy, mut syy) = (0.0, 0.0, 0.0);
    for (y, x) in a_y.iter().zip(a_x).chain(b_y.iter().zip(b_x)) {
        let (dx, dy) = (x - mx, y - my);
        sxx += dx * dx;
        sxy += dx * dy;
        syy += dy * dy;
    }
    if sxx == 0.0 {
        return Err(StatsError::InvalidArgument {
            name: "covariate",
            detail: format!("the covariate is constant ({mx}), so it cannot explain any variance"),
        });
    }
    let theta = sxy / sxx;
    let adjust = |y: &[f64], x: &[f64]| -> Result<Summary, StatsError> {
        let v: Vec<f64> = y.iter().zip(x).map(|(y, x)| y - theta * (x - mx)).collect();
        Summary::from_slice(&v)
    };
    let variance_reduction = if syy > 0.0 {
        sxy * sxy / (sxx * syy)
    } else {
        0.0
    };
    Ok(CupedAdjustment {
        a: adjust(a_y, a_x)?,
        b: adjust(b_y, b_x)?,
        theta,
        variance_reduction,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_input_is_named() {
        let e = cuped(&[1.0, 2.0], &[1.0], &[1.0, 2.0], &[1.0, 2.0]).unwrap_err();
        assert!(
            e.to_string()
                .contains("arm a has 2 metric values but 1 covariate"),
            "{e}"
        );
        let e = cuped(&[1.0, 2.0], &[3.0, 3.0], &[1.0, 2.0], &[3.0, 3.0]).unwrap_err();
        assert!(e.to_string().contains("constant"), "{e}");
        let e = cuped(&[1.0, 2.0], &[3.0, f64::NAN], &[1.0, 2.0], &[3.0, 4.0]).unwrap_err();
        assert!(e.to_string().contains("covariate a"), "{e}");
    }

    #[test]
    fn an_orthogonal_covariate_changes_nothing() {
        let a_y = [1.0, 2.0, 3.0, 4.0];
        let a_x = [1.0, -1.0, -1.0, 1.0]; // exactly uncorrelated with a_y
        let adj = cuped(&a_y, &a_x, &a_y, &a_x).unwrap();
        assert_eq!((adj.theta, adj.variance_reduction), (0.0, 0.0));
        assert_eq!(adj.a, Summary::from_slice(&a_y).unwrap());
    }
}

//! Chi-square tests: independence on r×c tables, goodness of fit, and the
//! sample-ratio-mismatch check.

use serde::{Deserialize, Serialize};

use crate::distributions::chi2_sf;
use crate::error::{StatsError, unit_interval};

/// A chi-square test result.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ChiSquare {
    /// The chi-square statistic.
    pub statistic: f64,
    /// Degrees of freedom.
    pub df: f64,
    /// The p-value (upper tail).
    pub p_value: f64,
}

fn check_counts(input: &str, values: &[f64]) -> Result<(), StatsError> {
    for (i, &v) in values.iter().enumerate() {
        if !v.is_finite() || v < 0.0 {
            return Err(StatsError::InvalidCount {
                input: input.into(),
                detail: format!("value {v} at position {i} must be a finite count >= 0"),
            });
        }
    }
    Ok(())
}

/// Chi-square test of independence, as `scipy.stats.chi2_contingency`.
///
/// `table` is row-major. With `yates` the continuity correction is applied
/// when the table has one degree of freedom (2×2), as scipy does.
///
/// ```
/// use flightdeck_stats::chi_square_independence;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let r = chi_square_independence(&[vec![10.0, 20.0], vec![30.0, 40.0]], false)?;
/// assert_eq!(r.df, 1.0);
/// assert!((r.statistic - 0.7936507936507936).abs() < 1e-12);
/// # Ok(())
/// # }
/// ```
///
/// # Errors
///
/// [`StatsError::InvalidCount`] for negative or non-finite cells, and
/// [`StatsError::InvalidArgument`] for ragged tables, fewer than 2 rows or
/// columns, or a row or column that sums to zero.
pub fn chi_square_independence(table: &[Vec<f64>], yates: bool) -> Result<ChiSquare, StatsError> {
    let rows = table.len();
    let cols = table.first().map_or(0, Vec::len);
    if rows < 2 || cols < 2 {
        return Err(StatsError::InvalidArgument {
            name: "table",
            detail: format!("{rows}x{cols}: need at least 2 rows and 2 columns"),
        });
    }
    for (r, row) in table.iter().enumerate() {
        if row.len() != cols {
            return Err(StatsError::InvalidArgument {
                name: "table",
                detail: format!("row {} has {} cells, row 1 has {cols}", r + 1, row.len()),
            });
        }
        check_counts(&format!("table row {}", r + 1), row)?;
    }
    let row_sums: Vec<f64> = table.iter().map(|r| r.iter().sum()).collect();
    let col_sums: Vec<f64> = (0..cols)
        .map(|c| table.iter().map(|r| r[c]).sum())
        .collect();
    let total: f64 = row_sums.iter().sum();
    if !total.is_finite() {
        return Err(StatsError::Overflow {
            input: "table".into(),
            what: "the table's total",
        });
    }
    if let Some(r) = row_sums.iter().position(|&s| s == 0.0) {
        return Err(StatsError::InvalidArgument {
            name: "table",
            detail: format!(
                "row {} sums to zero, so its expected counts are zero",
                r + 1
            ),
        });
    }
    if let Some(c) = col_sums.iter().position(|&s| s == 0.0) {
        return Err(StatsError::InvalidArgument {
            name: "table",
            detail: format!(
                "column {} sums to zero, so its expected counts are zero",
                c + 1
            ),
        });
    }
    let df = ((rows - 1) * (cols - 1)) as f64;
    let correct = yates && df == 1.0;
    let mut statistic = 0.0;
    for (r, row) in table.iter().enumerate() {
        for (c, &observed) in row.iter().enumerate() {
            let expected = row_sums[r] * col_sums[c] / total;
            let mut d = observed - expected;
            if correct {
                // scipy: move each observation half a unit towards its expectation.
                d = d.signum() * (d.abs() - 0.5).max(0.0);
            }
            statistic += d * d / expected;
        }
    }
    Ok(ChiSquare {
        statistic,
        df,
        p_value: chi2_sf(statistic, df),
    })
}

/// Chi-square goodness of fit, as `scipy.stats.chisquare(observed, expected)`.
///
/// # Errors
///
/// [`StatsError::InvalidCount`] for negative or non-finite values,
/// [`StatsError::InvalidArgument`] for mismatched lengths, fewer than 2
/// categories, a zero expectation, or sums that differ by more than 1e-8
/// relative (scipy's check).
pub fn chi_square_goodness_of_fit(
    observed: &[f64],
    expected: &[f64],
) -> Result<ChiSquare, StatsError> {
    if observed.len() != expected.len() || observed.len() < 2 {
        return Err(StatsError::InvalidArgument {
            name: "categories",
            detail: format!(
                "{} observed and {} expected counts: need the same number, at least 2",
                observed.len(),
                expected.len()
            ),
        });
    }
    check_counts("observed", observed)?;
    check_counts("expected", expected)?;
    if let Some(i) = expected.iter().position(|&e| e == 0.0) {
        return Err(StatsError::InvalidArgument {
            name: "expected",
            detail: format!("category {} has an expected count of zero", i + 1),
        });
    }
    let (so, se): (f64, f64) = (observed.iter().sum(), expected.iter().sum());
    if (so - se).abs() > 1e-8 * so.max(se) {
        return Err(StatsError::InvalidArgument {
            name: "expected",
            detail: format!("observed counts sum to {so} but expected counts sum to {se}"),
        });
    }
    let statistic: f64 = observed
        .iter()
        .zip(expected)
        .map(|(o, e)| (o - e) * (o - e) / e)
        .sum();
    let df = (observed.len() - 1) as f64;
    Ok(ChiSquare {
        statistic,
        df,
        p_value: chi2_sf(statistic, df),
    })
}

/// A sample-ratio-mismatch check result.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SampleRatioMismatch {
    /// The goodness-of-fit statistic.
    pub statistic: f64,
    /// Degrees of freedom.
    pub df: f64,
    /// The p-value.
    pub p_value: f64,
    /// `p_value < alpha`: the traffic split does not match the configuration.
    pub mismatch: bool,
    /// The threshold used.
    pub alpha: f64,
}

/// The default SRM threshold: a mismatch is declared when p < 0.001.
pub const DEFAULT_SRM_ALPHA: f64 = 0.001;

/// Checks observed arm sizes against the *configured* weights (which need
/// not sum to 1, and need not be equal).
///
/// ```
/// use flightdeck_stats::sample_ratio_mismatch;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // A 90/10 split observed as 90/10 is fine; as 50/50 it is a mismatch.
/// assert!(!sample_ratio_mismatch(&[9_000, 1_000], &[0.9, 0.1], 0.001)?.mismatch);
/// assert!(sample_ratio_mismatch(&[5_000, 5_000], &[0.9, 0.1], 0.001)?.mismatch);
/// # Ok(())
/// # }
/// ```
///
/// # Errors
///
/// [`StatsError::InvalidArgument`] for mismatched lengths or weights that are
/// not positive and finite; [`StatsError::OutOfUnitInterval`] for `alpha`.
pub fn sample_ratio_mismatch(
    observed: &[u64],
    weights: &[f64],
    alpha: f64,
) -> Result<SampleRatioMismatch, StatsError> {
    unit_interval("alpha", alpha)?;
    if observed.len() != weights.len() {
        return Err(StatsError::InvalidArgument {
            name: "weights",
            detail: format!(
                "{} arms observed but {} weights configured",
                observed.len(),
                weights.len()
            ),
        });
    }
    if let Some((i, w)) = weights
        .iter()
        .enumerate()
        .find(|(_, w)| !(w.is_finite() && **w > 0.0))
    {
        return Err(StatsError::InvalidArgument {
            name: "weights",
            detail: format!("weight {w} of arm {} must be positive and finite", i + 1),
        });
    }
    let total: f64 = observed.iter().map(|&o| o as f64).sum();
    let wsum: f64 = weights.iter().sum();
    let obs: Vec<f64> = observed.iter().map(|&o| o as f64).collect();
    let exp: Vec<f64> = weights.iter().map(|w| total * w / wsum).collect();
    let r = chi_square_goodness_of_fit(&obs, &exp)?;
    Ok(SampleRatioMismatch {
        statistic: r.statistic,
        df: r.df,
        p_value: r.p_value,
        mismatch: r.p_value < alpha,
        alpha,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_tables_are_errors_naming_the_problem() {
        let e = chi_square_independence(&[vec![1.0, 2.0], vec![3.0]], false).unwrap_err();
        assert!(e.to_string().contains("row 2 has 1 cells"), "{e}");
        let e = chi_square_independence(&[vec![1.0, -2.0], vec![3.0, 4.0]], false).unwrap_err();
        assert!(e.to_string().contains("table row 1"), "{e}");
        let e = chi_square_independence(&[vec![0.0, 0.0], vec![3.0, 4.0]], false).unwrap_err();
        assert!(e.to_string().contains("row 1 sums to zero"), "{e}");
        let e = sample_ratio_mismatch(&[1, 2], &[0.5], 0.001).unwrap_err();
        assert!(
            e.to_string().contains("2 arms observed but 1 weights"),
            "{e}"
        );
        let e = sample_ratio_mismatch(&[1, 2], &[0.5, -1.0], 0.001).unwrap_err();
        assert!(e.to_string().contains("weight -1 of arm 2"), "{e}");
    }
}

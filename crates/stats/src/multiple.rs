//! Multiple-comparison corrections: adjusted p-values as statsmodels'
//! `multipletests` computes them.

use serde::{Deserialize, Serialize};

use crate::error::StatsError;

/// The correction method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Correction {
    /// Bonferroni: `min(1, m·p)`. Controls the family-wise error rate.
    Bonferroni,
    /// Holm's step-down: uniformly more powerful than Bonferroni, same guarantee.
    Holm,
    /// Benjamini–Hochberg step-up: controls the false discovery rate.
    BenjaminiHochberg,
}

/// Adjusted p-values, in the input order.
///
/// ```
/// use flightdeck_stats::{Correction, adjust_p_values};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let p = [0.01, 0.04, 0.03];
/// assert_eq!(adjust_p_values(&p, Correction::Bonferroni)?, [0.03, 0.12, 0.09]);
/// let holm = adjust_p_values(&p, Correction::Holm)?;
/// assert!((holm[1] - 0.06).abs() < 1e-15);
/// # Ok(())
/// # }
/// ```
///
/// # Errors
///
/// [`StatsError::InvalidArgument`] for a p-value outside [0, 1] or NaN.
pub fn adjust_p_values(p_values: &[f64], method: Correction) -> Result<Vec<f64>, StatsError> {
    if let Some((i, p)) = p_values
        .iter()
        .enumerate()
        .find(|(_, p)| !(0.0..=1.0).contains(*p))
    {
        return Err(StatsError::InvalidArgument {
            name: "p-values",
            detail: format!("p-value {p} at position {i} is not within [0, 1]"),
        });
    }
    let m = p_values.len();
    let mf = m as f64;
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p_values[a].total_cmp(&p_values[b]));
    let mut out = vec![0.0; m];
    match method {
        Correction::Bonferroni => {
            for (o, p) in out.iter_mut().zip(p_values) {
                *o = (p * mf).min(1.0);
            }
        }
        Correction::Holm => {
            let mut running: f64 = 0.0;
            for (rank, &i) in order.iter().enumerate() {
                let adj = ((mf - rank as f64) * p_values[i]).min(1.0);
                running = running.max(adj);
                out[i] = running;
            }
        }
        Correction::BenjaminiHochberg => {
            let mut running: f64 = 1.0;
            for (rank, &i) in order.iter().enumerate().rev() {
                let adj = p_values[i] * mf / (rank + 1) as f64;
                running = running.min(adj);
                out[i] = running.min(1.0);
            }
        }
    }
    Ok(out)
}

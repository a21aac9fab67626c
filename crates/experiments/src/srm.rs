//! Sample-ratio-mismatch checks on exposure counts against the configured
//! weights.

use flightdeck_stats::{SampleRatioMismatch, sample_ratio_mismatch};
use serde::{Deserialize, Serialize};

use crate::experiment::Experiment;
use crate::exposure::Exposure;

/// The outcome of an SRM check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SrmCheck {
    /// Exposures per variation.
    pub observed: Vec<u64>,
    /// The configured weights.
    pub weights: Vec<f64>,
    /// The chi-square goodness-of-fit test over the arms with weight > 0
    /// (none when there are no exposures, or fewer than two such arms).
    pub test: Option<SampleRatioMismatch>,
    /// Arms with weight 0 that received traffic (a leak: always a mismatch).
    pub leaked_arms: Vec<usize>,
    /// Whether the split is wrong: p < alpha, or a leak.
    pub mismatch: bool,
}

/// Checks `observed` exposures per variation against `weights`.
///
/// ```
/// use flightdeck_experiments::srm_check;
/// assert!(!srm_check(&[5_020, 4_980], &[0.5, 0.5], 0.001).mismatch);
/// assert!(srm_check(&[5_500, 4_500], &[0.5, 0.5], 0.001).mismatch);
/// assert!(srm_check(&[100, 100, 3], &[0.5, 0.5, 0.0], 0.001).mismatch);
/// ```
pub fn srm_check(observed: &[u64], weights: &[f64], alpha: f64) -> SrmCheck {
    let leaked_arms: Vec<usize> = weights
        .iter()
        .zip(observed)
        .enumerate()
        .filter(|(_, (w, o))| **w <= 0.0 && **o > 0)
        .map(|(i, _)| i)
        .collect();
    let (obs, w): (Vec<u64>, Vec<f64>) = observed
        .iter()
        .zip(weights)
        .filter(|(_, w)| **w > 0.0)
        .map(|(o, w)| (*o, *w))
        .unzip();
    let total: u64 = obs.iter().sum();
    let test = if total > 0 && obs.len() >= 2 && observed.len() == weights.len() {
        sample_ratio_mismatch(&obs, &w, alpha).ok()
    } else {
        None
    };
    let mismatch = !leaked_arms.is_empty() || test.is_some_and(|t| t.mismatch);
    SrmCheck {
        observed: observed.to_vec(),
        weights: weights.to_vec(),
        test,
        leaked_arms,
        mismatch,
    }
}

/// Counts `exposures` of `experiment` per variation and checks them. An
/// exposure naming a variation the experiment does not have counts as a
/// leak into that arm.
pub fn srm_from_exposures(exposures: &[Exposure], experiment: &Experiment, alpha: f64) -> SrmCheck {
    let n = experiment.variations().len();
    let mut counts = vec![0u64; n];
    let mut weights = experiment.weights().to_vec();
    for e in exposures
        .iter()
        .filter(|e| e.experiment == experiment.key())
    {
        if e.variation_id >= counts.len() {
            counts.resize(e.variation_id + 1, 0);
            weights.resize(e.variation_id + 1, 0.0);
        }
        counts[e.variation_id] += 1;
    }
    srm_check(&counts, &weights, alpha)
}

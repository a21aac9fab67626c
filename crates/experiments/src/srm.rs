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
    /// Whether the split is wrong: p < alpha, a leak, or exposures to
    /// variations the experiment does not have.
    pub mismatch: bool,
    /// Exposures naming a variation id the experiment does not have.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unknown_exposures: u64,
    /// The first few distinct unknown variation ids (at most 10).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unknown_variation_ids: Vec<u64>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// How many distinct unknown variation ids an [`SrmCheck`] lists.
const UNKNOWN_IDS_SHOWN: usize = 10;

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
        unknown_exposures: 0,
        unknown_variation_ids: Vec::new(),
    }
}

/// Counts `exposures` of `experiment` per variation and checks them. An
/// exposure naming a variation the experiment does not have is counted in
/// [`SrmCheck::unknown_exposures`] and makes a mismatch; the id is never
/// used to size or index anything.
pub fn srm_from_exposures(exposures: &[Exposure], experiment: &Experiment, alpha: f64) -> SrmCheck {
    let n = experiment.variations().len();
    let mut counts = vec![0u64; n];
    let mut unknown = 0u64;
    let mut unknown_ids: Vec<u64> = Vec::new();
    for e in exposures
        .iter()
        .filter(|e| e.experiment == experiment.key())
    {
        match counts.get_mut(e.variation_id) {
            Some(c) => *c += 1,
            None => {
                unknown += 1;
                let id = e.variation_id as u64;
                if unknown_ids.len() < UNKNOWN_IDS_SHOWN && !unknown_ids.contains(&id) {
                    unknown_ids.push(id);
                }
            }
        }
    }
    let mut check = srm_check(&counts, experiment.weights(), alpha);
    check.unknown_exposures = unknown;
    check.unknown_variation_ids = unknown_ids;
    check.mismatch |= unknown > 0;
    check
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variation_ids_out_of_range_are_counted_not_used_as_indexes() {
        let exp = Experiment::from_json(&serde_json::json!({
            "key": "e", "variations": [0, 1], "weights": [0.5, 0.5]
        }));
        let exposure = |v: usize| -> Exposure {
            serde_json::from_value(serde_json::json!({
                "timestamp_ms": 0, "experiment": "e", "variation_id": v,
                "variation_key": "x", "hash_attribute": "id", "hash_value": "u"
            }))
            .unwrap()
        };
        let mut xs: Vec<Exposure> = (0..100).map(|i| exposure(i % 2)).collect();
        xs.push(exposure(usize::MAX));
        xs.push(exposure(1_000_000_000));
        xs.push(exposure(usize::MAX));
        let c = srm_from_exposures(&xs, &exp, 0.001);
        assert_eq!(c.observed, [50, 50]);
        assert_eq!(c.unknown_exposures, 3);
        assert_eq!(c.unknown_variation_ids, [u64::MAX, 1_000_000_000]);
        assert!(c.mismatch);
    }
}

//! Statistical latency profiles. One run is a noisy witness of latency;
//! a profile keeps, per span path, the distribution of self times over N
//! recorded runs, and a check compares a batch of new runs with it by the
//! Mann-Whitney test and the Hodges-Lehmann shift (from
//! `flightdeck-stats`, R's `wilcox.test` to the last bit), failing only a
//! stage that is slower with confidence after Holm's correction across the
//! case's paths: `rag.generate +38 ms [+21, +55] p=0.002`.

use std::collections::BTreeMap;

use flightdeck_obs_core::locate::shown;
use flightdeck_stats::{Correction, adjust_p_values, mann_whitney};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::compare::{DiffKind, Difference};
use crate::error::GoldenError;

/// The most durations a profile keeps per path; beyond it, evenly spaced
/// order statistics stand in for the whole sample.
pub const MAX_SAMPLE: usize = 256;

/// One path's self-time distribution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Distribution {
    /// Runs that had this span.
    pub n: u32,
    /// Smallest self time, ms.
    pub min_ms: f64,
    /// Median, ms.
    pub p50_ms: f64,
    /// 90th percentile, ms.
    pub p90_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Largest, ms.
    pub max_ms: f64,
    /// Up to [`MAX_SAMPLE`] self times, sorted.
    pub sample_ms: Vec<f64>,
}

/// Per-path distributions of a case's recorded runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Runs recorded.
    pub runs: u32,
    /// Distributions by span path.
    pub spans: BTreeMap<String, Distribution>,
}

/// Linear-interpolation quantile of sorted data (numpy's default).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

impl Distribution {
    /// The distribution of `values` (milliseconds); `None` when empty.
    pub fn of(values: &[f64]) -> Option<Self> {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let sample_ms = if v.len() <= MAX_SAMPLE {
            v.clone()
        } else {
            (0..MAX_SAMPLE)
                .map(|i| v[((i as f64 + 0.5) * v.len() as f64 / MAX_SAMPLE as f64) as usize])
                .collect()
        };
        Some(Self {
            n: u32::try_from(v.len()).unwrap_or(u32::MAX),
            min_ms: v[0],
            p50_ms: quantile(&v, 0.5),
            p90_ms: quantile(&v, 0.9),
            p99_ms: quantile(&v, 0.99),
            max_ms: v[v.len() - 1],
            sample_ms,
        })
    }
}

impl Profile {
    /// A profile from per-path self times of `runs` runs.
    pub fn from_runs(runs: u32, by_path: &BTreeMap<String, Vec<f64>>) -> Self {
        Self {
            runs,
            spans: by_path
                .iter()
                .filter_map(|(p, v)| Distribution::of(v).map(|d| (p.clone(), d)))
                .collect(),
        }
    }

    pub(crate) fn validate(&self, file: &str) -> Result<(), GoldenError> {
        for (path, d) in &self.spans {
            let bad = |message: String| GoldenError::Invalid {
                file: file.to_owned(),
                field: format!("profile.spans.{}", shown(path)),
                message,
            };
            if d.sample_ms.is_empty() || d.sample_ms.len() > MAX_SAMPLE {
                return Err(bad(format!(
                    "sample_ms holds {} values; 1 to {MAX_SAMPLE} expected",
                    d.sample_ms.len()
                )));
            }
            if let Some(v) = d.sample_ms.iter().find(|v| !(v.is_finite() && **v >= 0.0)) {
                return Err(bad(format!("sample_ms holds {v}, not a duration")));
            }
        }
        Ok(())
    }
}

/// How a batch is checked against a profile.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProfileCheck {
    /// Family-wise error rate across a case's paths (Holm): a batch from
    /// the same distribution fails with at most this probability.
    pub alpha: f64,
    /// A shift must also exceed this many milliseconds to fail.
    pub floor_ms: f64,
    /// Fewest runs on each side for a test; smaller batches are compared
    /// one run at a time instead.
    pub min_runs: usize,
    /// Confidence level of the reported interval.
    pub confidence: f64,
}

impl Default for ProfileCheck {
    fn default() -> Self {
        Self {
            alpha: 0.01,
            floor_ms: 5.0,
            min_runs: 5,
            confidence: 0.95,
        }
    }
}

struct Tested {
    path: String,
    p_slower: f64,
    p_faster: f64,
    estimate: f64,
    low: f64,
    high: f64,
    golden_median: f64,
    batch_median: f64,
}

/// Compares a batch of self times per path with the profile. Answers a
/// `latency` difference per path that is slower with confidence (failing)
/// or faster with confidence (reported).
pub fn check_profile(
    profile: &Profile,
    batch: &BTreeMap<String, Vec<f64>>,
    opts: &ProfileCheck,
) -> Vec<Difference> {
    let mut tested: Vec<Tested> = Vec::new();
    for (path, dist) in &profile.spans {
        let Some(b) = batch.get(path) else { continue };
        if b.len() < opts.min_runs || dist.sample_ms.len() < opts.min_runs {
            continue;
        }
        let Ok(r) = mann_whitney(&dist.sample_ms, b, opts.confidence) else {
            // Every value tied on both sides: no shift to speak of.
            continue;
        };
        let n1n2 = dist.sample_ms.len() as f64 * b.len() as f64;
        let (p_slower, p_faster) = if r.statistic > n1n2 / 2.0 {
            (r.p_value / 2.0, 1.0 - r.p_value / 2.0)
        } else {
            (1.0 - r.p_value / 2.0, r.p_value / 2.0)
        };
        let mut sorted = b.clone();
        sorted.sort_by(f64::total_cmp);
        tested.push(Tested {
            path: path.clone(),
            p_slower,
            p_faster,
            estimate: r.estimate,
            low: r.ci_low,
            high: r.ci_high,
            golden_median: dist.p50_ms,
            batch_median: quantile(&sorted, 0.5),
        });
    }
    if tested.is_empty() {
        return Vec::new();
    }
    let slower = adjust_p_values(
        &tested.iter().map(|t| t.p_slower).collect::<Vec<_>>(),
        Correction::Holm,
    )
    .unwrap_or_else(|_| vec![1.0; tested.len()]);
    let faster = adjust_p_values(
        &tested.iter().map(|t| t.p_faster).collect::<Vec<_>>(),
        Correction::Holm,
    )
    .unwrap_or_else(|_| vec![1.0; tested.len()]);
    let mut out = Vec::new();
    for ((t, ps), pf) in tested.iter().zip(slower).zip(faster) {
        let (fails, p) = if ps < opts.alpha && t.estimate > opts.floor_ms {
            (true, ps)
        } else if pf < opts.alpha && -t.estimate > opts.floor_ms {
            (false, pf)
        } else {
            continue;
        };
        let message = format!(
            "span {}: {} {:+.0} ms [{:+.0}, {:+.0}] p={} (median {:.1} ms against {:.1} ms over {} runs){}",
            shown(&t.path),
            t.path.rsplit('/').next().unwrap_or(&t.path),
            t.estimate,
            t.low,
            t.high,
            format_p(p),
            t.batch_median,
            t.golden_median,
            batch.get(&t.path).map_or(0, Vec::len),
            if fails {
                ""
            } else {
                " (faster: reported, not a failure)"
            }
        );
        out.push(Difference {
            kind: DiffKind::Latency,
            path: t.path.clone(),
            expected: json!({"median_ms": t.golden_median}),
            actual: json!({
                "median_ms": t.batch_median,
                "shift_ms": t.estimate,
                "ci_low_ms": t.low,
                "ci_high_ms": t.high,
                "p_value": p,
            }),
            message,
            fails,
        });
    }
    out
}

fn format_p(p: f64) -> String {
    if p < 0.001 {
        format!("{p:.1e}")
    } else {
        format!("{p:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distributions_keep_a_bounded_sample_with_the_same_shape() {
        let v: Vec<f64> = (0..10_000).map(f64::from).collect();
        let d = Distribution::of(&v).unwrap();
        assert_eq!(d.n, 10_000);
        assert_eq!(d.sample_ms.len(), MAX_SAMPLE);
        assert_eq!(d.p50_ms, 4999.5);
        assert!((d.sample_ms[MAX_SAMPLE / 2] - 5000.0).abs() < 40.0);
        assert!(Distribution::of(&[]).is_none());
    }
}

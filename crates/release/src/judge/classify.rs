//! One metric: preprocessing (NaN strategy, outliers) and Kayenta's
//! Mann-Whitney classifier.

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

use super::config::{Direction, EffectMeasure, MetricSettings, NanStrategy};

/// A metric's label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Label {
    /// No meaningful difference.
    Pass,
    /// The canary is higher.
    High,
    /// The canary is lower.
    Low,
    /// A side had no data.
    Nodata,
    /// No data for a metric that must have data (counted as a failure).
    NodataFailMetric,
    /// The classifier could not run (for example every value tied).
    Error,
}

impl Label {
    /// Kayenta's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "Pass",
            Self::High => "High",
            Self::Low => "Low",
            Self::Nodata => "Nodata",
            Self::NodataFailMetric => "NodataFailMetric",
            Self::Error => "Error",
        }
    }
}

/// The classifier's parameters. The production judge uses tolerance 0.25
/// and confidence 0.98 ([`Classifier::default`]); Kayenta's unit tests use
/// others.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Classifier {
    /// A shift must exceed this fraction of |Hodges-Lehmann estimate|.
    pub tolerance: f64,
    /// Confidence of the interval.
    pub confidence: f64,
}

impl Default for Classifier {
    fn default() -> Self {
        Self {
            tolerance: 0.25,
            confidence: 0.98,
        }
    }
}

/// A metric's classification.
#[derive(Debug, Clone, PartialEq)]
pub struct Classification {
    /// The label.
    pub label: Label,
    /// Whether it counts as a critical failure.
    pub critical: bool,
    /// Why, in one line (empty for a plain Pass).
    pub reason: Option<String>,
    /// mean(canary) / mean(baseline); NaN when either mean is 0.
    pub ratio: f64,
    /// The interval for the shift canary − baseline, when computed.
    pub ci: Option<(f64, f64)>,
    /// The Hodges-Lehmann shift estimate, when computed.
    pub estimate: Option<f64>,
    /// The effect size the decision used, when computed.
    pub effect: Option<f64>,
}

impl Classification {
    fn early(label: Label, critical: bool, reason: Option<String>, ratio: f64) -> Self {
        Self {
            label,
            critical,
            reason,
            ratio,
            ci: None,
            estimate: None,
            effect: None,
        }
    }
}

/// R-7 percentile (`quantile(type = 7)`) of sorted data, `p` in [0, 100].
fn percentile_r7(sorted: &[f64], p: f64) -> f64 {
    let n = sorted.len();
    if n == 1 {
        return sorted[0];
    }
    let h = (n as f64 - 1.0) * p / 100.0;
    let lo = h.floor();
    let i = lo as usize;
    if i + 1 >= n {
        return sorted[n - 1];
    }
    sorted[i] + (h - lo) * (sorted[i + 1] - sorted[i])
}

/// Removes outliers outside `min(p1, Q1 − k·IQR)` and `max(p99, Q3 + k·IQR)`
/// (strict comparison; Kayenta's reduced-sensitivity IQR rule).
pub fn remove_outliers(values: &[f64], k: f64) -> Vec<f64> {
    if values.len() < 2 {
        return values.to_vec();
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let q1 = percentile_r7(&sorted, 25.0);
    let q3 = percentile_r7(&sorted, 75.0);
    let iqr = q3 - q1;
    let low = percentile_r7(&sorted, 1.0).min(q1 - k * iqr);
    let high = percentile_r7(&sorted, 99.0).max(q3 + k * iqr);
    values
        .iter()
        .copied()
        .filter(|v| *v >= low && *v <= high)
        .collect()
}

/// NaN handling, then outliers, as the judge preprocesses each side.
pub fn preprocess(values: &[f64], s: &MetricSettings) -> Vec<f64> {
    let cleaned: Vec<f64> = match s.nan_strategy {
        NanStrategy::Remove => values.iter().copied().filter(|v| !v.is_nan()).collect(),
        NanStrategy::Replace => values
            .iter()
            .map(|v| if v.is_nan() { 0.0 } else { *v })
            .collect(),
    };
    if s.remove_outliers {
        remove_outliers(&cleaned, s.outlier_factor)
    } else {
        cleaned
    }
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// mean(canary)/mean(baseline): NaN when either mean is 0 (Kayenta's
/// "Zero Mean" cases report NaN for a canary mean of 0 too).
fn mean_ratio(experiment: &[f64], control: &[f64]) -> f64 {
    let (e, c) = (mean(experiment), mean(control));
    if e == 0.0 || c == 0.0 {
        f64::NAN
    } else {
        e / c
    }
}

/// The common-language effect size `(2·R1 − m(m+1)) / (2nm)`, R1 the rank
/// sum of the canary with average ranks for ties.
fn cles(experiment: &[f64], control: &[f64]) -> f64 {
    let m = experiment.len();
    let n = control.len();
    let mut all: Vec<(f64, bool)> = experiment
        .iter()
        .map(|v| (*v, true))
        .chain(control.iter().map(|v| (*v, false)))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut r1 = 0.0;
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j + 1 < all.len() && all[j + 1].0 == all[i].0 {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        r1 += rank * all[i..=j].iter().filter(|x| x.1).count() as f64;
        i = j + 1;
    }
    let (m, n) = (m as f64, n as f64);
    (2.0 * r1 - m * (m + 1.0)) / (2.0 * n * m)
}

/// Adds Gaussian noise with stdev `value·1e-5` to a constant sample, as
/// Kayenta does when both samples are constant (seeded, so the judge is
/// repeatable).
fn jitter(values: &[f64], rng: &mut StdRng) -> Vec<f64> {
    values
        .iter()
        .map(|v| {
            let sd = (v * 1e-5).abs();
            match Normal::new(0.0, sd) {
                Ok(d) if sd > 0.0 => v + d.sample(rng),
                _ => *v,
            }
        })
        .collect()
}

fn constant(v: &[f64]) -> bool {
    v.iter().all(|x| *x == v[0])
}

impl Classifier {
    /// Classifies preprocessed samples (`experiment` is the canary,
    /// `control` the baseline), in Kayenta's order of checks.
    pub fn classify(
        &self,
        control: &[f64],
        experiment: &[f64],
        s: &MetricSettings,
    ) -> Classification {
        if control.is_empty() || experiment.is_empty() {
            if s.nan_strategy == NanStrategy::Replace {
                return Classification::early(Label::Pass, false, None, 1.0);
            }
            let side = match (control.is_empty(), experiment.is_empty()) {
                (true, true) => "both the baseline and the canary",
                (true, false) => "the baseline",
                _ => "the canary",
            };
            let label = if s.must_have_data && !s.critical {
                Label::NodataFailMetric
            } else {
                Label::Nodata
            };
            return Classification::early(
                label,
                s.critical,
                Some(format!("Missing data: {side} had no samples")),
                f64::NAN,
            );
        }
        let mut xs = experiment.to_vec();
        let mut ys = control.to_vec();
        let mut sx = xs.clone();
        let mut sy = ys.clone();
        sx.sort_by(f64::total_cmp);
        sy.sort_by(f64::total_cmp);
        if sx == sy {
            return Classification::early(Label::Pass, false, None, 1.0);
        }
        if constant(&xs) && constant(&ys) && xs[0] == ys[0] {
            return Classification::early(Label::Pass, false, None, 1.0);
        }
        let ratio = mean_ratio(experiment, control);
        if constant(&xs) && constant(&ys) {
            let mut rng = StdRng::seed_from_u64(0x006b_6179_656e_7461);
            xs = jitter(&xs, &mut rng);
            ys = jitter(&ys, &mut rng);
        }
        let mw = match flightdeck_stats::mann_whitney(&ys, &xs, self.confidence) {
            Ok(r) => r,
            Err(e) => {
                return Classification {
                    label: Label::Error,
                    critical: false,
                    reason: Some(format!("the Mann-Whitney test failed: {e}")),
                    ratio,
                    ci: None,
                    estimate: None,
                    effect: None,
                };
            }
        };
        let effect = match s.effect_measure {
            EffectMeasure::MeanRatio => mean_ratio(&xs, &ys),
            EffectMeasure::Cles => cles(&xs, &ys),
        };
        let crit = self.tolerance * mw.estimate.abs();
        let increase_ok = matches!(s.direction, Direction::Increase | Direction::Either);
        let decrease_ok = matches!(s.direction, Direction::Decrease | Direction::Either);
        let (label, critical) =
            if increase_ok && mw.ci_low > crit && (effect.is_nan() || effect >= s.allowed_increase)
            {
                (
                    Label::High,
                    s.critical && (effect.is_nan() || effect >= s.critical_increase),
                )
            } else if decrease_ok
                && mw.ci_high < -crit
                && (effect.is_nan() || effect <= s.allowed_decrease)
            {
                (
                    Label::Low,
                    s.critical && (effect.is_nan() || effect <= s.critical_decrease),
                )
            } else {
                (Label::Pass, false)
            };
        let reason = match label {
            Label::High | Label::Low => Some(format!(
                "The metric was classified as {} (the canary is {} than the baseline: shift {} [{}, {}] at {}% confidence, mean ratio {})",
                label.as_str(),
                if label == Label::High {
                    "higher"
                } else {
                    "lower"
                },
                short(mw.estimate),
                short(mw.ci_low),
                short(mw.ci_high),
                short(self.confidence * 100.0),
                short(ratio),
            )),
            _ => None,
        };
        Classification {
            label,
            critical,
            reason,
            ratio,
            ci: Some((mw.ci_low, mw.ci_high)),
            estimate: Some(mw.estimate),
            effect: Some(effect),
        }
    }
}

/// A number for a message: up to 4 significant decimals.
pub(crate) fn short(x: f64) -> String {
    if !x.is_finite() {
        return super::float_text(x).to_owned();
    }
    let s = format!("{x:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() || s == "-" {
        "0".into()
    } else {
        s.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r7_percentiles_match_r() {
        // R: quantile(c(1,2,3,4,10), c(.01,.25,.75,.99), type=7)
        let v = [1.0, 2.0, 3.0, 4.0, 10.0];
        assert!((percentile_r7(&v, 1.0) - 1.04).abs() < 1e-12);
        assert_eq!(percentile_r7(&v, 25.0), 2.0);
        assert_eq!(percentile_r7(&v, 75.0), 4.0);
        assert!((percentile_r7(&v, 99.0) - 9.76).abs() < 1e-12);
    }

    #[test]
    fn outliers_beyond_the_fences_go_and_the_rest_stay() {
        let mut v: Vec<f64> = (1..=20).map(f64::from).collect();
        v.push(1000.0);
        let kept = remove_outliers(&v, 3.0);
        assert_eq!(kept.len(), 20);
        assert!(!kept.contains(&1000.0));
        // Nothing is removed from a tight sample.
        assert_eq!(remove_outliers(&[1.0, 1.0, 1.0], 3.0).len(), 3);
    }

    #[test]
    fn cles_is_u_over_nm() {
        // Every canary value above every baseline value: 1; below: 0.
        assert_eq!(cles(&[5.0, 6.0], &[1.0, 2.0, 3.0]), 1.0);
        assert_eq!(cles(&[0.0], &[1.0, 2.0]), 0.0);
        assert_eq!(cles(&[1.0], &[1.0]), 0.5);
    }
}

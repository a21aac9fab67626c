//! Kayenta's canary judge, `NetflixACAJudge-v1.0`: preprocessing, the
//! Mann-Whitney classifier (tolerance 0.25, confidence 0.98), the
//! weighted-sum scorer and the score classification, with the precise points
//! settled against Kayenta's source (docs/release.md lists them).
//!
//! ```
//! use flightdeck_release::judge::{CanaryConfig, Judge, MetricSetPair, Verdict};
//! let config = CanaryConfig::from_json(r#"{
//!   "metrics": [{"name": "latency", "groups": ["perf"],
//!                "analysisConfigurations": {"canary": {"direction": "increase", "critical": true}}}],
//!   "classifier": {"groupWeights": {"perf": 100}, "scoreThresholds": {"pass": 95, "marginal": 75}}
//! }"#, "config.json")?;
//! let pairs = vec![MetricSetPair::new(
//!     "latency",
//!     (0..50).map(|i| 100.0 + f64::from(i % 7)).collect(),
//!     (0..50).map(|i| 300.0 + f64::from(i % 7)).collect(),
//! )];
//! let report = Judge::default().judge(&config, &pairs)?;
//! assert_eq!(report.classification, Verdict::Fail);
//! assert_eq!(report.score, 0.0); // a critical metric is High
//! # Ok::<(), flightdeck_release::ReleaseError>(())
//! ```

mod classify;
mod config;

use std::collections::BTreeMap;

use serde::{Serialize, Serializer};

pub use self::classify::{Classification, Classifier, Label, preprocess, remove_outliers};
pub use self::config::{
    CanaryConfig, Direction, EffectMeasure, MAX_SAMPLES, MetricConfig, MetricSetPair,
    MetricSettings, NanStrategy, PairValues, Samples, ScoreThresholds, pairs_from_json,
};
use crate::error::ReleaseError;

/// How a float that JSON cannot hold is written: Kayenta (Jackson) writes
/// NaN as the string `"NaN"`.
pub(crate) fn float_text(x: f64) -> &'static str {
    if x.is_nan() {
        "NaN"
    } else if x > 0.0 {
        "Infinity"
    } else {
        "-Infinity"
    }
}

fn ser_float<S: Serializer>(x: &f64, s: S) -> Result<S::Ok, S::Error> {
    if x.is_finite() {
        s.serialize_f64(*x)
    } else {
        s.serialize_str(float_text(*x))
    }
}

fn ser_opt_float<S: Serializer>(x: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    match x {
        Some(v) => ser_float(v, s),
        None => s.serialize_none(),
    }
}

/// The overall verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Verdict {
    /// Score ≥ pass.
    Pass,
    /// marginal ≤ score < pass.
    Marginal,
    /// Score < marginal.
    Fail,
}

/// One metric in the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricReport {
    /// The metric's name.
    pub name: String,
    /// `Pass`, `High`, `Low`, `Nodata`, `NodataFailMetric` or `Error`.
    pub classification: Label,
    /// Whether it is a critical failure (forces the score to 0).
    pub critical: bool,
    /// Muted: reported, not scored.
    pub muted: bool,
    /// The groups it scores in.
    pub groups: Vec<String>,
    /// Lower end of the interval for the shift canary − baseline.
    #[serde(serialize_with = "ser_opt_float")]
    pub ci_low: Option<f64>,
    /// Upper end of that interval.
    #[serde(serialize_with = "ser_opt_float")]
    pub ci_high: Option<f64>,
    /// The Hodges-Lehmann estimate of the shift.
    #[serde(serialize_with = "ser_opt_float")]
    pub estimate: Option<f64>,
    /// mean(canary)/mean(baseline) (`"NaN"` when either mean is 0).
    #[serde(serialize_with = "ser_float")]
    pub ratio: f64,
    /// Samples left after preprocessing: (baseline, canary).
    pub samples: (usize, usize),
    /// Why, in one line (`null` for a plain Pass).
    pub reason: Option<String>,
}

/// One group's score.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupReport {
    /// The group's name.
    pub name: String,
    /// `100 · Pass / (Pass + High + Low + NodataFailMetric)`; 0 with
    /// `no_data` when nothing in it counts.
    pub score: f64,
    /// Nothing countable in the group (the summary then counts it as 100).
    pub no_data: bool,
    /// The weight it carries in the summary.
    pub weight: f64,
}

/// The judge's report (`flightdeck release judge --json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JudgeReport {
    /// The summary score, 0 to 100, rounded to 2 decimals.
    pub score: f64,
    /// The verdict from the score thresholds.
    pub classification: Verdict,
    /// The thresholds applied.
    pub thresholds: ScoreThresholds,
    /// Group scores.
    pub groups: Vec<GroupReport>,
    /// Metric classifications, in the order of the pairs.
    pub metrics: Vec<MetricReport>,
    /// Why the score is what it is (forced to 0, low groups).
    pub reasons: Vec<String>,
}

/// The judge (production parameters by default).
#[derive(Debug, Clone, Copy, Default)]
pub struct Judge {
    /// The classifier's tolerance and confidence.
    pub classifier: Classifier,
}

/// `Precision.round(x, 2)`: HALF_UP on the shortest decimal text of `x`,
/// as Java's `BigDecimal(Double.toString(x))` rounds it.
pub fn round2(x: f64) -> f64 {
    if !x.is_finite() {
        return x;
    }
    let text = format!("{x}");
    let (neg, digits) = text
        .strip_prefix('-')
        .map_or((false, text.as_str()), |d| (true, d));
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if frac.len() <= 2 {
        return x;
    }
    let keep = &frac[..2];
    let up = frac.as_bytes()[2] >= b'5';
    let mut n: u128 = format!("{int}{keep}").parse().unwrap_or(0);
    if up {
        n += 1;
    }
    let v = n as f64 / 100.0;
    if neg { -v } else { v }
}

impl MetricSetPair {
    /// A pair from baseline (`control`) and canary (`experiment`) samples.
    pub fn new(name: impl Into<String>, control: Vec<f64>, experiment: Vec<f64>) -> Self {
        Self {
            name: name.into(),
            values: PairValues {
                control: Samples(control),
                experiment: Samples(experiment),
            },
            ..Self::default()
        }
    }
}

impl Judge {
    /// Classifies every pair against its metric's config and scores them.
    ///
    /// # Errors
    ///
    /// [`ReleaseError::Invalid`] when a pair names no metric of the config.
    pub fn judge(
        &self,
        config: &CanaryConfig,
        pairs: &[MetricSetPair],
    ) -> Result<JudgeReport, ReleaseError> {
        let mut metrics = Vec::with_capacity(pairs.len());
        for (i, pair) in pairs.iter().enumerate() {
            let Some(mc) = config.metric(&pair.name) else {
                return Err(ReleaseError::Invalid(format!(
                    "pair {i} names metric {}, which the canary config does not define",
                    flightdeck_obs_core::shown(&pair.name)
                )));
            };
            let s = &mc.settings;
            let control = preprocess(&pair.values.control.0, s);
            let experiment = preprocess(&pair.values.experiment.0, s);
            let c = self.classifier.classify(&control, &experiment, s);
            metrics.push(MetricReport {
                name: pair.name.clone(),
                classification: c.label,
                critical: c.critical,
                muted: s.muted,
                groups: mc.groups.clone(),
                ci_low: c.ci.map(|x| x.0),
                ci_high: c.ci.map(|x| x.1),
                estimate: c.estimate,
                ratio: c.ratio,
                samples: (control.len(), experiment.len()),
                reason: c.reason,
            });
        }
        Ok(score(config, metrics))
    }
}

/// Kayenta's weighted-sum scorer and score classification.
fn score(config: &CanaryConfig, metrics: Vec<MetricReport>) -> JudgeReport {
    let scored: Vec<&MetricReport> = metrics.iter().filter(|m| !m.muted).collect();
    // Groups in first-seen order.
    let mut order: Vec<String> = Vec::new();
    let mut counts: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for m in &scored {
        for g in &m.groups {
            if !order.contains(g) {
                order.push(g.clone());
            }
            let e = counts.entry(g.as_str()).or_default();
            match m.classification {
                Label::Pass => {
                    e.0 += 1;
                    e.1 += 1;
                }
                Label::High | Label::Low | Label::NodataFailMetric => e.1 += 1,
                Label::Nodata | Label::Error => {}
            }
        }
    }
    let configured: f64 = config.group_weights.values().sum();
    let unweighted = order
        .iter()
        .filter(|g| !config.group_weights.contains_key(*g))
        .count();
    let share = if unweighted > 0 {
        ((100.0 - configured) / unweighted as f64).max(0.0)
    } else {
        0.0
    };
    let mut groups = Vec::with_capacity(order.len());
    let mut summary = 0.0;
    for g in &order {
        let (pass, total) = counts.get(g.as_str()).copied().unwrap_or((0, 0));
        let no_data = total == 0;
        let score = if no_data {
            0.0
        } else {
            100.0 * pass as f64 / total as f64
        };
        let weight = config.group_weights.get(g).copied().unwrap_or(share);
        summary += if no_data { 100.0 } else { score } * weight / 100.0;
        groups.push(GroupReport {
            name: g.clone(),
            score,
            no_data,
            weight,
        });
    }
    let mut reasons = Vec::new();
    let critical: Vec<&&MetricReport> = scored
        .iter()
        .filter(|m| m.critical && m.classification != Label::Pass)
        .collect();
    for m in &critical {
        reasons.push(format!(
            "Critical metric {} was classified as {}{}: the score is 0",
            flightdeck_obs_core::shown(&m.name),
            m.classification.as_str(),
            m.reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        ));
    }
    let nodata = scored
        .iter()
        .filter(|m| m.classification == Label::Nodata)
        .count();
    let too_much_nodata = !scored.is_empty() && nodata as f64 / scored.len() as f64 * 100.0 >= 50.0;
    if too_much_nodata {
        reasons.push(format!(
            "{nodata} of {} metrics had no data (50 % or more): the score is 0",
            scored.len()
        ));
    }
    let summary = if critical.is_empty() && !too_much_nodata {
        round2(summary)
    } else {
        0.0
    };
    for g in &groups {
        if !g.no_data && g.score < 100.0 {
            reasons.push(format!(
                "Group {} scored {} (weight {})",
                flightdeck_obs_core::shown(&g.name),
                classify::short(g.score),
                classify::short(g.weight)
            ));
        }
    }
    let t = config.thresholds;
    let classification = if summary >= t.pass {
        Verdict::Pass
    } else if summary >= t.marginal {
        Verdict::Marginal
    } else {
        Verdict::Fail
    };
    JudgeReport {
        score: summary,
        classification,
        thresholds: t,
        groups,
        metrics,
        reasons,
    }
}

impl JudgeReport {
    /// The readable form: the verdict, then one line per metric that is not
    /// Pass, then the reasons.
    pub fn to_text(&self) -> String {
        use std::fmt::Write as _;
        let mut out = format!(
            "{:?}: score {} (pass ≥ {}, marginal ≥ {})\n",
            self.classification,
            classify::short(self.score),
            classify::short(self.thresholds.pass),
            classify::short(self.thresholds.marginal)
        );
        for g in &self.groups {
            let _ = writeln!(
                out,
                "  group {:<20} {:>6}{}  weight {}",
                g.name,
                classify::short(g.score),
                if g.no_data { " (no data)" } else { "" },
                classify::short(g.weight)
            );
        }
        for m in &self.metrics {
            if m.classification == Label::Pass {
                continue;
            }
            let _ = writeln!(
                out,
                "  ✗ {}: {}{}{} — {}",
                m.name,
                m.classification.as_str(),
                if m.critical { " (critical)" } else { "" },
                if m.muted { " (muted)" } else { "" },
                m.reason.as_deref().unwrap_or("no reason given")
            );
        }
        for r in &self.reasons {
            let _ = writeln!(out, "  · {r}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_is_half_up_on_the_decimal_text() {
        assert_eq!(round2(66.666_666_666_666_67), 66.67);
        assert_eq!(round2(33.333_333_333_333_336), 33.33);
        assert_eq!(round2(12.345), 12.35); // 12.345 prints as 12.345: half up
        assert_eq!(round2(100.0), 100.0);
        assert_eq!(round2(0.005), 0.01);
    }
}

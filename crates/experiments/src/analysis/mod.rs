//! Experiment analysis: GrowthBook's stats engine (frequentist and
//! Bayesian, relative and absolute), Welch's test, corrections for many
//! comparisons, health checks (SRM, too few users, power), a recommendation
//! with reasons, and reports (Markdown, JSON, HTML with SVG plots).
//!
//! ```
//! use flightdeck_experiments::analysis::{AnalysisConfig, Decision, ExperimentAnalyzer};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let lines: String = (0..4000)
//!     .map(|i| {
//!         let arm = i % 2;
//!         let converted = if (i * 7919) % 100 < 10 + 4 * arm { 1 } else { 0 };
//!         format!(r#"{{"timestamp_ms":{i},"experiment":"e","user_id":"u{i}","variation_id":{arm},"variation_key":"v{arm}","metrics":{{"converted":{converted}}}}}"#) + "\n"
//!     })
//!     .collect();
//! let analysis = ExperimentAnalyzer::new(AnalysisConfig::default())
//!     .analyze_reader(lines.as_bytes(), "results.jsonl", "e", Some(&[0.5, 0.5]))?;
//! assert_eq!(analysis.recommendation.decision, Decision::Ship);
//! assert_eq!(analysis.recommendation.variation_id, Some(1));
//! # Ok(())
//! # }
//! ```

mod aggregate;
mod gbstats;
mod report;
mod schedule;

use std::collections::BTreeMap;
use std::io::BufRead;

use flightdeck_obs_core::locate::shown;
use flightdeck_stats::distributions::norm_ppf;
use flightdeck_stats::{Correction, adjust_p_values};
use serde::{Deserialize, Serialize};

pub use self::aggregate::{
    Aggregate, AnalysisError, Bucket, MAX_ARMS, MAX_BUCKETS, MAX_LINE_BYTES, MAX_METRICS,
    MetricAgg, MetricArm,
};
pub use self::gbstats::{
    ArmSums, Bayesian, Difference, Frequentist, GuardError, MetricKind, Welch, effect_bayesian,
    two_sided_ttest, welch,
};
pub use self::report::{render_html, render_markdown, render_text};
pub use self::schedule::{JobOutcome, ReportFormat, ReportGenerator, ReportHandle, ReportJob};
use crate::results::ResultsTracker;
use crate::srm::srm_check;

/// Which engine decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Engine {
    /// p-values and confidence intervals (the default).
    #[default]
    Frequentist,
    /// Chance to win and risk, as GrowthBook decides.
    Bayesian,
}

/// Which way is better for a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Higher is better (conversions, revenue).
    #[default]
    Higher,
    /// Lower is better (latency, cost, errors).
    Lower,
}

/// What a metric is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A metric the change should move.
    #[default]
    Goal,
    /// A metric the change must not harm.
    Guardrail,
}

/// A metric's declaration: `NAME:binomial|mean[:lower][:guardrail]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricSpec {
    /// The metric's name in the records.
    pub name: String,
    /// Binomial or mean; `None` detects it (binomial when every value is 0 or 1).
    pub kind: Option<MetricKind>,
    /// Which way is better.
    pub direction: Direction,
    /// Goal or guardrail.
    pub role: Role,
}

impl MetricSpec {
    /// Parses `NAME:binomial|mean[:lower|higher][:guardrail|goal]`.
    ///
    /// # Errors
    ///
    /// A message naming the bad part.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parts = text.split(':');
        let name = parts.next().unwrap_or("");
        if name.is_empty() {
            return Err(format!("{}: the metric name is empty", shown(text)));
        }
        let mut spec = Self {
            name: name.to_owned(),
            kind: None,
            direction: Direction::Higher,
            role: Role::Goal,
        };
        for p in parts {
            match p {
                "binomial" => spec.kind = Some(MetricKind::Binomial),
                "mean" => spec.kind = Some(MetricKind::Mean),
                "lower" => spec.direction = Direction::Lower,
                "higher" => spec.direction = Direction::Higher,
                "guardrail" => spec.role = Role::Guardrail,
                "goal" => spec.role = Role::Goal,
                other => {
                    return Err(format!(
                        "{}: {} is not one of binomial, mean, lower, higher, guardrail, goal",
                        shown(text),
                        shown(other)
                    ));
                }
            }
        }
        Ok(spec)
    }
}

/// How an analysis runs.
#[derive(Debug, Clone, PartialEq)]
pub struct AnalysisConfig {
    /// The control's variation id (0 by default).
    pub control: usize,
    /// Significance level (and `1 −` the interval level).
    pub alpha: f64,
    /// Which engine decides.
    pub engine: Engine,
    /// Correction across treatments × goal metrics (`None`: raw p-values).
    pub correction: Option<Correction>,
    /// Declared metrics, in order (the first goal is the primary one);
    /// undeclared metrics in the records are goals, higher is better, kind
    /// detected.
    pub metrics: Vec<MetricSpec>,
    /// Only these metrics (the declared ones) when true.
    pub only_declared: bool,
    /// SRM threshold (p below it is a mismatch).
    pub srm_alpha: f64,
    /// Fewest users per arm before a verdict.
    pub min_users: u64,
    /// The smallest relative effect worth detecting on the primary goal.
    pub mde: f64,
    /// Power for the sample-size estimate.
    pub power: f64,
    /// Bayesian engine: ship when chance to win is at least this.
    pub chance_to_win: f64,
    /// Bayesian engine: and the relative risk of shipping is below this.
    pub risk_threshold: f64,
}

impl Default for AnalysisConfig {
    fn default() -> Self {
        Self {
            control: 0,
            alpha: 0.05,
            engine: Engine::Frequentist,
            correction: Some(Correction::Holm),
            metrics: Vec::new(),
            only_declared: false,
            srm_alpha: flightdeck_stats::DEFAULT_SRM_ALPHA,
            min_users: 100,
            mde: 0.05,
            power: 0.8,
            chance_to_win: 0.95,
            risk_threshold: 0.0025,
        }
    }
}

/// The SRM check as reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SrmReport {
    /// The variation ids the other lists follow.
    pub variation_ids: Vec<usize>,
    /// Users per variation.
    pub observed: Vec<u64>,
    /// Users expected from the weights.
    pub expected: Vec<f64>,
    /// The chi-square statistic.
    pub statistic: f64,
    /// Its p-value.
    pub p_value: f64,
    /// Whether the split is wrong (p below the SRM threshold, a leak into a
    /// zero-weight arm, or users in variations the experiment lacks).
    pub mismatch: bool,
    /// The weights checked against.
    pub weights: Vec<f64>,
}

/// One arm of one metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariationStats {
    /// The variation id.
    pub variation_id: usize,
    /// Its key.
    pub key: String,
    /// Users.
    pub n: u64,
    /// gbstats' mean.
    pub mean: f64,
    /// gbstats' variance (binomial: `p(1 − p)`).
    pub variance: f64,
    /// Users without this metric (counted as 0).
    pub missing: u64,
}

/// Relative and absolute results of one engine.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Both<T> {
    /// Relative (fractions: 0.05 = +5 %).
    pub relative: T,
    /// Absolute (the metric's unit).
    pub absolute: T,
}

/// One treatment against the control on one metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// The treatment.
    pub variation_id: usize,
    /// Its key.
    pub key: String,
    /// gbstats' `TwoSidedTTest`.
    pub frequentist: Both<Frequentist>,
    /// gbstats' `EffectBayesianABTest` (flat prior).
    pub bayesian: Both<Bayesian>,
    /// Welch's test on the raw values (scipy's `ttest_ind(equal_var=False)`).
    pub welch: Option<Welch>,
    /// The relative p-value after the correction (goals only).
    pub adjusted_p_value: Option<f64>,
}

/// One metric's results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricResult {
    /// The metric.
    pub name: String,
    /// Binomial or mean.
    pub kind: MetricKind,
    /// Which way is better.
    pub direction: Direction,
    /// Goal or guardrail.
    pub role: Role,
    /// Per arm, control first.
    pub variations: Vec<VariationStats>,
    /// Per treatment.
    pub comparisons: Vec<Comparison>,
}

/// What to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Ship the named variation.
    Ship,
    /// Keep the control: the treatments are worse.
    KeepControl,
    /// Inconclusive or underpowered: keep collecting.
    KeepRunning,
    /// The data cannot be trusted (SRM) or there is none.
    Invalid,
}

/// The recommendation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recommendation {
    /// What to do.
    pub decision: Decision,
    /// The variation to ship (for `ship`).
    pub variation_id: Option<usize>,
    /// The confidence behind it (1 − adjusted p, or the chance to win).
    pub confidence: Option<f64>,
    /// The metric it rests on.
    pub metric: Option<String>,
    /// Reasons, in plain words.
    pub reasons: Vec<String>,
}

/// Power on the primary goal metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PowerReport {
    /// The metric.
    pub metric: String,
    /// Smallest relative effect detectable now (at `power`, two-sided `alpha`).
    pub mde_now: Option<f64>,
    /// The relative effect the experiment is sized for.
    pub mde_target: f64,
    /// Users per arm needed for `mde_target`.
    pub users_needed_per_arm: Option<u64>,
    /// Users per arm so far (the smallest arm).
    pub users_per_arm: u64,
    /// Days still needed at the observed rate, when the records have times.
    pub days_remaining: Option<f64>,
}

/// A whole analysis: the `analyze --json` document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExperimentAnalysis {
    /// The experiment key.
    pub experiment: String,
    /// The SRM check.
    pub srm: SrmReport,
    /// Per metric.
    pub metrics: Vec<MetricResult>,
    /// What to do.
    pub recommendation: Recommendation,
    /// The engine that decided.
    pub engine: Engine,
    /// The significance level.
    pub alpha: f64,
    /// The correction (`holm`, `benjamini_hochberg`, `bonferroni`, `none`).
    pub correction: String,
    /// The control's variation id.
    pub control: usize,
    /// Power on the primary goal.
    pub power: Option<PowerReport>,
    /// Lines for other experiments that were skipped.
    pub other_experiments: u64,
    /// First and last record time (Unix ms).
    pub span_ms: Option<(u64, u64)>,
    /// The timeline for plots (not in JSON).
    #[serde(skip)]
    pub timeline: Timeline,
}

/// Cumulative series for the plots.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Timeline {
    /// Bucket end times (Unix ms).
    pub at_ms: Vec<u64>,
    /// Cumulative users per variation id, one value per bucket.
    pub users: BTreeMap<usize, Vec<u64>>,
    /// Cumulative relative lift of the primary goal per treatment (None
    /// while the control's mean is 0).
    pub lift: BTreeMap<usize, Vec<Option<f64>>>,
    /// The primary goal metric.
    pub metric: Option<String>,
}

/// Runs analyses.
#[derive(Debug, Clone, Default)]
pub struct ExperimentAnalyzer {
    config: AnalysisConfig,
}

impl ExperimentAnalyzer {
    /// An analyzer with `config`.
    pub fn new(config: AnalysisConfig) -> Self {
        Self { config }
    }

    /// The configuration.
    pub fn config(&self) -> &AnalysisConfig {
        &self.config
    }

    /// Analyzes result records (JSON Lines) of `experiment`, streamed.
    /// `weights` are the experiment's configured split (equal when `None`).
    ///
    /// # Errors
    ///
    /// [`AnalysisError`] naming `file:line` for a bad line, or a bad setting.
    pub fn analyze_reader(
        &self,
        input: impl BufRead,
        file: &str,
        experiment: &str,
        weights: Option<&[f64]>,
    ) -> Result<ExperimentAnalysis, AnalysisError> {
        let agg = Aggregate::read(input, file, Some(experiment))?;
        self.analyze(&agg, experiment, weights)
    }

    /// Analyzes one experiment held by a [`ResultsTracker`].
    ///
    /// # Errors
    ///
    /// [`AnalysisError::Config`] when the tracker has nothing for it.
    pub fn analyze_tracker(
        &self,
        tracker: &ResultsTracker,
        experiment: &str,
        weights: Option<&[f64]>,
    ) -> Result<ExperimentAnalysis, AnalysisError> {
        let agg = Aggregate::from_tracker(tracker, experiment).ok_or_else(|| {
            AnalysisError::Config(format!("no results for experiment {}", shown(experiment)))
        })?;
        self.analyze(&agg, experiment, weights)
    }

    /// Analyzes an aggregate.
    ///
    /// # Errors
    ///
    /// [`AnalysisError::Config`] for a bad alpha, MDE or power.
    pub fn analyze(
        &self,
        agg: &Aggregate,
        experiment: &str,
        weights: Option<&[f64]>,
    ) -> Result<ExperimentAnalysis, AnalysisError> {
        let c = &self.config;
        for (name, v, lo, hi) in [
            ("alpha", c.alpha, 0.0, 0.5),
            ("power", c.power, 0.0, 1.0),
            ("mde", c.mde, 0.0, f64::MAX),
        ] {
            if !(v.is_finite() && v > lo && v < hi) {
                return Err(AnalysisError::Config(format!(
                    "{name} {v} is outside ({lo}, {hi})"
                )));
            }
        }
        // The configured variations, those in the records (at most
        // MAX_ARMS), and the control: ids as they are, never a dense range
        // up to the largest id a record names.
        let arms_known = weights.map_or(0, <[f64]>::len);
        let mut ids: Vec<usize> = (0..arms_known)
            .chain(agg.users.keys().copied())
            .chain([c.control])
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let key = |id: usize| agg.keys.get(&id).cloned().unwrap_or_else(|| id.to_string());
        let srm = srm_report(agg, weights, &ids, c.srm_alpha);

        let metrics = self.metric_list(agg);
        let mut results: Vec<MetricResult> = Vec::with_capacity(metrics.len());
        for spec in &metrics {
            let kind = spec.kind.unwrap_or_else(|| {
                if agg.metrics.get(&spec.name).is_some_and(|m| m.non_binary) {
                    MetricKind::Mean
                } else {
                    MetricKind::Binomial
                }
            });
            let variations: Vec<VariationStats> = std::iter::once(c.control)
                .chain(ids.iter().copied().filter(|&i| i != c.control))
                .map(|id| {
                    let s = agg.arm_sums(&spec.name, id);
                    VariationStats {
                        variation_id: id,
                        key: key(id),
                        n: s.n,
                        mean: s.mean(),
                        variance: s.variance(kind),
                        missing: agg.missing(&spec.name, id),
                    }
                })
                .collect();
            let a = agg.arm_sums(&spec.name, c.control);
            let inverse = spec.direction == Direction::Lower;
            let comparisons = ids
                .iter()
                .copied()
                .filter(|&i| i != c.control)
                .map(|id| {
                    let b = agg.arm_sums(&spec.name, id);
                    Comparison {
                        variation_id: id,
                        key: key(id),
                        frequentist: Both {
                            relative: two_sided_ttest(&a, &b, kind, Difference::Relative, c.alpha),
                            absolute: two_sided_ttest(&a, &b, kind, Difference::Absolute, c.alpha),
                        },
                        bayesian: Both {
                            relative: effect_bayesian(
                                &a,
                                &b,
                                kind,
                                Difference::Relative,
                                c.alpha,
                                inverse,
                            ),
                            absolute: effect_bayesian(
                                &a,
                                &b,
                                kind,
                                Difference::Absolute,
                                c.alpha,
                                inverse,
                            ),
                        },
                        welch: welch(&a, &b),
                        adjusted_p_value: None,
                    }
                })
                .collect();
            results.push(MetricResult {
                name: spec.name.clone(),
                kind,
                direction: spec.direction,
                role: spec.role,
                variations,
                comparisons,
            });
        }
        adjust(&mut results, c.correction);
        let power = power_report(agg, &results, c);
        let recommendation = decide(agg, &srm, &results, power.as_ref(), c);
        let timeline = timeline(agg, &results, c.control);
        Ok(ExperimentAnalysis {
            experiment: experiment.to_owned(),
            srm,
            metrics: results,
            recommendation,
            engine: c.engine,
            alpha: c.alpha,
            correction: correction_name(c.correction).to_owned(),
            control: c.control,
            power,
            other_experiments: agg.other_experiments,
            span_ms: agg.span_ms,
            timeline,
        })
    }

    /// Declared metrics first (in order), then the others in name order.
    fn metric_list(&self, agg: &Aggregate) -> Vec<MetricSpec> {
        let mut out = self.config.metrics.clone();
        if !self.config.only_declared {
            for name in agg.metrics.keys() {
                if !out.iter().any(|m| &m.name == name) {
                    out.push(MetricSpec {
                        name: name.clone(),
                        kind: None,
                        direction: Direction::Higher,
                        role: Role::Goal,
                    });
                }
            }
        }
        out
    }
}

fn correction_name(c: Option<Correction>) -> &'static str {
    match c {
        None => "none",
        Some(Correction::Holm) => "holm",
        Some(Correction::BenjaminiHochberg) => "benjamini_hochberg",
        Some(Correction::Bonferroni) => "bonferroni",
    }
}

fn srm_report(agg: &Aggregate, weights: Option<&[f64]>, ids: &[usize], alpha: f64) -> SrmReport {
    let observed: Vec<u64> = ids
        .iter()
        .map(|i| agg.users.get(i).copied().unwrap_or(0))
        .collect();
    // A variation the experiment does not configure has weight 0: users in
    // it are a leak, which is always a mismatch.
    let weights: Vec<f64> = match weights {
        Some(w) => ids
            .iter()
            .map(|i| w.get(*i).copied().unwrap_or(0.0))
            .collect(),
        None => vec![1.0 / ids.len().max(1) as f64; ids.len()],
    };
    let check = srm_check(&observed, &weights, alpha);
    let total: u64 = observed.iter().sum();
    let wsum: f64 = weights.iter().filter(|w| **w > 0.0).sum();
    let expected = weights
        .iter()
        .map(|w| {
            if *w > 0.0 && wsum > 0.0 {
                w / wsum * total as f64
            } else {
                0.0
            }
        })
        .collect();
    SrmReport {
        variation_ids: ids.to_vec(),
        observed,
        expected,
        statistic: check.test.as_ref().map_or(0.0, |t| t.statistic),
        p_value: check.test.as_ref().map_or(1.0, |t| t.p_value),
        mismatch: check.mismatch,
        weights,
    }
}

/// Adjusts the goal metrics' relative p-values across treatments × goals.
fn adjust(results: &mut [MetricResult], correction: Option<Correction>) {
    let mut raw = Vec::new();
    for m in results.iter().filter(|m| m.role == Role::Goal) {
        for c in &m.comparisons {
            raw.push(c.frequentist.relative.p_value);
        }
    }
    let adjusted = match correction {
        Some(method) => adjust_p_values(&raw, method).unwrap_or_else(|_| raw.clone()),
        None => raw,
    };
    let mut it = adjusted.into_iter();
    for m in results.iter_mut().filter(|m| m.role == Role::Goal) {
        for c in &mut m.comparisons {
            c.adjusted_p_value = it.next();
        }
    }
}

fn primary(results: &[MetricResult]) -> Option<&MetricResult> {
    results.iter().find(|m| m.role == Role::Goal)
}

fn power_report(
    agg: &Aggregate,
    results: &[MetricResult],
    c: &AnalysisConfig,
) -> Option<PowerReport> {
    let m = primary(results)?;
    let control = m.variations.first()?;
    let users_per_arm = m.variations.iter().map(|v| v.n).min().unwrap_or(0);
    let z = norm_ppf(1.0 - c.alpha / 2.0) + norm_ppf(c.power);
    let usable = control.mean != 0.0 && control.variance > 0.0;
    let mde_now = (usable && users_per_arm > 0)
        .then(|| z * (2.0 * control.variance / users_per_arm as f64).sqrt() / control.mean.abs());
    let needed = usable.then(|| {
        let delta = c.mde * control.mean.abs();
        (2.0 * control.variance * z * z / (delta * delta)).ceil() as u64
    });
    let days_remaining = match (needed, agg.span_ms) {
        (Some(n), Some((lo, hi))) if hi > lo && n > users_per_arm => {
            let days = (hi - lo) as f64 / 86_400_000.0;
            let per_day = users_per_arm as f64 / days;
            Some((n - users_per_arm) as f64 / per_day)
        }
        (Some(n), _) if n <= users_per_arm => Some(0.0),
        _ => None,
    };
    Some(PowerReport {
        metric: m.name.clone(),
        mde_now,
        mde_target: c.mde,
        users_needed_per_arm: needed,
        users_per_arm,
        days_remaining,
    })
}

/// A signed percentage for reasons: `+4.2 %`.
pub(crate) fn pct(x: f64) -> String {
    format!("{:+.1} %", x * 100.0)
}

/// Whether `estimate` points the good way for `direction`.
fn good(direction: Direction, estimate: f64) -> bool {
    match direction {
        Direction::Higher => estimate > 0.0,
        Direction::Lower => estimate < 0.0,
    }
}

/// The verdict of one treatment on one metric: significant better, worse, or neither.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Better,
    Worse,
    Unclear,
}

fn verdict(m: &MetricResult, comp: &Comparison, c: &AnalysisConfig) -> (Verdict, f64) {
    match c.engine {
        Engine::Frequentist => {
            let f = &comp.frequentist.relative;
            let p = if m.role == Role::Goal {
                comp.adjusted_p_value.unwrap_or(f.p_value)
            } else {
                f.p_value
            };
            if f.error.is_some() || p >= c.alpha {
                (Verdict::Unclear, 1.0 - p)
            } else if good(m.direction, f.estimate) {
                (Verdict::Better, 1.0 - p)
            } else {
                (Verdict::Worse, 1.0 - p)
            }
        }
        Engine::Bayesian => {
            let b = &comp.bayesian.relative;
            if b.error.is_some() {
                (Verdict::Unclear, b.chance_to_win)
            } else if b.chance_to_win >= c.chance_to_win
                && (m.role == Role::Guardrail || b.risk_treatment <= c.risk_threshold)
            {
                (Verdict::Better, b.chance_to_win)
            } else if b.chance_to_win <= 1.0 - c.chance_to_win {
                (Verdict::Worse, 1.0 - b.chance_to_win)
            } else {
                (Verdict::Unclear, b.chance_to_win)
            }
        }
    }
}

/// The checks before any verdict: records exist, no sample ratio mismatch,
/// every arm has users, a goal metric, and enough users per arm. Answers
/// the goal metric, or the recommendation that stops here.
fn gate<'r>(
    agg: &Aggregate,
    srm: &SrmReport,
    results: &'r [MetricResult],
    c: &AnalysisConfig,
) -> Result<&'r MetricResult, Recommendation> {
    if agg.lines == 0 {
        return Err(rec(
            Decision::Invalid,
            vec!["there are no result records for this experiment".into()],
        ));
    }
    if srm.mismatch {
        return Err(rec(
            Decision::Invalid,
            vec![format!(
                "sample ratio mismatch: the arms got {:?} users where the configured split expects {:?} (p = {:.2e}). \
                 The assignment or the logging is broken, so no result can be trusted and nothing may ship until it is fixed.",
                srm.observed,
                srm.expected
                    .iter()
                    .map(|e| e.round() as u64)
                    .collect::<Vec<_>>(),
                srm.p_value
            )],
        ));
    }
    if let Some((id, n)) = srm.observed.iter().enumerate().find(|(_, n)| **n == 0) {
        return Err(rec(
            Decision::Invalid,
            vec![format!("variation {id} has no users (got {n})")],
        ));
    }
    let Some(goal) = primary(results) else {
        return Err(rec(
            Decision::KeepRunning,
            vec!["no goal metric to decide on".into()],
        ));
    };
    let smallest = srm.observed.iter().copied().min().unwrap_or(0);
    if smallest < c.min_users {
        return Err(rec(
            Decision::KeepRunning,
            vec![format!(
                "only {smallest} users in the smallest arm; at least {} per arm are needed before any verdict",
                c.min_users
            )],
        ));
    }
    Ok(goal)
}

/// A recommendation without a variation, confidence or metric.
fn rec(decision: Decision, reasons: Vec<String>) -> Recommendation {
    Recommendation {
        decision,
        variation_id: None,
        confidence: None,
        metric: None,
        reasons,
    }
}

/// How one treatment fares on every metric.
struct TreatmentOutcome {
    /// The first goal it improves: the metric, the confidence, the relative change.
    better_on: Option<(String, f64, f64)>,
    /// Why it cannot ship: a worse goal or a harmed guardrail.
    blocked: Vec<String>,
    /// Whether it is worse on a goal metric.
    worse_goal: bool,
}

fn treatment_outcome(
    t: &Comparison,
    results: &[MetricResult],
    c: &AnalysisConfig,
) -> TreatmentOutcome {
    let mut better_on: Option<(String, f64, f64)> = None;
    let mut blocked = Vec::new();
    let mut worse_goal = false;
    for m in results {
        let Some(comp) = m
            .comparisons
            .iter()
            .find(|x| x.variation_id == t.variation_id)
        else {
            continue;
        };
        let (v, conf) = verdict(m, comp, c);
        let est = comp.frequentist.relative.estimate;
        match (m.role, v) {
            (Role::Goal, Verdict::Better) if better_on.is_none() => {
                better_on = Some((m.name.clone(), conf, est));
            }
            (Role::Goal, Verdict::Worse) => {
                worse_goal = true;
                blocked.push(format!(
                    "{} is worse on goal {} ({})",
                    t.key,
                    m.name,
                    pct(est)
                ));
            }
            (Role::Guardrail, Verdict::Worse) => {
                blocked.push(format!(
                    "{} harms guardrail {} ({})",
                    t.key,
                    m.name,
                    pct(est)
                ));
            }
            _ => {}
        }
    }
    TreatmentOutcome {
        better_on,
        blocked,
        worse_goal,
    }
}

fn decide(
    agg: &Aggregate,
    srm: &SrmReport,
    results: &[MetricResult],
    power: Option<&PowerReport>,
    c: &AnalysisConfig,
) -> Recommendation {
    let goal = match gate(agg, srm, results, c) {
        Ok(goal) => goal,
        Err(rec) => return rec,
    };
    let mut reasons = Vec::new();
    let mut shippable: Vec<(usize, f64, f64, String)> = Vec::new();
    let mut all_worse = true;
    let treatments: Vec<&Comparison> = goal.comparisons.iter().collect();
    for t in &treatments {
        let TreatmentOutcome {
            better_on,
            blocked,
            worse_goal,
        } = treatment_outcome(t, results, c);
        if !worse_goal {
            all_worse = false;
        }
        match (better_on, blocked.is_empty()) {
            (Some((metric, conf, est)), true) => {
                shippable.push((t.variation_id, conf, est, metric))
            }
            (Some((metric, _, est)), false) => {
                reasons.push(format!(
                    "{} improves {metric} ({}) but cannot ship: {}",
                    t.key,
                    pct(est),
                    blocked.join("; ")
                ));
            }
            (None, _) => reasons.extend(blocked),
        }
    }
    let confidence_words = |conf: f64| match c.engine {
        Engine::Frequentist => format!(
            "{:.1} % confidence (1 − p after the {} correction)",
            conf * 100.0,
            correction_name(c.correction)
        ),
        Engine::Bayesian => format!("a {:.1} % chance to win", conf * 100.0),
    };
    if let Some(best) = shippable.iter().max_by(|a, b| {
        let score = |e: f64| {
            if goal.direction == Direction::Lower {
                -e
            } else {
                e
            }
        };
        score(a.2).total_cmp(&score(b.2))
    }) {
        let (id, conf, est, metric) = best.clone();
        let key = treatments
            .iter()
            .find(|t| t.variation_id == id)
            .map_or(id.to_string(), |t| t.key.clone());
        let mut why = vec![format!(
            "{key} moves {metric} by {} against the control, with {}",
            pct(est),
            confidence_words(conf)
        )];
        let guards: Vec<&str> = results
            .iter()
            .filter(|m| m.role == Role::Guardrail)
            .map(|m| m.name.as_str())
            .collect();
        if guards.is_empty() {
            why.push("no guardrail metric was declared".into());
        } else {
            why.push(format!("no guardrail got worse ({})", guards.join(", ")));
        }
        why.push(format!(
            "the traffic split matches the configuration (SRM p = {:.3})",
            srm.p_value
        ));
        why.extend(reasons);
        return Recommendation {
            decision: Decision::Ship,
            variation_id: Some(id),
            confidence: Some(conf),
            metric: Some(metric),
            reasons: why,
        };
    }
    if all_worse && !treatments.is_empty() {
        let mut why = vec!["every treatment is worse than the control on a goal metric".to_owned()];
        why.extend(reasons);
        return rec(Decision::KeepControl, why);
    }
    let mut why = vec![format!(
        "no treatment is a clear improvement on {} yet",
        goal.name
    )];
    why.extend(reasons);
    if let Some(p) = power
        && let (Some(now), Some(needed)) = (p.mde_now, p.users_needed_per_arm)
    {
        {
            let mut line = format!(
                "with {} users per arm the smallest detectable change is {}; detecting {} needs about {needed} users per arm",
                p.users_per_arm,
                pct(now).trim_start_matches('+'),
                pct(p.mde_target).trim_start_matches('+')
            );
            if let Some(d) = p.days_remaining.filter(|d| *d > 0.0) {
                line.push_str(&format!(", about {d:.1} more days at the current rate"));
            }
            why.push(line);
        }
    }
    rec(Decision::KeepRunning, why)
}

fn timeline(agg: &Aggregate, results: &[MetricResult], control: usize) -> Timeline {
    let metric = primary(results).map(|m| (m.name.clone(), m.kind));
    let mut t = Timeline {
        metric: metric.as_ref().map(|m| m.0.clone()),
        ..Timeline::default()
    };
    let mut users: BTreeMap<usize, u64> = BTreeMap::new();
    let mut sums: BTreeMap<usize, ArmSums> = BTreeMap::new();
    for (start, b) in &agg.timeline {
        t.at_ms.push(start + agg.bucket_ms);
        for (arm, n) in &b.users {
            *users.entry(*arm).or_insert(0) += n;
        }
        if let Some((name, _)) = &metric
            && let Some(arms) = b.metrics.get(name)
        {
            {
                for (arm, s) in arms {
                    let e = sums.entry(*arm).or_default();
                    e.sum += s.sum;
                    e.sum_squares += s.sum_squares;
                }
            }
        }
        for arm in agg.users.keys() {
            t.users
                .entry(*arm)
                .or_default()
                .push(users.get(arm).copied().unwrap_or(0));
        }
        let mean = |arm: usize| {
            let n = users.get(&arm).copied().unwrap_or(0);
            (n > 0).then(|| sums.get(&arm).map_or(0.0, |s| s.sum) / n as f64)
        };
        for arm in agg.users.keys().copied().filter(|a| *a != control) {
            let lift = match (mean(control), mean(arm)) {
                (Some(a), Some(b)) if a != 0.0 => Some((b - a) / a),
                _ => None,
            };
            t.lift.entry(arm).or_default().push(lift);
        }
    }
    t
}

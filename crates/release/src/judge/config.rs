//! Kayenta's canary configuration and metric-set pairs, in Kayenta's own
//! JSON shapes, so a team's existing configs load unchanged.

use std::collections::BTreeMap;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::error::ReleaseError;

/// Which way a metric may move before it is judged bad.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Only an increase is bad (latency, errors).
    Increase,
    /// Only a decrease is bad (success rate, throughput).
    Decrease,
    /// Either way is bad (the default, also for unknown strings).
    #[default]
    Either,
}

impl Direction {
    /// Kayenta's reading: case-insensitive, anything unknown is `Either`.
    pub fn parse(s: &str) -> Self {
        match s.to_ascii_lowercase().as_str() {
            "increase" => Self::Increase,
            "decrease" => Self::Decrease,
            _ => Self::Either,
        }
    }
}

/// What to do with NaN samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum NanStrategy {
    /// Drop them (the default).
    #[default]
    Remove,
    /// Replace them by 0.
    Replace,
}

/// How the effect size is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum EffectMeasure {
    /// mean(canary) / mean(baseline) (the default).
    #[default]
    #[serde(rename = "meanRatio")]
    MeanRatio,
    /// The common-language effect size, U / (n·m).
    #[serde(rename = "cles")]
    Cles,
}

/// A metric's canary settings (`analysisConfigurations.canary`, or the older
/// `extensions.canary`), with Kayenta's defaults.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricSettings {
    /// Which way is bad.
    pub direction: Direction,
    /// A critical metric that is not Pass forces the score to 0.
    pub critical: bool,
    /// No data is `NodataFailMetric` (counted as a failure) unless critical.
    pub must_have_data: bool,
    /// NaN handling.
    pub nan_strategy: NanStrategy,
    /// Remove outliers beyond `min(p1, Q1 − k·IQR)` / `max(p99, Q3 + k·IQR)`.
    pub remove_outliers: bool,
    /// `k` of the outlier fences (3.0).
    pub outlier_factor: f64,
    /// The effect-size measure.
    pub effect_measure: EffectMeasure,
    /// A High also needs effect ≥ this (1.0; 0.5 for cles).
    pub allowed_increase: f64,
    /// A Low also needs effect ≤ this (1.0; 0.5 for cles).
    pub allowed_decrease: f64,
    /// A critical High needs effect ≥ this (1.0; 0.5 for cles).
    pub critical_increase: f64,
    /// A critical Low needs effect ≤ this (1.0; 0.5 for cles).
    pub critical_decrease: f64,
    /// Classified and reported, but left out of the score.
    pub muted: bool,
}

impl Default for MetricSettings {
    fn default() -> Self {
        Self {
            direction: Direction::Either,
            critical: false,
            must_have_data: false,
            nan_strategy: NanStrategy::Remove,
            remove_outliers: false,
            outlier_factor: 3.0,
            effect_measure: EffectMeasure::MeanRatio,
            allowed_increase: 1.0,
            allowed_decrease: 1.0,
            critical_increase: 1.0,
            critical_decrease: 1.0,
            muted: false,
        }
    }
}

/// One metric of a canary config.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricConfig {
    /// The metric's name (pairs are matched to it by name; first match).
    pub name: String,
    /// The groups it scores in (a metric in two groups counts in both).
    pub groups: Vec<String>,
    /// Its canary settings.
    pub settings: MetricSettings,
    /// The query, kept as given (the Prometheus provider reads
    /// `query.metricName` or `query.customInlineTemplate`).
    pub query: serde_json::Value,
}

/// `classifier.scoreThresholds`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ScoreThresholds {
    /// At or above: Pass.
    pub pass: f64,
    /// At or above (and below pass): Marginal; below: Fail.
    pub marginal: f64,
}

impl Default for ScoreThresholds {
    fn default() -> Self {
        Self {
            pass: 95.0,
            marginal: 75.0,
        }
    }
}

/// A Kayenta canary configuration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CanaryConfig {
    /// Its name, when given.
    pub name: Option<String>,
    /// The metrics.
    pub metrics: Vec<MetricConfig>,
    /// `classifier.groupWeights`.
    pub group_weights: BTreeMap<String, f64>,
    /// `classifier.scoreThresholds` (95 / 75 when absent).
    pub thresholds: ScoreThresholds,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawConfig {
    #[serde(default)]
    name: Option<String>,
    metrics: Vec<RawMetric>,
    #[serde(default)]
    classifier: Option<RawClassifier>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawClassifier {
    #[serde(default)]
    group_weights: BTreeMap<String, f64>,
    #[serde(default)]
    score_thresholds: Option<ScoreThresholds>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawMetric {
    name: String,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    analysis_configurations: Option<RawAnalysis>,
    #[serde(default)]
    extensions: Option<RawAnalysis>,
    #[serde(default)]
    query: serde_json::Value,
}

#[derive(Deserialize)]
struct RawAnalysis {
    #[serde(default)]
    canary: Option<RawCanary>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RawCanary {
    direction: Option<String>,
    critical: Option<bool>,
    must_have_data: Option<bool>,
    nan_strategy: Option<String>,
    outliers: Option<RawOutliers>,
    effect_size: Option<RawEffect>,
    muted: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RawOutliers {
    strategy: Option<String>,
    outlier_factor: Option<f64>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RawEffect {
    allowed_increase: Option<f64>,
    allowed_decrease: Option<f64>,
    critical_increase: Option<f64>,
    critical_decrease: Option<f64>,
    measure: Option<String>,
}

fn settings(raw: RawCanary) -> MetricSettings {
    let measure = match raw.effect_size.as_ref().and_then(|e| e.measure.as_deref()) {
        Some("cles") => EffectMeasure::Cles,
        _ => EffectMeasure::MeanRatio,
    };
    let default_effect = if measure == EffectMeasure::Cles {
        0.5
    } else {
        1.0
    };
    let effect = raw.effect_size.unwrap_or_default();
    let outliers = raw.outliers.unwrap_or_default();
    MetricSettings {
        direction: raw
            .direction
            .as_deref()
            .map_or(Direction::Either, Direction::parse),
        critical: raw.critical.unwrap_or(false),
        must_have_data: raw.must_have_data.unwrap_or(false),
        nan_strategy: match raw.nan_strategy.as_deref().map(str::to_ascii_lowercase) {
            Some(s) if s == "replace" => NanStrategy::Replace,
            _ => NanStrategy::Remove,
        },
        remove_outliers: outliers
            .strategy
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case("remove")),
        outlier_factor: outliers.outlier_factor.unwrap_or(3.0),
        effect_measure: measure,
        allowed_increase: effect.allowed_increase.unwrap_or(default_effect),
        allowed_decrease: effect.allowed_decrease.unwrap_or(default_effect),
        critical_increase: effect.critical_increase.unwrap_or(default_effect),
        critical_decrease: effect.critical_decrease.unwrap_or(default_effect),
        muted: raw.muted.unwrap_or(false),
    }
}

/// Parses JSON with the path and position of the first problem.
fn parse_json<'a, T: Deserialize<'a>>(text: &'a str, file: &str) -> Result<T, ReleaseError> {
    let mut de = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        ReleaseError::Input {
            file: file.to_owned(),
            line: inner.line(),
            column: inner.column(),
            path,
            message: inner.to_string(),
        }
    })
}

impl CanaryConfig {
    /// Reads a Kayenta canary config from JSON text; `file` names it in errors.
    ///
    /// # Errors
    ///
    /// [`ReleaseError::Input`] naming the file, position and field of the
    /// first problem: bad JSON, a missing `metrics`, a metric without a
    /// name, a duplicate name, a negative or non-finite weight, thresholds
    /// out of order.
    pub fn from_json(text: &str, file: &str) -> Result<Self, ReleaseError> {
        let raw: RawConfig = parse_json(text, file)?;
        let bad = |path: &str, message: String| {
            let key = path.rsplit('.').next().unwrap_or(path);
            let at = flightdeck_obs_core::locate::find_key(text, key, 0, text.len()).unwrap_or(0);
            let (line, column) = flightdeck_obs_core::locate::line_column(text, at);
            ReleaseError::Input {
                file: file.to_owned(),
                line,
                column,
                path: path.to_owned(),
                message,
            }
        };
        if raw.metrics.is_empty() {
            return Err(bad(
                "metrics",
                "a canary config needs at least one metric".into(),
            ));
        }
        let mut metrics = Vec::with_capacity(raw.metrics.len());
        for (i, m) in raw.metrics.into_iter().enumerate() {
            if m.name.is_empty() {
                return Err(bad(
                    &format!("metrics[{i}].name"),
                    "a metric needs a name".into(),
                ));
            }
            let canary = m
                .analysis_configurations
                .and_then(|a| a.canary)
                .or_else(|| m.extensions.and_then(|e| e.canary))
                .unwrap_or_default();
            let s = settings(canary);
            for (field, v) in [
                ("outliers.outlierFactor", s.outlier_factor),
                ("effectSize.allowedIncrease", s.allowed_increase),
                ("effectSize.allowedDecrease", s.allowed_decrease),
                ("effectSize.criticalIncrease", s.critical_increase),
                ("effectSize.criticalDecrease", s.critical_decrease),
            ] {
                if !v.is_finite() || v < 0.0 {
                    return Err(bad(
                        &format!("metrics[{i}].analysisConfigurations.canary.{field}"),
                        format!("must be a finite number ≥ 0, got {v}"),
                    ));
                }
            }
            metrics.push(MetricConfig {
                name: m.name,
                groups: m.groups,
                settings: s,
                query: m.query,
            });
        }
        let (group_weights, thresholds) = match raw.classifier {
            Some(c) => (c.group_weights, c.score_thresholds.unwrap_or_default()),
            None => (BTreeMap::new(), ScoreThresholds::default()),
        };
        for (g, w) in &group_weights {
            if !w.is_finite() || *w < 0.0 {
                return Err(bad(
                    &format!("classifier.groupWeights.{g}"),
                    format!("a weight must be a finite number ≥ 0, got {w}"),
                ));
            }
        }
        let total: f64 = group_weights.values().sum();
        if total > 100.0 + 1e-9 {
            return Err(bad(
                "classifier.groupWeights",
                format!("the weights add up to {total}, more than 100"),
            ));
        }
        if !(thresholds.pass.is_finite()
            && thresholds.marginal.is_finite()
            && (0.0..=100.0).contains(&thresholds.marginal)
            && thresholds.marginal <= thresholds.pass
            && thresholds.pass <= 100.0)
        {
            return Err(bad(
                "classifier.scoreThresholds",
                format!(
                    "need 0 ≤ marginal ≤ pass ≤ 100, got marginal {} and pass {}",
                    thresholds.marginal, thresholds.pass
                ),
            ));
        }
        Ok(Self {
            name: raw.name,
            metrics,
            group_weights,
            thresholds,
        })
    }

    /// The config of the metric called `name` (first match, as Kayenta).
    pub fn metric(&self, name: &str) -> Option<&MetricConfig> {
        self.metrics.iter().find(|m| m.name == name)
    }
}

/// Samples as Kayenta writes them: numbers, with NaN (and infinities) as
/// strings.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Samples(#[serde(serialize_with = "ser_samples")] pub Vec<f64>);

fn ser_samples<S: serde::Serializer>(v: &[f64], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    let mut seq = s.serialize_seq(Some(v.len()))?;
    for x in v {
        if x.is_finite() {
            seq.serialize_element(x)?;
        } else {
            seq.serialize_element(&crate::judge::float_text(*x))?;
        }
    }
    seq.end()
}

/// The most samples one side of a pair may hold.
pub const MAX_SAMPLES: usize = 1_000_000;

impl<'de> Deserialize<'de> for Samples {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Samples;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a list of numbers (NaN as the string \"NaN\")")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Samples, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
                while let Some(x) = seq.next_element::<NumOrText>()? {
                    if out.len() == MAX_SAMPLES {
                        return Err(de::Error::custom(format!(
                            "more than {MAX_SAMPLES} samples"
                        )));
                    }
                    out.push(match x {
                        NumOrText::Num(v) => v,
                        NumOrText::Text(t) => match t.as_str() {
                            "NaN" => f64::NAN,
                            "Infinity" => f64::INFINITY,
                            "-Infinity" => f64::NEG_INFINITY,
                            other => {
                                return Err(de::Error::custom(format!(
                                    "sample {} is {}: only numbers, \"NaN\", \"Infinity\" and \"-Infinity\" are samples",
                                    out.len(),
                                    flightdeck_obs_core::shown(other)
                                )));
                            }
                        },
                    });
                }
                Ok(Samples(out))
            }
        }
        d.deserialize_seq(V)
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum NumOrText {
    Num(f64),
    Text(String),
}

/// `values` of a metric-set pair.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PairValues {
    /// The baseline's samples.
    #[serde(default)]
    pub control: Samples,
    /// The canary's samples.
    #[serde(default)]
    pub experiment: Samples,
}

/// Kayenta's `MetricSetPair`: one metric's baseline and canary samples.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricSetPair {
    /// The metric's name (matched to the config by name).
    pub name: String,
    /// An id, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Tags (for example the instance), when given.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// The samples.
    pub values: PairValues,
    /// Anything else Kayenta attached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<serde_json::Value>,
}

/// Reads a JSON list of metric-set pairs.
///
/// # Errors
///
/// [`ReleaseError::Input`] naming the file, position and path of the
/// first problem (a sample that is neither a number nor `"NaN"`, say).
pub fn pairs_from_json(text: &str, file: &str) -> Result<Vec<MetricSetPair>, ReleaseError> {
    parse_json(text, file)
}

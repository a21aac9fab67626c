//! GrowthBook feature definitions: a default value and rules (force,
//! rollout, experiment), with prerequisites. The flags crate builds kill
//! switches, sources and OpenFeature on top of this engine.

use std::sync::LazyLock;

use rustc_hash::FxHashMap;
use serde_json::{Map, Value};

use crate::attr::AttrName;
use crate::condition::{Condition, ConditionWarning, SavedGroups};
use crate::context::{AttrText, Context};
use crate::experiment::{
    Experiment, ExperimentResult, Filter, ParentCondition, compile_condition, filtered_out,
    filters_of, parent_conditions_of,
};
use crate::hash::{BucketRange, SeededHash};
use crate::js::{NULL, truthy};

/// Why a feature has the value it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum FeatureSource {
    /// No rule matched: the default value.
    DefaultValue,
    /// A force (or rollout) rule matched.
    Force,
    /// An experiment rule put the user in an experiment.
    Experiment,
    /// The feature is not defined.
    UnknownFeature,
    /// A gating prerequisite failed.
    Prerequisite,
    /// Prerequisites form a cycle.
    CyclicPrerequisite,
    /// Turned off for everyone by a kill switch (set by the flags crate).
    KillSwitch,
    /// The flag is disabled in its definition (set by the flags crate).
    Disabled,
}

impl FeatureSource {
    /// The name GrowthBook uses (`defaultValue`, `force`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            FeatureSource::DefaultValue => "defaultValue",
            FeatureSource::Force => "force",
            FeatureSource::Experiment => "experiment",
            FeatureSource::UnknownFeature => "unknownFeature",
            FeatureSource::Prerequisite => "prerequisite",
            FeatureSource::CyclicPrerequisite => "cyclicPrerequisite",
            FeatureSource::KillSwitch => "killSwitch",
            FeatureSource::Disabled => "disabled",
        }
    }
}

/// A feature's evaluated value. Borrows the feature set, so evaluating
/// allocates nothing unless prerequisites or sticky buckets are involved.
#[derive(Debug, Clone)]
pub struct FeatureResult<'a> {
    /// The value.
    pub value: &'a Value,
    /// Why.
    pub source: FeatureSource,
    /// The id of the rule that decided (empty for none).
    pub rule_id: &'a str,
    /// The experiment, when an experiment rule decided.
    pub experiment: Option<&'a Experiment>,
    /// The experiment's result, when an experiment rule decided.
    pub experiment_result: Option<ExperimentResult<'a>>,
}

impl PartialEq for FeatureResult<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
            && self.source == other.source
            && self.rule_id == other.rule_id
            && self.experiment.map(Experiment::key) == other.experiment.map(Experiment::key)
            && self.experiment_result == other.experiment_result
    }
}

impl FeatureResult<'_> {
    /// JavaScript truthiness of the value: `null`, `false`, `0` and `""` are off.
    pub fn on(&self) -> bool {
        truthy(self.value)
    }

    /// The result in GrowthBook's JSON shape.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("value".into(), self.value.clone());
        m.insert("on".into(), Value::Bool(self.on()));
        m.insert("off".into(), Value::Bool(!self.on()));
        m.insert("source".into(), Value::from(self.source.as_str()));
        m.insert("ruleId".into(), Value::from(self.rule_id));
        if let Some(e) = self.experiment {
            m.insert("experiment".into(), e.raw().clone());
        }
        if let Some(r) = &self.experiment_result {
            m.insert("experimentResult".into(), r.to_json());
        }
        Value::Object(m)
    }
}

#[derive(Debug, Clone)]
enum RuleKind {
    Force {
        value: Value,
        rollout: Rollout,
        seed: SeededHash,
        hash_attribute: Option<AttrName>,
        fallback_attribute: Option<String>,
        disable_sticky_bucketing: bool,
        condition: Option<Condition>,
    },
    Experiment(Box<Experiment>),
    Invalid,
}

#[derive(Debug, Clone)]
struct Rule {
    id: String,
    parent_conditions: Vec<ParentCondition>,
    filters: Vec<Filter>,
    kind: RuleKind,
}

/// One feature: a default value and its rules, in order.
#[derive(Debug, Clone)]
pub struct Feature {
    default_value: Value,
    rules: Vec<Rule>,
    // When the last rule forces a value: the result for a user outside its
    // rollout (the default) and inside it, indexed by the rollout's outcome.
    last_force: Option<Box<[Outcome; 2]>>,
}

/// One possible result of a feature, kept whole so it can be picked by
/// index rather than by a branch.
#[derive(Debug, Clone)]
struct Outcome {
    value: Value,
    source: FeatureSource,
    rule_id: String,
}

impl Feature {
    /// The value served when no rule matches.
    pub fn default_value(&self) -> &Value {
        &self.default_value
    }

    /// The number of rules.
    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    /// Compiles one feature definition (`defaultValue` and `rules`) of the
    /// GrowthBook payload, adding what is wrong in its conditions to
    /// `warnings`.
    pub fn compile(key: &str, def: &Value, warnings: &mut Vec<ConditionWarning>) -> Self {
        let rules = def
            .get("rules")
            .and_then(Value::as_array)
            .map(|rules| {
                rules
                    .iter()
                    .enumerate()
                    .map(|(i, r)| compile_rule(key, i, r, warnings))
                    .collect()
            })
            .unwrap_or_default();
        Feature {
            default_value: def.get("defaultValue").cloned().unwrap_or(Value::Null),
            rules,
            last_force: None,
        }
        .with_outcomes()
    }

    /// Fills `last_force` from the rules.
    fn with_outcomes(mut self) -> Self {
        self.last_force = match self.rules.last() {
            Some(Rule {
                id,
                kind: RuleKind::Force { value, .. },
                ..
            }) => Some(Box::new([
                Outcome {
                    value: self.default_value.clone(),
                    source: FeatureSource::DefaultValue,
                    rule_id: String::new(),
                },
                Outcome {
                    value: value.clone(),
                    source: FeatureSource::Force,
                    rule_id: id.clone(),
                },
            ])),
            _ => None,
        };
        self
    }

    /// A feature built in code: `default_value` and no rules yet (add
    /// them with [`with_force_rule`](Self::with_force_rule)). The typed
    /// counterpart of [`compile`](Self::compile), for callers that hold their
    /// rules as data rather than as payload JSON.
    ///
    /// ```
    /// use flightdeck_experiments::{Condition, Context, Feature, FeatureSet, ForceRule};
    /// use serde_json::json;
    /// let (pro, _) = Condition::compile(&json!({"plan": "pro"}));
    /// let feature = Feature::new(json!(false)).with_force_rule(
    ///     ForceRule::new(json!(true)).with_id("pro-half").with_condition(pro).with_rollout(
    ///         0.5,
    ///         "id",
    ///         "new-search",
    ///     ),
    /// );
    /// let set = FeatureSet::from_compiled(vec![("new-search".into(), feature)], None, Vec::new());
    /// let free = Context::new(json!({"id": "u1", "plan": "free"}));
    /// assert!(!set.eval("new-search", &free).on());
    /// ```
    pub fn new(default_value: Value) -> Self {
        Feature {
            default_value,
            rules: Vec::new(),
            last_force: None,
        }
    }

    /// Appends a force rule (evaluated after the rules already there).
    #[must_use]
    pub fn with_force_rule(mut self, rule: ForceRule) -> Self {
        self.rules.push(Rule {
            id: rule.id,
            parent_conditions: rule.gates,
            filters: Vec::new(),
            kind: RuleKind::Force {
                value: rule.value,
                rollout: Rollout::new(None, rule.coverage, rule.hash_version),
                seed: SeededHash::new(&rule.seed),
                hash_attribute: rule.hash_attribute.map(AttrName::new),
                fallback_attribute: None,
                disable_sticky_bucketing: false,
                condition: rule.condition,
            },
        });
        self.with_outcomes()
    }

    /// Appends an experiment rule (evaluated after the rules already there).
    #[must_use]
    pub fn with_experiment_rule(mut self, rule: ExperimentRule) -> Self {
        let (keys, variations) = rule.variations.into_iter().unzip();
        let exp = Experiment::from_parts(
            rule.key,
            &rule.seed,
            2,
            variations,
            keys,
            rule.weights,
            rule.coverage,
            rule.condition,
        );
        self.rules.push(Rule {
            id: rule.id,
            parent_conditions: rule.gates,
            filters: Vec::new(),
            kind: RuleKind::Experiment(Box::new(exp)),
        });
        self.with_outcomes()
    }

    /// The experiments its experiment rules run.
    pub fn experiments(&self) -> impl Iterator<Item = &Experiment> {
        self.rules.iter().filter_map(|r| match &r.kind {
            RuleKind::Experiment(e) => Some(&**e),
            _ => None,
        })
    }
}

/// The setters force and experiment rules share: the id, the condition and
/// the gates.
macro_rules! common_rule_setters {
    () => {
        /// The rule id reported in evaluation results.
        #[must_use]
        pub fn with_id(mut self, id: impl Into<String>) -> Self {
            self.id = id.into();
            self
        }

        /// Applies the rule only to contexts passing `condition`.
        #[must_use]
        pub fn with_condition(mut self, condition: Condition) -> Self {
            self.condition = Some(condition);
            self
        }

        /// Applies the rule only while feature `feature`'s value passes
        /// `condition` (tested as `{"value": <its value>}`); when it does
        /// not, the whole feature evaluates to null with source
        /// `prerequisite`.
        #[must_use]
        pub fn with_gate(mut self, feature: impl Into<String>, condition: Condition) -> Self {
            self.gates.push(ParentCondition {
                id: feature.into(),
                condition,
                gate: true,
            });
            self
        }
    };
}

/// A force rule built in code: serves `value` to whoever passes its
/// condition and gates, within its rollout. It behaves exactly as the payload
/// rule `{"force": value, ...}` with the same fields.
///
/// | setting | default | payload field |
/// |---|---|---|
/// | id | `""` | `id` |
/// | condition | none (everyone) | `condition` |
/// | rollout | none (everyone) | `coverage`, `hashAttribute`, `seed`, `hashVersion: 2` |
/// | gates | none | `parentConditions` with `gate: true` |
#[derive(Debug, Clone)]
pub struct ForceRule {
    id: String,
    value: Value,
    condition: Option<Condition>,
    coverage: Option<f64>,
    seed: String,
    hash_attribute: Option<String>,
    hash_version: u32,
    gates: Vec<ParentCondition>,
}

impl ForceRule {
    /// A rule serving `value` to everyone.
    pub fn new(value: Value) -> Self {
        Self {
            id: String::new(),
            value,
            condition: None,
            coverage: None,
            seed: String::new(),
            hash_attribute: None,
            // A payload rule without `hashVersion` hashes with version 1.
            hash_version: 1,
            gates: Vec::new(),
        }
    }

    /// Serves the rule to the `coverage` share (0 to 1) of users, bucketed by
    /// `attribute` with `seed` under hash version 2.
    #[must_use]
    pub fn with_rollout(mut self, coverage: f64, attribute: &str, seed: &str) -> Self {
        self.coverage = Some(coverage);
        self.hash_attribute = (!attribute.is_empty()).then(|| attribute.to_owned());
        self.seed = seed.to_owned();
        self.hash_version = 2;
        self
    }

    common_rule_setters!();
}

/// An experiment rule built in code: splits the users who pass its
/// condition and gates between its variations by weight, within its
/// coverage, hashing the `id` attribute with hash version 2. It behaves
/// exactly as the payload rule with the same fields; its experiment's
/// [`raw`](Experiment::raw) JSON is null.
///
/// | setting | default | payload field |
/// |---|---|---|
/// | key | (given) | `key` |
/// | variations and their keys | (given) | `variations`, `meta[i].key` |
/// | id | `""` | `id` |
/// | seed | the key | `seed` |
/// | weights | equal | `weights` |
/// | coverage | 1 (everyone) | `coverage` |
/// | condition | none (everyone) | `condition` |
/// | gates | none | `parentConditions` with `gate: true` |
///
/// ```
/// use flightdeck_experiments::{Context, ExperimentRule, Feature, FeatureSet, FeatureSource};
/// use serde_json::json;
/// let rule = ExperimentRule::new("ranker", vec![("bm25".into(), json!("bm25")), ("colbert".into(), json!("colbert"))])
///     .with_id("variants")
///     .with_weights(vec![0.5, 0.5]);
/// let set = FeatureSet::from_compiled(
///     vec![("ranker".into(), Feature::new(json!("bm25")).with_experiment_rule(rule))],
///     None,
///     Vec::new(),
/// );
/// let user = Context::new(json!({"id": "u1"}));
/// assert_eq!(set.eval("ranker", &user).source, FeatureSource::Experiment);
/// ```
#[derive(Debug, Clone)]
pub struct ExperimentRule {
    id: String,
    key: String,
    variations: Vec<(String, Value)>,
    seed: String,
    weights: Option<Vec<f64>>,
    coverage: f64,
    condition: Option<Condition>,
    gates: Vec<ParentCondition>,
}

impl ExperimentRule {
    /// An experiment `key` over `variations` (each a key and a value), for
    /// everyone, with equal weights.
    pub fn new(key: impl Into<String>, variations: Vec<(String, Value)>) -> Self {
        Self {
            id: String::new(),
            key: key.into(),
            variations,
            seed: String::new(),
            weights: None,
            coverage: 1.0,
            condition: None,
            gates: Vec::new(),
        }
    }

    /// Hashes with `seed` instead of the key.
    #[must_use]
    pub fn with_seed(mut self, seed: impl Into<String>) -> Self {
        self.seed = seed.into();
        self
    }

    /// The variations' weights (used when there is one per variation and
    /// they sum to 1 within 0.01; else equal weights, as in the payload).
    #[must_use]
    pub fn with_weights(mut self, weights: Vec<f64>) -> Self {
        self.weights = Some(weights);
        self
    }

    /// Puts the `coverage` share (0 to 1) of users in the experiment.
    #[must_use]
    pub fn with_coverage(mut self, coverage: f64) -> Self {
        self.coverage = coverage;
        self
    }

    common_rule_setters!();
}

/// The fields an experiment rule passes on to its experiment (GrowthBook
/// copies a whitelist, so unknown rule fields never reach the experiment).
const EXPERIMENT_RULE_FIELDS: &[&str] = &[
    "coverage",
    "weights",
    "hashAttribute",
    "fallbackAttribute",
    "disableStickyBucketing",
    "bucketVersion",
    "minBucketVersion",
    "namespace",
    "meta",
    "ranges",
    "name",
    "phase",
    "seed",
    "hashVersion",
    "filters",
    "condition",
];

fn compile_rule(
    feature_key: &str,
    index: usize,
    rule: &Value,
    warnings: &mut Vec<ConditionWarning>,
) -> Rule {
    let mut w = Vec::new();
    let str_field = |k: &str| {
        rule.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let kind = if let Some(force) = rule.get("force") {
        RuleKind::Force {
            value: force.clone(),
            rollout: Rollout::new(
                rule.get("range").and_then(|r| {
                    let a = r.as_array()?;
                    Some((a.first()?.as_f64()?, a.get(1)?.as_f64()?))
                }),
                rule.get("coverage").and_then(Value::as_f64),
                rule.get("hashVersion")
                    .and_then(Value::as_f64)
                    .filter(|&h| h != 0.0)
                    .map_or(1, |h| h as u32),
            ),
            seed: SeededHash::new(&str_field("seed").unwrap_or_else(|| feature_key.to_owned())),
            hash_attribute: str_field("hashAttribute").map(AttrName::new),
            fallback_attribute: str_field("fallbackAttribute"),
            disable_sticky_bucketing: rule.get("disableStickyBucketing").is_some_and(truthy),
            condition: compile_condition(rule.get("condition"), "condition", &mut w),
        }
    } else if let Some(variations) = rule.get("variations").filter(|v| v.is_array()) {
        let mut exp = Map::new();
        exp.insert("variations".into(), variations.clone());
        exp.insert(
            "key".into(),
            Value::from(str_field("key").unwrap_or_else(|| feature_key.to_owned())),
        );
        for &field in EXPERIMENT_RULE_FIELDS {
            if let Some(v) = rule.get(field) {
                // GrowthBook copies most fields only when truthy.
                let keep =
                    matches!(field, "coverage" | "bucketVersion" | "minBucketVersion") || truthy(v);
                if keep {
                    exp.insert(field.into(), v.clone());
                }
            }
        }
        let exp = Experiment::from_value(Value::Object(exp));
        w.extend(exp.warnings().iter().cloned());
        RuleKind::Experiment(Box::new(exp))
    } else {
        RuleKind::Invalid
    };
    let parent_conditions = parent_conditions_of(rule.get("parentConditions"), &mut w);
    warnings.extend(w.into_iter().map(|mut w| {
        w.path = format!("features.{feature_key}.rules[{index}].{}", w.path);
        w
    }));
    Rule {
        id: str_field("id").unwrap_or_default(),
        parent_conditions,
        filters: filters_of(rule.get("filters")),
        kind,
    }
}

/// A set of features and saved groups, as in a GrowthBook features payload.
///
/// ```
/// use flightdeck_experiments::{Context, FeatureSet, FeatureSource};
/// use serde_json::json;
/// let features = FeatureSet::from_json(&json!({
///     "new-search": {
///         "defaultValue": false,
///         "rules": [{"condition": {"plan": "pro"}, "force": true}],
///     }
/// }), None);
/// let ctx = Context::new(json!({"id": "u1", "plan": "pro"}));
/// let r = features.eval("new-search", &ctx);
/// assert!(r.on());
/// assert_eq!(r.source, FeatureSource::Force);
/// ```
#[derive(Debug, Clone, Default)]
pub struct FeatureSet {
    // Keys come from configuration, not from users, so the fast
    // non-cryptographic hasher is safe here.
    features: Vec<(String, Feature)>,
    index: FxHashMap<String, usize>,
    saved_groups: SavedGroups,
    warnings: Vec<ConditionWarning>,
}

static EMPTY: LazyLock<FeatureSet> = LazyLock::new(FeatureSet::default);

impl FeatureSet {
    /// The empty set.
    pub fn empty() -> &'static FeatureSet {
        &EMPTY
    }

    /// Compiles `features` (an object of feature key → definition) and the
    /// optional `savedGroups` object.
    pub fn from_json(features: &Value, saved_groups: Option<&Value>) -> Self {
        let mut warnings = Vec::new();
        let features = features
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(key, def)| (key.clone(), Feature::compile(key, def, &mut warnings)))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        Self::from_compiled(features, saved_groups, warnings)
    }

    /// A set from features compiled one by one with [`Feature::compile`]
    /// (for callers that compile them on several threads). A key that
    /// appears twice keeps its last definition, as a JSON object would.
    pub fn from_compiled(
        mut features: Vec<(String, Feature)>,
        saved_groups: Option<&Value>,
        warnings: Vec<ConditionWarning>,
    ) -> Self {
        let mut index: FxHashMap<String, usize> =
            FxHashMap::with_capacity_and_hasher(features.len(), Default::default());
        let mut duplicates = false;
        for (i, (k, _)) in features.iter().enumerate() {
            duplicates |= index.insert(k.clone(), i).is_some();
        }
        if duplicates {
            let mut i = 0;
            features.retain(|(k, _)| {
                let keep = index.get(k) == Some(&i);
                i += 1;
                keep
            });
            index = features
                .iter()
                .enumerate()
                .map(|(i, (k, _))| (k.clone(), i))
                .collect();
        }
        let saved_groups = saved_groups
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_array()?.clone())))
                    .collect()
            })
            .unwrap_or_default();
        Self {
            features,
            index,
            saved_groups,
            warnings,
        }
    }

    /// The saved groups conditions may refer to.
    pub fn saved_groups(&self) -> &SavedGroups {
        &self.saved_groups
    }

    /// Problems found in conditions at compile time.
    pub fn warnings(&self) -> &[ConditionWarning] {
        &self.warnings
    }

    /// One feature's definition.
    pub fn get(&self, key: &str) -> Option<&Feature> {
        self.index.get(key).map(|&i| &self.features[i].1)
    }

    /// The feature keys.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.features.iter().map(|(k, _)| k.as_str())
    }

    /// The features and their keys, by position (see
    /// [`position`](Self::position)).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Feature)> {
        self.features.iter().map(|(k, f)| (k.as_str(), f))
    }

    /// The features and their keys, by position, taking the set apart (to
    /// free a large set on several threads, say).
    pub fn into_features(self) -> Vec<(String, Feature)> {
        self.features
    }

    /// The key of the feature at `position`.
    pub fn key_at(&self, position: usize) -> Option<&str> {
        self.features.get(position).map(|(k, _)| k.as_str())
    }

    /// The number of features.
    pub fn len(&self) -> usize {
        self.features.len()
    }

    /// Whether there are no features.
    pub fn is_empty(&self) -> bool {
        self.features.is_empty()
    }

    /// The position of feature `key`, for [`eval_at`](Self::eval_at).
    pub fn position(&self, key: &str) -> Option<usize> {
        self.index.get(key).copied()
    }

    /// Evaluates the feature at `position` (from [`position`](Self::position))
    /// for `ctx`, with optional kill `overrides` as in
    /// [`eval_with_overrides`](Self::eval_with_overrides): one hash lookup
    /// fewer for callers that keep positions.
    ///
    /// # Panics
    ///
    /// When `position` is out of range (it must come from this set).
    pub fn eval_at<'a>(
        &'a self,
        position: usize,
        ctx: &'a Context,
        overrides: Option<Overrides<'_, 'a>>,
    ) -> FeatureResult<'a> {
        let (key, feature) = &self.features[position];
        self.eval_feature(key, feature, ctx, &mut EvalStack::new(), overrides)
    }

    /// Evaluates feature `key` for `ctx` (GrowthBook's `evalFeature`).
    pub fn eval<'a>(&'a self, key: &'a str, ctx: &'a Context) -> FeatureResult<'a> {
        self.eval_inner(key, ctx, &mut EvalStack::new(), None)
    }

    /// Evaluates feature `key` for `ctx`, with `overrides` consulted first
    /// for it and for every prerequisite: a feature it returns a value for
    /// is treated as killed (source [`FeatureSource::KillSwitch`]). The flags
    /// crate uses this so a killed flag also turns off its dependents.
    pub fn eval_with_overrides<'a>(
        &'a self,
        key: &'a str,
        ctx: &'a Context,
        overrides: Overrides<'_, 'a>,
    ) -> FeatureResult<'a> {
        self.eval_inner(key, ctx, &mut EvalStack::new(), Some(overrides))
    }

    fn plain<'a>(value: &'a Value, source: FeatureSource, rule_id: &'a str) -> FeatureResult<'a> {
        // `rule_id` borrows from the same set as `value`.
        FeatureResult {
            value,
            source,
            rule_id,
            experiment: None,
            experiment_result: None,
        }
    }

    /// Whether every prerequisite passes (`false` on a cycle too).
    pub(crate) fn parents_pass<'a>(
        &'a self,
        parents: &'a [ParentCondition],
        ctx: &'a Context,
    ) -> bool {
        self.check_parents(parents, ctx, &mut EvalStack::new(), None) == ParentOutcome::Pass
    }

    fn check_parents<'a>(
        &'a self,
        parents: &'a [ParentCondition],
        ctx: &'a Context,
        path: &mut EvalStack<'a>,
        overrides: Option<Overrides<'_, 'a>>,
    ) -> ParentOutcome {
        for parent in parents {
            let depth = path.len();
            let r = self.eval_inner(&parent.id, ctx, path, overrides);
            path.truncate(depth);
            if r.source == FeatureSource::CyclicPrerequisite {
                return ParentOutcome::Cycle;
            }
            if !parent
                .condition
                .eval_field("value", r.value, &self.saved_groups)
            {
                return if parent.gate {
                    ParentOutcome::GateFailed
                } else {
                    ParentOutcome::Skip
                };
            }
        }
        ParentOutcome::Pass
    }

    fn eval_inner<'a>(
        &'a self,
        key: &'a str,
        ctx: &'a Context,
        path: &mut EvalStack<'a>,
        overrides: Option<Overrides<'_, 'a>>,
    ) -> FeatureResult<'a> {
        if path.contains(key) {
            return Self::plain(&NULL, FeatureSource::CyclicPrerequisite, "");
        }
        let Some(feature) = self.get(key) else {
            return Self::plain(&NULL, FeatureSource::UnknownFeature, "");
        };
        self.eval_feature(key, feature, ctx, path, overrides)
    }

    fn eval_feature<'a>(
        &'a self,
        key: &'a str,
        feature: &'a Feature,
        ctx: &'a Context,
        path: &mut EvalStack<'a>,
        overrides: Option<Overrides<'_, 'a>>,
    ) -> FeatureResult<'a> {
        if let Some(v) = overrides.and_then(|o| o(key)) {
            return Self::plain(v, FeatureSource::KillSwitch, "");
        }
        let last = feature.rules.len().wrapping_sub(1);
        for (i, rule) in feature.rules.iter().enumerate() {
            if !rule.parent_conditions.is_empty() {
                if !path.push(key) {
                    // Deeper than any sane chain of prerequisites: a cycle.
                    return Self::plain(&NULL, FeatureSource::CyclicPrerequisite, "");
                }
                let outcome = self.check_parents(&rule.parent_conditions, ctx, path, overrides);
                path.truncate(path.len() - 1);
                match outcome {
                    ParentOutcome::Pass => {}
                    ParentOutcome::Cycle => {
                        return Self::plain(&NULL, FeatureSource::CyclicPrerequisite, "");
                    }
                    ParentOutcome::GateFailed => {
                        return Self::plain(&NULL, FeatureSource::Prerequisite, "");
                    }
                    ParentOutcome::Skip => continue,
                }
            }
            if !rule.filters.is_empty() && filtered_out(&rule.filters, ctx) {
                continue;
            }
            match &rule.kind {
                RuleKind::Force {
                    value,
                    rollout,
                    seed,
                    hash_attribute,
                    fallback_attribute,
                    disable_sticky_bucketing,
                    condition,
                } => {
                    if let Some(c) = condition
                        && !c.eval_context(ctx, &self.saved_groups)
                    {
                        continue;
                    }
                    let fallback = if ctx.sticky().is_some() && !disable_sticky_bucketing {
                        fallback_attribute.as_deref()
                    } else {
                        None
                    };
                    let included =
                        included_in_rollout(ctx, seed, hash_attribute.as_ref(), fallback, *rollout);
                    if let (true, Some(outcomes)) = (i == last, &feature.last_force) {
                        // The rollout is a coin flip per user: picking the
                        // result by index, not by a branch, spares the
                        // misprediction for a good share of users.
                        let o = &outcomes[usize::from(included)];
                        return Self::plain(&o.value, o.source, &o.rule_id);
                    }
                    if !included {
                        continue;
                    }
                    return Self::plain(value, FeatureSource::Force, &rule.id);
                }
                RuleKind::Experiment(exp) => {
                    let result = exp.run_with(ctx, self, Some(key));
                    if result.in_experiment && !result.passthrough {
                        return FeatureResult {
                            value: result.value,
                            source: FeatureSource::Experiment,
                            rule_id: &rule.id,
                            experiment: Some(exp),
                            experiment_result: Some(result),
                        };
                    }
                }
                RuleKind::Invalid => {}
            }
        }
        Self::plain(&feature.default_value, FeatureSource::DefaultValue, "")
    }
}

/// Values forced for some features (kill switches): a feature for which it
/// returns a value evaluates to that value with source `killSwitch`.
pub type Overrides<'f, 'a> = &'f dyn Fn(&str) -> Option<&'a Value>;

/// The chain of features being evaluated, for cycle detection, on the
/// stack (prerequisites allocate nothing).
struct EvalStack<'a> {
    // The first links live inline (every evaluation builds a stack, so it
    // must be cheap to make); deeper chains spill to the heap.
    inline: [&'a str; INLINE_DEPTH],
    inline_len: usize,
    spill: Vec<&'a str>,
}

const INLINE_DEPTH: usize = 4;

/// How deep prerequisites may nest before the chain counts as cyclic.
pub const MAX_PREREQUISITE_DEPTH: usize = 32;

impl<'a> EvalStack<'a> {
    fn new() -> Self {
        Self {
            inline: [""; INLINE_DEPTH],
            inline_len: 0,
            spill: Vec::new(),
        }
    }

    fn len(&self) -> usize {
        self.inline_len + self.spill.len()
    }

    fn truncate(&mut self, depth: usize) {
        if depth <= INLINE_DEPTH {
            self.inline_len = self.inline_len.min(depth);
            self.spill.clear();
        } else {
            self.spill.truncate(depth - INLINE_DEPTH);
        }
    }

    fn contains(&self, key: &str) -> bool {
        self.inline[..self.inline_len].contains(&key) || self.spill.contains(&key)
    }

    fn push(&mut self, key: &'a str) -> bool {
        if self.len() == MAX_PREREQUISITE_DEPTH {
            return false;
        }
        if self.inline_len < INLINE_DEPTH {
            self.inline[self.inline_len] = key;
            self.inline_len += 1;
        } else {
            self.spill.push(key);
        }
        true
    }
}

#[derive(Debug, PartialEq, Eq)]
enum ParentOutcome {
    Pass,
    Skip,
    GateFailed,
    Cycle,
}

/// GrowthBook's `isIncludedInRollout`, on the rule's precomputed [`Rollout`].
fn included_in_rollout(
    ctx: &Context,
    seed: &SeededHash,
    hash_attribute: Option<&AttrName>,
    fallback: Option<&str>,
    rollout: Rollout,
) -> bool {
    let (version, lo, hi) = match rollout {
        Rollout::Everyone => return true,
        Rollout::Nobody => return false,
        Rollout::Buckets { version, lo, hi } => (version, lo, hi),
    };
    let (_, value) = ctx.hash_attribute(hash_attribute, fallback);
    let bucket = match value {
        // The usual hash attribute, an id string, needs no conversion.
        Value::String(s) if !s.is_empty() => seed.bucket(s, version),
        v if !truthy(v) => return false,
        v => seed.bucket(AttrText::of(v).as_str(), version),
    };
    bucket.is_some_and(|b| lo <= b && b < hi)
}

/// Whom a force rule's rollout includes. GrowthBook compares the hash, a
/// bucket divided by 1,000 (version 1) or 10,000 (version 2), with the
/// range or coverage as floats; the division is monotonic, so the buckets
/// that pass form one run `lo..hi`, found once here by testing the very same
/// float comparison. Evaluation then compares integers and never divides
/// (the division was the last step of the hash's serial chain).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rollout {
    Everyone,
    Nobody,
    Buckets { version: u32, lo: u32, hi: u32 },
}

impl Rollout {
    fn new(range: Option<BucketRange>, coverage: Option<f64>, version: u32) -> Self {
        if range.is_none() && coverage.is_none() {
            return Rollout::Everyone;
        }
        if range.is_none() && coverage == Some(0.0) {
            return Rollout::Nobody;
        }
        let Some(buckets) = crate::hash::buckets(version) else {
            // An unknown hash version includes nobody.
            return Rollout::Nobody;
        };
        let n = |b: u32| f64::from(b) / f64::from(buckets);
        // The first bucket for which `pass` stops holding (`pass` holds for a
        // prefix of the buckets, possibly empty or all of them).
        let end_of = |pass: &dyn Fn(f64) -> bool| {
            let (mut lo, mut hi) = (0, buckets);
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                if pass(n(mid)) {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            lo
        };
        let (lo, hi) = match (range, coverage) {
            // `x >= s` fails for a prefix: its end is the first bucket where it
            // holds (NaN never holds, so then no bucket does).
            (Some((s, e)), _) => (end_of(&|x| x < s || s.is_nan()), end_of(&|x| x < e)),
            (None, Some(c)) => (0, end_of(&|x| x <= c)),
            (None, None) => (0, buckets),
        };
        Rollout::Buckets { version, lo, hi }
    }

    /// Whether hash value `n` (bucket / buckets) passes, as GrowthBook
    /// decides it: the reference the precomputed bounds are tested against.
    #[cfg(test)]
    fn passes_float(range: Option<BucketRange>, coverage: Option<f64>, n: f64) -> bool {
        match (range, coverage) {
            (Some((s, e)), _) => n >= s && n < e,
            (None, Some(c)) => n <= c,
            (None, None) => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rollout_bounds_agree_with_the_float_comparison_for_every_bucket() {
        let coverages = [
            0.0,
            1e-9,
            0.0001,
            0.1 + 0.2,
            0.25,
            0.333,
            0.5,
            0.9999,
            1.0,
            1.5,
            -0.1,
            f64::NAN,
        ];
        let ranges = [
            (0.0, 1.0),
            (0.3, 0.5),
            (0.1 + 0.2, 0.7),
            (0.5, 0.3),
            (0.0, 0.0),
            (-1.0, 2.0),
            (f64::NAN, 0.5),
            (0.2, f64::NAN),
        ];
        let mut cases: Vec<(Option<BucketRange>, Option<f64>)> = vec![(None, None)];
        cases.extend(coverages.iter().map(|&c| (None, Some(c))));
        cases.extend(ranges.iter().map(|&r| (Some(r), None)));
        cases.extend(ranges.iter().map(|&r| (Some(r), Some(0.25))));
        for version in [1, 2] {
            let buckets = crate::hash::buckets(version).unwrap();
            for &(range, coverage) in &cases {
                let rollout = Rollout::new(range, coverage, version);
                for b in 0..buckets {
                    let n = f64::from(b) / f64::from(buckets);
                    let expected = if range.is_none() && coverage == Some(0.0) {
                        false
                    } else {
                        Rollout::passes_float(range, coverage, n)
                    };
                    let got = match rollout {
                        Rollout::Everyone => true,
                        Rollout::Nobody => false,
                        Rollout::Buckets { lo, hi, .. } => lo <= b && b < hi,
                    };
                    assert_eq!(
                        got, expected,
                        "v{version} {range:?} {coverage:?} bucket {b}"
                    );
                }
            }
        }
        assert_eq!(Rollout::new(None, Some(0.5), 7), Rollout::Nobody);
        assert_eq!(Rollout::new(None, None, 7), Rollout::Everyone);
    }
}

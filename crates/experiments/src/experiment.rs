//! Experiments in GrowthBook's JSON shape, compiled once and run per user.

use serde_json::{Map, Value};

use crate::attr::AttrName;
use crate::condition::{Condition, ConditionWarning};
use crate::context::{AttrText, Context, sticky_text};
use crate::feature::FeatureSet;
use crate::hash::{
    BucketRange, SeededHash, bucket_ranges, choose_variation, equal_weights, hash, in_namespace,
    query_string_override, weights_are_valid,
};
use crate::js::truthy;
use crate::sticky::StickyAssignmentsDocument;

/// A prerequisite: feature `id`'s value must pass `condition` (tested
/// against `{"value": <feature value>}`).
#[derive(Debug, Clone)]
pub(crate) struct ParentCondition {
    pub(crate) id: String,
    pub(crate) condition: Condition,
    pub(crate) gate: bool,
}

/// A mutual-exclusion filter: the user's hash under `seed` must fall in one
/// of `ranges`.
#[derive(Debug, Clone)]
pub(crate) struct Filter {
    seed: String,
    ranges: Vec<BucketRange>,
    hash_version: u32,
    attribute: Option<AttrName>,
}

/// A compiled experiment.
///
/// Built from GrowthBook's JSON shape (`key`, `variations`, `weights`,
/// `coverage`, `condition`, `namespace`, `filters`, `hashAttribute`,
/// `hashVersion`, `seed`, `force`, `active`, `meta`, `bucketVersion`, …)
/// with the SDK's lenient semantics: bad weights fall back to equal weights,
/// coverage is clamped. For files a person edits, use
/// [`load_experiment_file`](crate::load_experiment_file), which rejects what
/// this accepts silently.
///
/// ```
/// use flightdeck_experiments::{Context, Experiment};
/// use serde_json::json;
/// let exp = Experiment::from_json(&json!({
///     "key": "checkout-button",
///     "variations": ["blue", "green"],
///     "condition": {"country": {"$in": ["US", "CA"]}, "age": {"$gt": 18}},
/// }));
/// let ctx = Context::new(json!({"id": "user-42", "country": "US", "age": 30}));
/// let r = exp.run(&ctx);
/// assert!(r.in_experiment);
/// assert_eq!(r.value, &json!(if r.variation_id == 0 { "blue" } else { "green" }));
/// ```
#[derive(Debug, Clone)]
pub struct Experiment {
    key: String,
    variations: Vec<Value>,
    ranges: Vec<BucketRange>,
    weights: Vec<f64>,
    coverage: f64,
    condition: Option<Condition>,
    pub(crate) parent_conditions: Vec<ParentCondition>,
    namespace: Option<(String, f64, f64)>,
    filters: Vec<Filter>,
    force: Option<i64>,
    active: bool,
    stopped: bool,
    seeded: SeededHash,
    hash_version: u32,
    hash_attribute: Option<AttrName>,
    fallback_attribute: Option<String>,
    disable_sticky_bucketing: bool,
    bucket_version: u64,
    min_bucket_version: u64,
    meta_keys: Option<Vec<Option<String>>>,
    result_keys: Vec<String>,
    names: Vec<Option<String>>,
    passthrough: Vec<bool>,
    raw: Value,
    warnings: Vec<ConditionWarning>,
}

/// The outcome of running an experiment for one context. Borrows the
/// experiment and the context, so producing it allocates nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct ExperimentResult<'a> {
    /// The experiment's key.
    pub experiment_key: &'a str,
    /// Whether the user is in the experiment (and should be counted).
    pub in_experiment: bool,
    /// The variation served (0 when not in the experiment).
    pub variation_id: usize,
    /// The variation's key (`meta[i].key`, else the index as text).
    pub key: &'a str,
    /// The variation's value.
    pub value: &'a Value,
    /// Whether hashing chose the variation (false for forced variations).
    pub hash_used: bool,
    /// The attribute hashed.
    pub hash_attribute: &'a str,
    /// Its value (`null` when absent).
    pub hash_value: &'a Value,
    /// The user's bucket in `[0, 1)`, when hashed.
    pub bucket: Option<f64>,
    /// Whether a sticky bucket decided the variation.
    pub sticky_bucket_used: bool,
    /// Whether the variation is a passthrough (holdout) variation.
    pub passthrough: bool,
    /// The variation's display name, if any.
    pub name: Option<&'a str>,
    /// The feature whose rule ran the experiment, if any.
    pub feature_id: Option<&'a str>,
}

impl ExperimentResult<'_> {
    /// The result in GrowthBook's JSON shape (`inExperiment`, `variationId`,
    /// `hashValue`, …).
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("key".into(), Value::from(self.key));
        m.insert(
            "featureId".into(),
            self.feature_id.map_or(Value::Null, Value::from),
        );
        m.insert("inExperiment".into(), Value::from(self.in_experiment));
        m.insert("hashUsed".into(), Value::from(self.hash_used));
        m.insert("variationId".into(), Value::from(self.variation_id));
        m.insert("value".into(), self.value.clone());
        m.insert("hashAttribute".into(), Value::from(self.hash_attribute));
        let hv = if self.hash_value.is_null() {
            Value::from("")
        } else {
            self.hash_value.clone()
        };
        m.insert("hashValue".into(), hv);
        m.insert(
            "stickyBucketUsed".into(),
            Value::from(self.sticky_bucket_used),
        );
        if let Some(name) = self.name {
            m.insert("name".into(), Value::from(name));
        }
        if let Some(b) = self.bucket {
            m.insert("bucket".into(), Value::from(b));
        }
        if self.passthrough {
            m.insert("passthrough".into(), Value::Bool(true));
        }
        Value::Object(m)
    }
}

fn f64_of(v: Option<&Value>) -> Option<f64> {
    v.and_then(Value::as_f64)
}

fn str_of(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn range_of(v: &Value) -> Option<BucketRange> {
    let a = v.as_array()?;
    Some((a.first()?.as_f64()?, a.get(1)?.as_f64()?))
}

fn ranges_of(v: Option<&Value>) -> Option<Vec<BucketRange>> {
    v?.as_array()?.iter().map(range_of).collect()
}

pub(crate) fn compile_condition(
    v: Option<&Value>,
    at: &str,
    warnings: &mut Vec<ConditionWarning>,
) -> Option<Condition> {
    let v = v.filter(|v| !v.is_null())?;
    let (c, w) = Condition::compile(v);
    warnings.extend(w.into_iter().map(|mut w| {
        w.path = format!("{at}{}", w.path.trim_start_matches('$'));
        w
    }));
    Some(c)
}

pub(crate) fn parent_conditions_of(
    v: Option<&Value>,
    warnings: &mut Vec<ConditionWarning>,
) -> Vec<ParentCondition> {
    let Some(Value::Array(items)) = v else {
        return Vec::new();
    };
    items
        .iter()
        .enumerate()
        .filter_map(|(i, p)| {
            Some(ParentCondition {
                id: p.get("id")?.as_str()?.to_owned(),
                condition: compile_condition(
                    p.get("condition"),
                    &format!("parentConditions[{i}].condition"),
                    warnings,
                )
                .unwrap_or_else(Condition::always),
                gate: p.get("gate").is_some_and(truthy),
            })
        })
        .collect()
}

pub(crate) fn filters_of(v: Option<&Value>) -> Vec<Filter> {
    let Some(Value::Array(items)) = v else {
        return Vec::new();
    };
    items
        .iter()
        .map(|f| Filter {
            seed: f
                .get("seed")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
            ranges: ranges_of(f.get("ranges")).unwrap_or_default(),
            hash_version: f64_of(f.get("hashVersion")).map_or(2, |v| v as u32),
            attribute: str_of(f.get("attribute")).map(AttrName::new),
        })
        .collect()
}

/// GrowthBook's `isFilteredOut`.
pub(crate) fn filtered_out(filters: &[Filter], ctx: &Context) -> bool {
    filters.iter().any(|f| {
        let (_, value) = ctx.hash_attribute(f.attribute.as_ref(), None);
        if !truthy(value) {
            return true;
        }
        let text = AttrText::of(value);
        match hash(&f.seed, text.as_str(), f.hash_version) {
            None => true,
            Some(n) => !f.ranges.iter().any(|&(s, e)| n >= s && n < e),
        }
    })
}

impl Experiment {
    /// Compiles an experiment from GrowthBook's JSON shape. Never fails:
    /// what the spec tolerates is tolerated, and condition problems are kept
    /// in [`warnings`](Self::warnings) (and evaluate to false).
    pub fn from_json(v: &Value) -> Self {
        Self::from_value(v.clone())
    }

    /// [`from_json`](Self::from_json), keeping `v` as the experiment's
    /// [`raw`](Self::raw) JSON instead of copying it.
    pub fn from_value(v: Value) -> Self {
        let mut e = Self::read(&v);
        e.raw = v;
        e
    }

    /// An experiment built in code, exactly as [`from_json`](Self::from_json)
    /// reads `{"key", "seed", "hashVersion", "variations", "weights",
    /// "coverage", "meta": [{"key"}, ...], "condition"}` (the condition
    /// already compiled). Its [`raw`](Self::raw) JSON is null.
    #[allow(
        clippy::too_many_arguments,
        reason = "crate-internal; ExperimentRule is the builder"
    )]
    pub(crate) fn from_parts(
        key: String,
        seed: &str,
        hash_version: u32,
        variations: Vec<Value>,
        keys: Vec<String>,
        weights: Option<Vec<f64>>,
        coverage: f64,
        condition: Option<Condition>,
    ) -> Self {
        let n = variations.len();
        let ranges = bucket_ranges(n, coverage, weights.as_deref());
        let weights = match weights {
            Some(w) if weights_are_valid(n, &w) => w,
            _ => equal_weights(n),
        };
        let result_keys = (0..n)
            .map(|i| match keys.get(i) {
                Some(k) if !k.is_empty() => k.clone(),
                _ => i.to_string(),
            })
            .collect();
        Self {
            seeded: SeededHash::new(if seed.is_empty() { &key } else { seed }),
            key,
            variations,
            ranges,
            weights,
            coverage: coverage.clamp(0.0, 1.0),
            condition,
            parent_conditions: Vec::new(),
            namespace: None,
            filters: Vec::new(),
            force: None,
            active: true,
            stopped: false,
            hash_version: if hash_version == 0 { 1 } else { hash_version },
            hash_attribute: None,
            fallback_attribute: None,
            disable_sticky_bucketing: false,
            bucket_version: 0,
            min_bucket_version: 0,
            meta_keys: Some(keys.into_iter().map(Some).collect()),
            result_keys,
            names: vec![None; n],
            passthrough: vec![false; n],
            raw: Value::Null,
            warnings: Vec::new(),
        }
    }

    /// The experiment `v` describes, with its raw JSON left null.
    fn read(v: &Value) -> Self {
        let mut warnings = Vec::new();
        let key = v
            .get("key")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let variations = v
            .get("variations")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let n = variations.len();
        let coverage = f64_of(v.get("coverage")).unwrap_or(1.0);
        let given_weights: Option<Vec<f64>> = v
            .get("weights")
            .and_then(Value::as_array)
            .and_then(|w| w.iter().map(Value::as_f64).collect());
        let weights = match &given_weights {
            Some(w) if weights_are_valid(n, w) => w.clone(),
            _ => equal_weights(n),
        };
        let ranges = ranges_of(v.get("ranges"))
            .unwrap_or_else(|| bucket_ranges(n, coverage, given_weights.as_deref()));
        let meta = v.get("meta").and_then(Value::as_array);
        let meta_at = |i: usize, field: &str| -> Option<&Value> { meta?.get(i)?.get(field) };
        let result_keys = (0..n)
            .map(|i| str_of(meta_at(i, "key")).unwrap_or_else(|| i.to_string()))
            .collect();
        let meta_keys = meta.map(|m| {
            (0..m.len())
                .map(|i| meta_at(i, "key").and_then(Value::as_str).map(str::to_owned))
                .collect()
        });
        let names = (0..n).map(|i| str_of(meta_at(i, "name"))).collect();
        let passthrough = (0..n)
            .map(|i| meta_at(i, "passthrough").is_some_and(truthy))
            .collect();
        let namespace = v.get("namespace").and_then(Value::as_array).and_then(|ns| {
            Some((
                ns.first()?.as_str()?.to_owned(),
                ns.get(1)?.as_f64()?,
                ns.get(2)?.as_f64()?,
            ))
        });
        Self {
            condition: compile_condition(v.get("condition"), "condition", &mut warnings),
            parent_conditions: parent_conditions_of(v.get("parentConditions"), &mut warnings),
            filters: filters_of(v.get("filters")),
            force: v.get("force").and_then(Value::as_f64).map(|f| f as i64),
            active: v.get("active") != Some(&Value::Bool(false))
                && v.get("status").and_then(Value::as_str) != Some("draft"),
            stopped: v.get("status").and_then(Value::as_str) == Some("stopped"),
            seeded: SeededHash::new(&str_of(v.get("seed")).unwrap_or_else(|| key.clone())),
            hash_version: f64_of(v.get("hashVersion"))
                .filter(|&h| h != 0.0)
                .map_or(1, |h| h as u32),
            hash_attribute: str_of(v.get("hashAttribute")).map(AttrName::new),
            fallback_attribute: str_of(v.get("fallbackAttribute")),
            disable_sticky_bucketing: v.get("disableStickyBucketing").is_some_and(truthy),
            bucket_version: f64_of(v.get("bucketVersion")).map_or(0, |b| b as u64),
            min_bucket_version: f64_of(v.get("minBucketVersion")).map_or(0, |b| b as u64),
            key,
            variations,
            ranges,
            weights,
            coverage: coverage.clamp(0.0, 1.0),
            namespace,
            meta_keys,
            result_keys,
            names,
            passthrough,
            raw: Value::Null,
            warnings,
        }
    }

    /// The same experiment with its `status` field ignored (the manager's
    /// lifecycle takes over).
    pub(crate) fn without_status(mut self) -> Self {
        self.active = self.raw.get("active") != Some(&Value::Bool(false));
        self.stopped = false;
        self
    }

    /// The experiment's key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The variations' values.
    pub fn variations(&self) -> &[Value] {
        &self.variations
    }

    /// The weights in effect (after the equal-weights fallback).
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }

    /// The coverage in effect (clamped to `[0, 1]`).
    pub fn coverage(&self) -> f64 {
        self.coverage
    }

    /// The bucket ranges users are assigned by.
    pub fn ranges(&self) -> &[BucketRange] {
        &self.ranges
    }

    /// The variation keys (`meta[i].key`, else the index).
    pub fn variation_keys(&self) -> &[String] {
        &self.result_keys
    }

    /// The JSON the experiment was compiled from (null for one built in
    /// code, by [`ExperimentRule`](crate::ExperimentRule)).
    pub fn raw(&self) -> &Value {
        &self.raw
    }

    /// Problems found in its conditions (each evaluates to false).
    pub fn warnings(&self) -> &[ConditionWarning] {
        &self.warnings
    }

    /// Runs the experiment for `ctx`: GrowthBook's `run` without features
    /// (prerequisites on unknown features fail).
    pub fn run<'a>(&'a self, ctx: &'a Context) -> ExperimentResult<'a> {
        self.run_with(ctx, FeatureSet::empty(), None)
    }

    fn result<'a>(
        &'a self,
        ctx: &'a Context,
        index: i64,
        hash_used: bool,
        feature_id: Option<&'a str>,
        bucket: Option<f64>,
        sticky_used: bool,
    ) -> ExperimentResult<'a> {
        let hashed = ctx.hash_attribute(self.hash_attribute.as_ref(), self.sticky_fallback(ctx));
        self.result_with(hashed, index, hash_used, feature_id, bucket, sticky_used)
    }

    /// [`result`](Self::result) with the hash attribute already resolved.
    fn result_with<'a>(
        &'a self,
        (hash_attribute, hash_value): (&'a str, &'a Value),
        index: i64,
        hash_used: bool,
        feature_id: Option<&'a str>,
        bucket: Option<f64>,
        sticky_used: bool,
    ) -> ExperimentResult<'a> {
        let (variation_id, in_experiment) = match usize::try_from(index) {
            Ok(i) if i < self.variations.len() => (i, true),
            _ => (0, false),
        };
        static EMPTY: Value = Value::Null;
        ExperimentResult {
            experiment_key: &self.key,
            in_experiment,
            variation_id,
            key: self
                .result_keys
                .get(variation_id)
                .map_or("0", String::as_str),
            value: self.variations.get(variation_id).unwrap_or(&EMPTY),
            hash_used,
            hash_attribute,
            hash_value,
            bucket,
            sticky_bucket_used: sticky_used,
            passthrough: self.passthrough.get(variation_id).copied().unwrap_or(false),
            name: self.names.get(variation_id).and_then(Option::as_deref),
            feature_id,
        }
    }

    fn sticky_enabled(&self, ctx: &Context) -> bool {
        ctx.sticky().is_some() && !self.disable_sticky_bucketing
    }

    fn sticky_fallback(&self, ctx: &Context) -> Option<&str> {
        if self.sticky_enabled(ctx) {
            self.fallback_attribute.as_deref()
        } else {
            None
        }
    }

    fn sticky_exp_key(&self, version: u64) -> String {
        format!("{}__{}", self.key, version)
    }

    /// GrowthBook's `getStickyBucketVariation`: the stored variation, and
    /// whether an assignment under a blocked bucket version exists.
    fn sticky_variation(&self, ctx: &Context) -> (Option<usize>, bool) {
        let Some(service) = ctx.sticky() else {
            return (None, false);
        };
        let mut assignments = std::collections::BTreeMap::new();
        if let Some(fb) = self.fallback_attribute.as_deref() {
            let (name, value) = (fb, ctx.attribute(fb));
            if truthy(value)
                && let Some(doc) = service.get_assignments(name, &sticky_text(value))
            {
                assignments.extend(doc.assignments);
            }
        }
        let (name, value) = ctx.hash_attribute(self.hash_attribute.as_ref(), None);
        let text = if value.is_null() {
            String::new()
        } else {
            sticky_text(value)
        };
        if let Some(doc) = service.get_assignments(name, &text) {
            assignments.extend(doc.assignments);
        }
        if (0..self.min_bucket_version).any(|v| assignments.contains_key(&self.sticky_exp_key(v))) {
            return (None, true);
        }
        let Some(variation_key) = assignments.get(&self.sticky_exp_key(self.bucket_version)) else {
            return (None, false);
        };
        let found = self.meta_keys.as_ref().and_then(|keys| {
            keys.iter()
                .position(|k| k.as_deref() == Some(variation_key.as_str()))
        });
        (found, false)
    }

    fn save_sticky(&self, ctx: &Context, result: &ExperimentResult<'_>) {
        let Some(service) = ctx.sticky() else {
            return;
        };
        let value = if result.hash_value.is_null() {
            String::new()
        } else {
            sticky_text(result.hash_value)
        };
        let existing = service.get_assignments(result.hash_attribute, &value);
        let mut doc = existing
            .clone()
            .unwrap_or_else(|| StickyAssignmentsDocument {
                attribute_name: result.hash_attribute.to_owned(),
                attribute_value: value,
                assignments: Default::default(),
            });
        doc.assignments.insert(
            self.sticky_exp_key(self.bucket_version),
            result.key.to_owned(),
        );
        if existing.as_ref() != Some(&doc)
            && let Err(e) = service.save_assignments(doc)
        {
            tracing::warn!(experiment = %self.key, error = %e, "cannot save sticky bucket");
        }
    }

    /// Runs the experiment with prerequisites evaluated against `features`;
    /// `feature_id` names the feature whose rule runs it.
    pub fn run_with<'a>(
        &'a self,
        ctx: &'a Context,
        features: &'a FeatureSet,
        feature_id: Option<&'a str>,
    ) -> ExperimentResult<'a> {
        let not_in = |ctx| self.result(ctx, -1, false, feature_id, None, false);
        let n = self.variations.len();
        // 1-2. Fewer than two variations, or the context is disabled.
        if n < 2 || !ctx.enabled() {
            return not_in(ctx);
        }
        // 3. A variation forced by the URL's query string.
        if let Some(i) = ctx
            .url()
            .and_then(|url| query_string_override(&self.key, url, n))
        {
            return self.result(ctx, i as i64, false, feature_id, None, false);
        }
        // 4. A variation forced in the context.
        if let Some(i) = ctx.forced_variation(&self.key) {
            return self.result(ctx, i, false, feature_id, None, false);
        }
        // 5. Inactive (or draft) experiments.
        if !self.active {
            return not_in(ctx);
        }
        // 6. The hash attribute must be set.
        let hashed = ctx.hash_attribute(self.hash_attribute.as_ref(), self.sticky_fallback(ctx));
        let hash_value = hashed.1;
        if !truthy(hash_value) {
            return not_in(ctx);
        }
        let (sticky, blocked) = if self.sticky_enabled(ctx) {
            self.sticky_variation(ctx)
        } else {
            (None, false)
        };
        if sticky.is_none() {
            // 7. Filters (or, failing those, the namespace).
            if !self.filters.is_empty() {
                if filtered_out(&self.filters, ctx) {
                    return not_in(ctx);
                }
            } else if let Some((id, start, end)) = &self.namespace {
                let text = AttrText::of(hash_value);
                if !in_namespace(text.as_str(), id, *start, *end) {
                    return not_in(ctx);
                }
            }
            // 8. Targeting.
            if let Some(c) = &self.condition
                && !c.eval_context(ctx, features.saved_groups())
            {
                return not_in(ctx);
            }
            // 8.05. Prerequisites.
            if !self.parent_conditions.is_empty()
                && !features.parents_pass(&self.parent_conditions, ctx)
            {
                return not_in(ctx);
            }
        }
        // 9. Hash and choose.
        let text = AttrText::of(hash_value);
        let Some(bucket) = self.seeded.hash(text.as_str(), self.hash_version) else {
            return not_in(ctx);
        };
        let assigned = match sticky {
            Some(i) => Some(i),
            None => choose_variation(bucket, &self.ranges),
        };
        // 9.5. A sticky bucket from a blocked version unenrolls the user.
        if blocked {
            return self.result(ctx, -1, false, feature_id, None, true);
        }
        // 10. Users outside coverage.
        let Some(assigned) = assigned else {
            return not_in(ctx);
        };
        // 11. A forced variation for everyone.
        if let Some(f) = self.force {
            return self.result(ctx, f, false, feature_id, None, false);
        }
        // 12-12.5. QA mode and stopped experiments keep everyone out.
        if ctx.qa_mode() || self.stopped {
            return not_in(ctx);
        }
        // 13. In the experiment.
        let result = self.result_with(
            hashed,
            assigned as i64,
            true,
            feature_id,
            Some(bucket),
            sticky.is_some(),
        );
        if self.sticky_enabled(ctx) {
            self.save_sticky(ctx, &result);
        }
        // 14. Exposure.
        if let Some(log) = ctx.exposures() {
            log.log(&result);
        }
        result
    }
}

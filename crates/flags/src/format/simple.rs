//! The simple format (YAML or JSON): validating and compiling each flag to
//! GrowthBook rules.

use super::*;

pub(super) fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

pub(super) fn valid_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && s[..4].parse::<u32>().is_ok()
        && s[5..7].parse::<u32>().is_ok_and(|m| (1..=12).contains(&m))
        && s[8..].parse::<u32>().is_ok_and(|d| (1..=31).contains(&d))
}

/// The falsy values: a prerequisite is on when its value is none of these.
pub(super) fn on_condition() -> Value {
    json!({"value": {"$nin": [false, null, 0, ""]}})
}

/// [`on_condition`] compiled, for the gates of typed rules.
static FLAG_IS_ON: LazyLock<Condition> = LazyLock::new(|| Condition::compile(&on_condition()).0);

/// One simple-format flag definition: JSON, or an item of a YAML `flags:`
/// list for the subset reader.
#[derive(Clone, Copy)]
pub(super) enum Item<'a> {
    Json(Json<'a>),
    Yaml(&'a str),
}

pub(super) fn not_a_flag_list(loc: &Locator<'_>) -> LoadError {
    LoadError::Invalid(vec![loc.problem(
        loc.find_key("flags", 0, loc.text.len()).unwrap_or(0),
        "`flags` must be a list of flags".into(),
    )])
}

/// The simple format from a parsed document (YAML, or JSON the raw path
/// could not read).
pub(super) fn compile_simple(doc: Value, loc: &Locator<'_>) -> Result<FlagSet, LoadError> {
    let Value::Object(mut top) = doc else {
        return Err(not_a_flag_list(loc));
    };
    let Some(Value::Array(list)) = top.remove("flags") else {
        return Err(not_a_flag_list(loc));
    };
    let extra = top.keys().next().map(String::as_str);
    // Parsed items are always read: `None` cannot come back.
    compile_simple_items(
        list.iter().map(|v| Item::Json(Json::Parsed(v))).collect(),
        extra,
        loc,
    )
    .unwrap_or_else(|| Err(not_a_flag_list(loc)))
}

/// Checks and compiles simple-format flags; `extra` is a top-level field
/// other than `flags`, which is a problem. `None` when a YAML item is
/// outside the fast reader's subset (see `crate::yaml`).
pub(super) fn compile_simple_items(
    list: Vec<Item<'_>>,
    extra: Option<&str>,
    loc: &Locator<'_>,
) -> Option<Result<FlagSet, LoadError>> {
    let mut problems = Vec::new();
    if let Some(extra) = extra {
        problems.push(loc.problem(
            loc.find_key(extra, 0, loc.text.len()).unwrap_or(0),
            format!("unknown top-level field `{extra}` (expected only `flags`)"),
        ));
    }
    // Where each flag starts in the text, found in order by its id.
    let mut starts = Vec::with_capacity(list.len());
    let mut cursor = loc.find_key("flags", 0, loc.text.len()).unwrap_or(0);
    for _ in &list {
        let at = loc.find_key("id", cursor, loc.text.len()).unwrap_or(cursor);
        starts.push(at);
        cursor = at + 2;
    }
    let span = |i: usize| {
        (
            starts[i],
            starts.get(i + 1).copied().unwrap_or(loc.text.len()),
        )
    };
    // Each flag is decoded, checked and compiled on one of several threads
    // (for large files), so what a flag's work allocates is freed on the
    // thread that allocated it. The document itself stays with this thread.
    let outcomes = par_map(list, |i, item| {
        let (start, end) = span(i);
        // A YAML item is decoded straight from the fast reader's nodes. One
        // outside its subset, or one that does not decode, sends the whole
        // file to the full parser (which then names the field).
        let item = match item {
            Item::Yaml(chunk) => {
                let d = FlagDefinition::deserialize(crate::yaml::item(chunk)?).ok()?;
                let depends_on = d.depends_on.clone();
                return Some(Ok((i, depends_on, compile_flag(d, loc, start, end))));
            }
            Item::Json(json) => json,
        };
        // Decoded without path tracking first (it costs a third of the
        // decoding); a flag that fails is decoded again to name the field.
        let quick = match item {
            Json::Parsed(v) => FlagDefinition::deserialize(v).ok(),
            Json::Raw(r) => serde_json::from_str::<FlagDefinition>(r.get()).ok(),
        };
        let decoded = match (quick, item) {
            (Some(d), _) => Ok(d),
            (None, Json::Parsed(v)) => serde_path_to_error::deserialize::<_, FlagDefinition>(v),
            (None, Json::Raw(r)) => serde_path_to_error::deserialize::<_, FlagDefinition>(
                &mut serde_json::Deserializer::from_str(r.get()),
            ),
        };
        Some(match decoded {
            Ok(d) => {
                let depends_on = d.depends_on.clone();
                Ok((i, depends_on, compile_flag(d, loc, start, end)))
            }
            Err(e) => {
                let reparsed;
                let v = match item {
                    Json::Parsed(v) => v,
                    Json::Raw(r) => {
                        reparsed = serde_json::from_str::<Value>(r.get()).unwrap_or(Value::Null);
                        &reparsed
                    }
                };
                let name = v.get("id").and_then(Value::as_str).unwrap_or("?");
                let path = e.path().to_string();
                let top = path.split(['.', '[']).next().unwrap_or("");
                let at = loc.find_key(top, start, end).unwrap_or(start);
                let message = explain_decode_error(&e.into_inner().to_string());
                Err(loc.problem(at, format!("flag {name:?}: {path}: {message}")))
            }
        })
    });
    let outcomes: Vec<_> = outcomes.into_iter().collect::<Option<_>>()?;
    let mut compiled = Vec::with_capacity(outcomes.len());
    for o in outcomes {
        match o {
            Ok(c) => compiled.push(c),
            Err(p) => problems.push(p),
        }
    }
    // What needs every flag: unique ids, known dependencies, no cycle.
    let mut ids: FxHashSet<&str> =
        FxHashSet::with_capacity_and_hasher(compiled.len(), Default::default());
    let mut duplicate = vec![false; compiled.len()];
    for ((_, _, c), dup) in compiled.iter().zip(&mut duplicate) {
        *dup = !ids.insert(c.id.as_str());
    }
    // Only flags with dependencies can be on a cycle.
    let mut graph: BTreeMap<&str, &[String]> = BTreeMap::new();
    for ((i, depends_on, c), dup) in compiled.iter().zip(duplicate) {
        let (start, end) = span(*i);
        let mut bad = |k: &str, msg: String| {
            let at = loc.find_key(k, start, end).unwrap_or(start);
            problems.push(loc.problem(at, format!("flag {:?}: {msg}", c.id)));
        };
        if dup {
            bad("id", "duplicate id (each flag appears once)".into());
        }
        for dep in depends_on {
            if !ids.contains(dep.as_str()) {
                bad("depends_on", format!("depends on unknown flag {dep:?}"));
            } else if dep == &c.id {
                bad("depends_on", "depends on itself".into());
            }
        }
        if !depends_on.is_empty() {
            graph.insert(c.id.as_str(), depends_on);
        }
    }
    let at_flag = |id: &str| {
        compiled
            .iter()
            .find(|(_, _, c)| c.id == id)
            .map_or(0, |(i, _, _)| {
                let (start, end) = span(*i);
                loc.find_key("depends_on", start, end).unwrap_or(start)
            })
    };
    match check_dependencies(&graph) {
        Err(cycle) => {
            problems.push(loc.problem(
                at_flag(cycle[0]),
                format!("dependency cycle: {}", cycle.join(" -> ")),
            ));
        }
        // Evaluation gives up on chains longer than this (and serves them
        // as `cyclicPrerequisite`): refuse them here so the two agree.
        Ok(chain) if chain.len() > MAX_DEPENDENCY_CHAIN => {
            problems.push(loc.problem(
                at_flag(chain[0]),
                format!(
                    "a depends_on chain of {} flags is longer than the {MAX_DEPENDENCY_CHAIN} evaluation follows: {} -> ... -> {}",
                    chain.len(),
                    chain[0],
                    chain[chain.len() - 1]
                ),
            ));
        }
        Ok(_) => {}
    }
    let mut features = Vec::with_capacity(compiled.len());
    let mut meta = FxHashMap::with_capacity_and_hasher(compiled.len(), Default::default());
    let mut warnings = Vec::new();
    for (_, _, c) in compiled {
        problems.extend(c.problems);
        warnings.extend(c.warnings);
        meta.insert(c.id.clone(), c.meta);
        features.push((c.id, c.feature));
    }
    if !problems.is_empty() {
        problems.sort_by_key(|p| (p.line, p.column));
        return Some(Err(LoadError::Invalid(problems)));
    }
    Some(Ok(FlagSet {
        features: FeatureSet::from_compiled(features, None, warnings),
        meta,
        origin: loc.path.to_owned(),
    }))
}

/// One simple-format flag, checked and compiled.
pub(super) struct CompiledFlag {
    id: String,
    feature: Feature,
    meta: FlagMeta,
    problems: Vec<Problem>,
    warnings: Vec<ConditionWarning>,
}

/// Checks one flag (whose text lies in `start..end`) on its own, and
/// compiles it to the GrowthBook feature it stands for. What needs the other
/// flags (ids, dependencies) is checked by the caller.
pub(super) fn compile_flag(
    mut d: FlagDefinition,
    loc: &Locator<'_>,
    start: usize,
    end: usize,
) -> CompiledFlag {
    let mut problems = Vec::new();
    let field = |k: &str| loc.find_key(k, start, end).unwrap_or(start);
    let id = d.id.clone();
    let mut bad = |k: &str, msg: String| {
        problems.push(loc.problem(field(k), format!("flag {id:?}: {msg}")));
    };
    if !valid_id(&d.id) {
        bad(
            "id",
            format!("id {:?} must be letters, digits, `.`, `_` or `-`", d.id),
        );
    }
    if let Some(p) = d.rollout_percentage
        && (!(0.0..=100.0).contains(&p) || !p.is_finite())
    {
        bad(
            "rollout_percentage",
            format!("rollout_percentage {p} is outside 0..=100"),
        );
    }
    if let Some(e) = &d.expires
        && !valid_date(e)
    {
        bad("expires", format!("expires {e:?} is not a YYYY-MM-DD date"));
    }
    // Targeting is compiled once: its problems are reported here, and a
    // boolean flag's rollout rule takes the compiled condition.
    let mut targeting = None;
    if let Some(attrs) = d.targeting.as_ref().and_then(|t| t.attributes.as_ref()) {
        let (condition, warnings) = Condition::compile_object(attrs);
        for w in warnings {
            bad(
                "attributes",
                format!(
                    "targeting.attributes{}: {}",
                    w.path.trim_start_matches('$'),
                    w.message
                ),
            );
        }
        targeting = Some(condition);
    }
    let t = d.targeting.take().unwrap_or_default();
    // Every rule of a flag with dependencies carries the same gates.
    let gated = |rule: ForceRule| {
        d.depends_on
            .iter()
            .fold(rule, |r, p| r.with_gate(p.clone(), FLAG_IS_ON.clone()))
    };
    // A boolean flag: forced on for listed ids and groups, then for the
    // rollout share of users matching the attributes. Built as typed rules:
    // a JSON payload in between cost more than the compile itself.
    let bool_feature = |default: Value, targeting: Option<Condition>| {
        let mut feature = Feature::new(default);
        for (id, attribute, values) in [
            ("user_ids", "id", &t.user_ids),
            ("groups", "groups", &t.groups),
        ] {
            if !values.is_empty() {
                let (condition, _) = Condition::compile(&json!({ attribute: { "$in": values } }));
                feature = feature.with_force_rule(gated(
                    ForceRule::new(Value::Bool(true))
                        .with_id(id)
                        .with_condition(condition),
                ));
            }
        }
        let mut rollout = ForceRule::new(Value::Bool(true)).with_id("rollout");
        if let Some(condition) = targeting {
            rollout = rollout.with_condition(condition);
        }
        if let Some(p) = d.rollout_percentage {
            rollout = rollout.with_rollout(p / 100.0, "id", &d.id);
        }
        feature.with_force_rule(gated(rollout))
    };
    // A disabled or killed flag has no rules, so that flags depending on
    // it see its off value too.
    let live = d.enabled && !d.kill_switch;
    let mut warnings = Vec::new();
    let (kind, default_value, feature) = match &d.variants {
        None => {
            let default = d.default.clone().unwrap_or(Value::Bool(false));
            if !default.is_boolean() {
                bad(
                    "default",
                    format!("default {default} must be true or false for a flag without variants"),
                );
            }
            let feature = if live {
                bool_feature(default.clone(), targeting)
            } else {
                Feature::new(default.clone())
            };
            (FlagKind::Bool, default, feature)
        }
        Some(vs) => variant_feature(
            &d,
            vs,
            VariantInputs {
                targeting: t,
                compiled: targeting,
                live,
            },
            &mut bad,
            &mut warnings,
        ),
    };
    CompiledFlag {
        meta: FlagMeta {
            kind,
            enabled: d.enabled,
            kill_switch: d.kill_switch,
            off_value: default_value,
            description: d.description,
            owner: d.owner,
            expires: d.expires,
        },
        id: d.id,
        feature,
        problems,
        warnings,
    }
}

/// What a multi-variant flag's rule is built from besides its definition.
struct VariantInputs {
    /// The targeting (ids, groups, attributes).
    targeting: Targeting,
    /// The attributes' condition, compiled once by the caller.
    compiled: Option<Condition>,
    /// Enabled and not killed: only a live flag gets a rule.
    live: bool,
}

/// A multi-variant flag: its kind, its off value and its feature (one
/// typed experiment rule over the weighted variants).
fn variant_feature(
    d: &FlagDefinition,
    vs: &[VariantDefinition],
    inputs: VariantInputs,
    bad: &mut dyn FnMut(&str, String),
    warnings: &mut Vec<ConditionWarning>,
) -> (FlagKind, Value, Feature) {
    let VariantInputs {
        targeting: t,
        compiled: targeting,
        live,
    } = inputs;
    let (total, kind) = check_variants(vs, bad);
    let default = variant_default(d, vs, bad);
    // Built as a typed experiment rule, as boolean flags are built
    // as typed force rules (the payload JSON cost more than the
    // compile). The condition is the targeting's when only
    // attributes are given, else the `$or` of ids, groups and
    // attributes.
    let condition = if t.user_ids.is_empty() && t.groups.is_empty() {
        targeting
    } else {
        let mut any = Vec::new();
        if !t.user_ids.is_empty() {
            any.push(json!({"id": {"$in": t.user_ids}}));
        }
        if !t.groups.is_empty() {
            any.push(json!({"groups": {"$in": t.groups}}));
        }
        if let Some(a) = t.attributes {
            any.push(Value::Object(a));
        }
        let (condition, w) = Condition::compile(&json!({ "$or": any }));
        warnings.extend(w.into_iter().map(|mut w| {
            w.path = format!("features.{}.rules[0].condition.{}", d.id, w.path);
            w
        }));
        Some(condition)
    };
    let weights: Vec<f64> = vs
        .iter()
        .map(|v| if total > 0.0 { v.weight / total } else { 0.0 })
        .collect();
    let mut feature = Feature::new(default.clone());
    if live {
        let variations = vs
            .iter()
            .map(|v| (v.key.clone(), v.value.clone()))
            .collect();
        let mut rule = ExperimentRule::new(d.id.clone(), variations)
            .with_id("variants")
            .with_seed(d.id.clone())
            .with_weights(weights)
            .with_coverage(d.rollout_percentage.unwrap_or(100.0) / 100.0);
        if let Some(c) = condition {
            rule = rule.with_condition(c);
        }
        for p in &d.depends_on {
            rule = rule.with_gate(p.clone(), FLAG_IS_ON.clone());
        }
        feature = feature.with_experiment_rule(rule);
    }
    (kind, default, feature)
}

/// Checks the variants (count, unique keys, weights, one kind); answers
/// the weights' total and the kind.
fn check_variants(vs: &[VariantDefinition], bad: &mut dyn FnMut(&str, String)) -> (f64, FlagKind) {
    if vs.len() < 2 {
        bad(
            "variants",
            format!("needs at least 2 variants, found {}", vs.len()),
        );
    }
    let mut keys = BTreeSet::new();
    for v in vs {
        if !keys.insert(v.key.as_str()) {
            bad("variants", format!("duplicate variant key {:?}", v.key));
        }
        if !(v.weight.is_finite() && v.weight >= 0.0) {
            bad(
                "variants",
                format!("variant {:?}: weight {} must be >= 0", v.key, v.weight),
            );
        }
    }
    let total: f64 = vs.iter().map(|v| v.weight).sum();
    if vs.len() >= 2 && total <= 0.0 {
        bad("variants", "variant weights sum to 0".into());
    }
    let kind = vs
        .first()
        .map_or(FlagKind::Json, |v| FlagKind::of(&v.value));
    if let Some(v) = vs.iter().find(|v| FlagKind::of(&v.value) != kind) {
        bad(
            "variants",
            format!(
                "variant {:?} is {:?} but the first variant is {kind:?}",
                v.key,
                FlagKind::of(&v.value)
            ),
        );
    }
    (total, kind)
}

/// The value the flag's `default` names (a variant key), else the first variant's.
fn variant_default(
    d: &FlagDefinition,
    vs: &[VariantDefinition],
    bad: &mut dyn FnMut(&str, String),
) -> Value {
    match &d.default {
        Some(Value::String(k)) => match vs.iter().find(|v| &v.key == k) {
            Some(v) => v.value.clone(),
            None => {
                bad("default", format!("default {k:?} names no variant"));
                Value::Null
            }
        },
        Some(other) => {
            bad(
                "default",
                format!("default {other} must name a variant key"),
            );
            Value::Null
        }
        None => vs.first().map(|v| v.value.clone()).unwrap_or(Value::Null),
    }
}

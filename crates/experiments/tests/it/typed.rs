//! Features built in code evaluate exactly as the payload JSON they stand for.

use flightdeck_experiments::{Condition, Context, Feature, FeatureSet, ForceRule};
use serde_json::{Value, json};

fn compiled(v: &Value) -> Condition {
    let (c, warnings) = Condition::compile(v);
    assert!(warnings.is_empty(), "{warnings:?}");
    c
}

/// The feature `parent`, on except for free plans, built in code (the
/// payloads below spell it in JSON).
fn parent() -> (String, Feature) {
    (
        "parent".into(),
        Feature::new(json!(true)).with_force_rule(
            ForceRule::new(json!(false)).with_condition(compiled(&json!({"plan": "free"}))),
        ),
    )
}

#[test]
fn typed_force_rules_evaluate_as_their_payload() {
    let targeting = json!({"country": {"$in": ["US", "CA"]}, "age": {"$gt": 18}});
    let on = json!({"value": {"$nin": [false, null, 0, ""]}});
    let payload = json!({
        "parent": {"defaultValue": true, "rules": [{"condition": {"plan": "free"}, "force": false}]},
        "rollout": {"defaultValue": false, "rules": [
            {"id": "vips", "condition": {"id": {"$in": ["user-3", "user-7"]}}, "force": true},
            {"id": "rollout", "condition": targeting, "coverage": 0.3, "hashAttribute": "id",
             "seed": "rollout", "hashVersion": 2, "force": true},
        ]},
        "gated": {"defaultValue": "off", "rules": [
            {"id": "all", "parentConditions": [{"id": "parent", "condition": on, "gate": true}],
             "coverage": 0.5, "seed": "gated-seed", "hashVersion": 2, "force": "on"},
        ]},
        "plain": {"defaultValue": 1, "rules": [{"force": 2}]},
    });
    let from_json = FeatureSet::from_json(&payload, None);
    let typed = FeatureSet::from_compiled(
        vec![
            parent(),
            (
                "rollout".into(),
                Feature::new(json!(false))
                    .with_force_rule(
                        ForceRule::new(json!(true))
                            .with_id("vips")
                            .with_condition(compiled(
                                &json!({"id": {"$in": ["user-3", "user-7"]}}),
                            )),
                    )
                    .with_force_rule(
                        ForceRule::new(json!(true))
                            .with_id("rollout")
                            .with_condition(compiled(&targeting))
                            .with_rollout(0.3, "id", "rollout"),
                    ),
            ),
            (
                "gated".into(),
                Feature::new(json!("off")).with_force_rule(
                    ForceRule::new(json!("on"))
                        .with_id("all")
                        .with_gate("parent", compiled(&on))
                        .with_rollout(0.5, "", "gated-seed"),
                ),
            ),
            (
                "plain".into(),
                Feature::new(json!(1)).with_force_rule(ForceRule::new(json!(2))),
            ),
        ],
        None,
        Vec::new(),
    );
    let mut decided = std::collections::BTreeMap::new();
    for i in 0..2000 {
        let (country, plan) = (["US", "CA", "FR"][i % 3], ["free", "pro"][i % 2]);
        let ctx = Context::new(json!({
            "id": format!("user-{i}"),
            "country": country,
            "age": 10 + i % 30,
            "plan": plan,
        }));
        for key in ["parent", "rollout", "gated", "plain"] {
            let (a, b) = (from_json.eval(key, &ctx), typed.eval(key, &ctx));
            assert_eq!(
                (a.value, a.source, a.rule_id),
                (b.value, b.source, b.rule_id),
                "{key} for user-{i}"
            );
            *decided.entry((key, format!("{:?}", a.source))).or_insert(0) += 1;
        }
    }
    // Every path was taken: forced, default, gated off, rolled out.
    for (key, source) in [
        ("parent", "Force"),
        ("parent", "DefaultValue"),
        ("rollout", "Force"),
        ("rollout", "DefaultValue"),
        ("gated", "Force"),
        ("gated", "DefaultValue"),
        ("gated", "Prerequisite"),
        ("plain", "Force"),
    ] {
        assert!(
            decided.contains_key(&(key, source.to_owned())),
            "{key} never decided by {source}: {decided:?}"
        );
    }
}

#[test]
fn typed_experiment_rules_evaluate_as_their_payload() {
    use flightdeck_experiments::ExperimentRule;
    let targeting = json!({"country": {"$in": ["US", "CA"]}});
    let on = json!({"value": {"$nin": [false, null, 0, ""]}});
    let variations = |pairs: &[(&str, Value)]| -> Vec<(String, Value)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    };
    let payload = json!({
        "parent": {"defaultValue": true, "rules": [{"condition": {"plan": "free"}, "force": false}]},
        "ranker": {"defaultValue": "bm25", "rules": [
            {"id": "variants", "key": "ranker", "seed": "ranker", "hashVersion": 2,
             "variations": ["bm25", "colbert", "hybrid"], "weights": [0.5, 0.25, 0.25],
             "meta": [{"key": "bm25"}, {"key": "colbert"}, {"key": "hybrid"}],
             "coverage": 0.6, "condition": targeting},
        ]},
        "gated": {"defaultValue": 0, "rules": [
            {"id": "v", "key": "gated-exp", "seed": "other-seed", "hashVersion": 2,
             "variations": [1, 2], "meta": [{"key": "one"}, {"key": ""}],
             "parentConditions": [{"id": "parent", "condition": on, "gate": true}]},
        ]},
        "odd-weights": {"defaultValue": {"k": 0}, "rules": [
            {"key": "odd-weights", "hashVersion": 2, "variations": [{"k": 1}, {"k": 2}],
             "weights": [0.0, 0.0], "meta": [{"key": "a"}, {"key": "b"}], "coverage": 1.0},
        ]},
    });
    let from_json = FeatureSet::from_json(&payload, None);
    let typed = FeatureSet::from_compiled(
        vec![
            parent(),
            (
                "ranker".into(),
                Feature::new(json!("bm25")).with_experiment_rule(
                    ExperimentRule::new(
                        "ranker",
                        variations(&[
                            ("bm25", json!("bm25")),
                            ("colbert", json!("colbert")),
                            ("hybrid", json!("hybrid")),
                        ]),
                    )
                    .with_id("variants")
                    .with_seed("ranker")
                    .with_weights(vec![0.5, 0.25, 0.25])
                    .with_coverage(0.6)
                    .with_condition(compiled(&targeting)),
                ),
            ),
            (
                "gated".into(),
                Feature::new(json!(0)).with_experiment_rule(
                    ExperimentRule::new(
                        "gated-exp",
                        variations(&[("one", json!(1)), ("", json!(2))]),
                    )
                    .with_id("v")
                    .with_seed("other-seed")
                    .with_gate("parent", compiled(&on)),
                ),
            ),
            (
                "odd-weights".into(),
                Feature::new(json!({"k": 0})).with_experiment_rule(
                    ExperimentRule::new(
                        "odd-weights",
                        variations(&[("a", json!({"k": 1})), ("b", json!({"k": 2}))]),
                    )
                    .with_weights(vec![0.0, 0.0]),
                ),
            ),
        ],
        None,
        Vec::new(),
    );
    let mut decided = std::collections::BTreeMap::new();
    for i in 0..3000 {
        let (country, plan) = (["US", "CA", "FR"][i % 3], ["free", "pro"][i % 2]);
        let ctx =
            Context::new(json!({"id": format!("user-{i}"), "country": country, "plan": plan}));
        for key in ["ranker", "gated", "odd-weights"] {
            let (a, b) = (from_json.eval(key, &ctx), typed.eval(key, &ctx));
            let result = |r: &flightdeck_experiments::FeatureResult<'_>| {
                r.experiment_result.as_ref().map(|e| {
                    (
                        e.variation_id,
                        e.key.to_owned(),
                        e.in_experiment,
                        e.bucket,
                        e.hash_used,
                    )
                })
            };
            assert_eq!(
                (a.value, a.source, a.rule_id, result(&a)),
                (b.value, b.source, b.rule_id, result(&b)),
                "{key} for user-{i}"
            );
            let variation = b.experiment_result.as_ref().map(|e| e.key.to_owned());
            *decided
                .entry((key, format!("{:?}", b.source), variation))
                .or_insert(0) += 1;
        }
    }
    // Every variation, the coverage's outside, the condition's outside and
    // the gate were seen.
    for (key, source, variation) in [
        ("ranker", "Experiment", Some("bm25")),
        ("ranker", "Experiment", Some("colbert")),
        ("ranker", "Experiment", Some("hybrid")),
        ("ranker", "DefaultValue", None),
        ("gated", "Experiment", Some("one")),
        ("gated", "Experiment", Some("1")),
        ("gated", "Prerequisite", None),
        ("odd-weights", "Experiment", Some("a")),
        ("odd-weights", "Experiment", Some("b")),
    ] {
        let k = (key, source.to_owned(), variation.map(str::to_owned));
        assert!(decided.contains_key(&k), "{k:?} never seen: {decided:?}");
    }
}

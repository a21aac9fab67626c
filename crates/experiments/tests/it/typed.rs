//! Features built in code evaluate exactly as the payload JSON they stand for.

use flightdeck_experiments::{Condition, Context, Feature, FeatureSet, ForceRule};
use serde_json::{Value, json};

fn compiled(v: &Value) -> Condition {
    let (c, warnings) = Condition::compile(v);
    assert!(warnings.is_empty(), "{warnings:?}");
    c
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
            (
                "parent".into(),
                Feature::new(json!(true)).with_force_rule(
                    ForceRule::new(json!(false)).with_condition(compiled(&json!({"plan": "free"}))),
                ),
            ),
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

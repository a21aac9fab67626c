//! Large GrowthBook payloads, which are compiled on several threads: the
//! result evaluates exactly as the experiments crate's single-threaded
//! compile, and problems anywhere in the payload are still all reported
//! with their lines.

use flightdeck_experiments::{Context, FeatureSet};
use flightdeck_flags::{FeatureFlagManager, FlagSet, LoadError};
use serde_json::{Map, Value, json};

/// 2,000 features of several shapes; every tenth depends on the feature
/// 1,000 places away, so prerequisites cross the threads' shares.
fn payload(n: usize) -> Value {
    let mut features = Map::new();
    for i in 0..n {
        let def = match i % 4 {
            0 => json!({"defaultValue": false, "rules": [{
                "id": format!("r{i}"),
                "condition": {"country": {"$in": ["US", "CA"]}, "age": {"$gt": 18 + i % 30}},
                "coverage": 0.5, "hashAttribute": "id", "seed": format!("s{i}"), "hashVersion": 2,
                "force": true,
            }]}),
            1 => json!({"defaultValue": "control", "rules": [{
                "key": format!("exp-{i}"), "variations": ["control", "treatment"],
                "weights": [0.5, 0.5], "hashAttribute": "id",
                "condition": {"plan": {"$inGroup": "paying"}},
            }]}),
            2 => json!({"defaultValue": 1, "rules": [{
                "condition": {"version": {"$vgte": "2.1.0"}}, "force": 2,
            }]}),
            _ => json!({"defaultValue": true, "rules": [{
                "parentConditions": [{
                    "id": format!("f{}", (i + 1000) % n),
                    "condition": {"value": {"$exists": true}},
                }],
                "force": false,
            }]}),
        };
        features.insert(format!("f{i}"), def);
    }
    json!({"features": features, "savedGroups": {"paying": ["pro", "team"]}})
}

fn contexts() -> Vec<Context> {
    (0..50)
        .map(|u| {
            let (country, plan, version) = [
                ("US", "free", "2.0.9"),
                ("CA", "pro", "2.1.0"),
                ("FR", "team", "3.0.0"),
            ][u % 3];
            Context::new(json!({
                "id": format!("user-{u}"),
                "country": country,
                "age": 15 + u,
                "plan": plan,
                "version": version,
            }))
        })
        .collect()
}

#[test]
fn a_large_payload_evaluates_as_the_single_threaded_compile() {
    let doc = payload(2000);
    let text = doc.to_string();
    let manager = FeatureFlagManager::with_flags(FlagSet::parse("big.json", &text, None).unwrap());
    let reference = FeatureSet::from_json(&doc["features"], doc.get("savedGroups"));
    assert!(
        reference.warnings().is_empty(),
        "{:?}",
        reference.warnings()
    );
    assert_eq!(manager.flag_keys().len(), 2000);
    let mut checked = 0;
    for ctx in &contexts() {
        for i in (0..2000).step_by(7) {
            let key = format!("f{i}");
            let ours = manager.evaluate(&key, ctx);
            let theirs = reference.eval(&key, ctx);
            assert_eq!(&ours.value, theirs.value, "{key}");
            assert_eq!(ours.source, theirs.source, "{key}");
            assert_eq!(ours.rule_id, theirs.rule_id, "{key}");
            checked += 1;
        }
    }
    assert_eq!(checked, 50 * 286);
}

#[test]
fn problems_in_every_share_are_listed_with_their_lines() {
    let mut doc = payload(2000);
    doc["features"]["f3"] = json!({"defaultValue": 1, "rules": {"not": "an array"}});
    doc["features"]["f1998"]["rules"][0]["condition"] = json!({"name": {"$regex": "("}});
    // One feature per line, so a line names a feature.
    let text = {
        let features = doc["features"].as_object().unwrap();
        let lines: Vec<String> = features
            .iter()
            .map(|(k, v)| format!("  {}: {}", Value::from(k.as_str()), v))
            .collect();
        format!("{{\"features\": {{\n{}\n}}}}", lines.join(",\n"))
    };
    let line_of = |key: &str| {
        text.lines()
            .position(|l| l.starts_with(&format!("  \"{key}\":")))
            .unwrap()
            + 1
    };
    let Err(LoadError::Invalid(problems)) = FlagSet::parse("big.json", &text, None) else {
        panic!("the payload should be rejected");
    };
    let shown: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert_eq!(shown.len(), 2, "{shown:#?}");
    assert!(
        shown[0].starts_with(&format!("big.json:{}:", line_of("f3")))
            && shown[0].contains("rules must be an array"),
        "{shown:#?}"
    );
    assert!(
        shown[1].starts_with(&format!("big.json:{}:", line_of("f1998")))
            && shown[1].contains("invalid regex"),
        "{shown:#?}"
    );
}

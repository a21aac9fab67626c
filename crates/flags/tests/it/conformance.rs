//! GrowthBook's `feature` and `decrypt` sections through the flags engine.
//! The suite is vendored by the experiments crate
//! (`crates/experiments/tests/fixtures/cases.json`, see its SOURCES.md).

use flightdeck_experiments::Context;
use flightdeck_flags::{FeatureFlagManager, FlagSet, decrypt};
use serde_json::{Value, json};

fn cases() -> Value {
    serde_json::from_str(include_str!(
        "../../../experiments/tests/fixtures/cases.json"
    ))
    .unwrap()
}

fn excluded() -> Vec<String> {
    let v: Value = serde_json::from_str(include_str!(
        "../../../experiments/tests/fixtures/exclusions.json"
    ))
    .unwrap();
    v["feature"].as_object().unwrap().keys().cloned().collect()
}

#[test]
fn feature_section_through_the_flag_manager() {
    let excluded = excluded();
    let mut ran = 0;
    let mut failures = Vec::new();
    for case in cases()["feature"].as_array().unwrap() {
        let name = case[0].as_str().unwrap();
        if excluded.iter().any(|e| e == name) {
            continue;
        }
        let ctx_json = &case[1];
        let payload = json!({
            "features": ctx_json.get("features").cloned().unwrap_or(json!({})),
            "savedGroups": ctx_json.get("savedGroups").cloned().unwrap_or(json!({})),
        });
        let set = FlagSet::parse("<case>", &payload.to_string(), None).unwrap();
        let manager = FeatureFlagManager::with_flags(set);
        let ctx = Context::from_json(ctx_json);
        let key = case[2].as_str().unwrap();
        let got = manager.evaluate(key, &ctx);
        let want = &case[3];
        let want_variation = want
            .get("experimentResult")
            .filter(|r| r["inExperiment"] == true)
            .and_then(|r| r["variationId"].as_u64());
        let ok = got.value == want["value"]
            && got.on == want["on"].as_bool().unwrap()
            && got.source.as_str() == want["source"].as_str().unwrap()
            && got.rule_id == want.get("ruleId").and_then(Value::as_str).unwrap_or("")
            && got.variation_id.map(|v| v as u64) == want_variation;
        if !ok {
            failures.push(format!("{name}: got {}, want {want}", got.to_json()));
        }
        ran += 1;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(ran, 51);
}

#[test]
fn decrypt_section() {
    let list = cases()["decrypt"].as_array().unwrap().clone();
    assert_eq!(list.len(), 10);
    for case in list {
        let got = decrypt(case[1].as_str().unwrap(), case[2].as_str().unwrap()).ok();
        assert_eq!(got.as_deref(), case[3].as_str(), "{}", case[0]);
    }
}

#[test]
fn an_encrypted_payload_loads_with_its_key_and_not_without() {
    let enc =
        "m5ylFM6ndyOJA2OPadubkw==.Uu7ViqgKEt/dWvCyhI46q088PkAEJbnXKf3KPZjf9IEQQ+A8fojNoxw4wIbPX3aj";
    let text = json!({ "encryptedFeatures": enc }).to_string();
    let set = FlagSet::parse("payload.json", &text, Some("Zvwv/+uhpFDznZ6SX28Yjg==")).unwrap();
    let m = FeatureFlagManager::with_flags(set);
    assert!(m.is_enabled("feature", &Context::for_user("u")));
    let err = FlagSet::parse("payload.json", &text, None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("no decryption key"), "{err}");
    let err = FlagSet::parse("payload.json", &text, Some("Zvwv/+uhpFDznZ6SX39Yjg=="))
        .unwrap_err()
        .to_string();
    assert!(err.contains("wrong key"), "{err}");
}

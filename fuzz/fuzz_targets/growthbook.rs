//! GrowthBook feature payloads and conditions from JSON: compile with
//! warnings and evaluate without a panic or unbounded recursion.
#![no_main]

use flightdeck_experiments::{Condition, Context, FeatureSet, SavedGroups};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let (cond, _warnings) = Condition::compile(&v);
    let groups = SavedGroups::new();
    let _ = cond.eval(&v, &groups);
    let _ = cond.eval(
        &serde_json::json!({"id": "u", "country": "US", "n": 3}),
        &groups,
    );
    let set = FeatureSet::from_json(&v, v.get("savedGroups"));
    let ctx = Context::from_json(&v);
    if let Some(features) = v.as_object() {
        for k in features.keys().take(8) {
            let _ = set.eval(k, &ctx);
        }
    }
});

//! Release inputs: Kayenta canary configs and metric-set pairs (judged when
//! both parse), canary specs, Argo AnalysisTemplates, conditions and
//! durations: a value or an error naming the place, never a panic.
#![no_main]

use std::collections::BTreeMap;
use std::path::Path;

use flightdeck_release::expr::Condition;
use flightdeck_release::judge::{CanaryConfig, Judge, pairs_from_json};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // CONFIG \0 PAIRS
    let (config, pairs) = text.split_once('\0').unwrap_or((text, "[]"));
    if let (Ok(c), Ok(p)) = (
        CanaryConfig::from_json(config, "config.json"),
        pairs_from_json(pairs, "pairs.json"),
    ) {
        if let Ok(r) = Judge::default().judge(&c, &p) {
            assert!((0.0..=100.0).contains(&r.score), "score {}", r.score);
            let _ = serde_json::to_string(&r).expect("a report serializes");
        }
    }
    let _ = flightdeck_release::spec::CanarySpec::from_yaml(text, Path::new("canary.yaml"));
    let _ = flightdeck_release::spec::analysis_template(text, "t.yaml", &BTreeMap::new());
    if let Ok(c) = Condition::parse(text) {
        let _ = c.eval(&serde_json::json!([0.5, "NaN"]));
        let _ = c.eval(&serde_json::json!({"score": 80, "thresholds": {"marginal": 75}}));
    }
    let _ = flightdeck_release::duration::parse(text);
});

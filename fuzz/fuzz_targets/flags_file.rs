//! Flag files in every format (simple YAML or JSON, GrowthBook payloads):
//! a set or a list of located problems, never a panic, an abort or a hang;
//! whatever loads evaluates.
#![no_main]

use flightdeck_experiments::Context;
use flightdeck_flags::{FeatureFlagManager, FlagSet};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match FlagSet::parse("fuzz.yaml", text, None) {
        Ok(set) => {
            let keys: Vec<String> = set.keys().into_iter().map(str::to_owned).collect();
            let m = FeatureFlagManager::with_flags(set);
            let ctx = Context::for_user("u1");
            for k in keys.iter().take(16) {
                let _ = m.evaluate(k, &ctx);
            }
        }
        Err(e) => {
            for p in e.problems() {
                assert!(p.line >= 1 && p.column >= 1, "{p}");
            }
        }
    }
});

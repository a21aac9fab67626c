//! Experiment files (GrowthBook's JSON shape): an experiment or an error
//! naming file, line and field; an experiment that loads assigns.
#![no_main]

use flightdeck_experiments::{Context, parse_experiment};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(exp) = parse_experiment("fuzz.json", text) {
        let ctx = Context::for_user("u1");
        let r = exp.run(&ctx);
        assert!(r.variation_id < exp.variations().len().max(1));
    }
});

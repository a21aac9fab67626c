//! SLO specs (Sloth, OpenSLO v1alpha and v1) and AlertWindows: a spec or
//! an error, fast; a spec that loads generates rules.
#![no_main]

use flightdeck_slo::{AlertWindows, GenerateOptions, SloSpec, generate, validate_openslo};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(spec) = SloSpec::from_yaml(text, "fuzz.yaml") {
        let _ = generate(&spec, &GenerateOptions::new());
    }
    let _ = validate_openslo(text);
    let _ = AlertWindows::from_yaml(text, "fuzz.yaml");
});

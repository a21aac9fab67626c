//! Golden case files, golden.yaml specs, selectors and assertions: a value
//! or an error naming the place; a case that loads prints back to itself.
#![no_main]

use flightdeck_golden::{Assertion, Case, Selector, Spec};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(case) = Case::from_json(text, "fuzz.json", 0) {
        let again = Case::from_json(&case.to_json_pretty(), "again.json", 0).expect("a written case reads back");
        assert_eq!(again.tree.len(), case.tree.len());
        if let Ok(sel) = Selector::parse(text.lines().next().unwrap_or("")) {
            let _ = sel.select(&case.tree);
        }
    }
    if let Ok(spec) = Spec::from_yaml(text, "golden.yaml", Default::default()) {
        let _ = spec.checks.len();
    }
    let _ = Selector::parse(text);
    let _ = Assertion::parse(text);
});

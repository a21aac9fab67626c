//! The fast YAML subset reader: wherever it accepts a flag file, it reads
//! it as serde_norway does (the same flags, values and problems).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    assert!(
        flightdeck_flags::__fuzz::yaml_subset_agrees(text),
        "the subset reader and serde_norway disagree on {text:?}"
    );
});

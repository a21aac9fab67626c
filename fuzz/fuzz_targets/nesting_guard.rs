//! The nesting guard never under-counts: text it passes at a limit is read
//! by serde_norway and serde_json without exceeding that depth.
#![no_main]

use libfuzzer_sys::fuzz_target;

fn depth(v: &serde_json::Value) -> usize {
    // Iterative: the value may be deep when the guard is wrong.
    let mut max = 0;
    let mut stack = vec![(v, 1usize)];
    while let Some((v, d)) = stack.pop() {
        max = max.max(d);
        match v {
            serde_json::Value::Array(xs) => stack.extend(xs.iter().map(|x| (x, d + 1))),
            serde_json::Value::Object(m) => stack.extend(m.values().map(|x| (x, d + 1))),
            _ => {}
        }
    }
    max
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    const LIMIT: usize = 16;
    if flightdeck_obs_core::locate::check_nesting(text, LIMIT).is_ok() {
        if let Ok(v) = serde_norway::from_str::<serde_json::Value>(text) {
            // Scalars count one level; collections add one each.
            assert!(
                depth(&v) <= LIMIT + 1,
                "depth {} passed the guard: {text:?}",
                depth(&v)
            );
        }
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(text) {
            assert!(
                depth(&v) <= LIMIT + 1,
                "depth {} passed the guard: {text:?}",
                depth(&v)
            );
        }
    }
});

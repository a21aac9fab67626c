//! Golden traces from untrusted span records and OTLP JSON: every trace
//! read becomes a tree or an error naming the span (never a panic or a
//! hang), and a tree compares equal to itself.
#![no_main]

use flightdeck_golden::{Rules, TraceReader, Tree, compare, read_otlp};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for trace in TraceReader::new(data, "fuzz.jsonl").take(64) {
        let Ok(trace) = trace else { break };
        if let Ok(tree) = Tree::build(&trace) {
            assert!(compare(&tree, &tree, &Rules::new()).is_empty());
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(traces) = read_otlp(text, "fuzz.json") {
            for t in traces.iter().take(16) {
                let _ = Tree::build(t);
            }
        }
    }
});

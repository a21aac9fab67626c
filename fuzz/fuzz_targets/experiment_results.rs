//! Result records for the experiment analyzer: an analysis or an error
//! naming the line, never a panic; every number in an analysis is finite
//! or gbstats' own default, and the reports render.
#![no_main]

use flightdeck_experiments::analysis::{AnalysisConfig, ExperimentAnalyzer, render_html, render_markdown};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let analyzer = ExperimentAnalyzer::new(AnalysisConfig::default());
    if let Ok(a) = analyzer.analyze_reader(data, "fuzz.jsonl", "e", None) {
        for m in &a.metrics {
            for c in &m.comparisons {
                let p = c.frequentist.relative.p_value;
                assert!((0.0..=1.0).contains(&p) || p.is_nan(), "{c:?}");
            }
        }
        let _ = render_markdown(&a);
        let _ = render_html(&a);
        let _ = serde_json::to_string(&a);
    }
});

//! Experiment analysis benchmarks (targets in docs/benchmarks.md):
//! analyzing result lines (the whole-process 1M-line target is measured
//! with `flightdeck experiments analyze`), and rendering the HTML report
//! (≤ 50 ms).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use flightdeck_experiments::analysis::{
    AnalysisConfig, ExperimentAnalyzer, render_html, render_markdown,
};

fn lines(n: usize) -> String {
    let mut out = String::with_capacity(n * 170);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in 0..n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let u = (x >> 11) as f64 / (1u64 << 53) as f64;
        let arm = i % 3;
        let converted = if u < 0.1 + 0.01 * arm as f64 { 1 } else { 0 };
        out.push_str(&format!(
            r#"{{"timestamp_ms":{},"experiment":"e","user_id":"u{i}","variation_id":{arm},"variation_key":"v{arm}","metrics":{{"converted":{converted},"latency_ms":{:.3},"revenue":{:.2}}}}}"#,
            1_780_000_000_000u64 + i as u64 * 600,
            200.0 + 300.0 * u,
            if u < 0.1 { 400.0 * u } else { 0.0 }
        ));
        out.push('\n');
    }
    out
}

fn benches(c: &mut Criterion) {
    let text = lines(100_000);
    let analyzer = ExperimentAnalyzer::new(AnalysisConfig::default());
    let mut g = c.benchmark_group("analysis");
    g.sample_size(20);
    g.bench_function("analyze/100k_lines_3_metrics_3_arms", |b| {
        b.iter(|| {
            black_box(
                analyzer
                    .analyze_reader(text.as_bytes(), "bench", "e", Some(&[1.0 / 3.0; 3]))
                    .expect("an analysis"),
            )
        });
    });
    g.finish();
    let analysis = analyzer
        .analyze_reader(text.as_bytes(), "bench", "e", Some(&[1.0 / 3.0; 3]))
        .expect("an analysis");
    c.bench_function("report/html", |b| {
        b.iter(|| black_box(render_html(black_box(&analysis))))
    });
    c.bench_function("report/markdown", |b| {
        b.iter(|| black_box(render_markdown(black_box(&analysis))))
    });
}

criterion_group!(analysis_benches, benches);
criterion_main!(analysis_benches);

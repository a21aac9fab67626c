//! Rule generation for 1,000 SLOs (target ≤ 200 ms). Sloth, the Go
//! reference, cannot run here, so there is no anchor; see docs/benchmarks.md.
//!
//! Run: `cargo bench -p flightdeck-slo --bench slo`; CI only compiles this file.

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use flightdeck_slo::{
    GenerateOptions, ManualClock, PromDuration, SliKind, SloDefinition, SloMonitor, SloSpec,
    generate,
};

fn spec_with(n: usize) -> String {
    let mut s =
        String::from("version: prometheus/v1\nservice: rag\nlabels:\n  team: search\nslos:\n");
    for i in 0..n {
        let _ = write!(
            s,
            "  - name: slo-{i}\n    objective: 99.9\n    sli:\n      events:\n        error_query: sum(rate(req_total{{route=\"/r{i}\",code=~\"5..\"}}[{{{{.window}}}}]))\n        total_query: sum(rate(req_total{{route=\"/r{i}\"}}[{{{{.window}}}}]))\n    alerting:\n      name: Slo{i}\n"
        );
    }
    s
}

fn generation(c: &mut Criterion) {
    let text = spec_with(1000);
    let spec = SloSpec::from_yaml(&text, "bench").unwrap();
    let opts = GenerateOptions::new();
    let mut g = c.benchmark_group("slo_rules");
    g.bench_function("parse_1000_slos", |b| {
        b.iter(|| SloSpec::from_yaml(black_box(&text), "bench").unwrap())
    });
    g.bench_function("generate_1000_slos", |b| {
        b.iter(|| generate(black_box(&spec), &opts).unwrap())
    });
    g.bench_function("generate_and_render_yaml_1000_slos", |b| {
        b.iter(|| generate(black_box(&spec), &opts).unwrap().to_yaml())
    });
    g.finish();
}

fn monitor() -> SloMonitor {
    let def = SloDefinition::new(
        "avail",
        SliKind::Availability,
        0.999,
        PromDuration::parse("30d").unwrap(),
    )
    .unwrap();
    SloMonitor::with_clock(def, ManualClock::from_secs(1_700_000_000))
}

fn monitoring(c: &mut Criterion) {
    let mut g = c.benchmark_group("slo_monitor");
    let m = monitor();
    g.bench_function("record_success", |b| b.iter(|| m.record_success()));
    let m2 = monitor();
    g.bench_function("record_success_2_threads", |b| {
        b.iter_custom(|iters| {
            let start = std::time::Instant::now();
            std::thread::scope(|s| {
                for _ in 0..2 {
                    s.spawn(|| {
                        for _ in 0..iters {
                            m2.record_success();
                        }
                    });
                }
            });
            start.elapsed()
        })
    });
    // A full 30-day window of data, one event per minute.
    let clock = ManualClock::from_secs(1_700_000_000);
    let def = SloDefinition::new(
        "avail",
        SliKind::Availability,
        0.999,
        PromDuration::parse("30d").unwrap(),
    )
    .unwrap();
    let full = SloMonitor::with_clock(def, clock.clone());
    for _ in 0..(30 * 24 * 60) {
        clock.advance(Duration::from_secs(60));
        full.record_success();
    }
    g.bench_function("status_30d", |b| b.iter(|| black_box(full.status())));
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .sample_size(10)
}

criterion_group! {
    name = benches;
    config = config();
    targets = generation, monitoring
}
criterion_main!(benches);

//! flightdeck-stats hot paths beside their anchors.
//!
//! Run: `cargo bench -p flightdeck-stats --bench stats`; CI only compiles
//! this file. Results are in `docs/benchmarks.md`. The scipy anchor for
//! Mann-Whitney is timed by `benches/scipy_anchor.py` right after this run.
//!
//! * `welch_1m_slices`: Welch t-test over 1M observations per arm from
//!   slices (target ≤ 2 ms), beside a bare sum over the same 16 MB (the
//!   memory-bandwidth floor).
//! * `welch_from_summaries`: the test from two streaming summaries (target ≤ 1 µs).
//! * `mann_whitney_10k`: U, p-value, Hodges-Lehmann estimate and interval
//!   on 10k vs 10k (target ≤ 20 ms, and faster than scipy's test alone).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use flightdeck_stats::{Summary, TTestKind, mann_whitney, ttest, ttest_slices};
use rand::SeedableRng;
use rand_distr::{Distribution, LogNormal, Normal};

fn welch(c: &mut Criterion) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let d = Normal::new(100.0, 15.0).unwrap();
    let a: Vec<f64> = (0..1_000_000).map(|_| d.sample(&mut rng)).collect();
    let b: Vec<f64> = (0..1_000_000).map(|_| d.sample(&mut rng) + 0.05).collect();
    let mut g = c.benchmark_group("welch");
    g.bench_function("anchor_sum_2x1m", |bch| {
        bch.iter(|| black_box(a.iter().sum::<f64>() + b.iter().sum::<f64>()))
    });
    g.bench_function("welch_1m_slices", |bch| {
        bch.iter(|| ttest_slices(black_box(&a), black_box(&b), TTestKind::Welch, 0.05).unwrap())
    });
    let (sa, sb) = (
        Summary::from_slice(&a).unwrap(),
        Summary::from_slice(&b).unwrap(),
    );
    g.bench_function("welch_from_summaries", |bch| {
        bch.iter(|| ttest(black_box(&sa), black_box(&sb), TTestKind::Welch, 0.05).unwrap())
    });
    g.finish();
}

fn mann_whitney_10k(c: &mut Criterion) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(2);
    let d = LogNormal::new(0.0, 1.0).unwrap();
    let a: Vec<f64> = (0..10_000).map(|_| d.sample(&mut rng)).collect();
    let b: Vec<f64> = (0..10_000).map(|_| d.sample(&mut rng) * 1.05).collect();
    let mut g = c.benchmark_group("mann_whitney");
    g.bench_function("mann_whitney_10k_with_interval", |bch| {
        bch.iter(|| mann_whitney(black_box(&a), black_box(&b), 0.95).unwrap())
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30)
}

criterion_group! {
    name = benches;
    config = config();
    targets = welch, mann_whitney_10k
}
criterion_main!(benches);

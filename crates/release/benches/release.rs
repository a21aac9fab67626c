//! The judge on 10 metrics × 2 sides × 1,000 samples (target ≤ 20 ms), with
//! the Mann-Whitney path alone as the anchor.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use flightdeck_release::judge::{CanaryConfig, Judge, MetricSetPair};
use rand::{Rng, SeedableRng};

fn pairs(n_metrics: usize, n: usize) -> (CanaryConfig, Vec<MetricSetPair>) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let metrics: Vec<String> = (0..n_metrics)
        .map(|i| format!(r#"{{"name": "m{i}", "groups": ["g{}"], "analysisConfigurations": {{"canary": {{"direction": "increase", "outliers": {{"strategy": "remove"}}}}}}}}"#, i % 3))
        .collect();
    let config = CanaryConfig::from_json(
        &format!(
            r#"{{"metrics": [{}], "classifier": {{"groupWeights": {{"g0": 50}}}}}}"#,
            metrics.join(",")
        ),
        "bench",
    )
    .expect("the bench config is valid");
    let pairs = (0..n_metrics)
        .map(|i| {
            let shift = if i % 4 == 0 { 1.3 } else { 1.0 };
            MetricSetPair::new(
                format!("m{i}"),
                (0..n).map(|_| rng.random_range(90.0..110.0)).collect(),
                (0..n)
                    .map(|_| rng.random_range(90.0..110.0) * shift)
                    .collect(),
            )
        })
        .collect();
    (config, pairs)
}

fn bench(c: &mut Criterion) {
    let (config, pairs) = pairs(10, 1000);
    let judge = Judge::default();
    c.bench_function("judge_10_metrics_x_2_x_1000", |b| {
        b.iter(|| black_box(judge.judge(&config, black_box(&pairs))))
    });
    let p = &pairs[0].values;
    c.bench_function("anchor_mann_whitney_1000_x_1000", |b| {
        b.iter(|| {
            black_box(flightdeck_stats::mann_whitney(
                &p.control.0,
                &p.experiment.0,
                0.98,
            ))
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);

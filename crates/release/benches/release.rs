//! The judge on 10 metrics × 2 sides × 1,000 samples (target ≤ 20 ms), with
//! the Mann-Whitney path alone as the anchor; and one controller tick
//! (assess, decide, write the ledger with fsync; target ≤ 1 ms plus the
//! providers' own time) on a ledger already holding 1,000 entries.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use flightdeck_release::controller::{CanaryManager, CheckResult};
use flightdeck_release::judge::{CanaryConfig, Judge, MetricSetPair};
use flightdeck_release::ledger::Ledger;
use flightdeck_release::progression::{CheckOutcome, Progression, Steps};
use flightdeck_release::router::RecordingRouter;
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

fn judge(c: &mut Criterion) {
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

fn tick(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let manager = CanaryManager::new(
        Ledger::open(dir.path()).expect("a ledger"),
        Box::new(RecordingRouter::default()),
        Progression {
            interval: Duration::from_millis(1),
            steps: Steps::Explicit(vec![5, 25, 100]),
            // Failed checks hold the weight without ever rolling back.
            threshold: u32::MAX,
            ..Progression::default()
        },
    );
    manager.start("bench", "1.0.0", "1.1.0").expect("a release");
    let mut hold = |_| CheckResult {
        outcome: CheckOutcome::Fail,
        message: Some("Metric \"error_rate\" assessed Failed".into()),
        detail: serde_json::json!({"judge": {"score": 50.0}}),
    };
    for _ in 0..1000 {
        manager.tick(&mut hold).expect("a tick");
    }
    c.bench_function("controller_tick_ledger_1000_entries", |b| {
        b.iter(|| black_box(manager.tick(&mut hold).expect("a tick")))
    });
}

criterion_group!(benches, judge, tick);
criterion_main!(benches);

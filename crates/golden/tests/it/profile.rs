//! Profiles: same-distribution batches pass at least 99 times in 100; a
//! stage 20 % slower fails with that stage named and an interval.

use std::collections::BTreeMap;

use flightdeck_golden::{Case, CaseKey, Checker, DiffKind, Recorder, Spec, Tree};
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::common::{Stages, rag_trace};

const RUNS: usize = 60;

fn batch(rng: &mut StdRng, key: &str, generate_factor: f64) -> Vec<flightdeck_golden::RawTrace> {
    (0..RUNS)
        .map(|i| {
            let st = Stages::typical().drawn(rng, 0.25, generate_factor);
            rag_trace(
                key,
                i as u64 * 1_000_000_000_000,
                1 + i as u64 * 1000,
                &st,
                0.9,
            )
        })
        .collect()
}

fn recorded(seed: u64) -> BTreeMap<String, Case> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut rec = Recorder::new(CaseKey::CorrelationId, RUNS);
    for t in batch(&mut rng, "q", 1.0) {
        rec.add(t).unwrap();
    }
    let (cases, short) = rec.finish();
    assert!(short.is_empty());
    cases.into_iter().map(|c| (c.name.clone(), c)).collect()
}

fn check(cases: &BTreeMap<String, Case>, seed: u64, factor: f64) -> flightdeck_golden::Report {
    let spec = Spec::default();
    let mut checker = Checker::new(cases, &spec, CaseKey::CorrelationId);
    let mut rng = StdRng::seed_from_u64(seed);
    for t in batch(&mut rng, "q", factor) {
        checker.add(t).unwrap();
    }
    checker.finish()
}

#[test]
fn a_recorded_profile_has_every_path_and_median_self_times() {
    let cases = recorded(1);
    let case = &cases["q"];
    let p = case.profile.as_ref().unwrap();
    assert_eq!(p.runs, RUNS as u32);
    assert_eq!(p.spans.len(), case.tree.len());
    let g = &p.spans["rag.request/rag.generate"];
    assert_eq!(g.n, RUNS as u32);
    assert!((g.p50_ms / 280.0 - 1.0).abs() < 0.15, "{}", g.p50_ms);
    assert_eq!(
        case.tree.get("rag.request/rag.generate").unwrap().self_ms,
        g.p50_ms
    );
    // The case file round-trips with its profile.
    let back = Case::from_json(&case.to_json_pretty(), "q.json", 0).unwrap();
    assert_eq!(&back, case);
}

#[test]
fn same_distribution_batches_pass_at_least_99_in_100() {
    let cases = recorded(7);
    let passes = (0..100)
        .filter(|s| check(&cases, 1000 + s, 1.0).ok())
        .count();
    assert!(passes >= 99, "{passes} of 100 passed");
}

#[test]
fn a_stage_twenty_percent_slower_fails_with_that_stage_named() {
    let cases = recorded(7);
    for seed in 0..20 {
        let report = check(&cases, 5000 + seed, 1.2);
        assert!(!report.ok(), "seed {seed}");
        let failing: Vec<_> = report.cases[0]
            .differences
            .iter()
            .filter(|d| d.fails)
            .collect();
        assert_eq!(failing.len(), 1, "seed {seed}: {failing:#?}");
        let d = failing[0];
        assert_eq!(
            (d.kind, d.path.as_str()),
            (DiffKind::Latency, "rag.request/rag.generate")
        );
        let shift = d.actual["shift_ms"].as_f64().unwrap();
        let (lo, hi) = (
            d.actual["ci_low_ms"].as_f64().unwrap(),
            d.actual["ci_high_ms"].as_f64().unwrap(),
        );
        assert!(lo < shift && shift < hi && lo > 0.0, "{shift} [{lo}, {hi}]");
        assert!(d.message.contains("rag.generate +"), "{}", d.message);
        assert!(d.message.contains(" p="), "{}", d.message);
    }
}

#[test]
fn a_small_batch_falls_back_to_per_run_tolerances() {
    let cases = recorded(3);
    let spec = Spec::default();
    let mut checker = Checker::new(&cases, &spec, CaseKey::CorrelationId);
    let st = Stages::typical();
    checker.add(rag_trace("q", 0, 1, &st, 0.9)).unwrap();
    let report = checker.finish();
    assert!(report.ok(), "{:#?}", report.cases);
    let _ = Tree::default();
}

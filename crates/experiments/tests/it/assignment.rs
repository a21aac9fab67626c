//! Properties of assignment: no heap allocation on the hot path, uniform
//! splits, stable under coverage changes.

use flightdeck_experiments::{Context, Experiment, srm_check};
use serde_json::json;

fn bench_experiment() -> Experiment {
    Experiment::from_json(&json!({
        "key": "checkout",
        "variations": ["control", "treatment"],
        "condition": {"country": {"$in": ["US", "CA", "GB"]}, "age": {"$gt": 18}},
    }))
}

#[test]
fn assignment_allocates_nothing() {
    let exp = bench_experiment();
    let ctxs: Vec<Context> = (0..100)
        .map(|i| Context::new(json!({"id": format!("user-{i}"), "country": "US", "age": 30})))
        .collect();
    // Warm up lazily initialised statics (the empty feature set).
    let _ = exp.run(&ctxs[0]);
    let mut inside = 0;
    let info = allocation_counter::measure(|| {
        for ctx in &ctxs {
            let r = exp.run(ctx);
            inside += usize::from(r.in_experiment);
        }
    });
    assert_eq!(inside, 100, "every user passes the targeting");
    assert_eq!(info.count_total, 0, "assignment allocated: {info:?}");
    // The counter is live: an allocation in the closure is seen.
    let check = allocation_counter::measure(|| drop(std::hint::black_box(vec![1u8; 16])));
    assert_eq!(check.count_total, 1);
}

#[test]
fn a_million_sequential_ids_split_20_30_50_without_srm() {
    let exp = Experiment::from_json(&json!({
        "key": "uniformity", "variations": [0, 1, 2], "weights": [0.2, 0.3, 0.5], "hashVersion": 2,
    }));
    let mut counts = [0u64; 3];
    let mut ctx = Context::for_user("0");
    for i in 0..1_000_000u32 {
        ctx = ctx.with_attribute("id", json!(i.to_string()));
        let r = exp.run(&ctx);
        assert!(r.in_experiment);
        counts[r.variation_id] += 1;
    }
    let check = srm_check(&counts, &[0.2, 0.3, 0.5], 0.001);
    let p = check.test.expect("test ran").p_value;
    assert!(p > 0.001, "counts {counts:?} p={p}");
    assert!(!check.mismatch);
}

#[test]
fn raising_coverage_moves_no_user_who_was_in() {
    for version in [1, 2] {
        let at = |coverage: f64| {
            Experiment::from_json(&json!({
                "key": "ramp", "variations": ["a", "b", "c"], "weights": [0.2, 0.3, 0.5],
                "coverage": coverage, "hashVersion": version,
            }))
        };
        let (half, full) = (at(0.5), at(1.0));
        let mut was_in = 0;
        for i in 0..100_000 {
            let ctx = Context::for_user(&format!("u{i}"));
            let before = half.run(&ctx);
            let after = full.run(&ctx);
            assert!(after.in_experiment);
            if before.in_experiment {
                was_in += 1;
                assert_eq!(
                    before.variation_id, after.variation_id,
                    "user u{i} moved (v{version})"
                );
            }
        }
        assert!(
            (45_000..55_000).contains(&was_in),
            "{was_in} of 100000 in at 50%"
        );
    }
}

/// A chain of features, each gated on the next; the last is on.
fn chain(n: usize) -> flightdeck_experiments::FeatureSet {
    let mut features = serde_json::Map::new();
    for i in 0..n {
        let rules = if i + 1 < n {
            json!([{
                "parentConditions": [{"id": format!("f{}", i + 1), "condition": {"value": true}, "gate": true}],
                "force": true
            }])
        } else {
            json!([{"force": true}])
        };
        features.insert(
            format!("f{i}"),
            json!({"defaultValue": false, "rules": rules}),
        );
    }
    flightdeck_experiments::FeatureSet::from_json(&serde_json::Value::Object(features), None)
}

#[test]
fn deep_prerequisite_chains_resolve_and_overlong_ones_count_as_cycles() {
    use flightdeck_experiments::{FeatureSource, MAX_PREREQUISITE_DEPTH};
    let ctx = Context::for_user("u");
    // Deeper than the inline part of the evaluation stack.
    let set = chain(10);
    let r = set.eval("f0", &ctx);
    assert_eq!((r.value, r.source), (&json!(true), FeatureSource::Force));
    let set = chain(MAX_PREREQUISITE_DEPTH + 5);
    assert_eq!(
        set.eval("f0", &ctx).source,
        FeatureSource::CyclicPrerequisite
    );
    // A real cycle through more than the inline depth.
    let mut features = serde_json::Map::new();
    for i in 0..6 {
        features.insert(
            format!("c{i}"),
            json!({"defaultValue": false, "rules": [{
                "parentConditions": [{"id": format!("c{}", (i + 1) % 6), "condition": {"value": true}}],
                "force": true
            }]}),
        );
    }
    let set =
        flightdeck_experiments::FeatureSet::from_json(&serde_json::Value::Object(features), None);
    assert_eq!(
        set.eval("c0", &ctx).source,
        FeatureSource::CyclicPrerequisite
    );
}

//! Assignment cost, against the official `growthbook-rust` SDK evaluating
//! the same experiment in the same run.
//!
//! The experiment: 2 variations, condition `{"country": {"$in": [...]},
//! "age": {"$gt": 18}}`, hash version 1, for 1024 distinct users (all pass
//! the targeting). Results are in docs/benchmarks.md.
//!
//! * `flightdeck/run`: `Experiment::run` (no heap allocation; see the
//!   allocation test in tests/it/assignment.rs).
//! * `flightdeck/feature`: the same experiment as a feature's experiment rule,
//!   through `FeatureSet::eval`.
//! * `growthbook-rust/check`: `growthbook_rust::growthbook::GrowthBook::check`
//!   with the attributes prebuilt (its cheapest public path).

use std::collections::HashMap;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use flightdeck_experiments::{Context, Experiment, FeatureSet};
use growthbook_rust::dto::GrowthBookFeature;
use growthbook_rust::growthbook::GrowthBook;
use growthbook_rust::model_public::GrowthBookAttribute;
use serde_json::{Value, json};

const USERS: usize = 1024;

fn condition() -> Value {
    json!({"country": {"$in": ["US", "CA", "GB", "DE"]}, "age": {"$gt": 18}})
}

fn attributes(i: usize) -> Value {
    json!({"id": format!("user-{i}"), "country": "US", "age": 30 + (i % 40)})
}

fn bench(c: &mut Criterion) {
    let exp = Experiment::from_json(&json!({
        "key": "checkout", "variations": ["control", "treatment"], "condition": condition(),
    }));
    let features_json = json!({
        "checkout": {
            "defaultValue": "control",
            "rules": [{"key": "checkout", "variations": ["control", "treatment"], "condition": condition()}],
        }
    });
    let features = FeatureSet::from_json(&features_json, None);
    let ctxs: Vec<Context> = (0..USERS).map(|i| Context::new(attributes(i))).collect();

    let gb_features: HashMap<String, GrowthBookFeature> =
        serde_json::from_value(features_json.clone()).expect("growthbook-rust reads the payload");
    let gb = GrowthBook {
        forced_variations: None,
        features: gb_features,
        attributes: None,
        sticky_bucket_service: None,
        saved_groups: Default::default(),
    };
    let gb_attrs: Vec<Option<Vec<GrowthBookAttribute>>> = (0..USERS)
        .map(|i| Some(GrowthBookAttribute::from(attributes(i)).expect("attributes")))
        .collect();

    // Both engines agree on every user before anything is timed.
    for i in 0..USERS {
        let ours = features.eval("checkout", &ctxs[i]);
        let theirs = gb.check("checkout", &gb_attrs[i]);
        assert_eq!(ours.value, &theirs.value, "user {i}");
        assert_eq!(exp.run(&ctxs[i]).value, ours.value);
    }

    let mut g = c.benchmark_group("assign");
    let mut i = 0usize;
    g.bench_function("flightdeck/run", |b| {
        b.iter(|| {
            i = (i + 1) % USERS;
            black_box(exp.run(black_box(&ctxs[i])).variation_id)
        })
    });
    g.bench_function("flightdeck/feature", |b| {
        b.iter(|| {
            i = (i + 1) % USERS;
            black_box(features.eval("checkout", black_box(&ctxs[i])).on())
        })
    });
    g.bench_function("growthbook-rust/check", |b| {
        b.iter(|| {
            i = (i + 1) % USERS;
            black_box(gb.check("checkout", black_box(&gb_attrs[i])).on)
        })
    });
    g.finish();

    let mut g = c.benchmark_group("compile");
    g.bench_function("flightdeck/experiment", |b| {
        let def = json!({"key": "checkout", "variations": ["control", "treatment"], "condition": condition()});
        b.iter(|| black_box(Experiment::from_json(black_box(&def))))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

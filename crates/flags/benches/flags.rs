//! Flag evaluation against the official GrowthBook SDK (`growthbook-rust`)
//! and Unleash's engine (`unleash-yggdrasil`), thread scaling, and reloads
//! of a 10,000-flag file. Results are in docs/benchmarks.md.
//!
//! The flag: a 3-condition targeting rule (`country` in 4 values,
//! `age > 18`, `plan` not `free`) and a 25% rollout, for 1,024 users who all
//! pass the targeting. Each engine gets the equivalent definition: our simple
//! format, the GrowthBook payload it compiles to, and an Unleash
//! `flexibleRollout` with three constraints.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use flightdeck_experiments::Context;
use flightdeck_flags::{FeatureFlagManager, FlagSet};
use growthbook_rust::dto::GrowthBookFeature;
use growthbook_rust::growthbook::GrowthBook;
use growthbook_rust::model_public::GrowthBookAttribute;
use serde_json::{Value, json};
use unleash_types::client_features::{ClientFeatures, Context as UnleashContext};
use unleash_yggdrasil::{EngineState, UpdateMessage};

const USERS: usize = 1024;

const OURS: &str = r#"
flags:
  - id: checkout
    rollout_percentage: 25
    targeting:
      attributes:
        country: {$in: [US, CA, GB, DE]}
        age: {$gt: 18}
        plan: {$nin: [free]}
"#;

fn attributes(i: usize) -> Value {
    json!({"id": format!("user-{i}"), "country": "US", "age": 30 + (i % 40), "plan": "pro"})
}

fn growthbook_payload() -> Value {
    json!({"checkout": {"defaultValue": false, "rules": [{
        "condition": {"country": {"$in": ["US", "CA", "GB", "DE"]}, "age": {"$gt": 18}, "plan": {"$nin": ["free"]}},
        "coverage": 0.25, "hashAttribute": "id", "seed": "checkout", "hashVersion": 2, "force": true,
    }]}})
}

fn unleash_features() -> ClientFeatures {
    serde_json::from_value(json!({"version": 2, "features": [{
        "name": "checkout", "enabled": true, "strategies": [{
            "name": "flexibleRollout",
            "parameters": {"rollout": "25", "stickiness": "userId", "groupId": "checkout"},
            "constraints": [
                {"contextName": "country", "operator": "IN", "values": ["US", "CA", "GB", "DE"]},
                {"contextName": "age", "operator": "NUM_GT", "value": "18"},
                {"contextName": "plan", "operator": "NOT_IN", "values": ["free"]}
            ]
        }]
    }]}))
    .expect("unleash features")
}

fn unleash_context(i: usize) -> UnleashContext {
    serde_json::from_value(json!({
        "userId": format!("user-{i}"),
        "properties": {"country": "US", "age": (30 + i % 40).to_string(), "plan": "pro"},
    }))
    .expect("unleash context")
}

/// A simple-format file of `n` flags `flag-0`, `flag-1`, ..., each with
/// the YAML `fields` after its id.
fn flag_file(n: usize, fields: &str) -> String {
    let mut text = String::from("flags:\n");
    for i in 0..n {
        text.push_str(&format!("  - id: flag-{i}\n{fields}"));
    }
    text
}

/// `n` boolean flags like the one `is_enabled` evaluates.
fn big_file(n: usize) -> String {
    flag_file(
        n,
        "    rollout_percentage: 25\n    targeting:\n      attributes: {country: {$in: [US, CA]}, age: {$gt: 18}, plan: {$nin: [free]}}\n",
    )
}

/// `n` flags with three variants each, targeted and rolled out.
fn big_variant_file(n: usize) -> String {
    flag_file(
        n,
        "    default: a\n    rollout_percentage: 50\n    targeting:\n      attributes: {country: {$in: [US, CA]}}\n    variants:\n      - {key: a, value: \"bm25\", weight: 2}\n      - {key: b, value: \"colbert\", weight: 1}\n      - {key: c, value: \"hybrid\", weight: 1}\n",
    )
}

fn big_growthbook(n: usize) -> String {
    let rule = growthbook_payload()["checkout"].clone();
    let features: serde_json::Map<String, Value> = (0..n)
        .map(|i| (format!("flag-{i}"), rule.clone()))
        .collect();
    json!({ "features": features }).to_string()
}

fn bench(c: &mut Criterion) {
    let manager = Arc::new(FeatureFlagManager::with_flags(
        FlagSet::parse("flags.yaml", OURS, None).expect("flags"),
    ));
    let ctxs: Vec<Context> = (0..USERS).map(|i| Context::new(attributes(i))).collect();

    let gb = GrowthBook {
        forced_variations: None,
        features:
            serde_json::from_value::<HashMap<String, GrowthBookFeature>>(growthbook_payload())
                .expect("growthbook features"),
        attributes: None,
        sticky_bucket_service: None,
        saved_groups: Default::default(),
    };
    let gb_attrs: Vec<Option<Vec<GrowthBookAttribute>>> = (0..USERS)
        .map(|i| Some(GrowthBookAttribute::from(attributes(i)).expect("attributes")))
        .collect();

    let unleash = EngineState::default();
    let _warnings = unleash.take_state(UpdateMessage::FullResponse(unleash_features()));
    let u_ctxs: Vec<UnleashContext> = (0..USERS).map(unleash_context).collect();

    // Ours and GrowthBook's agree user by user; Unleash hashes differently
    // (murmur3), so only its share is checked.
    let mut unleash_on = 0;
    for i in 0..USERS {
        assert_eq!(
            manager.is_enabled("checkout", &ctxs[i]),
            gb.check("checkout", &gb_attrs[i]).on,
            "user {i}"
        );
        unleash_on += usize::from(unleash.is_enabled("checkout", &u_ctxs[i], &None));
    }
    assert!(
        (150..370).contains(&unleash_on),
        "unleash turned on {unleash_on} of {USERS}"
    );

    let mut g = c.benchmark_group("is_enabled");
    let mut i = 0usize;
    g.bench_function("flightdeck", |b| {
        b.iter(|| {
            i = (i + 1) % USERS;
            black_box(manager.is_enabled("checkout", black_box(&ctxs[i])))
        })
    });
    g.bench_function("growthbook-rust", |b| {
        b.iter(|| {
            i = (i + 1) % USERS;
            black_box(gb.check("checkout", black_box(&gb_attrs[i])).on)
        })
    });
    g.bench_function("unleash-yggdrasil", |b| {
        b.iter(|| {
            i = (i + 1) % USERS;
            black_box(unleash.is_enabled("checkout", black_box(&u_ctxs[i]), &None))
        })
    });
    g.finish();

    // Throughput with 1 and 8 threads sharing one manager: the time per
    // evaluation is wall time over all threads' evaluations.
    let mut g = c.benchmark_group("is_enabled_threads");
    for threads in [1usize, 8] {
        let m = manager.clone();
        g.bench_function(format!("{threads}"), |b| {
            b.iter_custom(|iters| per_evaluation_on_threads(&m, &ctxs, threads, iters))
        });
    }
    g.finish();

    let yaml = big_file(10_000);
    // The same flags in the simple format's JSON spelling.
    let simple_json = serde_norway::from_str::<Value>(&yaml)
        .expect("yaml")
        .to_string();
    let gbjson = big_growthbook(10_000);
    let mut g = c.benchmark_group("reload_10k");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    // GrowthBook's payload first: glibc's heap, once fragmented by the
    // simple format's larger trees, slows later reloads of any format
    // (a service reloads one format, so each case should start clean).
    g.bench_function("growthbook-json", |b| {
        b.iter(|| {
            manager
                .reload_from("big.json", black_box(&gbjson), None)
                .expect("reload")
        })
    });
    g.bench_function("simple-yaml", |b| {
        b.iter(|| {
            manager
                .reload_from("big.yaml", black_box(&yaml), None)
                .expect("reload")
        })
    });
    g.bench_function("simple-json", |b| {
        b.iter(|| {
            manager
                .reload_from("big.json", black_box(&simple_json), None)
                .expect("reload")
        })
    });
    // Anchors: the bare parse of the same texts into a `serde_json::Value`
    // by the crates a loader would use, with no validation or compiling.
    g.bench_function("anchor-serde_norway-parse-yaml", |b| {
        b.iter(|| serde_norway::from_str::<Value>(black_box(&yaml)).expect("yaml"))
    });
    g.bench_function("anchor-serde_json-parse-json", |b| {
        b.iter(|| serde_json::from_str::<Value>(black_box(&simple_json)).expect("json"))
    });
    let variants = big_variant_file(10_000);
    g.bench_function("simple-yaml-variants", |b| {
        b.iter(|| {
            manager
                .reload_from("variants.yaml", black_box(&variants), None)
                .expect("reload")
        })
    });
    g.finish();

    // Last, because it installs the process's metrics recorder: the same
    // evaluation with the Prometheus recorder counting it, as in a service
    // (the cases above count into the no-op recorder, and Unleash's
    // `is_enabled` does not count at all). A fresh manager, since counters
    // bind to the recorder when a flag is first evaluated.
    // The first manager goes: a thread caches one manager's snapshot, and
    // a second live manager would take the shared path (an `ArcSwap` load
    // and a locked increment per evaluation; 87 ns here).
    drop(manager);
    metrics::set_global_recorder(
        metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder(),
    )
    .expect("no recorder installed yet");
    let counted = Arc::new(FeatureFlagManager::with_flags(
        FlagSet::parse("flags.yaml", OURS, None).expect("flags"),
    ));
    let mut g = c.benchmark_group("is_enabled_counted");
    g.bench_function("flightdeck", |b| {
        b.iter(|| {
            i = (i + 1) % USERS;
            black_box(counted.is_enabled("checkout", black_box(&ctxs[i])))
        })
    });
    for threads in [1usize, 8] {
        g.bench_function(format!("{threads}-threads"), |b| {
            b.iter_custom(|iters| per_evaluation_on_threads(&counted, &ctxs, threads, iters))
        });
    }
    g.finish();
}

/// Wall time per evaluation with `threads` threads sharing `m`, over all
/// their evaluations.
fn per_evaluation_on_threads(
    m: &FeatureFlagManager,
    ctxs: &[Context],
    threads: usize,
    iters: u64,
) -> Duration {
    let per = (iters as usize).div_ceil(threads).max(1);
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            s.spawn(move || {
                let mut on = 0usize;
                for k in 0..per {
                    on += usize::from(m.is_enabled("checkout", &ctxs[(k + t * 97) % USERS]));
                }
                black_box(on)
            });
        }
    });
    start
        .elapsed()
        .mul_f64(iters as f64 / (per * threads) as f64)
}

criterion_group!(benches, bench);
criterion_main!(benches);

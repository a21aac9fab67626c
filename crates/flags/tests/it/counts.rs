//! Evaluation telemetry. Counts: each thread counts on its own and a
//! publisher adds the counts to `flightdeck_flag_evaluations_total`; none may
//! be lost or counted twice, across threads, reloads, managers and drops,
//! and the `flag` label stops at its cap. Exposures: experiment rules log
//! through the experiments crate's sink, once per user.

use std::sync::{Arc, Barrier};
use std::time::Duration;

use flightdeck_experiments::Context;
use flightdeck_flags::{FeatureFlagManager, FlagSet};
use flightdeck_obs_core::LocalPrometheus;
use serde_json::json;

use crate::eventually;

const FLAGS: &str = r#"
flags:
  - id: hybrid
    rollout_percentage: 25
    targeting:
      attributes: {country: {$in: [US, CA]}, age: {$gt: 18}, plan: {$ne: free}}
  - id: ranker
    default: bm25
    variants:
      - {key: bm25, value: "bm25", weight: 1}
      - {key: colbert, value: "colbert", weight: 1}
"#;

fn flags() -> FlagSet {
    FlagSet::parse("flags.yaml", FLAGS, None).unwrap()
}

fn user(i: usize) -> Context {
    Context::new(json!({"id": format!("u{i}"), "country": "US", "age": 30, "plan": "pro"}))
}

/// The sum of `flag`'s evaluation counters in `text`, over every variant.
fn total(text: &str, flag: &str) -> u64 {
    text.lines()
        .filter(|l| {
            l.starts_with("flightdeck_flag_evaluations_total{")
                && l.contains(&format!("flag=\"{flag}\""))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[test]
fn eight_threads_across_reloads_are_counted_exactly() {
    let (local, exposition) = LocalPrometheus::new();
    let m = FeatureFlagManager::with_flags(flags());
    let start = Barrier::new(8);
    std::thread::scope(|s| {
        for t in 0..8 {
            let (m, local, start) = (&m, &local, &start);
            s.spawn(move || {
                local.scoped(|| {
                    start.wait();
                    for i in 0..5_000 {
                        m.is_enabled("hybrid", &user(t * 5_000 + i));
                        m.evaluate("ranker", &user(i));
                        if t == 0 && i % 1_000 == 500 {
                            // Every thread moves to a new snapshot (and a new
                            // block of counts) while the others count.
                            m.replace(flags());
                        }
                    }
                });
            });
        }
    });
    m.flush_counts();
    let text = local.scoped(|| exposition.render());
    assert_eq!(total(&text, "hybrid"), 40_000, "{text}");
    assert_eq!(total(&text, "ranker"), 40_000, "{text}");
    // A second flush finds nothing new.
    m.flush_counts();
    let again = local.scoped(|| exposition.render());
    assert_eq!(total(&again, "hybrid"), 40_000, "{again}");
}

#[test]
fn counts_are_published_without_a_flush() {
    let (local, exposition) = LocalPrometheus::new();
    let m = FeatureFlagManager::with_flags(flags());
    local.scoped(|| {
        for i in 0..10 {
            m.is_enabled("hybrid", &user(i));
        }
    });
    eventually("the publisher", Duration::from_secs(10), || {
        total(&local.scoped(|| exposition.render()), "hybrid") == 10
    });
}

#[test]
fn a_dropped_manager_publishes_what_live_threads_counted() {
    let (local, exposition) = LocalPrometheus::new();
    let local = Arc::new(local);
    let m = Arc::new(FeatureFlagManager::with_flags(flags()));
    let (counted, checked) = (Arc::new(Barrier::new(2)), Arc::new(Barrier::new(2)));
    let worker = {
        let (m, local, counted, checked) =
            (m.clone(), local.clone(), counted.clone(), checked.clone());
        std::thread::spawn(move || {
            local.scoped(|| {
                for i in 0..7 {
                    m.is_enabled("hybrid", &user(i));
                }
            });
            drop(m);
            counted.wait();
            // The thread still holds its counts while the manager drops.
            checked.wait();
        })
    };
    counted.wait();
    // The last handle: dropping it publishes, before any publisher tick.
    drop(m);
    let text = local.scoped(|| exposition.render());
    checked.wait();
    worker.join().unwrap();
    assert_eq!(total(&text, "hybrid"), 7, "{text}");
}

#[test]
fn a_second_manager_on_the_same_thread_counts_too() {
    let (local, exposition) = LocalPrometheus::new();
    let first = FeatureFlagManager::with_flags(flags());
    let second = FeatureFlagManager::with_flags(
        FlagSet::parse("other.yaml", "flags:\n  - id: other\n", None).unwrap(),
    );
    local.scoped(|| {
        for i in 0..10 {
            // The thread caches the first manager's snapshot; the second
            // takes the shared path, which counts directly.
            first.is_enabled("hybrid", &user(i));
            second.is_enabled("other", &user(i));
        }
    });
    first.flush_counts();
    second.flush_counts();
    let text = local.scoped(|| exposition.render());
    assert_eq!(total(&text, "hybrid"), 10, "{text}");
    assert_eq!(total(&text, "other"), 10, "{text}");
}

#[test]
fn experiment_exposures_go_to_the_sink_once_per_user() {
    use flightdeck_experiments::{ExposureLogger, InMemoryExposureSink};
    let sink = Arc::new(InMemoryExposureSink::new());
    let m = FeatureFlagManager::with_flags(flags())
        .with_exposures(Arc::new(ExposureLogger::new(sink.clone())));
    let mut served = std::collections::BTreeMap::new();
    for round in 0..3 {
        for i in 0..20 {
            let e = m.evaluate("ranker", &user(i));
            let key = e.variation_key.clone().expect("an experiment decided");
            if round == 0 {
                served.insert(format!("u{i}"), key);
            } else {
                assert_eq!(served[&format!("u{i}")], key, "u{i} changed variation");
            }
        }
        // Boolean flags run no experiment, so they log nothing.
        m.is_enabled("hybrid", &user(round));
    }
    let exposures = sink.exposures();
    // One per user, however often they were evaluated.
    assert_eq!(exposures.len(), 20, "{exposures:?}");
    for x in &exposures {
        assert_eq!(x.experiment, "ranker");
        assert_eq!(x.feature_id.as_deref(), Some("ranker"));
        assert_eq!(served[&x.hash_value], x.variation_key, "{x:?}");
    }
}

#[test]
fn flag_labels_stop_at_the_cap_and_the_rest_count_as_other() {
    use flightdeck_flags::DEFAULT_FLAG_LABEL_CAP;
    let n = DEFAULT_FLAG_LABEL_CAP + 10;
    let mut text = String::from("flags:\n");
    for i in 0..n {
        text.push_str(&format!("  - id: f{i}\n"));
    }
    let (local, exposition) = LocalPrometheus::new();
    let m = FeatureFlagManager::with_flags(FlagSet::parse("many.yaml", &text, None).unwrap());
    local.scoped(|| {
        for i in 0..n {
            m.is_enabled(&format!("f{i}"), &user(i));
        }
    });
    m.flush_counts();
    let rendered = local.scoped(|| exposition.render());
    let labels: std::collections::BTreeSet<&str> = rendered
        .lines()
        .filter(|l| l.starts_with("flightdeck_flag_evaluations_total{"))
        .filter_map(|l| l.split("flag=\"").nth(1)?.split('"').next())
        .collect();
    assert_eq!(labels.len(), DEFAULT_FLAG_LABEL_CAP + 1, "{labels:?}");
    assert!(labels.contains("other"));
    assert_eq!(total(&rendered, "other"), 10, "{rendered}");
    let all: u64 = labels.iter().map(|l| total(&rendered, l)).sum();
    assert_eq!(all, n as u64);
}

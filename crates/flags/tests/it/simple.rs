//! The simple format compiles to the same engine: rollouts, targeting,
//! variants, prerequisites, disabled flags; and `is_enabled` allocates nothing.

use flightdeck_experiments::{Context, FeatureSource};
use flightdeck_flags::{FeatureFlagManager, FlagDefinition, FlagSet};
use serde_json::json;

const FLAGS: &str = r#"
flags:
  - id: search-v2
    description: The new index
    owner: search
    expires: 2099-01-01
  - id: hybrid
    rollout_percentage: 25
    targeting:
      user_ids: [vip]
      groups: [beta]
      attributes: {country: {$in: [US, CA]}, age: {$gt: 18}, plan: {$ne: free}}
    depends_on: [search-v2]
  - id: ranker
    default: bm25
    variants:
      - {key: bm25, value: "bm25", weight: 1}
      - {key: colbert, value: "colbert", weight: 1}
  - id: off-for-now
    enabled: false
"#;

fn manager() -> FeatureFlagManager {
    FeatureFlagManager::with_flags(FlagSet::parse("flags.yaml", FLAGS, None).unwrap())
}

fn eligible(i: usize) -> Context {
    Context::new(json!({"id": format!("u{i}"), "country": "US", "age": 30, "plan": "pro"}))
}

#[test]
fn a_25_percent_rollout_turns_on_a_quarter_of_eligible_users() {
    let m = manager();
    let on = (0..20_000)
        .filter(|i| m.is_enabled("hybrid", &eligible(*i)))
        .count();
    assert!((4_600..5_400).contains(&on), "{on} of 20000");
    // Ineligible users are off whatever their bucket.
    let fr = Context::new(json!({"id": "u1", "country": "FR", "age": 30, "plan": "pro"}));
    assert!(!m.is_enabled("hybrid", &fr));
    // Listed users and groups are always on.
    assert!(m.is_enabled("hybrid", &Context::new(json!({"id": "vip"}))));
    let beta = Context::new(json!({"id": "x", "groups": ["staff", "beta"]}));
    let e = m.evaluate("hybrid", &beta);
    assert!(e.on);
    assert_eq!(
        (e.source, e.rule_id.as_str()),
        (FeatureSource::Force, "groups")
    );
}

#[test]
fn prerequisites_gate_dependents() {
    let defs = vec![
        FlagDefinition::new("base").with_enabled(false),
        FlagDefinition::new("child").with_dependency("base"),
    ];
    let m = FeatureFlagManager::with_flags(FlagSet::from_definitions(&defs).unwrap());
    let e = m.evaluate("child", &Context::for_user("u"));
    assert!(!e.on);
    assert_eq!(e.source, FeatureSource::Prerequisite);
}

#[test]
fn variants_split_and_the_default_names_a_variant() {
    let m = manager();
    let mut counts = std::collections::BTreeMap::new();
    for i in 0..10_000 {
        let e = m.evaluate("ranker", &Context::for_user(&format!("u{i}")));
        assert_eq!(e.source, FeatureSource::Experiment);
        *counts.entry(e.variation_key.unwrap()).or_insert(0) += 1;
        assert_eq!(
            m.get_string("ranker", &Context::for_user(&format!("u{i}")), "x"),
            e.value.as_str().unwrap()
        );
    }
    assert!((4_700..5_300).contains(&counts["bm25"]), "{counts:?}");
    let e = m.evaluate("off-for-now", &Context::for_user("u"));
    assert_eq!((e.on, e.source), (false, FeatureSource::Disabled));
}

#[test]
fn unknown_flags_return_the_callers_default() {
    let m = manager();
    let ctx = Context::for_user("u");
    assert!(!m.is_enabled("nope", &ctx));
    assert!(m.get_bool("nope", &ctx, true));
    assert_eq!(m.get_string("nope", &ctx, "dflt"), "dflt");
    assert_eq!(m.get_number("nope", &ctx, 2.5), 2.5);
    assert_eq!(
        m.evaluate("nope", &ctx).source,
        FeatureSource::UnknownFeature
    );
    // Wrong type: the default too.
    assert_eq!(m.get_number("ranker", &ctx, 7.0), 7.0);
}

#[test]
fn is_enabled_allocates_nothing() {
    let m = manager();
    let ctxs: Vec<Context> = (0..100).map(eligible).collect();
    // First evaluations register the flag's counters.
    for c in &ctxs {
        m.is_enabled("hybrid", c);
    }
    let mut on = 0;
    let info = allocation_counter::measure(|| {
        for c in &ctxs {
            on += usize::from(m.is_enabled("hybrid", c));
        }
    });
    assert!(on > 0);
    assert_eq!(info.count_total, 0, "{info:?}");
}

#[test]
fn managers_used_in_turn_on_one_thread_allocate_nothing() {
    // Each thread caches the snapshot of one manager; a second manager used
    // on the same thread takes the shared path, which must not allocate
    // either (nor evict the first and allocate on every switch).
    let (a, b) = (manager(), manager());
    b.kill("search-v2", "test", "b differs from a").unwrap();
    let ctxs: Vec<Context> = (0..100).map(eligible).collect();
    for c in &ctxs {
        a.is_enabled("hybrid", c);
        b.is_enabled("hybrid", c);
    }
    let (mut on_a, mut on_b) = (0, 0);
    let info = allocation_counter::measure(|| {
        for c in &ctxs {
            on_a += usize::from(a.is_enabled("hybrid", c));
            on_b += usize::from(b.is_enabled("hybrid", c));
        }
    });
    assert_eq!(info.count_total, 0, "{info:?}");
    // b's dependency is killed, so b serves nothing; a is unaffected.
    assert!(on_a > 0);
    assert_eq!(on_b, 0);
}

#[test]
fn a_reload_is_seen_by_threads_that_cached_the_old_configuration() {
    let m = std::sync::Arc::new(manager());
    let ctx = eligible(1);
    assert!(m.is_enabled("search-v2", &ctx));
    // Another thread caches the current configuration too, then waits.
    let (cached_tx, cached_rx) = std::sync::mpsc::channel();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let other = {
        let m = m.clone();
        std::thread::spawn(move || {
            let ctx = eligible(1);
            cached_tx.send(m.is_enabled("search-v2", &ctx)).unwrap();
            go_rx.recv().unwrap();
            m.is_enabled("search-v2", &ctx)
        })
    };
    assert!(cached_rx.recv().unwrap(), "before the reload");
    m.reload_from(
        "flags.yaml",
        "flags:\n  - id: search-v2\n    enabled: false\n",
        None,
    )
    .unwrap();
    assert!(!m.is_enabled("search-v2", &ctx), "the reloading thread");
    go_tx.send(()).unwrap();
    assert!(!other.join().unwrap(), "another thread");
}

#[test]
fn a_new_manager_on_a_thread_is_served_its_own_configuration() {
    // The first manager is gone: its cached configuration must not answer
    // for the next one.
    let ctx = eligible(1);
    {
        let first = manager();
        assert!(first.is_enabled("search-v2", &ctx));
    }
    let second = FeatureFlagManager::with_flags(
        FlagSet::parse(
            "flags.yaml",
            "flags:\n  - id: search-v2\n    enabled: false\n",
            None,
        )
        .unwrap(),
    );
    assert!(!second.is_enabled("search-v2", &ctx));
    assert!(!second.is_enabled("hybrid", &ctx));
}

#[test]
fn register_flag_keeps_earlier_registrations() {
    let m = FeatureFlagManager::new();
    m.register_flag(FlagDefinition::new("a")).unwrap();
    m.register_flag(FlagDefinition::new("b").with_rollout(0.0))
        .unwrap();
    assert!(m.is_enabled_for_user("a", "u"));
    assert!(!m.is_enabled_for_user("b", "u"));
    let err = m
        .register_flag(FlagDefinition::new("c").with_rollout(150.0))
        .unwrap_err();
    assert!(err.to_string().contains("rollout_percentage 150"), "{err}");
    assert_eq!(m.flag_keys(), vec!["a", "b"]);
}

#[test]
fn evaluations_are_counted_by_flag_and_variant() {
    let (local, exposition) = flightdeck_obs_core::LocalPrometheus::new();
    let m = manager();
    local.scoped(|| {
        for i in 0..10 {
            m.is_enabled("hybrid", &eligible(i));
            m.evaluate("ranker", &Context::for_user(&format!("u{i}")));
        }
        m.is_enabled("off-for-now", &Context::for_user("u"));
    });
    m.flush_counts();
    let text = local.scoped(|| exposition.render());
    let count = |flag: &str, variant: &str| -> u64 {
        text.lines()
            .find(|l| {
                l.starts_with("flightdeck_flag_evaluations_total{")
                    && l.contains(&format!("flag=\"{flag}\""))
                    && l.contains(&format!("variant=\"{variant}\""))
            })
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or(0)
    };
    assert_eq!(
        count("hybrid", "force") + count("hybrid", "defaultValue"),
        10,
        "{text}"
    );
    assert_eq!(
        count("ranker", "bm25") + count("ranker", "colbert"),
        10,
        "{text}"
    );
    assert_eq!(count("off-for-now", "disabled"), 1, "{text}");
}

/// The simple format evaluates exactly as the GrowthBook payload that
/// `docs/flags.md` says each flag stands for (boolean flags and flags with
/// variants are built as typed rules, not through that JSON).
#[test]
fn simple_flags_evaluate_as_the_payload_they_map_to() {
    let simple = r#"
flags:
  - id: base
    targeting:
      attributes: {plan: {$ne: free}}
  - id: hybrid
    rollout_percentage: 40
    targeting:
      user_ids: [user-3, user-8]
      groups: [beta]
      attributes: {country: {$in: [US, CA]}}
    depends_on: [base]
  - id: ranker
    default: bm25
    rollout_percentage: 70
    targeting:
      attributes: {country: {$in: [US, CA]}}
    variants:
      - {key: bm25, value: "bm25", weight: 2}
      - {key: colbert, value: "colbert", weight: 1}
      - {key: hybrid, value: "hybrid", weight: 1}
  - id: limits
    default: small
    targeting:
      user_ids: [user-5]
      groups: [beta]
      attributes: {country: FR}
    depends_on: [base]
    variants:
      - {key: small, value: {k: 10}}
      - {key: large, value: {k: 100}}
"#;
    let gate = json!([{"id": "base", "condition": {"value": {"$nin": [false, null, 0, ""]}}, "gate": true}]);
    let payload = json!({"features": {
        "base": {"defaultValue": false, "rules": [
            {"id": "rollout", "condition": {"plan": {"$ne": "free"}}, "force": true},
        ]},
        "hybrid": {"defaultValue": false, "rules": [
            {"id": "user_ids", "condition": {"id": {"$in": ["user-3", "user-8"]}}, "force": true, "parentConditions": gate},
            {"id": "groups", "condition": {"groups": {"$in": ["beta"]}}, "force": true, "parentConditions": gate},
            {"id": "rollout", "condition": {"country": {"$in": ["US", "CA"]}}, "coverage": 0.4,
             "hashAttribute": "id", "hashVersion": 2, "seed": "hybrid", "force": true, "parentConditions": gate},
        ]},
        "ranker": {"defaultValue": "bm25", "rules": [
            {"id": "variants", "key": "ranker", "seed": "ranker", "hashVersion": 2,
             "variations": ["bm25", "colbert", "hybrid"], "weights": [0.5, 0.25, 0.25],
             "meta": [{"key": "bm25"}, {"key": "colbert"}, {"key": "hybrid"}], "coverage": 0.7,
             "condition": {"$or": [{"country": {"$in": ["US", "CA"]}}]}},
        ]},
        "limits": {"defaultValue": {"k": 10}, "rules": [
            {"id": "variants", "key": "limits", "seed": "limits", "hashVersion": 2,
             "variations": [{"k": 10}, {"k": 100}], "weights": [0.5, 0.5],
             "meta": [{"key": "small"}, {"key": "large"}], "coverage": 1.0,
             "condition": {"$or": [{"id": {"$in": ["user-5"]}}, {"groups": {"$in": ["beta"]}}, {"country": "FR"}]},
             "parentConditions": gate},
        ]},
    }});
    let ours = FeatureFlagManager::with_flags(FlagSet::parse("flags.yaml", simple, None).unwrap());
    let theirs = FeatureFlagManager::with_flags(
        FlagSet::parse("payload.json", &payload.to_string(), None).unwrap(),
    );
    let mut sources = std::collections::BTreeSet::new();
    for i in 0..3000 {
        let (country, plan) = (
            ["US", "CA", "FR", "DE"][i % 4],
            ["free", "pro", "team"][i % 3],
        );
        let groups = if i % 7 == 0 {
            json!(["beta"])
        } else {
            json!([])
        };
        let ctx = Context::new(json!({
            "id": format!("user-{i}"),
            "country": country,
            "plan": plan,
            "groups": groups,
        }));
        for key in ["base", "hybrid", "ranker", "limits"] {
            let (a, b) = (ours.evaluate(key, &ctx), theirs.evaluate(key, &ctx));
            assert_eq!(
                (&a.value, a.source, &a.rule_id, &a.variation_key),
                (&b.value, b.source, &b.rule_id, &b.variation_key),
                "{key} for user-{i}"
            );
            sources.insert((key, format!("{:?}", a.source)));
        }
    }
    for (key, source) in [
        ("hybrid", "Force"),
        ("hybrid", "DefaultValue"),
        ("hybrid", "Prerequisite"),
        ("ranker", "Experiment"),
        ("ranker", "DefaultValue"),
        ("limits", "Experiment"),
        ("limits", "DefaultValue"),
        ("limits", "Prerequisite"),
    ] {
        assert!(
            sources.contains(&(key, source.to_owned())),
            "{key} never {source}: {sources:?}"
        );
    }
}

/// A simple-format file of `n` flags, each depending on the next.
fn dependency_chain(n: usize) -> String {
    let mut text = String::from("flags:\n");
    for i in 0..n {
        text.push_str(&format!("  - id: f{i}\n    rollout_percentage: 100\n"));
        if i + 1 < n {
            text.push_str(&format!("    depends_on: [f{}]\n", i + 1));
        }
    }
    text
}

#[test]
fn validation_and_evaluation_agree_on_the_longest_dependency_chain() {
    use flightdeck_flags::MAX_DEPENDENCY_CHAIN;
    let ctx = Context::for_user("u");
    // The longest chain validation accepts evaluates normally...
    let set = FlagSet::parse("chain.yaml", &dependency_chain(MAX_DEPENDENCY_CHAIN), None).unwrap();
    let m = FeatureFlagManager::with_flags(set);
    let e = m.evaluate("f0", &ctx);
    assert!(e.on, "{e:?}");
    assert_ne!(e.source, FeatureSource::CyclicPrerequisite);
    // ...and one flag more is refused, naming the chain.
    let err = FlagSet::parse(
        "chain.yaml",
        &dependency_chain(MAX_DEPENDENCY_CHAIN + 1),
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains(&format!("chain of {} flags", MAX_DEPENDENCY_CHAIN + 1)),
        "{err}"
    );
    assert!(err.contains("chain.yaml:4:5:"), "{err}");
    // A chain of 10,000 is an error, not a stack overflow.
    let err = FlagSet::parse("chain.yaml", &dependency_chain(10_000), None).unwrap_err();
    assert!(err.to_string().contains("chain of 10000 flags"), "{err}");
}

#[test]
fn duplicate_keys_are_refused_in_yaml_as_in_json() {
    for text in [
        "flags:\n  - id: a\n    id: b\n    rollout_percentage: 5\n",
        "flags:\n  - id: a\n    rollout_percentage: 5\n    targeting:\n      attributes: {country: US, country: FR}\n",
        "flags:\n  - id: a\n    rollout_percentage: 5\n    targeting:\n      attributes:\n        country: US\n        country: FR\n",
    ] {
        let err = FlagSet::parse("d.yaml", text, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("duplicate"), "{text}: {err}");
        assert!(err.contains("d.yaml:"), "{err}");
    }
    let json = r#"{"flags": [{"id": "a", "id": "b", "rollout_percentage": 5}]}"#;
    let err = FlagSet::parse("d.json", json, None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("duplicate"), "{err}");
}

#[test]
fn a_deeply_nested_file_is_an_error_naming_the_line() {
    let text = format!(
        "flags:\n  - id: a\n    targeting:\n      attributes: {}1{}\n",
        "{$not: ".repeat(10_000),
        "}".repeat(10_000)
    );
    let err = FlagSet::parse("deep.yaml", &text, None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("deep.yaml:4:") && err.contains("nested deeper than 128"),
        "{err}"
    );
}

#[test]
fn a_syntax_error_at_the_start_of_a_line_is_located_at_column_1() {
    // Found by the flags_file fuzz target: serde_json says column 0 here.
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fuzz/regressions/flags_file/column-zero"
    ))
    .unwrap();
    let err = FlagSet::parse("f.json", &text, None).unwrap_err();
    for p in err.problems() {
        assert!(p.line >= 1 && p.column >= 1, "{p}");
    }
}

//! Kill switches: one call, every rule overridden, an audit trail, and no
//! torn reads while 8 threads evaluate.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};

use flightdeck_experiments::{Context, FeatureSource};
use flightdeck_flags::{
    AuditAction, FeatureFlagManager, FlagSet, KillError, KillStore, read_audit_log,
};
use serde_json::json;

const FLAGS: &str = r#"
flags:
  - id: ranker
    default: bm25
    variants:
      - {key: bm25, value: {"name": "bm25", "k": 10}}
      - {key: colbert, value: {"name": "colbert", "k": 20}}
"#;

#[test]
fn killing_while_eight_threads_evaluate_never_tears() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flags.yaml");
    std::fs::write(&path, FLAGS).unwrap();
    let manager = Arc::new(
        FeatureFlagManager::with_flags(FlagSet::load(&path, None).unwrap())
            .with_kill_store(KillStore::beside(&path))
            .unwrap(),
    );
    let stop = Arc::new(AtomicBool::new(false));
    // Evaluations seen so far, killed and live, across the threads: the
    // test waits on these, not on time.
    let seen = Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
    let start = Arc::new(Barrier::new(9));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let (m, stop, seen, start) =
                (manager.clone(), stop.clone(), seen.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                let (mut killed, mut live) = (0u64, 0u64);
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let ctx = Context::for_user(&format!("t{t}-u{}", i % 1000));
                    let e = m.evaluate("ranker", &ctx);
                    match e.source {
                        FeatureSource::KillSwitch => {
                            // Killed: the off value and the record, together.
                            assert_eq!(e.value, json!({"name": "bm25", "k": 10}));
                            let k = e.kill.expect("a kill carries its record");
                            assert_eq!(k.actor, "oncall");
                            assert!(e.variation_id.is_none());
                            killed += 1;
                            seen.0.fetch_add(1, Ordering::Relaxed);
                        }
                        FeatureSource::Experiment => {
                            let key = e.variation_key.clone().unwrap();
                            assert_eq!(e.value["name"], json!(key), "value and variation agree");
                            assert!(e.kill.is_none());
                            live += 1;
                            seen.1.fetch_add(1, Ordering::Relaxed);
                        }
                        other => panic!("unexpected source {other:?}"),
                    }
                }
                (killed, live)
            })
        })
        .collect();
    start.wait();
    let wait_for = |what: &str, n: &AtomicU64| {
        let until = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while n.load(Ordering::Relaxed) == 0 {
            assert!(
                std::time::Instant::now() < until,
                "no {what} evaluation in 20 s"
            );
            std::thread::yield_now();
        }
    };
    wait_for("live", &seen.1);
    for round in 0..200 {
        manager
            .kill("ranker", "oncall", &format!("round {round}: p99 doubled"))
            .unwrap();
        std::thread::yield_now();
        manager.restore("ranker", "oncall", "recovered").unwrap();
    }
    manager.kill("ranker", "oncall", "final").unwrap();
    let before = seen.0.load(Ordering::Relaxed);
    let until = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while seen.0.load(Ordering::Relaxed) == before {
        assert!(
            std::time::Instant::now() < until,
            "nobody saw the final kill"
        );
        std::thread::yield_now();
    }
    stop.store(true, Ordering::Relaxed);
    let (killed, live) = threads
        .into_iter()
        .map(|t| t.join().unwrap())
        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    assert!(killed > 0 && live > 0, "killed {killed}, live {live}");

    // The audit log has every flip, in order, with who and why.
    let audit = read_audit_log(&path.with_file_name("flags.yaml.audit.jsonl")).unwrap();
    assert_eq!(audit.len(), 401);
    assert_eq!(audit[0].action, AuditAction::Kill);
    assert_eq!(audit[0].reason, "round 0: p99 doubled");
    assert_eq!(audit[1].action, AuditAction::Restore);
    assert!(
        audit
            .windows(2)
            .all(|w| w[0].timestamp_ms <= w[1].timestamp_ms)
    );

    // A new process sees the kill from the kill file.
    let again = FeatureFlagManager::with_flags(FlagSet::load(&path, None).unwrap())
        .with_kill_store(KillStore::beside(&path))
        .unwrap();
    let e = again.evaluate("ranker", &Context::for_user("u"));
    assert_eq!(e.source, FeatureSource::KillSwitch);
    assert_eq!(e.kill.unwrap().reason, "final");
}

#[test]
fn kill_needs_a_known_flag_and_a_reason() {
    let m = FeatureFlagManager::with_flags(FlagSet::parse("f.yaml", FLAGS, None).unwrap());
    assert!(matches!(
        m.kill("nope", "me", "why"),
        Err(KillError::UnknownFlag(_))
    ));
    assert!(matches!(
        m.kill("ranker", "me", "  "),
        Err(KillError::MissingReason)
    ));
    assert!(m.kills().is_empty());
}

#[test]
fn a_kill_switch_in_the_file_turns_the_flag_off() {
    let m = FeatureFlagManager::with_flags(
        FlagSet::parse("f.yaml", "flags:\n  - id: a\n    kill_switch: true\n", None).unwrap(),
    );
    let e = m.evaluate("a", &Context::for_user("u"));
    assert_eq!((e.on, e.source), (false, FeatureSource::KillSwitch));
}

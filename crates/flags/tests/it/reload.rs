//! Live reload from a file: a corrupted write changes nothing served and is
//! counted; a valid one takes effect within the poll interval.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use flightdeck_experiments::Context;

use crate::eventually;
use flightdeck_flags::{FeatureFlagManager, FileSource};
use flightdeck_obs_core::LocalPrometheus;

const POLL: Duration = Duration::from_millis(50);

fn flags(rollout_on: bool) -> String {
    format!(
        "flags:\n  - id: feature\n    rollout_percentage: {}\n",
        if rollout_on { 100 } else { 0 }
    )
}

#[test]
fn a_corrupted_file_changes_nothing_and_a_valid_one_applies_within_the_interval() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flags.yaml");
    std::fs::write(&path, flags(true)).unwrap();
    let (local, exposition) = LocalPrometheus::new();
    let manager = Arc::new(local.scoped(FeatureFlagManager::new));
    let source = FileSource::start(&path, manager.clone(), POLL, None).unwrap();
    let ctx = Context::for_user("u1");
    assert!(manager.is_enabled("feature", &ctx));

    // Readers run throughout and must never see anything but `on`.
    let stop = Arc::new(AtomicBool::new(false));
    let wrong = Arc::new(AtomicU64::new(0));
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let (m, stop, wrong) = (manager.clone(), stop.clone(), wrong.clone());
            std::thread::spawn(move || {
                let ctx = Context::for_user("u1");
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    if !m.is_enabled("feature", &ctx) {
                        wrong.fetch_add(1, Ordering::Relaxed);
                    }
                    n += 1;
                }
                n
            })
        })
        .collect();

    // Corrupt YAML, a type error, and an invalid value: each rejected.
    for bad in [
        "flags:\n  - id: feature\n    rollout_percentage: [\n",
        "flags:\n  - id: feature\n    rollout_percentage: lots\n",
        "flags:\n  - id: feature\n    rollout_percentage: 0\n    depends_on: [ghost]\n",
    ] {
        let before = manager.health().failures();
        std::fs::write(&path, bad).unwrap();
        eventually("the bad write to be seen", Duration::from_secs(5), || {
            manager.health().failures() > before
        });
        assert!(manager.is_enabled("feature", &ctx));
    }
    // Throughout the corrupted writes, no reader saw anything but `on`.
    stop.store(true, Ordering::Relaxed);
    let reads: u64 = readers.into_iter().map(|r| r.join().unwrap()).sum();
    assert!(reads > 1000, "{reads} reads");
    assert_eq!(wrong.load(Ordering::Relaxed), 0, "reads that were not `on`");
    let text = local.scoped(|| exposition.render());
    assert!(
        text.contains("flightdeck_flags_reload_failures_total 3"),
        "{text}"
    );
    assert!(manager.health().last_error().unwrap().contains("ghost"));

    // A valid change: applied within a few poll intervals.
    let written = Instant::now();
    std::fs::write(&path, flags(false)).unwrap();
    eventually("the valid write to apply", Duration::from_secs(5), || {
        !manager.is_enabled("feature", &ctx)
    });
    let took = written.elapsed();
    assert!(took < POLL * 4, "applied after {took:?}");
    assert!(manager.health().last_error().is_none());
    source.stop();
}

#[test]
fn a_file_that_is_invalid_at_start_up_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flags.yaml");
    std::fs::write(&path, "flags:\n  - id: x\n    rollout_percentage: 101\n").unwrap();
    let manager = Arc::new(FeatureFlagManager::new());
    let err = FileSource::start(&path, manager.clone(), POLL, None).unwrap_err();
    assert!(err.to_string().contains("flags.yaml:3:5:"), "{err}");
    assert!(!manager.is_ready());
}

#[test]
fn reloading_ten_thousand_flags_keeps_evaluations_running() {
    let mut text = String::from("flags:\n");
    for i in 0..10_000 {
        text.push_str(&format!(
            "  - id: flag-{i}\n    rollout_percentage: 50\n    targeting:\n      attributes: {{country: {{$in: [US, CA]}}}}\n"
        ));
    }
    let manager = Arc::new(FeatureFlagManager::new());
    manager.reload_from("big.yaml", &text, None).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (m, stop) = (manager.clone(), stop.clone());
        std::thread::spawn(move || {
            let ctx = Context::new(serde_json::json!({"id": "u", "country": "US"}));
            let expected = m.evaluate("flag-77", &ctx);
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                // The same answer from every configuration, old or new:
                // never unknown, never a half-built set.
                assert_eq!(m.evaluate("flag-77", &ctx), expected);
                n += 1;
            }
            n
        })
    };
    for _ in 0..3 {
        manager.reload_from("big.yaml", &text, None).unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    let reads = reader.join().unwrap();
    assert!(reads > 10, "{reads} evaluations during three reloads");
    assert_eq!(manager.flag_keys().len(), 10_000);
}

#[test]
fn a_kill_from_another_process_reaches_a_watching_service() {
    use flightdeck_flags::{FlagSet, KillStore};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flags.yaml");
    std::fs::write(&path, flags(true)).unwrap();
    let service = Arc::new(
        FeatureFlagManager::new()
            .with_kill_store(KillStore::beside(&path))
            .unwrap(),
    );
    let _source = FileSource::start(&path, service.clone(), POLL, None).unwrap();
    let ctx = Context::for_user("u1");
    assert!(service.is_enabled("feature", &ctx));
    // What `flightdeck flags kill` does: its own manager over the same file.
    let cli = FeatureFlagManager::with_flags(FlagSet::load(&path, None).unwrap())
        .with_kill_store(KillStore::beside(&path))
        .unwrap();
    cli.kill("feature", "oncall", "error rate 5%").unwrap();
    eventually(
        "the kill to reach the service",
        Duration::from_secs(5),
        || !service.is_enabled("feature", &ctx),
    );
    cli.restore("feature", "oncall", "fixed").unwrap();
    eventually(
        "the restore to reach the service",
        Duration::from_secs(5),
        || service.is_enabled("feature", &ctx),
    );
}

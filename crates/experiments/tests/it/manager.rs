//! The manager's lifecycle, exposures, results and SRM.

use std::sync::Arc;
use std::time::Duration;

use flightdeck_experiments::{
    Context, Experiment, ExperimentManager, ExposureLogger, FileStickyBucketService,
    InMemoryExposureSink, JsonLinesExposureSink, Lifecycle, ManagerError, ResultsTracker,
    load_experiment_file, read_exposures, srm_from_exposures,
};
use flightdeck_obs_core::ManualClock;
use serde_json::json;

fn two_arm(key: &str) -> Experiment {
    Experiment::from_json(&json!({"key": key, "variations": ["off", "on"]}))
}

#[test]
fn one_user_seen_a_million_times_is_logged_once() {
    let sink = Arc::new(InMemoryExposureSink::new());
    let m = ExperimentManager::new().with_exposures(Arc::new(ExposureLogger::new(sink.clone())));
    m.register_experiment(two_arm("e")).unwrap();
    for _ in 0..1_000_000 {
        m.get_variant("e", "same-user").unwrap();
    }
    let seen = sink.exposures();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].hash_value, "same-user");
    assert_eq!(m.exposure_counts("e").unwrap().iter().sum::<u64>(), 1);
}

#[test]
fn deduplication_forgets_after_the_window() {
    let sink = Arc::new(InMemoryExposureSink::new());
    let clock = ManualClock::new(1_000_000_000);
    let logger = Arc::new(ExposureLogger::with_limits(
        sink.clone(),
        1024,
        Duration::from_secs(60),
        Arc::new(clock.clone()),
    ));
    let exp = two_arm("e");
    let ctx = Context::for_user("u").with_exposures(logger);
    exp.run(&ctx);
    clock.advance_nanos(30_000_000_000);
    exp.run(&ctx);
    assert_eq!(sink.exposures().len(), 1, "within the window");
    clock.advance_nanos(200_000_000_000);
    exp.run(&ctx);
    assert_eq!(sink.exposures().len(), 2, "after the window");
}

#[test]
fn the_dedup_memory_is_bounded() {
    let sink = Arc::new(InMemoryExposureSink::new());
    let logger = Arc::new(ExposureLogger::with_limits(
        sink.clone(),
        1_000,
        Duration::from_secs(3600),
        Arc::new(ManualClock::new(1)),
    ));
    let exp = two_arm("e");
    for i in 0..20_000 {
        exp.run(&Context::for_user(&format!("u{i}")).with_exposures(logger.clone()));
    }
    // The first user has long been forgotten: logged again.
    exp.run(&Context::for_user("u0").with_exposures(logger.clone()));
    assert_eq!(sink.exposures().len(), 20_001);
}

#[test]
fn lifecycle_draft_running_stopped() {
    let sink = Arc::new(InMemoryExposureSink::new());
    let m = ExperimentManager::new().with_exposures(Arc::new(ExposureLogger::new(sink.clone())));
    m.register_experiment(Experiment::from_json(&json!({
        "key": "e", "variations": ["a", "b", "c"], "status": "draft",
    })))
    .unwrap();
    assert_eq!(m.lifecycle("e").unwrap(), Lifecycle::Draft);
    let v = m.get_variant("e", "u1").unwrap();
    assert_eq!((v.variation_id, v.in_experiment), (0, false));
    assert!(!m.record_result("e", "u1", &[("x", 1.0)]).unwrap());
    m.start("e").unwrap();
    assert!(m.get_variant("e", "u1").unwrap().in_experiment);
    assert_eq!(sink.exposures().len(), 1);
    assert_eq!(
        m.stop("e", 7),
        Err(ManagerError::NoSuchVariation {
            id: "e".into(),
            index: 7
        })
    );
    m.stop("e", 2).unwrap();
    for i in 0..50 {
        let v = m.get_variant("e", &format!("user{i}")).unwrap();
        assert_eq!(
            (v.variation_id, v.in_experiment, v.value.clone()),
            (2, false, json!("c"))
        );
    }
    assert_eq!(
        sink.exposures().len(),
        1,
        "stopped experiments record no exposures"
    );
    assert!(matches!(
        m.start("e"),
        Err(ManagerError::BadTransition { .. })
    ));
    assert!(matches!(
        m.register_experiment(two_arm("e")),
        Err(ManagerError::Duplicate(_))
    ));
}

#[test]
fn results_persist_and_replay_to_the_same_analysis() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("results.jsonl");
    let m = ExperimentManager::new().with_results(ResultsTracker::to_file(&path, 4096).unwrap());
    m.register_experiment(two_arm("e")).unwrap();
    let mut recorded = 0;
    for i in 0..2_000 {
        let user = format!("u{i}");
        let v = m.get_variant("e", &user).unwrap();
        // Treatment converts more and spends more.
        let converted = f64::from(u8::from(i % (if v.variation_id == 1 { 3 } else { 5 }) == 0));
        let spend = 10.0 + v.variation_id as f64 * 2.0 + (i % 7) as f64;
        if m.record_result("e", &user, &[("converted", converted), ("spend", spend)])
            .unwrap()
        {
            recorded += 1;
        }
    }
    assert_eq!(recorded, 2_000);
    assert!(m.record_result("e", "u1", &[("spend", f64::NAN)]).is_err());
    m.results().shutdown(Duration::from_secs(5)).unwrap();
    let live = m.results().analyze("e", 0.05).unwrap();
    let replayed = ResultsTracker::replay(&path)
        .unwrap()
        .analyze("e", 0.05)
        .unwrap();
    assert_eq!(live, replayed);
    let spend = live
        .comparisons
        .iter()
        .find(|c| c.metric == "spend")
        .unwrap();
    let t = spend.ttest.unwrap();
    assert!((t.diff - 2.0).abs() < 0.3 && t.p_value < 1e-6, "{t:?}");
    let conv = live
        .comparisons
        .iter()
        .find(|c| c.metric == "converted")
        .unwrap();
    assert!(conv.conversion.unwrap().p_value < 1e-6);
    assert!(live.render_text().contains("spend [1 vs control]"));
}

#[test]
fn a_corrupt_results_line_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.jsonl");
    std::fs::write(&path, "{\"timestamp_ms\":1,\"experiment\":\"e\",\"user_id\":\"u\",\"variation_id\":0,\"variation_key\":\"0\",\"metrics\":{}}\nnot json\n").unwrap();
    let e = ResultsTracker::replay(&path).unwrap_err().to_string();
    assert!(e.contains("r.jsonl:2:"), "{e}");
}

#[test]
fn live_srm_flags_a_broken_split() {
    let sink = Arc::new(InMemoryExposureSink::new());
    let m = ExperimentManager::new().with_exposures(Arc::new(ExposureLogger::new(sink.clone())));
    m.register_experiment(two_arm("e")).unwrap();
    for i in 0..20_000 {
        m.get_variant("e", &format!("u{i}")).unwrap();
    }
    let ok = m.srm("e").unwrap();
    assert!(!ok.mismatch, "{ok:?}");
    // Exposures from the file, where one arm lost a fifth of its events.
    let broken: Vec<_> = sink
        .exposures()
        .into_iter()
        .enumerate()
        .filter(|(i, e)| !(e.variation_id == 1 && i % 5 == 0))
        .map(|(_, e)| e)
        .collect();
    assert!(srm_from_exposures(&broken, &two_arm("e"), 0.001).mismatch);
}

#[test]
fn exposures_go_to_a_jsonl_file_off_the_caller_thread() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("exposures.jsonl");
    let sink = Arc::new(JsonLinesExposureSink::to_file(&path, 10_000).unwrap());
    let logger = Arc::new(ExposureLogger::new(sink.clone()));
    let exp = two_arm("e");
    for i in 0..500 {
        for _ in 0..3 {
            exp.run(&Context::for_user(&format!("u{i}")).with_exposures(logger.clone()));
        }
    }
    sink.shutdown(Duration::from_secs(5)).unwrap();
    let read = read_exposures(&path).unwrap();
    assert_eq!(read.len(), 500);
    assert!(!srm_from_exposures(&read, &exp, 0.001).mismatch);
}

#[test]
fn sticky_buckets_on_disk_keep_users_when_weights_change() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FileStickyBucketService::open(dir.path().join("sticky")).unwrap());
    let before = Experiment::from_json(&json!({
        "key": "e", "variations": ["a", "b"], "weights": [0.5, 0.5],
        "meta": [{"key": "a"}, {"key": "b"}],
    }));
    let after = Experiment::from_json(&json!({
        "key": "e", "variations": ["a", "b"], "weights": [0.1, 0.9],
        "meta": [{"key": "a"}, {"key": "b"}],
    }));
    let users: Vec<String> = (0..200).map(|i| format!("user/{i} é")).collect();
    let first: Vec<usize> = users
        .iter()
        .map(|u| {
            before
                .run(&Context::for_user(u).with_sticky_buckets(store.clone()))
                .variation_id
        })
        .collect();
    // A new process: a fresh service over the same directory.
    let reopened = Arc::new(FileStickyBucketService::open(dir.path().join("sticky")).unwrap());
    let mut moved_without_sticky = 0;
    for (u, v) in users.iter().zip(&first) {
        let ctx = Context::for_user(u).with_sticky_buckets(reopened.clone());
        let r = after.run(&ctx);
        assert_eq!(r.variation_id, *v);
        assert!(r.sticky_bucket_used);
        if after.run(&Context::for_user(u)).variation_id != *v {
            moved_without_sticky += 1;
        }
    }
    assert!(
        moved_without_sticky > 20,
        "the new weights would have moved users"
    );
    // Besides the documents only the directory of lock files (`.locks`).
    let files = std::fs::read_dir(dir.path().join("sticky"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name() != ".locks")
        .count();
    assert_eq!(files, 200, "one file per user, no temporaries left");
}

#[test]
fn experiment_files_load_strictly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("exp.json");
    std::fs::write(
        &path,
        "{\n  \"key\": \"e\",\n  \"variations\": [0, 1],\n  \"coverage\": \"all\"\n}\n",
    )
    .unwrap();
    let e = load_experiment_file(&path).unwrap_err().to_string();
    assert!(e.starts_with(&format!("{}:4:", path.display())), "{e}");
    assert!(e.contains("coverage"), "{e}");
}

#[test]
fn sticky_stores_of_two_processes_keep_each_others_assignments() {
    use flightdeck_experiments::{StickyAssignmentsDocument, StickyBucketService};
    let dir = tempfile::tempdir().unwrap();
    // Two stores on one directory, each with its own cache, as two
    // processes of a service have; 8 threads each save one experiment's
    // assignment for the same user from documents read before any save.
    let a = Arc::new(FileStickyBucketService::open(dir.path()).unwrap());
    let b = Arc::new(FileStickyBucketService::open(dir.path()).unwrap());
    let barrier = std::sync::Barrier::new(16);
    std::thread::scope(|s| {
        for i in 0..16 {
            let store = if i % 2 == 0 {
                Arc::clone(&a)
            } else {
                Arc::clone(&b)
            };
            let barrier = &barrier;
            s.spawn(move || {
                let mut doc =
                    store
                        .get_assignments("id", "u1")
                        .unwrap_or(StickyAssignmentsDocument {
                            attribute_name: "id".into(),
                            attribute_value: "u1".into(),
                            assignments: Default::default(),
                        });
                barrier.wait();
                doc.assignments.insert(format!("exp{i}__0"), "1".into());
                store.save_assignments(doc).unwrap();
            });
        }
    });
    let fresh = FileStickyBucketService::open(dir.path()).unwrap();
    let doc = fresh.get_assignments("id", "u1").unwrap();
    assert_eq!(doc.assignments.len(), 16, "{:?}", doc.assignments);
}

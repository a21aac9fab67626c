//! `init` installs nothing until everything fallible has passed: a failed
//! `init` can be retried in the same process. (One test: the subscriber
//! and the metrics recorder are process-wide.)

use std::time::Duration;

use flightdeck::ObservabilitySettings;

#[test]
fn a_failed_init_leaves_the_process_able_to_init_again() {
    let dir = tempfile::tempdir().unwrap();
    // A trace file under a regular file cannot be opened.
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, "x").unwrap();
    let settings = |trace: std::path::PathBuf| ObservabilitySettings {
        tracing_enabled: true,
        metrics_enabled: true,
        structured_logging: true,
        trace_file_path: Some(trace),
        log_file_path: Some(dir.path().join("logs.jsonl")),
        ..Default::default()
    };
    let err = flightdeck::init(settings(blocker.join("traces.jsonl"))).unwrap_err();
    assert!(
        err.to_string().contains("not-a-dir"),
        "names the path: {err}"
    );
    // A bad log level fails after the files opened: still nothing installed.
    let mut bad_level = settings(dir.path().join("traces.jsonl"));
    bad_level.log_level = "info,=nonsense[".into();
    assert!(flightdeck::init(bad_level).is_err());

    // The retry installs everything: the metrics recorder was not taken.
    let guard = flightdeck::init(settings(dir.path().join("traces.jsonl"))).unwrap();
    tracing::info_span!("retried").in_scope(|| tracing::info!("after a failed init"));
    metrics::counter!("flightdeck_test_retried_total").increment(1);
    let page = guard.prometheus().expect("metrics are on").render();
    assert!(page.contains("flightdeck_test_retried_total 1"), "{page}");
    guard.shutdown(Duration::from_secs(5)).unwrap();
    let spans = std::fs::read_to_string(dir.path().join("traces.jsonl")).unwrap();
    assert!(spans.contains("\"retried\""), "{spans}");
    let logs = std::fs::read_to_string(dir.path().join("logs.jsonl")).unwrap();
    assert!(logs.contains("after a failed init"), "{logs}");

    // Now everything is installed, and a second init says so.
    let err = flightdeck::init(settings(dir.path().join("again.jsonl"))).unwrap_err();
    assert!(err.to_string().contains("already"), "{err}");
}

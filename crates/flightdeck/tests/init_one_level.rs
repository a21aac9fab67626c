//! `init` with one plain log level (the common case) filters spans and
//! logs with one global level filter instead of a filter per layer. What
//! reaches the files must be what the per-layer filters let through: info
//! spans and their fields in the lines logged inside them, the same ids in
//! both files, and nothing below the level. (Its own process: `init` is
//! process-wide.)

use std::time::Duration;

use flightdeck::ObservabilitySettings;

#[test]
fn one_plain_level_keeps_spans_logs_and_ids_as_per_layer_filters_did() {
    let dir = tempfile::tempdir().unwrap();
    let settings = ObservabilitySettings {
        tracing_enabled: true,
        metrics_enabled: false,
        structured_logging: true,
        log_level: "info".into(),
        trace_file_path: Some(dir.path().join("traces.jsonl")),
        log_file_path: Some(dir.path().join("logs.jsonl")),
        ..Default::default()
    };
    let guard = flightdeck::init(settings).unwrap();
    tracing::info_span!("outer", tenant = "acme").in_scope(|| {
        tracing::debug_span!("hidden", secret = 1).in_scope(|| {
            tracing::info!(n = 1, "inside a debug span");
        });
        tracing::info_span!("inner", k = 2).in_scope(|| {
            tracing::debug!("below the level");
            tracing::warn!("a warning");
        });
    });
    guard.shutdown(Duration::from_secs(5)).unwrap();

    let spans: Vec<serde_json::Value> = std::fs::read_to_string(dir.path().join("traces.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let names: Vec<&str> = spans.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert!(
        names.contains(&"outer") && names.contains(&"inner"),
        "{names:?}"
    );
    assert!(
        !names.contains(&"hidden"),
        "debug spans stay out at info: {names:?}"
    );

    let logs: Vec<serde_json::Value> = std::fs::read_to_string(dir.path().join("logs.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let messages: Vec<&str> = logs
        .iter()
        .map(|l| l["message"].as_str().unwrap())
        .collect();
    assert_eq!(messages, ["inside a debug span", "a warning"], "{logs:#?}");
    let outer = spans.iter().find(|s| s["name"] == "outer").unwrap();
    let inner = spans.iter().find(|s| s["name"] == "inner").unwrap();
    // The debug span is not there: the line belongs to its info parent.
    assert_eq!(logs[0]["span"], "outer");
    assert_eq!(logs[0]["span_id"], outer["span_id"]);
    assert_eq!(
        logs[0]["span_fields"],
        serde_json::json!({"tenant": "acme"})
    );
    assert_eq!(logs[1]["span"], "inner");
    assert_eq!(logs[1]["span_id"], inner["span_id"]);
    assert_eq!(logs[1]["trace_id"], outer["trace_id"]);
    assert_eq!(
        logs[1]["span_fields"],
        serde_json::json!({"tenant": "acme", "k": 2})
    );
}

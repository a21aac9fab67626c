//! `flightdeck::init` installs process-wide state, so everything that needs
//! it runs in this one test, in order.

use std::time::Duration;

use flightdeck::{CorrelationId, InitError, ObservabilitySettings, RequestScope};
use flightdeck_tests::read_jsonl;

#[test]
fn init_reports_bad_paths_then_wires_spans_logs_and_metrics_together() {
    let dir = tempfile::tempdir().unwrap();

    // 1. An unwritable trace path is an error naming the path, and installs nothing.
    let bad = ObservabilitySettings {
        trace_file_path: Some("/proc/flightdeck-cannot-write/traces.jsonl".into()),
        structured_logging: false,
        ..Default::default()
    };
    let err = flightdeck::init(bad).unwrap_err();
    assert!(
        matches!(err, InitError::Core(flightdeck::obs::InitError::Build(_))),
        "{err:?}"
    );
    assert!(
        !err.is_bad_input(),
        "a file that cannot be opened is a failure to run"
    );
    assert!(
        err.to_string()
            .contains("/proc/flightdeck-cannot-write/traces.jsonl"),
        "{err}"
    );

    // 2. Invalid settings are rejected before anything is installed.
    let bad = ObservabilitySettings {
        trace_sample_rate: 1.5,
        ..Default::default()
    };
    let err = flightdeck::init(bad).unwrap_err();
    assert!(err.to_string().contains("trace_sample_rate"), "{err}");
    assert!(err.is_bad_input(), "{err:?}");

    // 3. A real set-up: log level warn still records info spans, and warn
    //    lines carry the request's ids.
    let traces = dir.path().join("out/traces.jsonl");
    let logs = dir.path().join("out/logs.jsonl");
    let settings = ObservabilitySettings {
        service_name: "e2e-service".into(),
        trace_file_path: Some(traces.clone()),
        log_file_path: Some(logs.clone()),
        log_level: "warn".into(),
        ..Default::default()
    };
    let guard = flightdeck::init(settings).unwrap();

    let request = RequestScope::start("answer", CorrelationId::new("e2e-1").unwrap());
    request.in_scope(|| {
        let _timer = guard.metrics().time_operation("rag.retrieve");
        tracing::info_span!("rag.retrieve", top_k = 5).in_scope(|| {
            tracing::info!("filtered out at warn");
            tracing::warn!(target: "rag.retrieval", shard = 2, "slow shard");
        });
    });
    request.finish_err(&"upstream failed");

    // A second init in the same process is refused, not silently ignored.
    let err = flightdeck::init(ObservabilitySettings::default()).unwrap_err();
    assert!(
        matches!(
            err,
            InitError::Core(flightdeck::obs::InitError::AlreadyInstalled { .. })
        ),
        "{err:?}"
    );

    let prom = guard
        .prometheus()
        .expect("metrics are on by default")
        .render();
    assert!(
        prom.contains("flightdeck_operations_total{operation=\"rag.retrieve\",outcome=\"ok\"} 1"),
        "{prom}"
    );
    let dashboard = guard.dashboard();
    assert_eq!(dashboard.service_name, "e2e-service");
    assert_eq!(dashboard.operations["rag.retrieve"].count, 1);

    let report = guard.shutdown(Duration::from_secs(10)).unwrap();
    assert_eq!(report.spans.written, 2);
    assert_eq!(report.spans.dropped + report.logs.dropped, 0);

    let spans = read_jsonl(&traces).unwrap();
    assert_eq!(spans.len(), 2, "{spans:#?}");
    let root = spans.iter().find(|s| s["name"] == "rag.request").unwrap();
    let child = spans.iter().find(|s| s["name"] == "rag.retrieve").unwrap();
    assert_eq!(child["parent_span_id"], root["span_id"]);
    assert_eq!(child["trace_id"], root["trace_id"]);
    assert_eq!(root["service_name"], "e2e-service");
    assert_eq!(root["status"]["code"], "error");
    assert_eq!(root["status"]["message"], "upstream failed");
    assert_eq!(root["attributes"]["flightdeck.request.outcome"], "error");

    let lines = read_jsonl(&logs).unwrap();
    let messages: Vec<&str> = lines
        .iter()
        .map(|l| l["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        messages,
        ["slow shard", "request finished"],
        "info lines are filtered: {lines:#?}"
    );
    for line in &lines {
        assert_eq!(line["correlation_id"], "e2e-1");
        assert_eq!(line["trace_id"], root["trace_id"]);
        assert_eq!(line["service"], "e2e-service");
    }
    assert_eq!(lines[0]["span_id"], child["span_id"]);
    assert_eq!(lines[0]["span_fields"]["top_k"], 5);
    assert_eq!(lines[1]["fields"]["outcome"], "error");
    assert!(lines[1]["fields"]["duration_ms"].as_f64().unwrap() >= 0.0);
}

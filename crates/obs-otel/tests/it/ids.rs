//! One source of truth: the ids in obs-core's span records and JSON log
//! lines are the ids the collector receives.

use std::time::Duration;

use opentelemetry::trace::TraceContextExt;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use flightdeck_obs_otel::testing::Collector;

#[test]
fn records_log_lines_and_the_collector_agree_on_ids() {
    let collector = Collector::start();
    let crate::FullStack {
        pipeline,
        records,
        logs,
        dispatch,
    } = crate::full_stack(&collector, "ids-e2e");
    let (trace, root_id, child_id) = tracing::dispatcher::with_default(&dispatch, || {
        let root = tracing::info_span!("rag.request");
        let _r = root.enter();
        let child = tracing::info_span!("rag.generate");
        let _c = child.enter();
        tracing::info!(tokens = 42, "generated");
        (
            root.context().span().span_context().trace_id().to_string(),
            root.context().span().span_context().span_id().to_string(),
            child.context().span().span_context().span_id().to_string(),
        )
    });
    pipeline.shutdown(Duration::from_secs(5)).unwrap();

    let recs = records.take();
    assert_eq!(recs.len(), 2);
    for r in &recs {
        assert_eq!(r.trace_id.to_string(), trace);
    }
    let child = recs.iter().find(|r| r.name == "rag.generate").unwrap();
    let root = recs.iter().find(|r| r.name == "rag.request").unwrap();
    assert_eq!(child.span_id.to_string(), child_id);
    assert_eq!(root.span_id.to_string(), root_id);
    assert_eq!(child.parent_span_id, Some(root.span_id));

    let line = logs
        .lines()
        .into_iter()
        .find(|l| l.contains("generated"))
        .expect("the log line");
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["trace_id"], trace.as_str(), "{line}");
    assert_eq!(v["span_id"], child_id.as_str(), "{line}");

    let out = collector.wait_for(&trace, 2);
    assert!(out.contains(&child_id) && out.contains(&root_id), "{out}");
}

use flightdeck_obs_core::{CorrelationContext, CorrelationId, current_span_context};
use tracing::Instrument;

use crate::capture;

#[test]
fn correlation_id_reaches_nested_spans_spawned_tasks_and_every_log_line() {
    let (subscriber, spans, logs) = capture();
    let dispatch = tracing::Dispatch::new(subscriber);
    let d = dispatch.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .on_thread_start(move || std::mem::forget(tracing::dispatcher::set_default(&d)))
        .build()
        .unwrap();
    tracing::dispatcher::with_default(&dispatch, || {
        runtime.block_on(async {
            let request = tracing::info_span!("rag.request", correlation_id = "corr-42");
            async {
                tracing::info!("start");
                let child = tracing::info_span!("rag.retrieve");
                async {
                    tracing::info!("in child");
                    tokio::spawn(async { tracing::warn!("in spawned task") }.in_current_span())
                        .await
                        .unwrap();
                    tracing::info_span!("rag.rerank").in_scope(|| tracing::debug!("deeply nested"));
                }
                .instrument(child)
                .await;
            }
            .instrument(request)
            .await;
        });
    });
    drop(runtime);
    let records = spans.take();
    assert_eq!(records.len(), 3);
    let trace = records[0].trace_id.to_string();
    for r in &records {
        assert_eq!(
            r.correlation_id.as_ref().unwrap().as_str(),
            "corr-42",
            "{}",
            r.name
        );
    }
    let lines = logs.json();
    assert_eq!(lines.len(), 4, "{lines:#?}");
    for l in &lines {
        assert_eq!(l["correlation_id"], "corr-42", "{l}");
        assert_eq!(l["trace_id"], trace.as_str(), "{l}");
    }
}

#[test]
fn context_guard_covers_code_outside_spans_and_new_roots() {
    let (subscriber, spans, logs) = capture();
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!("before");
        {
            let _scope = CorrelationContext::enter(CorrelationId::new("batch-1").unwrap());
            tracing::info!("outside any span");
            tracing::info_span!("job").in_scope(|| {
                assert_eq!(CorrelationContext::current().unwrap().as_str(), "batch-1");
                assert!(current_span_context().is_some());
            });
        }
        tracing::info!("after");
    });
    let lines = logs.json();
    assert!(lines[0].get("correlation_id").is_none());
    assert_eq!(lines[1]["correlation_id"], "batch-1");
    assert!(lines[1].get("trace_id").is_none(), "no span, no trace id");
    assert!(lines[2].get("correlation_id").is_none());
    assert_eq!(
        spans.take()[0].correlation_id.as_ref().unwrap().as_str(),
        "batch-1"
    );
}

#[test]
fn a_span_field_overrides_the_inherited_id_and_bad_values_are_replaced() {
    let (subscriber, spans, _logs) = capture();
    tracing::subscriber::with_default(subscriber, || {
        tracing::info_span!("outer", correlation_id = "outer-id").in_scope(|| {
            tracing::info_span!("inner", correlation_id = "inner-id").in_scope(|| {});
            tracing::info_span!("forged", correlation_id = "evil\nline").in_scope(|| {});
        });
    });
    let records = spans.take();
    let get = |n: &str| {
        records
            .iter()
            .find(|r| r.name == n)
            .unwrap()
            .correlation_id
            .clone()
            .unwrap()
    };
    assert_eq!(get("inner").as_str(), "inner-id");
    let forged = get("forged");
    assert_ne!(forged.as_str(), "evil\nline");
    assert_eq!(forged.as_str().len(), 32, "replaced by a generated id");
}

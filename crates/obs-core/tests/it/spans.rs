use std::collections::HashMap;

use flightdeck_obs_core::{SpanRecord, names};
use tracing::Instrument;

use crate::capture;

fn by_name(records: &[SpanRecord]) -> HashMap<String, SpanRecord> {
    records
        .iter()
        .map(|r| (r.name.to_string(), r.clone()))
        .collect()
}

#[test]
fn parent_links_follow_instrumented_tasks_on_a_multi_thread_runtime() {
    let (subscriber, spans, _logs) = capture();
    let dispatch = tracing::Dispatch::new(subscriber);
    // Each worker thread needs the dispatcher: make it the default for the
    // runtime's threads through on_thread_start.
    let d = dispatch.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .on_thread_start(move || {
            let guard = tracing::dispatcher::set_default(&d);
            std::mem::forget(guard);
        })
        .build()
        .unwrap();
    tracing::dispatcher::with_default(&dispatch, || {
        runtime.block_on(async {
            let request = tracing::info_span!(names::span::REQUEST, correlation_id = "req-7");
            async {
                let handles: Vec<_> = (0..4)
                    .map(|shard| {
                        let s = tracing::info_span!("shard", shard);
                        tokio::spawn(
                            async move {
                                tokio::task::yield_now().await;
                                tracing::info_span!("shard.inner").in_scope(|| {});
                            }
                            .instrument(s),
                        )
                    })
                    .collect();
                for h in handles {
                    h.await.unwrap();
                }
            }
            .instrument(request)
            .await;
        });
    });
    drop(runtime);
    let records = spans.take();
    assert_eq!(records.len(), 9, "{records:#?}");
    let root = records
        .iter()
        .find(|r| r.name == names::span::REQUEST)
        .unwrap();
    assert_eq!(root.parent_span_id, None);
    for shard in records.iter().filter(|r| r.name == "shard") {
        assert_eq!(shard.parent_span_id, Some(root.span_id));
        assert_eq!(shard.trace_id, root.trace_id);
        assert_eq!(shard.correlation_id.as_ref().unwrap().as_str(), "req-7");
    }
    let shard_ids: Vec<_> = records
        .iter()
        .filter(|r| r.name == "shard")
        .map(|r| r.span_id)
        .collect();
    for inner in records.iter().filter(|r| r.name == "shard.inner") {
        assert!(shard_ids.contains(&inner.parent_span_id.unwrap()));
        assert_eq!(inner.trace_id, root.trace_id);
        assert_eq!(inner.correlation_id.as_ref().unwrap().as_str(), "req-7");
    }
}

#[test]
fn parent_links_follow_spans_entered_on_other_threads() {
    let (subscriber, spans, _logs) = capture();
    let dispatch = tracing::Dispatch::new(subscriber);
    tracing::dispatcher::with_default(&dispatch, || {
        let root = tracing::info_span!("root", correlation_id = "thread-test");
        root.in_scope(|| {
            let current = tracing::Span::current();
            let d = dispatch.clone();
            std::thread::spawn(move || {
                tracing::dispatcher::with_default(&d, || {
                    current.in_scope(|| tracing::info_span!("on.thread").in_scope(|| {}));
                });
            })
            .join()
            .unwrap();
        });
    });
    let r = by_name(&spans.take());
    assert_eq!(r["on.thread"].parent_span_id, Some(r["root"].span_id));
    assert_eq!(r["on.thread"].trace_id, r["root"].trace_id);
    assert_eq!(r["on.thread"].correlation_id, r["root"].correlation_id);
}

#[test]
fn separate_roots_get_separate_traces() {
    let (subscriber, spans, _logs) = capture();
    tracing::subscriber::with_default(subscriber, || {
        tracing::info_span!("a").in_scope(|| {});
        tracing::info_span!("b").in_scope(|| {});
    });
    let r = by_name(&spans.take());
    assert_ne!(r["a"].trace_id, r["b"].trace_id);
}

#[test]
fn records_carry_all_documented_fields() {
    let (subscriber, spans, _logs) = capture();
    tracing::subscriber::with_default(subscriber, || {
        tracing::info_span!(
            names::span::GENERATE,
            { names::attr::GEN_AI_REQUEST_MODEL } = "m",
            { names::attr::GEN_AI_USAGE_INPUT_TOKENS } = 12
        )
        .in_scope(|| std::thread::sleep(std::time::Duration::from_millis(2)));
    });
    let r = &spans.take()[0];
    let json: serde_json::Value = serde_json::to_value(r).unwrap();
    for key in [
        "trace_id",
        "span_id",
        "parent_span_id",
        "name",
        "kind",
        "start_unix_nanos",
        "end_unix_nanos",
        "duration_nanos",
        "attributes",
        "status",
        "correlation_id",
        "service_name",
    ] {
        assert!(json.get(key).is_some(), "missing {key}: {json}");
    }
    assert_eq!(json["trace_id"].as_str().unwrap().len(), 32);
    assert_eq!(json["span_id"].as_str().unwrap().len(), 16);
    assert!(r.duration_nanos >= 2_000_000);
    assert_eq!(r.end_unix_nanos - r.start_unix_nanos, r.duration_nanos);
    assert_eq!(json["attributes"]["gen_ai.usage.input_tokens"], 12);
    assert_eq!(json["service_name"], "it");
}

/// `#[tracing::instrument]` is the Rust equivalent of the seed's
/// `@tracer.trace()` decorator: the function's span becomes a span record
/// with its arguments as attributes, and `err` marks it failed.
#[tracing::instrument(
    name = "rag.retrieve",
    skip(query),
    fields(rag.retrieval.index = "docs-v3", rag.retrieval.documents = tracing::field::Empty),
    err
)]
fn instrumented_retrieve(query: &str, top_k: u32) -> Result<u32, String> {
    let documents = u32::try_from(query.len()).unwrap_or(u32::MAX).min(top_k);
    tracing::Span::current().record("rag.retrieval.documents", documents);
    if top_k == 0 {
        return Err("top_k must be at least 1".into());
    }
    Ok(documents)
}

#[test]
fn instrumented_functions_become_span_records() {
    use flightdeck_obs_core::{AttrValue, SpanStatus};
    let (subscriber, spans, _logs) = crate::capture();
    tracing::subscriber::with_default(subscriber, || {
        assert_eq!(instrumented_retrieve("what is rust", 5), Ok(5));
        assert!(instrumented_retrieve("q", 0).is_err());
    });
    let records = spans.take();
    assert_eq!(records.len(), 2);
    let ok = &records[0];
    assert_eq!(ok.name, "rag.retrieve");
    assert_eq!(ok.attribute("top_k"), Some(&AttrValue::I64(5)));
    assert_eq!(
        ok.attribute("rag.retrieval.index"),
        Some(&AttrValue::Str("docs-v3".into()))
    );
    assert_eq!(
        ok.attribute("rag.retrieval.documents"),
        Some(&AttrValue::I64(5))
    );
    assert!(
        ok.attribute("query").is_none(),
        "skipped arguments stay out"
    );
    assert_eq!(ok.status, SpanStatus::Ok);
    assert!(records[1].status.is_error(), "{:?}", records[1].status);
}

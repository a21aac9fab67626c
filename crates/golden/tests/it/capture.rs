//! Capturing from a running service through the in-process exporter, with
//! a sampling rate, and property tests of tree building and comparison.

use flightdeck_golden::{
    CaseKey, Checker, RawSpan, RawTrace, Recorder, Rules, Spec, Tree, capture, compare,
};
use flightdeck_obs_core::names::span;
use flightdeck_obs_core::{InMemoryExporter, SpanLayer};
use proptest::prelude::*;
use tracing_subscriber::layer::SubscriberExt;

/// Runs `n` instrumented requests and answers what the exporter holds.
fn serve(n: usize, model: &'static str) -> InMemoryExporter {
    let spans = InMemoryExporter::new();
    let layer = SpanLayer::builder()
        .with_exporter(spans.clone())
        .build()
        .unwrap();
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, || {
        for i in 0..n {
            let key = format!("req-{i}");
            tracing::info_span!(span::REQUEST, correlation_id = key.as_str()).in_scope(|| {
                tracing::info_span!(span::EMBED).in_scope(|| {});
                tracing::info_span!(span::RETRIEVE, "rag.retrieval.top_k" = 20).in_scope(|| {});
                tracing::info_span!(span::GENERATE, "gen_ai.request.model" = model).in_scope(
                    || {
                        tracing::info!(tokens = 12, "generated answer");
                    },
                );
            });
        }
    });
    spans
}

#[test]
fn goldens_recorded_from_a_live_capture_check_the_next_one() {
    let mut rec = Recorder::new(CaseKey::CorrelationId, 1);
    for t in capture(&serve(20, "gpt-4o-mini"), 1.0) {
        rec.add(t).unwrap();
    }
    let (cases, _) = rec.finish();
    assert_eq!(cases.len(), 20);
    let paths: Vec<&str> = cases[0]
        .tree
        .spans()
        .iter()
        .map(|s| s.path.as_str())
        .collect();
    assert_eq!(
        paths,
        [
            "rag.request",
            "rag.request/rag.embed",
            "rag.request/rag.retrieve",
            "rag.request/rag.generate"
        ]
    );
    let cases = cases.into_iter().map(|c| (c.name.clone(), c)).collect();
    let spec = Spec::default();

    let mut same = Checker::new(&cases, &spec, CaseKey::CorrelationId);
    for t in capture(&serve(20, "gpt-4o-mini"), 1.0) {
        same.add(t).unwrap();
    }
    let report = same.finish();
    assert!(report.ok() && report.passed == 20, "{:#?}", report.cases);

    let mut changed = Checker::new(&cases, &spec, CaseKey::CorrelationId);
    for t in capture(&serve(20, "gpt-4o"), 1.0) {
        changed.add(t).unwrap();
    }
    let report = changed.finish();
    assert_eq!(report.failed, 20);
    assert_eq!(
        report.cases[0].differences[0].path,
        "rag.request/rag.generate"
    );
}

#[test]
fn sampling_keeps_whole_traces_at_about_the_rate() {
    assert!(capture(&serve(50, "m"), 0.0).is_empty());
    let kept = capture(&serve(400, "m"), 0.5);
    assert!((140..=260).contains(&kept.len()), "{} of 400", kept.len());
    for t in &kept {
        assert_eq!(t.spans.len(), 4, "a sampled trace keeps all its spans");
    }
    // The same trace ids are always chosen the same way.
    let exporter = serve(100, "m");
    let all = exporter.records();
    let again = InMemoryExporter::new();
    for r in all {
        flightdeck_obs_core::SpanExporter::export(&again, r);
    }
    let a: Vec<_> = capture(&exporter, 0.3)
        .into_iter()
        .map(|t| t.trace_id)
        .collect();
    let b: Vec<_> = capture(&again, 0.3)
        .into_iter()
        .map(|t| t.trace_id)
        .collect();
    assert_eq!(a, b);
}

/// Random parent links over up to 40 spans: a tree or an error, never a
/// panic; a tree compares equal to itself and keeps every span.
fn arbitrary_trace() -> impl Strategy<Value = RawTrace> {
    prop::collection::vec(
        (
            0u64..50,
            prop::option::of(0u64..50),
            0u64..1000,
            0u64..1000,
            0usize..4,
        ),
        1..40,
    )
    .prop_map(|spans| {
        let names = ["a", "b", "a/b", "c["];
        RawTrace {
            trace_id: "p".into(),
            spans: spans
                .into_iter()
                .map(|(id, parent, s, d, n)| {
                    RawSpan::new(id + 1, parent.map(|p| p + 1), names[n], s, s + d)
                })
                .collect(),
        }
    })
}

proptest! {
    #[test]
    fn building_never_panics_and_trees_equal_themselves(t in arbitrary_trace()) {
        if let Ok(tree) = Tree::build(&t) {
            prop_assert_eq!(tree.len(), t.spans.len());
            prop_assert!(compare(&tree, &tree, &Rules::new()).is_empty());
            // Paths are unique and parse back.
            let back = Tree::from_spans(tree.clone().into_spans(), "p").unwrap();
            prop_assert_eq!(back, tree.clone());
            for s in tree.spans() {
                prop_assert!(s.self_ms <= s.duration_ms + 1e-9);
            }
        }
    }

    #[test]
    fn a_shuffled_capture_compares_equal(t in arbitrary_trace(), seed in any::<u64>()) {
        if let Ok(tree) = Tree::build(&t) {
            let mut other = t.clone();
            let n = other.spans.len();
            for i in 0..n {
                let j = (seed.wrapping_mul(i as u64 + 1) % n as u64) as usize;
                other.spans.swap(i, j);
            }
            let shuffled = Tree::build(&other).unwrap();
            prop_assert!(compare(&tree, &shuffled, &Rules::new()).is_empty());
        }
    }
}

/// With one span per request (`RequestScope::in_current_span` inside a
/// server span that declares the request's fields, as obs-otel's
/// `ServerLayer` span does), the server span is the request: no
/// `rag.request` span is opened, and the templates still find the stages.
#[test]
fn a_request_in_its_server_span_fits_the_templates() {
    use flightdeck_obs_core::names::attr;
    use flightdeck_obs_core::{CorrelationId, RequestScope, StartLine};
    let spans = InMemoryExporter::new();
    let layer = SpanLayer::builder()
        .with_exporter(spans.clone())
        .build()
        .unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        let server = tracing::info_span!(
            "http.server",
            correlation_id = "one-span",
            flightdeck.request.operation = tracing::field::Empty,
            flightdeck.request.outcome = tracing::field::Empty,
        );
        server.in_scope(|| {
            let scope = RequestScope::in_current_span(
                "answer",
                CorrelationId::new("one-span").unwrap(),
                StartLine::Debug,
            );
            scope.in_scope(|| {
                tracing::info_span!(span::EMBED).in_scope(|| {});
                tracing::info_span!(span::RETRIEVE).in_scope(|| {});
                tracing::info_span!(span::GENERATE).in_scope(|| {});
            });
            scope.finish_ok();
        });
    });
    let traces = capture(&spans, 1.0);
    assert_eq!(traces.len(), 1);
    let tree = Tree::from_trace(traces.into_iter().next().unwrap()).unwrap();
    let names: Vec<&str> = tree.spans().iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        ["http.server", span::EMBED, span::RETRIEVE, span::GENERATE],
        "one span per request: no rag.request"
    );
    let root = &tree.spans()[0];
    assert_eq!(
        root.attributes.get(attr::FLIGHTDECK_REQUEST_OPERATION),
        Some(&serde_json::Value::from("answer"))
    );
    assert_eq!(
        root.attributes.get(attr::FLIGHTDECK_REQUEST_OUTCOME),
        Some(&serde_json::Value::from("ok"))
    );
    let simple = flightdeck_golden::template("simple-rag").unwrap();
    assert!(simple.check(&tree).is_empty(), "{:#?}", simple.check(&tree));
    let reranked = flightdeck_golden::template("reranked-rag").unwrap();
    assert!(
        !reranked.check(&tree).is_empty(),
        "a missing rerank is named"
    );
}

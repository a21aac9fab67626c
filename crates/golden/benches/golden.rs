//! Golden-trace benchmarks (targets in docs/benchmarks.md):
//!
//! * `compare/10k_spans`: one 10,000-span trace against its golden, ≤ 10 ms.
//! * `check/1000_cases`: `golden check`'s work over 1,000 cases of 10 spans
//!   (one 10,000-line `traces.jsonl`: stream, build, compare), ≤ 0.5 s;
//!   anchor `parse_only/1000_cases`, the same lines parsed by serde_json.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use flightdeck_golden::{
    Case, CaseKey, Checker, RawSpan, RawTrace, Rules, Spec, TraceReader, Tree, compare,
};
use flightdeck_obs_core::{
    AttrValue, Attributes, CorrelationId, SpanId, SpanKind, SpanRecord, SpanStatus, TraceId,
};

fn big_trace(seed: u64) -> RawTrace {
    let mut spans = vec![RawSpan::new(1, None, "rag.request", 0, 10_000_000_000)];
    let mut id = 2;
    for stage in 0..100u64 {
        let sid = id;
        let start = stage * 100_000_000;
        let mut s = RawSpan::new(sid, Some(1), "rag.stage", start, start + 99_000_000);
        s.attributes.insert("stage".into(), stage.into());
        s.attributes
            .insert("gen_ai.request.model".into(), "gpt-4o-mini".into());
        spans.push(s);
        id += 1;
        for leaf in 0..99u64 {
            let t = start + leaf * 1_000_000 + seed;
            let mut l = RawSpan::new(id, Some(sid), "rag.retrieve.shard", t, t + 900_000);
            l.attributes
                .insert("rag.retrieval.shard".into(), leaf.into());
            l.attributes
                .insert("rag.relevance_score".into(), 0.5.into());
            l.attributes.insert(
                "gen_ai.response.id".into(),
                format!("id-{seed}-{id}").into(),
            );
            spans.push(l);
            id += 1;
        }
    }
    RawTrace {
        trace_id: "bench".into(),
        spans,
    }
}

fn record(
    trace: u128,
    span: u64,
    parent: Option<u64>,
    name: &'static str,
    key: &str,
    start: u64,
) -> SpanRecord {
    let mut attributes = Attributes::new();
    attributes.set("gen_ai.request.model", AttrValue::Str("gpt-4o-mini".into()));
    attributes.set("gen_ai.usage.input_tokens", AttrValue::I64(1200));
    attributes.set("rag.relevance_score", AttrValue::F64(0.82));
    SpanRecord {
        trace_id: TraceId::from_u128(trace).expect("non-zero"),
        span_id: SpanId::from_u64(span).expect("non-zero"),
        parent_span_id: parent.map(|p| SpanId::from_u64(p).expect("non-zero")),
        parent_is_remote: false,
        name: name.into(),
        kind: SpanKind::Internal,
        start_unix_nanos: start,
        end_unix_nanos: start + 20_000_000,
        duration_nanos: 20_000_000,
        attributes,
        events: vec![],
        dropped_events: 0,
        status: SpanStatus::Ok,
        correlation_id: Some(CorrelationId::new(key).expect("valid")),
        service_name: Arc::from("rag-service"),
        trace_state: None,
    }
}

const NAMES: [&str; 9] = [
    "rag.guardrail",
    "rag.embed",
    "rag.retrieve",
    "rag.retrieve.shard",
    "rag.retrieve.shard",
    "rag.retrieve.shard",
    "rag.rerank",
    "rag.generate",
    "rag.guardrail",
];

/// 1,000 traces of 10 spans, children before their root as they close.
fn jsonl() -> String {
    let mut out = String::new();
    for case in 0..1000u64 {
        let key = format!("case-{case}");
        let trace = u128::from(case) + 1;
        let base = case * 10 + 1;
        for (k, name) in NAMES.iter().enumerate() {
            let parent = if (3..=5).contains(&k) { base + 3 } else { base };
            let r = record(
                trace,
                base + 1 + k as u64,
                Some(parent),
                name,
                &key,
                1_000 + k as u64 * 30_000_000,
            );
            out.push_str(&serde_json::to_string(&r).expect("serializes"));
            out.push('\n');
        }
        let root = record(trace, base, None, "rag.request", &key, 0);
        out.push_str(&serde_json::to_string(&root).expect("serializes"));
        out.push('\n');
    }
    out
}

fn benches(c: &mut Criterion) {
    let golden = Tree::build(&big_trace(0)).expect("a tree");
    let capture = big_trace(7);
    let rules = Rules::new();
    let built = Tree::build(&capture).expect("a tree");
    c.bench_function("compare_only/10k_spans", |b| {
        b.iter(|| black_box(compare(&golden, black_box(&built), &rules)));
    });
    c.bench_function("build/10k_spans", |b| {
        b.iter_batched(
            || capture.clone(),
            |capture| black_box(Tree::from_trace(capture).expect("a tree")),
            criterion::BatchSize::LargeInput,
        );
    });
    c.bench_function("compare/10k_spans", |b| {
        b.iter_batched(
            || capture.clone(),
            |capture| {
                let actual = Tree::from_trace(black_box(capture)).expect("a tree");
                black_box(compare(&golden, &actual, &rules))
            },
            criterion::BatchSize::LargeInput,
        );
    });

    let text = jsonl();
    let mut cases = BTreeMap::new();
    for t in TraceReader::new(text.as_bytes(), "bench") {
        let t = t.expect("a trace");
        let name = t.key(&CaseKey::CorrelationId).expect("keyed");
        cases.insert(
            name.clone(),
            Case::new(name, Tree::build(&t).expect("a tree")),
        );
    }
    let spec = Spec::default();
    let mut group = c.benchmark_group("golden_check");
    group.sample_size(20);
    group.bench_function("check/1000_cases", |b| {
        b.iter(|| {
            let mut checker = Checker::new(&cases, &spec, CaseKey::CorrelationId);
            for t in TraceReader::new(text.as_bytes(), "bench") {
                checker.add(t.expect("a trace")).expect("a tree");
            }
            let report = checker.finish();
            assert_eq!(report.passed, 1000);
            black_box(report)
        });
    });
    group.bench_function("parse_only/1000_cases", |b| {
        b.iter(|| {
            let mut n = 0;
            for line in text.lines() {
                let r: SpanRecord = serde_json::from_str(line).expect("a record");
                n += r.attributes.len();
            }
            black_box(n)
        });
    });
    group.finish();
}

criterion_group!(golden_benches, benches);
criterion_main!(golden_benches);

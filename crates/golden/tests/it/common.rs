//! A RAG trace builder and the transformations a real capture goes through.

use flightdeck_golden::{RawSpan, RawTrace};
use flightdeck_obs_core::names::{attr, span};
use flightdeck_obs_core::{SpanKind, SpanStatus};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, LogNormal};
use serde_json::json;

pub(crate) const MS: u64 = 1_000_000;

/// Stage medians in ms, as the demo draws them.
pub(crate) struct Stages {
    pub guard_in: f64,
    pub embed: f64,
    pub shards: [f64; 3],
    pub rerank: f64,
    pub generate: f64,
    pub guard_out: f64,
}

impl Stages {
    pub(crate) fn typical() -> Self {
        Self {
            guard_in: 4.0,
            embed: 18.0,
            shards: [22.0, 25.0, 20.0],
            rerank: 35.0,
            generate: 280.0,
            guard_out: 5.0,
        }
    }

    /// Each stage drawn around its median (lognormal, `sigma`).
    pub(crate) fn drawn(&self, rng: &mut StdRng, sigma: f64, generate_factor: f64) -> Self {
        let mut d = |m: f64| LogNormal::new(m.ln(), sigma).unwrap().sample(rng);
        Self {
            guard_in: d(self.guard_in),
            embed: d(self.embed),
            shards: [d(self.shards[0]), d(self.shards[1]), d(self.shards[2])],
            rerank: d(self.rerank),
            generate: d(self.generate) * generate_factor,
            guard_out: d(self.guard_out),
        }
    }
}

/// One request as the demo traces it, starting at `t0` with ids from `id0`.
pub(crate) fn rag_trace(key: &str, t0: u64, id0: u64, st: &Stages, relevance: f64) -> RawTrace {
    let ms = |v: f64| (v * MS as f64) as u64;
    let mut spans = Vec::new();
    let root = id0;
    let mut t = t0 + MS / 2;
    let mut next = id0 + 1;
    let mut stage =
        |name: &str, dur: f64, t: &mut u64, attrs: serde_json::Value, kind: SpanKind| {
            let mut s = RawSpan::new(next, Some(root), name, *t, *t + ms(dur));
            s.kind = kind;
            s.attributes = attrs.as_object().cloned().unwrap_or_default();
            *t += ms(dur);
            next += 1;
            s
        };
    spans.push(stage(
        span::GUARDRAIL,
        st.guard_in,
        &mut t,
        json!({attr::RAG_GUARDRAIL_NAME: "prompt_injection", attr::RAG_GUARDRAIL_TRIGGERED: false}),
        SpanKind::Internal,
    ));
    spans.push(stage(span::EMBED, st.embed, &mut t, json!({attr::GEN_AI_REQUEST_MODEL: "text-embedding-3-small", attr::GEN_AI_USAGE_INPUT_TOKENS: 31}), SpanKind::Client));
    let retrieve_id = id0 + 3;
    let longest = st.shards.iter().copied().fold(0.0, f64::max);
    let mut retrieve = stage(
        span::RETRIEVE,
        longest + 0.3,
        &mut t,
        json!({attr::RAG_RETRIEVAL_INDEX: "docs-v3", attr::RAG_RETRIEVAL_DOCUMENTS: 17}),
        SpanKind::Internal,
    );
    retrieve.events = vec![flightdeck_golden::Event {
        name: "retrieved documents".into(),
        attributes: json!({"documents": 17}).as_object().cloned().unwrap(),
    }];
    let shard_start = retrieve.start_unix_nanos + MS / 10;
    spans.push(retrieve);
    for (k, d) in st.shards.iter().enumerate() {
        let mut s = RawSpan::new(
            id0 + 100 + k as u64,
            Some(retrieve_id),
            "rag.retrieve.shard",
            shard_start + k as u64 * 1000,
            shard_start + k as u64 * 1000 + ms(*d),
        );
        s.kind = SpanKind::Client;
        s.attributes = json!({attr::RAG_RETRIEVAL_SHARD: k})
            .as_object()
            .cloned()
            .unwrap();
        spans.push(s);
    }
    spans.push(stage(span::RERANK, st.rerank, &mut t, json!({attr::GEN_AI_REQUEST_MODEL: "rerank-english-v3", attr::RAG_RELEVANCE_SCORE: relevance}), SpanKind::Client));
    spans.push(stage(span::GENERATE, st.generate, &mut t, json!({attr::GEN_AI_REQUEST_MODEL: "gpt-4o-mini", "gen_ai.response.id": "chatcmpl-x", attr::GEN_AI_USAGE_OUTPUT_TOKENS: 210}), SpanKind::Client));
    spans.push(stage(
        span::GUARDRAIL,
        st.guard_out,
        &mut t,
        json!({attr::RAG_GUARDRAIL_NAME: "pii_filter", attr::RAG_GUARDRAIL_TRIGGERED: false}),
        SpanKind::Internal,
    ));
    let mut r = RawSpan::new(root, None, span::REQUEST, t0, t + MS / 2);
    r.kind = SpanKind::Server;
    r.correlation_id = Some(key.to_owned());
    r.status = SpanStatus::Ok;
    spans.push(r);
    RawTrace {
        trace_id: format!("{id0:032x}"),
        spans,
    }
}

/// New ids and timestamps moved by `shift`, as a second run would have.
pub(crate) fn reidentify(t: &RawTrace, id_offset: u64, shift: u64) -> RawTrace {
    let mut out = t.clone();
    for s in &mut out.spans {
        s.span_id += id_offset;
        s.parent_span_id = s.parent_span_id.map(|p| p + id_offset);
        s.start_unix_nanos += shift;
        s.end_unix_nanos += shift;
    }
    out
}

/// Latency jitter that keeps the trace consistent: time is warped by a
/// monotone piecewise-linear map whose slopes lie in [1 − j, 1 + j], so
/// every duration and self time changes by at most ±j.
pub(crate) fn jitter(t: &RawTrace, j: f64, seed: u64) -> RawTrace {
    let mut rng = StdRng::seed_from_u64(seed);
    let t0 = t.spans.iter().map(|s| s.start_unix_nanos).min().unwrap();
    let step = 2 * MS;
    let slopes: Vec<f64> = (0..4096)
        .map(|_| rng.random_range(1.0 - j..=1.0 + j))
        .collect();
    let warp = |x: u64| {
        let rel = x - t0;
        let whole = (rel / step) as usize;
        let mut acc = 0.0;
        for s in &slopes[..whole.min(slopes.len())] {
            acc += *s * step as f64;
        }
        acc += slopes[whole.min(slopes.len() - 1)] * (rel % step) as f64;
        t0 + acc as u64
    };
    let mut out = t.clone();
    for s in &mut out.spans {
        s.start_unix_nanos = warp(s.start_unix_nanos);
        s.end_unix_nanos = warp(s.end_unix_nanos);
    }
    out
}

/// Moves every timestamp at or after `at` by `delta` nanoseconds.
fn shift_after(t: &mut RawTrace, at: u64, delta: i64) {
    for s in &mut t.spans {
        for v in [&mut s.start_unix_nanos, &mut s.end_unix_nanos] {
            if *v >= at {
                *v = v.saturating_add_signed(delta);
            }
        }
    }
}

/// The named stage takes `factor` times as long; everything after it moves.
pub(crate) fn slow_down(t: &RawTrace, name: &str, factor: f64) -> RawTrace {
    let mut out = t.clone();
    let s = out.spans.iter().find(|s| s.name == name).unwrap();
    let (end, dur) = (
        s.end_unix_nanos,
        (s.end_unix_nanos - s.start_unix_nanos) as f64,
    );
    shift_after(&mut out, end, (dur * (factor - 1.0)) as i64);
    out
}

/// Without the named stage (and its descendants); what followed it starts
/// that much earlier, as it would in a real run.
pub(crate) fn without(t: &RawTrace, name: &str) -> RawTrace {
    let mut out = t.clone();
    let s = out.spans.iter().find(|s| s.name == name).unwrap();
    let (id, start, end) = (s.span_id, s.start_unix_nanos, s.end_unix_nanos);
    out.spans
        .retain(|s| s.span_id != id && s.parent_span_id != Some(id));
    shift_after(&mut out, end, -((end - start) as i64));
    out
}

/// The named stage's attribute set to `value`.
pub(crate) fn with_attr(t: &RawTrace, name: &str, key: &str, value: serde_json::Value) -> RawTrace {
    let mut out = t.clone();
    let s = out.spans.iter_mut().find(|s| s.name == name).unwrap();
    s.attributes.insert(key.to_owned(), value);
    out
}

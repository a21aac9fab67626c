//! The simulated RAG pipeline: guardrail → embed → retrieve (3 shards in
//! parallel) → rerank → generate → guardrail; a query that needs a tool
//! (see [`tool_for`]) takes the agent path, generate → tool call →
//! generate. Latencies, token counts and
//! scores are drawn from a generator seeded by the service seed and the
//! request (user and query), so a request's shape is reproducible; a time
//! scale of 0 makes the stages instant (load tests).

use std::hash::{Hash, Hasher};
use std::time::Duration;

use flightdeck::obs::MetricsCollector;
use flightdeck::obs::names::{attr, span, target};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, LogNormal};
use tracing::Instrument;
use tracing::field::Empty;

use crate::faults::Faults;

const EMBED_MODEL: &str = "text-embedding-3-small";
const CHAT_MODEL: &str = "gpt-4o-mini";
/// The reranker bills per search: $0.002.
const RERANK_COST_USD_MICROS: u64 = 2_000;
const SHARDS: u32 = 3;

/// A pipeline's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The answer text.
    pub text: String,
    /// The stages that ran, in order.
    pub stages: Vec<&'static str>,
    /// The best relevance score after reranking.
    pub relevance: f64,
}

/// The tool a query needs, if any: questions about the present go to web
/// search, arithmetic to the calculator (the agent path, `rag.tool_call`).
pub fn tool_for(query: &str) -> Option<&'static str> {
    let q = query.to_ascii_lowercase();
    if ["today", "latest", "current", "right now", "this week"]
        .iter()
        .any(|w| q.contains(w))
    {
        return Some("web_search");
    }
    let b = q.as_bytes();
    let arithmetic = b
        .windows(3)
        .any(|w| w[0].is_ascii_digit() && b"+-*/".contains(&w[1]) && w[2].is_ascii_digit())
        || b.windows(5).any(|w| {
            w[0].is_ascii_digit()
                && w[1] == b' '
                && b"+-*/".contains(&w[2])
                && w[3] == b' '
                && w[4].is_ascii_digit()
        });
    arithmetic.then_some("calculator")
}

/// The simulated pipeline.
#[derive(Debug, Clone)]
pub struct Pipeline {
    seed: u64,
    time_scale: f64,
}

fn lognormal(rng: &mut StdRng, median_ms: f64, sigma: f64) -> f64 {
    LogNormal::new(median_ms.ln(), sigma).map_or(median_ms, |d| d.sample(rng))
}

impl Pipeline {
    /// A pipeline drawing from `seed`, its latencies multiplied by `time_scale`.
    pub fn new(seed: u64, time_scale: f64) -> Self {
        Self {
            seed,
            time_scale: if time_scale.is_finite() {
                time_scale.max(0.0)
            } else {
                1.0
            },
        }
    }

    async fn sleep(&self, ms: f64) {
        if self.time_scale > 0.0 && ms > 0.0 {
            tokio::time::sleep(Duration::from_secs_f64(ms * self.time_scale / 1e3)).await;
        }
    }

    /// Runs one request through every stage, recording spans and metrics.
    ///
    /// # Errors
    ///
    /// A message when a stage fails (an injected fault, or a simulated
    /// rate limit).
    pub async fn run(
        &self,
        metrics: &MetricsCollector,
        query: &str,
        user_id: &str,
        reranker: &str,
        faults: &Faults,
    ) -> Result<Answer, String> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (self.seed, query, user_id).hash(&mut h);
        let mut rng = StdRng::seed_from_u64(h.finish());
        let mut stages = Vec::with_capacity(7);

        if faults.added_latency_ms > 0.0 {
            let jitter = rng.random_range(0.8..1.2);
            tokio::time::sleep(Duration::from_secs_f64(
                faults.added_latency_ms * jitter / 1e3,
            ))
            .await;
        }
        if faults.error_rate > 0.0 && rng.random_bool(faults.error_rate.clamp(0.0, 1.0)) {
            tracing::error!(target: target::HTTP, "injected error (error_rate fault)");
            return Err("injected error (error_rate fault)".into());
        }

        stages.push(span::GUARDRAIL);
        self.guardrail(metrics, "prompt_injection", lognormal(&mut rng, 4.0, 0.3))
            .await;

        stages.push(span::EMBED);
        let query_tokens = u64::try_from(query.len() / 4 + 1).unwrap_or(u64::MAX);
        let s = tracing::info_span!(
            span::EMBED,
            otel.kind = "client",
            { attr::GEN_AI_OPERATION_NAME } = "embeddings",
            { attr::GEN_AI_REQUEST_MODEL } = EMBED_MODEL,
            { attr::GEN_AI_USAGE_INPUT_TOKENS } = query_tokens,
        );
        let embed_ms = lognormal(&mut rng, 18.0, 0.35);
        async {
            let _t = metrics.time_operation(span::EMBED);
            self.sleep(embed_ms).await;
            metrics.record_tokens(EMBED_MODEL, query_tokens, 0);
        }
        .instrument(s)
        .await;

        stages.push(span::RETRIEVE);
        let shard_ms: Vec<f64> = (0..SHARDS)
            .map(|_| lognormal(&mut rng, 22.0, 0.5))
            .collect();
        let documents = self
            .retrieve(metrics, &shard_ms, faults.dependency_failure)
            .await?;

        stages.push(span::RERANK);
        let relevance = (0.55 + 0.45 * rng.random::<f64>().powf(0.6)).min(1.0);
        let s = tracing::info_span!(
            span::RERANK,
            otel.kind = "client",
            { attr::GEN_AI_REQUEST_MODEL } = reranker,
            { attr::RAG_RERANK_KEPT } = documents.min(5),
            { attr::RAG_RELEVANCE_SCORE } = relevance,
        );
        let rerank_ms = lognormal(&mut rng, 35.0, 0.4);
        async {
            let _t = metrics.time_operation(span::RERANK);
            self.sleep(rerank_ms).await;
            metrics.record_call_cost(reranker, RERANK_COST_USD_MICROS);
            metrics.record_relevance(relevance);
            tracing::info!(target: target::RERANK, candidates = documents, relevance, "reranked");
        }
        .instrument(s)
        .await;

        stages.push(span::GENERATE);
        let (prompt_tokens, output_tokens) =
            (rng.random_range(800..2400u64), rng.random_range(80..420u64));
        let generate_ms = lognormal(&mut rng, 280.0, 0.45);
        if let Some(tool) = tool_for(query) {
            // The agent path: the model asks for a tool, the tool runs, and
            // the model answers with its result.
            self.generate(
                metrics,
                prompt_tokens,
                rng.random_range(20..60u64),
                generate_ms * 0.4,
            )
            .await;
            stages.push(span::TOOL_CALL);
            let tool_ms = lognormal(&mut rng, 60.0, 0.5);
            let s = tracing::info_span!(
                span::TOOL_CALL,
                otel.kind = "internal",
                { attr::GEN_AI_OPERATION_NAME } = "execute_tool",
                { attr::GEN_AI_TOOL_NAME } = tool,
            );
            async {
                let _t = metrics.time_operation(span::TOOL_CALL);
                self.sleep(tool_ms).await;
                tracing::info!(target: target::AGENT, tool, "tool call finished");
            }
            .instrument(s)
            .await;
            stages.push(span::GENERATE);
        }
        self.generate(metrics, prompt_tokens, output_tokens, generate_ms)
            .await;

        stages.push(span::GUARDRAIL);
        self.guardrail(metrics, "pii_filter", lognormal(&mut rng, 5.0, 0.3))
            .await;
        Ok(Answer {
            text: format!(
                "Here is what {documents} documents say about your question ({} characters).",
                query.chars().count()
            ),
            stages,
            relevance,
        })
    }

    async fn generate(
        &self,
        metrics: &MetricsCollector,
        prompt_tokens: u64,
        output_tokens: u64,
        ms: f64,
    ) {
        let s = tracing::info_span!(
            span::GENERATE,
            otel.kind = "client",
            { attr::GEN_AI_OPERATION_NAME } = "chat",
            { attr::GEN_AI_REQUEST_MODEL } = CHAT_MODEL,
            { attr::GEN_AI_USAGE_INPUT_TOKENS } = prompt_tokens,
            { attr::GEN_AI_USAGE_OUTPUT_TOKENS } = output_tokens,
            { attr::FLIGHTDECK_COST_USD_MICROS } = Empty,
        );
        let gen_span = s.clone();
        async {
            let _t = metrics.time_operation(span::GENERATE);
            self.sleep(ms).await;
            let cost = metrics.record_tokens(CHAT_MODEL, prompt_tokens, output_tokens);
            gen_span.record(attr::FLIGHTDECK_COST_USD_MICROS, cost);
            tracing::info!(target: target::GENERATION, input_tokens = prompt_tokens, output_tokens, "generated answer");
        }
        .instrument(s)
        .await;
    }

    async fn guardrail(&self, metrics: &MetricsCollector, name: &'static str, ms: f64) {
        let s = tracing::info_span!(
            span::GUARDRAIL,
            { attr::RAG_GUARDRAIL_NAME } = name,
            { attr::RAG_GUARDRAIL_TRIGGERED } = false
        );
        async {
            let _t = metrics.time_operation(span::GUARDRAIL);
            self.sleep(ms).await;
        }
        .instrument(s)
        .await;
    }

    async fn retrieve(
        &self,
        metrics: &MetricsCollector,
        shard_ms: &[f64],
        down: bool,
    ) -> Result<u32, String> {
        let s = tracing::info_span!(
            span::RETRIEVE,
            { attr::RAG_RETRIEVAL_INDEX } = "docs-v3",
            { attr::RAG_RETRIEVAL_TOP_K } = 20,
            { attr::RAG_RETRIEVAL_DOCUMENTS } = Empty,
        );
        let retrieve_span = s.clone();
        async move {
            let mut timer = metrics.time_operation(span::RETRIEVE);
            if down {
                timer.fail();
                tracing::error!(target: target::RETRIEVAL, "the retrieval dependency is down (dependency_failure fault)");
                return Err("retrieval failed: the dependency is down".to_owned());
            }
            // The shards are queried concurrently on this request's task, as
            // a service awaiting three HTTP calls would (no task per shard:
            // a spawn wakes the other worker thread for nothing).
            futures_util::future::join_all(shard_ms.iter().enumerate().map(|(shard, ms)| {
                let shard_span = tracing::info_span!(
                    "rag.retrieve.shard",
                    { attr::RAG_RETRIEVAL_SHARD } = shard,
                    otel.kind = "client"
                );
                self.sleep(*ms).instrument(shard_span)
            }))
            .await;
            let documents = 6 * SHARDS;
            retrieve_span.record(attr::RAG_RETRIEVAL_DOCUMENTS, documents);
            tracing::info!(target: target::RETRIEVAL, documents, "retrieved documents");
            Ok(documents)
        }
        .instrument(s)
        .await
    }
}

//! Span, attribute, field and metric names, in one place.
//!
//! Attribute names follow the OpenTelemetry GenAI semantic conventions where a
//! convention exists (`gen_ai.*`, `error.type`, `http.*`); our own `rag.*` and
//! `flightdeck.*` names fill the gaps, mainly retrieval, reranking and guardrails,
//! for which the conventions have no attributes yet.
//!
//! ```
//! use flightdeck_obs_core::names::{attr, span};
//! let s = tracing::info_span!(
//!     span::GENERATE,
//!     { attr::GEN_AI_OPERATION_NAME } = "chat",
//!     { attr::GEN_AI_REQUEST_MODEL } = "gpt-4o-mini",
//! );
//! # drop(s);
//! ```

/// Span names for the stages of a retrieval-augmented generation request.
pub mod span {
    /// The root span of one request; everything else is its descendant.
    pub const REQUEST: &str = "rag.request";
    /// Turning the query (or documents) into embedding vectors.
    pub const EMBED: &str = "rag.embed";
    /// Fetching candidate documents from a vector or keyword index.
    pub const RETRIEVE: &str = "rag.retrieve";
    /// Re-scoring retrieved candidates with a cross-encoder or LLM.
    pub const RERANK: &str = "rag.rerank";
    /// Calling the language model to produce the answer.
    pub const GENERATE: &str = "rag.generate";
    /// A safety or policy check on input or output.
    pub const GUARDRAIL: &str = "rag.guardrail";
    /// A tool (function) the model asked to run.
    pub const TOOL_CALL: &str = "rag.tool_call";
}

/// Log targets of the RAG components (the `target:` of a `tracing` event),
/// so log lines filter by component: `RUST_LOG=rag.retrieval=debug`.
///
/// ```
/// use flightdeck_obs_core::names::target;
/// tracing::info!(target: target::RETRIEVAL, documents = 12, "retrieved documents");
/// ```
pub mod target {
    /// Query and document embedding.
    pub const EMBEDDING: &str = "rag.embedding";
    /// Retrieval from indexes and shards.
    pub const RETRIEVAL: &str = "rag.retrieval";
    /// Reranking.
    pub const RERANK: &str = "rag.rerank";
    /// Calls to the language model.
    pub const GENERATION: &str = "rag.generation";
    /// Safety and policy checks.
    pub const GUARDRAILS: &str = "rag.guardrails";
    /// Agent planning and tool calls.
    pub const AGENT: &str = "rag.agent";
    /// Answer evaluation and user feedback.
    pub const EVALUATION: &str = "rag.evaluation";
    /// The HTTP edge of the service.
    pub const HTTP: &str = "rag.http";
}

/// Attribute (span field) names.
pub mod attr {
    /// Field that sets a span's correlation id (inherited by child spans).
    pub const CORRELATION_ID: &str = "correlation_id";
    /// `tracing-opentelemetry` convention: the span kind
    /// (`server`, `client`, `producer`, `consumer`, `internal`).
    pub const OTEL_KIND: &str = "otel.kind";
    /// `tracing-opentelemetry` convention: `OK` or `ERROR`.
    pub const OTEL_STATUS_CODE: &str = "otel.status_code";
    /// `tracing-opentelemetry` convention: the error status's description.
    pub const OTEL_STATUS_MESSAGE: &str = "otel.status_message";
    /// `tracing-opentelemetry` convention: overrides the span name.
    pub const OTEL_NAME: &str = "otel.name";
    /// Ours: on a root span, the inbound W3C `traceparent` it continues
    /// (`00-<trace id>-<parent span id>-<flags>`). The span record takes its
    /// trace id, records the remote parent and follows its sampled flag, so
    /// trace ids carry across services without an OpenTelemetry layer.
    /// Malformed values are ignored (a new trace starts, as W3C says).
    pub const FLIGHTDECK_REMOTE_PARENT: &str = "flightdeck.remote_parent";
    /// Ours: beside [`FLIGHTDECK_REMOTE_PARENT`], the caller's W3C
    /// `tracestate`, already validated (obs-otel's propagator does). The
    /// trace's spans carry it in their records and context, exporters send
    /// it and the client layer passes it on. Kept only with a valid remote
    /// parent, and only when it is printable ASCII of at most
    /// [`MAX_TRACESTATE_LEN`](crate::MAX_TRACESTATE_LEN) bytes.
    pub const FLIGHTDECK_TRACESTATE: &str = "flightdeck.tracestate";

    /// GenAI semconv: the operation, e.g. `chat`, `embeddings`, `execute_tool`.
    pub const GEN_AI_OPERATION_NAME: &str = "gen_ai.operation.name";
    /// GenAI semconv: the provider, e.g. `openai`, `anthropic`, `aws.bedrock`.
    pub const GEN_AI_PROVIDER_NAME: &str = "gen_ai.provider.name";
    /// GenAI semconv: the model asked for.
    pub const GEN_AI_REQUEST_MODEL: &str = "gen_ai.request.model";
    /// GenAI semconv: the model that answered.
    pub const GEN_AI_RESPONSE_MODEL: &str = "gen_ai.response.model";
    /// GenAI semconv: requested sampling temperature.
    pub const GEN_AI_REQUEST_TEMPERATURE: &str = "gen_ai.request.temperature";
    /// GenAI semconv: requested maximum output tokens.
    pub const GEN_AI_REQUEST_MAX_TOKENS: &str = "gen_ai.request.max_tokens";
    /// GenAI semconv: prompt tokens used.
    pub const GEN_AI_USAGE_INPUT_TOKENS: &str = "gen_ai.usage.input_tokens";
    /// GenAI semconv: completion tokens used.
    pub const GEN_AI_USAGE_OUTPUT_TOKENS: &str = "gen_ai.usage.output_tokens";
    /// GenAI semconv: why generation stopped, e.g. `["stop"]`.
    pub const GEN_AI_RESPONSE_FINISH_REASONS: &str = "gen_ai.response.finish_reasons";
    /// GenAI semconv: the tool's name on a tool call span.
    pub const GEN_AI_TOOL_NAME: &str = "gen_ai.tool.name";
    /// GenAI semconv: the embedding vector length.
    pub const GEN_AI_EMBEDDINGS_DIMENSION_COUNT: &str = "gen_ai.embeddings.dimension.count";
    /// General semconv: the class of error, e.g. `timeout`, `rate_limited`.
    pub const ERROR_TYPE: &str = "error.type";

    /// Ours (no semconv yet): number of documents asked for.
    pub const RAG_RETRIEVAL_TOP_K: &str = "rag.retrieval.top_k";
    /// Ours: number of documents returned.
    pub const RAG_RETRIEVAL_DOCUMENTS: &str = "rag.retrieval.documents";
    /// Ours: the index or collection searched.
    pub const RAG_RETRIEVAL_INDEX: &str = "rag.retrieval.index";
    /// Ours: the index shard, for fanned-out searches.
    pub const RAG_RETRIEVAL_SHARD: &str = "rag.retrieval.shard";
    /// Ours: number of candidates kept after reranking.
    pub const RAG_RERANK_KEPT: &str = "rag.rerank.kept";
    /// Ours: the best relevance score after reranking (0 to 1).
    pub const RAG_RELEVANCE_SCORE: &str = "rag.relevance_score";
    /// Ours: the guardrail's name.
    pub const RAG_GUARDRAIL_NAME: &str = "rag.guardrail.name";
    /// Ours: whether the guardrail blocked or rewrote the content.
    pub const RAG_GUARDRAIL_TRIGGERED: &str = "rag.guardrail.triggered";
    /// Ours: the request's cost in micro-USD (integer; 1 USD = 1,000,000).
    pub const FLIGHTDECK_COST_USD_MICROS: &str = "flightdeck.cost_usd_micros";
    /// Ours: the logical operation a request span stands for (e.g. `answer`).
    pub const FLIGHTDECK_REQUEST_OPERATION: &str = "flightdeck.request.operation";
    /// Ours: how a request ended: `ok`, `error`, `panicked`, `cancelled`.
    pub const FLIGHTDECK_REQUEST_OUTCOME: &str = "flightdeck.request.outcome";
}

/// Prometheus metric names, following its conventions: base units
/// (`_seconds`), `_total` on counters, and the `flightdeck_` prefix.
pub mod metric {
    /// Histogram: operation latency in seconds, label `operation`.
    pub const OPERATION_DURATION_SECONDS: &str = "flightdeck_operation_duration_seconds";
    /// Counter: finished operations, labels `operation`, `outcome` (`ok`/`error`).
    pub const OPERATIONS_TOTAL: &str = "flightdeck_operations_total";
    /// Counter: LLM tokens, labels `model`, `token_type` (`input`/`output`).
    pub const LLM_TOKENS_TOTAL: &str = "flightdeck_llm_tokens_total";
    /// Counter: LLM or other paid API calls, label `model`.
    pub const LLM_CALLS_TOTAL: &str = "flightdeck_llm_calls_total";
    /// Counter: spend in micro-USD (integer, so sums never drift), label `model`.
    pub const LLM_COST_USD_MICROS_TOTAL: &str = "flightdeck_llm_cost_usd_micros_total";
    /// Histogram: retrieval relevance scores (0 to 1).
    pub const RELEVANCE_SCORE: &str = "flightdeck_relevance_score";
    /// Histogram: user ratings (for example 1 to 5).
    pub const USER_RATING: &str = "flightdeck_user_rating";
    /// Counter: guardrail triggers, label `guardrail`.
    pub const GUARDRAIL_TRIGGERS_TOTAL: &str = "flightdeck_guardrail_triggers_total";
    /// Counter: label values folded into `other` by the cardinality cap, label `label`.
    pub const LABEL_OVERFLOW_TOTAL: &str = "flightdeck_label_overflow_total";
    /// Counter: span records dropped because the export queue was full.
    pub const SPANS_DROPPED_TOTAL: &str = "flightdeck_spans_dropped_total";
    /// Counter: span records whose write failed (for example a full disk).
    pub const SPAN_EXPORT_FAILURES_TOTAL: &str = "flightdeck_span_export_failures_total";
    /// Counter: log lines dropped because the log queue was full.
    pub const LOG_LINES_DROPPED_TOTAL: &str = "flightdeck_log_lines_dropped_total";
    /// Counter: feature flag evaluations, labels `flag` (capped) and
    /// `variant` (the variation key, or the source such as `force`).
    pub const FLAG_EVALUATIONS_TOTAL: &str = "flightdeck_flag_evaluations_total";
    /// Counter: flag reloads rejected (unreadable, unparsable or invalid);
    /// the previous flags kept serving.
    pub const FLAGS_RELOAD_FAILURES_TOTAL: &str = "flightdeck_flags_reload_failures_total";
    /// Counter: records a [`JsonLinesWriter`](crate::JsonLinesWriter) dropped
    /// because its queue was full, label `writer`.
    pub const WRITER_DROPPED_TOTAL: &str = "flightdeck_writer_dropped_total";
    /// Counter: records whose write failed in a
    /// [`JsonLinesWriter`](crate::JsonLinesWriter), label `writer`.
    pub const WRITER_FAILURES_TOTAL: &str = "flightdeck_writer_failures_total";

    /// The value a capped label takes once its distinct values run out.
    pub const OVERFLOW_LABEL_VALUE: &str = "other";
}

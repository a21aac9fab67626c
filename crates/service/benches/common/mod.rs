//! Instrumentation overhead per request (target: ≤ 15 µs over the bare
//! handler, and ≤ 1.0× the overhead of the common stack), measured in one
//! run. One `POST /v1/answer` through an axum router, in process
//! (`oneshot`, no socket), on a current-thread runtime:
//!
//! * `bare`: the handler (parse the JSON body, answer JSON), nothing else.
//! * `flightdeck`: the same handler wired as the reference service is:
//!   obs-otel's `ServerLayer` (W3C context, correlation id, SERVER span, RED
//!   metrics), a `RequestScope` in the server span (one span per request,
//!   its start line at debug, as the service has it), one log line, a timed operation, the
//!   `new_chunking_strategy` flag, the `reranker-v2` experiment (exposure
//!   and result), the SLO registry; span records and JSON logs to a sink,
//!   OTel export (from the span records) to a no-op exporter, a Prometheus
//!   recorder.
//! * `common`: the same handler with the stack a team would assemble:
//!   tower-http's `TraceLayer`, tracing-subscriber's JSON layer,
//!   tracing-opentelemetry with the SDK's batch processor (same no-op
//!   exporter), and RED metrics into metrics-exporter-prometheus.
//!
//! Both stacks run twice: recording every level (nothing filtered: the
//! request scope's debug start line and tower-http's debug request and
//! response lines are all written), then at `info` as a service runs in
//! production (tower-http's span and response line raised to info, as a
//! team sets them; the debug lines filtered out).
//!
//! Ours exports OTel spans from its span records (obs-otel's `RecordBridge`,
//! as the facade wires it). Three ablations at `info`: with
//! tracing-opentelemetry's layer instead, as the facade had it before
//! (`-otel-layer`), the same with that layer's default attributes
//! (`-otel-defaults`), with no OTel export at all (`-no-otel`), and composed
//! as the facade composes it, a filter per layer instead of one global level
//! (`-layer-filters`).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, State};
use axum::routing::post;
use criterion::Criterion;
use flightdeck::obs::{
    CorrelationId, MetricsCollector, RequestScope, StartLine, current_span_context,
};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{BatchSpanProcessor, SdkTracerProvider, SpanData, SpanExporter};
use tower::ServiceExt;
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;

#[derive(Debug, Clone, Copy)]
struct NoopExporter;

impl SpanExporter for NoopExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        black_box(batch);
        Ok(())
    }
}

#[derive(serde::Deserialize)]
struct Ask {
    query: String,
    user_id: String,
}

/// The handler's own work, the same in every case.
fn answer_body(bytes: &[u8]) -> (Ask, String) {
    let ask: Ask = serde_json::from_slice(bytes).expect("a valid body");
    let answer = format!("{} characters about {}", ask.query.len(), ask.user_id);
    (ask, answer)
}

fn json(answer: &str, user: &str) -> axum::response::Response {
    axum::response::IntoResponse::into_response(axum::Json(serde_json::json!({
        "answer": answer,
        "user_id": user,
    })))
}

async fn bare(body: axum::body::Bytes) -> axum::response::Response {
    let (ask, answer) = answer_body(&body);
    json(&answer, &ask.user_id)
}

struct Kit {
    metrics: MetricsCollector,
    flags: flightdeck_service::Flags,
    reranker: flightdeck_service::Reranker,
    slos: flightdeck::slo::SloRegistry,
}

async fn instrumented(
    State(kit): State<Arc<Kit>>,
    body: axum::body::Bytes,
) -> axum::response::Response {
    let correlation = current_span_context()
        .and_then(|c| c.correlation_id)
        .unwrap_or_else(CorrelationId::generate);
    let started = Instant::now();
    let (ask, answer) = answer_body(&body);
    let ctx = flightdeck_service::request_context(&ask.user_id);
    let assignment = kit.reranker.assign_in(&ctx);
    let (_, chunker) = kit.flags.chunker_in(&ctx);
    let scope = RequestScope::in_current_span("answer", correlation, StartLine::Debug);
    scope.in_scope(|| {
        let _t = kit.metrics.time_operation("rag.generate");
        tracing::info!(target: "rag.http", chunker, variation = %assignment.key, "answered");
    });
    let elapsed = started.elapsed();
    kit.slos.record_request(true, elapsed, Some(0.9));
    kit.reranker.record(
        &ask.user_id,
        &assignment,
        elapsed.as_secs_f64() * 1e3,
        Some(0.9),
        true,
    );
    scope.finish_ok();
    json(&answer, &ask.user_id)
}

async fn common_red(
    matched: Option<MatchedPath>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let route = matched.map_or_else(|| "unknown".to_owned(), |m| m.as_str().to_owned());
    let started = Instant::now();
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    metrics::counter!("http_requests_total", "route" => route.clone(), "status" => status.clone())
        .increment(1);
    metrics::histogram!("http_request_duration_seconds", "route" => route, "status" => status)
        .record(started.elapsed().as_secs_f64());
    resp
}

async fn common_handler(body: axum::body::Bytes) -> axum::response::Response {
    let (ask, answer) = answer_body(&body);
    tracing::info!(user = %ask.user_id, "answered");
    json(&answer, &ask.user_id)
}

fn request() -> http::Request<axum::body::Body> {
    http::Request::post("/v1/answer")
        .header("content-type", "application/json")
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .header("x-correlation-id", "bench-request-1")
        .body(axum::body::Body::from(
            r#"{"query":"how do canaries work","user_id":"user-42"}"#,
        ))
        .expect("a request")
}

/// Every case of the overhead comparison, in one criterion group.
pub(crate) fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let run = |router: &Router| {
        let resp = rt
            .block_on(router.clone().oneshot(request()))
            .expect("response");
        assert_eq!(resp.status(), 200);
    };
    let mut g = c.benchmark_group("service_overhead");

    // Bare: no subscriber, no recorder.
    let bare_router = Router::new().route("/v1/answer", post(bare));
    tracing::dispatcher::with_default(&tracing::Dispatch::none(), || {
        case(&mut g, "bare", &|| run(&bare_router));
    });

    // Every level recorded (nothing filtered), then the `info` level a
    // service runs at in production.
    for (suffix, level) in [("", LevelFilter::TRACE), ("-info", LevelFilter::INFO)] {
        ours(
            &mut g,
            &run,
            &format!("flightdeck{suffix}"),
            level,
            OtelExport::Bridge,
        );
        common(&mut g, &run, &format!("common{suffix}"), level);
    }
    for (name, otel) in [
        ("flightdeck-info-otel-layer", OtelExport::Lean),
        ("flightdeck-info-otel-defaults", OtelExport::Defaults),
        ("flightdeck-info-no-otel", OtelExport::None),
        (
            "flightdeck-info-layer-filters",
            OtelExport::BridgeLayerFilters,
        ),
    ] {
        ours(&mut g, &run, name, LevelFilter::INFO, otel);
    }
    g.finish();
}

/// The variable that runs one case a fixed number of times instead of
/// timing every case: `CASE=N` (for example `flightdeck-info=2000`). Run
/// under `valgrind --tool=callgrind`, twice with different N, the
/// difference of the instruction totals over the difference of N is the
/// case's instructions per request on every thread, a count this shared
/// machine's noise does not move (docs/benchmarks.md).
const COUNT_VAR: &str = "FLIGHTDECK_OVERHEAD_COUNT";

/// Times `one` as the case `name`, or runs it the fixed number of times
/// [`COUNT_VAR`] asks for when it names this case.
fn case(g: &mut Group<'_>, name: &str, one: &dyn Fn()) {
    match std::env::var(COUNT_VAR) {
        Ok(spec) => {
            let (case, n) = spec
                .split_once('=')
                .unwrap_or_else(|| panic!("{COUNT_VAR}={spec:?}: expected CASE=N"));
            if case == name {
                let n: u64 = n.parse().expect("N is a whole number");
                for _ in 0..n {
                    one();
                }
            }
        }
        Err(_) => {
            g.bench_function(name, |b| b.iter(one));
        }
    }
}

/// How our stack exports OTel spans.
#[derive(Clone, Copy, PartialEq)]
enum OtelExport {
    /// From the span records (`OtelPipeline::record_exporter`), as the
    /// facade and the service wire it.
    Bridge,
    /// `OtelPipeline::layer` (tracing-opentelemetry, lean attributes).
    Lean,
    /// tracing-opentelemetry's defaults.
    Defaults,
    /// No OTel export: span records, logs and metrics only.
    None,
    /// As `Bridge`, composed as the facade composes it: a filter per
    /// layer (the span layer's level; every span and the `EnvFilter`'s
    /// events for the log layer) instead of one global level.
    BridgeLayerFilters,
}

/// The facade's log-layer filter: every span, and the events `directive`
/// lets through (`flightdeck`'s `spans_and_logs`).
fn spans_and_logs<S>(directive: &str) -> impl tracing_subscriber::layer::Filter<S> + Send + Sync
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    use tracing_subscriber::filter::FilterExt as _;
    tracing_subscriber::filter::dynamic_filter_fn(|meta: &tracing::Metadata<'_>, _| meta.is_span())
        .with_callsite_filter(|meta: &'static tracing::Metadata<'static>| {
            if meta.is_span() {
                tracing::subscriber::Interest::always()
            } else {
                tracing::subscriber::Interest::never()
            }
        })
        .or(tracing_subscriber::EnvFilter::new(directive))
}

type Group<'a> = criterion::BenchmarkGroup<'a, criterion::measurement::WallTime>;

/// Ours, wired as the reference service is, recording at `level`.
fn ours(
    g: &mut Group<'_>,
    run: &dyn Fn(&Router),
    name: &str,
    level: LevelFilter,
    otel: OtelExport,
) {
    let pipeline = flightdeck::otel::OtelPipeline::with_exporter(
        NoopExporter,
        &flightdeck::otel::OtlpSettings::default(),
        flightdeck::otel::BatchSettings::default(),
    )
    .expect("an export pipeline");
    let mut records = flightdeck_obs_core::FanOutExporter::new().with(
        flightdeck_obs_core::JsonLinesExporter::to_writer_with_capacity(std::io::sink(), 65_536)
            .expect("records"),
    );
    if matches!(otel, OtelExport::Bridge | OtelExport::BridgeLayerFilters) {
        records = records.with(pipeline.record_exporter());
    }
    let per_layer = otel == OtelExport::BridgeLayerFilters;
    let logs = flightdeck_obs_core::JsonLogLayer::builder()
        .with_blocking_writer(std::io::sink())
        .build()
        .expect("logs");
    let (logs, filtered_logs) = if per_layer {
        (None, Some(logs.with_filter(spans_and_logs("info"))))
    } else {
        (Some(logs), None)
    };
    let (spans, filtered_spans) = {
        let spans = flightdeck_obs_core::SpanLayer::builder().with_exporter(records);
        // With tracing-opentelemetry's layer, the records take its ids.
        let spans = if matches!(otel, OtelExport::Lean | OtelExport::Defaults) {
            spans.with_trace_context_hook(flightdeck_obs_otel::OtelIds)
        } else {
            spans
        };
        let spans = spans.build().expect("span layer");
        if per_layer {
            (None, Some(spans.with_filter(level)))
        } else {
            (Some(spans), None)
        }
    };
    let dispatch = tracing::Dispatch::new(
        tracing_subscriber::registry()
            .with((!per_layer).then_some(level))
            .with(match otel {
                OtelExport::Bridge | OtelExport::None | OtelExport::BridgeLayerFilters => None,
                OtelExport::Lean => Some(pipeline.layer()),
                // tracing-opentelemetry's defaults: location, thread and
                // busy/idle attributes on (the ablation of our layer's choice).
                OtelExport::Defaults => {
                    Some(tracing_opentelemetry::layer().with_tracer(pipeline.tracer()))
                }
            })
            .with(spans)
            .with(filtered_spans)
            .with(logs)
            .with(filtered_logs),
    );
    let (local, _exposition) = flightdeck_obs_core::LocalPrometheus::new();
    local.scoped(|| {
        tracing::dispatcher::with_default(&dispatch, || {
            let kit = Arc::new(Kit {
                metrics: MetricsCollector::new(),
                flags: flightdeck_service::Flags::new(None, Duration::from_secs(1)).expect("flags"),
                reranker: flightdeck_service::Reranker::new(None).expect("experiment"),
                slos: flightdeck::slo::SloRegistry::rag_defaults(
                    &flightdeck::slo::SloSettings::default(),
                )
                .expect("slos"),
            });
            let router = Router::new()
                .route("/v1/answer", post(instrumented))
                .layer(
                    flightdeck::otel::ServerLayer::new()
                        .with_route(|p| {
                            p.extensions
                                .get::<MatchedPath>()
                                .map(|m| m.as_str().to_owned())
                        })
                        .with_known_routes(["/v1/answer"]),
                )
                .with_state(kit);
            case(g, name, &|| run(&router));
        });
    });
    let _ = pipeline.shutdown(Duration::from_secs(2));
}

/// The common stack a team would assemble, recording at `level`.
fn common(g: &mut Group<'_>, run: &dyn Fn(&Router), name: &str, level: LevelFilter) {
    let provider = SdkTracerProvider::builder()
        .with_span_processor(BatchSpanProcessor::builder(NoopExporter).build())
        .build();
    let tracer = provider.tracer("bench");
    let dispatch = tracing::Dispatch::new(
        tracing_subscriber::registry()
            .with(level)
            .with(tracing_opentelemetry::layer().with_tracer(tracer))
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_span_list(true)
                    .with_writer(std::io::sink),
            ),
    );
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    metrics::with_local_recorder(&recorder, || {
        tracing::dispatcher::with_default(&dispatch, || {
            let router = Router::new()
                .route("/v1/answer", post(common_handler))
                .layer(axum::middleware::from_fn(common_red))
                .layer(
                    // At info, as a service logs in production: its span
                    // and its response line at info (they default to debug).
                    tower_http::trace::TraceLayer::new_for_http()
                        .make_span_with(
                            tower_http::trace::DefaultMakeSpan::new().level(tracing::Level::INFO),
                        )
                        .on_response(
                            tower_http::trace::DefaultOnResponse::new().level(tracing::Level::INFO),
                        ),
                );
            case(g, name, &|| run(&router));
        });
    });
    let _ = provider.shutdown();
}

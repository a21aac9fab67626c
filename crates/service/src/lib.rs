#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod experiment;
mod faults;
mod flags;
pub mod grafana;
mod pipeline;
mod server;
mod w3c;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use flightdeck::obs::{
    CorrelationId, MetricsCollector, PrometheusExposition, RequestScope, StartLine,
    current_span_context, shown,
};
use flightdeck::slo::SloRegistry;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tracing::Instrument;

pub use self::experiment::{
    Assignment, RERANKER_EXPERIMENT, Reranker, definition as reranker_definition,
};
pub use self::faults::{FaultError, Faults};
pub use self::flags::{CHUNKING_FLAG, Flags, request_context};
pub use self::pipeline::{Answer, Pipeline, tool_for};
pub use self::server::{ConnectionLimits, serve, serve_on_threads, serve_router};

/// A gauge of 1 labelled with the build's `version`.
pub const BUILD_INFO: &str = "flightdeck_build_info";

pub use self::experiment::EXPOSURES_TOTAL;

/// The most bytes a request body may have.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// The longest query accepted, in bytes.
pub const MAX_QUERY_BYTES: usize = 4096;
/// The longest user id accepted, in bytes.
pub const MAX_USER_ID_BYTES: usize = 256;

/// How the service runs.
#[derive(Debug, Clone)]
pub struct ServiceOptions {
    /// Multiplies every simulated latency; 0 makes the stages instant.
    pub time_scale: f64,
    /// Seed for the simulated latencies, tokens and failures.
    pub seed: u64,
    /// The bearer token mutating endpoints require (`None`: they are refused).
    pub admin_token: Option<String>,
    /// Requests handled at once; more get 503 at once.
    pub max_in_flight: usize,
    /// Connections served at once, the request head's size cap and the
    /// time a client has to send it ([`serve`], [`serve_on_threads`]).
    pub connections: ConnectionLimits,
    /// Faults active from the start.
    pub faults: Faults,
    /// A flags file to watch (live reload; kills beside it); the built-in
    /// flags when `None`.
    pub flags_file: Option<std::path::PathBuf>,
    /// How often the flags file is polled.
    pub flags_interval: Duration,
    /// Where exposures and results go (`exposures.jsonl`, `results.jsonl`);
    /// in memory when `None`.
    pub data_dir: Option<std::path::PathBuf>,
    /// Serve `POST /test`, the W3C Trace Context harness protocol (calls
    /// out to loopback URLs only; off by default).
    pub w3c_test_endpoint: bool,
    /// The build's version, exported as `flightdeck_build_info{version}` and
    /// on `/api/dashboard` (a release labels stable and canary by it).
    pub version: String,
}

impl Default for ServiceOptions {
    fn default() -> Self {
        Self {
            time_scale: 1.0,
            seed: 42,
            admin_token: None,
            max_in_flight: 512,
            connections: ConnectionLimits::default(),
            faults: Faults::default(),
            w3c_test_endpoint: false,
            data_dir: None,
            flags_file: None,
            flags_interval: Duration::from_secs(1),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }
}

/// The service's shared state.
#[derive(Debug)]
pub struct Service {
    options: ServiceOptions,
    metrics: MetricsCollector,
    exposition: Option<PrometheusExposition>,
    slos: SloRegistry,
    faults: Arc<faults::FaultState>,
    pipeline: Pipeline,
    reranker: experiment::Reranker,
    flags: flags::Flags,
    draining: AtomicBool,
    slots: Arc<Semaphore>,
    answers: AtomicU64,
    /// Bumped by everything `/api/dashboard` shows (an answer, an error, a
    /// fault or flag change), so the snapshot is rebuilt only when it moved.
    events: AtomicU64,
    /// The last `/api/dashboard` body, its events count and when it was built.
    dashboard_cache: std::sync::Mutex<Option<(u64, Instant, axum::body::Bytes)>>,
    started: Instant,
    /// Per-cohort answers of the chunking flag: `[off, on]`.
    cohorts: [Cohort; 2],
}

/// What a guarded flag rollout compares: one cohort's answers (ok and
/// failed), latency and relevance, labelled `flag` and `cohort`.
#[derive(Debug)]
struct Cohort {
    ok: metrics::Counter,
    failed: metrics::Counter,
    latency: metrics::Histogram,
    relevance: metrics::Histogram,
}

/// Answers by flag cohort (`flag`, `cohort` = on | off, `outcome` = ok | error).
pub const COHORT_REQUESTS: &str = "flightdeck_flag_cohort_requests_total";
/// Answer latency by flag cohort, seconds.
pub const COHORT_LATENCY: &str = "flightdeck_flag_cohort_request_duration_seconds";
/// Answer relevance by flag cohort.
pub const COHORT_RELEVANCE: &str = "flightdeck_flag_cohort_relevance";

impl Cohort {
    fn new(cohort: &'static str) -> Self {
        let flag = CHUNKING_FLAG;
        Self {
            ok: metrics::counter!(COHORT_REQUESTS, "flag" => flag, "cohort" => cohort, "outcome" => "ok"),
            failed: metrics::counter!(COHORT_REQUESTS, "flag" => flag, "cohort" => cohort, "outcome" => "error"),
            latency: metrics::histogram!(COHORT_LATENCY, "flag" => flag, "cohort" => cohort),
            relevance: metrics::histogram!(COHORT_RELEVANCE, "flag" => flag, "cohort" => cohort),
        }
    }
}

/// A request body for `POST /v1/answer`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AnswerRequest {
    query: String,
    user_id: String,
}

#[derive(Debug, Serialize)]
struct AnswerResponse {
    answer: String,
    trace_id: Option<String>,
    correlation_id: String,
    user_id: String,
    stages: Vec<&'static str>,
    relevance: f64,
    variations: serde_json::Map<String, serde_json::Value>,
    flags: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Serialize)]
struct ErrorBody {
    error: String,
    correlation_id: Option<String>,
}

fn error(
    status: StatusCode,
    message: impl Into<String>,
    correlation: Option<&CorrelationId>,
) -> Response {
    (
        status,
        Json(ErrorBody {
            error: message.into(),
            correlation_id: correlation.map(ToString::to_string),
        }),
    )
        .into_response()
}

impl Service {
    /// A service recording into `metrics` (and exposing `exposition` on
    /// `/metrics`), with the default RAG SLOs of `slo` (the settings'
    /// `slo_*` keys: `flightdeck::Settings::slo`).
    ///
    /// # Errors
    ///
    /// A message when the settings make an SLO invalid.
    pub fn new(
        options: ServiceOptions,
        metrics: MetricsCollector,
        exposition: Option<PrometheusExposition>,
        slo: &flightdeck::slo::SloSettings,
    ) -> Result<Arc<Self>, String> {
        let slos = SloRegistry::rag_defaults(slo).map_err(|e| e.to_string())?;
        describe_service_metrics();
        let reranker = experiment::Reranker::new(options.data_dir.as_deref())?;
        let flags = flags::Flags::new(options.flags_file.as_deref(), options.flags_interval)?;
        Ok(Arc::new(Self {
            reranker,
            flags,
            pipeline: Pipeline::new(options.seed, options.time_scale),
            faults: Arc::new(faults::FaultState::new(options.faults.clone())),
            slots: Arc::new(Semaphore::new(options.max_in_flight.max(1))),
            options,
            metrics,
            exposition,
            slos,
            draining: AtomicBool::new(false),
            answers: AtomicU64::new(0),
            events: AtomicU64::new(0),
            dashboard_cache: std::sync::Mutex::new(None),
            started: Instant::now(),
            cohorts: [Cohort::new("off"), Cohort::new("on")],
        }))
    }

    /// Stops reporting ready (graceful shutdown begins).
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Writes queued exposures and results (call before exit).
    pub fn flush(&self, timeout: Duration) {
        self.reranker.flush(timeout);
    }

    /// Answers being worked on now.
    pub fn in_flight(&self) -> usize {
        self.options
            .max_in_flight
            .max(1)
            .saturating_sub(self.slots.available_permits())
    }

    /// Answers served so far.
    pub fn answers(&self) -> u64 {
        self.answers.load(Ordering::Relaxed)
    }

    /// The SLO registry every request feeds.
    pub fn slos(&self) -> &SloRegistry {
        &self.slos
    }

    /// The active faults.
    pub fn faults(&self) -> Faults {
        self.faults.get()
    }

    /// The router: the endpoints, obs-otel's server layer (trace context in,
    /// correlation id out, RED metrics per route) and the body cap.
    pub fn router(self: &Arc<Self>) -> Router {
        let server_layer = flightdeck::otel::ServerLayer::new()
            .with_route(|parts| {
                parts
                    .extensions
                    .get::<MatchedPath>()
                    .map(|p| p.as_str().to_owned())
            })
            // The answer's error series exists from the start, so a canary's
            // error rate is right in its first rate window.
            .with_known_routes(["/v1/answer"]);
        let mut router = Router::new();
        if self.options.w3c_test_endpoint {
            router = router.route("/test", post(w3c::run));
        }
        router
            .route("/v1/answer", post(answer))
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz))
            .route("/metrics", get(metrics))
            .route("/api/dashboard", get(dashboard))
            .route("/dashboard", get(dashboard_page))
            .route("/api/slo", get(slo))
            .route("/api/experiments", get(experiments))
            .route("/api/flags", get(list_flags))
            .route("/api/flags/{id}/kill", post(kill_flag))
            .route("/api/flags/{id}/restore", post(restore_flag))
            .route("/admin/faults", post(set_faults).get(get_faults))
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .layer(server_layer)
            .with_state(Arc::clone(self))
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        let Some(token) = &self.options.admin_token else {
            return false;
        };
        let Some(given) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        else {
            return false;
        };
        constant_time_eq(given.as_bytes(), token.as_bytes())
    }
}

/// HELP text for the metrics the service adds (promtool's lint wants it).
fn describe_service_metrics() {
    use metrics::describe_gauge;
    describe_gauge!(BUILD_INFO, "1, labelled with the build's version.");
    describe_gauge!(
        "flightdeck_slo_error_budget_remaining",
        "Share of the SLO's error budget left (negative when overspent)."
    );
    describe_gauge!(
        "flightdeck_slo_compliant",
        "1 when the SLI meets the objective."
    );
    describe_gauge!("flightdeck_slo_sli", "The SLI over the SLO's window.");
    describe_gauge!(
        "flightdeck_slo_burn_rate",
        "Burn rate by SLO, alert tier and window (1 burns the budget exactly over the period)."
    );
    describe_gauge!(
        "flightdeck_fault_active",
        "Injected faults: the value set (0 when off)."
    );
    metrics::describe_counter!(
        COHORT_REQUESTS,
        "Answers by the chunking flag's cohort (on/off) and outcome: what a guarded rollout compares."
    );
    metrics::describe_histogram!(
        COHORT_LATENCY,
        metrics::Unit::Seconds,
        "Answer latency by the chunking flag's cohort."
    );
    metrics::describe_histogram!(
        COHORT_RELEVANCE,
        "Answer relevance by the chunking flag's cohort."
    );
    describe_gauge!(
        "process_resident_memory_bytes",
        metrics::Unit::Bytes,
        "Resident memory of the process (VmRSS), refreshed on every scrape."
    );
}

/// Compares in time that depends only on the lengths, not the contents.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for i in 0..a.len().max(b.len()) {
        diff |= a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0xff);
    }
    diff == 0
}

async fn answer(State(s): State<Arc<Service>>, headers: HeaderMap, request: Request) -> Response {
    // obs-otel's server layer chose it (the caller's x-correlation-id when
    // valid, else its baggage, else a new one) and put it on the server span.
    let correlation = current_span_context()
        .and_then(|c| c.correlation_id)
        .unwrap_or_else(|| CorrelationId::from_headers(|n| headers.get(n).map(|v| v.as_bytes())).0);
    let Ok(_permit) = Arc::clone(&s.slots).try_acquire_owned() else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many requests in flight",
            Some(&correlation),
        );
    };
    let bytes = match axum::body::to_bytes(request.into_body(), MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the body is larger than {MAX_BODY_BYTES} bytes"),
                Some(&correlation),
            );
        }
    };
    let body: AnswerRequest = match serde_json::from_slice(&bytes) {
        Ok(b) => b,
        Err(e) => {
            let m = e.to_string();
            return error(
                StatusCode::BAD_REQUEST,
                format!("bad body: {}", shown(&m)),
                Some(&correlation),
            );
        }
    };
    for (field, value, max) in [
        ("query", &body.query, MAX_QUERY_BYTES),
        ("user_id", &body.user_id, MAX_USER_ID_BYTES),
    ] {
        if value.is_empty() || value.len() > max {
            return error(
                StatusCode::BAD_REQUEST,
                format!("{field} must be 1 to {max} bytes, got {}", value.len()),
                Some(&correlation),
            );
        }
    }
    let ctx = flags::request_context(&body.user_id);
    let assignment = s.reranker.assign_in(&ctx);
    let (chunking_on, _chunker) = s.flags.chunker_in(&ctx);
    let faults = if chunking_on {
        s.faults.get().for_flag_on()
    } else {
        s.faults.get()
    };
    let cohort = &s.cohorts[usize::from(chunking_on)];
    // One span per request: the server span is the request's root (it
    // marks the start, so the start line is debug).
    let scope = RequestScope::in_current_span("answer", correlation.clone(), StartLine::Debug);
    let span = scope.span().clone();
    let started = Instant::now();
    let outcome = async {
        let trace_id = current_span_context().map(|c| c.trace_id.to_string());
        let result = s
            .pipeline
            .run(
                &s.metrics,
                &body.query,
                &body.user_id,
                &assignment.model,
                &faults,
            )
            .await;
        (trace_id, result)
    }
    .instrument(span)
    .await;
    let (trace_id, result) = outcome;
    let elapsed = started.elapsed();
    cohort.latency.record(elapsed.as_secs_f64());
    match result {
        Ok(a) => {
            cohort.ok.increment(1);
            cohort.relevance.record(a.relevance);
            s.slos.record_request(true, elapsed, Some(a.relevance));
            s.reranker.record(
                &body.user_id,
                &assignment,
                elapsed.as_secs_f64() * 1e3,
                Some(a.relevance),
                true,
            );
            s.answers.fetch_add(1, Ordering::Relaxed);
            s.events.fetch_add(1, Ordering::Relaxed);
            scope.finish_ok();
            Json(AnswerResponse {
                answer: a.text,
                trace_id,
                correlation_id: correlation.to_string(),
                user_id: body.user_id,
                stages: a.stages,
                relevance: a.relevance,
                variations: serde_json::Map::from_iter([(
                    RERANKER_EXPERIMENT.to_owned(),
                    serde_json::Value::from(assignment.key.clone()),
                )]),
                flags: serde_json::Map::from_iter([(
                    CHUNKING_FLAG.to_owned(),
                    serde_json::Value::from(chunking_on),
                )]),
            })
            .into_response()
        }
        Err(e) => {
            cohort.failed.increment(1);
            s.slos.record_request(false, elapsed, None);
            s.reranker.record(
                &body.user_id,
                &assignment,
                elapsed.as_secs_f64() * 1e3,
                None,
                false,
            );
            scope.finish_err(&e);
            s.events.fetch_add(1, Ordering::Relaxed);
            error(StatusCode::INTERNAL_SERVER_ERROR, e, Some(&correlation))
        }
    }
}

async fn healthz(State(s): State<Arc<Service>>) -> Response {
    if s.faults.get().health_check_failure {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "health check fault injected",
            None,
        );
    }
    (StatusCode::OK, "ok\n").into_response()
}

async fn readyz(State(s): State<Arc<Service>>) -> Response {
    let f = s.faults.get();
    let why = if s.draining.load(Ordering::SeqCst) {
        Some("draining")
    } else if !s.flags.manager.is_ready() {
        Some("flags not loaded yet")
    } else if f.health_check_failure {
        Some("health check fault injected")
    } else if f.dependency_failure {
        Some("a dependency (retrieval) is down")
    } else {
        None
    };
    match why {
        Some(w) => error(StatusCode::SERVICE_UNAVAILABLE, w, None),
        None => (StatusCode::OK, "ready\n").into_response(),
    }
}

/// SLO status and burn rates, and the active faults, as gauges (refreshed
/// on every scrape).
fn publish_gauges(s: &Service) {
    for st in &s.slos.dashboard().slos {
        let slo = st.name.clone();
        metrics::gauge!("flightdeck_slo_error_budget_remaining", "slo" => slo.clone())
            .set(st.error_budget_remaining);
        metrics::gauge!("flightdeck_slo_compliant", "slo" => slo.clone()).set(if st.compliant {
            1.0
        } else {
            0.0
        });
        if let Some(sli) = st.sli {
            metrics::gauge!("flightdeck_slo_sli", "slo" => slo.clone()).set(sli);
        }
        for b in &st.burn_rates {
            metrics::gauge!("flightdeck_slo_burn_rate", "slo" => slo.clone(), "tier" => b.tier.clone(), "window" => "short")
                .set(b.short);
            metrics::gauge!("flightdeck_slo_burn_rate", "slo" => slo.clone(), "tier" => b.tier.clone(), "window" => "long")
                .set(b.long);
        }
    }
    metrics::gauge!(BUILD_INFO, "version" => s.options.version.clone()).set(1.0);
    let f = s.faults.get();
    for (fault, value) in [
        ("error_rate", f.error_rate),
        ("added_latency_ms", f.added_latency_ms),
        (
            "health_check_failure",
            f64::from(u8::from(f.health_check_failure)),
        ),
        (
            "dependency_failure",
            f64::from(u8::from(f.dependency_failure)),
        ),
        ("memory_leak_mb_per_s", f.memory_leak_mb_per_s),
        ("crash_after_s", f.crash_after_s),
        ("flag_on_error_rate", f.flag_on_error_rate),
        ("flag_on_added_latency_ms", f.flag_on_added_latency_ms),
    ] {
        metrics::gauge!("flightdeck_fault_active", "fault" => fault).set(value);
    }
    if let Some(rss) = resident_bytes() {
        metrics::gauge!("process_resident_memory_bytes").set(rss);
    }
}

/// The process's resident memory (Linux `/proc/self/status` VmRSS), the
/// gauge Prometheus client libraries call `process_resident_memory_bytes`:
/// what a release judges a memory leak by.
fn resident_bytes() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kb * 1024.0)
}

async fn metrics(State(s): State<Arc<Service>>) -> Response {
    publish_gauges(&s);
    match &s.exposition {
        Some(p) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            p.render(),
        )
            .into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "metrics are disabled (metrics_enabled = false)",
            None,
        ),
    }
}

/// How long an unchanged `/api/dashboard` snapshot is served again (the
/// page refreshes every second; uptime and SLO windows move with time).
const DASHBOARD_MAX_AGE: Duration = Duration::from_millis(250);

async fn dashboard(State(s): State<Arc<Service>>) -> Response {
    let events = s.events.load(Ordering::Relaxed);
    let cached = s
        .dashboard_cache
        .lock()
        .ok()
        .and_then(|c| c.clone())
        .filter(|(e, at, _)| *e == events && at.elapsed() < DASHBOARD_MAX_AGE)
        .map(|(_, _, body)| body);
    let body = match cached {
        Some(b) => b,
        None => {
            let body: axum::body::Bytes = serde_json::to_vec(&serde_json::json!({
                "uptime_secs": s.started.elapsed().as_secs_f64(),
                "version": s.options.version,
                "answers": s.answers(),
                "in_flight": s.in_flight(),
                "draining": s.draining.load(Ordering::SeqCst),
                "faults": s.faults.get(),
                "metrics": s.metrics.dashboard(),
                "slo": s.slos.dashboard(),
            }))
            .unwrap_or_default()
            .into();
            if let Ok(mut c) = s.dashboard_cache.lock() {
                *c = Some((events, Instant::now(), body.clone()));
            }
            body
        }
    };
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn list_flags(State(s): State<Arc<Service>>) -> Response {
    Json(s.flags.describe()).into_response()
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        Json(ErrorBody {
            error: "an admin token is required (Authorization: Bearer <token>)".into(),
            correlation_id: None,
        }),
    )
        .into_response()
}

async fn kill_flag(
    State(s): State<Arc<Service>>,
    axum::extract::Path(id): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Response {
    switch_flag(&s, &id, &headers, true)
}

async fn restore_flag(
    State(s): State<Arc<Service>>,
    axum::extract::Path(id): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Response {
    switch_flag(&s, &id, &headers, false)
}

/// Kills (or restores) flag `id` for the admin-token holder.
fn switch_flag(s: &Service, id: &str, headers: &HeaderMap, kill: bool) -> Response {
    if !s.authorized(headers) {
        return unauthorized();
    }
    let m = &s.flags.manager;
    let done = if kill {
        m.kill(id, "api", "killed through /api/flags")
            .map(|record| serde_json::json!({ "id": id, "killed": true, "kill": record }))
    } else {
        m.restore(id, "api", "restored through /api/flags")
            .map(|()| serde_json::json!({ "id": id, "killed": false }))
    };
    match done {
        Ok(body) => {
            s.events.fetch_add(1, Ordering::Relaxed);
            Json(body).into_response()
        }
        Err(e) => error(StatusCode::BAD_REQUEST, e.to_string(), None),
    }
}

async fn experiments(State(s): State<Arc<Service>>) -> Response {
    Json(serde_json::json!({ RERANKER_EXPERIMENT: s.reranker.analysis() })).into_response()
}

/// The live dashboard page (embedded; no network beyond this service).
const DASHBOARD_PAGE: &str = include_str!("dashboard.html");

async fn dashboard_page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; script-src 'unsafe-inline' 'self'; style-src 'unsafe-inline'",
            ),
        ],
        DASHBOARD_PAGE,
    )
        .into_response()
}

async fn slo(State(s): State<Arc<Service>>) -> Response {
    Json(s.slos.dashboard()).into_response()
}

async fn get_faults(State(s): State<Arc<Service>>) -> Response {
    Json(s.faults.get()).into_response()
}

async fn set_faults(
    State(s): State<Arc<Service>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if !s.authorized(&headers) {
        return unauthorized();
    }
    match s.faults.apply(&body) {
        Ok(f) => {
            s.events.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(target: flightdeck::obs::names::target::HTTP, faults = %serde_json::to_string(&f).unwrap_or_default(), "faults changed");
            Json(f).into_response()
        }
        Err(e) => error(StatusCode::BAD_REQUEST, e.to_string(), None),
    }
}

/// Waits for SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_in_constant_time_and_exactly() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"x"));
    }
}

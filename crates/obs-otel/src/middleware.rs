//! tower middleware for servers and clients (axum, hyper, tonic): W3C
//! context in and out, SERVER and CLIENT spans with HTTP semantic-convention
//! attributes, the correlation id, and RED metrics.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context as TaskContext, Poll};
use std::time::Instant;

use flightdeck_obs_core::{CorrelationContext, CorrelationId, CorrelationSource, LabelCap};
use http::{HeaderValue, Request, Response};
use opentelemetry::KeyValue;
use opentelemetry::baggage::BaggageExt;
use opentelemetry::trace::{SpanContext, TraceContextExt as _, TraceFlags};
use tower::{Layer, Service};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::propagation::{extract, inject};

/// Histogram (seconds): server request duration, labels `http_route`,
/// `http_request_method`, `http_response_status_code`.
pub const HTTP_SERVER_REQUEST_DURATION: &str = "http_server_request_duration_seconds";
/// Counter: server requests, labels `http_route` and `status_class` (`2xx`…).
pub const HTTP_SERVER_REQUESTS_TOTAL: &str = "http_server_requests_total";
/// The response header carrying the correlation id.
pub const CORRELATION_HEADER: &str = "x-correlation-id";
/// The baggage key carrying the correlation id across services.
pub const CORRELATION_BAGGAGE_KEY: &str = "correlation_id";

type RouteFn = Arc<dyn Fn(&http::request::Parts) -> Option<String> + Send + Sync>;

/// The server layer: extracts `traceparent`/`tracestate`/`baggage`, opens a
/// SERVER span, sets the status on 5xx, returns `x-correlation-id`, and
/// records RED metrics.
///
/// Routes label the metrics, so they must be templates (`/users/{id}`), not
/// paths: give a function that finds the matched route (with axum, read
/// `MatchedPath` from the request extensions). Without one, the route is
/// `unknown`. At most 200 distinct routes are kept; more fold into `other`.
#[derive(Clone)]
pub struct ServerLayer {
    route: Option<RouteFn>,
    cap: Arc<LabelCap>,
    red: Arc<RedHandles>,
}

/// Distinct route labels kept; more fold into `other`.
const MAX_ROUTES: usize = 200;

/// The RED metrics' handles by route, then method and status code, so a
/// request records without building label strings or looking the metric up
/// in the recorder. Handles bind to the recorder current when a
/// combination is first seen. Routes folded into `other` are not cached.
#[derive(Default)]
struct RedHandles {
    routes: RwLock<HashMap<String, RouteHandles>>,
}

/// One route's duration histogram and request counter, by method and
/// status code.
type RouteHandles = HashMap<(http::Method, u16), (metrics::Histogram, metrics::Counter)>;

impl RedHandles {
    /// Records one request of `route` (a template, or `unknown`).
    fn record(&self, cap: &LabelCap, route: &str, method: &http::Method, code: u16, secs: f64) {
        {
            let routes = self.routes.read().unwrap_or_else(|e| e.into_inner());
            if let Some((h, c)) = routes
                .get(route)
                .and_then(|m| m.get(&(method.clone(), code)))
            {
                h.record(secs);
                c.increment(1);
                return;
            }
        }
        let label = cap.cap("http_route", route);
        let h = metrics::histogram!(
            HTTP_SERVER_REQUEST_DURATION,
            "http_route" => label.clone(),
            "http_request_method" => method.as_str().to_owned(),
            "http_response_status_code" => code.to_string()
        );
        let c = metrics::counter!(
            HTTP_SERVER_REQUESTS_TOTAL,
            "http_route" => label.clone(),
            "status_class" => status_class(code)
        );
        h.record(secs);
        c.increment(1);
        if label == route {
            let mut routes = self.routes.write().unwrap_or_else(|e| e.into_inner());
            if routes.len() < MAX_ROUTES || routes.contains_key(route) {
                routes
                    .entry(route.to_owned())
                    .or_default()
                    .insert((method.clone(), code), (h, c));
            }
        }
    }
}

impl std::fmt::Debug for ServerLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerLayer")
            .field("route", &self.route.is_some())
            .finish()
    }
}

impl Default for ServerLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl ServerLayer {
    /// A layer without route templates. Registers the RED metrics' help
    /// text with the current `metrics` recorder.
    pub fn new() -> Self {
        metrics::describe_histogram!(
            HTTP_SERVER_REQUEST_DURATION,
            metrics::Unit::Seconds,
            "Duration of HTTP server requests, by route, method and status code."
        );
        metrics::describe_counter!(
            HTTP_SERVER_REQUESTS_TOTAL,
            metrics::Unit::Count,
            "HTTP server requests, by route and status class."
        );
        Self {
            route: None,
            cap: Arc::new(LabelCap::new(MAX_ROUTES)),
            red: Arc::new(RedHandles::default()),
        }
    }

    /// Finds the route template of a request. Defaults to none (`unknown`).
    #[must_use]
    pub fn with_route(
        mut self,
        f: impl Fn(&http::request::Parts) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.route = Some(Arc::new(f));
        self
    }

    /// Creates `http_server_requests_total` at 0 for each of `routes` and
    /// every status class (2xx to 5xx) in the current recorder.
    ///
    /// Prometheus cannot see the first increase of a counter that appears
    /// with a value (it does not know the counter started at 0), so a
    /// series created at the first error under-reports the error rate for
    /// a whole rate window. A canary judged on its first minutes needs its
    /// error series to exist from the start: name the routes that matter.
    #[must_use]
    pub fn with_known_routes<'a>(self, routes: impl IntoIterator<Item = &'a str>) -> Self {
        for route in routes {
            let label = self.cap.cap("http_route", route);
            for class in ["2xx", "3xx", "4xx", "5xx"] {
                metrics::counter!(
                    HTTP_SERVER_REQUESTS_TOTAL,
                    "http_route" => label.clone(),
                    "status_class" => class
                )
                .absolute(0);
            }
        }
        self
    }
}

impl<S> Layer<S> for ServerLayer {
    type Service = ServerService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ServerService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`ServerLayer`] wraps around yours.
#[derive(Clone, Debug)]
pub struct ServerService<S> {
    inner: S,
    layer: ServerLayer,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Records the response status on a server or client span; 5xx is an error.
///
/// A gRPC response that fails early carries `grpc-status` in its headers
/// (a trailers-only response): the code is recorded as
/// `rpc.grpc.status_code` and marks the span as an error as the semantic
/// conventions say (any non-zero code on a client span; on a server span
/// only codes that mean the server failed). A status sent in trailers after
/// a body is not seen here.
fn record_status(span: &tracing::Span, code: u16, headers: &http::HeaderMap, server: bool) {
    span.record("http.response.status_code", code);
    let grpc = headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u8>().ok());
    if let Some(g) = grpc {
        span.record("rpc.grpc.status_code", g);
    }
    // UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS.
    let grpc_error = match grpc {
        Some(g) if server => matches!(g, 2 | 4 | 12 | 13 | 14 | 15),
        Some(g) => g != 0,
        None => false,
    };
    if code >= 500 || grpc_error {
        span.record("otel.status_code", "ERROR");
    }
}

fn status_class(code: u16) -> &'static str {
    match code {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

impl<S, B, R> Service<Request<B>> for ServerService<S>
where
    S: Service<Request<B>, Response = Response<R>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: std::fmt::Display,
    B: Send + 'static,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Response<R>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let start = Instant::now();
        let (parts, body) = req.into_parts();
        let parent = extract(&parts.headers, &opentelemetry::Context::new());
        // The correlation id: the caller's header, else its baggage, else new.
        let (cid, source) =
            CorrelationId::from_headers(|name| parts.headers.get(name).map(HeaderValue::as_bytes));
        let cid = if source == CorrelationSource::Generated {
            parent
                .baggage()
                .get(CORRELATION_BAGGAGE_KEY)
                .and_then(|v| CorrelationId::new(v.as_str()).ok())
                .unwrap_or(cid)
        } else {
            cid
        };
        let route = self.layer.route.as_ref().and_then(|f| f(&parts));
        let method = parts.method.clone();
        let name = match &route {
            Some(r) => format!("{method} {r}"),
            None => method.as_str().to_owned(),
        };
        let header = |n: &str| {
            parts
                .headers
                .get(n)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
        };
        let remote_parent = {
            use opentelemetry::trace::TraceContextExt as _;
            let span = parent.span();
            let sc = span.span_context();
            // obs-core's ids print through a hex table, faster than the
            // OTel ids' `u128` formatting. Both are `None` when zero, which
            // is exactly when the context is not valid.
            match (
                flightdeck_obs_core::TraceId::from_bytes(sc.trace_id().to_bytes()),
                flightdeck_obs_core::SpanId::from_bytes(sc.span_id().to_bytes()),
            ) {
                (Some(trace), Some(span_id)) => (
                    format!("00-{trace}-{span_id}-{:02x}", sc.trace_flags().to_u8() & 1),
                    sc.trace_state().header(),
                ),
                _ => (String::new(), String::new()),
            }
        };
        let span = {
            // The extracted context is current while the span opens, so it
            // becomes the OTel parent (and obs-core records the remote parent).
            let cx = parent.with_baggage([KeyValue::new(
                CORRELATION_BAGGAGE_KEY,
                cid.as_str().to_owned(),
            )]);
            let _attached = cx.attach();
            // `&str` values rather than `%` (Display): tracing-opentelemetry
            // formats Display values into a fresh String per field.
            tracing::info_span!(
                "http.server",
                otel.name = name.as_str(),
                otel.kind = "server",
                otel.status_code = tracing::field::Empty,
                otel.status_message = tracing::field::Empty,
                // Declared so obs-core's `RequestScope::in_current_span`
                // makes this span the request's root (one span per request).
                flightdeck.request.operation = tracing::field::Empty,
                flightdeck.request.outcome = tracing::field::Empty,
                http.request.method = method.as_str(),
                url.path = parts.uri.path(),
                http.route = route.as_deref().unwrap_or(""),
                server.address = header("host"),
                user_agent.original = header("user-agent"),
                http.response.status_code = tracing::field::Empty,
                rpc.grpc.status_code = tracing::field::Empty,
                correlation_id = cid.as_str(),
                // obs-core continues the caller's trace from it even when
                // no OpenTelemetry layer is installed: the extracted context,
                // normalized (empty when the header was invalid).
                flightdeck.remote_parent = remote_parent.0.as_str(),
                // The caller's tracestate, as the propagator validated it.
                flightdeck.tracestate = remote_parent.1.as_str(),
            )
        };
        let (cap, red) = (self.layer.cap.clone(), self.layer.red.clone());
        let fut = {
            let _e = span.enter();
            let _c = CorrelationContext::enter(cid.clone());
            self.inner.call(Request::from_parts(parts, body))
        };
        let span2 = span.clone();
        Box::pin(
            async move {
                let result = fut.await;
                let code = match &result {
                    Ok(resp) => {
                        let code = resp.status().as_u16();
                        record_status(&span2, code, resp.headers(), true);
                        code
                    }
                    Err(_) => {
                        record_status(&span2, 500, &http::HeaderMap::new(), true);
                        500
                    }
                };
                let secs = start.elapsed().as_secs_f64();
                let route = route.as_deref().unwrap_or("unknown");
                red.record(&cap, route, &method, code, secs);
                result.map(|mut resp| {
                    if let Ok(v) = HeaderValue::from_str(cid.as_str()) {
                        resp.headers_mut().insert(CORRELATION_HEADER, v);
                    }
                    resp
                })
            }
            .instrument(span),
        )
    }
}

/// The client layer: opens a CLIENT span under the current one and injects
/// `traceparent`, `tracestate`, `baggage` (with the correlation id) and
/// `x-correlation-id` into the outgoing request.
#[derive(Clone, Copy, Debug, Default)]
pub struct ClientLayer;

impl<S> Layer<S> for ClientLayer {
    type Service = ClientService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ClientService { inner }
    }
}

/// The service [`ClientLayer`] wraps around a client.
#[derive(Clone, Debug)]
pub struct ClientService<S> {
    inner: S,
}

impl<S, B, R> Service<Request<B>> for ClientService<S>
where
    S: Service<Request<B>, Response = Response<R>> + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Response<R>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let method = req.method().as_str().to_owned();
        let host = req.uri().host().unwrap_or("").to_owned();
        let span = tracing::info_span!(
            "http.client",
            otel.name = %method,
            otel.kind = "client",
            otel.status_code = tracing::field::Empty,
            http.request.method = %method,
            server.address = %host,
            url.full = %req.uri(),
            http.response.status_code = tracing::field::Empty,
            rpc.grpc.status_code = tracing::field::Empty,
        );
        let mut cx = span.context();
        if let Some(cid) = CorrelationContext::current() {
            cx = cx.with_baggage([KeyValue::new(
                CORRELATION_BAGGAGE_KEY,
                cid.as_str().to_owned(),
            )]);
            if let Ok(v) = HeaderValue::from_str(cid.as_str()) {
                req.headers_mut().insert(CORRELATION_HEADER, v);
            }
        }
        // Without an OpenTelemetry layer the span has no OTel context: take
        // the ids obs-core gave the client span, so the callee still joins
        // this trace.
        if !cx.span().span_context().is_valid()
            && let Some(ours) = span.in_scope(flightdeck_obs_core::current_span_context)
        {
            let sc = SpanContext::new(
                opentelemetry::trace::TraceId::from_bytes(ours.trace_id.to_bytes()),
                opentelemetry::trace::SpanId::from_bytes(ours.span_id.to_bytes()),
                if ours.sampled {
                    TraceFlags::SAMPLED
                } else {
                    TraceFlags::default()
                },
                false,
                ours.trace_state
                    .as_deref()
                    .and_then(crate::propagation::parse_tracestate)
                    .unwrap_or_default(),
            );
            cx = cx.with_remote_span_context(sc);
        }
        inject(&cx, req.headers_mut());
        let fut = {
            let _e = span.enter();
            self.inner.call(req)
        };
        let span2 = span.clone();
        Box::pin(
            async move {
                let result = fut.await;
                match &result {
                    Ok(resp) => {
                        record_status(&span2, resp.status().as_u16(), resp.headers(), false)
                    }
                    Err(_) => {
                        span2.record("otel.status_code", "ERROR");
                    }
                }
                result
            }
            .instrument(span),
        )
    }
}

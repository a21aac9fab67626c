//! `POST /test`: the W3C Trace Context harness's test-service protocol. For
//! each element of the posted JSON array, POST its `arguments` to its `url`,
//! propagating the trace context: the caller's trace id and flags and its
//! `tracestate` (parsed and re-serialized by obs-otel's propagator), with
//! this service's span as the new parent. Off unless enabled, and only to
//! loopback URLs (it would otherwise let anyone make the service call out).

use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use flightdeck::obs::current_span_context;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use opentelemetry::Context;
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use serde::Deserialize;

/// The most calls one `/test` request may make.
const MAX_CALLS: usize = 64;

#[derive(Debug, Deserialize)]
struct Call {
    url: String,
    arguments: serde_json::Value,
}

/// The outbound headers: our span as the parent in the caller's trace.
fn outbound(inbound: &HeaderMap) -> HeaderMap {
    let cx = flightdeck::otel::extract(inbound, &Context::new());
    let theirs = cx.span().span_context().clone();
    let mut headers = HeaderMap::new();
    let Some(ours) = current_span_context() else {
        return headers;
    };
    let (flags, state) = if theirs.is_valid() {
        (theirs.trace_flags(), theirs.trace_state().clone())
    } else {
        (
            if ours.sampled {
                TraceFlags::SAMPLED
            } else {
                TraceFlags::default()
            },
            TraceState::default(),
        )
    };
    let sc = SpanContext::new(
        TraceId::from_bytes(ours.trace_id.to_bytes()),
        SpanId::from_bytes(ours.span_id.to_bytes()),
        flags,
        true,
        state,
    );
    flightdeck::otel::inject(&Context::new().with_remote_span_context(sc), &mut headers);
    // The caller's tracestate as the level 2 grammar reads it (OpenTelemetry's
    // `TraceState` refuses some keys that grammar allows, e.g. `foo@@bar`).
    if theirs.is_valid() {
        let joined: Vec<&str> = inbound
            .get_all(flightdeck::otel::TRACESTATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        let members = flightdeck::otel::tracestate_members(&joined.join(",")).unwrap_or_default();
        let value = members
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        match axum::http::HeaderValue::from_str(&value) {
            Ok(v) if !value.is_empty() => {
                headers.insert(flightdeck::otel::TRACESTATE, v);
            }
            _ => {
                headers.remove(flightdeck::otel::TRACESTATE);
            }
        }
    }
    headers
}

/// `host:port` and path of a loopback `http://` URL.
fn loopback(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix("http://")?;
    let (authority, path) = rest
        .find('/')
        .map_or((rest, "/"), |i| (&rest[..i], &rest[i..]));
    let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
    matches!(host, "127.0.0.1" | "localhost" | "[::1]")
        .then(|| (authority.to_owned(), path.to_owned()))
}

async fn post(url: &str, headers: &HeaderMap, body: Vec<u8>) -> Result<u16, String> {
    let (authority, path) = loopback(url).ok_or_else(|| {
        format!(
            "{} is not a loopback http:// URL",
            flightdeck::obs::shown(url)
        )
    })?;
    let stream = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::TcpStream::connect(&authority),
    )
    .await
    .map_err(|_| "connect timeout".to_owned())?
    .map_err(|e| format!("connect: {}", e.kind()))?;
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let mut req = hyper::Request::builder()
        .method("POST")
        .uri(path)
        .header("host", authority.as_str())
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    for (k, v) in headers {
        req.headers_mut().insert(k, v.clone());
    }
    let resp = tokio::time::timeout(Duration::from_secs(10), send.send_request(req))
        .await
        .map_err(|_| "timeout".to_owned())?
        .map_err(|e| e.to_string())?;
    let code = resp.status().as_u16();
    let _ = resp.into_body().collect().await;
    Ok(code)
}

pub(crate) async fn run(headers: HeaderMap, body: Bytes) -> Response {
    let calls: Vec<Call> = match serde_json::from_slice(&body) {
        Ok(c) => c,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("expected a JSON array of {{url, arguments}}: {e}"),
            )
                .into_response();
        }
    };
    if calls.len() > MAX_CALLS {
        return (
            StatusCode::BAD_REQUEST,
            format!("at most {MAX_CALLS} calls"),
        )
            .into_response();
    }
    for call in calls {
        let args = serde_json::to_vec(&call.arguments).unwrap_or_default();
        // Each call is its own client span, so each carries its own parent id.
        let span = tracing::info_span!("http.client", otel.kind = "client");
        let out = span.in_scope(|| outbound(&headers));
        if let Err(e) = tracing::Instrument::instrument(post(&call.url, &out, args), span).await {
            tracing::warn!(target: flightdeck::obs::names::target::HTTP, error = %flightdeck::obs::shown(&e), "a /test call failed");
            return (StatusCode::BAD_GATEWAY, e).into_response();
        }
    }
    (StatusCode::OK, "ok").into_response()
}

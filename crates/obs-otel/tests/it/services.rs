//! Two services on loopback, A calling B through the client and server
//! layers: one trace spans both, B's SERVER span is the child of A's CLIENT
//! span, and both services' log lines carry the same trace and correlation ids.

use std::time::Duration;

use axum::Router;
use axum::extract::MatchedPath;
use axum::routing::get;
use flightdeck_obs_core::SpanKind;
use flightdeck_obs_otel::{ClientLayer, ServerLayer};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::{Layer, Service};

use flightdeck_obs_otel::testing::Collector;

fn server_layer() -> ServerLayer {
    ServerLayer::new().with_route(|parts| {
        parts
            .extensions
            .get::<MatchedPath>()
            .map(|m| m.as_str().to_owned())
    })
}

async fn serve(router: Router) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    port
}

/// The caller of A: its trace continues through A and B.
const CALLER: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

#[test]
fn a_trace_spans_two_services() {
    let collector = Collector::start();
    let crate::FullStack {
        pipeline,
        records,
        logs,
        dispatch,
    } = crate::full_stack(&collector, "two-services");
    let rt = crate::runtime(&dispatch);

    let (status, header) = tracing::dispatcher::with_default(&dispatch, || {
        rt.block_on(async {
            // B: answers, logging.
            let b = Router::new()
                .route(
                    "/rerank/{k}",
                    get(|| async {
                        tracing::info!(service = "b", "reranking");
                        "ranked"
                    }),
                )
                .route_layer(server_layer());
            let b_port = serve(b).await;
            // A: calls B through the client layer.
            let a = Router::new()
                .route(
                    "/search",
                    get(move || async move {
                        tracing::info!(service = "a", "searching");
                        let client = Client::builder(TokioExecutor::new())
                            .build_http::<Empty<axum::body::Bytes>>();
                        let mut client = ClientLayer.layer(client);
                        let req = http::Request::get(format!("http://127.0.0.1:{b_port}/rerank/5"))
                            .body(Empty::new())
                            .unwrap();
                        let resp = client.call(req).await.unwrap();
                        let body = resp.into_body().collect().await.unwrap().to_bytes();
                        String::from_utf8_lossy(&body).into_owned()
                    }),
                )
                .route_layer(server_layer());
            let a_port = serve(a).await;

            let client =
                Client::builder(TokioExecutor::new()).build_http::<Empty<axum::body::Bytes>>();
            let req = http::Request::get(format!("http://127.0.0.1:{a_port}/search"))
                .header("x-correlation-id", "req-7")
                .header("traceparent", CALLER)
                .header("tracestate", "rojo=00f067aa0ba902b7")
                .body(Empty::new())
                .unwrap();
            let resp = client.request(req).await.unwrap();
            let header = resp
                .headers()
                .get("x-correlation-id")
                .map(|v| v.to_str().unwrap().to_owned());
            (resp.status(), header)
        })
    });
    assert_eq!(status, 200);
    assert_eq!(header.as_deref(), Some("req-7"));
    drop(rt);
    pipeline.shutdown(Duration::from_secs(5)).unwrap();

    let recs = records.take();
    let server = |route: &str| {
        recs.iter()
            .find(|r| {
                r.kind == SpanKind::Server
                    && r.attributes
                        .iter()
                        .any(|(k, v)| k == "http.route" && v.to_string().contains(route))
            })
            .unwrap_or_else(|| panic!("no server span for {route}: {recs:#?}"))
    };
    let a_server = server("/search");
    let b_server = server("/rerank/{k}");
    let client = recs
        .iter()
        .find(|r| r.kind == SpanKind::Client)
        .expect("client span");
    assert_eq!(a_server.trace_id, b_server.trace_id, "one trace");
    assert_eq!(
        a_server.trace_id.to_string(),
        "4bf92f3577b34da6a3ce929d0e0e4736",
        "the caller's"
    );
    assert!(a_server.parent_is_remote);
    assert_eq!(
        a_server.parent_span_id.map(|p| p.to_string()).as_deref(),
        Some("00f067aa0ba902b7")
    );
    for r in [a_server, client, b_server] {
        assert_eq!(
            r.trace_state.as_deref(),
            Some("rojo=00f067aa0ba902b7"),
            "the caller's tracestate reaches B: {r:?}"
        );
    }
    assert_eq!(client.trace_id, a_server.trace_id);
    assert_eq!(client.parent_span_id, Some(a_server.span_id));
    assert_eq!(
        b_server.parent_span_id,
        Some(client.span_id),
        "B's server span is the child of A's client span"
    );
    assert_eq!(
        a_server.correlation_id.as_ref().map(|c| c.as_str()),
        Some("req-7")
    );
    assert_eq!(
        b_server.correlation_id.as_ref().map(|c| c.as_str()),
        Some("req-7")
    );

    let lines: Vec<serde_json::Value> = logs
        .lines()
        .iter()
        .filter(|l| l.contains("searching") || l.contains("reranking"))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    let trace = a_server.trace_id.to_string();
    for l in &lines {
        assert_eq!(l["trace_id"], trace.as_str(), "{l}");
        assert_eq!(l["correlation_id"], "req-7", "{l}");
    }
    // The collector got B's server span with A's client span as its parent.
    let out = collector.wait_for(&trace, 3);
    let b_block = out
        .split("Span #")
        .find(|b| b.contains("GET /rerank/{k}"))
        .expect("B's span at the collector");
    assert!(b_block.contains(&client.span_id.to_string()), "{b_block}");
    assert!(b_block.contains("SPAN_KIND_SERVER"), "{b_block}");
    assert!(b_block.contains("rojo=00f067aa0ba902b7"), "{b_block}");
}

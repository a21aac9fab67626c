//! The server layer's RED metrics through the real Prometheus recorder
//! (`metrics-exporter-prometheus`): a duration histogram in seconds by
//! route, method and status code, a request counter by route and status
//! class, and a bounded number of route labels.

use axum::Router;
use axum::extract::MatchedPath;
use axum::http::StatusCode;
use axum::routing::get;
use flightdeck_obs_core::LocalPrometheus;
use flightdeck_obs_otel::ServerLayer;
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// Runs `requests` (paths) against `router` on loopback, on one thread so
/// the scoped recorder sees every metric; returns the exposition.
fn exposition(router: impl FnOnce() -> Router, requests: &[String]) -> String {
    let (local, expo) = LocalPrometheus::new();
    local.scoped(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let app = router();
            tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
            let client =
                Client::builder(TokioExecutor::new()).build_http::<Empty<axum::body::Bytes>>();
            for path in requests {
                let uri: http::Uri = format!("http://127.0.0.1:{port}{path}").parse().unwrap();
                client.get(uri).await.unwrap();
            }
        });
    });
    expo.render()
}

/// The value of the exposition line that starts with `prefix`.
fn value(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn durations_and_requests_are_counted_by_route_and_status() {
    let text = exposition(
        || {
            Router::new()
                .route("/docs/{id}", get(|| async { "doc" }))
                .route(
                    "/fail",
                    get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "down") }),
                )
                .route_layer(ServerLayer::new().with_route(|p| {
                    p.extensions
                        .get::<MatchedPath>()
                        .map(|m| m.as_str().to_owned())
                }))
        },
        &["/docs/1", "/docs/2", "/docs/3", "/fail"].map(String::from),
    );
    assert!(
        text.contains("# TYPE http_server_request_duration_seconds histogram"),
        "{text}"
    );
    assert!(
        text.contains("# HELP http_server_requests_total HTTP server requests"),
        "{text}"
    );
    let docs =
        r#"http_route="/docs/{id}",http_request_method="GET",http_response_status_code="200""#;
    assert_eq!(
        value(
            &text,
            &format!("http_server_request_duration_seconds_count{{{docs}}}")
        ),
        Some(3.0),
        "{text}"
    );
    let sum = value(
        &text,
        &format!("http_server_request_duration_seconds_sum{{{docs}}}"),
    )
    .expect("a sum");
    assert!(sum > 0.0 && sum < 3.0, "seconds, not milliseconds: {sum}");
    assert_eq!(
        value(
            &text,
            r#"http_server_request_duration_seconds_count{http_route="/fail",http_request_method="GET",http_response_status_code="503"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            r#"http_server_requests_total{http_route="/docs/{id}",status_class="2xx"}"#
        ),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            r#"http_server_requests_total{http_route="/fail",status_class="5xx"}"#
        ),
        Some(1.0),
        "{text}"
    );
}

#[test]
fn route_labels_are_capped() {
    // A route function that returns raw paths would make a label per id:
    // after 200 distinct routes the rest fold into "other".
    let paths: Vec<String> = (0..230).map(|i| format!("/item/{i}")).collect();
    let text = exposition(
        || {
            Router::new()
                .route("/item/{id}", get(|| async { "item" }))
                .route_layer(ServerLayer::new().with_route(|p| Some(p.uri.path().to_owned())))
        },
        &paths,
    );
    let routes: std::collections::BTreeSet<&str> = text
        .lines()
        .filter(|l| l.starts_with("http_server_requests_total{"))
        .filter_map(|l| l.split("http_route=\"").nth(1)?.split('"').next())
        .collect();
    assert_eq!(routes.len(), 201, "200 routes and other: {routes:?}");
    assert!(routes.contains("other"));
    assert_eq!(
        value(
            &text,
            r#"http_server_requests_total{http_route="other",status_class="2xx"}"#
        ),
        Some(30.0),
        "{text}"
    );
}

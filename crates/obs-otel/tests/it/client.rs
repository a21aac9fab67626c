//! The client layer with only obs-core's span layer installed (no
//! OpenTelemetry layer): the outbound `traceparent` carries the trace and
//! span ids of obs-core's `http.client` span record.

use std::sync::{Arc, Mutex};

use flightdeck_obs_core::{InMemoryExporter, SpanLayer};
use flightdeck_obs_otel::ClientLayer;
use tower::{Layer, Service, ServiceExt};
use tracing_subscriber::layer::SubscriberExt;

#[test]
fn outbound_calls_join_the_trace_without_an_otel_layer() {
    let spans = InMemoryExporter::new();
    let subscriber = tracing_subscriber::registry().with(
        SpanLayer::builder()
            .with_exporter(spans.clone())
            .build()
            .unwrap(),
    );
    let seen: Arc<Mutex<Option<String>>> = Arc::default();
    let seen2 = Arc::clone(&seen);
    let inner = tower::service_fn(move |req: http::Request<()>| {
        let tp = req
            .headers()
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        *seen2.lock().unwrap() = tp;
        async { Ok::<_, std::convert::Infallible>(http::Response::new(())) }
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    tracing::subscriber::with_default(subscriber, || {
        let _root = tracing::info_span!("rag.request").entered();
        let mut client = ClientLayer.layer(inner);
        let req = http::Request::get("http://127.0.0.1:9/x").body(()).unwrap();
        runtime.block_on(async { client.ready().await.unwrap().call(req).await.unwrap() });
    });
    let records = spans.take();
    let client = records
        .iter()
        .find(|r| r.kind == flightdeck_obs_core::SpanKind::Client)
        .expect("a client span");
    let root = records
        .iter()
        .find(|r| r.name == "rag.request")
        .expect("the root");
    let tp = seen
        .lock()
        .unwrap()
        .clone()
        .expect("a traceparent was sent");
    assert_eq!(
        tp,
        format!("00-{}-{}-01", root.trace_id, client.span_id),
        "the callee's parent is our client span"
    );
    assert_eq!(client.trace_id, root.trace_id);
}

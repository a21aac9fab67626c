//! The client layer with only obs-core's span layer installed (no
//! OpenTelemetry layer): the outbound `traceparent` carries the trace and
//! span ids of obs-core's `http.client` span record, and the outbound
//! `tracestate` the caller's.

use std::sync::{Arc, Mutex};

use flightdeck_obs_core::{InMemoryExporter, SpanLayer, SpanRecord};
use flightdeck_obs_otel::ClientLayer;
use tower::{Layer, Service, ServiceExt};
use tracing_subscriber::layer::SubscriberExt;

/// The headers one outbound call sent, and the span records, from inside a
/// root span continuing `remote_parent` with `tracestate` (empty: none).
fn call(remote_parent: &str, tracestate: &str) -> (http::HeaderMap, Vec<SpanRecord>) {
    let spans = InMemoryExporter::new();
    let subscriber = tracing_subscriber::registry().with(
        SpanLayer::builder()
            .with_exporter(spans.clone())
            .build()
            .unwrap(),
    );
    let seen: Arc<Mutex<http::HeaderMap>> = Arc::default();
    let seen2 = Arc::clone(&seen);
    let inner = tower::service_fn(move |req: http::Request<()>| {
        *seen2.lock().unwrap() = req.headers().clone();
        async { Ok::<_, std::convert::Infallible>(http::Response::new(())) }
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    tracing::subscriber::with_default(subscriber, || {
        let _root = tracing::info_span!(
            "rag.request",
            flightdeck.remote_parent = remote_parent,
            flightdeck.tracestate = tracestate,
        )
        .entered();
        let mut client = ClientLayer.layer(inner);
        let req = http::Request::get("http://127.0.0.1:9/x").body(()).unwrap();
        runtime.block_on(async { client.ready().await.unwrap().call(req).await.unwrap() });
    });
    let headers = seen.lock().unwrap().clone();
    (headers, spans.take())
}

fn header(headers: &http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn find<'a>(records: &'a [SpanRecord], name: &str) -> &'a SpanRecord {
    records
        .iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("no {name} span in {records:?}"))
}

#[test]
fn outbound_calls_join_the_trace_without_an_otel_layer() {
    let (headers, records) = call("", "");
    let client = find(&records, "GET");
    let root = find(&records, "rag.request");
    let tp = header(&headers, "traceparent").expect("a traceparent was sent");
    assert_eq!(
        tp,
        format!("00-{}-{}-01", root.trace_id, client.span_id),
        "the callee's parent is our client span"
    );
    assert_eq!(client.trace_id, root.trace_id);
    assert_eq!(
        header(&headers, "tracestate"),
        None,
        "no tracestate to pass on"
    );
    assert_eq!(root.trace_state, None);
}

#[test]
fn the_callers_tracestate_travels_with_the_trace() {
    let caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let state = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE";
    let (headers, records) = call(caller, state);
    let root = find(&records, "rag.request");
    let client = find(&records, "GET");
    assert_eq!(
        root.trace_id.to_string(),
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    assert!(root.parent_is_remote);
    // Every span of the trace in this service carries it...
    assert_eq!(root.trace_state.as_deref(), Some(state));
    assert_eq!(client.trace_state.as_deref(), Some(state));
    // ...and the next hop receives it beside our traceparent.
    assert_eq!(header(&headers, "tracestate").as_deref(), Some(state));
    assert_eq!(
        header(&headers, "traceparent").unwrap(),
        format!("00-{}-{}-01", root.trace_id, client.span_id)
    );
}

#[test]
fn a_tracestate_without_a_valid_traceparent_is_dropped() {
    // W3C §3.3: without a valid traceparent the tracestate is discarded.
    let (headers, records) = call("00-zz-00f067aa0ba902b7-01", "rojo=1");
    assert_eq!(find(&records, "rag.request").trace_state, None);
    assert_eq!(header(&headers, "tracestate"), None);
    // Not printable ASCII: not carried either.
    let caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let (headers, records) = call(caller, "rojo=\u{7}bell");
    assert_eq!(find(&records, "rag.request").trace_state, None);
    assert_eq!(header(&headers, "tracestate"), None);
}

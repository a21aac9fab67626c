//! A tonic gRPC service (the standard `grpc.health.v1.Health`) behind the
//! server layer, called through a tonic channel wrapped in the client
//! layer: one trace spans caller and service, the service's SERVER span is
//! the child of the CLIENT span, and both carry the correlation id.

use std::time::Duration;

use flightdeck_obs_core::SpanKind;
use flightdeck_obs_otel::testing::Collector;
use flightdeck_obs_otel::{ClientLayer, ServerLayer};
use tonic::transport::{Channel, Server};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tower::ServiceBuilder;

#[test]
fn a_trace_spans_a_tonic_client_and_server() {
    let collector = Collector::start();
    let crate::FullStack {
        pipeline,
        records,
        logs,
        dispatch,
    } = crate::full_stack(&collector, "grpc");
    let rt = crate::runtime(&dispatch);

    let status = tracing::dispatcher::with_default(&dispatch, || {
        rt.block_on(async {
            let (reporter, health) = tonic_health::server::health_reporter();
            reporter
                .set_service_status("rerank", tonic_health::ServingStatus::Serving)
                .await;
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let layer = ServerLayer::new().with_route(|parts| Some(parts.uri.path().to_owned()));
            tokio::spawn(async move {
                Server::builder()
                    .layer(layer)
                    .add_service(health)
                    .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
                    .await
                    .unwrap();
            });
            let channel = Channel::from_shared(format!("http://127.0.0.1:{port}"))
                .unwrap()
                .connect_timeout(Duration::from_secs(5))
                .connect()
                .await
                .unwrap();
            let mut client =
                HealthClient::new(ServiceBuilder::new().layer(ClientLayer).service(channel));
            let span = tracing::info_span!("rag.rerank.call");
            let _enter = span.enter();
            let mut req = tonic::Request::new(HealthCheckRequest {
                service: "rerank".into(),
            });
            req.metadata_mut()
                .insert("x-correlation-id", "grpc-9".parse().unwrap());
            let resp = client.check(req).await.unwrap();
            tracing::info!("checked");
            // An unknown service: NOT_FOUND, a trailers-only response.
            let missing = client
                .check(HealthCheckRequest {
                    service: "nope".into(),
                })
                .await
                .unwrap_err();
            (resp.into_inner().status, missing.code())
        })
    });
    assert_eq!(status.0, ServingStatus::Serving as i32);
    assert_eq!(status.1, tonic::Code::NotFound);
    drop(rt);
    pipeline.shutdown(Duration::from_secs(5)).unwrap();

    let recs = records.take();
    let of_kind = |kind: SpanKind| -> Vec<&flightdeck_obs_core::SpanRecord> {
        let mut v: Vec<_> = recs.iter().filter(|r| r.kind == kind).collect();
        v.sort_by_key(|r| r.start_unix_nanos);
        v
    };
    let (servers, clients) = (of_kind(SpanKind::Server), of_kind(SpanKind::Client));
    assert_eq!((servers.len(), clients.len()), (2, 2), "{recs:#?}");
    let (server, client) = (servers[0], clients[0]);
    let caller = recs
        .iter()
        .find(|r| r.name == "rag.rerank.call")
        .expect("caller span");
    assert_eq!(client.parent_span_id, Some(caller.span_id));
    assert_eq!(server.trace_id, caller.trace_id, "one trace");
    assert_eq!(servers[1].parent_span_id, Some(clients[1].span_id));
    assert_eq!(
        server.parent_span_id,
        Some(client.span_id),
        "the server span is the child of the client span"
    );
    let attr = |r: &flightdeck_obs_core::SpanRecord, k: &str| {
        r.attribute(k).map(|v| v.to_string()).unwrap_or_default()
    };
    assert!(
        attr(server, "http.route").contains("/grpc.health.v1.Health/Check"),
        "{server:#?}"
    );
    assert!(
        attr(server, "http.request.method").contains("POST"),
        "{server:#?}"
    );
    assert_eq!(attr(server, "http.response.status_code"), "200");
    assert_eq!(
        server.correlation_id.as_ref().map(|c| c.as_str()),
        Some("grpc-9")
    );
    // NOT_FOUND is the caller's failure, not the server's (semantic
    // conventions): an error on the client span only.
    assert_eq!(
        attr(servers[1], "rpc.grpc.status_code"),
        "5",
        "{:#?}",
        servers[1]
    );
    assert_eq!(servers[1].status, flightdeck_obs_core::SpanStatus::Ok);
    assert_eq!(attr(clients[1], "rpc.grpc.status_code"), "5");
    assert!(
        matches!(
            clients[1].status,
            flightdeck_obs_core::SpanStatus::Error { .. }
        ),
        "{:#?}",
        clients[1]
    );
    assert_eq!(server.status, flightdeck_obs_core::SpanStatus::Ok);
    assert_eq!(
        attr(server, "rpc.grpc.status_code"),
        "",
        "a body-carrying OK has it in trailers"
    );
    let line = logs
        .lines()
        .into_iter()
        .find(|l| l.contains("checked"))
        .expect("log line");
    let line: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(line["trace_id"], caller.trace_id.to_string().as_str());

    // The collector has the server span, parented on the client span.
    let trace = caller.trace_id.to_string();
    let out = collector.wait_for(&trace, 3);
    let block = out
        .split("Span #")
        .find(|b| b.contains(&format!("ID             : {}", server.span_id)))
        .unwrap_or_else(|| panic!("the server span at the collector: {out}"));
    assert!(block.contains("SPAN_KIND_SERVER"), "{block}");
    assert!(
        block.contains(&format!("Parent ID      : {}", client.span_id)),
        "{block}"
    );
}

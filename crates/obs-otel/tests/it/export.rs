//! OTLP export to a real collector over HTTP/protobuf and gRPC, asserted at
//! the receiving end; and an honest report when nobody is listening.

use std::time::Duration;

use flightdeck_obs_otel::{BatchSettings, OtelPipeline, OtlpProtocol, OtlpSettings, PipelineError};
use opentelemetry::trace::TraceContextExt;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;

use flightdeck_obs_otel::testing::Collector;

fn fast() -> BatchSettings {
    BatchSettings {
        delay: Duration::from_millis(50),
        ..BatchSettings::default()
    }
}

/// Emits a SERVER span with an erroring child; returns (trace, root, child) ids.
fn emit(pipeline: &OtelPipeline) -> (String, String, String) {
    let subscriber = tracing_subscriber::registry().with(pipeline.layer());
    tracing::subscriber::with_default(subscriber, || {
        let root = tracing::info_span!(
            "rag.request",
            otel.kind = "server",
            http.request.method = "GET"
        );
        let ids = root.in_scope(|| {
            let child =
                tracing::info_span!("rag.retrieve", otel.status_code = "ERROR", retrieve.k = 8);
            let ids = (
                root.context().span().span_context().trace_id().to_string(),
                root.context().span().span_context().span_id().to_string(),
                child.context().span().span_context().span_id().to_string(),
            );
            drop(child);
            ids
        });
        drop(root);
        ids
    })
}

fn check(protocol: OtlpProtocol) {
    let collector = Collector::start();
    let endpoint = match protocol {
        OtlpProtocol::HttpProtobuf => format!("http://127.0.0.1:{}/v1/traces", collector.http),
        OtlpProtocol::Grpc => format!("http://127.0.0.1:{}", collector.grpc),
    };
    let settings = OtlpSettings::default()
        .with_traces_endpoint(endpoint)
        .with_protocol(protocol)
        .with_service_name("otel-e2e")
        .with_resource_attribute("deployment.environment.name", "test");
    let pipeline = OtelPipeline::build(&settings, fast())
        .unwrap()
        .expect("export is on");
    let (trace, root, child) = emit(&pipeline);
    let report = pipeline
        .shutdown(Duration::from_secs(5))
        .expect("everything delivered");
    assert_eq!((report.ended, report.exported, report.failed), (2, 2, 0));
    let out = collector.wait_for(&trace, 2);
    assert!(out.contains("service.name: Str(otel-e2e)"), "{out}");
    assert!(
        out.contains("deployment.environment.name: Str(test)"),
        "{out}"
    );
    assert!(out.contains("service.version: Str("), "{out}");
    // The child's parent is the root; kinds and status arrive as set.
    let child_block = out
        .split("Span #")
        .find(|b| b.contains("rag.retrieve"))
        .expect("child span");
    assert!(child_block.contains(&child), "{child_block}");
    assert!(
        child_block.contains(&root),
        "child's parent id: {child_block}"
    );
    assert!(child_block.contains("STATUS_CODE_ERROR"), "{child_block}");
    let root_block = out
        .split("Span #")
        .find(|b| b.contains("rag.request"))
        .expect("root span");
    assert!(root_block.contains("SPAN_KIND_SERVER"), "{root_block}");
    assert!(
        root_block.contains("http.request.method: Str(GET)"),
        "{root_block}"
    );
}

#[test]
fn spans_arrive_over_http_protobuf() {
    check(OtlpProtocol::HttpProtobuf);
}

#[test]
fn spans_arrive_over_grpc() {
    check(OtlpProtocol::Grpc);
}

#[test]
fn with_no_collector_shutdown_reports_what_was_lost_within_the_deadline() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let settings = OtlpSettings::default()
        .with_traces_endpoint(format!("http://127.0.0.1:{port}/v1/traces"))
        .with_timeout(Duration::from_millis(500));
    let pipeline = OtelPipeline::build(&settings, fast()).unwrap().unwrap();
    emit(&pipeline);
    let start = std::time::Instant::now();
    let err = pipeline.shutdown(Duration::from_secs(3)).unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "took {:?}",
        start.elapsed()
    );
    let PipelineError::Undelivered(report) = &err else {
        panic!("{err}")
    };
    assert_eq!((report.ended, report.exported), (2, 0));
    assert!(
        err.to_string()
            .starts_with("2 of 2 spans were not delivered"),
        "{err}"
    );
}

#[test]
fn no_endpoint_means_no_pipeline() {
    assert!(
        OtelPipeline::build(&OtlpSettings::default(), fast())
            .unwrap()
            .is_none()
    );
}

/// Span records sent through the pipeline's `RecordBridge`, with no
/// tracing-opentelemetry layer: the collector gets each record with its ids,
/// parent, kind, fields, events and status.
#[test]
fn span_records_arrive_through_the_bridge_with_their_ids() {
    let collector = Collector::start();
    let settings = OtlpSettings::default()
        .with_traces_endpoint(format!("http://127.0.0.1:{}/v1/traces", collector.http))
        .with_service_name("bridge-e2e");
    let pipeline = OtelPipeline::build(&settings, fast())
        .unwrap()
        .expect("export is on");
    let records = flightdeck_obs_core::InMemoryExporter::new();
    let span_layer = flightdeck_obs_core::SpanLayer::builder()
        .with_exporter(
            flightdeck_obs_core::FanOutExporter::new()
                .with(records.clone())
                .with(pipeline.record_exporter()),
        )
        .build()
        .unwrap();
    let subscriber = tracing_subscriber::registry().with(span_layer);
    tracing::subscriber::with_default(subscriber, || {
        // Continuing a caller's trace, with its tracestate.
        let root = tracing::info_span!(
            "rag.request",
            otel.kind = "server",
            http.request.method = "GET",
            correlation_id = "bridge-cid-1",
            flightdeck.remote_parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            flightdeck.tracestate = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE",
        );
        root.in_scope(|| {
            let child = tracing::info_span!(
                "rag.retrieve",
                retrieve.k = 8_u64,
                retrieve.big = u64::MAX,
                score = 0.5_f64,
                cached = true,
            );
            child.in_scope(|| tracing::error!(shard = 3_i64, "shard timed out"));
        });
    });
    let report = pipeline
        .shutdown(Duration::from_secs(5))
        .expect("everything delivered");
    assert_eq!((report.ended, report.exported, report.failed), (2, 2, 0));
    let spans = records.records();
    let root = spans.iter().find(|r| r.name == "rag.request").unwrap();
    let child = spans.iter().find(|r| r.name == "rag.retrieve").unwrap();
    let out = collector.wait_for(&root.trace_id.to_string(), 2);
    assert!(out.contains("service.name: Str(bridge-e2e)"), "{out}");
    let block = |name: &str| {
        out.split("Span #")
            .find(|b| b.contains(name))
            .unwrap_or_else(|| panic!("{name} not at the collector: {out}"))
            .to_owned()
    };
    let root_block = block("rag.request");
    assert!(
        root_block.contains(&root.span_id.to_string()),
        "{root_block}"
    );
    assert!(root_block.contains("SPAN_KIND_SERVER"), "{root_block}");
    assert_eq!(
        root.trace_id.to_string(),
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    assert!(
        root_block.contains("Parent ID      : 00f067aa0ba902b7"),
        "the caller's span is the root's parent: {root_block}"
    );
    for block in [&root_block, &block("rag.retrieve")] {
        assert!(
            block.contains("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"),
            "every span of the trace carries the caller's tracestate: {block}"
        );
    }
    assert!(
        root_block.contains("http.request.method: Str(GET)"),
        "{root_block}"
    );
    assert!(
        root_block.contains("correlation_id: Str(bridge-cid-1)"),
        "{root_block}"
    );
    let child_block = block("rag.retrieve");
    assert!(
        child_block.contains(&child.span_id.to_string()),
        "{child_block}"
    );
    assert!(
        child_block.contains(&root.span_id.to_string()),
        "the child's parent is the root: {child_block}"
    );
    assert!(child_block.contains("SPAN_KIND_INTERNAL"), "{child_block}");
    assert!(child_block.contains("retrieve.k: Int(8)"), "{child_block}");
    // Past i64, the decimal string (OTLP has no unsigned integers).
    assert!(
        child_block.contains(&format!("retrieve.big: Str({})", u64::MAX)),
        "{child_block}"
    );
    assert!(child_block.contains("score: Double(0.5)"), "{child_block}");
    assert!(child_block.contains("cached: Bool(true)"), "{child_block}");
    // The ERROR event marked the span failed, with its message, and arrives
    // as an event with its level and fields.
    assert!(child_block.contains("STATUS_CODE_ERROR"), "{child_block}");
    assert!(child_block.contains("shard timed out"), "{child_block}");
    assert!(child_block.contains("level: Str(ERROR)"), "{child_block}");
    assert!(child_block.contains("shard: Int(3)"), "{child_block}");
}

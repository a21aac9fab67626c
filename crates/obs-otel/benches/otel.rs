//! The cost of the full stack against the bare composition, and of the
//! server middleware against none. Results are in docs/benchmarks.md.
//!
//! * `span/flightdeck`: our JSON log layer + span records (JSON Lines to a
//!   sink) + `OtelIds` + OTel export through our queue to a no-op exporter.
//! * `span/bare`: `tracing-subscriber`'s JSON layer + `tracing-opentelemetry`
//!   with the SDK's batch processor and the same no-op exporter.
//!
//! Each iteration opens a span with 2 fields, logs one event with 1 field
//! inside it, and closes the span.
//!
//! * `middleware/*`: one request through an axum hello-world, with the full
//!   stack installed and exporting to a real collector that is up, down or
//!   black-holing.

use std::time::Duration;

use axum::Router;
use axum::extract::MatchedPath;
use axum::routing::get;
use criterion::{Criterion, criterion_group, criterion_main};
use flightdeck_obs_otel::{BatchSettings, OtelPipeline, OtlpSettings, ServerLayer};
use tower::ServiceExt;
use tracing_subscriber::layer::SubscriberExt;

/// The full stack as a service runs it: OTel export over OTLP/HTTP to
/// `endpoint` (500 ms timeout), span records as JSON Lines and JSON logs,
/// both to a sink.
/// `None` exports to a no-op exporter instead.
fn full_stack(endpoint: Option<&str>) -> (OtelPipeline, tracing::Dispatch) {
    let pipeline = match endpoint {
        Some(endpoint) => {
            let settings = OtlpSettings::default()
                .with_traces_endpoint(endpoint)
                .with_timeout(Duration::from_millis(500));
            OtelPipeline::build(&settings, BatchSettings::default())
                .expect("pipeline")
                .expect("export on")
        }
        None => OtelPipeline::with_exporter(
            common::NoopExporter,
            &OtlpSettings::default(),
            BatchSettings::default(),
        )
        .expect("pipeline"),
    };
    let dispatch = common::flightdeck_stack(&pipeline);
    (pipeline, dispatch)
}

/// An axum hello-world, with or without the server layer.
fn app(layer: bool) -> Router {
    let router = Router::new().route("/hello/{name}", get(|| async { "hello" }));
    if !layer {
        return router;
    }
    router.route_layer(ServerLayer::new().with_route(|parts| {
        parts
            .extensions
            .get::<MatchedPath>()
            .map(|m| m.as_str().to_owned())
    }))
}

fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
    listener.local_addr().expect("port").port()
}

/// Request latency through an axum hello-world, in process (`oneshot`, no
/// socket), with the full stack installed: without the middleware and with
/// it, exporting to a no-op exporter (the middleware's own cost), then to a
/// real collector that is up, down (nothing listening) or black-holing
/// (accepting, never answering).
fn bench_middleware(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let request = || {
        http::Request::get("/hello/ada")
            .header(
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            )
            .body(axum::body::Body::empty())
            .expect("request")
    };
    let collector = flightdeck_obs_otel::testing::Collector::start_quiet();
    let up = format!("http://127.0.0.1:{}/v1/traces", collector.http);
    let down = format!("http://127.0.0.1:{}/v1/traces", closed_port());
    let hole = format!(
        "http://127.0.0.1:{}/v1/traces",
        flightdeck_obs_otel::testing::BlackHole::start().port
    );
    let cases = [
        ("none", false, None),
        ("server_layer", true, None),
        ("server_layer_collector_up", true, Some(up.as_str())),
        ("server_layer_collector_down", true, Some(down.as_str())),
        (
            "server_layer_collector_black_hole",
            true,
            Some(hole.as_str()),
        ),
    ];
    let mut g = c.benchmark_group("middleware");
    let mut reports = Vec::new();
    for (name, layer, endpoint) in cases {
        let (pipeline, dispatch) = full_stack(endpoint);
        let router = app(layer);
        tracing::dispatcher::with_default(&dispatch, || {
            g.bench_function(name, |b| {
                b.iter(|| {
                    let resp = rt
                        .block_on(router.clone().oneshot(request()))
                        .expect("response");
                    assert_eq!(resp.status(), 200);
                })
            });
        });
        reports.push((name, pipeline.report()));
        let _ = pipeline.shutdown(Duration::from_secs(2));
    }
    // The server layer with the Prometheus recorder recording its RED
    // metrics (the cases above record into the no-op recorder).
    {
        let (pipeline, dispatch) = full_stack(None);
        let router = app(true);
        let (local, _exposition) = flightdeck_obs_core::LocalPrometheus::new();
        tracing::dispatcher::with_default(&dispatch, || {
            local.scoped(|| {
                g.bench_function("server_layer_prometheus", |b| {
                    b.iter(|| {
                        let resp = rt
                            .block_on(router.clone().oneshot(request()))
                            .expect("response");
                        assert_eq!(resp.status(), 200);
                    })
                });
            })
        });
        reports.push(("server_layer_prometheus", pipeline.report()));
        let _ = pipeline.shutdown(Duration::from_secs(2));
    }
    g.finish();
    for (name, r) in reports {
        #[allow(clippy::print_stderr)]
        {
            eprintln!(
                "{name}: {} spans ended, {} exported, {} dropped (queue full), {} failed",
                r.ended, r.exported, r.dropped, r.failed
            );
        }
    }
    drop(collector);
}

/// A load run rather than a timing: 2 threads offer 100,000 spans/s in all
/// for 10 s to a real local collector (rotel over OTLP/HTTP), and what was
/// exported and dropped is printed.
fn bench_throughput(_c: &mut Criterion) {
    // A 10 s load run: only for a bare `cargo bench` or a filter naming it.
    let args: Vec<String> = std::env::args().skip(1).collect();
    let bare = args.iter().all(|a| a == "--bench");
    if !bare && !args.iter().any(|a| a.contains("throughput")) {
        return;
    }
    let collector = flightdeck_obs_otel::testing::Collector::start_quiet();
    let settings = OtlpSettings::default()
        .with_traces_endpoint(format!("http://127.0.0.1:{}/v1/traces", collector.http));
    let pipeline = OtelPipeline::build(
        &settings,
        BatchSettings {
            max_queue: 16_384,
            max_batch: 2_048,
            delay: Duration::from_millis(100),
        },
    )
    .expect("pipeline")
    .expect("export on");
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(pipeline.layer()));
    // Paced: 2 threads at 50,000 spans/s each for 10 s; the point is what
    // arrives, not how fast spans can be made.
    let rate_per_thread = 50_000u64;
    let seconds = 10u64;
    let start = std::time::Instant::now();
    std::thread::scope(|s| {
        for _ in 0..2 {
            let d = dispatch.clone();
            s.spawn(move || {
                tracing::dispatcher::with_default(&d, || {
                    let t0 = std::time::Instant::now();
                    for i in 0..rate_per_thread * seconds {
                        drop(tracing::info_span!("rag.embed", i));
                        if i % 1_000 == 999 {
                            let due =
                                Duration::from_secs_f64((i + 1) as f64 / rate_per_thread as f64);
                            if let Some(wait) = due.checked_sub(t0.elapsed()) {
                                std::thread::sleep(wait);
                            }
                        }
                    }
                })
            });
        }
    });
    let offered_for = start.elapsed();
    let report = pipeline.report();
    let _ = pipeline.shutdown(Duration::from_secs(30));
    let after = pipeline_report_line(&report, offered_for);
    #[allow(clippy::print_stderr)]
    {
        eprintln!("{after}");
    }
    drop(collector);
}

fn pipeline_report_line(r: &flightdeck_obs_otel::ExportReport, offered_for: Duration) -> String {
    format!(
        "throughput: {} spans offered in {:.1} s ({:.0}/s); at the end of offering {} exported ({:.0}/s), {} dropped (queue full), {} failed",
        r.ended,
        offered_for.as_secs_f64(),
        r.ended as f64 / offered_for.as_secs_f64(),
        r.exported,
        r.exported as f64 / offered_for.as_secs_f64(),
        r.dropped,
        r.failed
    )
}

#[path = "common/mod.rs"]
mod common;

use common::bench_span;

criterion_group!(benches, bench_span, bench_middleware, bench_throughput);
criterion_main!(benches);

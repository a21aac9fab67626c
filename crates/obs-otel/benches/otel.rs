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

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use flightdeck_obs_otel::{BatchSettings, OtelPipeline, OtlpSettings, ServerLayer};
use tower::{Layer, Service};
use tracing_subscriber::layer::SubscriberExt;

async fn hello(
    _req: http::Request<String>,
) -> Result<http::Response<String>, std::convert::Infallible> {
    Ok(http::Response::new("hello".to_owned()))
}

fn bench_middleware(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let mut g = c.benchmark_group("middleware");
    let request = || {
        http::Request::get("/hello")
            .header(
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            )
            .body(String::new())
            .expect("request")
    };
    g.bench_function("none", |b| {
        let mut svc = tower::service_fn(hello);
        b.iter(|| rt.block_on(svc.call(request())).expect("response"))
    });
    g.bench_function("server_layer", |b| {
        let mut svc = ServerLayer::new()
            .with_route(|_| Some("/hello".to_owned()))
            .layer(tower::service_fn(hello));
        b.iter(|| rt.block_on(svc.call(request())).expect("response"))
    });
    g.finish();
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

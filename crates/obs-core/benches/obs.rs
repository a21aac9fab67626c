//! obs-core hot paths, each beside the anchor it is judged against.
//!
//! Run: `cargo bench -p flightdeck-obs-core --bench obs`. CI only compiles
//! this file. Full results with intervals are in `docs/benchmarks.md`.
//!
//! Last run, 2026-11-23, 2 vCPU AMD EPYC, Rust 1.95 (median):
//!
//! | bench | ours | anchor |
//! |---|---|---|
//! | log event in span | 1.24 µs (non-blocking 1.44 µs) | fmt JSON + span ctx 3.15 µs |
//! | span, 5 attrs, JSONL exporter | 0.85 µs | fmt JSON layer 1.34 µs |
//! | latency sample, cached handle | 42.0 ns (sketch alone 8.5 ns) | metrics cached 25.7 ns, macro 82.2 ns |
//! | latency sample, 2 threads | 114 ns | ddsketch + mutex 320 ns |
//!
//! * `log_event_in_span`: one `info!` with 2 fields inside a span with 2
//!   fields. Ours vs `tracing-subscriber`'s JSON formatter printing the same
//!   span context (`with_current_span` + `with_span_list`) and without it.
//! * `span_5_attrs`: create, enter, exit and close a span with 5 attributes,
//!   exporter on. Ours vs a bare registry and vs `tracing-subscriber`'s JSON
//!   layer (which prints span close events only when asked, so it is the
//!   cheaper anchor).
//! * `latency_record`: one latency sample. Ours through a cached handle
//!   (sketch + Prometheus histogram) and the sketch alone, vs the `metrics`
//!   histogram with the Prometheus recorder (cached handle and macro), and vs
//!   `sketches-ddsketch` behind a mutex.

#![allow(clippy::print_stderr)] // Queue statistics go to the bench log on purpose.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use flightdeck_obs_core::{
    JsonLinesExporter, JsonLogLayer, LatencySketch, LocalPrometheus, MetricsCollector,
    NoopSpanExporter, SpanExporter, SpanLayer,
};
use tracing_subscriber::layer::SubscriberExt;

fn log_event_in_span(c: &mut Criterion) {
    let mut group = c.benchmark_group("log_event_in_span");
    let event = || {
        tracing::info!(target: "rag.retrieval", documents = 5, shard = "eu-1", "retrieved documents");
    };
    let span = || tracing::info_span!("rag.retrieve", top_k = 10, index = "docs-v3");

    let ours = tracing_subscriber::registry()
        .with(SpanLayer::builder().build().unwrap())
        .with(
            JsonLogLayer::builder()
                .with_blocking_writer(std::io::sink())
                .build()
                .unwrap(),
        );
    tracing::subscriber::with_default(ours, || {
        let _s = span().entered();
        group.bench_function("flightdeck_json_blocking_sink", |b| b.iter(event));
    });

    let layer = JsonLogLayer::builder()
        .with_non_blocking_writer(std::io::sink())
        .build()
        .unwrap();
    let handle = layer.handle();
    let ours_nb = tracing_subscriber::registry()
        .with(SpanLayer::builder().build().unwrap())
        .with(layer);
    tracing::subscriber::with_default(ours_nb, || {
        let _s = span().entered();
        group.bench_function("flightdeck_json_non_blocking_sink", |b| b.iter(event));
    });
    let stats = handle.stats();
    let _ = handle.shutdown(Duration::from_secs(10));
    eprintln!("non-blocking log queue: {stats:?}");

    let anchor = tracing_subscriber::registry().with(
        tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .with_writer(std::io::sink),
    );
    tracing::subscriber::with_default(anchor, || {
        let _s = span().entered();
        group.bench_function("anchor_fmt_json_with_span_ctx", |b| b.iter(event));
    });

    let anchor_plain = tracing_subscriber::registry().with(
        tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(false)
            .with_span_list(false)
            .with_writer(std::io::sink),
    );
    tracing::subscriber::with_default(anchor_plain, || {
        let _s = span().entered();
        group.bench_function("anchor_fmt_json_no_span_ctx", |b| b.iter(event));
    });
    group.finish();
}

fn span_5_attrs(c: &mut Criterion) {
    let mut group = c.benchmark_group("span_5_attrs");
    let mut i = 0u64;
    let mut make_span = move || {
        i += 1;
        let s = tracing::info_span!(
            "rag.generate",
            gen_ai.request.model = "gpt-4o-mini",
            gen_ai.usage.input_tokens = i,
            gen_ai.usage.output_tokens = 300,
            temperature = 0.2,
            streamed = true
        );
        drop(black_box(s.entered()));
    };

    let exporter = JsonLinesExporter::to_writer_with_capacity(std::io::sink(), 1 << 20).unwrap();
    let sub = tracing_subscriber::registry().with(
        SpanLayer::builder()
            .with_exporter(exporter.clone())
            .build()
            .unwrap(),
    );
    tracing::subscriber::with_default(sub, || {
        group.bench_function("flightdeck_jsonl_exporter", |b| b.iter(&mut make_span));
    });
    let stats = exporter.stats();
    let _ = exporter.shutdown(Duration::from_secs(30));
    eprintln!("span exporter queue: {stats:?}");

    let sub = tracing_subscriber::registry().with(
        SpanLayer::builder()
            .with_exporter(NoopSpanExporter)
            .build()
            .unwrap(),
    );
    tracing::subscriber::with_default(sub, || {
        group.bench_function("flightdeck_noop_exporter", |b| b.iter(&mut make_span));
    });

    tracing::subscriber::with_default(tracing_subscriber::registry(), || {
        group.bench_function("anchor_bare_registry", |b| b.iter(&mut make_span));
    });

    let sub = tracing_subscriber::registry().with(
        tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::sink),
    );
    tracing::subscriber::with_default(sub, || {
        group.bench_function("anchor_fmt_json_layer", |b| b.iter(&mut make_span));
    });
    group.finish();
}

fn latency_record(c: &mut Criterion) {
    let mut group = c.benchmark_group("latency_record");
    let (local, prom) = LocalPrometheus::new();
    // The Prometheus recorder buffers histogram samples until upkeep; run it
    // in the background as an application would.
    let stop = Arc::new(AtomicBool::new(false));
    let upkeep = {
        let prom = prom.clone();
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                prom.run_upkeep();
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let d = Duration::from_micros(1234);

    let handle = local.scoped(|| MetricsCollector::new().latency("rag.retrieve"));
    group.bench_function("flightdeck_cached_handle", |b| {
        b.iter(|| handle.record(black_box(d)))
    });

    let sketch = LatencySketch::new(2048);
    group.bench_function("flightdeck_sketch_only", |b| {
        b.iter(|| sketch.record_nanos(black_box(1_234_000)))
    });

    let hist = local.scoped(|| metrics::histogram!("bench_seconds", "operation" => "rag.retrieve"));
    group.bench_function("anchor_metrics_histogram_cached", |b| {
        b.iter(|| hist.record(black_box(0.001234)))
    });

    local.scoped(|| {
        group.bench_function("anchor_metrics_histogram_macro", |b| {
            b.iter(|| {
                metrics::histogram!("bench_seconds", "operation" => "rag.retrieve")
                    .record(black_box(0.001234))
            })
        });
    });

    let dd = Mutex::new(sketches_ddsketch::DDSketch::new(
        sketches_ddsketch::Config::defaults(),
    ));
    group.bench_function("anchor_ddsketch_crate_mutex", |b| {
        b.iter(|| dd.lock().unwrap().add(black_box(1_234_000.0)))
    });
    group.finish();
    stop.store(true, Ordering::Relaxed);
    let _ = upkeep.join();
}

/// Wall time for each of two threads to record one sample while the other
/// records into the same structure: what a hot endpoint served by a
/// multi-threaded runtime sees.
fn latency_record_contended(c: &mut Criterion) {
    let mut group = c.benchmark_group("latency_record_2_threads");
    fn two_threads(iters: u64, f: &(dyn Fn() + Sync)) -> Duration {
        let start = std::time::Instant::now();
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    for _ in 0..iters {
                        f();
                    }
                });
            }
        });
        start.elapsed()
    }
    let sketch = LatencySketch::new(2048);
    group.bench_function("flightdeck_sketch", |b| {
        b.iter_custom(|iters| two_threads(iters, &|| sketch.record_nanos(black_box(1_234_000))))
    });
    let dd = Mutex::new(sketches_ddsketch::DDSketch::new(
        sketches_ddsketch::Config::defaults(),
    ));
    group.bench_function("anchor_ddsketch_crate_mutex", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, &|| dd.lock().unwrap().add(black_box(1_234_000.0)))
        })
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50)
}

criterion_group! {
    name = benches;
    config = config();
    targets = log_event_in_span, span_5_attrs, latency_record, latency_record_contended
}
criterion_main!(benches);

//! The collector killed mid-run and restarted: the application never
//! blocks, drops and failures are counted, and export resumes by itself.

use std::time::{Duration, Instant};

use flightdeck_obs_otel::{BatchSettings, OtelPipeline, OtlpSettings};
use opentelemetry::trace::TraceContextExt;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;

use flightdeck_obs_otel::testing::Collector;

/// Emits `n` spans; returns the slowest single emission.
fn burst(n: usize) -> Duration {
    let mut worst = Duration::ZERO;
    for i in 0..n {
        let t = Instant::now();
        let s = tracing::info_span!("work", i);
        drop(s);
        worst = worst.max(t.elapsed());
    }
    worst
}

/// The report once `done` holds of it, polled every 10 ms for at most 20 s
/// (the last report when it never does, for the assertion to show).
fn report_when(
    pipeline: &OtelPipeline,
    done: impl Fn(&flightdeck_obs_otel::ExportReport) -> bool,
) -> flightdeck_obs_otel::ExportReport {
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let r = pipeline.report();
        if done(&r) || Instant::now() > until {
            return r;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// An emission that waited on an export would take at least the export
/// timeout (300 ms here); bounding the slowest emission below it shows the
/// application never waits, whatever the machine's load.
const NEVER_WAITS: Duration = Duration::from_millis(250);

/// A pipeline with a 1,024-span queue and batches of 64, and a subscriber
/// that exports through it.
fn small_queue(settings: &OtlpSettings) -> (OtelPipeline, impl tracing::Subscriber + Send + Sync) {
    let batch = BatchSettings {
        max_queue: 1024,
        max_batch: 64,
        delay: Duration::from_millis(20),
    };
    let pipeline = OtelPipeline::build(settings, batch).unwrap().unwrap();
    let subscriber = tracing_subscriber::registry().with(pipeline.layer());
    (pipeline, subscriber)
}

#[test]
fn a_dead_collector_never_blocks_and_export_resumes_after_restart() {
    let first = Collector::start();
    let (grpc, http) = (first.grpc, first.http);
    let settings = OtlpSettings::default()
        .with_traces_endpoint(format!("http://127.0.0.1:{http}/v1/traces"))
        .with_service_name("resilience")
        .with_timeout(Duration::from_millis(300));
    let (pipeline, subscriber) = small_queue(&settings);
    let marker = tracing::subscriber::with_default(subscriber, || {
        let up = burst(500);
        let before = report_when(&pipeline, |r| r.exported == 500);
        assert_eq!(before.exported, 500, "{before:?}");

        drop(first);
        let down = burst(5_000);
        // Export waits on 300 ms timeouts; emission never does.
        assert!(
            down < NEVER_WAITS,
            "an emission took {down:?} with the collector down (up: {up:?})"
        );
        // Until the queue has drained: every span exported, failed or
        // dropped (a span queued behind failing exports would be dropped
        // after the restart otherwise).
        let during = report_when(&pipeline, |r| {
            r.dropped > 0 && r.failed > 0 && r.exported + r.failed + r.dropped == r.ended
        });
        assert!(during.dropped > 0, "a bounded queue drops: {during:?}");
        assert!(during.failed > 0, "failed exports are counted: {during:?}");

        let second = Collector::start_on(grpc, http);
        let span = tracing::info_span!("after-restart");
        let trace = span.context().span().span_context().trace_id().to_string();
        drop(span);
        (second, trace)
    });
    let (second, trace) = marker;
    let report = pipeline.shutdown(Duration::from_secs(5)).unwrap_err();
    let flightdeck_obs_otel::PipelineError::Undelivered(r) = report else {
        panic!("{report}")
    };
    assert_eq!(r.ended, 5_501);
    assert_eq!(
        r.exported + r.failed + r.dropped,
        r.ended,
        "every span accounted for: {r:?}"
    );
    let out = second.wait_for(&trace, 1);
    assert!(out.contains("after-restart"), "{out}");
}

#[test]
fn a_black_holing_collector_never_blocks_and_shutdown_keeps_its_deadline() {
    // Accepts connections and never answers: every export waits out its
    // timeout.
    let port = flightdeck_obs_otel::testing::BlackHole::start().port;
    for protocol in ["http", "grpc"] {
        let settings = OtlpSettings::default()
            .with_service_name("black-hole")
            .with_timeout(Duration::from_millis(300));
        let settings = if protocol == "http" {
            settings.with_traces_endpoint(format!("http://127.0.0.1:{port}/v1/traces"))
        } else {
            settings
                .with_traces_endpoint(format!("http://127.0.0.1:{port}"))
                .with_protocol(flightdeck_obs_otel::OtlpProtocol::Grpc)
        };
        let (pipeline, subscriber) = small_queue(&settings);
        let worst = tracing::subscriber::with_default(subscriber, || burst(5_000));
        assert!(
            worst < NEVER_WAITS,
            "{protocol}: an emission took {worst:?} with the collector black-holing"
        );
        let during = report_when(&pipeline, |r| r.dropped > 0 && r.failed > 0);
        assert_eq!(during.exported, 0, "{protocol}: {during:?}");
        assert!(
            during.dropped > 0,
            "{protocol}: a bounded queue drops: {during:?}"
        );
        assert!(
            during.failed > 0,
            "{protocol}: timed-out exports count: {during:?}"
        );
        let started = Instant::now();
        let err = pipeline.shutdown(Duration::from_secs(1)).unwrap_err();
        assert!(
            started.elapsed() < Duration::from_millis(2_500),
            "{protocol}: shutdown took {:?} with a 1 s deadline",
            started.elapsed()
        );
        let flightdeck_obs_otel::PipelineError::Undelivered(r) = err else {
            panic!("{protocol}: {err}")
        };
        assert_eq!(r.ended, 5_000, "{protocol}: {r:?}");
        assert_eq!(r.undelivered(), 5_000, "{protocol}: {r:?}");
    }
}

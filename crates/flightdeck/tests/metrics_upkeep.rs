//! `init` installs the Prometheus recorder with a background upkeep, so a
//! service that nobody scrapes does not keep every histogram sample.
//!
//! Regression test: `flightdeck serve` grew by about 3 MB/s at 15,000
//! answers/s until something rendered `/metrics`, because
//! metrics-exporter-prometheus buffers each histogram sample (8 bytes) until
//! an upkeep folds it into the buckets, and `build_recorder` (unlike the
//! exporter's own `install`) starts no upkeep. (Its own process: `init` and
//! the counting allocator are process-wide.)

use std::alloc::System;
use std::time::{Duration, Instant};

use flightdeck::ObservabilitySettings;
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};

/// Counts the bytes the process holds.
#[global_allocator]
static ALLOCATOR: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Bytes held now.
fn live() -> isize {
    let s = ALLOCATOR.stats();
    s.bytes_allocated as isize - s.bytes_deallocated as isize + s.bytes_reallocated
}

#[test]
fn histogram_samples_are_folded_without_a_scrape() {
    let settings = ObservabilitySettings {
        tracing_enabled: false,
        metrics_enabled: true,
        structured_logging: false,
        ..Default::default()
    };
    let guard = flightdeck::init(settings).unwrap();
    let histogram = metrics::histogram!("upkeep_test_seconds");
    histogram.record(0.001);
    let before = live();

    // Two million samples: 16 MB while they wait in the buffer.
    const SAMPLES: isize = 2_000_000;
    for i in 0..SAMPLES {
        histogram.record(i as f64 * 1e-6);
    }

    // Nothing renders: only the upkeep thread can give the buffer back. It
    // runs every second; allow ten. Samples keep trickling in as in a live
    // service (the buffer's blocks are freed through crossbeam's epochs,
    // which advance as threads record).
    let limit = 2 * 1024 * 1024;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut recorded = SAMPLES;
    let mut held = live() - before;
    while held > limit && Instant::now() < deadline {
        histogram.record(0.5);
        recorded += 1;
        std::thread::park_timeout(Duration::from_millis(1));
        held = live() - before;
    }
    assert!(
        held <= limit,
        "{held} bytes still held after {SAMPLES} samples and 10 s with no scrape \
         (at most {limit} expected once the upkeep ran)"
    );

    // The samples were folded, not dropped: the render counts them all.
    let text = guard.prometheus().expect("metrics enabled").render();
    let count = text
        .lines()
        .find(|l| l.starts_with("upkeep_test_seconds_count"))
        .unwrap_or_else(|| panic!("no count line in:\n{text}"));
    assert!(
        count.ends_with(&format!(" {}", recorded + 1)),
        "expected {} samples: {count}",
        recorded + 1
    );
}

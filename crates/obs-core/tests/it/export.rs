use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flightdeck_obs_core::{ExportError, JsonLinesExporter, SpanExporter, SpanLayer, SpanRecord};
use tracing_subscriber::layer::SubscriberExt;

/// A destination that takes 2 ms per write, like a slow disk.
#[derive(Clone, Default)]
struct SlowWriter(Arc<Mutex<Vec<u8>>>);

impl Write for SlowWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        std::thread::sleep(Duration::from_millis(2));
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_full_queue_drops_and_counts_but_never_blocks_the_application() {
    let out = SlowWriter::default();
    let exporter = JsonLinesExporter::to_writer_with_capacity(out.clone(), 64).unwrap();
    let layer = SpanLayer::builder()
        .with_exporter(exporter.clone())
        .build()
        .unwrap();
    let started = Instant::now();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        for i in 0..20_000 {
            tracing::info_span!("hot", i).in_scope(|| {});
        }
    });
    let elapsed = started.elapsed();
    // 20,000 blocking 2 ms writes would take 40 s; dropping keeps the loop fast.
    assert!(
        elapsed < Duration::from_secs(5),
        "the span loop blocked: {elapsed:?}"
    );
    let stats = exporter.stats();
    assert!(stats.dropped > 0, "{stats:?}");
    assert_eq!(stats.accepted + stats.dropped, 20_000, "{stats:?}");
    let err = exporter.shutdown(Duration::from_secs(30)).unwrap_err();
    assert_eq!(
        err,
        ExportError::Lost {
            dropped: stats.dropped,
            failed: 0
        }
    );
    // Everything accepted was written, and every line is a whole record.
    let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
    assert_eq!(text.lines().count() as u64, stats.accepted);
    for line in text.lines() {
        serde_json::from_str::<SpanRecord>(line).unwrap();
    }
}

#[test]
fn shutdown_writes_every_accepted_record_to_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("traces.jsonl");
    let exporter = JsonLinesExporter::to_file(&path).unwrap();
    let layer = SpanLayer::builder()
        .with_exporter(exporter.clone())
        .build()
        .unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        for i in 0..30_000 {
            tracing::info_span!("s", i).in_scope(|| {});
        }
    });
    exporter.shutdown(Duration::from_secs(30)).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 30_000);
    assert_eq!(exporter.stats().written, 30_000);
    assert_eq!(exporter.path(), Some(path.as_path()));
}

#[test]
fn a_full_disk_is_counted_and_the_application_keeps_running() {
    // /dev/full fails every write with ENOSPC.
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let exporter = JsonLinesExporter::to_writer_with_capacity(full, 1024).unwrap();
    let layer = SpanLayer::builder()
        .with_exporter(exporter.clone())
        .build()
        .unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        for _ in 0..100 {
            tracing::info_span!("s").in_scope(|| {});
        }
    });
    exporter.flush(Duration::from_secs(10)).unwrap();
    let stats = exporter.stats();
    assert_eq!(stats.failed, 100, "{stats:?}");
    assert_eq!(stats.written, 0);
    assert!(matches!(
        exporter.shutdown(Duration::from_secs(5)),
        Err(ExportError::Lost { failed: 100, .. })
    ));
}

#[test]
fn an_unwritable_trace_path_is_an_error_naming_it() {
    let err = JsonLinesExporter::to_file("/proc/flightdeck/traces.jsonl").unwrap_err();
    assert!(
        err.to_string().contains("/proc/flightdeck/traces.jsonl"),
        "{err}"
    );
}

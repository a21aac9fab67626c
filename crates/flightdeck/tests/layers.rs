//! `flightdeck::layers`: the span and log layers compose with a user's own
//! layers in a subscriber the user builds.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

/// Counts the events it sees.
struct Count(Arc<AtomicUsize>);

impl<S: tracing::Subscriber> Layer<S> for Count {
    fn on_event(&self, _: &tracing::Event<'_>, _: Context<'_, S>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn layers_compose_with_a_users_own_layer() {
    let dir = tempfile::tempdir().unwrap();
    let s = flightdeck::ObservabilitySettings {
        tracing_enabled: true,
        structured_logging: true,
        log_level: "warn".into(),
        trace_file_path: Some(dir.path().join("traces.jsonl")),
        log_file_path: Some(dir.path().join("logs.jsonl")),
        ..Default::default()
    };
    let (layer, guard) = flightdeck::layers(s).unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    let subscriber = tracing_subscriber::registry()
        .with(layer)
        .with(Count(Arc::clone(&seen)));
    tracing::subscriber::with_default(subscriber, || {
        tracing::info_span!("composed").in_scope(|| {
            tracing::info!("below the log level");
            tracing::warn!("at the log level");
        });
    });
    guard.shutdown(Duration::from_secs(5)).unwrap();
    // The user's layer saw both events; our log layer kept the warn line
    // only, with its span's context; the span was recorded at info.
    assert_eq!(seen.load(Ordering::SeqCst), 2);
    let logs = std::fs::read_to_string(dir.path().join("logs.jsonl")).unwrap();
    assert!(
        logs.contains("at the log level") && !logs.contains("below the log level"),
        "{logs}"
    );
    assert!(
        logs.contains("composed"),
        "the warn line carries its span: {logs}"
    );
    let spans = std::fs::read_to_string(dir.path().join("traces.jsonl")).unwrap();
    assert!(spans.contains("\"composed\""), "{spans}");
}

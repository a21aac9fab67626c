//! Prometheus text exposition through `metrics-exporter-prometheus`.
//!
//! obs-core only *renders* the text; serving `/metrics` over HTTP is the
//! application's job (the CLI does it with `--prometheus-listen`).

use std::fmt;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

use crate::error::InitError;
use crate::names::metric;

/// Histogram buckets for latencies in seconds: 1 ms to 60 s.
pub const LATENCY_BUCKETS_SECONDS: [f64; 15] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
/// Buckets for relevance scores.
pub const SCORE_BUCKETS: [f64; 10] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0];
/// Buckets for 1-to-5 ratings.
pub const RATING_BUCKETS: [f64; 5] = [1.0, 2.0, 3.0, 4.0, 5.0];

fn builder() -> PrometheusBuilder {
    // Matchers only fail on empty bucket lists, and these constants are not empty.
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &LATENCY_BUCKETS_SECONDS)
        .and_then(|b| b.set_buckets_for_metric(Matcher::Full(metric::RELEVANCE_SCORE.into()), &SCORE_BUCKETS))
        .and_then(|b| b.set_buckets_for_metric(Matcher::Full(metric::USER_RATING.into()), &RATING_BUCKETS))
        .expect("bucket lists are non-empty constants")
}

/// Renders every metric recorded through the `metrics` facade as Prometheus
/// text: ours and the application's own. Clones share the same registry.
///
/// Call [`run_upkeep`](Self::run_upkeep) now and then (rendering does it too)
/// so histogram samples are folded into buckets.
///
/// ```
/// use flightdeck_obs_core::{LocalPrometheus, MetricsCollector};
/// let (local, prom) = LocalPrometheus::new();
/// local.scoped(|| {
///     let metrics = MetricsCollector::new();
///     let _t = metrics.time_operation("rag.embed");
/// });
/// assert!(prom.render().contains("flightdeck_operation_duration_seconds_bucket"));
/// ```
#[derive(Clone)]
pub struct PrometheusExposition {
    handle: PrometheusHandle,
}

impl fmt::Debug for PrometheusExposition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrometheusExposition").finish_non_exhaustive()
    }
}

impl PrometheusExposition {
    /// Installs a Prometheus recorder as the process-wide `metrics` recorder.
    ///
    /// # Errors
    ///
    /// [`InitError::AlreadyInstalled`] when another recorder is installed.
    pub fn install() -> Result<Self, InitError> {
        let recorder = builder().build_recorder();
        let handle = recorder.handle();
        metrics::set_global_recorder(recorder).map_err(|_| InitError::AlreadyInstalled {
            what: "metrics recorder",
        })?;
        Ok(Self { handle })
    }

    /// The exposition text (format 0.0.4).
    pub fn render(&self) -> String {
        self.handle.run_upkeep();
        self.handle.render()
    }

    /// Folds pending histogram samples into buckets.
    pub fn run_upkeep(&self) {
        self.handle.run_upkeep();
    }
}

/// A Prometheus recorder that is not installed globally: use it within
/// [`scoped`](Self::scoped), for tests and for embedding several services in
/// one process.
pub struct LocalPrometheus {
    recorder: PrometheusRecorder,
}

impl fmt::Debug for LocalPrometheus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalPrometheus").finish_non_exhaustive()
    }
}

impl LocalPrometheus {
    /// A fresh recorder and the exposition that renders it.
    pub fn new() -> (Self, PrometheusExposition) {
        let recorder = builder().build_recorder();
        let handle = recorder.handle();
        (Self { recorder }, PrometheusExposition { handle })
    }

    /// Runs `f` with this recorder as the thread's `metrics` recorder. Handles
    /// created inside (for example by [`MetricsCollector`](crate::MetricsCollector))
    /// keep recording into it afterwards.
    pub fn scoped<T>(&self, f: impl FnOnce() -> T) -> T {
        metrics::with_local_recorder(&self.recorder, f)
    }
}

//! Prometheus text exposition through `metrics-exporter-prometheus`.
//!
//! obs-core only *renders* the text; serving `/metrics` over HTTP is the
//! application's job (the CLI does it with `--prometheus-listen`).

use std::fmt;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

use crate::error::{BuildError, InitError};
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
        .and_then(|b| {
            b.set_buckets_for_metric(
                Matcher::Full(metric::RELEVANCE_SCORE.into()),
                &SCORE_BUCKETS,
            )
        })
        .and_then(|b| {
            b.set_buckets_for_metric(Matcher::Full(metric::USER_RATING.into()), &RATING_BUCKETS)
        })
        .expect("bucket lists are non-empty constants")
}

/// How often [`PrometheusExposition::install`]'s background thread folds
/// histogram samples into buckets.
///
/// The recorder keeps every histogram sample in a buffer until an upkeep
/// (or a render) folds it in, so without one a service nobody scrapes grows
/// by 8 bytes a sample for ever: about 2.4 MB/s for `flightdeck serve` at
/// 15,000 answers/s (20 samples an answer), measured with heaptrack. Once a
/// second bounds the buffer at a second's samples.
pub const UPKEEP_INTERVAL: Duration = Duration::from_secs(1);

/// Renders every metric recorded through the `metrics` facade as Prometheus
/// text: ours and the application's own. Clones share the same registry.
///
/// Histogram samples are buffered until an upkeep folds them into buckets.
/// [`install`](Self::install) starts a thread that does it every
/// [`UPKEEP_INTERVAL`]; for a [`LocalPrometheus`], keep the guard of
/// [`spawn_upkeep`](Self::spawn_upkeep) or call
/// [`run_upkeep`](Self::run_upkeep) now and then (rendering does it too).
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
        f.debug_struct("PrometheusExposition")
            .finish_non_exhaustive()
    }
}

impl PrometheusExposition {
    /// Installs a Prometheus recorder as the process-wide `metrics` recorder,
    /// with a background thread (`flightdeck-metrics-upkeep`) that folds its
    /// histogram samples into buckets every [`UPKEEP_INTERVAL`] for the rest
    /// of the process, as the global recorder lives that long.
    ///
    /// # Errors
    ///
    /// [`InitError::AlreadyInstalled`] when another recorder is installed;
    /// [`BuildError::Thread`] when the upkeep thread cannot start (nothing
    /// is installed then).
    pub fn install() -> Result<Self, InitError> {
        let recorder = builder().build_recorder();
        let exposition = Self {
            handle: recorder.handle(),
        };
        let upkeep = exposition.spawn_upkeep(UPKEEP_INTERVAL)?;
        metrics::set_global_recorder(recorder).map_err(|_| InitError::AlreadyInstalled {
            what: "metrics recorder",
        })?;
        upkeep.detach();
        Ok(exposition)
    }

    /// Folds histogram samples into buckets every `every` (at least 1 ms, so
    /// a zero interval cannot spin a core) on a background thread until the
    /// returned guard is dropped.
    ///
    /// ```
    /// use std::time::Duration;
    /// use flightdeck_obs_core::LocalPrometheus;
    /// let (local, prom) = LocalPrometheus::new();
    /// let upkeep = prom.spawn_upkeep(Duration::from_millis(100)).unwrap();
    /// local.scoped(|| metrics::histogram!("work_seconds").record(0.2));
    /// drop(upkeep); // stops and joins the thread
    /// ```
    ///
    /// # Errors
    ///
    /// [`BuildError::Thread`] when the thread cannot start.
    pub fn spawn_upkeep(&self, every: Duration) -> Result<Upkeep, BuildError> {
        let every = every.max(Duration::from_millis(1));
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let handle = self.handle.clone();
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("flightdeck-metrics-upkeep".into())
                .spawn(move || {
                    let (stopped, wake) = &*stop;
                    let mut guard = stopped.lock().unwrap_or_else(|p| p.into_inner());
                    while !*guard {
                        guard = wake
                            .wait_timeout(guard, every)
                            .unwrap_or_else(|p| p.into_inner())
                            .0;
                        handle.run_upkeep();
                    }
                })
                .map_err(BuildError::Thread)?
        };
        Ok(Upkeep {
            stop,
            thread: Some(thread),
        })
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

/// The background upkeep of [`PrometheusExposition::spawn_upkeep`]: dropping
/// it stops the thread (after one last upkeep) and waits for it.
pub struct Upkeep {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl Upkeep {
    /// Lets the thread run for the rest of the process.
    fn detach(mut self) {
        drop(self.thread.take());
    }
}

impl fmt::Debug for Upkeep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upkeep")
            .field("running", &self.thread.is_some())
            .finish()
    }
}

impl Drop for Upkeep {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            let (stopped, wake) = &*self.stop;
            *stopped.lock().unwrap_or_else(|p| p.into_inner()) = true;
            wake.notify_all();
            let _ = thread.join();
        }
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

/// Registers HELP text and units for every Flightdeck metric with the
/// current `metrics` recorder. Idempotent; [`MetricsCollector`](crate::MetricsCollector)
/// calls it when built.
pub fn describe_metrics() {
    use metrics::{Unit, describe_counter, describe_histogram};
    describe_histogram!(
        metric::OPERATION_DURATION_SECONDS,
        Unit::Seconds,
        "Latency of each pipeline operation (embed, retrieve, rerank, generate, ...)."
    );
    describe_counter!(
        metric::OPERATIONS_TOTAL,
        Unit::Count,
        "Finished operations by outcome (ok or error)."
    );
    describe_counter!(
        metric::LLM_TOKENS_TOTAL,
        Unit::Count,
        "Model tokens used, by model and token type (input or output)."
    );
    describe_counter!(
        metric::LLM_CALLS_TOTAL,
        Unit::Count,
        "Calls to models and paid APIs, by model."
    );
    describe_counter!(
        metric::LLM_COST_USD_MICROS_TOTAL,
        Unit::Count,
        "Spend in micro-USD (1 USD = 1,000,000), by model; exact integer totals."
    );
    describe_histogram!(
        metric::RELEVANCE_SCORE,
        "Relevance scores of retrieved context, from 0 to 1."
    );
    describe_histogram!(metric::USER_RATING, "User ratings of answers, from 1 to 5.");
    describe_counter!(
        metric::FLAG_EVALUATIONS_TOTAL,
        Unit::Count,
        "Feature flag evaluations, by flag and variant served."
    );
    describe_counter!(
        metric::WRITER_DROPPED_TOTAL,
        Unit::Count,
        "Records a background file writer dropped because its queue was full, by writer."
    );
    describe_counter!(
        metric::WRITER_FAILURES_TOTAL,
        Unit::Count,
        "Writes a background file writer could not complete, by writer."
    );
    describe_counter!(
        metric::FLAGS_RELOAD_FAILURES_TOTAL,
        Unit::Count,
        "Flag reloads that failed (the last good flags kept serving)."
    );
    describe_counter!(
        metric::GUARDRAIL_TRIGGERS_TOTAL,
        Unit::Count,
        "Times each guardrail blocked or rewrote content."
    );
    describe_counter!(
        metric::LABEL_OVERFLOW_TOTAL,
        Unit::Count,
        "Label values folded into `other` by the cardinality cap, by label."
    );
    describe_counter!(
        metric::SPANS_DROPPED_TOTAL,
        Unit::Count,
        "Span records dropped because the export queue was full."
    );
    describe_counter!(
        metric::SPAN_EXPORT_FAILURES_TOTAL,
        Unit::Count,
        "Span records whose write failed (for example a full disk)."
    );
    describe_counter!(
        metric::LOG_LINES_DROPPED_TOTAL,
        Unit::Count,
        "Log lines dropped because the log queue was full."
    );
}

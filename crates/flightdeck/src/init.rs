//! One-call set-up: [`init`] and its [`ObservabilityGuard`].

use std::fmt;
use std::time::Duration;

use flightdeck_obs_core::{
    BuildError, ConsoleExporter, DashboardData, ExportError, FanOutExporter, JsonLinesExporter,
    JsonLogLayer, LogHandle, MetricsCollector, ObservabilitySettings, PrometheusExposition,
    SpanExporter, SpanLayer, WriterStats,
};
use tracing_core::{Interest, Metadata};

use crate::InitError;
use tracing_subscriber::filter::{self, FilterExt, LevelFilter};
use tracing_subscriber::layer::{Filter, Layer, SubscriberExt};
use tracing_subscriber::{EnvFilter, Registry};

/// The longest shutdown waits for the OTLP collector: a black-holed
/// collector must not hold a service's exit hostage.
#[cfg(feature = "otel")]
const OTEL_SHUTDOWN_MAX: Duration = Duration::from_secs(3);

/// How long dropping the guard waits for files to be written.
const DROP_FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// Keeps observability running; flushes spans and logs when dropped.
///
/// Prefer calling [`shutdown`](Self::shutdown) at the end of `main`: it reports
/// whether every span and log line reached its file.
#[must_use = "dropping the guard shuts observability down"]
pub struct ObservabilityGuard {
    spans: Option<std::sync::Arc<FanOutExporter>>,
    span_file: Option<JsonLinesExporter>,
    logs: Option<LogHandle>,
    metrics: MetricsCollector,
    prometheus: Option<PrometheusExposition>,
    #[cfg(feature = "otel")]
    otel: Option<flightdeck_obs_otel::OtelPipeline>,
    done: bool,
}

impl fmt::Debug for ObservabilityGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObservabilityGuard")
            .field("span_file", &self.span_file.as_ref().and_then(|e| e.path()))
            .field("logs", &self.logs.is_some())
            .field("prometheus", &self.prometheus.is_some())
            .finish_non_exhaustive()
    }
}

/// What [`ObservabilityGuard::shutdown`] delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ShutdownReport {
    /// The span file's counts.
    pub spans: WriterStats,
    /// The log output's counts.
    pub logs: WriterStats,
    /// What the OTLP export delivered, when it was on. Spans the collector
    /// did not get are counted here, not reported as an error: the local
    /// files are complete either way.
    #[cfg(feature = "otel")]
    pub otel: Option<flightdeck_obs_otel::ExportReport>,
}

impl ObservabilityGuard {
    /// The metrics collector; record latency, cost and quality through it.
    pub fn metrics(&self) -> &MetricsCollector {
        &self.metrics
    }

    /// The Prometheus exposition, when `metrics_enabled`.
    pub fn prometheus(&self) -> Option<&PrometheusExposition> {
        self.prometheus.as_ref()
    }

    /// A snapshot of latency, cost and quality.
    pub fn dashboard(&self) -> DashboardData {
        self.metrics.dashboard()
    }

    /// Counts for the span file so far (zeros without one).
    pub fn span_stats(&self) -> WriterStats {
        self.span_file
            .as_ref()
            .map(|e| e.stats())
            .unwrap_or_default()
    }

    /// Writes every accepted span and log line, then stops the writers.
    ///
    /// Spans and logs recorded after this are dropped and counted.
    ///
    /// # Errors
    ///
    /// [`ExportError::Lost`] when anything was dropped or failed to write, and
    /// [`ExportError::Timeout`] when the deadline passed first.
    pub fn shutdown(mut self, timeout: Duration) -> Result<ShutdownReport, ExportError> {
        self.shutdown_inner(timeout)
    }

    fn shutdown_inner(&mut self, timeout: Duration) -> Result<ShutdownReport, ExportError> {
        if self.done {
            return Err(ExportError::AlreadyShutDown);
        }
        self.done = true;
        // OTLP first: the exporter's client and the SDK log their own
        // failures (a collector that never answers, cancelled exports), and
        // those lines must find the log writer still open. Then span
        // records, whose closing may still log; logs last.
        #[cfg(feature = "otel")]
        let otel = self
            .otel
            .take()
            .map(|p| match p.shutdown(timeout.min(OTEL_SHUTDOWN_MAX)) {
                Ok(r) => r,
                Err(flightdeck_obs_otel::PipelineError::Undelivered(r)) => r,
                Err(_) => flightdeck_obs_otel::ExportReport::default(),
            });
        let spans = self.spans.as_ref().map_or(Ok(()), |s| s.shutdown(timeout));
        let logs = self.logs.as_ref().map_or(Ok(()), |l| l.shutdown(timeout));
        let report = ShutdownReport {
            spans: self.span_stats(),
            logs: self.logs.as_ref().map(LogHandle::stats).unwrap_or_default(),
            #[cfg(feature = "otel")]
            otel,
        };
        spans.and(logs).map(|()| report)
    }
}

impl Drop for ObservabilityGuard {
    fn drop(&mut self) {
        if !self.done {
            // Nobody is left to tell: the counters were already exported as metrics.
            let _ = self.shutdown_inner(DROP_FLUSH_TIMEOUT);
        }
    }
}

/// The layers [`layers`] returns: spans (and OTLP export) and JSON logs,
/// over a `tracing_subscriber::Registry`.
pub type ObservabilityLayer = Box<dyn Layer<Registry> + Send + Sync + 'static>;

/// Every span, and the events `log_filter` lets through: a `warn` log
/// level still records `info` spans, so log lines keep their span context.
/// (Span callsites are always interesting; event callsites get the
/// `EnvFilter`'s own interest, so disabled events cost nothing.)
fn spans_and_logs(log_filter: EnvFilter) -> impl Filter<Registry> + Send + Sync + 'static {
    let spans = filter::dynamic_filter_fn(|meta: &Metadata<'_>, _| meta.is_span())
        .with_callsite_filter(|meta: &'static Metadata<'static>| {
            if meta.is_span() {
                Interest::always()
            } else {
                Interest::never()
            }
        });
    spans.or(log_filter)
}

/// Sets up spans, logs and metrics from `settings` and installs them
/// process-wide: [`layers`], then the layers as the global `tracing`
/// subscriber.
///
/// * Spans go to `trace_file_path` (JSON Lines) and, with
///   `trace_console_output`, to stderr; sampled at `trace_sample_rate`.
///   Spans at `info` and above are recorded, plus more verbose ones when
///   `log_level` asks for them.
/// * JSON logs go to `log_file_path`, or standard output, filtered by `log_level`.
/// * With `metrics_enabled`, a Prometheus recorder becomes the global
///   `metrics` recorder and [`ObservabilityGuard::metrics`] records into it.
///
/// Nothing is installed until everything that can fail has succeeded, so
/// an `init` that fails (a bad path, a bad `OTEL_*` variable) can be
/// retried in the same process.
///
/// # Errors
///
/// [`InitError::Core`] with obs-core's `Settings` for invalid settings,
/// `Build` naming the path when a trace or log file cannot be opened, and
/// `AlreadyInstalled` when a global subscriber or metrics recorder is
/// already set; [`InitError::Otel`] when the OTLP export cannot be built.
pub fn init(settings: impl Into<ObservabilitySettings>) -> Result<ObservabilityGuard, InitError> {
    // Checked first: finding out after the metrics recorder is installed
    // would leave half a set-up behind.
    if tracing::dispatcher::has_been_set() {
        return Err(InitError::already_installed("tracing subscriber"));
    }
    let (layer, guard) = build(settings.into(), Filtering::Global)?;
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))
        .map_err(|_| InitError::already_installed("tracing subscriber"))?;
    Ok(guard)
}

/// The parts of [`init`] for services that compose their own subscriber:
/// the span, OTLP and log layers as one layer over a
/// `tracing_subscriber::Registry`, and the guard that flushes them. Add your
/// own layers beside it:
///
/// ```no_run
/// use tracing_subscriber::layer::SubscriberExt;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let (layer, guard) = flightdeck::layers(flightdeck::ObservabilitySettings::from_env()?)?;
/// let subscriber = tracing_subscriber::registry()
///     .with(layer)
///     .with(tracing_subscriber::filter::LevelFilter::INFO); // or your own layers
/// tracing::subscriber::set_global_default(subscriber)?;
/// # drop(guard);
/// # Ok(())
/// # }
/// ```
///
/// Every fallible step runs first (settings, files, filters, the OTLP
/// pipeline); the only thing installed is the Prometheus `metrics`
/// recorder (with `metrics_enabled`), last.
///
/// # Errors
///
/// As [`init`], except that no subscriber is installed here.
pub fn layers(
    settings: impl Into<ObservabilitySettings>,
) -> Result<(ObservabilityLayer, ObservabilityGuard), InitError> {
    build(settings.into(), Filtering::PerLayer)
}

/// How [`build`] filters its layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Filtering {
    /// Each layer filters for itself, so layers composed beside ours see
    /// everything they ask for ([`layers`]).
    PerLayer,
    /// Ours is the whole subscriber ([`init`]): when spans and logs want
    /// the same plain level, one global level filter replaces the two
    /// per-layer filters. tracing-subscriber then skips the per-layer
    /// bookkeeping (a registry look-up per layer callback) on every span
    /// enter, exit, record and close: 9 % of the reference service's
    /// instructions per answer (docs/benchmarks.md, eighth session).
    Global,
}

fn build(
    settings: ObservabilitySettings,
    filtering: Filtering,
) -> Result<(ObservabilityLayer, ObservabilityGuard), InitError> {
    settings.validate()?;
    flightdeck_obs_core::limits::attribute_value_limit_from_env()?;
    let span_file = match (&settings.trace_file_path, settings.tracing_enabled) {
        (Some(path), true) => Some(JsonLinesExporter::to_file(path)?),
        _ => None,
    };
    let log_layer = if settings.structured_logging {
        let builder = JsonLogLayer::builder().with_service_name(&settings.service_name);
        let builder = match &settings.log_file_path {
            Some(path) => builder.with_file(path),
            None => builder.with_stdout(),
        };
        Some(builder.build()?)
    } else {
        None
    };
    let log_handle = log_layer.as_ref().map(JsonLogLayer::handle);

    // OTLP export (feature `otel`): on when the settings or the standard
    // variables give an endpoint.
    #[cfg(feature = "otel")]
    let otel = otlp_pipeline(&settings)?;

    // The span layer is always installed, filtered off when tracing is
    // disabled.
    let mut fan_out = FanOutExporter::new();
    if let Some(file) = &span_file {
        fan_out = fan_out.with(file.clone());
    }
    if settings.tracing_enabled && settings.trace_console_output {
        fan_out = fan_out.with(ConsoleExporter::stderr());
    }
    #[cfg(feature = "otel")]
    if let Some(pipeline) = &otel {
        fan_out = fan_out.with(pipeline.record_exporter());
    }
    let handle = std::sync::Arc::new(fan_out);
    let span_builder = SpanLayer::builder()
        .with_service_name(&settings.service_name)
        .with_sample_rate(settings.trace_sample_rate)
        .with_exporter(std::sync::Arc::clone(&handle));
    let spans = settings.tracing_enabled.then_some(handle);

    let log_filter =
        EnvFilter::try_new(&settings.log_level).map_err(|e| BuildError::InvalidValue {
            name: "log_level",
            value: format!("{} ({e})", settings.log_level),
            expected: "a level or EnvFilter directive",
        })?;
    let span_level = if settings.tracing_enabled {
        log_filter
            .max_level_hint()
            .map_or(LevelFilter::INFO, |hint| hint.max(LevelFilter::INFO))
    } else {
        LevelFilter::OFF
    };

    // One span pipeline (feature `otel`): the span records go over OTLP
    // through obs-otel's `RecordBridge`, so tracing-opentelemetry's layer,
    // a second copy of every span, stays off the request path (it was about
    // a third of the instrumentation's time per request; docs/benchmarks.md,
    // sixth session). obs-core's span layer gives the ids and applies the
    // OTel sampler's ratio.
    let span_layer = span_builder.build()?;

    // Everything fallible has passed: install the metrics recorder (the
    // one global thing here), then build the collector, whose cached
    // handles record into it.
    let prometheus = if settings.metrics_enabled {
        Some(PrometheusExposition::install()?)
    } else {
        None
    };
    let metrics = MetricsCollector::builder()
        .with_service_name(&settings.service_name)
        .with_max_bins(settings.metrics_max_samples)
        .with_prices(settings.prices.clone())
        .build();
    #[cfg(feature = "otel")]
    if otel.is_some() {
        opentelemetry::global::set_text_map_propagator(flightdeck_obs_otel::W3cPropagator);
    }

    // The log level is one plain level, the same as the spans': one filter
    // for both layers says the same as the two.
    let one_level = filtering == Filtering::Global
        && log_layer.is_some()
        && settings.log_level.trim().parse::<LevelFilter>().ok() == Some(span_level);
    let layer: ObservabilityLayer = if one_level {
        Layer::boxed(span_layer.and_then(log_layer).and_then(span_level))
    } else {
        Layer::boxed(
            span_layer
                .with_filter(span_level)
                .and_then(log_layer.map(|l| l.with_filter(spans_and_logs(log_filter)))),
        )
    };
    Ok((
        layer,
        ObservabilityGuard {
            spans,
            span_file,
            logs: log_handle,
            metrics,
            prometheus,
            #[cfg(feature = "otel")]
            otel,
            done: false,
        },
    ))
}

/// The OTLP pipeline the settings and the standard `OTEL_*` variables ask
/// for, or `None` when export is off.
#[cfg(feature = "otel")]
fn otlp_pipeline(
    settings: &ObservabilitySettings,
) -> Result<Option<flightdeck_obs_otel::OtelPipeline>, InitError> {
    let mut otel_settings = flightdeck_obs_otel::OtlpSettings::from_env()
        .map_err(|e| InitError::Otel(e.to_string()))?
        .with_service_name(&settings.service_name);
    // OTEL_RESOURCE_ATTRIBUTES may name the environment and version; else ours.
    let has = |s: &flightdeck_obs_otel::OtlpSettings, key: &str| {
        s.resource_attributes().any(|(k, _)| k == key)
    };
    if !has(&otel_settings, "deployment.environment.name") {
        otel_settings = otel_settings
            .with_resource_attribute("deployment.environment.name", &settings.environment);
    }
    if let Some(version) = settings.service_version.as_deref()
        && !has(&otel_settings, "service.version")
    {
        otel_settings = otel_settings.with_resource_attribute("service.version", version);
    }
    if !settings.tracing_enabled {
        return Ok(None);
    }
    flightdeck_obs_otel::OtelPipeline::build(&otel_settings, Default::default())
        .map_err(|e| InitError::Otel(e.to_string()))
}

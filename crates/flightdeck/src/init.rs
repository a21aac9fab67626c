//! One-call set-up: [`init`] and its [`ObservabilityGuard`].

use std::fmt;
use std::time::Duration;

use flightdeck_obs_core::{
    BuildError, ConsoleExporter, DashboardData, ExportError, FanOutExporter, InitError,
    JsonLinesExporter, JsonLogLayer, LogHandle, MetricsCollector, ObservabilitySettings,
    PrometheusExposition, SpanExporter, SpanLayer, WriterStats,
};
use tracing_core::{Interest, Metadata};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::{Context, Filter, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

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

/// Lets every span through and filters events with the log level, so a
/// `warn` log level still records `info` spans and log lines keep their
/// span context.
struct EventsOnly(EnvFilter);

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> Filter<S> for EventsOnly {
    fn enabled(&self, meta: &Metadata<'_>, cx: &Context<'_, S>) -> bool {
        meta.is_span() || Filter::<S>::enabled(&self.0, meta, cx)
    }

    fn callsite_enabled(&self, meta: &'static Metadata<'static>) -> Interest {
        if meta.is_span() {
            Interest::always()
        } else {
            Filter::<S>::callsite_enabled(&self.0, meta)
        }
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        None
    }

    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::Id,
        ctx: Context<'_, S>,
    ) {
        Filter::<S>::on_new_span(&self.0, attrs, id, ctx);
    }

    fn on_record(&self, id: &tracing::Id, values: &tracing::span::Record<'_>, ctx: Context<'_, S>) {
        Filter::<S>::on_record(&self.0, id, values, ctx);
    }

    fn on_enter(&self, id: &tracing::Id, ctx: Context<'_, S>) {
        Filter::<S>::on_enter(&self.0, id, ctx);
    }

    fn on_exit(&self, id: &tracing::Id, ctx: Context<'_, S>) {
        Filter::<S>::on_exit(&self.0, id, ctx);
    }

    fn on_close(&self, id: tracing::Id, ctx: Context<'_, S>) {
        Filter::<S>::on_close(&self.0, id, ctx);
    }
}

/// Sets up spans, logs and metrics from `settings` and installs them
/// process-wide.
///
/// * Spans go to `trace_file_path` (JSON Lines) and, with
///   `trace_console_output`, to stderr; sampled at `trace_sample_rate`.
///   Spans at `info` and above are recorded, plus more verbose ones when
///   `log_level` asks for them.
/// * JSON logs go to `log_file_path`, or standard output, filtered by `log_level`.
/// * With `metrics_enabled`, a Prometheus recorder becomes the global
///   `metrics` recorder and [`ObservabilityGuard::metrics`] records into it.
///
/// # Errors
///
/// [`InitError::Settings`] for invalid settings; [`InitError::Build`] naming
/// the path when a trace or log file cannot be opened; and
/// [`InitError::AlreadyInstalled`] when a global subscriber or metrics
/// recorder is already set.
pub fn init(settings: ObservabilitySettings) -> Result<ObservabilityGuard, InitError> {
    settings.validate()?;
    flightdeck_obs_core::limits::attribute_value_limit_from_env()?;
    // Open files before installing anything, so a bad path leaves no half-set-up state.
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

    let prometheus = if settings.metrics_enabled {
        Some(PrometheusExposition::install()?)
    } else {
        None
    };
    // Built after the recorder so its cached handles record into it.
    let metrics = MetricsCollector::builder()
        .with_service_name(&settings.service_name)
        .with_max_bins(settings.metrics_max_samples)
        .with_prices(settings.prices.clone())
        .build();

    // The span layer is always installed (filtered off when tracing is
    // disabled): wrapped in an `Option`, tracing-subscriber would not pass
    // it the dispatcher its OpenTelemetry id hook needs.
    let mut fan_out = FanOutExporter::new();
    if let Some(file) = &span_file {
        fan_out = fan_out.with(file.clone());
    }
    if settings.tracing_enabled && settings.trace_console_output {
        fan_out = fan_out.with(ConsoleExporter::stderr());
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

    // OTLP export (feature `otel`): on when the settings or the standard
    // variables give an endpoint. Its layer sits below the span layer, whose
    // hook then copies the OTel ids into span records and log lines.
    #[cfg(feature = "otel")]
    let (otel, otel_layer, span_layer) = {
        let mut otel_settings = flightdeck_obs_otel::OtlpSettings::from_env()
            .map_err(|e| InitError::Otel(e.to_string()))?
            .with_service_name(&settings.service_name);
        // OTEL_RESOURCE_ATTRIBUTES may name the environment and version;
        // else ours.
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
        let pipeline = if settings.tracing_enabled {
            flightdeck_obs_otel::OtelPipeline::build(&otel_settings, Default::default())
                .map_err(|e| InitError::Otel(e.to_string()))?
        } else {
            None
        };
        let layer = pipeline.as_ref().map(|p| p.layer().with_filter(span_level));
        let span_builder = if pipeline.is_some() {
            span_builder.with_trace_context_hook(flightdeck_obs_otel::OtelIds)
        } else {
            span_builder
        };
        if pipeline.is_some() {
            opentelemetry::global::set_text_map_propagator(flightdeck_obs_otel::W3cPropagator);
        }
        (pipeline, layer, span_builder.build()?)
    };
    #[cfg(not(feature = "otel"))]
    let otel_layer: Option<tracing_subscriber::layer::Identity> = None;
    #[cfg(not(feature = "otel"))]
    let span_layer = span_builder.build()?;

    let subscriber = tracing_subscriber::registry()
        .with(otel_layer)
        .with(span_layer.with_filter(span_level))
        .with(log_layer.map(|l| l.with_filter(EventsOnly(log_filter))));
    tracing::subscriber::set_global_default(subscriber).map_err(|_| {
        InitError::AlreadyInstalled {
            what: "tracing subscriber",
        }
    })?;

    Ok(ObservabilityGuard {
        spans,
        span_file,
        logs: log_handle,
        metrics,
        prometheus,
        #[cfg(feature = "otel")]
        otel,
        done: false,
    })
}

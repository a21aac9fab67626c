//! Flightdeck: make a Rust service production-ready. See what it does,
//! change it safely, ship it without fear.
//!
//! This facade re-exports the Flightdeck crates and sets everything up in one
//! call:
//!
//! * [`init`]: spans to `traces.jsonl` (and the console), JSON logs with
//!   correlation ids, latency/cost/quality metrics rendered for Prometheus,
//!   all from one [`ObservabilitySettings`]; returns an [`ObservabilityGuard`]
//!   that flushes on drop.
//! * [`obs`]: the `flightdeck-obs-core` crate: [`SpanLayer`](obs::SpanLayer),
//!   [`JsonLogLayer`](obs::JsonLogLayer), [`MetricsCollector`], [`RequestScope`],
//!   [`CorrelationId`], [`names`](obs::names).
//!
//! # Usage
//!
//! ```no_run
//! use flightdeck::{CorrelationId, ObservabilitySettings, RequestScope};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut settings = ObservabilitySettings::from_env()?;
//! settings.trace_file_path = Some("traces.jsonl".into());
//! let guard = flightdeck::init(settings)?;
//!
//! let request = RequestScope::start("answer", CorrelationId::generate());
//! request.in_scope(|| {
//!     let _t = guard.metrics().time_operation(flightdeck::obs::names::span::RETRIEVE);
//!     tracing::info!(documents = 5, "retrieved");
//! });
//! request.finish_ok();
//! println!("{}", guard.dashboard().render_text());
//! guard.shutdown(std::time::Duration::from_secs(5))?;
//! # Ok(())
//! # }
//! ```
//!
//! # Feature flags
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `stats` | no | [`stats`]: the `flightdeck-stats` crate |
//! | `slo` | no | [`slo`]: the `flightdeck-slo` crate |
//! | `experiments` | no | [`experiments`]: the `flightdeck-experiments` crate |
//! | `flags` | no | [`flags`]: the `flightdeck-flags` crate (implies `experiments`) |
//! | `golden` | no | `golden`: the `flightdeck-golden` crate |
//! | `release` | no | `release`: the `flightdeck-release` crate (judge, analysis, progression) |
//! | `otel` | no | [`otel`]: OTLP export from [`init`] when `OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT` is set, plus the `flightdeck-obs-otel` crate |
//!
//! The observability core is always on. The other crates (`otel`,
//! `experiments`, `flags`, `golden`, `release`) join behind features of
//! those names as they land.
//!
//! # Layer
//!
//! Layer 5 in `docs/architecture.md`: may depend on every library crate;
//! nothing but the CLI, examples and tests depends on it.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod init;

#[cfg(feature = "experiments")]
#[cfg_attr(docsrs, doc(cfg(feature = "experiments")))]
pub use flightdeck_experiments as experiments;
#[cfg(feature = "flags")]
#[cfg_attr(docsrs, doc(cfg(feature = "flags")))]
pub use flightdeck_flags as flags;
#[cfg(feature = "golden")]
#[cfg_attr(docsrs, doc(cfg(feature = "golden")))]
pub use flightdeck_golden as golden;
pub use flightdeck_obs_core as obs;
pub use flightdeck_obs_core::{
    CorrelationContext, CorrelationId, DashboardData, ExportError, InitError, MetricsCollector,
    ObservabilitySettings, RequestScope, SettingsError, WriterStats,
};
#[cfg(feature = "otel")]
#[cfg_attr(docsrs, doc(cfg(feature = "otel")))]
pub use flightdeck_obs_otel as otel;
#[cfg(feature = "release")]
#[cfg_attr(docsrs, doc(cfg(feature = "release")))]
pub use flightdeck_release as release;
#[cfg(feature = "slo")]
#[cfg_attr(docsrs, doc(cfg(feature = "slo")))]
pub use flightdeck_slo as slo;
#[cfg(feature = "stats")]
#[cfg_attr(docsrs, doc(cfg(feature = "stats")))]
pub use flightdeck_stats as stats;

pub use self::init::{ObservabilityGuard, ShutdownReport, init};

#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod error;
mod init;
mod settings;

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
    CorrelationContext, CorrelationId, DashboardData, ExportError, MetricsCollector,
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

pub use self::error::InitError;
pub use self::init::{ObservabilityGuard, ObservabilityLayer, ShutdownReport, init, layers};
pub use self::settings::Settings;

//! SLOs by name: register them once, feed them from every request, and
//! read one dashboard over all of them.
//!
//! ```
//! use std::time::Duration;
//! use flightdeck_slo::{SloRegistry, SloSettings};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let slos = SloRegistry::rag_defaults(&SloSettings::default())?;
//! // Per SLO by name…
//! slos.record_success("availability")?;
//! slos.record_latency_ms("latency", 120.0)?;
//! // …or one call per request feeds every SLO of the matching kind.
//! slos.record_request(true, Duration::from_millis(80), Some(0.9));
//! let dashboard = slos.dashboard();
//! assert_eq!(dashboard.slos.len(), 4);
//! assert!(slos.record_success("nope").is_err());
//! # Ok(())
//! # }
//! ```

use std::sync::Arc;
use std::time::Duration;

use flightdeck_obs_core::locate::shown;

use crate::error::SpecError;
use crate::monitor::{
    Clock, SliKind, SloDashboard, SloDefinition, SloMonitor, SystemClock, rag_defaults,
    slo_dashboard,
};

/// A name the registry does not hold (or already holds, on register).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// No SLO of that name.
    #[error("no SLO named {name}; registered: {known}")]
    Unknown {
        /// The name, as shown.
        name: String,
        /// The registered names.
        known: String,
    },
    /// Registering a second SLO under a name.
    #[error("an SLO named {0} is already registered")]
    Duplicate(String),
}

/// SLO monitors keyed by name, in registration order.
#[derive(Clone)]
pub struct SloRegistry {
    monitors: Vec<(String, Arc<SloMonitor>)>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for SloRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SloRegistry")
            .field("slos", &self.names())
            .finish_non_exhaustive()
    }
}

impl Default for SloRegistry {
    fn default() -> Self {
        Self::new()
    }
}

/// A clock shared by every monitor of a registry.
#[derive(Debug, Clone)]
struct Shared(Arc<dyn Clock>);

impl Clock for Shared {
    fn now_unix_nanos(&self) -> u64 {
        self.0.now_unix_nanos()
    }
}

impl SloRegistry {
    /// An empty registry on the system clock.
    pub fn new() -> Self {
        Self::with_clock(SystemClock)
    }

    /// An empty registry whose monitors read `clock` (tests use a manual one).
    pub fn with_clock(clock: impl Clock) -> Self {
        Self {
            monitors: Vec::new(),
            clock: Arc::new(clock),
        }
    }

    /// The default RAG SLOs from the settings (availability, latency,
    /// quality, error-rate; see [`rag_defaults`]).
    ///
    /// # Errors
    ///
    /// [`SpecError`] when a settings value makes an objective invalid.
    pub fn rag_defaults(settings: &crate::SloSettings) -> Result<Self, SpecError> {
        let mut r = Self::new();
        for def in rag_defaults(settings)? {
            // The defaults have distinct names.
            let _ = r.register(def);
        }
        Ok(r)
    }

    /// Adds an SLO and answers its monitor.
    ///
    /// # Errors
    ///
    /// [`RegistryError::Duplicate`] when the name is taken.
    pub fn register(&mut self, def: SloDefinition) -> Result<Arc<SloMonitor>, RegistryError> {
        if self.monitors.iter().any(|(n, _)| *n == def.name) {
            return Err(RegistryError::Duplicate(shown(&def.name)));
        }
        let name = def.name.clone();
        let monitor = Arc::new(SloMonitor::with_clock(def, Shared(Arc::clone(&self.clock))));
        self.monitors.push((name, Arc::clone(&monitor)));
        Ok(monitor)
    }

    /// The registered names, in order.
    pub fn names(&self) -> Vec<&str> {
        self.monitors.iter().map(|(n, _)| n.as_str()).collect()
    }

    /// The monitor called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<SloMonitor>> {
        self.monitors
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, m)| m)
    }

    fn monitor(&self, name: &str) -> Result<&SloMonitor, RegistryError> {
        self.get(name)
            .map(AsRef::as_ref)
            .ok_or_else(|| RegistryError::Unknown {
                name: shown(name),
                known: self.names().join(", "),
            })
    }

    /// A good event for `name`.
    ///
    /// # Errors
    ///
    /// [`RegistryError::Unknown`].
    pub fn record_success(&self, name: &str) -> Result<(), RegistryError> {
        self.monitor(name).map(SloMonitor::record_success)
    }

    /// A bad event for `name`.
    ///
    /// # Errors
    ///
    /// [`RegistryError::Unknown`].
    pub fn record_failure(&self, name: &str) -> Result<(), RegistryError> {
        self.monitor(name).map(SloMonitor::record_failure)
    }

    /// A latency for `name` (good when within its threshold).
    ///
    /// # Errors
    ///
    /// [`RegistryError::Unknown`].
    pub fn record_latency(&self, name: &str, elapsed: Duration) -> Result<(), RegistryError> {
        self.monitor(name).map(|m| m.record_latency(elapsed))
    }

    /// A latency in milliseconds for `name` (negative or NaN counts as 0).
    ///
    /// # Errors
    ///
    /// [`RegistryError::Unknown`].
    pub fn record_latency_ms(&self, name: &str, ms: f64) -> Result<(), RegistryError> {
        let ms = if ms.is_finite() && ms > 0.0 { ms } else { 0.0 };
        self.record_latency(name, Duration::from_secs_f64(ms.min(1e12) / 1000.0))
    }

    /// A quality score for `name`.
    ///
    /// # Errors
    ///
    /// [`RegistryError::Unknown`].
    pub fn record_quality(&self, name: &str, score: f64) -> Result<(), RegistryError> {
        self.monitor(name).map(|m| m.record_quality(score))
    }

    /// Feeds one finished request to every SLO by its kind: availability
    /// SLOs get its outcome, latency SLOs its duration, quality SLOs its
    /// score (when it has one).
    pub fn record_request(&self, ok: bool, elapsed: Duration, quality: Option<f64>) {
        for (_, m) in &self.monitors {
            match m.definition().sli {
                SliKind::Availability if ok => m.record_success(),
                SliKind::Availability => m.record_failure(),
                SliKind::Latency { .. } => m.record_latency(elapsed),
                SliKind::Quality { .. } => {
                    if let Some(q) = quality {
                        m.record_quality(q);
                    }
                }
            }
        }
    }

    /// Every SLO's status, in registration order.
    pub fn dashboard(&self) -> SloDashboard {
        let monitors: Vec<&SloMonitor> = self.monitors.iter().map(|(_, m)| m.as_ref()).collect();
        let mut d = slo_dashboard(&monitors);
        d.generated_at_secs = self.clock.now_secs();
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flightdeck_obs_core::ManualClock;

    #[test]
    fn requests_feed_each_slo_by_kind_and_names_are_checked() {
        let clock = ManualClock::from_secs(1_700_000_000);
        let mut r = SloRegistry::with_clock(clock.clone());
        for def in rag_defaults(&crate::SloSettings::default()).unwrap() {
            r.register(def).unwrap();
        }
        let dup = rag_defaults(&crate::SloSettings::default())
            .unwrap()
            .remove(0);
        assert_eq!(
            r.register(dup).unwrap_err().to_string(),
            "an SLO named \"availability\" is already registered"
        );
        for i in 0..100 {
            r.record_request(
                i % 10 != 0,
                Duration::from_millis(if i < 95 { 100 } else { 900 }),
                Some(0.9),
            );
        }
        let d = r.dashboard();
        let by = |n: &str| d.slos.iter().find(|s| s.name == n).unwrap().clone();
        assert_eq!(by("availability").total_events, 100);
        assert_eq!(by("availability").sli, Some(0.9));
        assert_eq!(by("latency").sli, Some(0.95));
        assert_eq!(by("quality").sli, Some(1.0));
        assert_eq!(d.generated_at_secs, 1_700_000_000);
        let e = r
            .record_latency_ms("latency_p99", 5.0)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "no SLO named \"latency_p99\"; registered: availability, latency, quality, error-rate"
        );
        r.record_latency_ms("latency", f64::NAN).unwrap();
        assert_eq!(r.dashboard().slos[1].total_events, 101);
    }
}

//! [`SloMonitor`]: in-process SLO tracking with error budgets and
//! multiwindow, multi-burn-rate alerts.
//!
//! Events land in fixed rings of per-minute and per-hour buckets, so memory is
//! independent of the event count (a 30-day window is about 0.5 MiB) and
//! recording is O(1) and lock-free: one packed `fetch_add` per ring. Time
//! comes from an injected [`Clock`], so tests drive it by hand.

use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::duration::PromDuration;
use crate::error::SpecError;
use crate::windows::AlertWindows;

pub use flightdeck_obs_core::{Clock, ManualClock, SystemClock};

mod definition;
mod ring;
mod status;

pub use self::definition::*;
use self::ring::*;
pub use self::status::*;

/// What a good event is.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SliKind {
    /// Good = succeeded (availability, or 1 − error rate).
    Availability,
    /// Good = latency at or under the threshold.
    Latency {
        /// Threshold in milliseconds.
        threshold_ms: f64,
    },
    /// Good = quality score at or above the threshold.
    Quality {
        /// Threshold score.
        threshold: f64,
    },
}

/// The default RAG SLOs from the SLO settings, over 30 days:
///
/// | SLO | good event | objective |
/// |---|---|---|
/// | `availability` | the request succeeded | `slo_availability_target` (99.9%) |
/// | `latency` | the request took at most `slo_latency_p99_ms` (500 ms) | 99% (a p99 target) |
/// | `quality` | the answer scored at least `slo_quality_target` (0.8) | 95% of scored answers |
/// | `error-rate` | the operation did not error | `1 − slo_error_rate_target` (99.9%) |
///
/// # Errors
///
/// [`SpecError::Invalid`] when a settings value makes an objective invalid.
pub fn rag_defaults(settings: &crate::SloSettings) -> Result<Vec<SloDefinition>, SpecError> {
    let d30 = PromDuration::parse("30d").expect("a valid literal");
    Ok(vec![
        SloDefinition::new(
            "availability",
            SliKind::Availability,
            settings.availability_target,
            d30,
        )?,
        SloDefinition::new(
            "latency",
            SliKind::Latency {
                threshold_ms: settings.latency_p99_ms,
            },
            0.99,
            d30,
        )?,
        SloDefinition::new(
            "quality",
            SliKind::Quality {
                threshold: settings.quality_target,
            },
            0.95,
            d30,
        )?,
        SloDefinition::new(
            "error-rate",
            SliKind::Availability,
            1.0 - settings.error_rate_target,
            d30,
        )?,
    ])
}

/// Every SLO's status, for the dashboard and the CLI.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SloDashboard {
    /// When the snapshot was taken, seconds since the Unix epoch.
    pub generated_at_secs: u64,
    /// One status per SLO, in the order given.
    pub slos: Vec<SloStatus>,
}

/// A snapshot of several monitors.
pub fn slo_dashboard(monitors: &[&SloMonitor]) -> SloDashboard {
    SloDashboard {
        generated_at_secs: monitors.first().map_or(0, |m| m.clock.now_secs()),
        slos: monitors.iter().map(|m| m.status()).collect(),
    }
}

/// Tracks one SLO in process. Thread-safe; share it in an `Arc`.
///
/// ```
/// use flightdeck_slo::{ManualClock, PromDuration, SliKind, SloDefinition, SloMonitor};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let def = SloDefinition::new("availability", SliKind::Availability, 0.999, PromDuration::parse("30d")?)?;
/// let clock = ManualClock::from_secs(1_700_000_000);
/// let monitor = SloMonitor::with_clock(def, clock.clone());
/// for i in 0..1000 {
///     if i % 10 == 0 { monitor.record_failure() } else { monitor.record_success() }
/// }
/// let transitions = monitor.evaluate();
/// assert!(transitions.iter().any(|t| t.severity == "page" && t.state == "firing"));
/// assert!(monitor.evaluate().is_empty(), "no repeat while firing");
/// # Ok(())
/// # }
/// ```
pub struct SloMonitor {
    def: SloDefinition,
    minutes: Ring,
    hours: Ring,
    /// Per hour: (good slices, slices), for timeslice budgeting.
    slice_hours: Ring,
    /// The newest minute seen; the thread that moves it finalizes the minute before.
    last_minute: AtomicU64,
    clock: Arc<dyn Clock>,
    firing: Mutex<[bool; 2]>,
    callbacks: Mutex<Vec<Callback>>,
}

impl fmt::Debug for SloMonitor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SloMonitor")
            .field("def", &self.def)
            .finish_non_exhaustive()
    }
}

impl SloMonitor {
    /// A monitor on the system clock.
    pub fn new(def: SloDefinition) -> Self {
        Self::with_clock(def, SystemClock)
    }

    /// A monitor on `clock`.
    pub fn with_clock(def: SloDefinition, clock: impl Clock) -> Self {
        // A calendar month can run to 31 days, whatever the rolling window.
        let window_secs = (def.window.as_millis() / 1000).max(if def.calendar.is_some() {
            31 * 86_400
        } else {
            0
        });
        // Minute buckets cover the longest alert window; hour buckets the SLO window.
        let longest = def
            .alerts
            .all_windows()
            .last()
            .map_or(3600, |w| w.as_millis() / 1000);
        let minutes = (longest.div_ceil(60) + 2) as usize;
        let hours = (window_secs.div_ceil(3600) + 2) as usize;
        Self {
            minutes: Ring::new(60, minutes.max(2)),
            hours: Ring::new(3600, hours.max(2)),
            slice_hours: Ring::new(3600, hours.max(2)),
            last_minute: AtomicU64::new(0),
            def,
            clock: Arc::new(clock),
            firing: Mutex::new([false; 2]),
            callbacks: Mutex::new(Vec::new()),
        }
    }

    /// The definition.
    pub fn definition(&self) -> &SloDefinition {
        &self.def
    }

    /// Bytes held by the buckets: fixed at construction.
    pub fn memory_bytes(&self) -> usize {
        (self.minutes.counts.len() + self.hours.counts.len()) * 8
            + (self.minutes.len + self.hours.len) * 4
    }

    #[inline]
    fn record(&self, good: bool) {
        let now = self.clock.now_secs();
        if let Budgeting::Timeslices { slice_target } = self.def.budgeting {
            self.finalize_slices(now / 60, slice_target);
        }
        let packed = (u64::from(good) << 32) | 1;
        self.minutes.add(now, packed);
        self.hours.add(now, packed);
    }

    /// When the minute moves on, judges the minute before it (once: only the
    /// thread that advances `last_minute` does). A minute without events is
    /// not a slice. Events arriving for a minute after it was judged (a thread
    /// that read the clock just before the turn) are not re-judged.
    fn finalize_slices(&self, minute: u64, slice_target: f64) {
        let last = self.last_minute.load(Ordering::Relaxed);
        if last >= minute
            || self
                .last_minute
                .compare_exchange(last, minute, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        if last == 0 {
            return;
        }
        let (good, total) = self.minutes.sum_range(last, last);
        if total > 0 {
            let good_slice = good as f64 / total as f64 >= slice_target;
            self.slice_hours
                .add(last * 60, (u64::from(good_slice) << 32) | 1);
        }
    }

    /// A successful event (availability SLIs).
    #[inline]
    pub fn record_success(&self) {
        self.record(true);
    }

    /// A failed event.
    #[inline]
    pub fn record_failure(&self) {
        self.record(false);
    }

    /// A latency; good when at or under a latency SLI's threshold.
    #[inline]
    pub fn record_latency(&self, elapsed: Duration) {
        let good = match self.def.sli {
            SliKind::Latency { threshold_ms } => elapsed.as_secs_f64() * 1e3 <= threshold_ms,
            _ => true,
        };
        self.record(good);
    }

    /// A quality score; good when at or above a quality SLI's threshold (NaN is bad).
    #[inline]
    pub fn record_quality(&self, score: f64) {
        let good = match self.def.sli {
            SliKind::Quality { threshold } => score >= threshold,
            _ => true,
        };
        self.record(good);
    }

    /// Runs `f` on every alert transition, from [`evaluate`](Self::evaluate).
    pub fn on_transition(&self, f: impl Fn(&AlertTransition) + Send + Sync + 'static) {
        self.callbacks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Box::new(f));
    }

    /// (good, total) over the last `secs` seconds, at minute precision: whole
    /// hours from the hour ring, the ragged ends from the minute ring. The
    /// minute ring reaches back as far as the longest alert window (3d), so for
    /// the 30-day SLO window the oldest partial hour is left out: that window
    /// is up to 59 minutes short at its far end (under 0.14%).
    /// (good, total) over the last `secs` seconds at minute granularity:
    /// minutes `first..=last`. The minute ring holds the alert windows; a
    /// longer window (the SLO period) starts where the minute ring no
    /// longer reaches, so it starts on the hour instead (its first,
    /// partial hour counts whole rather than not at all).
    fn window_counts(&self, now: u64, secs: u64) -> (u64, u64) {
        let last = now / 60;
        let mut first = (last + 1).saturating_sub(secs.div_ceil(60));
        if last - first + 1 > self.minutes.len as u64 {
            first = first / 60 * 60;
        }
        let first_hour = first.div_ceil(60);
        let end_hour = (last + 1) / 60; // hours before this one end inside the window
        if first_hour >= end_hour {
            return self.minutes.sum_range(first, last);
        }
        let (g1, t1) = self.minutes.sum_range(first, first_hour * 60 - 1);
        let (g2, t2) = self.hours.sum_range(first_hour, end_hour - 1);
        let (g3, t3) = self.minutes.sum_range(end_hour * 60, last);
        (g1 + g2 + g3, t1 + t2 + t3)
    }

    fn burn(&self, good: u64, total: u64) -> f64 {
        if total == 0 {
            return 0.0;
        }
        (total - good) as f64 / total as f64 / (1.0 - self.def.objective)
    }

    /// The current status.
    pub fn status(&self) -> SloStatus {
        let now = self.clock.now_secs();
        let window_secs = match self.def.calendar {
            Some(c) => c.elapsed_secs(now),
            None => self.def.window.as_millis() / 1000,
        };
        let (good, total) = match self.def.budgeting {
            Budgeting::Occurrences => self.window_counts(now, window_secs),
            // Judged slices only, at hour granularity: the current minute is
            // still open and judged when the next one starts.
            Budgeting::Timeslices { .. } => {
                let last = now / 3600;
                self.slice_hours
                    .sum_range((last + 1).saturating_sub(window_secs.div_ceil(3600)), last)
            }
        };
        let bad = total - good;
        let budget = (1.0 - self.def.objective) * total as f64;
        let burn_rates: Vec<BurnRate> = self
            .def
            .tiers()
            .into_iter()
            .map(|t| {
                let (gs, ts) = self.window_counts(now, t.short.as_millis() / 1000);
                let (gl, tl) = self.window_counts(now, t.long.as_millis() / 1000);
                BurnRate {
                    tier: t.name.into(),
                    severity: t.severity.into(),
                    factor: t.factor,
                    short: self.burn(gs, ts),
                    long: self.burn(gl, tl),
                    long_events: tl,
                }
            })
            .collect();
        let remaining = if budget > 0.0 {
            1.0 - bad as f64 / budget
        } else {
            1.0
        };
        let fastest = burn_rates.iter().map(|b| b.long).fold(0.0, f64::max);
        let window_secs = window_secs as f64;
        let firing = self.firing.lock().unwrap_or_else(|e| e.into_inner());
        SloStatus {
            name: self.def.name.clone(),
            objective: self.def.objective,
            sli: (total > 0).then(|| good as f64 / total as f64),
            total_events: total,
            error_budget_total: budget,
            error_budget_consumed: bad,
            error_budget_remaining: remaining,
            compliant: total == 0 || good as f64 / total as f64 >= self.def.objective,
            seconds_to_exhaustion: (fastest > 0.0 && remaining > 0.0)
                .then(|| remaining * window_secs / fastest),
            burn_rates,
            firing: ["page", "ticket"]
                .iter()
                .zip(firing.iter())
                .filter(|(_, f)| **f)
                .map(|(s, _)| (*s).to_owned())
                .collect(),
        }
    }

    /// Evaluates the alerts now. Returns (and passes to callbacks) only
    /// transitions: an alert that keeps firing is not reported again.
    pub fn evaluate(&self) -> Vec<AlertTransition> {
        let status = self.status();
        let now = self.clock.now_secs();
        let mut out = Vec::new();
        let mut firing = self.firing.lock().unwrap_or_else(|e| e.into_inner());
        for (slot, severity) in ["page", "ticket"].into_iter().enumerate() {
            let decisive = status
                .burn_rates
                .iter()
                .filter(|b| b.severity == severity)
                .find(|b| {
                    b.short > b.factor && b.long > b.factor && b.long_events >= self.def.min_events
                });
            let now_firing = decisive.is_some();
            if now_firing != firing[slot] {
                firing[slot] = now_firing;
                let burn = decisive.map_or_else(
                    || {
                        status
                            .burn_rates
                            .iter()
                            .filter(|b| b.severity == severity)
                            .map(|b| b.long)
                            .fold(0.0, f64::max)
                    },
                    |b| b.long,
                );
                out.push(AlertTransition {
                    slo: self.def.name.clone(),
                    severity: severity.into(),
                    state: if now_firing { "firing" } else { "resolved" }.into(),
                    burn_rate: burn,
                    at_secs: now,
                });
            }
        }
        drop(firing);
        let callbacks = self.callbacks.lock().unwrap_or_else(|e| e.into_inner());
        for t in &out {
            for cb in callbacks.iter() {
                cb(t);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn monitor(objective: f64) -> (SloMonitor, ManualClock) {
        let def = SloDefinition::new(
            "avail",
            SliKind::Availability,
            objective,
            PromDuration::parse("30d").unwrap(),
        )
        .unwrap();
        let clock = ManualClock::from_secs(1_700_000_000);
        (SloMonitor::with_clock(def, clock.clone()), clock)
    }

    #[test]
    fn budget_and_sli_follow_the_events() {
        let (m, _) = monitor(0.99);
        for i in 0..1000 {
            if i < 5 {
                m.record_failure()
            } else {
                m.record_success()
            }
        }
        let s = m.status();
        assert_eq!((s.total_events, s.error_budget_consumed), (1000, 5));
        assert!((s.sli.unwrap() - 0.995).abs() < 1e-12);
        assert!((s.error_budget_total - 10.0).abs() < 1e-9);
        assert!((s.error_budget_remaining - 0.5).abs() < 1e-9);
        assert!(s.compliant);
    }

    #[test]
    fn old_events_leave_the_windows() {
        let (m, clock) = monitor(0.999);
        for _ in 0..100 {
            m.record_failure();
        }
        assert!(m.status().burn_rates[0].short > 0.0);
        clock.advance(Duration::from_secs(2 * 3600));
        let s = m.status();
        assert_eq!(
            s.burn_rates[0].short, 0.0,
            "5m window is empty two hours later"
        );
        assert_eq!(s.total_events, 100, "still inside the 30d window");
        clock.advance(Duration::from_secs(31 * 86_400));
        assert_eq!(m.status().total_events, 0);
    }

    #[test]
    fn alerts_fire_once_resolve_and_respect_the_low_traffic_guard() {
        let (m, clock) = monitor(0.999);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        m.on_transition(move |t| {
            sink.lock()
                .unwrap()
                .push(format!("{} {}", t.severity, t.state))
        });
        for _ in 0..5 {
            m.record_failure();
        }
        assert!(
            m.evaluate().is_empty(),
            "5 events are below the 10-event guard"
        );
        for _ in 0..5 {
            m.record_failure();
        }
        let t = m.evaluate();
        assert_eq!(t.len(), 2, "{t:?}");
        assert!(m.evaluate().is_empty(), "no duplicate while firing");
        // Healthy traffic for 4 days: every window is clean again.
        for _ in 0..(4 * 24 * 60) {
            clock.advance(Duration::from_secs(60));
            m.record_success();
        }
        let t = m.evaluate();
        assert_eq!(
            t.iter().map(|t| t.state.as_str()).collect::<Vec<_>>(),
            ["resolved", "resolved"]
        );
        assert_eq!(
            *seen.lock().unwrap(),
            [
                "page firing",
                "ticket firing",
                "page resolved",
                "ticket resolved"
            ]
        );
    }

    #[test]
    fn a_low_objective_makes_some_alerts_unreachable() {
        let def = SloDefinition::new(
            "loose",
            SliKind::Availability,
            0.9,
            PromDuration::parse("30d").unwrap(),
        )
        .unwrap();
        // 14.4 x 10% = 144% can never happen; 6 x 10% = 60% can.
        assert_eq!(def.unreachable_alerts(), ["page_quick"]);
        let looser = SloDefinition::new(
            "looser",
            SliKind::Availability,
            0.8,
            PromDuration::parse("30d").unwrap(),
        )
        .unwrap();
        // 14.4 x 20% and 6 x 20% both exceed 100%.
        assert_eq!(looser.unreachable_alerts(), ["page_quick", "page_slow"]);
        let strict = SloDefinition::new(
            "strict",
            SliKind::Availability,
            0.999,
            PromDuration::parse("30d").unwrap(),
        )
        .unwrap();
        assert!(strict.unreachable_alerts().is_empty());
    }

    #[test]
    fn latency_and_quality_slis_classify_events() {
        let def = SloDefinition::new(
            "p99",
            SliKind::Latency {
                threshold_ms: 500.0,
            },
            0.99,
            PromDuration::parse("30d").unwrap(),
        )
        .unwrap();
        let m = SloMonitor::with_clock(def, ManualClock::from_secs(1_700_000_000));
        m.record_latency(Duration::from_millis(499));
        m.record_latency(Duration::from_millis(501));
        assert_eq!(m.status().error_budget_consumed, 1);
        let def = SloDefinition::new(
            "q",
            SliKind::Quality { threshold: 0.8 },
            0.95,
            PromDuration::parse("30d").unwrap(),
        )
        .unwrap();
        let m = SloMonitor::with_clock(def, ManualClock::from_secs(1_700_000_000));
        for s in [0.9, 0.8, 0.5, f64::NAN] {
            m.record_quality(s);
        }
        assert_eq!(m.status().error_budget_consumed, 2);
    }

    #[test]
    fn memory_is_fixed_and_under_a_mebibyte_for_30_days() {
        let (m, clock) = monitor(0.999);
        let before = m.memory_bytes();
        for _ in 0..10_000 {
            clock.advance(Duration::from_secs(300));
            m.record_success();
        }
        assert_eq!(m.memory_bytes(), before);
        assert!(before < 1 << 20, "{before}");
    }

    #[test]
    fn timeslices_count_good_minutes_not_events() {
        let def = SloDefinition::new(
            "ts",
            SliKind::Availability,
            0.9,
            PromDuration::parse("30d").unwrap(),
        )
        .unwrap()
        .with_timeslices(0.95)
        .unwrap();
        let clock = ManualClock::from_secs(1_700_000_000 - 1_700_000_000 % 3600);
        let m = SloMonitor::with_clock(def, clock.clone());
        // Ten minutes: nine at 100%, one at 90% (below the 95% slice target).
        for minute in 0..10 {
            clock.advance(Duration::from_secs(60));
            for i in 0..100 {
                if minute == 3 && i < 10 {
                    m.record_failure()
                } else {
                    m.record_success()
                }
            }
        }
        clock.advance(Duration::from_secs(60));
        m.record_success(); // opens minute 11, judging minute 10
        let s = m.status();
        // Ten judged slices, one bad: SLI 90%, against occurrences' 99%.
        assert_eq!((s.total_events, s.error_budget_consumed), (10, 1));
        assert!((s.sli.unwrap() - 0.9).abs() < 1e-12);
        assert!(
            SloDefinition::new(
                "x",
                SliKind::Availability,
                0.9,
                PromDuration::parse("30d").unwrap()
            )
            .unwrap()
            .with_timeslices(0.0)
            .is_err()
        );
    }

    #[test]
    fn calendar_windows_start_at_the_month_and_week() {
        // 2024-02-29T12:00:00Z, a Thursday.
        let now = 1_709_208_000;
        assert_eq!(
            Calendar::Month.elapsed_secs(now),
            28 * 86_400 + 12 * 3600 + 1
        );
        assert_eq!(Calendar::Week.elapsed_secs(now), 3 * 86_400 + 12 * 3600 + 1);
        let def = SloDefinition::new(
            "m",
            SliKind::Availability,
            0.99,
            PromDuration::parse("30d").unwrap(),
        )
        .unwrap()
        .with_calendar(Calendar::Month)
        .with_description("monthly availability")
        .with_label("team", "search");
        let clock = ManualClock::from_secs(now - 30 * 86_400); // late January
        let m = SloMonitor::with_clock(def, clock.clone());
        m.record_failure();
        clock.advance(Duration::from_secs(30 * 86_400));
        m.record_success();
        // January's failure is outside February's calendar window.
        let s = m.status();
        assert_eq!((s.total_events, s.error_budget_consumed), (1, 0));
        assert_eq!(m.definition().labels["team"], "search");
    }

    #[test]
    fn rag_defaults_follow_the_settings_and_snapshot_as_json() {
        let settings = crate::SloSettings::default();
        let defs = rag_defaults(&settings).unwrap();
        let names: Vec<&str> = defs.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["availability", "latency", "quality", "error-rate"]);
        assert_eq!(
            defs[1].sli,
            SliKind::Latency {
                threshold_ms: 500.0
            }
        );
        assert!((defs[3].objective - 0.999).abs() < 1e-12);
        let clock = ManualClock::from_secs(1_700_000_000);
        let monitors: Vec<SloMonitor> = defs
            .into_iter()
            .map(|d| SloMonitor::with_clock(d, clock.clone()))
            .collect();
        monitors[1].record_latency(Duration::from_millis(800));
        let dash = slo_dashboard(&monitors.iter().collect::<Vec<_>>());
        let json = serde_json::to_value(&dash).unwrap();
        assert_eq!(json["slos"][1]["error_budget_consumed"], 1);
        assert_eq!(json["generated_at_secs"], 1_700_000_000);
    }

    #[test]
    fn bad_definitions_are_errors() {
        let d = PromDuration::parse("30d").unwrap();
        assert!(
            SloDefinition::new("x", SliKind::Availability, 1.5, d)
                .unwrap_err()
                .to_string()
                .contains("1.5")
        );
        assert!(
            SloDefinition::new(
                "x",
                SliKind::Availability,
                0.99,
                PromDuration::parse("9d").unwrap()
            )
            .is_err()
        );
        assert!(SloDefinition::new("x", SliKind::Latency { threshold_ms: -1.0 }, 0.99, d).is_err());
    }

    #[test]
    fn concurrent_recording_loses_nothing() {
        let (m, _) = monitor(0.999);
        let m = Arc::new(m);
        std::thread::scope(|s| {
            for _ in 0..4 {
                let m = Arc::clone(&m);
                s.spawn(move || {
                    for i in 0..25_000 {
                        if i % 100 == 0 {
                            m.record_failure()
                        } else {
                            m.record_success()
                        }
                    }
                });
            }
        });
        let st = m.status();
        assert_eq!((st.total_events, st.error_budget_consumed), (100_000, 1000));
    }
}

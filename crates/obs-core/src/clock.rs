//! Injected wall-clock time, so tests can drive time by hand.

use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Days since 1970-01-01 to the proleptic Gregorian (year, month, day), UTC;
/// Howard Hinnant's `civil_from_days`.
///
/// ```
/// assert_eq!(flightdeck_obs_core::civil_from_days(19_782), (2024, 2, 29));
/// ```
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// A source of wall-clock time in nanoseconds since the Unix epoch.
pub trait Clock: Debug + Send + Sync + 'static {
    /// The current time.
    fn now_unix_nanos(&self) -> u64;

    /// The current time in whole seconds.
    fn now_secs(&self) -> u64 {
        self.now_unix_nanos() / 1_000_000_000
    }
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_unix_nanos(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    }
}

/// A clock that only moves when told to. Clones share the same time.
///
/// ```
/// use flightdeck_obs_core::{Clock, ManualClock};
/// let clock = ManualClock::new(1_000);
/// clock.advance_nanos(500);
/// assert_eq!(clock.now_unix_nanos(), 1_500);
/// ```
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// A clock standing at `unix_nanos`.
    pub fn new(unix_nanos: u64) -> Self {
        Self(Arc::new(AtomicU64::new(unix_nanos)))
    }

    /// A clock standing at `unix_secs` seconds.
    pub fn from_secs(unix_secs: u64) -> Self {
        Self::new(unix_secs.saturating_mul(1_000_000_000))
    }

    /// Moves the clock forward by `d`.
    pub fn advance(&self, d: std::time::Duration) {
        self.advance_nanos(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    }

    /// Moves the clock forward.
    pub fn advance_nanos(&self, nanos: u64) {
        self.0.fetch_add(nanos, Ordering::SeqCst);
    }

    /// Sets the clock.
    pub fn set_unix_nanos(&self, unix_nanos: u64) {
        self.0.store(unix_nanos, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_unix_nanos(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

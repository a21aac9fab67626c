//! Injected wall-clock time, so tests can drive time by hand.

use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A source of wall-clock time in nanoseconds since the Unix epoch.
pub trait Clock: Debug + Send + Sync + 'static {
    /// The current time.
    fn now_unix_nanos(&self) -> u64;
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

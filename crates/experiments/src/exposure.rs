//! Exposure logging: who saw which variation, logged once per user and
//! variation within a bounded window, off the request path.

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flightdeck_obs_core::{Clock, ExportError, JsonLinesWriter, SystemClock, WriterStats};
use serde::{Deserialize, Serialize};

use crate::error::ResultsError;
use crate::experiment::ExperimentResult;
use crate::js::to_js_string;

/// One exposure: a user was put in a variation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Exposure {
    /// When, in Unix milliseconds.
    pub timestamp_ms: u64,
    /// The experiment's key.
    pub experiment: String,
    /// The variation's index.
    pub variation_id: usize,
    /// The variation's key.
    pub variation_key: String,
    /// The attribute hashed.
    pub hash_attribute: String,
    /// Its value, as text.
    pub hash_value: String,
    /// The user's bucket, when hashed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<f64>,
    /// The feature whose rule ran the experiment, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feature_id: Option<String>,
}

/// Where exposures go. `record` runs on the assigning thread: queue, do not
/// block.
pub trait ExposureSink: Send + Sync + std::fmt::Debug + 'static {
    /// Takes one exposure.
    fn record(&self, exposure: Exposure);

    /// Waits until recorded exposures are durable, where that means
    /// anything. Defaults to doing nothing.
    ///
    /// # Errors
    ///
    /// When the sink could not deliver everything within `timeout`.
    fn flush(&self, timeout: Duration) -> Result<(), ExportError> {
        let _ = timeout;
        Ok(())
    }
}

/// Discards exposures.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopExposureSink;

impl ExposureSink for NoopExposureSink {
    fn record(&self, _exposure: Exposure) {}
}

/// Keeps every exposure in memory, without bound: for tests and short-lived
/// tools, not for a service (one exposure per user, for as long as it runs).
#[derive(Debug, Default)]
pub struct InMemoryExposureSink {
    items: Mutex<Vec<Exposure>>,
}

impl InMemoryExposureSink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of everything recorded.
    pub fn exposures(&self) -> Vec<Exposure> {
        self.items.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

impl ExposureSink for InMemoryExposureSink {
    fn record(&self, exposure: Exposure) {
        if let Ok(mut v) = self.items.lock() {
            v.push(exposure);
        }
    }
}

/// Emits each exposure as a `tracing` event (target
/// `flightdeck::exposure`), so it lands in the JSON logs with the request's
/// trace and correlation ids.
#[derive(Debug, Clone, Copy, Default)]
pub struct TracingExposureSink;

/// The `tracing` target exposure events use.
pub const EXPOSURE_TARGET: &str = "flightdeck::exposure";

impl ExposureSink for TracingExposureSink {
    fn record(&self, e: Exposure) {
        tracing::info!(
            target: EXPOSURE_TARGET,
            experiment = %e.experiment,
            variation_id = e.variation_id,
            variation_key = %e.variation_key,
            hash_attribute = %e.hash_attribute,
            hash_value = %e.hash_value,
            "experiment exposure"
        );
    }
}

/// Appends exposures to a JSON Lines file from a background thread: the
/// assigning thread only queues (a full queue drops and counts).
#[derive(Debug)]
pub struct JsonLinesExposureSink {
    writer: JsonLinesWriter<Exposure>,
}

impl JsonLinesExposureSink {
    /// Appends to `path` with a queue of `capacity` exposures.
    ///
    /// # Errors
    ///
    /// [`ResultsError::Writer`] when the file cannot be opened.
    pub fn to_file(path: impl AsRef<Path>, capacity: usize) -> Result<Self, ResultsError> {
        Ok(Self {
            writer: JsonLinesWriter::to_file(path, capacity, "exposures")?,
        })
    }

    /// What the writer has done.
    pub fn stats(&self) -> WriterStats {
        self.writer.stats()
    }

    /// Writes everything queued and stops.
    ///
    /// # Errors
    ///
    /// [`ExportError::Lost`] when exposures were dropped or failed.
    pub fn shutdown(&self, timeout: Duration) -> Result<WriterStats, ExportError> {
        self.writer.shutdown(timeout)
    }
}

impl ExposureSink for JsonLinesExposureSink {
    fn record(&self, exposure: Exposure) {
        self.writer.send(exposure);
    }

    fn flush(&self, timeout: Duration) -> Result<(), ExportError> {
        self.writer.flush(timeout)
    }
}

/// Reads a JSON Lines exposure file.
///
/// # Errors
///
/// [`ResultsError::Io`] when unreadable, [`ResultsError::BadRecord`] naming
/// the line of a record that does not parse.
pub fn read_exposures(path: &Path) -> Result<Vec<Exposure>, ResultsError> {
    let text = std::fs::read_to_string(path).map_err(|source| ResultsError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| ResultsError::BadRecord {
                path: path.display().to_string(),
                line: i + 1,
                message: e.to_string(),
            })
        })
        .collect()
}

const SHARDS: usize = 16;

#[derive(Debug, Default)]
struct Generations {
    current: HashSet<u64>,
    previous: HashSet<u64>,
    started_ns: u64,
}

/// Logs exposures to a sink once per (hash attribute, value, experiment,
/// variation) within a bounded window, so a user who sees an experiment a
/// million times is logged once.
///
/// Memory is bounded: fingerprints (8 bytes each) live in two generations
/// per shard; a generation retires when it holds `capacity / 2 / 16` entries
/// or is older than `window`, so a repeat is suppressed for at least
/// `window` unless more than `capacity / 2` distinct exposures arrive
/// sooner.
///
/// ```
/// use std::sync::Arc;
/// use flightdeck_experiments::{Context, Experiment, ExposureLogger, InMemoryExposureSink};
/// use serde_json::json;
/// let sink = Arc::new(InMemoryExposureSink::new());
/// let logger = Arc::new(ExposureLogger::new(sink.clone()));
/// let exp = Experiment::from_json(&json!({"key": "e", "variations": [0, 1]}));
/// let ctx = Context::for_user("u1").with_exposures(logger);
/// for _ in 0..1000 {
///     exp.run(&ctx);
/// }
/// assert_eq!(sink.exposures().len(), 1);
/// ```
#[derive(Debug)]
pub struct ExposureLogger {
    sink: Arc<dyn ExposureSink>,
    shards: Vec<Mutex<Generations>>,
    per_shard: usize,
    window_ns: u64,
    clock: Arc<dyn Clock>,
}

/// The default number of remembered exposures.
pub const DEFAULT_DEDUP_CAPACITY: usize = 1 << 20;
/// The default window in which a repeat is suppressed.
pub const DEFAULT_DEDUP_WINDOW: Duration = Duration::from_secs(24 * 3600);

impl ExposureLogger {
    /// Logs to `sink` with the default capacity (about a million
    /// exposures) and window (24 hours).
    pub fn new(sink: Arc<dyn ExposureSink>) -> Self {
        Self::with_limits(
            sink,
            DEFAULT_DEDUP_CAPACITY,
            DEFAULT_DEDUP_WINDOW,
            Arc::new(SystemClock),
        )
    }

    /// Logs to `sink`, remembering up to `capacity` exposures for `window`,
    /// reading time from `clock`.
    pub fn with_limits(
        sink: Arc<dyn ExposureSink>,
        capacity: usize,
        window: Duration,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            sink,
            shards: (0..SHARDS)
                .map(|_| Mutex::new(Generations::default()))
                .collect(),
            per_shard: (capacity / 2 / SHARDS).max(1),
            window_ns: window.as_nanos().min(u128::from(u64::MAX)) as u64,
            clock,
        }
    }

    /// Logs `result` unless it is not an assignment or was logged within
    /// the window. Returns whether it was passed to the sink.
    pub fn log(&self, result: &ExperimentResult<'_>) -> bool {
        if !result.in_experiment {
            return false;
        }
        let hash_value = to_js_string(result.hash_value);
        let mut h = DefaultHasher::new();
        (
            result.hash_attribute,
            hash_value.as_ref(),
            result.experiment_key,
            result.variation_id,
        )
            .hash(&mut h);
        let fp = h.finish();
        let now = self.clock.now_unix_nanos();
        let shard = &self.shards[(fp as usize) % SHARDS];
        {
            let Ok(mut g) = shard.lock() else {
                return false;
            };
            if g.current.is_empty() && g.previous.is_empty() {
                g.started_ns = now;
            }
            let age = now.saturating_sub(g.started_ns);
            if age > self.window_ns.saturating_mul(2) {
                // Both generations are past the window.
                g.current.clear();
                g.previous.clear();
                g.started_ns = now;
            } else if g.current.len() >= self.per_shard || age > self.window_ns {
                let retired = std::mem::take(&mut g.current);
                g.previous = retired;
                g.started_ns = now;
            }
            if g.current.contains(&fp) || g.previous.contains(&fp) {
                return false;
            }
            g.current.insert(fp);
        }
        self.sink.record(Exposure {
            timestamp_ms: now / 1_000_000,
            experiment: result.experiment_key.to_owned(),
            variation_id: result.variation_id,
            variation_key: result.key.to_owned(),
            hash_attribute: result.hash_attribute.to_owned(),
            hash_value: hash_value.into_owned(),
            bucket: result.bucket,
            feature_id: result.feature_id.map(str::to_owned),
        });
        true
    }

    /// The sink.
    pub fn sink(&self) -> &Arc<dyn ExposureSink> {
        &self.sink
    }
}

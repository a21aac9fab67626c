//! Flag sources: a polled file and a polled GrowthBook-compatible HTTP
//! endpoint. Both keep the last good configuration when a reload fails.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::error::{LoadError, SourceError};
use crate::manager::FeatureFlagManager;

/// A running poller; stops when dropped or on [`stop`](Self::stop).
#[derive(Debug)]
pub struct SourceHandle {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl SourceHandle {
    fn spawn(
        name: &str,
        body: impl FnOnce(mpsc::Receiver<()>) + Send + 'static,
    ) -> Result<Self, SourceError> {
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || body(rx))
            .map_err(SourceError::Thread)?;
        Ok(Self {
            stop: Some(tx),
            thread: Some(thread),
        })
    }

    /// Stops polling and waits for the thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for SourceHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Sleeps `d` unless told to stop; returns `false` when stopping.
fn sleep_or_stop(rx: &mpsc::Receiver<()>, d: Duration) -> bool {
    matches!(rx.recv_timeout(d), Err(RecvTimeoutError::Timeout))
}

#[derive(PartialEq, Eq, Clone, Copy, Debug)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    Some(Stamp {
        modified: m.modified().ok(),
        len: m.len(),
    })
}

fn content_hash(bytes: &[u8]) -> u64 {
    use std::hash::{DefaultHasher, Hasher};
    let mut h = DefaultHasher::new();
    h.write(bytes);
    h.finish()
}

/// Watches a flags file by polling: a changed file is parsed and swapped in
/// within one interval; a broken one changes nothing served, is logged once
/// (per distinct content) and counted. Kills written beside the file by
/// another process (`<file>.kills.json`) are picked up the same way.
#[derive(Debug)]
pub struct FileSource;

impl FileSource {
    /// Loads `path` into `manager` now, then polls it every `interval`.
    ///
    /// # Errors
    ///
    /// The [`LoadError`] when the file is unusable at start-up (there is no
    /// previous configuration to keep serving).
    pub fn start(
        path: impl Into<PathBuf>,
        manager: Arc<FeatureFlagManager>,
        interval: Duration,
        key: Option<String>,
    ) -> Result<SourceHandle, LoadError> {
        let path = path.into();
        let origin = path.display().to_string();
        let bytes = std::fs::read(&path).map_err(|source| LoadError::Read {
            path: path.clone(),
            source,
        })?;
        let text = crate::format::text_of(&origin, &bytes)?;
        manager.reload_from(&origin, text, key.as_deref())?;
        manager.health().record_success(manager.now_ms());
        let mut last_hash = content_hash(text.as_bytes());
        let mut last_stamp = stamp(&path);
        let kill_file = manager.kill_store().kill_file().map(Path::to_path_buf);
        let thread_origin = origin.clone();
        let mut last_kill_stamp = kill_file.as_deref().and_then(stamp);
        let body = move |rx: mpsc::Receiver<()>| {
            let mut last_read_error: Option<String> = None;
            while sleep_or_stop(&rx, interval) {
                let now = manager.now_ms();
                if let Some(kf) = &kill_file {
                    let s = stamp(kf);
                    if s != last_kill_stamp {
                        last_kill_stamp = s;
                        if let Err(e) = manager.reload_kills() {
                            tracing::error!(error = %e, "cannot read kill switches; keeping the current ones");
                        }
                    }
                }
                let s = stamp(&path);
                if s == last_stamp && last_read_error.is_none() {
                    manager.health().refresh(now);
                    continue;
                }
                last_stamp = s;
                match std::fs::read(&path) {
                    Ok(bytes) => {
                        last_read_error = None;
                        let h = content_hash(&bytes);
                        if h == last_hash {
                            manager.health().refresh(now);
                            continue;
                        }
                        last_hash = h;
                        let reloaded = crate::format::text_of(&origin, &bytes)
                            .and_then(|text| manager.reload_from(&origin, text, key.as_deref()));
                        match reloaded {
                            Ok(_) => manager.health().record_success(now),
                            Err(e) => manager.health().record_failure(now, &e.to_string()),
                        }
                    }
                    Err(e) => {
                        let msg = format!("{origin}: cannot read: {e}");
                        if last_read_error.as_deref() != Some(msg.as_str()) {
                            tracing::error!(error = %msg, "flags file unreadable; still serving the previous flags");
                            manager.count_reload_failure();
                            last_read_error = Some(msg.clone());
                        }
                        manager.health().record_failure(now, &msg);
                    }
                }
            }
        };
        SourceHandle::spawn("flightdeck-flags-file", body).map_err(|e| LoadError::Read {
            path: PathBuf::from(&thread_origin),
            source: std::io::Error::other(e.to_string()),
        })
    }
}

/// Settings for [`HttpSource`].
///
/// | setting | default |
/// |---|---|
/// | poll interval | 30 s |
/// | request timeout | 5 s |
/// | maximum backoff | 5 min |
/// | decryption key | none |
/// | bootstrap file | none |
/// | jitter seed | 0 |
#[derive(Debug, Clone)]
pub struct HttpSourceConfig {
    url: String,
    interval: Duration,
    timeout: Duration,
    max_backoff: Duration,
    key: Option<String>,
    bootstrap: Option<PathBuf>,
    seed: u64,
}

impl HttpSourceConfig {
    /// Polls `url`, a GrowthBook-compatible features endpoint
    /// (`{"features": …}` or `{"encryptedFeatures": …}`), over plain HTTP.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(5),
            max_backoff: Duration::from_secs(300),
            key: None,
            bootstrap: None,
            seed: 0,
        }
    }

    /// Time between polls while healthy. Defaults to 30 s.
    #[must_use]
    pub fn with_interval(mut self, d: Duration) -> Self {
        self.interval = d;
        self
    }

    /// Whole-request timeout. Defaults to 5 s.
    #[must_use]
    pub fn with_timeout(mut self, d: Duration) -> Self {
        self.timeout = d;
        self
    }

    /// Longest wait between polls while failing. Defaults to 5 min.
    #[must_use]
    pub fn with_max_backoff(mut self, d: Duration) -> Self {
        self.max_backoff = d;
        self
    }

    /// Decrypts `encryptedFeatures` with this key. Defaults to none.
    #[must_use]
    pub fn with_decryption_key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Serves this file when the endpoint is down at start-up. Defaults to none.
    #[must_use]
    pub fn with_bootstrap(mut self, path: impl Into<PathBuf>) -> Self {
        self.bootstrap = Some(path.into());
        self
    }

    /// Seeds the backoff jitter (reproducible tests). Defaults to 0.
    #[must_use]
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The wait before poll number `failures + 1` after `failures`
    /// consecutive failures: `interval × 2^(failures−1)`, capped, times a
    /// jitter factor in [0.5, 1).
    pub fn backoff(&self, failures: u32, rng: &mut impl Rng) -> Duration {
        if failures == 0 {
            return self.interval;
        }
        let exp = self
            .interval
            .saturating_mul(1u32 << (failures - 1).min(20))
            .min(self.max_backoff);
        exp.mul_f64(rng.random_range(0.5..1.0))
    }
}

enum Fetch {
    Changed(String, Option<String>),
    NotModified,
}

fn fetch(agent: &ureq::Agent, url: &str, etag: Option<&str>) -> Result<Fetch, String> {
    let mut req = agent.get(url);
    if let Some(e) = etag {
        req = req.header("If-None-Match", e);
    }
    let mut resp = req.call().map_err(|e| format!("GET {url}: {e}"))?;
    match resp.status().as_u16() {
        304 => Ok(Fetch::NotModified),
        200 => {
            let etag = resp
                .headers()
                .get("etag")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body = resp
                .body_mut()
                .with_config()
                .limit(256 * 1024 * 1024)
                .read_to_string()
                .map_err(|e| format!("GET {url}: unreadable body: {e}"))?;
            Ok(Fetch::Changed(body, etag))
        }
        s => Err(format!("GET {url}: HTTP {s}")),
    }
}

/// Applies one fetch: swaps in a new configuration, or records the failure
/// (the previous configuration keeps serving).
fn apply(
    manager: &FeatureFlagManager,
    config: &HttpSourceConfig,
    result: Result<Fetch, String>,
    etag: &mut Option<String>,
    failures: &mut u32,
) {
    let now = manager.now_ms();
    let outcome = match result {
        Ok(Fetch::NotModified) => Ok(()),
        Ok(Fetch::Changed(body, new_etag)) => manager
            .reload_from(&config.url, &body, config.key.as_deref())
            .map(|_| *etag = new_etag)
            .map_err(|e| e.to_string()),
        Err(e) => {
            tracing::warn!(error = %e, "flag source fetch failed; still serving the previous flags");
            manager.count_reload_failure();
            Err(e)
        }
    };
    match outcome {
        Ok(()) => {
            *failures = 0;
            manager.health().record_success(now);
        }
        Err(e) => {
            *failures += 1;
            manager.health().record_failure(now, &e);
        }
    }
}

/// Polls a GrowthBook-compatible endpoint with `If-None-Match`, timeouts and
/// exponential backoff with jitter.
#[derive(Debug)]
pub struct HttpSource;

impl HttpSource {
    /// Fetches once now (falling back to the bootstrap file), then polls in
    /// the background. The manager is not ready when neither worked; it
    /// becomes ready on the first successful poll.
    ///
    /// # Errors
    ///
    /// [`SourceError::BadUrl`] for a URL that is not plain `http://`,
    /// [`SourceError::Thread`] when the poller cannot start.
    pub fn start(
        config: HttpSourceConfig,
        manager: Arc<FeatureFlagManager>,
    ) -> Result<SourceHandle, SourceError> {
        if !config.url.starts_with("http://") {
            return Err(SourceError::BadUrl {
                url: config.url.clone(),
                reason: "only plain http:// is supported (terminate TLS in a sidecar)".into(),
            });
        }
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_connect(Some(config.timeout))
            .timeout_global(Some(config.timeout))
            .http_status_as_error(false)
            .build()
            .into();
        let mut etag: Option<String> = None;
        let mut failures: u32 = 0;
        apply(
            &manager,
            &config,
            fetch(&agent, &config.url, None),
            &mut etag,
            &mut failures,
        );
        if failures > 0
            && let Some(b) = &config.bootstrap
        {
            match std::fs::read_to_string(b) {
                Ok(text) => {
                    let origin = b.display().to_string();
                    if manager
                        .reload_from(&origin, &text, config.key.as_deref())
                        .is_ok()
                    {
                        tracing::warn!(bootstrap = %origin, "flag source down at start-up; serving the bootstrap file");
                    }
                }
                Err(e) => {
                    tracing::error!(bootstrap = %b.display(), error = %e, "cannot read the bootstrap file")
                }
            }
        }
        let body = move |rx: mpsc::Receiver<()>| {
            let mut rng = StdRng::seed_from_u64(config.seed);
            loop {
                let wait = config.backoff(failures, &mut rng);
                if !sleep_or_stop(&rx, wait) {
                    return;
                }
                apply(
                    &manager,
                    &config,
                    fetch(&agent, &config.url, etag.as_deref()),
                    &mut etag,
                    &mut failures,
                );
            }
        };
        SourceHandle::spawn("flightdeck-flags-http", body)
    }
}

/// How the configuration's source is doing, shared between a source's
/// poller and the manager.
#[derive(Debug)]
pub struct SourceHealth {
    stale_after_ms: u64,
    failing_since_ms: AtomicU64,
    last_success_ms: AtomicU64,
    failures: AtomicU64,
    stale: AtomicBool,
    last_error: Mutex<Option<String>>,
}

impl SourceHealth {
    /// Health whose results turn stale after the source has failed for
    /// `stale_after`.
    pub fn new(stale_after: Duration) -> Self {
        Self {
            stale_after_ms: stale_after.as_millis().min(u128::from(u64::MAX)) as u64,
            failing_since_ms: AtomicU64::new(0),
            last_success_ms: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            stale: AtomicBool::new(false),
            last_error: Mutex::new(None),
        }
    }

    /// Records a successful fetch or check.
    pub fn record_success(&self, now_ms: u64) {
        self.last_success_ms.store(now_ms, Ordering::Relaxed);
        self.failing_since_ms.store(0, Ordering::Relaxed);
        self.stale.store(false, Ordering::Relaxed);
    }

    /// Records a failure; results turn stale once failures have lasted
    /// longer than the configured age.
    pub fn record_failure(&self, now_ms: u64, error: &str) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        let _ = self.failing_since_ms.compare_exchange(
            0,
            now_ms.max(1),
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
        self.refresh(now_ms);
        if let Ok(mut e) = self.last_error.lock() {
            *e = Some(error.to_owned());
        }
    }

    /// Re-evaluates staleness at `now_ms` (pollers call this every tick).
    pub fn refresh(&self, now_ms: u64) {
        let since = self.failing_since_ms.load(Ordering::Relaxed);
        let stale = since != 0 && now_ms.saturating_sub(since) > self.stale_after_ms;
        self.stale.store(stale, Ordering::Relaxed);
    }

    /// Whether results are stale now.
    pub fn is_stale(&self) -> bool {
        self.stale.load(Ordering::Relaxed)
    }

    /// Failures so far.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// The last error, if the source is failing.
    pub fn last_error(&self) -> Option<String> {
        if self.failing_since_ms.load(Ordering::Relaxed) == 0 {
            return None;
        }
        self.last_error.lock().ok().and_then(|e| e.clone())
    }
}

impl Default for SourceHealth {
    fn default() -> Self {
        Self::new(Duration::from_secs(300))
    }
}

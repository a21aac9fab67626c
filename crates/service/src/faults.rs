//! Fault injection: what the rollback rehearsals break on purpose.

use std::sync::RwLock;

use serde::{Deserialize, Serialize};

/// The active faults. `false` or `0` clears one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Faults {
    /// Share of answers failing with 500 (0 to 1).
    pub error_rate: f64,
    /// Latency added to every answer, in ms (with ±20 % jitter).
    pub added_latency_ms: f64,
    /// `/healthz` and `/readyz` fail.
    pub health_check_failure: bool,
    /// Retrieval fails, so answers fail, and `/readyz` is 503.
    pub dependency_failure: bool,
    /// The heap really grows by this many MB per second (0 to 1024; the
    /// leak stops at 2 GiB so a rehearsal cannot take the machine down).
    pub memory_leak_mb_per_s: f64,
    /// The process aborts this many seconds after the fault is set (0: never).
    pub crash_after_s: f64,
    /// Share of answers failing with 500, on the `new_chunking_strategy`
    /// flag-on path only (a regression behind a flag; 0 to 1).
    pub flag_on_error_rate: f64,
    /// Latency added on the flag-on path only, in ms.
    pub flag_on_added_latency_ms: f64,
}

/// A bad fault document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultError(String);

impl std::fmt::Display for FaultError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FaultError {}

impl Faults {
    /// Parses `KIND=VALUE` (the `--fault` flag), onto `self`.
    ///
    /// # Errors
    ///
    /// A message naming the kind or value.
    pub fn set(&mut self, text: &str) -> Result<(), FaultError> {
        let (kind, value) = text.split_once('=').ok_or_else(|| {
            FaultError(format!(
                "{}: expected KIND=VALUE",
                flightdeck::obs::shown(text)
            ))
        })?;
        let doc = match kind {
            "health_check_failure" | "dependency_failure" => format!("{{\"{kind}\": {value}}}"),
            "error_rate"
            | "added_latency_ms"
            | "memory_leak_mb_per_s"
            | "crash_after_s"
            | "flag_on_error_rate"
            | "flag_on_added_latency_ms" => {
                format!("{{\"{kind}\": {value}}}")
            }
            _ => {
                return Err(FaultError(format!(
                    "{} is not a fault; use error_rate, added_latency_ms, health_check_failure, dependency_failure, memory_leak_mb_per_s, crash_after_s, flag_on_error_rate or flag_on_added_latency_ms",
                    flightdeck::obs::shown(kind)
                )));
            }
        };
        *self = merge(self, doc.as_bytes())?;
        Ok(())
    }

    /// The faults a request on the flag-on path meets: the flag-on faults
    /// added to the others.
    pub fn for_flag_on(&self) -> Self {
        let mut f = self.clone();
        f.error_rate = f.error_rate.max(self.flag_on_error_rate);
        f.added_latency_ms += self.flag_on_added_latency_ms;
        f
    }

    fn check(&self) -> Result<(), FaultError> {
        for (name, v) in [
            ("error_rate", self.error_rate),
            ("flag_on_error_rate", self.flag_on_error_rate),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(FaultError(format!("{name} {v} is outside 0 to 1")));
            }
        }
        if !(self.flag_on_added_latency_ms.is_finite()
            && (0.0..=600_000.0).contains(&self.flag_on_added_latency_ms))
        {
            return Err(FaultError(format!(
                "flag_on_added_latency_ms {} is outside 0 to 600000",
                self.flag_on_added_latency_ms
            )));
        }
        if !(self.added_latency_ms.is_finite()
            && (0.0..=600_000.0).contains(&self.added_latency_ms))
        {
            return Err(FaultError(format!(
                "added_latency_ms {} is outside 0 to 600000",
                self.added_latency_ms
            )));
        }
        if !(self.memory_leak_mb_per_s.is_finite()
            && (0.0..=1024.0).contains(&self.memory_leak_mb_per_s))
        {
            return Err(FaultError(format!(
                "memory_leak_mb_per_s {} is outside 0 to 1024",
                self.memory_leak_mb_per_s
            )));
        }
        if !(self.crash_after_s.is_finite() && (0.0..=86_400.0).contains(&self.crash_after_s)) {
            return Err(FaultError(format!(
                "crash_after_s {} is outside 0 to 86400",
                self.crash_after_s
            )));
        }
        Ok(())
    }
}

/// The most the memory-leak fault holds.
const MAX_LEAK_BYTES: usize = 2 << 30;

/// Runs the faults that act on their own (the leak and the crash) until
/// the task is dropped: every 100 ms it grows the leak and checks the
/// crash deadline.
pub(crate) async fn background(state: std::sync::Arc<FaultState>) {
    let mut leaked: Vec<Vec<u8>> = Vec::new();
    let mut held = 0usize;
    let mut crash_at: Option<std::time::Instant> = None;
    let tick = std::time::Duration::from_millis(100);
    loop {
        tokio::time::sleep(tick).await;
        let f = state.get();
        if f.memory_leak_mb_per_s > 0.0 && held < MAX_LEAK_BYTES {
            let bytes =
                ((f.memory_leak_mb_per_s * 1_048_576.0 / 10.0) as usize).min(MAX_LEAK_BYTES - held);
            // Written, so the pages are really resident.
            leaked.push(vec![0xa5; bytes]);
            held += bytes;
        } else if f.memory_leak_mb_per_s == 0.0 && held > 0 {
            leaked.clear();
            held = 0;
        }
        match (f.crash_after_s > 0.0, crash_at) {
            (true, None) => {
                crash_at = Some(
                    std::time::Instant::now() + std::time::Duration::from_secs_f64(f.crash_after_s),
                )
            }
            (false, Some(_)) => crash_at = None,
            (true, Some(at)) if std::time::Instant::now() >= at => {
                tracing::error!(target: flightdeck::obs::names::target::HTTP, "crashing on purpose (crash_after_s fault)");
                std::process::abort();
            }
            _ => {}
        }
    }
}

/// `base` with the keys of the JSON object `doc` applied.
fn merge(base: &Faults, doc: &[u8]) -> Result<Faults, FaultError> {
    let patch: serde_json::Value =
        serde_json::from_slice(doc).map_err(|e| FaultError(format!("not a JSON object: {e}")))?;
    let serde_json::Value::Object(patch) = patch else {
        return Err(FaultError(
            "expected a JSON object such as {\"error_rate\": 0.3}".into(),
        ));
    };
    let mut current = serde_json::to_value(base).map_err(|e| FaultError(e.to_string()))?;
    for (k, v) in patch {
        current[k] = v;
    }
    let next: Faults = serde_json::from_value(current).map_err(|e| FaultError(e.to_string()))?;
    next.check()?;
    Ok(next)
}

/// Faults shared by every request; a bad change keeps the current ones.
#[derive(Debug, Default)]
pub(crate) struct FaultState(RwLock<Faults>);

impl FaultState {
    pub(crate) fn new(f: Faults) -> Self {
        Self(RwLock::new(f))
    }

    pub(crate) fn get(&self) -> Faults {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Applies a JSON object of changes.
    pub(crate) fn apply(&self, doc: &[u8]) -> Result<Faults, FaultError> {
        let mut guard = self.0.write().unwrap_or_else(|p| p.into_inner());
        let next = merge(&guard, doc)?;
        *guard = next.clone();
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_apply_as_patches_and_bad_ones_change_nothing() {
        let s = FaultState::default();
        assert!(s.apply(br#"{"error_rate": 0.3}"#).unwrap().error_rate == 0.3);
        assert!(
            s.apply(br#"{"dependency_failure": true}"#)
                .unwrap()
                .dependency_failure
        );
        assert_eq!(s.get().error_rate, 0.3, "earlier faults stay");
        assert!(
            s.apply(br#"{"error_rate": 3}"#)
                .unwrap_err()
                .to_string()
                .contains("outside 0 to 1")
        );
        assert!(s.apply(br#"{"memory": 1}"#).is_err());
        assert!(s.apply(b"[]").is_err());
        assert_eq!(
            s.get().error_rate,
            0.3,
            "a bad change keeps the last good faults"
        );
        let mut f = Faults::default();
        f.set("added_latency_ms=50").unwrap();
        assert_eq!(f.added_latency_ms, 50.0);
        assert!(
            f.set("nope=1")
                .unwrap_err()
                .to_string()
                .contains("is not a fault")
        );
    }
}

//! Traffic routers behind one trait: HAProxy (weights through its runtime
//! API on the admin socket, no reload, so no connection drops when a weight
//! moves), a flag's rollout (the flags crate's files and kill switches), and
//! a recording router for tests of the controller.
//!
//! Moving traffic always raises the side that gains before lowering the
//! side that loses, so there is never a moment with no server in rotation;
//! an abort that cannot set the canary's weight to 0 puts the canary into
//! maintenance instead, and says so when that fails too.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use crate::error::ReleaseError;

/// Something that splits traffic between stable and canary.
pub trait Router: Send + Sync + std::fmt::Debug {
    /// A short name for messages (`haproxy`, `flag`).
    fn name(&self) -> &str;

    /// Sends `canary_percent` of traffic (0 to 100) to the canary and the
    /// rest to stable.
    ///
    /// # Errors
    ///
    /// [`ReleaseError::Io`] when the router could not be told.
    fn set_weight(&self, canary_percent: u32) -> Result<(), ReleaseError>;

    /// Takes the canary out of rotation now, whatever else fails (the
    /// fail-safe path of an abort). The default sets the weight to 0.
    ///
    /// # Errors
    ///
    /// [`ReleaseError::Io`] naming everything that was tried.
    fn abort(&self) -> Result<(), ReleaseError> {
        self.set_weight(0)
    }
}

/// HAProxy through its runtime API (`stats socket … level admin`).
#[derive(Debug, Clone)]
pub struct HaproxyRouter {
    /// The admin socket's path.
    pub socket: PathBuf,
    /// The backend holding both servers.
    pub backend: String,
    /// The stable server's name.
    pub stable: String,
    /// The canary server's name.
    pub canary: String,
    /// Connect, read and write timeout of one command.
    pub timeout: Duration,
}

impl HaproxyRouter {
    /// A router for `backend/stable` and `backend/canary` on `socket`.
    pub fn new(
        socket: impl Into<PathBuf>,
        backend: impl Into<String>,
        stable: impl Into<String>,
        canary: impl Into<String>,
    ) -> Self {
        Self {
            socket: socket.into(),
            backend: backend.into(),
            stable: stable.into(),
            canary: canary.into(),
            timeout: Duration::from_secs(2),
        }
    }

    /// Sends one runtime-API command and returns HAProxy's answer.
    ///
    /// # Errors
    ///
    /// [`ReleaseError::Io`] when the socket cannot be reached in time.
    pub fn command(&self, cmd: &str) -> Result<String, ReleaseError> {
        #[cfg(unix)]
        {
            let what = || format!("HAProxy admin socket {}", self.socket.display());
            let mut s = std::os::unix::net::UnixStream::connect(&self.socket)
                .map_err(|e| ReleaseError::io(what(), e))?;
            s.set_read_timeout(Some(self.timeout))
                .and_then(|()| s.set_write_timeout(Some(self.timeout)))
                .map_err(|e| ReleaseError::io(what(), e))?;
            s.write_all(format!("{cmd}\n").as_bytes())
                .map_err(|e| ReleaseError::io(what(), e))?;
            let mut out = String::new();
            s.take(1 << 20)
                .read_to_string(&mut out)
                .map_err(|e| ReleaseError::io(what(), e))?;
            Ok(out)
        }
        #[cfg(not(unix))]
        {
            let _ = cmd;
            Err(ReleaseError::Invalid(
                "the HAProxy router needs a Unix socket".into(),
            ))
        }
    }

    fn set_server_weight(&self, server: &str, weight: u32) -> Result<(), ReleaseError> {
        let cmd = format!("set server {}/{} weight {weight}", self.backend, server);
        let answer = self.command(&cmd)?;
        let answer = answer.trim();
        // Success is an empty answer; anything else is HAProxy's complaint.
        if answer.is_empty() {
            Ok(())
        } else {
            Err(ReleaseError::io(
                format!("HAProxy refused {cmd:?}"),
                flightdeck_obs_core::shown(answer),
            ))
        }
    }

    /// The current weights `(stable, canary)` from `show servers state`.
    ///
    /// # Errors
    ///
    /// [`ReleaseError::Io`] when the socket fails or a server is missing.
    pub fn weights(&self) -> Result<(u32, u32), ReleaseError> {
        let text = self.command(&format!("show servers state {}", self.backend))?;
        // Columns: be_id be_name srv_id srv_name srv_addr srv_op_state
        // srv_admin_state srv_uweight srv_iweight ...
        let weight_of = |name: &str| {
            text.lines()
                .filter(|l| !l.starts_with('#'))
                .map(|l| l.split_whitespace().collect::<Vec<_>>())
                .find(|c| c.len() > 7 && c[1] == self.backend && c[3] == name)
                .and_then(|c| c[7].parse::<u32>().ok())
                .ok_or_else(|| {
                    ReleaseError::io(
                        "HAProxy show servers state",
                        format!("no server {}/{name}", self.backend),
                    )
                })
        };
        Ok((weight_of(&self.stable)?, weight_of(&self.canary)?))
    }
}

impl Router for HaproxyRouter {
    fn name(&self) -> &str {
        "haproxy"
    }

    fn set_weight(&self, canary_percent: u32) -> Result<(), ReleaseError> {
        let canary = canary_percent.min(100);
        let stable = 100 - canary;
        let (now_stable, _) = self.weights().unwrap_or((0, 0));
        // Raise the side that gains first: never zero servers in rotation.
        if stable >= now_stable {
            self.set_server_weight(&self.stable, stable)?;
            self.set_server_weight(&self.canary, canary)
        } else {
            self.set_server_weight(&self.canary, canary)?;
            self.set_server_weight(&self.stable, stable)
        }
    }

    fn abort(&self) -> Result<(), ReleaseError> {
        let stable = self.set_server_weight(&self.stable, 100);
        match self.set_server_weight(&self.canary, 0) {
            Ok(()) => stable,
            Err(first) => {
                // Fail safe: take the canary out of rotation entirely.
                let cmd = format!("set server {}/{} state maint", self.backend, self.canary);
                match self.command(&cmd) {
                    Ok(a) if a.trim().is_empty() => Ok(()),
                    Ok(a) => Err(ReleaseError::io(
                        "abort: could not take the canary out of rotation",
                        format!(
                            "{first}; then {cmd:?} answered {}",
                            flightdeck_obs_core::shown(a.trim())
                        ),
                    )),
                    Err(second) => Err(ReleaseError::io(
                        "abort: could not take the canary out of rotation",
                        format!("{first}; then {second}"),
                    )),
                }
            }
        }
    }
}

/// A flag's rollout as the router: the canary is `rollout_percentage` of
/// a flag in a simple flags file (YAML), for changes that ship behind a
/// flag. The service watching the file picks each change up within its poll
/// interval. An abort kills the flag (kill switches beat rollouts, and
/// every process watching the file honours them) and sets the rollout to 0.
#[derive(Debug, Clone)]
pub struct FlagRouter {
    /// The flags file.
    pub flags_file: PathBuf,
    /// The flag's id.
    pub flag: String,
}

impl FlagRouter {
    /// A router over `flag` in `flags_file`.
    pub fn new(flags_file: impl Into<PathBuf>, flag: impl Into<String>) -> Self {
        Self {
            flags_file: flags_file.into(),
            flag: flag.into(),
        }
    }

    /// The flag's `rollout_percentage` now (100 when absent).
    ///
    /// # Errors
    ///
    /// [`ReleaseError::Io`] when the file cannot be read or has no such flag.
    pub fn weight(&self) -> Result<f64, ReleaseError> {
        let text = std::fs::read_to_string(&self.flags_file).map_err(|e| {
            ReleaseError::io(format!("cannot read {}", self.flags_file.display()), e)
        })?;
        rollout_of(&text, &self.flag).map_err(|e| ReleaseError::io(self.what(), e))
    }

    fn what(&self) -> String {
        format!(
            "flag {} in {}",
            flightdeck_obs_core::shown(&self.flag),
            self.flags_file.display()
        )
    }
}

/// The `rollout_percentage` of `flag` in a simple flags YAML.
fn rollout_of(text: &str, flag: &str) -> Result<f64, String> {
    let doc: serde_json::Value = serde_norway::from_str(text).map_err(|e| e.to_string())?;
    let f = doc["flags"]
        .as_array()
        .and_then(|fs| fs.iter().find(|f| f["id"] == flag))
        .ok_or_else(|| "no such flag".to_owned())?;
    Ok(f.get("rollout_percentage")
        .and_then(serde_json::Value::as_f64)
        .unwrap_or(100.0))
}

/// Sets `rollout_percentage: percent` in `flag`'s block of a simple flags
/// YAML, keeping every other line (and comment) as it is.
fn set_rollout(text: &str, flag: &str, percent: u32) -> Result<String, String> {
    let lines: Vec<&str> = text.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start().len();
    let is_id = |l: &str| {
        let t = l.trim_start().trim_start_matches("- ").trim_start();
        t.strip_prefix("id:")
            .map(|v| v.trim().trim_matches(['"', '\'']) == flag)
            .unwrap_or(false)
    };
    let start = lines
        .iter()
        .position(|l| is_id(l))
        .ok_or_else(|| "no `id:` line names the flag".to_owned())?;
    // The block's keys sit at the column of `id`.
    let id_line = lines[start];
    let key_col = id_line.find("id:").unwrap_or(0);
    let dash_col = indent(id_line);
    let mut end = start + 1;
    while end < lines.len() {
        let l = lines[end];
        if !l.trim().is_empty() && !l.trim_start().starts_with('#') && indent(l) <= dash_col {
            break;
        }
        end += 1;
    }
    let mut out: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
    let existing = (start..end).find(|&i| {
        indent(lines[i]) == key_col && lines[i].trim_start().starts_with("rollout_percentage:")
    });
    let new_line = format!("{}rollout_percentage: {percent}", " ".repeat(key_col));
    match existing {
        Some(i) => out[i] = new_line,
        None => out.insert(start + 1, new_line),
    }
    let mut joined = out.join("\n");
    if text.ends_with('\n') {
        joined.push('\n');
    }
    Ok(joined)
}

impl Router for FlagRouter {
    fn name(&self) -> &str {
        "flag"
    }

    fn set_weight(&self, canary_percent: u32) -> Result<(), ReleaseError> {
        let percent = canary_percent.min(100);
        let file = self.flags_file.display().to_string();
        flightdeck_obs_core::update_locked(
            &self.flags_file,
            |old| {
                let text = old
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .ok_or_else(|| {
                        ReleaseError::io(self.what(), "the flags file does not exist")
                    })?;
                let new = set_rollout(&text, &self.flag, percent)
                    .map_err(|e| ReleaseError::io(self.what(), e))?;
                // Never write a file the service would refuse.
                flightdeck_flags::FlagSet::parse(&file, &new, None)
                    .map_err(|e| ReleaseError::io(self.what(), e))?;
                let got =
                    rollout_of(&new, &self.flag).map_err(|e| ReleaseError::io(self.what(), e))?;
                if (got - f64::from(percent)).abs() > f64::EPSILON {
                    return Err(ReleaseError::io(
                        self.what(),
                        format!("the edit did not take: rollout_percentage reads {got}"),
                    ));
                }
                Ok(Some(new.into_bytes()))
            },
            |_| Ok(()),
        )
    }

    fn abort(&self) -> Result<(), ReleaseError> {
        use flightdeck_flags::{AuditAction, AuditEntry, KillStore};
        let store = KillStore::beside(&self.flags_file);
        let entry = AuditEntry {
            timestamp_ms: crate::ledger::now_ms(),
            action: AuditAction::Kill,
            flag: self.flag.clone(),
            actor: "flightdeck-release".into(),
            reason: "canary aborted: traffic back to the flag's off variant".into(),
        };
        let killed = store
            .apply(&flightdeck_flags::KillSet::default(), &entry)
            .map(|_| ())
            .map_err(|e| ReleaseError::io(self.what(), e));
        let zero = self.set_weight(0);
        match (killed, zero) {
            (Ok(()), _) | (_, Ok(())) => Ok(()),
            (Err(a), Err(b)) => Err(ReleaseError::io(
                "abort: could not take the flag's canary out",
                format!("kill: {a}; rollout 0: {b}"),
            )),
        }
    }
}

/// A router that records the weights it is given (for tests and dry runs),
/// and can be told to fail.
#[derive(Debug, Default)]
pub struct RecordingRouter {
    weights: Mutex<Vec<u32>>,
    fail: Mutex<bool>,
}

impl RecordingRouter {
    /// The weights set so far.
    pub fn weights(&self) -> Vec<u32> {
        self.weights.lock().map(|w| w.clone()).unwrap_or_default()
    }

    /// Makes every later call fail (or succeed again).
    pub fn set_failing(&self, fail: bool) {
        if let Ok(mut f) = self.fail.lock() {
            *f = fail;
        }
    }
}

impl Router for RecordingRouter {
    fn name(&self) -> &str {
        "recording"
    }

    fn set_weight(&self, canary_percent: u32) -> Result<(), ReleaseError> {
        if self.fail.lock().map(|f| *f).unwrap_or(false) {
            return Err(ReleaseError::io("recording router", "told to fail"));
        }
        if let Ok(mut w) = self.weights.lock() {
            w.push(canary_percent);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLAGS: &str = "# our flags\nflags:\n  - id: other\n    rollout_percentage: 10\n  - id: new_chunking_strategy\n    description: semantic chunking  # why\n    targeting:\n      attributes: {plan: {$ne: free}}\n  - id: last\n";

    #[test]
    fn the_flag_router_edits_only_its_flag_and_keeps_comments() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flags.yaml");
        std::fs::write(&path, FLAGS).unwrap();
        let r = FlagRouter::new(&path, "new_chunking_strategy");
        assert_eq!(r.weight().unwrap(), 100.0);
        r.set_weight(5).unwrap();
        assert_eq!(r.weight().unwrap(), 5.0);
        r.set_weight(25).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("# our flags") && text.contains("# why"),
            "{text}"
        );
        assert_eq!(rollout_of(&text, "other").unwrap(), 10.0);
        assert_eq!(rollout_of(&text, "new_chunking_strategy").unwrap(), 25.0);
        assert_eq!(text.matches("rollout_percentage").count(), 2, "{text}");
        // Abort: killed beside the file, and rolled out to nobody.
        r.abort().unwrap();
        assert_eq!(r.weight().unwrap(), 0.0);
        let kills = flightdeck_flags::KillStore::beside(&path).load().unwrap();
        assert!(kills.contains_key("new_chunking_strategy"));
        assert!(FlagRouter::new(&path, "nope").set_weight(5).is_err());
    }
}

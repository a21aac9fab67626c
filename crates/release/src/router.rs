//! Traffic routers behind one trait: HAProxy (weights through its runtime
//! API on the admin socket, no reload, so no connection drops when a weight
//! moves), and a recording router for tests of the controller.
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

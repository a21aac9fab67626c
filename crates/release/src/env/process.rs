//! Supervised local processes: each runs under `flightdeck supervise` (a
//! restart policy for crashes) in its own process group, with a pid record
//! under the environment's `pids/` and its output in `logs/`. Stopping sends
//! SIGTERM to the group (the service drains), then SIGKILL after a grace.

use std::ffi::OsString;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::ReleaseError;

/// A started process, as its pid file records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessRecord {
    /// Its name in the environment (`stable-1.0.0`, `haproxy`).
    pub name: String,
    /// What it is (`service`, `haproxy`, `prometheus`, `traffic`).
    pub role: String,
    /// The supervisor's pid, which is also the process group's id.
    pub pid: u32,
    /// The supervisor's program (checked before signalling, so a recycled
    /// pid is never signalled).
    pub program: String,
    /// Where it listens, when it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addr: Option<String>,
    /// The build it runs, for services.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Its log file.
    pub log: PathBuf,
    /// When it started (Unix milliseconds).
    pub started_ms: u64,
}

/// What to start.
#[derive(Debug, Clone)]
pub struct ProcessSpec {
    /// Its name (the pid and log files are named by it).
    pub name: String,
    /// Its role.
    pub role: String,
    /// The program and its arguments.
    pub argv: Vec<OsString>,
    /// Restarts allowed after crashes (0: never restarted).
    pub restarts: u32,
    /// Where it listens.
    pub addr: Option<String>,
    /// The build it runs.
    pub version: Option<String>,
    /// Environment variables to set (secrets stay out of the command line).
    pub env: Vec<(String, String)>,
}

/// Starts `spec` under `supervisor supervise` in a new process group,
/// recording it in `dir/pids/<name>.json` with its output in
/// `dir/logs/<name>.log`.
///
/// # Errors
///
/// [`ReleaseError::Io`] when it cannot be started or recorded.
pub fn start(
    dir: &Path,
    supervisor: &Path,
    spec: &ProcessSpec,
) -> Result<ProcessRecord, ReleaseError> {
    let pids = dir.join("pids");
    let logs = dir.join("logs");
    std::fs::create_dir_all(&pids)?;
    std::fs::create_dir_all(&logs)?;
    let log = logs.join(format!("{}.log", spec.name));
    let out = File::options()
        .create(true)
        .append(true)
        .open(&log)
        .map_err(|e| ReleaseError::io(format!("cannot open {}", log.display()), e))?;
    let err = out.try_clone()?;
    let mut cmd = Command::new(supervisor);
    cmd.arg("supervise")
        .arg("--restarts")
        .arg(spec.restarts.to_string())
        .arg("--")
        .args(&spec.argv)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err));
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
    }
    let child = cmd.spawn().map_err(|e| {
        ReleaseError::io(
            format!("cannot start {} ({})", spec.name, supervisor.display()),
            e,
        )
    })?;
    let record = ProcessRecord {
        name: spec.name.clone(),
        role: spec.role.clone(),
        pid: child.id(),
        program: supervisor.display().to_string(),
        addr: spec.addr.clone(),
        version: spec.version.clone(),
        log,
        started_ms: crate::ledger::now_ms(),
    };
    // The child is not waited for here: it outlives this process (its
    // supervisor is reparented), and `stop` ends it through its group.
    drop(child);
    write_atomic(
        &pids.join(format!("{}.json", spec.name)),
        serde_json::to_string_pretty(&record)
            .unwrap_or_default()
            .as_bytes(),
    )?;
    Ok(record)
}

/// Writes `bytes` to `path` atomically (obs-core's [`write_atomic`]:
/// a temporary file, a rename, the directory synced).
///
/// [`write_atomic`]: flightdeck_obs_core::write_atomic
///
/// # Errors
///
/// [`ReleaseError::Io`] naming the file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ReleaseError> {
    flightdeck_obs_core::write_atomic(path, bytes)
        .map_err(|e| ReleaseError::io(format!("cannot write {}", path.display()), e))
}

/// The pid records under `dir/pids`.
pub fn records(dir: &Path) -> Vec<ProcessRecord> {
    let mut out: Vec<ProcessRecord> = std::fs::read_dir(dir.join("pids"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|d| d.path().extension().is_some_and(|e| e == "json"))
        .filter_map(|d| std::fs::read_to_string(d.path()).ok())
        .filter_map(|t| serde_json::from_str(&t).ok())
        .collect();
    out.sort_by_key(|r| r.started_ms);
    out
}

/// Renames a record (its pid file; the log keeps its name): a promoted
/// canary becomes the stable. Answers the renamed record.
///
/// # Errors
///
/// [`ReleaseError::Io`] when the pid file cannot be rewritten.
pub fn rename(
    dir: &Path,
    record: &ProcessRecord,
    name: &str,
) -> Result<ProcessRecord, ReleaseError> {
    let pids = dir.join("pids");
    let mut r = record.clone();
    r.name = name.to_owned();
    write_atomic(
        &pids.join(format!("{name}.json")),
        serde_json::to_string_pretty(&r)
            .unwrap_or_default()
            .as_bytes(),
    )?;
    let _ = std::fs::remove_file(pids.join(format!("{}.json", record.name)));
    Ok(r)
}

/// Whether the recorded process is still running (and is still the
/// program it was: a recycled pid is not).
pub fn alive(record: &ProcessRecord) -> bool {
    #[cfg(target_os = "linux")]
    {
        let proc_dir = PathBuf::from(format!("/proc/{}", record.pid));
        let Ok(stat) = std::fs::read_to_string(proc_dir.join("stat")) else {
            return false;
        };
        // The state follows the parenthesised command name.
        let state = stat
            .rsplit(')')
            .next()
            .and_then(|r| r.split_whitespace().next());
        if matches!(state, Some("Z" | "X")) {
            return false;
        }
        let Ok(cmdline) = std::fs::read(proc_dir.join("cmdline")) else {
            // Gone between the two reads, or unreadable: the stat decides.
            return proc_dir.exists();
        };
        // Empty just after spawn: the parent of a vfork-style spawn resumes
        // when the child's exec installs its new memory, before the kernel
        // sets the new argument area (seen once in CI: a live canary judged
        // dead, then left running). A zombie was answered above, and a
        // recycled pid shows its own program.
        if cmdline.is_empty() {
            return true;
        }
        let argv0 = cmdline.split(|b| *b == 0).next().unwrap_or_default();
        argv0 == record.program.as_bytes()
    }
    #[cfg(not(target_os = "linux"))]
    {
        signal(record.pid, None).is_ok()
    }
}

#[cfg(unix)]
fn signal(pgid: u32, sig: Option<rustix::process::Signal>) -> Result<(), String> {
    let pid = i32::try_from(pgid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .ok_or_else(|| format!("pid {pgid} out of range"))?;
    match sig {
        Some(s) => rustix::process::kill_process_group(pid, s).map_err(|e| e.to_string()),
        None => rustix::process::test_kill_process_group(pid).map_err(|e| e.to_string()),
    }
}

#[cfg(not(unix))]
fn signal(_pgid: u32, _sig: Option<()>) -> Result<(), String> {
    Err("local environments need a Unix system".into())
}

/// Whether any live (not zombie) process is in process group `pgid`.
fn group_alive(pgid: u32) -> bool {
    #[cfg(target_os = "linux")]
    {
        std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter(|d| {
                d.file_name()
                    .to_string_lossy()
                    .bytes()
                    .all(|b| b.is_ascii_digit())
            })
            .filter_map(|d| std::fs::read_to_string(d.path().join("stat")).ok())
            .any(|stat| {
                // After "pid (comm)": state ppid pgrp ...
                let mut rest = stat.rsplit(')').next().unwrap_or("").split_whitespace();
                let state = rest.next();
                let pgrp = rest.nth(1).and_then(|p| p.parse::<u32>().ok());
                pgrp == Some(pgid) && !matches!(state, Some("Z" | "X"))
            })
    }
    #[cfg(not(target_os = "linux"))]
    {
        signal(pgid, None).is_ok()
    }
}

/// Stops a recorded process: SIGTERM to its group (the supervisor ends at
/// once, the service drains its requests), SIGKILL once `grace` has passed
/// with any of the group still running, then removes its pid file from
/// `dir/pids`. Stopping one that is already gone only removes the file.
///
/// # Errors
///
/// [`ReleaseError::Io`] when it cannot be signalled or outlives SIGKILL.
pub fn stop(dir: &Path, record: &ProcessRecord, grace: Duration) -> Result<(), ReleaseError> {
    let pid_file = dir.join("pids").join(format!("{}.json", record.name));
    // Only a group whose leader is still the recorded program is signalled:
    // a recycled pid belongs to someone else.
    if alive(record) {
        #[cfg(unix)]
        {
            use rustix::process::Signal;
            let _ = signal(record.pid, Some(Signal::TERM));
            let deadline = Instant::now() + grace;
            while group_alive(record.pid) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if group_alive(record.pid) {
                let _ = signal(record.pid, Some(Signal::KILL));
                let deadline = Instant::now() + Duration::from_secs(5);
                while group_alive(record.pid) && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
        if group_alive(record.pid) {
            return Err(ReleaseError::io(
                format!("cannot stop {} (process group {})", record.name, record.pid),
                "it outlived SIGKILL",
            ));
        }
    }
    match std::fs::remove_file(&pid_file) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(ReleaseError::io(
            format!("cannot remove {}", pid_file.display()),
            e,
        )),
        _ => Ok(()),
    }
}

/// Runs `argv` and restarts it when it crashes (exits other than 0), at
/// most `restarts` times, waiting 200 ms, then twice as long each time (at
/// most 5 s); a run of a minute or more resets the count. Answers the
/// last exit code. Used by `flightdeck supervise`.
///
/// # Errors
///
/// A message when the program cannot be started at all.
pub fn supervise(argv: &[OsString], restarts: u32) -> Result<i32, String> {
    let Some((prog, args)) = argv.split_first() else {
        return Err("nothing to run".into());
    };
    let mut left = restarts;
    let mut backoff = Duration::from_millis(200);
    loop {
        let started = Instant::now();
        let status = Command::new(prog)
            .args(args)
            .status()
            .map_err(|e| format!("cannot start {}: {e}", Path::new(prog).display()))?;
        if status.success() {
            return Ok(0);
        }
        if started.elapsed() >= Duration::from_secs(60) {
            left = restarts;
            backoff = Duration::from_millis(200);
        }
        let code = status.code().unwrap_or(1);
        if left == 0 {
            let _ = writeln!(
                std::io::stderr(),
                "supervise: {} exited ({status}); no restarts left",
                Path::new(prog).display()
            );
            return Ok(code);
        }
        left -= 1;
        let _ = writeln!(
            std::io::stderr(),
            "supervise: {} exited ({status}); restarting in {} ms ({left} restarts left)",
            Path::new(prog).display(),
            backoff.as_millis()
        );
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

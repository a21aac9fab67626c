//! Local environments, the embedded default of the delivery pipeline: real
//! processes on 127.0.0.1, no cluster needed.
//!
//! - **Builds** live in an [`artifacts::ArtifactStore`]:
//!   the service's binary with a manifest (version, commit, sha256).
//! - **staging** is one instance of the service; a deploy waits for
//!   `/readyz`, runs smoke checks, records itself, then stops the old one.
//! - **production** is a stable instance behind HAProxy, scraped by
//!   Prometheus, with steady synthetic traffic; a release starts a canary
//!   beside it and the [controller](crate::controller) moves it through the
//!   steps while the judge, the SLO burn and readiness hold, waits for an
//!   approval before promotion, and rolls back on its own otherwise.
//!
//! Every process runs supervised (a restart policy for crashes) in its
//! own process group with a pid record and a log under the environment's
//! directory. State and history come from each environment's release
//! [ledger](crate::ledger), so they survive restarts of everything else.
//!
//! ```text
//! <root>/artifacts/<version>/{flightdeck, manifest.json}
//! <root>/envs/<env>/{ledger.jsonl, state.json, topology.json, pids/, logs/,
//!                    haproxy/, prometheus/, canary.yaml, kayenta.json, approvals/}
//! ```

pub mod artifacts;
mod infra;
pub mod process;
pub mod rehearsal;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use self::artifacts::{Artifact, ArtifactStore};
use self::infra::{BACKEND, free_port, get, log_tail, poll, post_json};
pub use self::infra::{METRICS_PAGE_LIMIT, metrics_page};
use self::process::{ProcessRecord, ProcessSpec, write_atomic};
use crate::controller::CanaryManager;
use crate::error::ReleaseError;
use crate::ledger::{Entry, EntryKind, Ledger, ReleasePhase, ReleaseState};
use crate::router::{HaproxyRouter, Router};
use crate::run::AnalysisRun;

/// The confirm-promotion hook a local release waits on.
pub(crate) const APPROVAL_HOOK: &str = "production-approval";

/// The environments there are.
pub const ENVIRONMENTS: [&str; 2] = ["staging", "production"];

/// How deploys run.
#[derive(Debug, Clone)]
pub struct DeployOptions {
    /// Who deploys (recorded in the ledger).
    pub actor: String,
    /// The service's `--time-scale` (its simulated latencies).
    pub time_scale: f64,
    /// The canary analysis interval.
    pub interval: Duration,
    /// The canary's steps before promotion (percent of traffic).
    pub steps: Vec<u32>,
    /// Production's steady synthetic traffic (requests per second; 0: none).
    pub traffic_rps: u32,
    /// Extra `flightdeck serve` arguments for the new build's process
    /// (faults, for rehearsals).
    pub serve_args: Vec<String>,
    /// How long a new process gets to become ready.
    pub ready_timeout: Duration,
    /// How long an old process gets to drain before it is killed.
    pub drain: Duration,
    /// The services' admin token (for `/admin/*`: faults, flag kills);
    /// passed in the environment, never on the command line.
    pub admin_token: Option<String>,
}

impl Default for DeployOptions {
    fn default() -> Self {
        Self {
            actor: std::env::var("USER").unwrap_or_else(|_| "unknown".into()),
            time_scale: 0.2,
            interval: Duration::from_secs(2),
            steps: vec![5, 25],
            traffic_rps: 40,
            serve_args: Vec::new(),
            ready_timeout: Duration::from_secs(20),
            drain: Duration::from_secs(5),
            admin_token: None,
        }
    }
}

/// How a canary run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum CanaryOutcome {
    /// Healthy at its last step; promotion waits for an approval.
    AwaitingApproval(ReleaseState),
    /// Promoted: the canary is the new stable.
    Promoted(ReleaseState),
    /// Rolled back (or failed); traffic is on stable.
    RolledBack(ReleaseState),
    /// Paused for a person (no data past the deadline, or `onFailure: pause`).
    Paused(ReleaseState),
}

/// The processes of an environment (`topology.json`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Topology {
    stable: Option<ProcessRecord>,
    canary: Option<ProcessRecord>,
    haproxy: Option<ProcessRecord>,
    prometheus: Option<ProcessRecord>,
    traffic: Option<ProcessRecord>,
    /// HAProxy's frontend port, kept across restarts.
    frontend_port: Option<u16>,
    /// Prometheus's port, kept across restarts.
    prometheus_port: Option<u16>,
}

/// One process as `deploy-status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ProcessStatus {
    /// Its record.
    #[serde(flatten)]
    pub record: ProcessRecord,
    /// Whether it runs.
    pub alive: bool,
    /// For services: whether `/readyz` answers 200 now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready: Option<bool>,
}

/// What `deploy-status` shows.
#[derive(Debug, Clone, Serialize)]
pub struct EnvStatus {
    /// The environment.
    pub env: String,
    /// The version serving users (none before the first deploy).
    pub version: Option<String>,
    /// Whether every process that should run does and the service is ready.
    pub healthy: bool,
    /// Where users reach it.
    pub url: Option<String>,
    /// Prometheus, for production.
    pub prometheus: Option<String>,
    /// The last release's state (from the ledger).
    pub release: Option<ReleaseState>,
    /// The processes.
    pub processes: Vec<ProcessStatus>,
}

/// The local workspace: an artifact store and the environments.
#[derive(Debug, Clone)]
pub struct Workspace {
    root: PathBuf,
    store: ArtifactStore,
}

impl Workspace {
    /// The workspace under `root` (`target/flightdeck` in a checkout).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        let store = ArtifactStore::new(root.join("artifacts"));
        Self { root, store }
    }

    /// The workspace's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The artifact store.
    pub fn artifacts(&self) -> &ArtifactStore {
        &self.store
    }

    /// The environment `name` (`staging` or `production`).
    ///
    /// # Errors
    ///
    /// [`ReleaseError::Invalid`] for another name; I/O errors opening it.
    pub fn env(&self, name: &str) -> Result<Environment, ReleaseError> {
        if !ENVIRONMENTS.contains(&name) {
            return Err(ReleaseError::Invalid(format!(
                "environment {}: use staging or production",
                flightdeck_obs_core::shown(name)
            )));
        }
        let dir = self.root.join("envs").join(name);
        std::fs::create_dir_all(&dir)
            .map_err(|e| ReleaseError::io(format!("cannot create {}", dir.display()), e))?;
        Ok(Environment {
            name: name.to_owned(),
            ledger: Ledger::open(&dir)?,
            dir,
        })
    }

    /// Stops every process any environment of this workspace started.
    /// Answers what was stopped.
    ///
    /// # Errors
    ///
    /// The first process that could not be stopped (the others still are).
    pub fn down(&self, drain: Duration) -> Result<Vec<String>, ReleaseError> {
        let mut stopped = Vec::new();
        let mut first_err = None;
        for name in ENVIRONMENTS {
            let dir = self.root.join("envs").join(name);
            if !dir.exists() {
                continue;
            }
            let env = self.env(name)?;
            let _lock = env.lock_wait(Duration::from_secs(30))?;
            // Traffic first, then canary and stable, then the infrastructure.
            let order = |r: &ProcessRecord| match r.role.as_str() {
                "traffic" => 0,
                "service" => 1,
                _ => 2,
            };
            let mut recs = process::records(&dir);
            recs.sort_by_key(order);
            for r in recs {
                let was = process::alive(&r);
                match process::stop(&dir, &r, drain) {
                    Ok(()) if was => stopped.push(format!("{name}/{}", r.name)),
                    Ok(()) => {}
                    Err(e) => {
                        first_err.get_or_insert(e);
                    }
                }
            }
            let mut t = env.topology();
            t.stable = None;
            t.canary = None;
            t.haproxy = None;
            t.prometheus = None;
            t.traffic = None;
            env.save_topology(&t)?;
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(stopped),
        }
    }
}

/// One environment's directory, ledger and processes.
#[derive(Debug, Clone)]
pub struct Environment {
    name: String,
    dir: PathBuf,
    ledger: Ledger,
}

impl Environment {
    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Its ledger.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    fn topology(&self) -> Topology {
        std::fs::read_to_string(self.dir.join("topology.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default()
    }

    fn save_topology(&self, t: &Topology) -> Result<(), ReleaseError> {
        write_atomic(
            &self.dir.join("topology.json"),
            serde_json::to_string_pretty(t)
                .unwrap_or_default()
                .as_bytes(),
        )
    }

    /// Takes the environment's lock, so two deploys never interleave.
    fn lock(&self) -> Result<File, ReleaseError> {
        let path = self.dir.join(".env.lock");
        let f = File::create(&path)?;
        match f.try_lock() {
            Ok(()) => Ok(f),
            Err(std::fs::TryLockError::WouldBlock) => Err(ReleaseError::Conflict(format!(
                "another command is changing {} right now (it holds {}); wait for it, or roll back a running release with `rollback`",
                self.name,
                path.display()
            ))),
            Err(std::fs::TryLockError::Error(e)) => Err(e.into()),
        }
    }

    fn lock_wait(&self, limit: Duration) -> Result<File, ReleaseError> {
        let deadline = Instant::now() + limit;
        loop {
            match self.lock() {
                Err(ReleaseError::Conflict(_)) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                other => return other,
            }
        }
    }

    /// The version serving users now, from the ledger.
    ///
    /// # Errors
    ///
    /// A ledger read error.
    pub fn serving(&self) -> Result<Option<String>, ReleaseError> {
        Ok(self
            .ledger
            .state()?
            .map(|s| serving_of(&s))
            .filter(|v| !v.is_empty()))
    }

    /// Every version that served, oldest first (a version again after a
    /// rollback appears again).
    ///
    /// # Errors
    ///
    /// A ledger read error.
    pub fn served(&self) -> Result<Vec<String>, ReleaseError> {
        let mut out: Vec<String> = Vec::new();
        let (mut stable, mut canary) = (String::new(), String::new());
        for e in self.ledger.entries()? {
            if e.kind == EntryKind::Start {
                stable = e.detail["stable_version"].as_str().unwrap_or("").to_owned();
                canary = e.detail["canary_version"].as_str().unwrap_or("").to_owned();
            }
            let now = match e.phase {
                ReleasePhase::Succeeded => &canary,
                ReleasePhase::RolledBack | ReleasePhase::Failed => &stable,
                _ => continue,
            };
            if !now.is_empty() && out.last() != Some(now) {
                out.push(now.clone());
            }
        }
        Ok(out)
    }

    fn record(
        &self,
        release: &str,
        kind: EntryKind,
        phase: ReleasePhase,
        weight: u32,
        reason: String,
        detail: Value,
    ) -> Result<ReleaseState, ReleaseError> {
        self.ledger.append(Entry {
            seq: 0,
            time_ms: 0,
            release: release.to_owned(),
            kind,
            phase,
            weight,
            failed_checks: 0,
            reason: Some(reason),
            detail,
        })
    }

    /// Records a deploy that replaced `from` with `to` at once (staging, a
    /// first production deploy, a rollback to an older build).
    fn record_switch(
        &self,
        kind: &str,
        from: &str,
        to: &str,
        opts: &DeployOptions,
        extra: Value,
        reason: String,
    ) -> Result<ReleaseState, ReleaseError> {
        let release = format!("{kind}-{to}-{}", crate::ledger::now_ms());
        let rollback = kind == "rollback";
        // A rollback is a release whose stable is the older build it
        // returns to, ended RolledBack: the folded state then serves it.
        let (stable, canary) = if rollback { (to, from) } else { (from, to) };
        self.record(
            &release,
            EntryKind::Start,
            ReleasePhase::Pending,
            0,
            format!("{kind} of {to} by {}", opts.actor),
            json!({"stable_version": stable, "canary_version": canary, "deploy": kind, "actor": opts.actor, "extra": extra}),
        )?;
        let (phase, weight) = if rollback {
            (ReleasePhase::RolledBack, 0)
        } else {
            (ReleasePhase::Succeeded, 100)
        };
        self.record(
            &release,
            EntryKind::Transition,
            phase,
            weight,
            reason,
            json!({"deploy": kind, "actor": opts.actor}),
        )
    }

    fn start_service(
        &self,
        art: &Artifact,
        role: &str,
        opts: &DeployOptions,
    ) -> Result<ProcessRecord, ReleaseError> {
        let port = free_port()?;
        let addr = format!("127.0.0.1:{port}");
        let version = &art.manifest.version;
        let mut argv: Vec<std::ffi::OsString> = vec![
            art.binary.clone().into(),
            "serve".into(),
            "--listen".into(),
            addr.clone().into(),
            "--build-version".into(),
            version.into(),
            "--time-scale".into(),
            opts.time_scale.to_string().into(),
            "--grace-secs".into(),
            opts.drain.as_secs().max(1).to_string().into(),
        ];
        argv.extend(opts.serve_args.iter().map(Into::into));
        let rec = process::start(
            &self.dir,
            &art.binary,
            &ProcessSpec {
                name: format!("{role}-{version}-{port}"),
                role: "service".into(),
                argv,
                // A canary that crashes is a finding, not something to hide
                // by restarting it; stable is kept up.
                restarts: if role == "canary" { 0 } else { 3 },
                addr: Some(addr.clone()),
                version: Some(version.clone()),
                env: opts
                    .admin_token
                    .iter()
                    .map(|t| ("FLIGHTDECK_ADMIN_TOKEN".to_owned(), t.clone()))
                    .collect(),
            },
        )?;
        let ready = poll(opts.ready_timeout, || {
            if !process::alive(&rec) {
                return Some(false);
            }
            let (s, body) = get(
                &format!("http://{addr}/api/dashboard"),
                Duration::from_secs(1),
            )
            .ok()?;
            let v: Value = serde_json::from_str(&body).ok()?;
            let ours = s == 200 && v["version"] == version.as_str();
            (ours
                && get(&format!("http://{addr}/readyz"), Duration::from_secs(1))
                    .ok()?
                    .0
                    == 200)
                .then_some(true)
        });
        if ready != Some(true) {
            let tail = log_tail(&rec.log, 15);
            let _ = process::stop(&self.dir, &rec, Duration::from_secs(1));
            return Err(ReleaseError::io(
                format!("{} {version} at {addr}", self.name),
                format!(
                    "not ready within {}s (/readyz){}",
                    opts.ready_timeout.as_secs(),
                    if tail.is_empty() {
                        String::new()
                    } else {
                        format!("; its log ends:\n{tail}")
                    }
                ),
            ));
        }
        Ok(rec)
    }

    /// Smoke checks of a fresh instance: health, readiness, one answer, and
    /// its build in `/metrics`. Answers the checks that passed.
    fn smoke(addr: &str, version: &str) -> Result<Vec<String>, String> {
        let t = Duration::from_secs(5);
        let mut passed = Vec::new();
        for path in ["/healthz", "/readyz"] {
            match get(&format!("http://{addr}{path}"), t) {
                Ok((200, _)) => passed.push(format!("GET {path} 200")),
                Ok((s, b)) => {
                    return Err(format!(
                        "GET {path} answered {s}: {}",
                        flightdeck_obs_core::shown(&b)
                    ));
                }
                Err(e) => return Err(format!("GET {path}: {e}")),
            }
        }
        let body = json!({"query": "How do I roll back a canary?", "user_id": "smoke-check"});
        match post_json(&format!("http://{addr}/v1/answer"), &body, None, t) {
            Ok((200, b)) => {
                let v: Value = serde_json::from_str(&b)
                    .map_err(|e| format!("POST /v1/answer: not JSON: {e}"))?;
                if v["answer"].as_str().is_none_or(str::is_empty)
                    || v["trace_id"].as_str().is_none()
                {
                    return Err(format!(
                        "POST /v1/answer: no answer or trace_id in {}",
                        flightdeck_obs_core::shown(&b)
                    ));
                }
                passed.push("POST /v1/answer 200 with an answer and a trace id".into());
            }
            Ok((s, b)) => {
                return Err(format!(
                    "POST /v1/answer answered {s}: {}",
                    flightdeck_obs_core::shown(&b)
                ));
            }
            Err(e) => return Err(format!("POST /v1/answer: {e}")),
        }
        match get(&format!("http://{addr}/metrics"), t) {
            Ok((200, m))
                if m.contains(&format!("flightdeck_build_info{{version=\"{version}\"")) =>
            {
                passed.push(format!(
                    "/metrics has flightdeck_build_info{{version=\"{version}\"}}"
                ));
            }
            Ok((s, _)) => {
                return Err(format!(
                    "GET /metrics ({s}) does not carry flightdeck_build_info{{version=\"{version}\"}}"
                ));
            }
            Err(e) => return Err(format!("GET /metrics: {e}")),
        }
        Ok(passed)
    }

    /// Deploys `art` to staging: a new instance, ready and smoke-checked,
    /// replaces the old one (stopped after it drains). A build that fails
    /// its checks is stopped and the old one keeps serving.
    ///
    /// # Errors
    ///
    /// [`ReleaseError::Invalid`] outside staging; [`ReleaseError::Io`] when
    /// the new instance is not ready or fails a smoke check (recorded).
    pub fn deploy_staging(
        &self,
        art: &Artifact,
        opts: &DeployOptions,
    ) -> Result<ReleaseState, ReleaseError> {
        self.switch(art, opts, "deploy")
    }

    /// Replaces staging's instance with `art` (a deploy or a rollback).
    fn switch(
        &self,
        art: &Artifact,
        opts: &DeployOptions,
        kind: &str,
    ) -> Result<ReleaseState, ReleaseError> {
        if self.name != "staging" {
            return Err(ReleaseError::Invalid(format!(
                "{} is not staging",
                self.name
            )));
        }
        let _lock = self.lock()?;
        let mut t = self.topology();
        let from = self.serving()?.unwrap_or_default();
        let version = art.manifest.version.clone();
        let rec = match self.start_service(art, "staging", opts) {
            Ok(r) => r,
            Err(e) => {
                self.record_switch_failed(kind, &from, &version, opts, &e.to_string())?;
                return Err(e);
            }
        };
        let addr = rec.addr.clone().unwrap_or_default();
        let checks = match Self::smoke(&addr, &version) {
            Ok(c) => c,
            Err(why) => {
                let _ = process::stop(&self.dir, &rec, opts.drain);
                self.record_switch_failed(
                    kind,
                    &from,
                    &version,
                    opts,
                    &format!("smoke check failed: {why}"),
                )?;
                return Err(ReleaseError::io(
                    format!("staging {version}"),
                    format!("smoke check failed: {why}"),
                ));
            }
        };
        let old = t.stable.replace(rec.clone());
        self.save_topology(&t)?;
        if let Some(old) = old {
            process::stop(&self.dir, &old, opts.drain)?;
        }
        let reason = if kind == "rollback" {
            format!(
                "staging rolled back from {from} to {version} by {}",
                opts.actor
            )
        } else {
            format!(
                "{version} serves staging at http://{addr}; smoke checks passed ({})",
                checks.len()
            )
        };
        self.record_switch(kind, &from, &version, opts, json!({"addr": addr, "checks": checks, "sha256": art.manifest.sha256, "commit": art.manifest.commit}), reason)
    }

    fn record_switch_failed(
        &self,
        kind: &str,
        from: &str,
        to: &str,
        opts: &DeployOptions,
        why: &str,
    ) -> Result<(), ReleaseError> {
        let release = format!("{kind}-{to}-{}", crate::ledger::now_ms());
        self.record(&release, EntryKind::Start, ReleasePhase::Pending, 0, format!("{kind} of {to} by {}", opts.actor), json!({"stable_version": from, "canary_version": to, "deploy": kind, "actor": opts.actor}))?;
        self.record(
            &release,
            EntryKind::Transition,
            ReleasePhase::Failed,
            0,
            format!(
                "{to} was not deployed, {} still serves: {why}",
                if from.is_empty() { "nothing" } else { from }
            ),
            json!({"deploy": kind}),
        )?;
        Ok(())
    }

    /// The admin socket, frontend URL and Prometheus URL of production.
    fn urls(&self, t: &Topology) -> (PathBuf, Option<String>, Option<String>) {
        (
            self.dir.join("haproxy").join("admin.sock"),
            t.frontend_port.map(|p| format!("http://127.0.0.1:{p}")),
            t.prometheus_port.map(|p| format!("http://127.0.0.1:{p}")),
        )
    }

    fn router(&self) -> HaproxyRouter {
        HaproxyRouter::new(
            self.dir.join("haproxy").join("admin.sock"),
            BACKEND,
            "stable",
            "canary",
        )
    }

    /// Points a server slot at `addr` and puts it in rotation.
    fn fill_slot(&self, slot: &str, addr: &str) -> Result<(), ReleaseError> {
        let (ip, port) = addr.rsplit_once(':').unwrap_or((addr, "0"));
        let r = self.router();
        for cmd in [
            format!("set server {BACKEND}/{slot} addr {ip} port {port}"),
            format!("set server {BACKEND}/{slot} state ready"),
        ] {
            let answer = r.command(&cmd)?;
            let a = answer.trim();
            if !(a.is_empty() || a.contains("changed from") || a.contains("no need to change")) {
                return Err(ReleaseError::io(
                    format!("HAProxy refused {cmd:?}"),
                    flightdeck_obs_core::shown(a),
                ));
            }
        }
        Ok(())
    }

    /// Starts whatever of production's infrastructure is not running:
    /// HAProxy (in front of `stable`), Prometheus, and the traffic.
    fn ensure_infra(
        &self,
        t: &mut Topology,
        supervisor: &Path,
        opts: &DeployOptions,
    ) -> Result<(), ReleaseError> {
        let Some(stable) = t.stable.clone() else {
            return Err(ReleaseError::Invalid(
                "production has no stable build".into(),
            ));
        };
        let stable_addr = stable.addr.clone().unwrap_or_default();
        let frontend = match t.frontend_port {
            Some(p) => p,
            None => free_port()?,
        };
        t.frontend_port = Some(frontend);
        let hdir = self.dir.join("haproxy");
        std::fs::create_dir_all(&hdir)?;
        let socket = hdir.join("admin.sock");
        if !t.haproxy.as_ref().is_some_and(process::alive) {
            let cfg = hdir.join("haproxy.cfg");
            write_atomic(
                &cfg,
                infra::haproxy_config(&socket, frontend, &stable_addr).as_bytes(),
            )?;
            let _ = std::fs::remove_file(&socket);
            let spec = ProcessSpec {
                name: "haproxy".into(),
                role: "haproxy".into(),
                argv: vec![
                    which("haproxy")?.into(),
                    "-db".into(),
                    "-f".into(),
                    cfg.into(),
                ],
                restarts: 5,
                addr: Some(format!("127.0.0.1:{frontend}")),
                version: None,
                env: Vec::new(),
            };
            let rec = self.start_ready(
                supervisor,
                &spec,
                &format!("http://127.0.0.1:{frontend}/healthz"),
                Duration::from_secs(15),
            )?;
            t.haproxy = Some(rec);
        }
        let pdir = self.dir.join("prometheus");
        std::fs::create_dir_all(&pdir)?;
        let targets = pdir.join("targets.json");
        self.refresh_targets(t)?;
        if !t.prometheus.as_ref().is_some_and(process::alive) {
            let port = match t.prometheus_port {
                Some(p) => p,
                None => free_port()?,
            };
            t.prometheus_port = Some(port);
            let cfg = pdir.join("prometheus.yml");
            write_atomic(&cfg, infra::prometheus_config(&targets).as_bytes())?;
            let spec = ProcessSpec {
                name: "prometheus".into(),
                role: "prometheus".into(),
                argv: vec![
                    which("prometheus")?.into(),
                    format!("--config.file={}", cfg.display()).into(),
                    format!("--storage.tsdb.path={}", pdir.join("data").display()).into(),
                    format!("--web.listen-address=127.0.0.1:{port}").into(),
                    "--storage.tsdb.retention.time=1d".into(),
                ],
                restarts: 5,
                addr: Some(format!("127.0.0.1:{port}")),
                version: None,
                env: Vec::new(),
            };
            let rec = self.start_ready(
                supervisor,
                &spec,
                &format!("http://127.0.0.1:{port}/-/ready"),
                Duration::from_secs(30),
            )?;
            t.prometheus = Some(rec);
        }
        if opts.traffic_rps > 0 && !t.traffic.as_ref().is_some_and(process::alive) {
            let rec = process::start(
                &self.dir,
                supervisor,
                &ProcessSpec {
                    name: "traffic".into(),
                    role: "traffic".into(),
                    argv: vec![
                        supervisor.into(),
                        "load".into(),
                        "--target".into(),
                        format!("http://127.0.0.1:{frontend}/v1/answer").into(),
                        "--rps".into(),
                        opts.traffic_rps.to_string().into(),
                        "--concurrency".into(),
                        "16".into(),
                        "--duration".into(),
                        "24h".into(),
                        "--json".into(),
                    ],
                    restarts: 5,
                    addr: None,
                    version: None,
                    env: Vec::new(),
                },
            )?;
            t.traffic = Some(rec);
        }
        self.save_topology(t)
    }

    /// Starts a piece of infrastructure and waits until `ready_url`
    /// answers 200; a process that never does is stopped and its log shown.
    fn start_ready(
        &self,
        supervisor: &Path,
        spec: &ProcessSpec,
        ready_url: &str,
        limit: Duration,
    ) -> Result<ProcessRecord, ReleaseError> {
        let rec = process::start(&self.dir, supervisor, spec)?;
        let up = poll(limit, || {
            (get(ready_url, Duration::from_secs(1)).ok()?.0 == 200).then_some(())
        });
        if up.is_none() {
            let tail = log_tail(&rec.log, 15);
            let _ = process::stop(&self.dir, &rec, Duration::from_secs(1));
            return Err(ReleaseError::io(
                format!("production {}", spec.name),
                format!(
                    "{ready_url} did not answer 200 within {}s; its log ends:\n{tail}",
                    limit.as_secs()
                ),
            ));
        }
        Ok(rec)
    }

    /// Waits until Prometheus scrapes `role` and has `secs` of its samples.
    fn wait_scraped(
        &self,
        t: &Topology,
        role: &str,
        secs: u32,
        limit: Duration,
    ) -> Result<(), ReleaseError> {
        let (_, _, prom) = self.urls(t);
        let prom = prom.unwrap_or_default();
        let q = format!(
            "count_over_time(up{{role=\"{role}\"}}[{secs}s]) >= {secs} and up{{role=\"{role}\"}} == 1"
        );
        poll(limit, || infra::prometheus_value(&prom, &q))
            .map(|_| ())
            .ok_or_else(|| {
                ReleaseError::io(
                    "production Prometheus",
                    format!(
                        "has not scraped the {role} build for {secs}s within {}s",
                        limit.as_secs()
                    ),
                )
            })
    }

    /// Deploys production without a canary: the first build there (nothing
    /// to compare a canary with), after an approval.
    ///
    /// # Errors
    ///
    /// [`ReleaseError::Invalid`] when production already has a stable
    /// build; I/O errors starting it.
    pub fn bootstrap_production(
        &self,
        art: &Artifact,
        supervisor: &Path,
        opts: &DeployOptions,
        approver: &str,
    ) -> Result<ReleaseState, ReleaseError> {
        let _lock = self.lock()?;
        let mut t = self.topology();
        if t.stable.as_ref().is_some_and(process::alive) {
            return Err(ReleaseError::Invalid(
                "production already runs a stable build; release a new one with deploy-canary"
                    .into(),
            ));
        }
        let version = art.manifest.version.clone();
        let rec = self.start_service(art, "stable", opts)?;
        let addr = rec.addr.clone().unwrap_or_default();
        if let Err(why) = Self::smoke(&addr, &version) {
            let _ = process::stop(&self.dir, &rec, opts.drain);
            return Err(ReleaseError::io(
                format!("production {version}"),
                format!("smoke check failed: {why}"),
            ));
        }
        t.stable = Some(rec);
        // A restarted HAProxy must front the new stable.
        if let Some(h) = t.haproxy.take() {
            process::stop(&self.dir, &h, Duration::from_secs(2))?;
        }
        self.ensure_infra(&mut t, supervisor, opts)?;
        let (_, url, _) = self.urls(&t);
        let from = self.serving()?.unwrap_or_default();
        self.record_switch(
            "deploy",
            &from,
            &version,
            opts,
            json!({"addr": addr, "approver": approver, "sha256": art.manifest.sha256, "commit": art.manifest.commit}),
            format!("{version} serves production at {} (first deploy, approved by {approver})", url.unwrap_or_default()),
        )
    }

    /// Starts a canary release of `art` in production and runs it through
    /// the steps; it ends healthy at the last step awaiting approval, or
    /// rolled back (traffic on stable, the canary stopped).
    ///
    /// # Errors
    ///
    /// [`ReleaseError::Invalid`] when production has no stable build or a
    /// release is already running; I/O errors.
    pub fn deploy_canary(
        &self,
        art: &Artifact,
        supervisor: &Path,
        opts: &DeployOptions,
        progress: &mut dyn FnMut(&ReleaseState),
    ) -> Result<CanaryOutcome, ReleaseError> {
        let _lock = self.lock()?;
        let mut t = self.topology();
        if !t.stable.as_ref().is_some_and(process::alive) {
            return Err(ReleaseError::Invalid("production has no running stable build: deploy the first one with deploy-prod --approve".into()));
        }
        if let Some(s) = self.ledger.state()?
            && !s.phase.is_terminal()
        {
            return Err(ReleaseError::Invalid(format!(
                "release {} ({:?}) is still running in production: approve it (deploy-prod --approve) or roll it back first",
                s.release, s.phase
            )));
        }
        let version = art.manifest.version.clone();
        let stable_version = self.serving()?.unwrap_or_default();
        if stable_version == version {
            return Err(ReleaseError::Invalid(format!(
                "{version} already serves production"
            )));
        }
        self.ensure_infra(&mut t, supervisor, opts)?;
        let rec = self.start_service(art, "canary", opts)?;
        let addr = rec.addr.clone().unwrap_or_default();
        t.canary = Some(rec);
        self.save_topology(&t)?;
        let spec_path = self.dir.join("canary.yaml");
        let mut run = || -> Result<CanaryOutcome, ReleaseError> {
            self.fill_slot("canary", &addr)?;
            self.router().set_weight(0)?;
            // Prometheus scrapes the canary too from now on.
            self.refresh_targets(&t)?;
            // The judge needs history on both sides before the first step.
            self.wait_scraped(&t, "stable", 8, Duration::from_secs(60))?;
            self.wait_scraped(&t, "canary", 3, Duration::from_secs(60))?;
            let release = format!("rag-{version}-{}", crate::ledger::now_ms());
            let (socket, _, prom) = self.urls(&t);
            let approvals = self.dir.join("approvals");
            std::fs::create_dir_all(&approvals)?;
            let approval = approvals.join(&release);
            write_atomic(
                &self.dir.join("kayenta.json"),
                serde_json::to_string_pretty(&infra::kayenta_config())
                    .unwrap_or_default()
                    .as_bytes(),
            )?;
            let spec_text = infra::canary_spec(&infra::SpecInputs {
                release_stable: &stable_version,
                release_canary: &version,
                socket: &socket,
                prometheus: prom.as_deref().unwrap_or_default(),
                canary_addr: &addr,
                interval: opts.interval,
                steps: &opts.steps,
                approval_file: &approval,
            });
            write_atomic(&spec_path, spec_text.as_bytes())?;
            let m = self.manager(&spec_path)?;
            m.start(&release, &stable_version, &version)?;
            self.drive(&m, &spec_path, opts, progress, false)
        };
        let result = run();
        drop(_lock);
        match result {
            Ok(outcome) => {
                self.settle(&outcome, opts)?;
                Ok(outcome)
            }
            Err(e) => {
                // Whatever failed, the canary leaves: a release it began is
                // aborted in the ledger and traffic goes back to stable.
                if let Ok(Some(s)) = self.ledger.state()
                    && !s.phase.is_terminal()
                    && s.canary_version == version
                    && let Ok(m) = self.manager(&spec_path)
                {
                    let _ = m.abort("deploy-canary", &format!("the canary run failed: {e}"));
                }
                let _ = self.discard_canary(opts);
                Err(e)
            }
        }
    }

    fn manager(&self, spec_path: &Path) -> Result<CanaryManager, ReleaseError> {
        let text = std::fs::read_to_string(spec_path)
            .map_err(|e| ReleaseError::io(format!("cannot read {}", spec_path.display()), e))?;
        let spec = crate::spec::CanarySpec::from_yaml(&text, spec_path)?;
        Ok(CanaryManager::new(
            self.ledger.clone(),
            spec.router.build(),
            spec.progression.clone(),
        )
        .with_rollback_window(spec.rollback_window)
        .with_hooks(spec.hooks.clone()))
    }

    /// Ticks the release every interval until it needs a person or ends.
    fn drive(
        &self,
        m: &CanaryManager,
        spec_path: &Path,
        opts: &DeployOptions,
        progress: &mut dyn FnMut(&ReleaseState),
        approved: bool,
    ) -> Result<CanaryOutcome, ReleaseError> {
        let text = std::fs::read_to_string(spec_path)?;
        let spec = crate::spec::CanarySpec::from_yaml(&text, spec_path)?;
        let mut analysis = AnalysisRun::new(spec.metrics.clone());
        let last_step = opts.steps.last().copied().unwrap_or(100);
        loop {
            let started = Instant::now();
            let s = match m.tick(&mut analysis) {
                Ok(s) => s,
                // Another command (a rollback) moved the ledger: read it.
                Err(ReleaseError::Conflict(_)) => m.state()?,
                Err(e) => return Err(e),
            };
            progress(&s);
            match s.phase {
                ReleasePhase::Succeeded => return Ok(CanaryOutcome::Promoted(s)),
                ReleasePhase::RolledBack | ReleasePhase::Failed => {
                    return Ok(CanaryOutcome::RolledBack(s));
                }
                ReleasePhase::Paused => return Ok(CanaryOutcome::Paused(s)),
                ReleasePhase::Progressing if !approved && s.weight == last_step => {
                    // Baked and passing: only the approval gate holds it.
                    let last = self.ledger.entries()?.pop();
                    if last.is_some_and(|e| {
                        e.kind == EntryKind::Analysis
                            && e.detail["outcome"] == "pass"
                            && e.detail["decision"]["reason"]
                                .as_str()
                                .is_some_and(|r| r.contains(APPROVAL_HOOK))
                    }) {
                        return Ok(CanaryOutcome::AwaitingApproval(s));
                    }
                }
                _ => {}
            }
            if let Some(rest) = opts.interval.checked_sub(started.elapsed()) {
                std::thread::sleep(rest);
            }
        }
    }

    /// After a release ends: a promoted canary takes the stable slot (the
    /// old stable drains and stops); a rolled-back one is stopped.
    fn settle(&self, outcome: &CanaryOutcome, opts: &DeployOptions) -> Result<(), ReleaseError> {
        let _lock = self.lock_wait(Duration::from_secs(30))?;
        let mut t = self.topology();
        match outcome {
            CanaryOutcome::Promoted(_) => {
                let Some(canary) = t.canary.take() else {
                    return Ok(());
                };
                let name = canary.name.replacen("canary-", "stable-", 1);
                let canary = process::rename(&self.dir, &canary, &name)?;
                // The canary carries everything already.
                self.take_stable_slot(&mut t, canary, opts)?;
            }
            CanaryOutcome::RolledBack(_) => {
                drop(_lock);
                self.discard_canary(opts)?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Makes `rec`, which already carries all traffic through the canary
    /// slot, the stable: the stable slot joins it on the same process, the
    /// canary slot leaves rotation, and the old stable drains and stops.
    fn take_stable_slot(
        &self,
        t: &mut Topology,
        rec: ProcessRecord,
        opts: &DeployOptions,
    ) -> Result<(), ReleaseError> {
        self.fill_slot("stable", rec.addr.as_deref().unwrap_or_default())?;
        self.router().set_weight(0)?;
        self.retire_canary_slot();
        let old = t.stable.replace(rec);
        self.save_topology(t)?;
        self.refresh_targets(t)?;
        if let Some(old) = old {
            process::stop(&self.dir, &old, opts.drain)?;
        }
        Ok(())
    }

    /// Puts the canary slot in maintenance (best effort: its weight is
    /// already 0, this also stops its health checks).
    fn retire_canary_slot(&self) {
        let _ = self
            .router()
            .command(&format!("set server {BACKEND}/canary state maint"));
    }

    /// Takes the canary out of rotation and stops it.
    fn discard_canary(&self, opts: &DeployOptions) -> Result<(), ReleaseError> {
        let _lock = self.lock_wait(Duration::from_secs(30))?;
        let mut t = self.topology();
        if t.haproxy.as_ref().is_some_and(process::alive) {
            self.router().abort()?;
            self.retire_canary_slot();
        }
        if let Some(c) = t.canary.take() {
            self.save_topology(&t)?;
            self.refresh_targets(&t)?;
            process::stop(&self.dir, &c, opts.drain)?;
        }
        Ok(())
    }

    fn refresh_targets(&self, t: &Topology) -> Result<(), ReleaseError> {
        let mut services = Vec::new();
        if let Some(s) = &t.stable {
            services.push(("stable", s));
        }
        if let Some(c) = &t.canary {
            services.push(("canary", c));
        }
        infra::write_targets(&self.dir.join("prometheus").join("targets.json"), &services)
    }

    /// Approves the running release for production (recorded with its
    /// approver) and runs it to the end: promoted, or rolled back when the
    /// analysis fails on the way.
    ///
    /// # Errors
    ///
    /// [`ReleaseError::Invalid`] when no release is running.
    pub fn approve(
        &self,
        approver: &str,
        opts: &DeployOptions,
        progress: &mut dyn FnMut(&ReleaseState),
    ) -> Result<CanaryOutcome, ReleaseError> {
        let lock = self.lock()?;
        let Some(s) = self.ledger.state()?.filter(|s| !s.phase.is_terminal()) else {
            return Err(ReleaseError::Invalid(
                "no release is running in production: start one with deploy-canary".into(),
            ));
        };
        let spec_path = self.dir.join("canary.yaml");
        let m = self.manager(&spec_path)?;
        self.record(
            &s.release,
            EntryKind::Command,
            s.phase,
            s.weight,
            format!("approved for production by {approver}"),
            json!({"command": "approve", "actor": approver, "approver": approver}),
        )?;
        write_atomic(
            &self.dir.join("approvals").join(&s.release),
            approver.as_bytes(),
        )?;
        if s.phase == ReleasePhase::Paused {
            m.resume(approver)?;
        }
        let outcome = self.drive(&m, &spec_path, opts, progress, true)?;
        drop(lock);
        self.settle(&outcome, opts)?;
        Ok(outcome)
    }

    /// Rolls the environment back: a running release is aborted (traffic on
    /// stable at once, the canary stopped); otherwise `to` (default: the
    /// version that served before this one) is started, takes the traffic,
    /// and the current build drains and stops.
    ///
    /// # Errors
    ///
    /// [`ReleaseError::Invalid`] when there is nothing to roll back to.
    pub fn rollback(
        &self,
        store: &ArtifactStore,
        to: Option<&str>,
        reason: &str,
        opts: &DeployOptions,
    ) -> Result<ReleaseState, ReleaseError> {
        if let Some(s) = self.ledger.state()?
            && !s.phase.is_terminal()
            && self.name == "production"
        {
            let m = self.manager(&self.dir.join("canary.yaml"))?;
            let s = m.abort(&opts.actor, reason)?;
            // A deploy-canary still running sees the rollback and settles
            // too; settling twice is harmless.
            self.settle(&CanaryOutcome::RolledBack(s.clone()), opts)?;
            return Ok(s);
        }
        let current = self.serving()?.ok_or_else(|| {
            ReleaseError::Invalid(format!("nothing was ever deployed to {}", self.name))
        })?;
        let target = match to {
            Some(v) => v.to_owned(),
            None => self
                .served()?
                .into_iter()
                .rev()
                .find(|v| *v != current)
                .ok_or_else(|| ReleaseError::Invalid(format!("{} has served only {current}: nothing older to roll back to (give --to VERSION)", self.name)))?,
        };
        if target == current {
            return Err(ReleaseError::Invalid(format!(
                "{target} already serves {}",
                self.name
            )));
        }
        let art = store.get(&target)?;
        let mut opts = opts.clone();
        opts.serve_args.clear();
        if self.name == "staging" {
            return self.switch(&art, &opts, "rollback");
        }
        let _lock = self.lock()?;
        let mut t = self.topology();
        let rec = self.start_service(&art, "stable", &opts)?;
        let addr = rec.addr.clone().unwrap_or_default();
        // The older build takes all traffic through the canary slot first.
        self.fill_slot("canary", &addr)?;
        self.router().set_weight(100)?;
        self.take_stable_slot(&mut t, rec, &opts)?;
        self.record_switch(
            "rollback",
            &current,
            &target,
            &opts,
            json!({"addr": addr, "reason": reason}),
            format!(
                "production rolled back from {current} to {target} by {}: {reason}",
                opts.actor
            ),
        )
    }

    /// One analysis of the running release now (judge, SLO burn,
    /// readiness), without recording it or moving traffic.
    ///
    /// # Errors
    ///
    /// [`ReleaseError::Invalid`] when no release runs here.
    pub fn canary_health(&self) -> Result<crate::controller::CheckResult, ReleaseError> {
        use crate::controller::Analyzer;
        let Some(s) = self.ledger.state()?.filter(|s| !s.phase.is_terminal()) else {
            return Err(ReleaseError::Invalid(format!(
                "no release is running in {}",
                self.name
            )));
        };
        let spec_path = self.dir.join("canary.yaml");
        let text = std::fs::read_to_string(&spec_path)
            .map_err(|e| ReleaseError::io(format!("cannot read {}", spec_path.display()), e))?;
        let spec = crate::spec::CanarySpec::from_yaml(&text, &spec_path)?;
        Ok(AnalysisRun::new(spec.metrics.clone()).check(s.weight))
    }

    /// The environment now: versions, health and processes.
    ///
    /// # Errors
    ///
    /// A ledger read error.
    pub fn status(&self) -> Result<EnvStatus, ReleaseError> {
        let t = self.topology();
        let release = self.ledger.state()?;
        let mut processes = Vec::new();
        let mut healthy = t.stable.is_some();
        for rec in process::records(&self.dir) {
            let alive = process::alive(&rec);
            let ready = (rec.role == "service").then(|| {
                alive
                    && rec.addr.as_ref().is_some_and(|a| {
                        get(&format!("http://{a}/readyz"), Duration::from_secs(1))
                            .is_ok_and(|(s, _)| s == 200)
                    })
            });
            healthy &= alive && ready != Some(false);
            processes.push(ProcessStatus {
                record: rec,
                alive,
                ready,
            });
        }
        let (_, frontend, prom) = self.urls(&t);
        let url = if self.name == "staging" {
            t.stable
                .as_ref()
                .and_then(|s| s.addr.clone())
                .map(|a| format!("http://{a}"))
        } else {
            frontend
        };
        Ok(EnvStatus {
            env: self.name.clone(),
            version: release.as_ref().map(serving_of),
            healthy,
            url,
            prometheus: prom.filter(|_| self.name == "production"),
            release,
            processes,
        })
    }
}

/// The version serving users in a release state.
fn serving_of(s: &ReleaseState) -> String {
    match s.phase {
        ReleasePhase::Succeeded => s.canary_version.clone(),
        _ => s.stable_version.clone(),
    }
}

/// `name` found on `PATH`, or an error naming how to install it.
fn which(name: &str) -> Result<PathBuf, ReleaseError> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            ReleaseError::io(
                format!("local production needs {name}"),
                "not found on PATH; install it (Debian: apt-get install haproxy prometheus, or cargo xtask install-test-deps)",
            )
        })
}

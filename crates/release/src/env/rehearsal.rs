//! Rollback rehearsals for real: each scenario brings up a fresh local
//! production (stable behind HAProxy, scraped by Prometheus, under steady
//! traffic), starts a canary broken in one way, lets the controller notice
//! and roll it back, and measures what users felt: the time from the fault
//! reaching users to the rollback decision, the time until traffic was
//! fully back on stable, the requests HAProxy answered and failed during the
//! incident, and whether stable answered its readiness probe throughout.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

use super::artifacts::Artifact;
use super::infra::get;
use super::{CanaryOutcome, DeployOptions, Workspace};
use crate::error::ReleaseError;
use crate::ledger::{EntryKind, Ledger, ReleasePhase};

/// One way to break a canary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scenario {
    /// Its name (`--scenario NAME`, and the playbook's anchor).
    pub name: &'static str,
    /// The canary's `flightdeck serve --fault` arguments.
    pub faults: &'static [&'static str],
    /// The longest detection allowed (none: it must be promoted).
    pub detect_target_s: Option<u64>,
    /// What must notice it.
    pub noticed_by: &'static str,
}

/// The seed's six scenarios, a regression behind a flag caught by a
/// guarded rollout, and the healthy control.
pub const SCENARIOS: [Scenario; 8] = [
    Scenario {
        name: "canary_failure",
        faults: &["crash_after_s=15"],
        detect_target_s: Some(60),
        noticed_by: "readiness / error rate",
    },
    Scenario {
        name: "error_spike",
        faults: &["error_rate=0.2"],
        detect_target_s: Some(60),
        noticed_by: "the judge on error rate (critical)",
    },
    Scenario {
        name: "latency_degradation",
        faults: &["added_latency_ms=300"],
        detect_target_s: Some(90),
        noticed_by: "the judge on latency",
    },
    Scenario {
        name: "health_check_failure",
        faults: &["health_check_failure=true"],
        detect_target_s: Some(60),
        noticed_by: "readiness probes",
    },
    Scenario {
        name: "memory_leak",
        faults: &["memory_leak_mb_per_s=20"],
        detect_target_s: Some(120),
        noticed_by: "the judge on resident memory (its trend)",
    },
    Scenario {
        name: "dependency_failure",
        faults: &["dependency_failure=true"],
        detect_target_s: Some(60),
        noticed_by: "readiness and errors",
    },
    Scenario {
        name: "flag_regression",
        faults: &["flag_on_error_rate=0.3"],
        detect_target_s: Some(60),
        noticed_by: "the guarded flag rollout (judge and SLO burn of the flag-on cohort); the flag is killed",
    },
    Scenario {
        name: "healthy",
        faults: &[],
        detect_target_s: None,
        noticed_by: "nothing: it must be promoted",
    },
];

/// The scenario called `name`.
///
/// # Errors
///
/// [`ReleaseError::Invalid`] naming the scenarios there are.
pub fn scenario(name: &str) -> Result<Scenario, ReleaseError> {
    SCENARIOS
        .iter()
        .find(|s| s.name == name)
        .copied()
        .ok_or_else(|| {
            ReleaseError::Invalid(format!(
                "scenario {}: use one of {}",
                flightdeck_obs_core::shown(name),
                SCENARIOS.map(|s| s.name).join(", ")
            ))
        })
}

/// One series of a timeline: seconds since the timeline's start and values.
#[derive(Debug, Clone, Serialize)]
pub struct Series {
    /// `stable` or `canary`.
    pub role: String,
    /// The points.
    pub points: Vec<(f64, f64)>,
}

/// What the timeline picture shows.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Timeline {
    /// Its start (Unix ms).
    pub start_ms: u64,
    /// Its end (Unix ms).
    pub end_ms: u64,
    /// When the fault reached users (the canary's first weight).
    pub fault_ms: Option<u64>,
    /// When the pipeline decided to roll back.
    pub detect_ms: Option<u64>,
    /// When traffic was fully back on stable.
    pub rolled_back_ms: Option<u64>,
    /// When the canary was promoted.
    pub promoted_ms: Option<u64>,
    /// Share of answers each side served (percent).
    pub traffic: Vec<Series>,
    /// Error ratio of each side's answers (percent).
    pub errors: Vec<Series>,
    /// Mean answer latency of each side (ms).
    pub latency: Vec<Series>,
    /// What the two sides are called in the legend (default stable and
    /// canary; a flag's cohorts are flag off and flag on).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub legend: Option<(String, String)>,
}

/// A scenario's result (`--json`).
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioResult {
    /// The scenario.
    pub name: String,
    /// `rolled_back`, `promoted`, `missed` or `error`.
    pub outcome: String,
    /// From the fault reaching users to the rollback decision.
    pub detect_seconds: Option<f64>,
    /// From the rollback decision to all traffic on stable.
    pub rollback_seconds: Option<f64>,
    /// Answers users asked for through HAProxy during the incident.
    pub requests: u64,
    /// Of those, how many failed (5xx or no answer).
    pub failed_requests: u64,
    /// `failed_requests / requests`.
    pub failed_share: f64,
    /// Whether stable answered every readiness probe during the incident.
    pub stable_available: bool,
    /// Why it ended as it did (the controller's reason, or the error).
    pub reason: String,
    /// The detection target, seconds.
    pub detect_target_seconds: Option<u64>,
    /// What must notice it.
    pub noticed_by: String,
    /// Whether every target held (detection time, at most 5 % failed,
    /// stable available, the expected outcome).
    pub passed: bool,
    /// The judge's report at the failing analysis (or the last one).
    pub judge: Value,
    /// The failing analysis's metrics (each with its phase and value).
    pub analysis: Value,
    /// The picture's data.
    pub timeline: Timeline,
}

/// HAProxy's frontend counters: answers and 5xx answers.
fn frontend_counters(env: &super::Environment) -> Option<(u64, u64)> {
    let csv = env.router().command("show stat -1 1 -1").ok()?;
    let header = csv.lines().next()?.trim_start_matches("# ");
    let cols: Vec<&str> = header.split(',').collect();
    let at = |name: &str| cols.iter().position(|c| *c == name);
    let (req, e5xx, px, sv) = (
        at("req_tot")?,
        at("hrsp_5xx")?,
        at("pxname")?,
        at("svname")?,
    );
    csv.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split(',').collect();
        (f.get(px) == Some(&"fe") && f.get(sv) == Some(&"FRONTEND")).then(|| {
            (
                f.get(req).and_then(|v| v.parse().ok()).unwrap_or(0),
                f.get(e5xx).and_then(|v| v.parse().ok()).unwrap_or(0),
            )
        })
    })
}

/// A range query's series by `role`, from `start_ms` to now, as seconds
/// since `start_ms` (through the providers' Prometheus client).
fn range(prometheus: &str, query: &str, start_ms: u64) -> Vec<Series> {
    let lookback = Duration::from_millis(crate::ledger::now_ms().saturating_sub(start_ms));
    let client = crate::provider::Prometheus::new(prometheus, Duration::from_secs(5));
    let Ok(series) = client.query_range(query, lookback, Duration::from_secs(1)) else {
        return Vec::new();
    };
    series
        .into_iter()
        .map(|s| Series {
            role: s
                .labels
                .get("role")
                .and_then(Value::as_str)
                .unwrap_or("all")
                .to_owned(),
            points: s
                .points
                .into_iter()
                .filter(|(_, y)| y.is_finite())
                .map(|(t, y)| ((t * 1000.0 - start_ms as f64) / 1000.0, y))
                .collect(),
        })
        .collect()
}

/// Runs `tick` on its own thread every `period` (less the tick's own time)
/// until [`finish`](Self::finish), which answers the state it kept.
struct Poller<T> {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<T>,
}

impl<T: Send + 'static> Poller<T> {
    fn start(
        period: Duration,
        mut state: T,
        mut tick: impl FnMut(&mut T) + Send + 'static,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let t = Instant::now();
                    tick(&mut state);
                    std::thread::sleep(period.saturating_sub(t.elapsed()));
                }
                state
            })
        };
        Self { stop, thread }
    }

    /// Stops polling; answers the state, or `None` when a tick panicked.
    fn finish(self) -> Option<T> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().ok()
    }
}

/// Stable's readiness, probed every 200 ms on its own thread through an
/// incident. Once the canary is promoted the old stable retires by design
/// (it drains and stops), and its probes stop counting.
struct StableProbe {
    retired: Arc<AtomicBool>,
    /// Counts the probes stable failed before it retired.
    poller: Poller<u64>,
}

impl StableProbe {
    fn start(url: String) -> Self {
        let retired = Arc::new(AtomicBool::new(false));
        let poller = {
            let retired = Arc::clone(&retired);
            Poller::start(Duration::from_millis(200), 0, move |misses: &mut u64| {
                let up = get(&url, Duration::from_secs(1)).is_ok_and(|(s, _)| s == 200);
                if !up && !retired.load(Ordering::SeqCst) {
                    *misses += 1;
                }
            })
        };
        Self { retired, poller }
    }

    /// The stable being probed is retiring by design.
    fn retire(&self) {
        self.retired.store(true, Ordering::SeqCst);
    }

    /// Stops probing; answers the probes stable failed before it retired
    /// (all of them, counted as failed, if the probe thread died).
    fn finish(self) -> u64 {
        self.poller.finish().unwrap_or(u64::MAX)
    }
}

/// What became of the canary (`rolled_back`, `promoted`, `missed` or
/// `error`) and why. A faulty canary left waiting or paused was missed,
/// and is taken away here.
fn classify(
    outcome: &Result<CanaryOutcome, ReleaseError>,
    inject_error: Option<String>,
    sc: &Scenario,
    env: &super::Environment,
    ws: &Workspace,
    opts: &DeployOptions,
) -> (&'static str, String) {
    let (kind, reason) = match outcome {
        Ok(CanaryOutcome::RolledBack(s)) => ("rolled_back", s.reason.clone().unwrap_or_default()),
        Ok(CanaryOutcome::Promoted(s)) => ("promoted", s.reason.clone().unwrap_or_default()),
        Ok(CanaryOutcome::AwaitingApproval(s) | CanaryOutcome::Paused(s)) => {
            // A faulty canary that got this far was missed; take it away.
            let _ = env.rollback(
                ws.artifacts(),
                None,
                "rehearsal cleanup: the fault was missed",
                opts,
            );
            (
                "missed",
                s.reason
                    .clone()
                    .unwrap_or_else(|| format!("{:?} at {}%", s.phase, s.weight)),
            )
        }
        Err(e) => ("error", e.to_string()),
    };
    let (kind, reason) = match inject_error {
        Some(e) => ("error", e),
        None => (kind, reason),
    };
    let kind = match (kind, sc.detect_target_s) {
        ("promoted", Some(_)) => "missed",
        (k, _) => k,
    };
    (kind, reason)
}

/// Runs one scenario in `ws` (whose production is replaced by a fresh
/// one): `stable` serves, `canary` is the build started with the fault.
///
/// # Errors
///
/// Only when the environment cannot be set up at all; a scenario that
/// goes wrong later is a result with outcome `error`.
pub fn run_scenario(
    ws: &Workspace,
    stable: &Artifact,
    canary: &Artifact,
    sc: &Scenario,
    opts: &DeployOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<ScenarioResult, ReleaseError> {
    if sc.name == "flag_regression" {
        return run_flag_scenario(ws, canary, sc, opts, progress);
    }
    let (env, _) = fresh_production(ws)?;
    progress(&format!(
        "{}: production with stable {}",
        sc.name, stable.manifest.version
    ));
    env.bootstrap_production(stable, &stable.binary, opts, "rehearsal")?;
    let stable_addr = env
        .topology()
        .stable
        .and_then(|s| s.addr)
        .unwrap_or_default();
    // Stable's readiness, probed every 200 ms through the incident.
    let probe = StableProbe::start(format!("http://{stable_addr}/readyz"));
    let before = frontend_counters(&env).unwrap_or((0, 0));
    let started_ms = crate::ledger::now_ms();
    let mut canary_opts = opts.clone();
    canary_opts.serve_args.clear();
    let token = token();
    canary_opts.admin_token = Some(token.clone());
    // The fault goes in through the canary's admin API the moment it first
    // carries traffic: it breaks in production, under load, as real
    // regressions do, and its start is known to the millisecond.
    let faults = faults_doc(sc);
    progress(&format!(
        "{}: canary {}; at its first traffic: {}",
        sc.name,
        canary.manifest.version,
        if sc.faults.is_empty() {
            "no fault".to_owned()
        } else {
            sc.faults.join(", ")
        }
    ));
    let mut fault_ms: Option<u64> = None;
    let mut inject_error: Option<String> = None;
    let mut last_line = String::new();
    let mut on_state = |s: &crate::ledger::ReleaseState| {
        if matches!(s.phase, ReleasePhase::Promoting | ReleasePhase::Succeeded) {
            probe.retire();
        }
        if fault_ms.is_none() && s.weight > 0 && !s.phase.is_terminal() {
            fault_ms = Some(crate::ledger::now_ms());
            if !sc.faults.is_empty() {
                let addr = env
                    .topology()
                    .canary
                    .and_then(|c| c.addr)
                    .unwrap_or_default();
                match inject(&addr, &faults, &token) {
                    Ok(()) => progress(&format!("{}: fault injected at {}%", sc.name, s.weight)),
                    Err(e) => inject_error = Some(e),
                }
            }
        }
        let line = format!("{}: {:?} at {}%", sc.name, s.phase, s.weight);
        if line != last_line {
            progress(&line);
            last_line = line;
        }
    };
    let outcome = env.deploy_canary(canary, &canary.binary, &canary_opts, &mut on_state);
    let outcome = match outcome {
        Ok(CanaryOutcome::AwaitingApproval(_)) if sc.detect_target_s.is_none() => {
            env.approve("rehearsal", &canary_opts, &mut on_state)
        }
        other => other,
    };
    let after = frontend_counters(&env).unwrap_or(before);
    // A few seconds of the aftermath for the picture (traffic settling on
    // stable), with stable still probed.
    let settle = Instant::now() + Duration::from_secs(6);
    while Instant::now() < settle {
        std::thread::sleep(Duration::from_millis(100));
    }
    let stable_available = probe.finish() == 0;
    let end_ms = crate::ledger::now_ms();
    let (kind, reason) = classify(&outcome, inject_error, sc, &env, ws, opts);
    // The incident's moments from the ledger.
    let m = Moments::of(
        &env.ledger().entries().unwrap_or_default(),
        "rag-",
        fault_ms,
    );
    let analysis = m.analysis["metrics"].clone();
    let judge = analysis
        .as_array()
        .into_iter()
        .flatten()
        .find(|x| x["name"] == "judge")
        .map(|x| x["value"].clone())
        .unwrap_or(Value::Null);
    let detect_seconds = secs(m.fault_ms, m.detect_ms);
    let rollback_seconds = secs(m.detect_ms, m.rolled_back_ms);
    let requests = after.0.saturating_sub(before.0);
    let failed_requests = after.1.saturating_sub(before.1);
    let failed_share = if requests > 0 {
        failed_requests as f64 / requests as f64
    } else {
        0.0
    };
    // The picture, from Prometheus, before production goes away.
    let prom = env.urls(&env.topology()).2.unwrap_or_default();
    let timeline = prometheus_timeline(&prom, started_ms.saturating_sub(2_000), end_ms, &m);
    let within = match (sc.detect_target_s, detect_seconds) {
        (Some(t), Some(d)) => d <= t as f64,
        (None, _) => true,
        _ => false,
    };
    let expected = if sc.detect_target_s.is_some() {
        "rolled_back"
    } else {
        "promoted"
    };
    let passed = kind == expected && within && failed_share <= 0.05 && stable_available;
    ws.down(Duration::from_secs(5))?;
    Ok(ScenarioResult {
        name: sc.name.to_owned(),
        outcome: kind.to_owned(),
        detect_seconds,
        rollback_seconds,
        requests,
        failed_requests,
        failed_share,
        stable_available,
        reason,
        detect_target_seconds: sc.detect_target_s,
        noticed_by: sc.noticed_by.to_owned(),
        passed,
        judge,
        analysis,
        timeline,
    })
}

/// A random admin token for the services a rehearsal starts.
fn token() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..32)
        .map(|_| format!("{:x}", rng.random_range(0..16u8)))
        .collect()
}

/// The moments of an incident, from a release ledger.
#[derive(Debug, Default)]
struct Moments {
    fault_ms: Option<u64>,
    detect_ms: Option<u64>,
    rolled_back_ms: Option<u64>,
    promoted_ms: Option<u64>,
    /// The failing analysis (or the last one): its `detail.analysis`.
    analysis: Value,
}

impl Moments {
    /// The moments of the last release whose id starts with `prefix`; the
    /// fault's start is `fault_ms`, else the release's first traffic.
    fn of(entries: &[crate::ledger::Entry], prefix: &str, fault_ms: Option<u64>) -> Self {
        let release = entries
            .iter()
            .rev()
            .find(|e| e.kind == EntryKind::Start && e.release.starts_with(prefix))
            .map(|e| e.release.clone());
        let mine: Vec<_> = entries
            .iter()
            .filter(|e| Some(&e.release) == release.as_ref())
            .collect();
        let at = |p: ReleasePhase| mine.iter().find(|e| e.phase == p).map(|e| e.time_ms);
        let failing = mine
            .iter()
            .rev()
            .find(|e| e.kind == EntryKind::Analysis && e.detail["outcome"] == "fail")
            .or_else(|| mine.iter().rev().find(|e| e.kind == EntryKind::Analysis));
        Self {
            fault_ms: fault_ms.or_else(|| {
                mine.iter()
                    .find(|e| e.kind == EntryKind::Weight && e.weight > 0)
                    .map(|e| e.time_ms)
            }),
            detect_ms: at(ReleasePhase::RollingBack),
            rolled_back_ms: at(ReleasePhase::RolledBack),
            promoted_ms: at(ReleasePhase::Succeeded),
            analysis: failing
                .map(|e| e.detail["analysis"].clone())
                .unwrap_or(Value::Null),
        }
    }

    fn timeline(&self, start_ms: u64, end_ms: u64) -> Timeline {
        Timeline {
            start_ms,
            end_ms,
            fault_ms: self.fault_ms,
            detect_ms: self.detect_ms,
            rolled_back_ms: self.rolled_back_ms,
            promoted_ms: self.promoted_ms,
            ..Timeline::default()
        }
    }
}

/// Seconds from `a` to `b`, when both happened in that order.
fn secs(a: Option<u64>, b: Option<u64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b >= a => Some((b - a) as f64 / 1000.0),
        _ => None,
    }
}

/// Traffic share, error ratio and mean latency of stable and canary from
/// Prometheus, second by second.
fn prometheus_timeline(prom: &str, from: u64, end_ms: u64, m: &Moments) -> Timeline {
    let q = |query: &str| range(prom, query, from);
    let route = "http_route=\"/v1/answer\"";
    Timeline {
        traffic: q(&format!(
            "100 * sum by (role) (rate(http_server_requests_total{{{route}}}[3s])) / scalar(sum(rate(http_server_requests_total{{{route}}}[3s])))"
        )),
        errors: q(&format!(
            "100 * (sum by (role) (rate(http_server_requests_total{{{route},status_class=\"5xx\"}}[3s])) or (0 * sum by (role) (rate(http_server_requests_total{{{route}}}[3s])))) / sum by (role) (rate(http_server_requests_total{{{route}}}[3s]))"
        )),
        latency: q(&format!(
            "1000 * sum by (role) (rate(http_server_request_duration_seconds_sum{{{route}}}[3s])) / sum by (role) (rate(http_server_request_duration_seconds_count{{{route}}}[3s]))"
        )),
        ..m.timeline(from, end_ms)
    }
}

/// Traffic share, error ratio and mean latency of the flag-off and flag-on
/// cohorts, from `/metrics` read once a second.
fn cohort_timeline(
    points: &[(u64, [crate::guard::Totals; 2])],
    from: u64,
    end_ms: u64,
    m: &Moments,
) -> Timeline {
    let d = |a: f64, b: f64| (a - b).max(0.0);
    let n = |t: &crate::guard::Totals| t.ok + t.failed;
    let mut timeline = Timeline {
        legend: Some(("flag off".into(), "flag on".into())),
        ..m.timeline(from, end_ms)
    };
    for (i, role) in [(0usize, "stable"), (1, "canary")] {
        let (mut share, mut errors, mut latency) = (Vec::new(), Vec::new(), Vec::new());
        for w in points.windows(2) {
            let ((_, a), (t1, b)) = (&w[0], &w[1]);
            let x = (*t1 as f64 - from as f64) / 1000.0;
            let total = d(n(&b[0]) + n(&b[1]), n(&a[0]) + n(&a[1]));
            let mine = d(n(&b[i]), n(&a[i]));
            if total > 0.0 {
                share.push((x, 100.0 * mine / total));
            }
            if mine > 0.0 {
                errors.push((x, 100.0 * d(b[i].failed, a[i].failed) / mine));
                let c = d(b[i].latency.1, a[i].latency.1);
                if c > 0.0 {
                    latency.push((x, 1000.0 * d(b[i].latency.0, a[i].latency.0) / c));
                }
            }
        }
        let series = |points| Series {
            role: role.into(),
            points,
        };
        timeline.traffic.push(series(share));
        timeline.errors.push(series(errors));
        timeline.latency.push(series(latency));
    }
    timeline
}

/// Stops everything in `ws` and answers a production environment with
/// nothing in it (and its directory).
fn fresh_production(
    ws: &Workspace,
) -> Result<(super::Environment, std::path::PathBuf), ReleaseError> {
    ws.down(Duration::from_secs(5))?;
    let dir = ws.root().join("envs").join("production");
    if dir.exists() {
        std::fs::remove_dir_all(&dir)
            .map_err(|e| ReleaseError::io(format!("cannot clear {}", dir.display()), e))?;
    }
    Ok((ws.env("production")?, dir))
}

/// Sets `faults` on the service at `addr` through its admin API.
fn inject(addr: &str, faults: &Value, token: &str) -> Result<(), String> {
    match super::infra::post_json(
        &format!("http://{addr}/admin/faults"),
        faults,
        Some(token),
        Duration::from_secs(2),
    ) {
        Ok((200, _)) => Ok(()),
        Ok((st, b)) => Err(format!("the service refused the fault ({st}): {b}")),
        Err(e) => Err(format!("cannot inject the fault: {e}")),
    }
}

/// The scenario's faults as the admin API's JSON.
fn faults_doc(sc: &Scenario) -> Value {
    let mut doc = serde_json::Map::new();
    for f in sc.faults {
        let (k, v) = f.split_once('=').unwrap_or((f, "true"));
        doc.insert(k.to_owned(), serde_json::from_str(v).unwrap_or(Value::Null));
    }
    Value::Object(doc)
}

/// Steady load on `addr`'s answers from the build's own load generator,
/// supervised with the environment (stopped by `down`).
fn start_traffic(
    dir: &std::path::Path,
    build: &Artifact,
    addr: &str,
    rps: u32,
) -> Result<(), ReleaseError> {
    super::process::start(
        dir,
        &build.binary,
        &super::process::ProcessSpec {
            name: "traffic".into(),
            role: "traffic".into(),
            argv: vec![
                build.binary.clone().into(),
                "load".into(),
                "--target".into(),
                format!("http://{addr}/v1/answer").into(),
                "--rps".into(),
                rps.max(1).to_string().into(),
                "--concurrency".into(),
                "16".into(),
                "--duration".into(),
                "24h".into(),
            ],
            restarts: 0,
            addr: None,
            version: None,
            env: Vec::new(),
        },
    )?;
    Ok(())
}

/// The flag's per-cohort totals from `/metrics`, sampled every second on
/// its own thread, for the picture.
struct CohortSampler(Poller<Vec<(u64, [crate::guard::Totals; 2])>>);

impl CohortSampler {
    fn start(url: String, flag: &'static str) -> Self {
        Self(Poller::start(
            Duration::from_secs(1),
            Vec::new(),
            move |points| {
                if let Some(tot) = get(&url, Duration::from_secs(2))
                    .ok()
                    .filter(|(s, _)| *s == 200)
                    .map(|(_, p)| crate::guard::read_totals(&p, flag))
                {
                    points.push((crate::ledger::now_ms(), tot));
                }
            },
        ))
    }

    /// Stops sampling; answers the samples (time in ms, off and on totals).
    fn finish(self) -> Vec<(u64, [crate::guard::Totals; 2])> {
        self.0.finish().unwrap_or_default()
    }
}

/// `flag_regression`: one service watching a flags file, under steady
/// load, a guarded rollout of `new_chunking_strategy` (5 → 25 → 50 →
/// 100), and a fault on the flag-on path only from the rollout's first
/// step. The guard must kill the flag; the flag-off path must not fail.
fn run_flag_scenario(
    ws: &Workspace,
    build: &Artifact,
    sc: &Scenario,
    opts: &DeployOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<ScenarioResult, ReleaseError> {
    use crate::guard::{GuardOptions, read_totals};
    const FLAG: &str = "new_chunking_strategy";
    let (env, dir) = fresh_production(ws)?;
    let flags = dir.join("flags.yaml");
    super::process::write_atomic(
        &flags,
        format!("flags:\n  - id: {FLAG}\n    description: semantic chunking (under a guard)\n    rollout_percentage: 0\n").as_bytes(),
    )?;
    let token = token();
    let mut service_opts = opts.clone();
    service_opts.serve_args = vec!["--flags".into(), flags.display().to_string()];
    service_opts.admin_token = Some(token.clone());
    progress(&format!(
        "{}: one service watching {}",
        sc.name,
        flags.display()
    ));
    let rec = env.start_service(build, "service", &service_opts)?;
    let addr = rec.addr.clone().unwrap_or_default();
    start_traffic(&dir, build, &addr, opts.traffic_rps)?;
    let metrics_url = format!("http://{addr}/metrics");
    let read = |url: &str| -> Option<[crate::guard::Totals; 2]> {
        let (st, page) = get(url, Duration::from_secs(2)).ok()?;
        (st == 200).then(|| read_totals(&page, FLAG))
    };
    // Per-second cohort samples for the picture.
    let sampler = CohortSampler::start(metrics_url.clone(), FLAG);
    let before = read(&metrics_url).unwrap_or_default();
    let started_ms = crate::ledger::now_ms();
    let mut g = GuardOptions::new(FLAG, flags.clone(), &metrics_url, dir.join("guard"));
    g.interval = opts.interval;
    g.bake = (opts.interval * 5).max(Duration::from_secs(5));
    g.min_requests = 10;
    let faults = faults_doc(sc);
    let mut fault_ms = None;
    let mut inject_error = None;
    let mut last = String::new();
    let outcome = crate::guard::run(&g, &|| false, &mut |s| {
        if fault_ms.is_none() && s.weight > 0 && !s.phase.is_terminal() {
            fault_ms = Some(crate::ledger::now_ms());
            match inject(&addr, &faults, &token) {
                Ok(()) => progress(&format!(
                    "{}: fault injected on the flag-on path at {}%",
                    sc.name, s.weight
                )),
                Err(e) => inject_error = Some(e),
            }
        }
        let line = format!("{}: flag {:?} at {}%", sc.name, s.phase, s.weight);
        if line != last {
            progress(&line);
            last = line;
        }
    });
    let after = read(&metrics_url).unwrap_or(before);
    let settle = Instant::now() + Duration::from_secs(4);
    while Instant::now() < settle {
        std::thread::sleep(Duration::from_millis(100));
    }
    let points = sampler.finish();
    let end_ms = crate::ledger::now_ms();
    let killed = flightdeck_flags::KillStore::beside(&flags)
        .load()
        .map(|k| k.contains_key(FLAG))
        .unwrap_or(false);
    let (kind, reason) = match (&outcome, inject_error) {
        (_, Some(e)) => ("error", e),
        (Ok(s), None) if s.phase == ReleasePhase::RolledBack && killed => {
            ("rolled_back", s.reason.clone().unwrap_or_default())
        }
        (Ok(s), None) => (
            "missed",
            format!("{:?} at {}%, killed: {killed}", s.phase, s.weight),
        ),
        (Err(e), None) => ("error", e.to_string()),
    };
    let entries = Ledger::open(dir.join("guard"))
        .and_then(|l| l.entries())
        .unwrap_or_default();
    let m = Moments::of(&entries, "guard-", fault_ms);
    let analysis = m.analysis.clone();
    let judge = analysis["judge"].clone();
    let d = |a: f64, b: f64| (a - b).max(0.0);
    let n = |t: &crate::guard::Totals| t.ok + t.failed;
    let requests = d(n(&after[0]) + n(&after[1]), n(&before[0]) + n(&before[1]));
    let failed_on = d(after[1].failed, before[1].failed);
    let failed_off = d(after[0].failed, before[0].failed);
    let detect_seconds = secs(m.fault_ms, m.detect_ms);
    let rollback_seconds = secs(m.detect_ms, m.rolled_back_ms);
    let timeline = cohort_timeline(&points, started_ms.saturating_sub(2_000), end_ms, &m);
    let failed_requests = (failed_on + failed_off) as u64;
    let failed_share = if requests > 0.0 {
        (failed_on + failed_off) / requests
    } else {
        0.0
    };
    let within = detect_seconds.is_some_and(|t| t <= sc.detect_target_s.unwrap_or(0) as f64);
    let untouched = failed_off == 0.0;
    ws.down(Duration::from_secs(5))?;
    Ok(ScenarioResult {
        name: sc.name.to_owned(),
        outcome: kind.to_owned(),
        detect_seconds,
        rollback_seconds,
        requests: requests as u64,
        failed_requests,
        failed_share,
        stable_available: untouched,
        reason: format!(
            "{reason} (flag killed: {killed}; flag-on answers failed: {failed_on}, flag-off: {failed_off})"
        ),
        detect_target_seconds: sc.detect_target_s,
        noticed_by: sc.noticed_by.to_owned(),
        passed: kind == "rolled_back" && within && failed_share <= 0.05 && untouched && killed,
        judge,
        analysis,
        timeline,
    })
}

/// Escapes text for SVG.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The timeline as SVG: traffic share, error ratio and latency of stable
/// and canary over the incident, with the fault, detection, rollback (or
/// promotion) moments marked.
pub fn timeline_svg(title: &str, t: &Timeline) -> String {
    const W: f64 = 900.0;
    const LEFT: f64 = 70.0;
    const RIGHT: f64 = 20.0;
    const PANEL: f64 = 150.0;
    const GAP: f64 = 40.0;
    const TOP: f64 = 50.0;
    let span = ((t.end_ms.saturating_sub(t.start_ms)) as f64 / 1000.0).max(1.0);
    let x = |s: f64| LEFT + (s / span).clamp(0.0, 1.0) * (W - LEFT - RIGHT);
    let h = TOP + 3.0 * (PANEL + GAP) + 20.0;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{h}\" viewBox=\"0 0 {W} {h}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n<text x=\"{LEFT}\" y=\"24\" font-size=\"16\" font-weight=\"bold\">{}</text>\n",
        esc(title)
    );
    let colour = |role: &str| {
        if role == "canary" {
            "#e8590c"
        } else {
            "#1c7ed6"
        }
    };
    let panels: [(&str, &Vec<Series>, &str); 3] = [
        ("traffic share (%)", &t.traffic, "%"),
        ("error ratio (%)", &t.errors, "%"),
        ("mean latency (ms)", &t.latency, "ms"),
    ];
    for (i, (name, series, unit)) in panels.iter().enumerate() {
        let top = TOP + i as f64 * (PANEL + GAP);
        out.push_str(&format!("<g class=\"panel p{i}\">\n"));
        let max = series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .fold(0.0_f64, f64::max);
        let max = if name.starts_with("traffic") {
            100.0
        } else {
            (max * 1.1).max(1.0)
        };
        let y = |v: f64| top + PANEL - (v / max).clamp(0.0, 1.0) * PANEL;
        out.push_str(&format!(
            "<text x=\"{LEFT}\" y=\"{}\" font-weight=\"bold\">{}</text>\n<rect x=\"{LEFT}\" y=\"{top}\" width=\"{}\" height=\"{PANEL}\" fill=\"#f8f9fa\" stroke=\"#ced4da\"/>\n<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{:.0}{unit}</text>\n<text x=\"{}\" y=\"{}\" text-anchor=\"end\">0</text>\n",
            top - 6.0,
            esc(name),
            W - LEFT - RIGHT,
            LEFT - 6.0,
            top + 10.0,
            max,
            LEFT - 6.0,
            top + PANEL
        ));
        for s in series.iter() {
            if s.points.is_empty() {
                continue;
            }
            let d: Vec<String> = s
                .points
                .iter()
                .map(|(sx, v)| format!("{:.1},{:.1}", x(*sx), y(*v)))
                .collect();
            out.push_str(&format!(
                "<polyline class=\"series {}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\" points=\"{}\"/>\n",
                esc(&s.role),
                colour(&s.role),
                d.join(" ")
            ));
        }
        // The moments, on every panel.
        let marks = [
            (t.fault_ms, "#c92a2a", "fault reaches users", "fault"),
            (t.detect_ms, "#862e9c", "rollback decided", "detect"),
            (
                t.rolled_back_ms,
                "#2b8a3e",
                "traffic back on stable",
                "rollback",
            ),
            (t.promoted_ms, "#2b8a3e", "promoted", "promote"),
        ];
        for (ms, c, label, kind) in marks {
            if let Some(ms) = ms {
                let mx = x((ms.saturating_sub(t.start_ms)) as f64 / 1000.0);
                out.push_str(&format!(
                    "<line class=\"mark {kind}\" x1=\"{mx:.1}\" y1=\"{top}\" x2=\"{mx:.1}\" y2=\"{}\" stroke=\"{c}\" stroke-dasharray=\"5,3\" stroke-width=\"2\"/>\n",
                    top + PANEL
                ));
                if i == 0 {
                    // Labels near the right edge go to the line's left.
                    let (lx, anchor) = if mx > W - 180.0 {
                        (mx - 3.0, "end")
                    } else {
                        (mx + 3.0, "start")
                    };
                    out.push_str(&format!(
                        "<text x=\"{lx:.1}\" y=\"{:.1}\" fill=\"{c}\" font-size=\"11\" text-anchor=\"{anchor}\">{label}</text>\n",
                        top + 12.0 + 13.0 * marks.iter().position(|m| m.2 == label).unwrap_or(0) as f64
                    ));
                }
            }
        }
        out.push_str("</g>\n");
    }
    let axis = TOP + 3.0 * (PANEL + GAP) - GAP + 16.0;
    let (a, b) = t
        .legend
        .clone()
        .unwrap_or_else(|| ("stable".into(), "canary".into()));
    out.push_str(&format!(
        "<text x=\"{LEFT}\" y=\"{axis}\">0 s</text><text x=\"{}\" y=\"{axis}\" text-anchor=\"end\">{span:.0} s</text>\n<text x=\"{}\" y=\"{axis}\" fill=\"#1c7ed6\">— {}</text><text x=\"{}\" y=\"{axis}\" fill=\"#e8590c\">— {}</text>\n</svg>\n",
        W - RIGHT,
        W / 2.0 - 80.0,
        esc(&a),
        W / 2.0 + 10.0,
        esc(&b)
    ));
    out
}

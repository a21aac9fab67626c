//! Canary releases for real: two `flightdeck serve` processes behind a real
//! HAProxy (weights through its runtime API), scraped by a real Prometheus,
//! driven by `flightdeck load`, judged and moved by `flightdeck release run`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use flightdeck_obs_otel::testing::free_port;
use serde_json::Value;

use crate::prometheus::{KillOnDrop, http_get, poll, start_prometheus};
use crate::service::{Server, request};
use crate::{flightdeck, tool};

/// HAProxy on a free loopback port in front of `stable` and `canary`, with
/// its admin socket in `dir`; stopped when dropped.
pub(crate) struct Haproxy {
    _child: KillOnDrop,
    pub(crate) addr: SocketAddr,
    pub(crate) socket: PathBuf,
}

pub(crate) fn start_haproxy(dir: &Path, stable: SocketAddr, canary: SocketAddr) -> Haproxy {
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let socket = dir.join("haproxy-admin.sock");
    let config = format!(
        "global\n  stats socket {} mode 600 level admin\n  maxconn 2000\n\
defaults\n  mode http\n  timeout connect 2s\n  timeout client 30s\n  timeout server 30s\n\
frontend fe\n  bind {addr}\n  default_backend rag\n\
backend rag\n  balance roundrobin\n  server stable {stable} weight 100\n  server canary {canary} weight 0\n",
        socket.display()
    );
    let file = dir.join("haproxy.cfg");
    std::fs::write(&file, config).unwrap();
    let child = KillOnDrop(
        tool("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    poll(Duration::from_secs(20), || {
        (socket.exists() && http_get(addr, "/healthz").is_some()).then_some(())
    })
    .expect("haproxy answers through its frontend");
    Haproxy {
        _child: child,
        addr,
        socket,
    }
}

fn haproxy_cmd(socket: &Path, cmd: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(format!("{cmd}\n").as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// Which build answered each of `n` requests through HAProxy (fresh
/// connection each): the share the canary got, in percent.
fn canary_share(proxy: SocketAddr, n: usize, canary_version: &str) -> f64 {
    let mut canary = 0;
    for _ in 0..n {
        let (status, _, body) = request(proxy, "GET", "/api/dashboard", &[], "");
        assert_eq!(status, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        if v["version"] == canary_version {
            canary += 1;
        }
    }
    100.0 * canary as f64 / n as f64
}

/// `flightdeck release ARGS --spec SPEC`.
fn release(args: &[&str], spec: &Path) -> std::process::Output {
    flightdeck()
        .arg("release")
        .args(args)
        .arg("--spec")
        .arg(spec)
        .output()
        .unwrap()
}

/// [`release`], which must exit 0.
fn release_ok(args: &[&str], spec: &Path) {
    let o = release(args, spec);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// `flightdeck release status --json --state DIR`.
fn status(state: &Path) -> Value {
    let o = flightdeck()
        .args(["release", "status", "--json", "--state"])
        .arg(state)
        .output()
        .unwrap();
    serde_json::from_slice(&o.stdout).unwrap()
}

fn spec(dir: &Path, socket: &Path, extra: &str) -> PathBuf {
    let path = dir.join("canary.yaml");
    std::fs::write(
        &path,
        format!(
            "name: rag\nstableVersion: 1.0.0\ncanaryVersion: 1.1.0\nstateDir: state\n\
router:\n  haproxy: {{socket: {}, backend: rag, stable: stable, canary: canary}}\n{extra}",
            socket.display()
        ),
    )
    .unwrap();
    path
}

#[test]
fn haproxy_weights_move_through_the_runtime_api_and_abort_is_immediate() {
    let dir = tempfile::tempdir().unwrap();
    let stable = Server::start(&["--build-version", "1.0.0"]);
    let canary = Server::start(&["--build-version", "1.1.0"]);
    let proxy = start_haproxy(dir.path(), stable.addr, canary.addr);
    // A spec whose analysis always passes: a command that exits 0.
    let spec = spec(
        dir.path(),
        &proxy.socket,
        "analysis:\n  interval: 1s\n  metrics:\n    - name: ok\n      provider: {command: {argv: [\"true\"]}}\n",
    );
    let pid_before = haproxy_cmd(&proxy.socket, "show info");
    let router =
        flightdeck::release::router::HaproxyRouter::new(&proxy.socket, "rag", "stable", "canary");
    use flightdeck::release::router::Router;
    for weight in [5u32, 25, 50] {
        router.set_weight(weight).unwrap();
        assert_eq!(router.weights().unwrap(), (100 - weight, weight));
        let share = canary_share(proxy.addr, 2000, "1.1.0");
        assert!(
            (share - f64::from(weight)).abs() <= 3.0,
            "weight {weight}: the canary got {share:.1} %"
        );
    }
    // No reload happened: the same HAProxy process answered throughout.
    let pid = |info: &str| {
        info.lines()
            .find(|l| l.starts_with("Pid:"))
            .map(str::to_owned)
    };
    assert_eq!(
        pid(&pid_before),
        pid(&haproxy_cmd(&proxy.socket, "show info"))
    );

    // A release promoted by its (trivially passing) analysis can be rolled
    // back within its window: traffic is all on stable at once.
    release_ok(&["run"], &spec);
    assert_eq!(router.weights().unwrap(), (0, 100));
    release_ok(&["rollback", "--actor", "test", "--reason", "drill"], &spec);
    assert_eq!(router.weights().unwrap(), (100, 0));
    assert_eq!(canary_share(proxy.addr, 200, "1.1.0"), 0.0);
    let state = dir.path().join("state");
    let s = status(&state);
    assert_eq!(s["phase"], "RolledBack");
    assert!(
        s["reason"]
            .as_str()
            .unwrap()
            .contains("rolled back after promotion by \"test\": drill"),
        "{s}"
    );

    // Abort a running release: a controller (the library) takes it to 50 %,
    // then `release abort` puts the canary at 0 at once.
    let manager = flightdeck::release::controller::CanaryManager::new(
        flightdeck::release::ledger::Ledger::open(&state).unwrap(),
        Box::new(router.clone()),
        flightdeck::release::progression::Progression {
            steps: flightdeck::release::progression::Steps::Explicit(vec![50, 100]),
            ..Default::default()
        },
    );
    manager.start("r2", "1.0.0", "1.1.0").unwrap();
    manager
        .tick(&mut |_| unreachable!("no analysis before the first step"))
        .unwrap();
    assert_eq!(router.weights().unwrap(), (50, 50));
    release_ok(&["abort", "--actor", "test", "--reason", "pager"], &spec);
    assert_eq!(router.weights().unwrap(), (100, 0));
    assert_eq!(canary_share(proxy.addr, 200, "1.1.0"), 0.0);
    assert_eq!(status(&state)["phase"], "RolledBack");
    // Aborting again is bad input: the release is over.
    assert_eq!(release(&["abort"], &spec).status.code(), Some(2));
    drop(canary);
    drop(stable);
}

/// Prometheus scraping both builds, labelled by role and version.
fn prometheus(dir: &Path, stable: SocketAddr, canary: SocketAddr) -> (KillOnDrop, SocketAddr) {
    start_prometheus(
        dir,
        &format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: rag\n    static_configs:\n      - targets: ['{stable}']\n        labels: {{role: stable}}\n      - targets: ['{canary}']\n        labels: {{role: canary}}\n"
        ),
    )
}

const KAYENTA: &str = r#"{
  "name": "rag-canary",
  "metrics": [
    {"name": "error_ratio", "groups": ["errors"],
     "query": {"type": "prometheus", "customInlineTemplate": "PromQL:(sum(rate(http_server_requests_total{http_route=\"/v1/answer\",status_class=\"5xx\",${scope}}[4s])) or vector(0)) / sum(rate(http_server_requests_total{http_route=\"/v1/answer\",${scope}}[4s]))"},
     "analysisConfigurations": {"canary": {"direction": "increase", "critical": true}}},
    {"name": "latency_mean", "groups": ["latency"],
     "query": {"type": "prometheus", "customInlineTemplate": "PromQL:sum(rate(http_server_request_duration_seconds_sum{http_route=\"/v1/answer\",${scope}}[4s])) / sum(rate(http_server_request_duration_seconds_count{http_route=\"/v1/answer\",${scope}}[4s]))"},
     "analysisConfigurations": {"canary": {"direction": "increase", "effectSize": {"allowedIncrease": 3.0}}}}
  ],
  "classifier": {"groupWeights": {"errors": 70, "latency": 30}, "scoreThresholds": {"pass": 95, "marginal": 75}}
}"#;

fn judged_spec(dir: &Path, socket: &Path, prom: SocketAddr) -> PathBuf {
    std::fs::write(dir.join("kayenta.json"), KAYENTA).unwrap();
    spec(
        dir,
        socket,
        &format!(
            "analysis:\n  interval: 4s\n  stepWeights: [5, 25, 100]\n  progressDeadline: 60s\n  judge:\n    prometheus: http://{prom}\n    config: kayenta.json\n    baseline: 'role=\"stable\"'\n    canary: 'role=\"canary\"'\n    lookback: 12s\n    step: 1s\n    minSamples: 8\n  sloBurn:\n    prometheus: http://{prom}\n    errorRatio: 'sum(rate(http_server_requests_total{{role=\"canary\",http_route=\"/v1/answer\",status_class=\"5xx\"}}[${{window}}])) / sum(rate(http_server_requests_total{{role=\"canary\",http_route=\"/v1/answer\"}}[${{window}}]))'\n    objective: 99.9\n    scale: 0.01\n    dryRun: true\n  metrics:\n    - name: canary-ready\n      successCondition: result == 200\n      provider: {{probe: {{url: 'http://CANARY/readyz'}}}}\n"
        ),
    )
}

fn load(proxy: SocketAddr, secs: u32) -> Child {
    flightdeck()
        .args([
            "load",
            "--rps",
            "100",
            "--concurrency",
            "16",
            "--json",
            "--target",
        ])
        .arg(format!("http://{proxy}/v1/answer"))
        .arg("--duration")
        .arg(format!("{secs}s"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn entries(state: &Path) -> Vec<Value> {
    let o = flightdeck()
        .args(["release", "history", "--json", "--state"])
        .arg(state)
        .output()
        .unwrap();
    String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Waits until Prometheus has scraped both targets, then until stable has
/// served traffic for a judge's lookback (the baseline needs history).
fn wait_for_scrapes(prom: SocketAddr) {
    let query = |q: &str| -> Option<f64> {
        let body = http_get(
            prom,
            &format!("/api/v1/query?query={}", crate::service::url_encode(q)),
        )?;
        let v: Value = serde_json::from_str(&body).ok()?;
        v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
    };
    poll(Duration::from_secs(60), || {
        (query("count(up == 1)")? == 2.0).then_some(())
    })
    .expect("Prometheus scrapes both builds");
}

fn wait_for_baseline(prom: SocketAddr) {
    let q = crate::service::url_encode(
        "count_over_time(http_server_requests_total{role=\"stable\",http_route=\"/v1/answer\"}[15s])",
    );
    poll(Duration::from_secs(60), || {
        let body = http_get(prom, &format!("/api/v1/query?query={q}"))?;
        let v: Value = serde_json::from_str(&body).ok()?;
        let n: f64 = v["data"]["result"][0]["value"][1].as_str()?.parse().ok()?;
        (n >= 10.0).then_some(())
    })
    .expect("stable has a baseline in Prometheus");
}

/// Local production: stable 1.0.0 and canary 1.1.0 (started with
/// `canary_args`) behind HAProxy, scraped by Prometheus, under
/// `flightdeck load` for `load_secs`, with a judged canary spec; stable has
/// a baseline in Prometheus when this returns.
struct Production {
    traffic: Child,
    prom: SocketAddr,
    spec: PathBuf,
    proxy: Haproxy,
    _prom: KillOnDrop,
    stable: Server,
    _canary: Server,
    dir: tempfile::TempDir,
}

impl Production {
    fn start(canary_args: &[&str], load_secs: u32) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let stable = Server::start(&["--build-version", "1.0.0"]);
        let mut args = vec!["--build-version", "1.1.0"];
        args.extend_from_slice(canary_args);
        let canary = Server::start(&args);
        let proxy = start_haproxy(dir.path(), stable.addr, canary.addr);
        let (prom_guard, prom) = prometheus(dir.path(), stable.addr, canary.addr);
        let spec = judged_spec(dir.path(), &proxy.socket, prom);
        let text = std::fs::read_to_string(&spec)
            .unwrap()
            .replace("CANARY", &canary.addr.to_string());
        std::fs::write(&spec, text).unwrap();
        wait_for_scrapes(prom);
        let traffic = load(proxy.addr, load_secs);
        wait_for_baseline(prom);
        Self {
            traffic,
            prom,
            spec,
            proxy,
            _prom: prom_guard,
            stable,
            _canary: canary,
            dir,
        }
    }
}

#[test]
fn a_healthy_canary_is_promoted_through_5_25_100_and_a_killed_controller_resumes() {
    let p = Production::start(&[], 90);
    let (dir, spec, proxy, mut traffic) = (&p.dir, &p.spec, &p.proxy, p.traffic);
    let state = dir.path().join("state");

    // Run the controller, kill -9 it once the canary is at 25 %, resume.
    let mut controller = flightdeck()
        .args(["release", "run", "--spec"])
        .arg(spec)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    poll(Duration::from_secs(90), || {
        entries(&state)
            .iter()
            .any(|e| e["kind"] == "weight" && e["weight"] == 25)
            .then_some(())
    })
    .expect("the canary reaches 25 %");
    controller.kill().unwrap();
    let _ = controller.wait();
    release_ok(&["run"], spec);
    let history = entries(&state);
    let weights: Vec<u64> = history
        .iter()
        .filter(|e| e["kind"] == "weight")
        .map(|e| e["weight"].as_u64().unwrap())
        .collect();
    assert_eq!(weights, [5, 25, 100], "{history:#?}");
    let phases: Vec<&str> = history
        .iter()
        .map(|e| e["phase"].as_str().unwrap())
        .collect();
    assert_eq!(
        phases.iter().filter(|p| **p == "Succeeded").count(),
        1,
        "promoted once: {phases:?}"
    );
    assert_eq!(history.iter().filter(|e| e["kind"] == "start").count(), 1);
    assert!(
        history
            .iter()
            .any(|e| e["detail"]["analysis"]["metrics"][1]["value"]["classification"] == "Pass"),
        "the judge's report is in the ledger"
    );
    let router =
        flightdeck::release::router::HaproxyRouter::new(&proxy.socket, "rag", "stable", "canary");
    assert_eq!(router.weights().unwrap(), (0, 100));
    // A healthy canary never burns its SLO; the burn was measured.
    let burns: Vec<&Value> = history
        .iter()
        .filter_map(|e| e["detail"]["analysis"]["metrics"].as_array())
        .flatten()
        .filter(|m| m["name"] == "slo-burn" && m["value"].is_object())
        .collect();
    assert!(
        !burns.is_empty() && burns.iter().all(|m| m["value"]["firing"] == false),
        "{burns:#?}"
    );
    let _ = traffic.kill();
    let _ = traffic.wait();
}

#[test]
fn a_canary_with_20_percent_errors_is_rolled_back_at_its_first_failed_analysis() {
    let p = Production::start(&["--fault", "error_rate=0.2"], 35);
    let (dir, spec, proxy, traffic, stable) = (&p.dir, &p.spec, &p.proxy, p.traffic, &p.stable);
    let o = release(&["run"], spec);
    let state = dir.path().join("state");
    let history = entries(&state);
    assert_eq!(
        o.status.code(),
        Some(3),
        "{}\n{history:#?}",
        String::from_utf8_lossy(&o.stderr)
    );
    let last = history.last().unwrap();
    assert_eq!(last["phase"], "RolledBack", "{history:#?}");
    let reason = last["reason"].as_str().unwrap();
    assert!(
        reason.contains("judge") && reason.contains("failureLimit"),
        "{reason}"
    );
    // Rolled back at its first failed analysis (the next entries are the
    // rollback itself), before it ever reached 100 %.
    let first_fail = history
        .iter()
        .position(|e| e["kind"] == "analysis" && e["detail"]["outcome"] == "fail")
        .expect("a failed analysis");
    let after: Vec<&str> = history[first_fail + 1..]
        .iter()
        .map(|e| e["phase"].as_str().unwrap())
        .collect();
    assert_eq!(after, ["RollingBack", "RolledBack"], "{history:#?}");
    assert_eq!(history[first_fail]["failed_checks"], 1);
    assert!(
        history
            .iter()
            .filter(|e| e["kind"] == "weight")
            .all(|e| e["weight"].as_u64().unwrap() < 100),
        "{history:#?}"
    );
    let judged = history
        .iter()
        .find(|e| e["detail"]["outcome"] == "fail")
        .unwrap();
    assert_eq!(
        judged["detail"]["analysis"]["metrics"][1]["value"]["classification"], "Fail",
        "{judged:#}"
    );
    let router =
        flightdeck::release::router::HaproxyRouter::new(&proxy.socket, "rag", "stable", "canary");
    assert_eq!(router.weights().unwrap(), (100, 0));
    // The SLO burn (a dry run here) saw the canary burn its budget.
    let burned = history.iter().any(|e| {
        e["detail"]["analysis"]["metrics"]
            .as_array()
            .is_some_and(|ms| {
                ms.iter()
                    .any(|m| m["name"] == "slo-burn" && m["value"]["firing"] == true)
            })
    });
    assert!(burned, "{history:#?}");
    // The judge's HTTP mode over the same Prometheus (what an Argo Rollouts
    // web metric calls) sees the same failure.
    let (mut judge, addr) = crate::release::spawn_judge(
        &p.dir.path().join("kayenta.json"),
        &[
            "--prometheus",
            &format!("http://{}", p.prom),
            "--lookback",
            "30s",
            "--step",
            "1s",
        ],
    );
    let (status, _, body) = request(
        addr,
        "GET",
        &format!(
            "/analyze?baseline={}&canary={}",
            crate::service::url_encode("role=\"stable\""),
            crate::service::url_encode("role=\"canary\"")
        ),
        &[],
        "",
    );
    let _ = judge.kill();
    let _ = judge.wait();
    assert_eq!(status, 200, "{body}");
    let analyzed: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(analyzed["classification"], "Fail", "{analyzed}");
    // Stable answered throughout: every failure came from the canary's
    // injected 500s, none from HAProxy (no 503: a server was always up).
    let out = traffic.wait_with_output().unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let by_status = report["status"].as_object().expect("status counts");
    assert!(
        by_status.keys().all(|k| k == "200" || k == "500"),
        "{report}"
    );
    let (_, _, metrics) = request(stable.addr, "GET", "/metrics", &[], "");
    let stable_5xx: f64 = metrics
        .lines()
        .filter(|l| {
            l.starts_with("http_server_requests_total{") && l.contains("status_class=\"5xx\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(stable_5xx, 0.0, "stable never failed: {metrics}");
    // The injected errors reached users only through the canary's share.
    let sent = report["sent"].as_f64().unwrap();
    let failed = report["errors"].as_f64().unwrap();
    assert!(
        sent > 1000.0 && failed / sent < 0.05,
        "{failed} of {sent} failed: {report}"
    );
}

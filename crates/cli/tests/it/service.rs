//! `flightdeck serve` end to end on a free loopback port: answers carry the
//! caller's correlation id, RED counts reach `/metrics`, faults need the
//! admin token and flip `/readyz`, and SIGTERM with 20 requests in flight
//! answers all 20 before exiting 0.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::flightdeck;

pub(crate) const TOKEN: &str = "test-admin-token-0123456789";

pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) addr: SocketAddr,
    /// Kept so the reader threads keep draining the server's output (a
    /// dropped receiver would stop them, and a full pipe would stall it).
    _lines: mpsc::Receiver<String>,
}

impl Server {
    pub(crate) fn start(extra: &[&str]) -> Self {
        let mut child = flightdeck()
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--time-scale",
                "0",
                "--admin-token",
                TOKEN,
            ])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("flightdeck serve starts");
        let (tx, lines) = mpsc::channel();
        for pipe in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        let addr = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = lines
                .recv_timeout(left)
                .expect("the server prints its address");
            if let Some(rest) = line.strip_prefix("listening on http://") {
                break rest.split_whitespace().next().unwrap().parse().unwrap();
            }
        };
        Self {
            child,
            addr,
            _lines: lines,
        }
    }

    fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (u16, String, String) {
        request(self.addr, method, path, headers, body)
    }

    pub(crate) fn stop(mut self) -> std::process::ExitStatus {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.child.wait().unwrap()
    }
}

/// One HTTP/1.1 request on a fresh connection: (status, head, body).
pub(crate) fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, String) {
    {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        if !body.is_empty() {
            req.push_str("Content-Type: application/json\r\n");
        }
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        req.push_str(body);
        s.write_all(req.as_bytes()).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        (status, head.to_owned(), body.to_owned())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn answers_metrics_faults_and_auth() {
    let server = Server::start(&[]);
    let (status, head, body) = server.request(
        "POST",
        "/v1/answer",
        &[
            ("x-correlation-id", "caller-42"),
            (
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
        ],
        r#"{"query": "what is a span?", "user_id": "u1"}"#,
    );
    assert_eq!(status, 200, "{head}\n{body}");
    assert!(
        head.to_ascii_lowercase()
            .contains("x-correlation-id: caller-42"),
        "{head}"
    );
    let a: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(a["correlation_id"], "caller-42");
    assert_eq!(
        a["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736",
        "the caller's trace continues"
    );
    // Without a (valid) traceparent the service starts its own trace.
    let (_, _, body) = server.request(
        "POST",
        "/v1/answer",
        &[("traceparent", "00-bogus")],
        r#"{"query": "q", "user_id": "u9"}"#,
    );
    let own: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(own["trace_id"].as_str().unwrap().len(), 32);
    assert_ne!(own["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(a["stages"].as_array().unwrap().len(), 6);
    for _ in 0..3 {
        assert_eq!(
            server
                .request(
                    "POST",
                    "/v1/answer",
                    &[],
                    r#"{"query": "q", "user_id": "u2"}"#
                )
                .0,
            200
        );
    }
    // Bad bodies are 400s naming the problem, and count as 4xx.
    let (status, _, body) = server.request(
        "POST",
        "/v1/answer",
        &[],
        r#"{"query": "", "user_id": "u"}"#,
    );
    assert_eq!(status, 400);
    assert!(body.contains("query must be 1 to 4096 bytes"), "{body}");
    let big = format!(r#"{{"query": "{}", "user_id": "u"}}"#, "x".repeat(70_000));
    assert!(matches!(
        server.request("POST", "/v1/answer", &[], &big).0,
        400 | 413
    ));
    let (_, _, metrics) = server.request("GET", "/metrics", &[], "");
    assert!(
        metrics.contains(
            r#"http_server_requests_total{http_route="/v1/answer",status_class="2xx"} 5"#
        ),
        "{metrics}"
    );
    assert!(metrics.contains(r#"status_class="4xx"}"#), "{metrics}");
    assert!(
        metrics.contains(r#"flightdeck_slo_error_budget_remaining{slo="availability"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"flightdeck_slo_burn_rate{slo="availability",tier="#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"flightdeck_fault_active{fault="dependency_failure"} 0"#),
        "{metrics}"
    );
    let (_, _, slo) = server.request("GET", "/api/slo", &[], "");
    let slo: Value = serde_json::from_str(&slo).unwrap();
    assert_eq!(slo["slos"][0]["name"], "availability");
    assert_eq!(slo["slos"][0]["total_events"], 5);

    // Faults: 401 without the token, applied with it; /readyz turns 503.
    assert_eq!(server.request("GET", "/readyz", &[], "").0, 200);
    let (status, _, _) = server.request(
        "POST",
        "/admin/faults",
        &[],
        r#"{"dependency_failure": true}"#,
    );
    assert_eq!(status, 401);
    let wrong = "Bearer wrong-token-0123456789abc";
    assert_eq!(
        server
            .request(
                "POST",
                "/admin/faults",
                &[("Authorization", wrong)],
                r#"{"dependency_failure": true}"#
            )
            .0,
        401
    );
    let bearer = format!("Bearer {TOKEN}");
    let (status, _, body) = server.request(
        "POST",
        "/admin/faults",
        &[("Authorization", &bearer)],
        r#"{"dependency_failure": true}"#,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(server.request("GET", "/readyz", &[], "").0, 503);
    let (_, _, metrics) = server.request("GET", "/metrics", &[], "");
    assert!(
        metrics.contains(r#"flightdeck_fault_active{fault="dependency_failure"} 1"#),
        "{metrics}"
    );
    assert_eq!(
        server
            .request(
                "POST",
                "/v1/answer",
                &[],
                r#"{"query": "q", "user_id": "u3"}"#
            )
            .0,
        500
    );
    let (status, _, body) = server.request(
        "POST",
        "/admin/faults",
        &[("Authorization", &bearer)],
        r#"{"error_rate": 7}"#,
    );
    assert_eq!(status, 400);
    assert!(body.contains("error_rate 7 is outside 0 to 1"), "{body}");
    server.request(
        "POST",
        "/admin/faults",
        &[("Authorization", &bearer)],
        r#"{"dependency_failure": false}"#,
    );
    assert_eq!(server.request("GET", "/readyz", &[], "").0, 200);
    let (_, _, dash) = server.request("GET", "/api/dashboard", &[], "");
    let dash: Value = serde_json::from_str(&dash).unwrap();
    assert_eq!(dash["answers"], 5);
    assert_eq!(dash["faults"]["dependency_failure"], false);
    assert!(server.stop().success());
}

#[test]
fn sigterm_answers_every_request_in_flight_then_exits_0() {
    let server = Server::start(&["--fault", "added_latency_ms=2000"]);
    let addr = server.addr;
    let clients: Vec<_> = (0..20)
        .map(|i| {
            std::thread::spawn(move || {
                request(
                    addr,
                    "POST",
                    "/v1/answer",
                    &[],
                    &format!(r#"{{"query": "q{i}", "user_id": "u{i}"}}"#),
                )
            })
        })
        .collect();
    // Wait until all 20 requests are in flight (the dashboard counts them;
    // its snapshot may lag by up to 250 ms, so poll).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, _, body) = server.request("GET", "/api/dashboard", &[], "");
        let d: Value = serde_json::from_str(&body).expect("dashboard JSON");
        // Long enough (2 s each) for every one to be seen in flight.
        if d["in_flight"].as_u64() == Some(20) {
            break;
        }
        assert!(Instant::now() < deadline, "20 requests in flight: {d}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = server.stop();
    let results: Vec<_> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    for (i, (code, _, body)) in results.iter().enumerate() {
        assert_eq!(*code, 200, "request {i}: {body}");
    }
    assert!(status.success(), "exit {status:?}");
}

#[test]
fn the_load_generator_holds_its_rate_and_reports_percentiles() {
    let server = Server::start(&[]);
    let target = format!("http://{}/v1/answer", server.addr);
    let out = flightdeck()
        .args([
            "load",
            "--target",
            &target,
            "--rps",
            "400",
            "--duration",
            "1s",
            "--concurrency",
            "8",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["sent"], 400);
    assert_eq!(r["ok"], 400);
    assert_eq!(r["status"]["200"], 400);
    let l = &r["latency_ms"];
    let (p50, p99, max) = (
        l["p50"].as_f64().unwrap(),
        l["p99"].as_f64().unwrap(),
        l["max"].as_f64().unwrap(),
    );
    assert!(p50 > 0.0 && p50 <= p99 && p99 <= max, "{l}");
    // The server counted them too.
    let (_, _, dash) = server.request("GET", "/api/dashboard", &[], "");
    assert_eq!(
        serde_json::from_str::<Value>(&dash).unwrap()["answers"],
        400
    );
    // Nothing listening: exit 1, naming the target.
    drop(server);
    let bad = flightdeck()
        .args([
            "load",
            "--target",
            &target,
            "--rps",
            "10",
            "--duration",
            "200ms",
        ])
        .output()
        .unwrap();
    assert_eq!(
        bad.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    assert!(String::from_utf8_lossy(&bad.stderr).contains("could not reach"));
    let bad = flightdeck()
        .args([
            "load",
            "--target",
            "https://x:1/",
            "--rps",
            "10",
            "--duration",
            "1s",
        ])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

/// The W3C Trace Context validation harness (w3c/trace-context `test/`,
/// copied in `tests/fixtures/w3c-trace-context/`) against `POST /test`, at
/// its default levels.
#[test]
fn the_w3c_trace_context_harness_passes() {
    let cache = std::env::var("XDG_CACHE_HOME")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| {
            std::path::PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache")
        });
    let python = cache.join("flightdeck/w3c-venv/bin/python");
    assert!(
        python.exists(),
        "aiohttp for the W3C harness is not installed ({}); run `cargo xtask install-test-deps`",
        python.display()
    );
    let server = Server::start(&["--w3c-test-endpoint"]);
    let harness = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/w3c-trace-context");
    let port = flightdeck_obs_otel::testing::free_port();
    let out = std::process::Command::new(&python)
        .arg("test.py")
        .arg(format!("http://{}/test", server.addr))
        .current_dir(&harness)
        .env("HARNESS_HOST", "127.0.0.1")
        .env("HARNESS_PORT", port.to_string())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env_remove("STRICT_LEVEL")
        .env_remove("SPEC_LEVEL")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && text.contains("\nOK"),
        "the harness failed:\n{text}"
    );
    assert!(text.contains("Ran 41 tests"), "{text}");
    // Off by default: the endpoint would let anyone make the service call out.
    let plain = Server::start(&[]);
    assert_eq!(plain.request("POST", "/test", &[], "[]").0, 404);
}

/// The `reranker-v2` experiment: a stable variation per user in every
/// answer, exposures once per user, results per request that
/// `flightdeck experiments analyze` reads.
#[test]
fn the_reranker_experiment_assigns_logs_and_analyzes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("data");
    let out_s = out.display().to_string();
    let server = Server::start(&["--out", &out_s]);
    let mut seen = std::collections::HashMap::new();
    for i in 0..120 {
        let user = format!("user-{}", i % 40);
        let (status, _, body) = server.request(
            "POST",
            "/v1/answer",
            &[],
            &format!(r#"{{"query": "q{i}", "user_id": "{user}"}}"#),
        );
        assert_eq!(status, 200, "{body}");
        let a: Value = serde_json::from_str(&body).unwrap();
        let v = a["variations"]["reranker-v2"].as_str().unwrap().to_owned();
        assert!(v == "control" || v == "v2", "{v}");
        if let Some(prev) = seen.insert(user.clone(), v.clone()) {
            assert_eq!(prev, v, "{user} switched variation");
        }
    }
    assert!(seen.values().any(|v| v == "control") && seen.values().any(|v| v == "v2"));
    let (_, _, exps) = server.request("GET", "/api/experiments", &[], "");
    let exps: Value = serde_json::from_str(&exps).unwrap();
    let srm = &exps["reranker-v2"]["srm"]["observed"];
    assert_eq!(
        srm.as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .sum::<u64>(),
        120,
        "{exps}"
    );
    assert!(server.stop().success());
    let exposures = std::fs::read_to_string(out.join("exposures.jsonl")).unwrap();
    assert_eq!(exposures.lines().count(), 40, "one exposure per user");
    let results = out.join("results.jsonl");
    assert_eq!(
        std::fs::read_to_string(&results).unwrap().lines().count(),
        120
    );
    let exp = dir.path().join("reranker-v2.json");
    std::fs::write(&exp, r#"{"key": "reranker-v2", "variations": ["cross-encoder-v1", "cross-encoder-v2"], "weights": [0.5, 0.5]}"#).unwrap();
    let analyzed = flightdeck()
        .args([
            "experiments",
            "analyze",
            "--json",
            "--min-users",
            "10",
            "--experiment",
        ])
        .arg(&exp)
        .arg("--results")
        .arg(&results)
        .output()
        .unwrap();
    let a: Value =
        serde_json::from_slice(&analyzed.stdout).unwrap_or_else(|e| panic!("{e}: {analyzed:?}"));
    assert_eq!(a["experiment"], "reranker-v2");
    let names: Vec<&str> = a["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"relevance") && names.contains(&"latency_ms"),
        "{names:?}"
    );
}

fn chunking(server: &Server, user: &str) -> bool {
    let (status, _, body) = server.request(
        "POST",
        "/v1/answer",
        &[],
        &format!(r#"{{"query": "q", "user_id": "{user}"}}"#),
    );
    assert_eq!(status, 200, "{body}");
    serde_json::from_str::<Value>(&body).unwrap()["flags"]["new_chunking_strategy"]
        .as_bool()
        .unwrap()
}

#[test]
fn flags_roll_out_kill_restore_and_reload_live() {
    let server = Server::start(&[]);
    let (_, _, list) = server.request("GET", "/api/flags", &[], "");
    let list: Value = serde_json::from_str(&list).unwrap();
    assert_eq!(list["flags"][0]["id"], "new_chunking_strategy", "{list}");
    let on: usize = (0..60)
        .filter(|i| chunking(&server, &format!("u{i}")))
        .count();
    assert!((10..=50).contains(&on), "a 50 % rollout: {on} of 60");
    assert_eq!(
        server
            .request("POST", "/api/flags/new_chunking_strategy/kill", &[], "")
            .0,
        401
    );
    let bearer = format!("Bearer {TOKEN}");
    let (status, _, body) = server.request(
        "POST",
        "/api/flags/new_chunking_strategy/kill",
        &[("Authorization", &bearer)],
        "",
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (0..60)
            .filter(|i| chunking(&server, &format!("u{i}")))
            .count(),
        0,
        "killed: off for everyone"
    );
    let (_, _, list) = server.request("GET", "/api/flags", &[], "");
    assert!(list.contains(r#""killed":true"#), "{list}");
    assert_eq!(
        server
            .request(
                "POST",
                "/api/flags/new_chunking_strategy/restore",
                &[("Authorization", &bearer)],
                ""
            )
            .0,
        200
    );
    assert_eq!(
        (0..60)
            .filter(|i| chunking(&server, &format!("u{i}")))
            .count(),
        on,
        "restored: the same users again"
    );
    drop(server);

    // A watched file: live reload, and a broken edit keeps the last good flags.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("flags.yaml");
    let write = |pct: u32| {
        std::fs::write(
            &file,
            format!("flags:\n  - id: new_chunking_strategy\n    rollout_percentage: {pct}\n"),
        )
        .unwrap()
    };
    write(100);
    let server = Server::start(&["--flags", file.to_str().unwrap()]);
    assert_eq!(server.request("GET", "/readyz", &[], "").0, 200);
    assert!(chunking(&server, "a") && chunking(&server, "b"));
    write(0);
    let deadline = Instant::now() + Duration::from_secs(20);
    while chunking(&server, "a") {
        assert!(Instant::now() < deadline, "the edit was never picked up");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::fs::write(
        &file,
        "flags: [ {id: new_chunking_strategy, rollout_percentage: 500} ]\n",
    )
    .unwrap();
    // Wait until the broken file has been read (the reload failure is counted).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, _, m) = server.request("GET", "/metrics", &[], "");
        if m.lines()
            .any(|l| l.starts_with("flightdeck_flags_reload_failures_total") && !l.ends_with(" 0"))
        {
            break;
        }
        assert!(Instant::now() < deadline, "the broken file was never read");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!chunking(&server, "a"), "the last good flags keep serving");
    assert_eq!(server.request("GET", "/readyz", &[], "").0, 200);
    assert!(server.stop().success());
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).map(|l| {
                l.split_whitespace()
                    .nth(1)
                    .unwrap_or("0")
                    .parse()
                    .unwrap_or(0)
            })
        })
        .unwrap_or(0)
}

#[test]
fn the_memory_leak_grows_the_heap_and_the_crash_fault_kills_the_process() {
    let mut server = Server::start(&[]);
    let pid = server.child.id();
    let before = rss_kb(pid);
    let bearer = format!("Bearer {TOKEN}");
    let (status, _, body) = server.request(
        "POST",
        "/admin/faults",
        &[("Authorization", &bearer)],
        r#"{"memory_leak_mb_per_s": 100}"#,
    );
    assert_eq!(status, 200, "{body}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while rss_kb(pid) < before + 150 * 1024 {
        assert!(
            Instant::now() < deadline,
            "RSS stayed at {} kB (from {before})",
            rss_kb(pid)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    server.request(
        "POST",
        "/admin/faults",
        &[("Authorization", &bearer)],
        r#"{"memory_leak_mb_per_s": 0}"#,
    );
    let (status, _, body) = server.request(
        "POST",
        "/admin/faults",
        &[("Authorization", &bearer)],
        r#"{"crash_after_s": 0.5}"#,
    );
    assert_eq!(status, 200, "{body}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = server.child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "the process did not crash");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!status.success(), "a crash is not a clean exit: {status:?}");
}

fn chromium_dom(
    url: &str,
    profile: &std::path::Path,
    screenshot: Option<&std::path::Path>,
) -> String {
    // Virtual time lets the page's fetches and one-second refreshes run.
    let mut cmd = crate::chromium(profile);
    cmd.args(["--virtual-time-budget=5000", "--window-size=1200,1000"]);
    match screenshot {
        Some(p) => cmd.arg(format!("--screenshot={}", p.display())),
        None => cmd.arg("--dump-dom"),
    };
    let out = cmd.arg(url).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The live dashboard in a real headless Chromium: the numbers arrive and
/// change, and the kill button kills the flag. A screenshot is kept in
/// `target/test-artifacts/dashboard.png`.
#[test]
fn the_live_dashboard_shows_the_numbers_and_kills_a_flag_in_chromium() {
    let server = Server::start(&[]);
    for i in 0..20 {
        server.request(
            "POST",
            "/v1/answer",
            &[],
            &format!(r#"{{"query": "q{i}", "user_id": "u{i}"}}"#),
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://{}/dashboard", server.addr);
    let dom = chromium_dom(&url, &dir.path().join("p1"), None);
    assert!(
        dom.contains(r#"data-testid="requests-total">20<"#),
        "{dom:.3000}"
    );
    for stage in ["rag.embed", "rag.retrieve", "rag.rerank", "rag.generate"] {
        assert!(
            dom.contains(&format!(r#"data-stage="{stage}""#)),
            "{stage} missing: {dom:.3000}"
        );
    }
    assert!(
        dom.contains(r#"data-slo="availability""#) && dom.contains(r#"data-arm="v2""#),
        "{dom:.3000}"
    );
    // Latency over time: each stage's p50/p95/p99 line has a point per
    // refresh (the page refreshed several times in the virtual 5 s).
    let trend = dom
        .split(r#"data-testid="trend-rag.generate""#)
        .nth(1)
        .and_then(|r| r.split(r#"class="p99""#).nth(1))
        .and_then(|r| r.split("points=\"").nth(1))
        .and_then(|r| r.split('"').next())
        .unwrap_or_else(|| panic!("no p99 trend for rag.generate: {dom:.3000}"));
    assert!(trend.split(' ').count() >= 2, "one point only: {trend}");
    for i in 20..27 {
        server.request(
            "POST",
            "/v1/answer",
            &[],
            &format!(r#"{{"query": "q{i}", "user_id": "u{i}"}}"#),
        );
    }
    let dom = chromium_dom(&url, &dir.path().join("p2"), None);
    assert!(
        dom.contains(r#"data-testid="requests-total">27<"#),
        "the count changed: {dom:.3000}"
    );
    // The kill button, with the token typed into the page.
    let kill = format!("{url}#token={TOKEN}&click=kill-new_chunking_strategy");
    let dom = chromium_dom(&kill, &dir.path().join("p3"), None);
    assert!(dom.contains("killed new_chunking_strategy"), "{dom:.3000}");
    let (_, _, flags) = server.request("GET", "/api/flags", &[], "");
    assert!(flags.contains(r#""killed":true"#), "{flags}");
    let artifacts = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("../test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let shot = artifacts.join("dashboard.png");
    chromium_dom(&url, &dir.path().join("p4"), Some(&shot));
    assert!(
        std::fs::metadata(&shot)
            .map(|m| m.len() > 10_000)
            .unwrap_or(false),
        "no screenshot at {}",
        shot.display()
    );
}

/// `flightdeck dashboards grafana`: a real Prometheus scrapes a real service
/// under load, and every PromQL expression of the generated dashboard is
/// accepted and returns at least one finite value (Grafana's variables
/// substituted as Grafana does: `$job` by the job, `$__rate_interval` by a
/// window).
#[test]
fn every_grafana_panel_query_returns_data_from_a_real_prometheus() {
    use crate::prometheus::{http_get, poll, start_prometheus};
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("dashboard.json");
    crate::run_ok(
        flightdeck()
            .args(["dashboards", "grafana", "--out"])
            .arg(&out),
    );
    let dashboard: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(dashboard["uid"], "flightdeck-rag");
    let exprs: Vec<String> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap().clone())
        .map(|t| t["expr"].as_str().unwrap().to_owned())
        .collect();
    assert!(exprs.len() >= 12, "{exprs:?}");

    let server = Server::start(&["--build-version", "1.2.3-test"]);
    let addr = server.addr;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let stop = std::sync::Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let body = format!(
                    r#"{{"query":"what is a canary {i}","user_id":"user-{}"}}"#,
                    i % 50
                );
                let _ = request(addr, "POST", "/v1/answer", &[], &body);
                i += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            i
        })
    };
    let (_prom, prom) = start_prometheus(
        dir.path(),
        &format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: flightdeck\n    static_configs:\n      - targets: ['{addr}']\n"
        ),
    );
    let mut missing = Vec::new();
    for expr in &exprs {
        let promql = expr
            .replace("$__rate_interval", "1m")
            .replace("$job", "flightdeck");
        let url = format!("/api/v1/query?query={}", url_encode(&promql));
        // The first scrape lands a few seconds after start; a rate needs two.
        let got = poll(Duration::from_secs(45), || {
            let body = http_get(prom, &url)?;
            let v: Value = serde_json::from_str(&body).ok()?;
            assert_eq!(v["status"], "success", "{promql}: {body}");
            let finite = v["data"]["result"].as_array()?.iter().any(|s| {
                s["value"][1]
                    .as_str()
                    .and_then(|x| x.parse::<f64>().ok())
                    .is_some_and(f64::is_finite)
            });
            finite.then_some(())
        });
        if got.is_none() {
            missing.push(promql);
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let sent = load.join().unwrap();
    assert!(missing.is_empty(), "no data for {missing:#?}");
    assert!(sent > 0);
    // The build version reached Prometheus as a label.
    let body = http_get(prom, "/api/v1/query?query=flightdeck_build_info").unwrap();
    assert!(body.contains("\"version\":\"1.2.3-test\""), "{body}");
    assert_eq!(server.stop().code(), Some(0));
}

/// Percent-encodes a query string value.
pub(crate) use flightdeck::release::k8s::url_encode;

/// A query that needs a tool takes the agent path (generate → rag.tool_call
/// → generate), and the traces the service writes fit the golden crate's
/// `agent` template; a plain query does not.
#[test]
fn the_agent_path_records_tool_calls_that_fit_the_golden_agent_template() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let server = Server::start(&["--out", out.to_str().unwrap()]);
    let (status, _, body) = server.request(
        "POST",
        "/v1/answer",
        &[("x-correlation-id", "agent-1")],
        r#"{"query":"what is the latest stable release today?","user_id":"u1"}"#,
    );
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let stages: Vec<&str> = v["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(
        stages,
        [
            "rag.guardrail",
            "rag.embed",
            "rag.retrieve",
            "rag.rerank",
            "rag.generate",
            "rag.tool_call",
            "rag.generate",
            "rag.guardrail"
        ]
    );
    let (status, _, body) = server.request(
        "POST",
        "/v1/answer",
        &[("x-correlation-id", "plain-1")],
        r#"{"query":"how do canaries work","user_id":"u2"}"#,
    );
    assert_eq!(status, 200, "{body}");
    assert!(!body.contains("rag.tool_call"), "{body}");
    // A caller's trace, with its tracestate.
    let (caller_trace, caller_state) = (
        "4bf92f3577b34da6a3ce929d0e0e4736",
        "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE",
    );
    let (status, _, body) = server.request(
        "POST",
        "/v1/answer",
        &[
            (
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
            ("tracestate", caller_state),
        ],
        r#"{"query":"how do canaries work","user_id":"u3"}"#,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(server.stop().code(), Some(0));

    let (callers, spans): (Vec<Value>, Vec<Value>) = crate::read_jsonl(&out.join("traces.jsonl"))
        .into_iter()
        .partition(|s| s["trace_id"] == caller_trace);
    assert!(
        callers.len() >= 6,
        "the caller's trace was recorded: {callers:?}"
    );
    for s in &callers {
        assert_eq!(
            s["trace_state"], caller_state,
            "every span of the caller's trace keeps its tracestate: {s}"
        );
    }
    assert!(spans.iter().all(|s| s.get("trace_state").is_none()));
    let tool = spans
        .iter()
        .find(|s| s["name"] == "rag.tool_call")
        .expect("a tool call span");
    assert_eq!(
        tool["attributes"]["gen_ai.tool.name"], "web_search",
        "{tool}"
    );
    // Split the two traces and check each against the agent template.
    let agent_trace = tool["trace_id"].as_str().unwrap();
    let (agent, plain): (Vec<&Value>, Vec<&Value>) =
        spans.iter().partition(|s| s["trace_id"] == agent_trace);
    for (spans, code) in [(agent, 0), (plain, 3)] {
        let file = dir.path().join(format!("trace-{code}.jsonl"));
        let text: String = spans.iter().map(|s| format!("{s}\n")).collect();
        std::fs::write(&file, text).unwrap();
        let o = flightdeck()
            .args(["golden", "check", "--template", "agent", "--traces"])
            .arg(&file)
            .output()
            .unwrap();
        assert_eq!(
            o.status.code(),
            Some(code),
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

/// Golden capture: `serve --out DIR --golden-sample 1` records the traces
/// as golden cases when it stops, and they check clean against the same
/// traces; a sample of 0.5 keeps some and drops some, chosen by trace id.
#[test]
fn the_service_captures_a_sampled_share_of_requests_as_golden_cases() {
    for (rate, all) in [("1", true), ("0.5", false)] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let server = Server::start(&["--out", out.to_str().unwrap(), "--golden-sample", rate]);
        for i in 0..24 {
            let (status, _, body) = server.request(
                "POST",
                "/v1/answer",
                &[("x-correlation-id", &format!("capture-{i}"))],
                &format!(r#"{{"query":"q{i}","user_id":"u{i}"}}"#),
            );
            assert_eq!(status, 200, "{body}");
        }
        assert_eq!(server.stop().code(), Some(0));
        let cases = std::fs::read_dir(out.join("golden"))
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
                    .count()
            })
            .unwrap_or(0);
        if all {
            assert_eq!(cases, 24);
            let o = flightdeck()
                .args(["golden", "check", "--golden"])
                .arg(out.join("golden"))
                .arg("--traces")
                .arg(out.join("traces.jsonl"))
                .output()
                .unwrap();
            assert_eq!(
                o.status.code(),
                Some(0),
                "{}",
                String::from_utf8_lossy(&o.stdout)
            );
        } else {
            assert!((1..24).contains(&cases), "{cases} of 24 kept at 0.5");
        }
    }
}

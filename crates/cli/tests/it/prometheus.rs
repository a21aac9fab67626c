//! A real Prometheus scrapes `flightdeck demo --prometheus-listen`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::{flightdeck, tool};

pub(crate) use flightdeck_obs_otel::testing::free_port;

/// A minimal HTTP/1.0 GET: the body, or `None` when the server is not up yet.
pub(crate) fn http_get(addr: SocketAddr, path: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200")
        .then(|| body.to_owned())
        .or_else(|| head.starts_with("HTTP/1.0 200").then(|| body.to_owned()))
}

/// Polls `f` every 250 ms until it returns `Some`, for at most `limit`.
pub(crate) fn poll<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(v) = f() {
            return Some(v);
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    None
}

pub(crate) struct KillOnDrop(pub(crate) Child);

/// Starts `flightdeck demo ARGS --prometheus-listen ADDR --out DIR/out`
/// quietly, and waits until `/metrics` answers; killed when dropped.
pub(crate) fn spawn_demo_serving(
    args: &[&str],
    addr: SocketAddr,
    dir: &std::path::Path,
) -> KillOnDrop {
    let demo = KillOnDrop(
        flightdeck()
            .arg("demo")
            .args(args)
            .arg("--prometheus-listen")
            .arg(addr.to_string())
            .arg("--out")
            .arg(dir.join("out"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    poll(Duration::from_secs(30), || http_get(addr, "/metrics")).expect("/metrics answers");
    demo
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts Prometheus on a free 127.0.0.1 port with `config` (YAML) and waits
/// until it is ready. It stops when the returned guard drops.
pub(crate) fn start_prometheus(dir: &std::path::Path, config: &str) -> (KillOnDrop, SocketAddr) {
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let file = dir.join("prometheus.yml");
    std::fs::write(&file, config).unwrap();
    let child = KillOnDrop(
        tool("prometheus")
            .arg(format!("--config.file={}", file.display()))
            .arg(format!("--web.listen-address={addr}"))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    poll(Duration::from_secs(20), || http_get(addr, "/-/ready")).expect("prometheus becomes ready");
    (child, addr)
}

#[test]
fn a_real_prometheus_scrapes_the_demo() {
    let dir = tempfile::tempdir().unwrap();
    let metrics_addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();

    let demo = spawn_demo_serving(
        &[
            "--requests",
            "40",
            "--time-scale",
            "0.2",
            "--linger-secs",
            "60",
        ],
        metrics_addr,
        dir.path(),
    );
    let body = poll(Duration::from_secs(20), || {
        http_get(metrics_addr, "/metrics")
    })
    .expect("/metrics answers");
    assert!(
        body.contains("# TYPE flightdeck_operation_duration_seconds histogram"),
        "{body}"
    );

    let (_prom, prom_addr) = start_prometheus(
        dir.path(),
        &format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: flightdeck\n    static_configs:\n      - targets: ['{metrics_addr}']\n"
        ),
    );

    // The first scrape lands about 6 s after start (the discovery manager's
    // 5 s throttle), so allow 40 s.
    let query =
        "/api/v1/query?query=sum(flightdeck_operations_total%7Boperation%3D%22rag.request%22%7D)";
    let result = poll(Duration::from_secs(40), || {
        let body = http_get(prom_addr, query)?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        let sample = v["data"]["result"].get(0)?;
        let n: f64 = sample["value"][1].as_str()?.parse().ok()?;
        (n >= 40.0).then_some(n)
    });
    assert_eq!(result, Some(40.0), "Prometheus saw every request");

    let targets = http_get(prom_addr, "/api/v1/targets").unwrap();
    assert!(targets.contains("\"health\":\"up\""), "{targets}");
    drop(demo);
}

/// Whether an alert with `alertname` and `sloth_severity` is in `state`.
fn alert_in_state(prom: SocketAddr, alertname: &str, severity: &str, state: &str) -> Option<bool> {
    let body = http_get(prom, "/api/v1/alerts")?;
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    let alerts = v["data"]["alerts"].as_array()?;
    Some(alerts.iter().any(|a| {
        a["labels"]["alertname"] == alertname
            && a["labels"]["sloth_severity"] == severity
            && a["state"] == state
    }))
}

#[test]
fn generated_slo_rules_page_in_a_real_prometheus_and_recover() {
    let dir = tempfile::tempdir().unwrap();
    // An SLO over the demo's own request counter. The demo fails about 8% of
    // requests: an 80x burn of a 99.9% objective.
    let spec = dir.path().join("slo.yaml");
    std::fs::write(
        &spec,
        r#"version: prometheus/v1
service: demo
slos:
  - name: requests-availability
    objective: 99.9
    sli:
      events:
        error_query: sum(rate(flightdeck_operations_total{operation="rag.request",outcome="error"}[{{.window}}]))
        total_query: sum(rate(flightdeck_operations_total{operation="rag.request"}[{{.window}}]))
    alerting:
      name: DemoAvailability
"#,
    )
    .unwrap();
    // A one-hour period with second-scale windows, so a test sees both the
    // page and its recovery (the same shape as the SRE workbook's windows).
    let windows = dir.path().join("windows.yaml");
    std::fs::write(
        &windows,
        "apiVersion: sloth.slok.dev/v1\nkind: AlertWindows\nspec:\n  sloPeriod: 1h\n  page:\n    quick: {errorBudgetPercent: 2, shortWindow: 10s, longWindow: 30s}\n    slow: {errorBudgetPercent: 5, shortWindow: 20s, longWindow: 1m}\n  ticket:\n    quick: {errorBudgetPercent: 10, shortWindow: 30s, longWindow: 2m}\n    slow: {errorBudgetPercent: 10, shortWindow: 1m, longWindow: 3m}\n",
    )
    .unwrap();
    let rules = dir.path().join("rules.yml");
    crate::run_ok(
        flightdeck()
            .args(["slo", "rules", "--spec"])
            .arg(&spec)
            .arg("--windows")
            .arg(&windows)
            .arg("--out")
            .arg(&rules),
    );

    let metrics_addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let _demo = spawn_demo_serving(
        &[
            "--requests",
            "2000",
            "--concurrency",
            "8",
            "--time-scale",
            "0.3",
            "--linger-secs",
            "300",
        ],
        metrics_addr,
        dir.path(),
    );
    let (_prom, prom_addr) = start_prometheus(
        dir.path(),
        &format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\nscrape_configs:\n  - job_name: demo\n    static_configs:\n      - targets: ['{metrics_addr}']\n",
            rules.display()
        ),
    );
    let rules_loaded = http_get(prom_addr, "/api/v1/rules").unwrap();
    assert!(rules_loaded.contains("DemoAvailability"), "{rules_loaded}");

    // The first samples take about 6 s; the page alert has no `for`, so it fires
    // on the first evaluation where both windows burn too fast.
    let fired = poll(Duration::from_secs(60), || {
        alert_in_state(prom_addr, "DemoAvailability", "page", "firing").filter(|f| *f)
    });
    assert_eq!(
        fired,
        Some(true),
        "the page alert fired while the demo was failing requests"
    );

    // The demo stops sending requests after about 30 s; once the page windows
    // (at most 1m) hold no errors, the alert resolves.
    let resolved = poll(Duration::from_secs(180), || {
        alert_in_state(prom_addr, "DemoAvailability", "page", "firing").filter(|f| !*f)
    });
    assert_eq!(
        resolved,
        Some(false),
        "the page alert resolved after the errors stopped"
    );
}

use std::collections::{HashMap, HashSet};

use crate::{flightdeck, read_jsonl, run_ok, tool};

#[test]
fn demo_writes_one_trace_per_request_and_correlated_logs() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("D");
    let out = run_ok(
        flightdeck()
            .args([
                "demo",
                "--requests",
                "50",
                "--seed",
                "7",
                "--time-scale",
                "0.2",
                "--out",
            ])
            .arg(&out_dir),
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    for expected in [
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "rag.generate",
        "cost: $",
        "quality: relevance mean",
        "error rate:",
        "50 requests",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }

    // traces.jsonl: every request is one trace rooted at its request span.
    let spans = read_jsonl(&out_dir.join("traces.jsonl"));
    let mut traces: HashMap<&str, Vec<&serde_json::Value>> = HashMap::new();
    for s in &spans {
        traces
            .entry(s["trace_id"].as_str().unwrap())
            .or_default()
            .push(s);
    }
    assert_eq!(traces.len(), 50, "one trace per request");
    let mut trace_correlation = HashMap::new();
    for (trace_id, members) in &traces {
        let roots: Vec<_> = members
            .iter()
            .filter(|s| s["parent_span_id"].is_null())
            .collect();
        assert_eq!(roots.len(), 1, "trace {trace_id} has {} roots", roots.len());
        assert_eq!(roots[0]["name"], "rag.request");
        let ids: HashSet<&str> = members
            .iter()
            .map(|s| s["span_id"].as_str().unwrap())
            .collect();
        for s in members.iter().filter(|s| !s["parent_span_id"].is_null()) {
            assert!(
                ids.contains(s["parent_span_id"].as_str().unwrap()),
                "span {} has its parent outside trace {trace_id}",
                s["name"]
            );
        }
        let correlation = roots[0]["correlation_id"].as_str().unwrap();
        for s in members {
            assert_eq!(s["correlation_id"], correlation);
        }
        trace_correlation.insert(*trace_id, correlation.to_owned());
    }
    // Shard searches run in spawned tasks and still hang under the retrieve span.
    let retrieve_ids: HashSet<&str> = spans
        .iter()
        .filter(|s| s["name"] == "rag.retrieve")
        .map(|s| s["span_id"].as_str().unwrap())
        .collect();
    let shards: Vec<_> = spans
        .iter()
        .filter(|s| s["name"] == "rag.retrieve.shard")
        .collect();
    assert!(shards.len() >= 100);
    assert!(
        shards
            .iter()
            .all(|s| retrieve_ids.contains(s["parent_span_id"].as_str().unwrap()))
    );
    // Inbound ids are kept when valid and replaced when hostile.
    let correlations: HashSet<&String> = trace_correlation.values().collect();
    assert!(correlations.iter().any(|c| c.as_str() == "client-7-0"));
    assert!(
        correlations
            .iter()
            .all(|c| !c.contains(' ') && !c.contains('\n'))
    );

    // logs.jsonl: every line inside a request carries its correlation and
    // trace ids; the one line outside any request is the mid-run kill.
    let logs = read_jsonl(&out_dir.join("logs.jsonl"));
    assert!(logs.len() >= 150, "{}", logs.len());
    let (outside, logs): (Vec<_>, Vec<_>) = logs.into_iter().partition(|l| l["trace_id"].is_null());
    assert_eq!(outside.len(), 1, "{outside:?}");
    assert_eq!(outside[0]["message"], "kill switch changed");
    assert_eq!(outside[0]["fields"]["flag"], "new_chunking_strategy");
    for line in &logs {
        let trace_id = line["trace_id"]
            .as_str()
            .unwrap_or_else(|| panic!("no trace_id: {line}"));
        let expected = trace_correlation
            .get(trace_id)
            .unwrap_or_else(|| panic!("log line in unknown trace: {line}"));
        assert_eq!(
            line["correlation_id"].as_str(),
            Some(expected.as_str()),
            "{line}"
        );
    }
    let finished = logs
        .iter()
        .filter(|l| l["message"] == "request finished")
        .count();
    assert_eq!(finished, 50);

    // dashboard.json is the same snapshot the CLI printed.
    let dash: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("dashboard.json")).unwrap()).unwrap();
    assert_eq!(dash["requests"], 50);
    assert!(
        dash["operations"]["rag.generate"]["latency"]["p99_ms"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    assert!(dash["cost"]["total_usd_micros"].as_u64().unwrap() > 0);

    // metrics.prom passes Prometheus's own linter.
    let prom = std::fs::File::open(out_dir.join("metrics.prom")).unwrap();
    let lint = tool("promtool")
        .args(["check", "metrics"])
        .stdin(prom)
        .output()
        .unwrap();
    assert!(
        lint.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&lint.stdout),
        String::from_utf8_lossy(&lint.stderr)
    );
}

#[test]
fn a_second_run_replaces_the_previous_files() {
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..2 {
        run_ok(
            flightdeck()
                .args(["demo", "--requests", "3", "--time-scale", "0.05", "--out"])
                .arg(dir.path()),
        );
    }
    let spans = read_jsonl(&dir.path().join("traces.jsonl"));
    let roots = spans
        .iter()
        .filter(|s| s["parent_span_id"].is_null())
        .count();
    assert_eq!(roots, 3);
}

#[test]
fn the_dashboard_picture_renders_in_a_real_browser() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("D");
    run_ok(
        flightdeck()
            .args(["demo", "--requests", "40", "--time-scale", "0.1", "--out"])
            .arg(&out_dir),
    );
    let svg = std::fs::read_to_string(out_dir.join("dashboard.svg")).unwrap();
    // A page with the SVG inline and a script that measures what the browser drew.
    let page = format!(
        r#"<!doctype html><html><body>{svg}<script>
const bars = [...document.querySelectorAll("rect[data-op]")];
const ops = {{}};
for (const b of bars) {{ (ops[b.dataset.op] ??= {{}})[b.dataset.quantile] = b.getBBox().width; }}
const problems = [];
for (const [op, q] of Object.entries(ops)) {{
  if (!(q.p50 > 0 && q.p50 <= q.p95 && q.p95 <= q.p99)) problems.push(op + ":" + JSON.stringify(q));
}}
document.body.setAttribute("data-bars", String(bars.length));
document.body.setAttribute("data-ops", String(Object.keys(ops).length));
document.body.setAttribute("data-check", problems.length ? "bad " + problems.join(";") : "ok");
</script></body></html>"#
    );
    let dom = crate::browser_dom(dir.path(), "dashboard.html", &page);
    assert!(
        dom.contains(r#"data-check="ok""#),
        "the browser's measurements: {dom:.2000}"
    );
    let dash: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("dashboard.json")).unwrap()).unwrap();
    let ops = dash["operations"].as_object().unwrap().len();
    assert!(dom.contains(&format!(r#"data-ops="{ops}""#)), "{dom:.2000}");
    assert!(
        dom.contains(&format!(r#"data-bars="{}""#, ops * 3)),
        "{dom:.2000}"
    );
}

/// The demo shows the whole toolkit: the `reranker-v2` experiment with its
/// exposures, results and analysis (which `experiments analyze` reads too),
/// the flag killed mid-run, and the SLOs.
#[test]
fn the_demo_runs_the_experiment_kills_the_flag_mid_run_and_reports_slos() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("D");
    let out = run_ok(
        flightdeck()
            .args(["demo", "--requests", "400", "--time-scale", "0.02", "--out"])
            .arg(&out_dir),
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    for expected in [
        "experiment reranker-v2:",
        "relevance (goal, mean, higher is better)",
        "flag new_chunking_strategy:",
        "before the kill at request 200",
        "on for 0% of",
        "SLOs (default RAG set):",
        "availability",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
    // Before the kill about half the users had it (a 50 % rollout).
    let before = stdout
        .split("flag new_chunking_strategy: on for ")
        .nth(1)
        .and_then(|r| r.split('%').next())
        .and_then(|n| n.parse::<f64>().ok())
        .unwrap();
    assert!((30.0..=70.0).contains(&before), "{before}% before the kill");
    // One exposure per user, and one result per request, readable by the CLI.
    let exposures = read_jsonl(&out_dir.join("exposures.jsonl"));
    assert_eq!(exposures.len(), 400, "every request is a new user");
    let results = read_jsonl(&out_dir.join("results.jsonl"));
    assert_eq!(results.len(), 400);
    let analyzed = run_ok(
        flightdeck()
            .args([
                "experiments",
                "analyze",
                "--metric",
                "relevance:mean",
                "--json",
                "--experiment",
            ])
            .arg(out_dir.join("experiment.json"))
            .arg("--results")
            .arg(out_dir.join("results.jsonl")),
    );
    let a: serde_json::Value = serde_json::from_slice(&analyzed.stdout).unwrap();
    // The demo's ground truth: v2 ranks better; 400 users see it.
    let lift = a["metrics"][0]["comparisons"][0]["frequentist"]["relative"]["estimate"]
        .as_f64()
        .unwrap();
    assert!(lift > 0.0, "{a}");
}

/// `demo --serve` keeps the reference service up with the demo's metrics,
/// prints its dashboard URL, and stops cleanly on SIGTERM.
#[test]
fn demo_serve_keeps_the_service_up_and_prints_the_dashboard_url() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let mut child = flightdeck()
        .args([
            "demo",
            "--requests",
            "20",
            "--time-scale",
            "0.05",
            "--serve",
            "127.0.0.1:0",
            "--out",
        ])
        .arg(dir.path().join("D"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = lines
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix("dashboard: ").map(str::to_owned))
        .expect("the dashboard URL is printed");
    let addr: std::net::SocketAddr = url
        .strip_prefix("http://")
        .and_then(|r| r.strip_suffix("/dashboard"))
        .unwrap()
        .parse()
        .unwrap();
    let (status, _, body) = crate::service::request(addr, "GET", "/api/dashboard", &[], "");
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v["metrics"]["requests"], 20,
        "the demo's requests are on the dashboard"
    );
    let (status, _, page) = crate::service::request(addr, "GET", "/dashboard", &[], "");
    assert_eq!(status, 200);
    assert!(page.contains("data-testid=\"requests-total\""));
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

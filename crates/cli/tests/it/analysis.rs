//! `flightdeck experiments analyze|report` on the held-back fixtures that
//! gbstats and scipy produced the reference values for.

use std::path::PathBuf;
use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{flightdeck, run_ok};

fn fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../experiments/tests/fixtures/analysis")
        .join(name)
        .display()
        .to_string()
}

fn run(args: &[&str]) -> Output {
    flightdeck()
        .args(args)
        .output()
        .expect("the flightdeck binary runs")
}

fn reference() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture("reference.json")).unwrap()).unwrap()
}

const THREE_ARM_METRICS: &[&str] = &[
    "--metric",
    "converted:binomial",
    "--metric",
    "latency_ms:mean:lower",
    "--metric",
    "revenue:mean",
];

#[test]
fn analyze_json_carries_the_contract_and_gbstats_numbers() {
    let mut args = vec!["experiments", "analyze", "--json"];
    let (exp, res) = (
        fixture("three-arm.experiment.json"),
        fixture("three-arm.jsonl"),
    );
    args.extend(["--experiment", &exp, "--results", &res]);
    args.extend(THREE_ARM_METRICS);
    let out = run_ok(flightdeck().args(&args));
    let a: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(a["experiment"], "reranker-v2");
    let r = reference();
    let want = &r["cases"][0];
    assert_eq!(want["name"], "three-arm");
    for (i, m) in want["metrics"].as_array().unwrap().iter().enumerate() {
        let got = &a["metrics"][i];
        assert_eq!(got["name"], m["name"]);
        assert_eq!(got["kind"], m["kind"]);
        for (j, c) in m["comparisons"].as_array().unwrap().iter().enumerate() {
            let g = &got["comparisons"][j];
            assert_eq!(g["variation_id"], c["variation_id"]);
            for path in [
                ("frequentist", "relative", "estimate"),
                ("frequentist", "relative", "p_value"),
                ("frequentist", "absolute", "ci_low"),
                ("bayesian", "relative", "chance_to_win"),
                ("bayesian", "absolute", "risk_treatment"),
            ] {
                let x = g[path.0][path.1][path.2].as_f64().unwrap();
                let y = c[path.0][path.1][path.2].as_f64().unwrap();
                assert!((x - y).abs() <= 1e-9, "{path:?}: {x} vs {y}");
            }
            let w = (g["welch"]["p_value"].as_f64().unwrap()
                - c["welch"]["p_value"].as_f64().unwrap())
            .abs();
            assert!(w <= 1e-9);
            assert!(g["adjusted_p_value"].is_number());
            let v = &got["variations"][j];
            for key in ["variation_id", "key", "n", "mean", "variance"] {
                assert!(v.get(key).is_some(), "{key}");
            }
        }
    }
    for key in ["decision", "variation_id", "confidence", "reasons"] {
        assert!(
            a["recommendation"].get(key).is_some(),
            "recommendation.{key}"
        );
    }
    assert_eq!(a["srm"]["mismatch"], false);
}

#[test]
fn an_srm_exits_3_and_is_never_shipped_and_bad_input_exits_2() {
    let (exp, res) = (fixture("srm.experiment.json"), fixture("srm.jsonl"));
    for engine in ["frequentist", "bayesian"] {
        let out = run(&[
            "experiments",
            "analyze",
            "--experiment",
            &exp,
            "--results",
            &res,
            "--engine",
            engine,
            "--json",
        ]);
        assert_eq!(out.status.code(), Some(3), "{engine}");
        let a: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(a["recommendation"]["decision"], "invalid");
        assert_eq!(a["srm"]["mismatch"], true);
    }
    let text = run(&[
        "experiments",
        "analyze",
        "--experiment",
        &exp,
        "--results",
        &res,
    ]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("sample ratio mismatch"));

    let bad = run(&[
        "experiments",
        "analyze",
        "--experiment",
        &exp,
        "--results",
        &res,
        "--metric",
        "converted:median",
    ]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("\"median\" is not one of"),
        "{bad:?}"
    );
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("r.jsonl");
    let first = std::fs::read_to_string(fixture("srm.jsonl"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_owned();
    std::fs::write(
        &broken,
        format!("{first}\n{{\"timestamp_ms\": \"soon\"}}\n"),
    )
    .unwrap();
    let bad = run(&[
        "experiments",
        "analyze",
        "--experiment",
        &exp,
        "--results",
        broken.to_str().unwrap(),
    ]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("r.jsonl:2:"),
        "{bad:?}"
    );
}

#[test]
fn the_html_report_renders_its_plots_in_a_real_browser() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("reports");
    let (exp, res) = (
        fixture("three-arm.experiment.json"),
        fixture("three-arm.jsonl"),
    );
    let mut args = vec![
        "experiments",
        "report",
        "--experiment",
        &exp,
        "--results",
        &res,
        "--format",
        "html,json,md",
        "--out",
    ];
    let out_s = out_dir.display().to_string();
    args.push(&out_s);
    args.extend(THREE_ARM_METRICS);
    run_ok(flightdeck().args(&args));
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("reranker-v2.json")).unwrap())
            .unwrap();
    let md = std::fs::read_to_string(out_dir.join("reranker-v2.md")).unwrap();
    assert!(
        md.contains("**Decision:")
            && md.contains("## How to read this")
            && md.contains("## Can the data be trusted?"),
        "{md}"
    );
    assert!(
        std::fs::read_to_string(out_dir.join("index.html"))
            .unwrap()
            .contains("reranker-v2.html")
    );
    let html = std::fs::read_to_string(out_dir.join("reranker-v2.html")).unwrap();
    // Self-contained: nothing is fetched.
    assert!(
        !html.contains("<link") && !html.contains("src=") && !html.contains("href=\"http"),
        "self-contained"
    );
    // The browser measures what it drew: every interval, both time series.
    let script = r#"<script>
const cis = [...document.querySelectorAll("svg.forest g.ci")];
const drawn = cis.filter(g => g.querySelector("line").getBBox().width > 0).length;
const series = [...document.querySelectorAll("svg.exposures g.series")].filter(g => g.querySelector("polyline").getBBox().width > 0).length;
const lifts = [...document.querySelectorAll("svg.lift g.series")].length;
const est = cis.map(g => g.dataset.metric + ":" + g.dataset.variation + "=" + g.dataset.estimate).join(";");
document.body.setAttribute("data-cis", String(cis.length));
document.body.setAttribute("data-drawn", String(drawn));
document.body.setAttribute("data-series", String(series));
document.body.setAttribute("data-lifts", String(lifts));
document.body.setAttribute("data-significant", String(document.querySelectorAll("g.ci.significant").length));
document.body.setAttribute("data-srm", document.querySelector("p.srm").dataset.mismatch);
</script></body>"#;
    let dom = crate::browser_dom(dir.path(), "page.html", &html.replace("</body>", script));
    // 3 metrics × 2 treatments, all drawn; 3 arms; 2 treatments' lift.
    for want in [
        r#"data-cis="6""#,
        r#"data-drawn="6""#,
        r#"data-series="3""#,
        r#"data-lifts="2""#,
        r#"data-srm="false""#,
    ] {
        assert!(
            dom.contains(want),
            "{want} not in the browser's DOM: {:.3000}",
            dom
        );
    }
    // The latency intervals are significant both ways (v1 faster, v2 slower).
    let sig: usize = dom
        .split(r#"data-significant=""#)
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .parse()
        .unwrap();
    assert!(sig >= 2, "{sig}");
    // The plotted numbers are the analysis's numbers.
    let est = json["metrics"][1]["comparisons"][0]["frequentist"]["relative"]["estimate"]
        .as_f64()
        .unwrap();
    assert!(
        dom.contains(&format!(r#"data-estimate="{est}""#)),
        "latency v1 estimate {est} not plotted"
    );
}

#[test]
fn scheduled_reports_regenerate_until_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results.jsonl");
    let all = std::fs::read_to_string(fixture("three-arm.jsonl")).unwrap();
    let lines: Vec<&str> = all.lines().collect();
    std::fs::write(&results, lines[..1500].join("\n") + "\n").unwrap();
    let out_dir = dir.path().join("reports");
    let exp = fixture("three-arm.experiment.json");
    let mut child = flightdeck()
        .args([
            "experiments",
            "report",
            "--experiment",
            &exp,
            "--format",
            "json",
            "--every",
            "1s",
            "--results",
        ])
        .arg(&results)
        .arg("--out")
        .arg(&out_dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let report = out_dir.join("reranker-v2.json");
    let users = |path: &PathBuf| -> Option<u64> {
        let v: Value = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
        v["srm"]["observed"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_u64).sum())
    };
    let wait = |want: u64| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if users(&report) == Some(want) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    };
    let first = wait(1500);
    // More results arrive; the next run picks them up.
    std::fs::write(&results, all.clone()).unwrap();
    let second = wait(lines.len() as u64);
    let _ = child.kill();
    let _ = child.wait();
    assert!(first, "the first report never appeared");
    assert!(
        second,
        "the report was not regenerated with the new results"
    );
    assert!(out_dir.join("index.html").exists());
}

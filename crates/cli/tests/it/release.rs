//! `flightdeck release judge`: the readable and JSON reports, exit codes,
//! bad input, and the HTTP mode an Argo Rollouts web metric calls.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use crate::flightdeck;

const CONFIG: &str = r#"{
  "metrics": [
    {"name": "error_rate", "groups": ["errors"], "analysisConfigurations": {"canary": {"direction": "increase", "critical": true}}},
    {"name": "latency_p99", "groups": ["latency"], "analysisConfigurations": {"canary": {"direction": "increase"}}}
  ],
  "classifier": {"groupWeights": {"errors": 60, "latency": 40}, "scoreThresholds": {"pass": 95, "marginal": 75}}
}"#;

fn series(base: f64, n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| base + (i % 7) as f64 * 0.01 * base)
        .collect()
}

fn pairs(error_canary: f64) -> String {
    serde_json::json!([
        {"name": "error_rate", "values": {"control": series(0.01, 30), "experiment": series(error_canary, 30)}},
        {"name": "latency_p99", "values": {"control": series(120.0, 30), "experiment": series(121.0, 30).into_iter().map(Value::from).chain([Value::from("NaN")]).collect::<Vec<_>>()}}
    ])
    .to_string()
}

/// Runs `flightdeck release judge --config C --pairs P ARGS`.
fn judge(config: &std::path::Path, pairs: &std::path::Path, args: &[&str]) -> std::process::Output {
    flightdeck()
        .args(["release", "judge"])
        .args(args)
        .arg("--config")
        .arg(config)
        .arg("--pairs")
        .arg(pairs)
        .output()
        .unwrap()
}

#[test]
fn judge_passes_a_healthy_canary_and_fails_a_bad_one_with_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.json");
    std::fs::write(&config, CONFIG).unwrap();
    let healthy = dir.path().join("healthy.json");
    std::fs::write(&healthy, pairs(0.01)).unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, pairs(0.2)).unwrap();

    let o = judge(&config, &healthy, &["--json"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["classification"], "Pass");
    assert_eq!(r["score"], 100.0);
    assert_eq!(
        r["metrics"][1]["samples"],
        serde_json::json!([30, 30]),
        "the NaN was removed"
    );
    for key in [
        "name",
        "classification",
        "critical",
        "ci_low",
        "ci_high",
        "estimate",
        "ratio",
        "reason",
    ] {
        assert!(r["metrics"][0].get(key).is_some(), "{key} missing: {r}");
    }
    for key in ["name", "score", "no_data"] {
        assert!(r["groups"][0].get(key).is_some(), "{key} missing: {r}");
    }

    let o = judge(&config, &bad, &[]);
    assert_eq!(o.status.code(), Some(3));
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(text.starts_with("Fail: score 0"), "{text}");
    assert!(text.contains("✗ error_rate: High (critical)"), "{text}");
    assert!(
        text.contains("Critical metric \"error_rate\" was classified as High"),
        "{text}"
    );
}

#[test]
fn judge_names_bad_input_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.json");
    std::fs::write(&config, CONFIG.replace("60", "-60")).unwrap();
    let pairs_file = dir.path().join("pairs.json");
    std::fs::write(&pairs_file, pairs(0.01)).unwrap();
    let o = judge(&config, &pairs_file, &[]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(
        err.contains("config.json:")
            && err.contains("classifier.groupWeights.errors")
            && err.contains("-60"),
        "{err}"
    );

    std::fs::write(&config, CONFIG).unwrap();
    std::fs::write(
        &pairs_file,
        r#"[{"name": "error_rate", "values": {"control": [1, {"x": 1}]}}]"#,
    )
    .unwrap();
    let o = judge(&config, &pairs_file, &[]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(
        err.contains("pairs.json:1:") && err.contains("[0].values.control"),
        "{err}"
    );
}

/// `flightdeck release judge --serve 127.0.0.1:0 --config CONFIG ARGS`,
/// and the address it listens on.
pub(crate) fn spawn_judge(
    config: &std::path::Path,
    args: &[&str],
) -> (std::process::Child, std::net::SocketAddr) {
    use std::io::{BufRead, BufReader};
    let mut child = flightdeck()
        .args(["release", "judge", "--serve", "127.0.0.1:0", "--config"])
        .arg(config)
        .args(args)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let line = lines.next().unwrap().unwrap();
    let addr = line
        .strip_prefix("judging on http://")
        .and_then(|r| r.split('/').next())
        .unwrap()
        .parse()
        .unwrap();
    (child, addr)
}

#[test]
fn judge_serve_answers_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.json");
    std::fs::write(&config, CONFIG).unwrap();
    let (mut child, addr) = spawn_judge(&config, &[]);
    let post = |body: &str| {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(10)))
            .http_status_as_error(false)
            .build()
            .new_agent();
        let mut r = agent
            .post(&format!("http://{addr}/judge"))
            .content_type("application/json")
            .send(body)
            .unwrap();
        (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
    };
    let (status, body) = post(&pairs(0.2));
    assert_eq!(status, 200, "{body}");
    let r: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(r["classification"], "Fail");
    // A config in the body replaces the one given at start.
    let with_config = format!(
        r#"{{"config": {}, "pairs": {}}}"#,
        CONFIG.replace("\"critical\": true", "\"critical\": false"),
        pairs(0.2)
    );
    let (status, body) = post(&with_config);
    assert_eq!(status, 200, "{body}");
    let r: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(r["score"], 40.0, "{r}");
    assert_eq!(r["classification"], "Fail");
    let (status, body) = post("{not json");
    assert_eq!(status, 400, "{body}");
    let _ = child.kill();
    let _ = child.wait();
}

/// `release manifests --name N --image IMG --out DIR`: the files for a
/// cluster, with the version taken from the image's tag; a bad name is
/// bad input.
#[test]
fn manifests_are_written_for_a_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("k8s");
    let o = flightdeck()
        .args([
            "release",
            "manifests",
            "--name",
            "rag",
            "--image",
            "ghcr.io/acme/rag:1.1.0",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    for f in [
        "rollout.yaml",
        "services.yaml",
        "analysis-template.yaml",
        "deployment.yaml",
    ] {
        assert!(out.join(f).exists(), "{f}");
    }
    let rollout = std::fs::read_to_string(out.join("rollout.yaml")).unwrap();
    assert!(
        rollout.contains("kind: Rollout") && rollout.contains("setWeight: 25"),
        "{rollout}"
    );
    assert!(
        rollout.contains("- 1.1.0"),
        "the build version is the image's tag: {rollout}"
    );
    let template = std::fs::read_to_string(out.join("analysis-template.yaml")).unwrap();
    for metric in ["error-ratio", "latency-p99", "judge"] {
        assert!(template.contains(&format!("name: {metric}")), "{template}");
    }
    assert!(template.contains("/analyze?baseline="), "{template}");
    let o = flightdeck()
        .args([
            "release",
            "manifests",
            "--name",
            "Bad Name",
            "--image",
            "x:1",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--name \"Bad Name\""));
}

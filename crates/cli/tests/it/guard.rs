//! Guarded flag rollouts for real: a running `flightdeck serve` watching a
//! flags file, `flightdeck load` against it, and `flightdeck release guard`
//! ramping the flag. A healthy flag reaches 100 %; a fault on the flag-on
//! path only is caught and the flag killed, the flag-off path untouched.

use std::path::Path;
use std::process::{Child, Stdio};

use serde_json::Value;

use crate::flightdeck;
use crate::service::{Server, TOKEN, request};

const FLAG: &str = "new_chunking_strategy";

fn flags_file(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("flags.yaml");
    std::fs::write(
        &path,
        format!("flags:\n  - id: {FLAG}\n    description: semantic chunking\n    rollout_percentage: 0\n"),
    )
    .unwrap();
    path
}

fn load(server: &Server) -> Child {
    flightdeck()
        .args([
            "load",
            "--rps",
            "150",
            "--concurrency",
            "16",
            "--duration",
            "120s",
            "--target",
        ])
        .arg(format!("http://{}/v1/answer", server.addr))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn guard(flags: &Path, server: &Server, extra: &[&str]) -> std::process::Output {
    flightdeck()
        .args([
            "release",
            "guard",
            "--flag",
            FLAG,
            "--interval",
            "500ms",
            "--bake",
            "2s",
            "--min-requests",
            "10",
            "--json",
            "--flags",
        ])
        .arg(flags)
        .arg("--service")
        .arg(format!("http://{}", server.addr))
        .args(extra)
        .output()
        .unwrap()
}

fn cohort_failures(server: &Server, cohort: &str) -> f64 {
    let (_, _, page) = request(server.addr, "GET", "/metrics", &[], "");
    page.lines()
        .filter(|l| {
            l.starts_with("flightdeck_flag_cohort_requests_total{")
                && l.contains(&format!("cohort=\"{cohort}\""))
                && l.contains("outcome=\"error\"")
        })
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

#[test]
fn a_healthy_flag_is_ramped_to_100_and_a_regression_behind_it_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let flags = flags_file(dir.path());
    let server = Server::start(&["--flags", flags.to_str().unwrap()]);
    let mut traffic = load(&server);

    // Healthy: 5 → 25 → 50 → 100 and the flag stays alive.
    let o = guard(&flags, &server, &["--steps", "5,25,50,100"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let s: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(s["phase"], "Succeeded", "{s}");
    let text = std::fs::read_to_string(&flags).unwrap();
    assert!(text.contains("rollout_percentage: 100"), "{text}");

    // A regression on the flag-on path only, from the first step.
    std::fs::write(
        &flags,
        std::fs::read_to_string(&flags)
            .unwrap()
            .replace("rollout_percentage: 100", "rollout_percentage: 0"),
    )
    .unwrap();
    let (status, _, body) = request(
        server.addr,
        "POST",
        "/admin/faults",
        &[
            ("authorization", &format!("Bearer {TOKEN}")),
            ("content-type", "application/json"),
        ],
        r#"{"flag_on_error_rate": 0.5}"#,
    );
    assert_eq!(status, 200, "{body}");
    let off_before = cohort_failures(&server, "off");
    let state = dir.path().join("second");
    let o = guard(&flags, &server, &["--state", state.to_str().unwrap()]);
    assert_eq!(
        o.status.code(),
        Some(3),
        "killed is a finding: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let s: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(s["phase"], "RolledBack", "{s}");
    assert!(
        s["reason"].as_str().unwrap().contains("flag-on cohort"),
        "the ledger says why: {s}"
    );
    // The kill switch is set beside the flags file, so every process
    // watching it serves flag-off now; the flag-off path never failed.
    let kills: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("flags.yaml.kills.json")).unwrap(),
    )
    .unwrap();
    assert!(kills.get(FLAG).is_some(), "{kills}");
    assert_eq!(cohort_failures(&server, "off"), off_before);
    // The ledger has the failing analysis with the judge's report.
    let o = flightdeck()
        .args(["release", "history", "--json", "--state"])
        .arg(&state)
        .output()
        .unwrap();
    let entries: Vec<Value> = String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let failed = entries
        .iter()
        .find(|e| e["kind"] == "analysis" && e["detail"]["outcome"] == "fail")
        .expect("a failed analysis");
    assert!(
        failed["detail"]["analysis"]["cohorts"]["on"]["failed"]
            .as_f64()
            .unwrap()
            > 0.0,
        "{failed}"
    );
    let _ = traffic.kill();
    let _ = traffic.wait();
    server.stop();
}

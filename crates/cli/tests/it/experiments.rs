//! `flightdeck experiments`: assignments that match GrowthBook's suite, SRM
//! checks with a distinct exit code, and bad files named precisely.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

use crate::{flightdeck, run_ok};

fn suite_run_cases() -> Vec<Value> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../experiments/tests/fixtures/cases.json");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v["run"].as_array().unwrap().clone()
}

#[test]
fn assign_agrees_with_the_suite() {
    let dir = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for case in suite_run_cases() {
        let name = case[0].as_str().unwrap();
        let exp = &case[2];
        // The CLI loads files strictly: a case whose experiment a strict
        // loader rejects on purpose (bad weights, coverage out of range, …)
        // must fail naming the file.
        let file = dir.path().join(format!("exp{checked}.json"));
        std::fs::write(&file, exp.to_string()).unwrap();
        let out = flightdeck()
            .args(["experiments", "assign", "--json", "--experiment"])
            .arg(&file)
            .args(["--context", &case[1].to_string()])
            .output()
            .unwrap();
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains(&file.display().to_string()), "{name}: {err}");
            continue;
        }
        let got: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(got["value"], case[3], "{name}");
        assert_eq!(got["in_experiment"], case[4], "{name}");
        assert_eq!(got["hash_used"], case[5], "{name}");
        checked += 1;
    }
    assert!(
        checked >= 50,
        "only {checked} suite cases went through the CLI"
    );
}

fn write_exposures(path: &Path, counts: &[u64]) {
    let mut text = String::new();
    let mut user = 0;
    for (variation, &n) in counts.iter().enumerate() {
        for _ in 0..n {
            user += 1;
            let _ = writeln!(
                text,
                r#"{{"timestamp_ms":1,"experiment":"e","variation_id":{variation},"variation_key":"{variation}","hash_attribute":"id","hash_value":"u{user}"}}"#
            );
        }
    }
    std::fs::write(path, text).unwrap();
}

#[test]
fn srm_exits_3_on_a_mismatch_and_0_on_a_good_split() {
    let dir = tempfile::tempdir().unwrap();
    let exp = dir.path().join("e.json");
    std::fs::write(
        &exp,
        r#"{"key": "e", "variations": [0, 1], "weights": [0.2, 0.8]}"#,
    )
    .unwrap();
    let good = dir.path().join("good.jsonl");
    write_exposures(&good, &[2_010, 7_990]);
    let out = run_ok(
        flightdeck()
            .args(["experiments", "srm", "--exposures"])
            .arg(&good)
            .arg("--experiment")
            .arg(&exp),
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("no sample ratio mismatch"));

    let bad = dir.path().join("bad.jsonl");
    write_exposures(&bad, &[2_500, 7_500]);
    let out = flightdeck()
        .args(["experiments", "srm", "--json", "--exposures"])
        .arg(&bad)
        .arg("--experiment")
        .arg(&exp)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["mismatch"], true);
    assert_eq!(v["observed"], serde_json::json!([2500, 7500]));
    assert!(v["test"]["p_value"].as_f64().unwrap() < 1e-6);
}

#[test]
fn bad_experiment_files_name_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let exp = dir.path().join("e.json");
    std::fs::write(
        &exp,
        "{\n  \"key\": \"e\",\n  \"variations\": [0, 1],\n  \"weights\": [0.5, \"half\"]\n}\n",
    )
    .unwrap();
    let out = flightdeck()
        .args(["experiments", "assign", "--context", "{}", "--experiment"])
        .arg(&exp)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{}:4:", exp.display())), "{err}");
    assert!(err.contains("weights[1]"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");

    let out = flightdeck()
        .args([
            "experiments",
            "srm",
            "--exposures",
            "/nonexistent.jsonl",
            "--experiment",
        ])
        .arg(&exp)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

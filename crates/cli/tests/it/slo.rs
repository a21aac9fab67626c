//! `flightdeck slo`: rules that promtool accepts, and errors that name the file and field.

use std::path::Path;

use crate::{flightdeck, run_ok, tool};

fn sloth(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../slo/tests/fixtures/sloth")
        .join(name)
        .display()
        .to_string()
}

#[test]
fn rules_are_written_atomically_and_pass_promtool() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("rules.yml");
    run_ok(
        flightdeck()
            .args([
                "slo",
                "rules",
                "--spec",
                &sloth("example-getting-started.in.yml"),
                "--out",
            ])
            .arg(&out),
    );
    let check = tool("promtool")
        .arg("check")
        .arg("rules")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
    assert!(
        String::from_utf8_lossy(&check.stdout).contains("SUCCESS: 17 rules found"),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );

    let stdout = run_ok(flightdeck().args([
        "slo",
        "rules",
        "--spec",
        &sloth("in-base.yaml"),
        "--windows",
        &sloth("windows/7d.yaml"),
    ]))
    .stdout;
    assert!(
        String::from_utf8(stdout)
            .unwrap()
            .contains("slo:sli_error:ratio_rate1w")
    );
    run_ok(flightdeck().args(["slo", "validate", &sloth("in-openslo.yaml")]));
}

#[test]
fn bad_specs_fail_with_one_line_naming_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    let text = std::fs::read_to_string(sloth("in-base.yaml"))
        .unwrap()
        .replace("objective: 99.9", "objective: 150");
    std::fs::write(&bad, text).unwrap();
    for args in [
        vec!["slo", "validate", bad.to_str().unwrap()],
        vec!["slo", "rules", "--spec", bad.to_str().unwrap()],
    ] {
        let out = flightdeck().args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains("bad.yaml:7:5: slos[0].objective: 150 is not within (0, 100]"),
            "{stderr}"
        );
    }
    let out = flightdeck()
        .args([
            "slo",
            "rules",
            "--spec",
            &sloth("in-base.yaml"),
            "--period",
            "7d",
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("1w has no built-in alert windows"));
    let out = flightdeck()
        .args([
            "slo",
            "rules",
            "--spec",
            &sloth("in-base.yaml"),
            "--period",
            "7x",
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("--period: \"7x\""));
}

#[test]
fn openslo_v1_files_get_every_problem_on_its_own_line() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../slo/tests/fixtures/openslo/oslo-validate/v1.input.yaml");
    let out = flightdeck()
        .args(["slo", "validate"])
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 3, "{stderr}");
    assert!(
        lines[0]
            .contains("v1.input.yaml: document 0 (SLO 'web-availability'): spec.objectives[0].op"),
        "{stderr}"
    );
    assert!(
        lines[1].contains("document 2 (Service 'example service'): metadata.name"),
        "{stderr}"
    );
    assert!(lines[2].contains("2 problem(s)"), "{stderr}");
    let ok = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../slo/tests/fixtures/openslo/occurrences-threshold-rolling-slo.yaml");
    run_ok(flightdeck().args(["slo", "validate"]).arg(&ok));
}

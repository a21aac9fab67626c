//! Conformance with Sloth v0.16's own expected outputs, plus promtool.

use std::path::{Path, PathBuf};
use std::process::Command;

use flightdeck_slo::{AlertWindows, GenerateOptions, PromDuration, SloSpec, generate};
use serde_norway::Value;

const SLOTH_VERSION: &str = "v0.16.0";

fn fixture(name: &str) -> (String, PathBuf) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/sloth")
        .join(name);
    (
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
        path,
    )
}

/// Renders Sloth's Go-template fixtures: `{{ .version }}`, and `{{"…"}}` escapes.
fn render(tpl: &str, version: &str) -> String {
    let mut s = tpl.replace("{{ .version }}", version);
    while let Some(start) = s.find("{{\"") {
        let end = s[start..]
            .find("\"}}")
            .map(|e| start + e)
            .expect("a closed escape");
        let inner = s[start + 3..end].to_owned();
        s.replace_range(start..end + 3, &inner);
    }
    s
}

fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Compares two rule files: group and rule order, names, labels and
/// annotations exactly; PromQL with whitespace collapsed (go-yaml folds
/// long scalars, so line breaks differ).
fn assert_same_rules(ours: &Value, theirs: &Value, case: &str) {
    let g1 = ours["groups"].as_sequence().unwrap();
    let g2 = theirs["groups"].as_sequence().unwrap();
    let names = |g: &Vec<Value>| {
        g.iter()
            .map(|x| x["name"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(g1), names(g2), "{case}: group names");
    for (a, b) in g1.iter().zip(g2) {
        let group = a["name"].as_str().unwrap();
        let (r1, r2) = (
            a["rules"].as_sequence().unwrap(),
            b["rules"].as_sequence().unwrap(),
        );
        assert_eq!(r1.len(), r2.len(), "{case}/{group}: rule count");
        for (i, (x, y)) in r1.iter().zip(r2).enumerate() {
            let at = format!("{case}/{group}/rule {i}");
            assert_eq!(x.get("record"), y.get("record"), "{at}: record");
            assert_eq!(x.get("alert"), y.get("alert"), "{at}: alert");
            assert_eq!(x.get("labels"), y.get("labels"), "{at}: labels");
            assert_eq!(
                x.get("annotations"),
                y.get("annotations"),
                "{at}: annotations"
            );
            assert_eq!(x.get("for"), y.get("for"), "{at}: for");
            assert_eq!(
                collapse(x["expr"].as_str().unwrap()),
                collapse(y["expr"].as_str().unwrap()),
                "{at}: expr"
            );
        }
    }
}

fn promtool_check(yaml: &str, case: &str) {
    let ok = Command::new("promtool")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "promtool is not installed; run `cargo xtask install-test-deps`"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(format!("{case}.rules.yml"));
    std::fs::write(&file, yaml).unwrap();
    let out = Command::new("promtool")
        .arg("check")
        .arg("rules")
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool check rules {case}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn check(case: &str, input: &str, expected: &str, version: &str, options: GenerateOptions) {
    let (text, path) = fixture(input);
    let spec = SloSpec::from_yaml(&text, &path.display().to_string()).unwrap();
    let ours = generate(&spec, &options.with_version(version))
        .unwrap()
        .to_yaml();
    let theirs = render(&fixture(expected).0, version);
    let ours_v: Value = serde_norway::from_str(&ours).unwrap();
    let theirs_v: Value = serde_norway::from_str(
        theirs
            .trim_start_matches("\n---\n")
            .trim_start_matches("---\n"),
    )
    .unwrap();
    assert_same_rules(&ours_v, &theirs_v, case);
    promtool_check(&ours, case);
}

#[test]
fn base_30d_matches_sloth() {
    check(
        "base-30d",
        "in-base.yaml",
        "out-base.yaml.tpl",
        SLOTH_VERSION,
        GenerateOptions::new(),
    );
}

#[test]
fn base_28d_matches_sloth() {
    let opts = GenerateOptions::new().with_period(PromDuration::parse("28d").unwrap());
    check(
        "base-28d",
        "in-base.yaml",
        "out-base-28d.yaml.tpl",
        SLOTH_VERSION,
        opts,
    );
}

#[test]
fn custom_7d_windows_match_sloth() {
    let (text, path) = fixture("windows/7d.yaml");
    let windows = AlertWindows::from_yaml(&text, &path.display().to_string()).unwrap();
    let opts = GenerateOptions::new().with_windows(windows);
    check(
        "custom-7d",
        "in-base.yaml",
        "out-base-custom-windows-7d.yaml.tpl",
        SLOTH_VERSION,
        opts,
    );
}

#[test]
fn openslo_input_matches_sloth() {
    check(
        "openslo",
        "in-openslo.yaml",
        "out-openslo.yaml.tpl",
        SLOTH_VERSION,
        GenerateOptions::new(),
    );
}

#[test]
fn getting_started_example_matches_sloth() {
    let opts = GenerateOptions::new().with_label("cmd", "examplesgen.sh");
    check(
        "getting-started",
        "example-getting-started.in.yml",
        "example-getting-started.expected.yml",
        "dev",
        opts,
    );
}

#[test]
fn bad_specs_are_errors_with_file_and_field() {
    let (base, _) = fixture("in-base.yaml");
    let cases = [
        (
            base.replace("objective: 99.9", "objective: 150"),
            "slos[0].objective: 150 is not within (0, 100]",
        ),
        (
            base.replace("version: \"prometheus/v1\"", "version: \"prometheus/v9\""),
            "version: \"prometheus/v9\"",
        ),
        (
            base.replace("name: myServiceAlert", "name: \"bad alert!\""),
            "slos[0].alerting.name",
        ),
        (
            base.replace(
                "[{{.window}}]))\n        total_query",
                "[5m]))\n        total_query",
            ),
            "slos[0].sli.events.error_query",
        ),
        (
            base.replace("  - name: \"slo1\"", "  - nmae: \"slo1\""),
            "unknown field `nmae`",
        ),
        ("version: [unclosed".to_owned(), "spec.yaml"),
    ];
    for (text, needle) in cases {
        let err = SloSpec::from_yaml(&text, "spec.yaml")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("spec.yaml"), "{err}");
        assert!(err.contains(needle), "expected {needle:?} in {err}");
    }
    let spec = SloSpec::from_yaml(&base, "spec.yaml").unwrap();
    let err = generate(
        &spec,
        &GenerateOptions::new().with_period(PromDuration::parse("7d").unwrap()),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("1w has no built-in alert windows"),
        "{err}"
    );
}

#[test]
fn the_comparison_catches_a_wrong_period() {
    // Guards the guard: 28d rules must not pass as Sloth's 30d output.
    let result = std::panic::catch_unwind(|| {
        let opts = GenerateOptions::new().with_period(PromDuration::parse("28d").unwrap());
        check(
            "mismatch",
            "in-base.yaml",
            "out-base.yaml.tpl",
            SLOTH_VERSION,
            opts,
        );
    });
    let message = *result
        .expect_err("28d rules must differ from Sloth's 30d output")
        .downcast::<String>()
        .unwrap();
    assert!(
        message.contains("ratio_rate4w") || message.contains("13.44"),
        "{message}"
    );
}

#[test]
fn generated_promtool_tests_pass_for_every_fixture() {
    let windows_7d = {
        let (text, path) = fixture("windows/7d.yaml");
        AlertWindows::from_yaml(&text, &path.display().to_string()).unwrap()
    };
    let cases = [
        ("in-base.yaml", GenerateOptions::new()),
        (
            "in-base.yaml",
            GenerateOptions::new().with_period(PromDuration::parse("28d").unwrap()),
        ),
        (
            "in-base.yaml",
            GenerateOptions::new().with_windows(windows_7d),
        ),
        ("example-getting-started.in.yml", GenerateOptions::new()),
    ];
    for (i, (input, opts)) in cases.into_iter().enumerate() {
        let (text, path) = fixture(input);
        let spec = SloSpec::from_yaml(&text, &path.display().to_string()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("rules.yml"),
            generate(&spec, &opts).unwrap().to_yaml(),
        )
        .unwrap();
        let tests = flightdeck_slo::promtool_tests(&spec, &opts, "rules.yml").unwrap();
        assert!(
            tests.contains("burn fires every alert") && tests.contains("0.5x burn stays quiet"),
            "{tests}"
        );
        std::fs::write(dir.path().join("rules.test.yml"), &tests).unwrap();
        let out = Command::new("promtool")
            .args(["test", "rules", "rules.test.yml"])
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "case {i} ({input}): promtool test rules failed:\n{}{}\n{tests}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn generated_promtool_tests_fail_when_the_alert_is_wrong() {
    // Guards the guard: break the page threshold and promtool must notice.
    let (text, path) = fixture("example-getting-started.in.yml");
    let spec = SloSpec::from_yaml(&text, &path.display().to_string()).unwrap();
    let opts = GenerateOptions::new();
    let dir = tempfile::tempdir().unwrap();
    let rules = generate(&spec, &opts)
        .unwrap()
        .to_yaml()
        .replace("(14.4 * ", "(40 * ")
        .replace("(6 * ", "(40 * ");
    std::fs::write(dir.path().join("rules.yml"), rules).unwrap();
    std::fs::write(
        dir.path().join("rules.test.yml"),
        flightdeck_slo::promtool_tests(&spec, &opts, "rules.yml").unwrap(),
    )
    .unwrap();
    let out = Command::new("promtool")
        .args(["test", "rules", "rules.test.yml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "a broken page threshold must fail the generated tests"
    );
}

#[test]
fn alerts_that_can_never_fire_are_reported() {
    let (base, _) = fixture("in-base.yaml");
    // slo02 (95%) has its alerts disabled; make slo1 loose: 14.4 x 10% = 144%.
    let loose = base.replace("objective: 99.9", "objective: 90");
    let spec = SloSpec::from_yaml(&loose, "loose.yaml").unwrap();
    let found = flightdeck_slo::unreachable_alerts(&spec, &GenerateOptions::new()).unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!((found[0].0.as_str(), found[0].1), ("slo1", "page_quick"));
    assert!((found[0].2 - 1.44).abs() < 1e-9);
    let strict = SloSpec::from_yaml(&base, "base.yaml").unwrap();
    assert!(
        flightdeck_slo::unreachable_alerts(&strict, &GenerateOptions::new())
            .unwrap()
            .is_empty()
    );
}

#[test]
fn an_openslo_v1_slo_generates_the_same_rules_as_its_v1alpha_twin() {
    // The v1 form of Sloth's v1alpha fixture: same service, name, queries, target and window.
    let v1 = r#"apiVersion: openslo/v1
kind: SLO
metadata:
  name: slo1
  displayName: Integration test SLO1
spec:
  service: svc01
  description: "this is SLO1."
  indicator:
    metadata:
      name: slo1-ratio
    spec:
      ratioMetric:
        counter: true
        good:
          metricSource:
            type: Prometheus
            spec:
              query: sum(rate(http_request_duration_seconds_count{job="myservice",code!~"(5..|429)"}[{{.window}}]))
        total:
          metricSource:
            type: Prometheus
            spec:
              query: sum(rate(http_request_duration_seconds_count{job="myservice"}[{{.window}}]))
  timeWindow:
    - duration: 30d
      isRolling: true
  budgetingMethod: Occurrences
  objectives:
    - displayName: availability
      target: 0.999
"#;
    let spec = SloSpec::from_yaml(v1, "v1.yaml").unwrap();
    let ours = generate(&spec, &GenerateOptions::new().with_version(SLOTH_VERSION))
        .unwrap()
        .to_yaml();
    let ours_v: Value = serde_norway::from_str(&ours).unwrap();
    // Only the spec label differs from Sloth's v1alpha output.
    let theirs = render(&fixture("out-openslo.yaml.tpl").0, SLOTH_VERSION)
        .replace("openslo/v1alpha", "openslo/v1");
    let theirs_v: Value = serde_norway::from_str(theirs.trim_start_matches("\n---\n")).unwrap();
    assert_same_rules(&ours_v, &theirs_v, "openslo-v1");
    promtool_check(&ours, "openslo-v1");

    let broken = v1.replace(
        "    - duration: 30d\n      isRolling: true",
        "    - duration: 30d\n      isRolling: false",
    );
    let err = SloSpec::from_yaml(&broken, "v1.yaml")
        .unwrap_err()
        .to_string();
    assert!(err.contains("spec.timeWindow[0].calendar"), "{err}");
    let op = v1.replace("      target: 0.999", "      op: gt\n      target: 0.999");
    let err = SloSpec::from_yaml(&op, "v1.yaml").unwrap_err().to_string();
    assert!(err.contains("spec.objectives[0].op"), "{err}");
}

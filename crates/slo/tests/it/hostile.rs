//! Specs that used to pass validation and then broke promtool or PromQL,
//! and specs that used to hang or crash the parser.

use flightdeck_slo::SloSpec;

const SLO: &str = "  - name: NAME\n    objective: 99.9\n    sli:\n      events:\n        error_query: sum(rate(e[{{.window}}]))\n        total_query: sum(rate(t[{{.window}}]))\n    alerting:\n      name: Alert\n";

fn spec(service: &str, names: &[&str]) -> String {
    let mut text = format!("version: prometheus/v1\nservice: {service}\nslos:\n");
    for n in names {
        text.push_str(&SLO.replace("NAME", n));
    }
    text
}

#[test]
fn two_slos_of_one_name_are_refused() {
    let err = SloSpec::from_yaml(&spec("rag", &["avail", "latency", "avail"]), "s.yaml")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("slos[2].name") && err.contains("unique"),
        "{err}"
    );
}

#[test]
fn a_service_that_would_break_promql_or_the_file_is_refused() {
    for service in [r#"'svc", evil="1'"#, "'a\\nb'", "\"x}\""] {
        let err = SloSpec::from_yaml(&spec(service, &["avail"]), "s.yaml")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("service") && err.contains("must match"),
            "{service}: {err}"
        );
        assert!(!err.contains('\n'), "one line: {err}");
    }
    assert!(SloSpec::from_yaml(&spec("rag-api.v2", &["avail"]), "s.yaml").is_ok());
}

#[test]
fn deep_nesting_is_refused_before_the_parser_sees_it() {
    let text = format!("version: {}{}\n", "[".repeat(50_000), "]".repeat(50_000));
    let err = SloSpec::from_yaml(&text, "s.yaml").unwrap_err().to_string();
    assert!(
        err.contains("nested deeper than 128 levels at line 1"),
        "{err}"
    );
    let windows = format!("apiVersion: {}\n", "{a: ".repeat(5_000));
    let err = flightdeck_slo::AlertWindows::from_yaml(&windows, "w.yaml")
        .unwrap_err()
        .to_string();
    assert!(err.contains("nested deeper"), "{err}");
    let err = flightdeck_slo::validate_openslo(&format!("- {}", "- ".repeat(10_000))).unwrap_err();
    assert!(err.contains("nested deeper"), "{err}");
}

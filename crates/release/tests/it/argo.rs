//! Argo Rollouts' `assessMetricStatus` table: 28 cases, 54 assertions.

use flightdeck_release::analysis::{Measurement, MetricResult, MetricSpec, Phase, assess_metric};
use serde_json::Value;

use crate::fixture;

fn phase(s: &str) -> Phase {
    match s {
        "Pending" => Phase::Pending,
        "Running" => Phase::Running,
        "Successful" => Phase::Successful,
        "Failed" => Phase::Failed,
        "Error" => Phase::Error,
        "Inconclusive" => Phase::Inconclusive,
        other => panic!("unknown phase {other}"),
    }
}

#[test]
fn all_54_argo_assessments_match() {
    let doc: Value =
        serde_json::from_str(&fixture("argo-rollouts/assess-metric-status-cases.json")).unwrap();
    let cases = doc["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 28);
    let mut assertions = 0;
    for c in cases {
        let name = c["name"].as_str().unwrap();
        let m = &c["metric"];
        let mut spec = MetricSpec::new("m");
        if let Some(i) = m["interval"].as_str() {
            spec.interval = Some(flightdeck_release::duration::parse(i).unwrap());
        }
        spec.count = m["count"].as_u64().map(|c| u32::try_from(c).unwrap());
        let int = |k: &str, default: i64| m[k].as_i64().unwrap_or(default);
        spec.failure_limit = int("failureLimit", 0);
        spec.inconclusive_limit = int("inconclusiveLimit", 0);
        spec.consecutive_error_limit = int("consecutiveErrorLimit", 4);
        spec.consecutive_success_limit = int("consecutiveSuccessLimit", 0);
        let r = &c["result"];
        let get = |k: &str| r[k].as_i64().unwrap_or(0);
        let count = get("count");
        let taken = r["measurements"].as_i64().unwrap_or(count);
        let last = c["last_measurement_phase"].as_str().map(phase);
        let measurements = (0..taken)
            .map(|i| Measurement {
                phase: if i == taken - 1 {
                    last.unwrap_or(Phase::Successful)
                } else {
                    Phase::Successful
                },
                value: None,
                message: None,
                finished_ms: 0,
            })
            .collect();
        let result = MetricResult {
            name: "m".into(),
            measurements,
            count,
            successful: get("successful"),
            failed: get("failed"),
            inconclusive: get("inconclusive"),
            error: get("error"),
            consecutive_error: get("consecutiveError"),
            consecutive_success: get("consecutiveSuccess"),
            phase: None,
            message: None,
        };
        for (key, expected) in c["expected"].as_object().unwrap() {
            let terminating = key == "terminating=true";
            let (got, message) = assess_metric(&spec, &result, terminating);
            assert_eq!(got, phase(expected.as_str().unwrap()), "{name} ({key})");
            if got == Phase::Failed && spec.failure_limit >= 0 && result.failed > spec.failure_limit
            {
                assert_eq!(
                    message.as_deref(),
                    Some(
                        format!(
                            "Metric \"m\" assessed Failed due to failed ({}) > failureLimit ({})",
                            result.failed, spec.failure_limit
                        )
                        .as_str()
                    ),
                    "{name}"
                );
            }
            assertions += 1;
        }
    }
    assert_eq!(assertions, 54);
}

/// Argo's example AnalysisTemplates read as they are (several documents,
/// job providers run locally, web with a JSONPath and inconclusiveLimit).
#[test]
fn argo_example_templates_read() {
    use flightdeck_release::provider::Provider;
    use std::collections::BTreeMap;
    let ms = flightdeck_release::spec::analysis_template(
        &fixture("argo-rollouts/analysis-templates.yaml"),
        "analysis-templates.yaml",
        &BTreeMap::new(),
    )
    .unwrap();
    let names: Vec<&str> = ms.iter().map(|m| m.spec.name.as_str()).collect();
    assert_eq!(names, ["pass", "random-fail"]);
    assert_eq!((ms[1].spec.count, ms[1].spec.failure_limit), (Some(2), 1));
    match &ms[0].provider {
        Provider::Command { argv, .. } => assert_eq!(argv, &["sh", "-c", "exit 0"]),
        other => panic!("{other:?}"),
    }
    let ms = flightdeck_release::spec::analysis_template(
        &fixture("argo-rollouts/analysistemplate-web-background-inconclusive.yaml"),
        "web.yaml",
        &BTreeMap::new(),
    )
    .unwrap();
    assert_eq!(ms[0].spec.inconclusive_limit, 3);
    match &ms[0].provider {
        Provider::Web { url, .. } => assert_eq!(url, "https://dns.google/resolve?name=google.com"),
        other => panic!("{other:?}"),
    }
}

//! `promtool test rules` files that prove each SLO's alerts behave: under a
//! sustained fast burn the page (and ticket) alert fires, and at half the
//! budget rate nothing fires.
//!
//! The SLI queries are the user's own PromQL over metrics this crate cannot
//! know, so the tests feed the recorded `slo:sli_error:ratio_rate<w>` series
//! directly: that exercises exactly the alert layer (windows, factors,
//! thresholds, labels, annotations).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::SpecError;
use crate::rules::{GenerateOptions, RuleFile, generate};
use crate::spec::SloSpec;

#[derive(Serialize)]
struct TestFile {
    rule_files: Vec<String>,
    evaluation_interval: String,
    tests: Vec<TestCase>,
}

#[derive(Serialize)]
struct TestCase {
    name: String,
    interval: String,
    input_series: Vec<InputSeries>,
    alert_rule_test: Vec<AlertTest>,
}

#[derive(Serialize)]
struct InputSeries {
    series: String,
    values: String,
}

#[derive(Serialize)]
struct AlertTest {
    eval_time: String,
    alertname: String,
    exp_alerts: Vec<ExpAlert>,
}

#[derive(Serialize)]
struct ExpAlert {
    exp_labels: BTreeMap<String, String>,
    exp_annotations: BTreeMap<String, String>,
}

fn series_selector(name: &str, labels: &BTreeMap<String, String>) -> String {
    let inner: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    format!("{name}{{{}}}", inner.join(", "))
}

/// Expands the two template variables Sloth's default annotations use.
fn expand(template: &str, labels: &BTreeMap<String, String>) -> String {
    let mut s = template.to_owned();
    for key in ["sloth_service", "sloth_slo"] {
        s = s.replace(
            &format!("{{{{$labels.{key}}}}}"),
            labels.get(key).map_or("", String::as_str),
        );
    }
    s
}

/// The `promtool test rules` file for `spec`, pointing at `rules_file`.
///
/// Per SLO with alerts, two cases: every window's error ratio held at just
/// above the page-quick threshold (a sustained 14.4× burn for 30d windows),
/// where every enabled alert must fire with exactly its labels and
/// annotations; and at 0.5× the budget rate, where none may.
///
/// # Errors
///
/// As [`generate`].
pub fn promtool_tests(
    spec: &SloSpec,
    options: &GenerateOptions,
    rules_file: &str,
) -> Result<String, SpecError> {
    let rules = generate(spec, options)?;
    Ok(render(&rules, rules_file))
}

fn render(rules: &RuleFile, rules_file: &str) -> String {
    let mut tests = Vec::new();
    for g in rules
        .groups
        .iter()
        .filter(|g| g.name.starts_with("sloth-slo-sli-recordings-"))
    {
        let id = &g.name["sloth-slo-sli-recordings-".len()..];
        let Some(alerts) = rules
            .groups
            .iter()
            .find(|a| a.name == format!("sloth-slo-alerts-{id}"))
        else {
            continue;
        };
        let meta = rules
            .groups
            .iter()
            .find(|m| m.name == format!("sloth-slo-meta-recordings-{id}"));
        let budget = meta
            .and_then(|m| {
                m.rules
                    .iter()
                    .find(|r| r.record.as_deref() == Some("slo:error_budget:ratio"))
            })
            .and_then(|r| {
                r.expr
                    .strip_prefix("vector(1-")?
                    .strip_suffix(')')?
                    .parse::<f64>()
                    .ok()
            })
            .map_or(0.001, |objective| 1.0 - objective);
        // The page-quick factor is the largest threshold; read it from the alert.
        let page = &alerts.rules[0];
        let factor = page
            .expr
            .split("> (")
            .nth(1)
            .and_then(|s| s.split(" * ").next())
            .and_then(|s| s.parse::<f64>().ok())
            .unwrap_or(14.4);
        let base: BTreeMap<String, String> = g.rules[0]
            .labels
            .iter()
            .filter(|(k, _)| k.as_str() != "sloth_window")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let input = |burn: f64| -> Vec<InputSeries> {
            g.rules
                .iter()
                .filter_map(|r| Some((r.record.as_ref()?, r)))
                .map(|(name, r)| InputSeries {
                    series: series_selector(name, &r.labels),
                    values: format!("{}x120", burn * budget),
                })
                .collect()
        };
        let name = alerts.rules[0].alert.clone().unwrap_or_default();
        let fire: Vec<ExpAlert> = alerts
            .rules
            .iter()
            .map(|a| {
                let mut labels = base.clone();
                labels.extend(a.labels.clone());
                let annotations = a
                    .annotations
                    .clone()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, expand(&v, &labels)))
                    .collect();
                ExpAlert {
                    exp_labels: labels,
                    exp_annotations: annotations,
                }
            })
            .collect();
        // Just above the strict `>` threshold: the fastest sustained burn that must page.
        let fast = factor * 1.001;
        tests.push(TestCase {
            name: format!("{id}: a sustained {fast}x burn fires every alert"),
            interval: "1m".into(),
            input_series: input(fast),
            alert_rule_test: vec![AlertTest {
                eval_time: "10m".into(),
                alertname: name.clone(),
                exp_alerts: fire,
            }],
        });
        tests.push(TestCase {
            name: format!("{id}: a 0.5x burn stays quiet"),
            interval: "1m".into(),
            input_series: input(0.5),
            alert_rule_test: vec![AlertTest {
                eval_time: "100m".into(),
                alertname: name,
                exp_alerts: vec![],
            }],
        });
    }
    let file = TestFile {
        rule_files: vec![rules_file.to_owned()],
        evaluation_interval: "1m".into(),
        tests,
    };
    serde_norway::to_string(&file).expect("test files are plain maps and strings")
}

//! A Grafana dashboard over the service's Prometheus metrics: the same
//! panels as the built-in `/dashboard` page, for teams that already run
//! Grafana.
//!
//! Every expression uses two Grafana variables: `$job` (the Prometheus job,
//! a regex, `.+` when "All" is chosen) and Grafana's built-in
//! `$__rate_interval`. [`expressions`] lists them for tests that check each
//! one against a real Prometheus.

use serde_json::{Value, json};

use crate::{BUILD_INFO, EXPOSURES_TOTAL};

/// What the generated dashboard is called and where it reads from.
#[derive(Debug, Clone)]
pub struct GrafanaOptions {
    /// The dashboard's title.
    pub title: String,
    /// The dashboard's uid (stable, so re-imports replace it).
    pub uid: String,
    /// The default Prometheus job the `$job` variable selects.
    pub job: String,
}

impl Default for GrafanaOptions {
    fn default() -> Self {
        Self {
            title: "Flightdeck RAG service".into(),
            uid: "flightdeck-rag".into(),
            job: "flightdeck".into(),
        }
    }
}

/// One panel: a title, a kind, a unit and its queries (expression, legend).
struct Panel {
    title: &'static str,
    kind: &'static str,
    unit: &'static str,
    description: &'static str,
    targets: Vec<(String, &'static str)>,
    thresholds: &'static [(Option<f64>, &'static str)],
}

const W: &str = "$__rate_interval";
const JOB: &str = "job=~\"$job\"";

fn panels() -> Vec<Panel> {
    let mut panels = service_panels();
    panels.extend(reliability_panels());
    panels
}

/// Traffic, latency, tokens, cost and quality.
fn service_panels() -> Vec<Panel> {
    let requests = "http_server_requests_total";
    let quantile = |q: &str| {
        format!(
            "histogram_quantile({q}, sum by (le, operation) (rate(flightdeck_operation_duration_seconds_bucket{{{JOB}}}[{W}])))"
        )
    };
    vec![
        Panel {
            title: "Requests per second by route and status class",
            kind: "timeseries",
            unit: "reqps",
            description: "obs-otel's server layer: one series per matched route and status class.",
            targets: vec![(
                format!("sum by (http_route, status_class) (rate({requests}{{{JOB}}}[{W}]))"),
                "{{http_route}} {{status_class}}",
            )],
            thresholds: &[],
        },
        Panel {
            title: "Error ratio by route (5xx)",
            kind: "timeseries",
            unit: "percentunit",
            description: "Share of answers that failed with a 5xx status; 0 when there were none.",
            targets: vec![(
                format!(
                    "(sum by (http_route) (rate({requests}{{{JOB}, status_class=\"5xx\"}}[{W}])) or sum by (http_route) (rate({requests}{{{JOB}}}[{W}])) * 0) / sum by (http_route) (rate({requests}{{{JOB}}}[{W}]))"
                ),
                "{{http_route}}",
            )],
            thresholds: &[],
        },
        Panel {
            title: "Latency per RAG stage (p50 / p95 / p99)",
            kind: "timeseries",
            unit: "s",
            description: "From flightdeck_operation_duration_seconds: embed, retrieve, rerank, generate, guardrails.",
            targets: vec![
                (quantile("0.5"), "p50 {{operation}}"),
                (quantile("0.95"), "p95 {{operation}}"),
                (quantile("0.99"), "p99 {{operation}}"),
            ],
            thresholds: &[],
        },
        Panel {
            title: "Tokens per second by model",
            kind: "timeseries",
            unit: "short",
            description: "Input and output tokens of every LLM call.",
            targets: vec![(
                format!(
                    "sum by (model, token_type) (rate(flightdeck_llm_tokens_total{{{JOB}}}[{W}]))"
                ),
                "{{model}} {{token_type}}",
            )],
            thresholds: &[],
        },
        Panel {
            title: "Cost per hour (USD)",
            kind: "timeseries",
            unit: "currencyUSD",
            description: "LLM cost at the current rate, from the micro-dollar counter.",
            targets: vec![(
                format!(
                    "sum by (model) (rate(flightdeck_llm_cost_usd_micros_total{{{JOB}}}[{W}])) * 3600 / 1e6"
                ),
                "{{model}}",
            )],
            thresholds: &[],
        },
        Panel {
            title: "Quality: mean relevance",
            kind: "timeseries",
            unit: "percentunit",
            description: "Mean relevance score of the answers.",
            targets: vec![(
                format!(
                    "sum(rate(flightdeck_relevance_score_sum{{{JOB}}}[{W}])) / sum(rate(flightdeck_relevance_score_count{{{JOB}}}[{W}]))"
                ),
                "relevance",
            )],
            thresholds: &[],
        },
    ]
}

/// SLO budgets and burn rates, the experiment, flags, faults and versions.
fn reliability_panels() -> Vec<Panel> {
    vec![
        Panel {
            title: "SLO error budget remaining",
            kind: "bargauge",
            unit: "percentunit",
            description: "Per SLO: green above 50 %, amber above 10 %, red below.",
            targets: vec![(
                format!("max by (slo) (flightdeck_slo_error_budget_remaining{{{JOB}}})"),
                "{{slo}}",
            )],
            thresholds: &[(None, "red"), (Some(0.1), "#EAB839"), (Some(0.5), "green")],
        },
        Panel {
            title: "SLO burn rates",
            kind: "timeseries",
            unit: "short",
            description: "Short and long window burn rates per SLO and alert tier (1 = burning the budget exactly over the period).",
            targets: vec![(
                format!("max by (slo, tier, window) (flightdeck_slo_burn_rate{{{JOB}}})"),
                "{{slo}} {{tier}} {{window}}",
            )],
            thresholds: &[(None, "green"), (Some(1.0), "#EAB839"), (Some(6.0), "red")],
        },
        Panel {
            title: "Experiment exposures per arm",
            kind: "bargauge",
            unit: "short",
            description: "Users exposed to each variation (logged once per user).",
            targets: vec![(
                format!("sum by (experiment, variation) ({EXPOSURES_TOTAL}{{{JOB}}})"),
                "{{experiment}} {{variation}}",
            )],
            thresholds: &[],
        },
        Panel {
            title: "Flag evaluations per second",
            kind: "timeseries",
            unit: "ops",
            description: "Per flag and variant; a kill shows as the 'off' variant taking everything.",
            targets: vec![(
                format!(
                    "sum by (flag, variant) (rate(flightdeck_flag_evaluations_total{{{JOB}}}[{W}]))"
                ),
                "{{flag}} {{variant}}",
            )],
            thresholds: &[],
        },
        Panel {
            title: "Active faults",
            kind: "stat",
            unit: "short",
            description: "Injected faults (rehearsals): non-zero means active.",
            targets: vec![(
                format!("max by (fault) (flightdeck_fault_active{{{JOB}}})"),
                "{{fault}}",
            )],
            thresholds: &[(None, "green"), (Some(0.000_001), "red")],
        },
        Panel {
            title: "Versions running",
            kind: "stat",
            unit: "short",
            description: "Instances per build version (stable and canary during a release).",
            targets: vec![(
                format!("count by (version) ({BUILD_INFO}{{{JOB}}})"),
                "{{version}}",
            )],
            thresholds: &[],
        },
    ]
}

/// Every PromQL expression in the dashboard, with Grafana's variables
/// still in place.
pub fn expressions() -> Vec<String> {
    panels()
        .into_iter()
        .flat_map(|p| p.targets.into_iter().map(|(e, _)| e))
        .collect()
}

fn thresholds(steps: &[(Option<f64>, &str)]) -> Value {
    let steps: Vec<Value> = if steps.is_empty() {
        vec![json!({"color": "green", "value": null})]
    } else {
        steps
            .iter()
            .map(|(v, c)| json!({"color": c, "value": v}))
            .collect()
    };
    json!({"mode": "absolute", "steps": steps})
}

/// The dashboard as Grafana's JSON model (schema version 39), ready for
/// "Import dashboard" or provisioning.
pub fn dashboard(options: &GrafanaOptions) -> Value {
    let datasource = json!({"type": "prometheus", "uid": "${datasource}"});
    let panels: Vec<Value> = panels()
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            let id = i + 1;
            let targets: Vec<Value> = p
                .targets
                .iter()
                .enumerate()
                .map(|(k, (expr, legend))| {
                    json!({
                        "datasource": datasource,
                        "expr": expr,
                        "legendFormat": legend,
                        "refId": char::from(b'A' + u8::try_from(k).unwrap_or(25)).to_string(),
                    })
                })
                .collect();
            json!({
                "id": id,
                "type": p.kind,
                "title": p.title,
                "description": p.description,
                "datasource": datasource,
                "gridPos": {"h": 8, "w": 12, "x": (i % 2) * 12, "y": (i / 2) * 8},
                "fieldConfig": {"defaults": {"unit": p.unit, "thresholds": thresholds(p.thresholds)}, "overrides": []},
                "options": {},
                "targets": targets,
            })
        })
        .collect();
    json!({
        "title": options.title,
        "uid": options.uid,
        "schemaVersion": 39,
        "version": 1,
        "editable": true,
        "tags": ["flightdeck", "rag"],
        "time": {"from": "now-1h", "to": "now"},
        "refresh": "10s",
        "timezone": "",
        "templating": {"list": [
            {
                "name": "datasource",
                "label": "Prometheus",
                "type": "datasource",
                "query": "prometheus",
                "current": {},
            },
            {
                "name": "job",
                "label": "Job",
                "type": "query",
                "datasource": datasource,
                "query": {"query": format!("label_values({BUILD_INFO}, job)"), "refId": "job"},
                "definition": format!("label_values({BUILD_INFO}, job)"),
                "includeAll": true,
                "allValue": ".+",
                "multi": false,
                "current": {"text": options.job, "value": options.job},
                "refresh": 2,
            }
        ]},
        "annotations": {"list": []},
        "panels": panels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_target_has_an_expression_and_a_unique_ref_id_within_its_panel() {
        let d = dashboard(&GrafanaOptions::default());
        let panels = d["panels"].as_array().unwrap();
        assert_eq!(panels.len(), 12);
        let mut n = 0;
        for p in panels {
            let targets = p["targets"].as_array().unwrap();
            let refs: std::collections::BTreeSet<&str> = targets
                .iter()
                .map(|t| t["refId"].as_str().unwrap())
                .collect();
            assert_eq!(refs.len(), targets.len());
            for t in targets {
                assert!(t["expr"].as_str().unwrap().contains("$job"));
                n += 1;
            }
        }
        assert_eq!(n, expressions().len());
    }
}

//! Generated Argo Rollouts manifests validate against Argo's own CRD
//! schemas (`openAPIV3Schema`, checked by a small structural validator:
//! types, required fields, known properties, int-or-string).

use std::path::Path;

use flightdeck_release::k8s::{K8sOptions, argo_manifests, default_metrics};
use flightdeck_release::spec::CanarySpec;
use serde_json::Value;

use crate::fixture;

/// Problems of `v` against `schema`, with their paths.
fn validate(v: &Value, schema: &Value, path: &str, out: &mut Vec<String>) {
    if schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true))
        && schema.get("properties").is_none()
    {
        return;
    }
    if schema.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true)) {
        if !(v.is_i64() || v.is_u64() || v.is_string()) {
            out.push(format!("{path}: expected int or string, got {v}"));
        }
        return;
    }
    let ty = schema.get("type").and_then(Value::as_str);
    let ok = match ty {
        Some("object") => v.is_object(),
        Some("array") => v.is_array(),
        Some("string") => v.is_string(),
        Some("integer") => v.is_i64() || v.is_u64(),
        Some("number") => v.is_number(),
        Some("boolean") => v.is_boolean(),
        _ => true,
    };
    if !ok {
        out.push(format!("{path}: expected {}, got {v}", ty.unwrap_or("?")));
        return;
    }
    if let Some(req) = schema.get("required").and_then(Value::as_array) {
        for r in req {
            let r = r.as_str().unwrap();
            if v.get(r).is_none() {
                out.push(format!("{path}: missing required {r}"));
            }
        }
    }
    if let (Some(obj), Some(props)) = (
        v.as_object(),
        schema.get("properties").and_then(Value::as_object),
    ) {
        for (k, x) in obj {
            match props.get(k) {
                Some(s) => validate(x, s, &format!("{path}.{k}"), out),
                None if schema.get("additionalProperties").is_some()
                    || schema.get("x-kubernetes-preserve-unknown-fields").is_some() => {}
                None => out.push(format!("{path}: unknown field {k}")),
            }
        }
    } else if let (Some(obj), Some(ap)) = (v.as_object(), schema.get("additionalProperties"))
        && ap.is_object()
    {
        for (k, x) in obj {
            validate(x, ap, &format!("{path}.{k}"), out);
        }
    }
    if let (Some(arr), Some(items)) = (v.as_array(), schema.get("items")) {
        for (i, x) in arr.iter().enumerate() {
            validate(x, items, &format!("{path}[{i}]"), out);
        }
    }
}

fn crd_schema(file: &str) -> Value {
    let crd: Value = serde_norway::from_str(&fixture(file)).unwrap();
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
}

#[test]
fn generated_rollout_and_analysis_template_validate_against_argo_crds() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("kayenta.json"),
        fixture("kayenta/canary-config.prometheus-cpu.json"),
    )
    .unwrap();
    let spec_text = r#"
name: rag
stableVersion: 1.0.0
canaryVersion: 1.1.0
router:
  haproxy: {socket: /run/haproxy.sock, backend: rag, stable: stable, canary: canary}
analysis:
  interval: 30s
  stepWeights: [5, 25, 100]
  metrics:
    - name: error-rate
      interval: 30s
      failureLimit: 1
      successCondition: len(result) == 0 || result[0] < 0.01
      provider:
        prometheus:
          address: http://prometheus:9090
          query: sum(rate(http_server_requests_total{status_class="5xx"}[1m])) / sum(rate(http_server_requests_total[1m]))
    - name: ready
      successCondition: result == 200
      provider: {probe: {url: 'http://canary/readyz'}}
  judge:
    prometheus: http://prometheus:9090
    config: kayenta.json
    baseline: 'role="stable"'
    canary: 'role="canary"'
"#;
    let path = dir.path().join("canary.yaml");
    std::fs::write(&path, spec_text).unwrap();
    let spec = CanarySpec::from_yaml(spec_text, Path::new(&path)).unwrap();
    let m = argo_manifests(
        &spec.name,
        &spec.canary_version,
        &spec.progression,
        &spec.metrics,
        &K8sOptions::default(),
    )
    .unwrap();
    assert_eq!(
        m.skipped.len(),
        1,
        "the bare probe has no Argo provider: {:?}",
        m.skipped
    );
    let yaml = m.all();
    let docs: Vec<Value> = serde_norway::Deserializer::from_str(&yaml)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect();
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "Rollout",
            "Service",
            "Service",
            "AnalysisTemplate",
            "Deployment",
            "Service"
        ]
    );
    // The plain Deployment has the core shape: selector matching the pod
    // labels, probes, a non-root pod.
    let d = &docs[4];
    assert_eq!(d["apiVersion"], "apps/v1");
    assert_eq!(
        d["spec"]["selector"]["matchLabels"],
        d["spec"]["template"]["metadata"]["labels"]
    );
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["path"],
        "/readyz"
    );
    assert_eq!(
        d["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"],
        true
    );
    // The default metrics render and validate too.
    let defaults = default_metrics(
        "rag",
        "http://prometheus:9090",
        std::time::Duration::from_secs(60),
    )
    .unwrap();
    let dm = argo_manifests(
        "rag",
        "1.1.0",
        &spec.progression,
        &defaults,
        &K8sOptions::default(),
    )
    .unwrap();
    let t: Value = serde_norway::from_str(dm.analysis_template.as_deref().unwrap()).unwrap();
    let mut problems = Vec::new();
    validate(
        &t,
        &crd_schema("argo-rollouts/crds/analysis-template-crd.yaml"),
        "AnalysisTemplate",
        &mut problems,
    );
    assert!(problems.is_empty(), "{problems:#?}");
    assert_eq!(t["spec"]["metrics"][0]["name"], "error-ratio");

    let mut problems = Vec::new();
    validate(
        &docs[0],
        &crd_schema("argo-rollouts/crds/rollout-crd.yaml"),
        "Rollout",
        &mut problems,
    );
    validate(
        &docs[3],
        &crd_schema("argo-rollouts/crds/analysis-template-crd.yaml"),
        "AnalysisTemplate",
        &mut problems,
    );
    assert!(problems.is_empty(), "{problems:#?}\n{yaml}");

    let steps = &docs[0]["spec"]["strategy"]["canary"]["steps"];
    assert_eq!(steps[0]["setWeight"], 5);
    assert_eq!(steps[1]["pause"]["duration"], "30s");
    assert_eq!(steps[2]["setWeight"], 25);
    assert_eq!(steps.as_array().unwrap().len(), 4);
    let metrics = docs[3]["spec"]["metrics"].as_array().unwrap();
    assert_eq!(
        metrics[0]["successCondition"],
        "len(result) == 0 || result[0] < 0.01"
    );
    assert!(
        metrics[1]["provider"]["web"]["url"]
            .as_str()
            .unwrap()
            .contains("/analyze?baseline=role%3D%22stable%22")
    );
    assert_eq!(
        metrics[1]["failureCondition"],
        "result.score <= result.thresholds.marginal"
    );

    // The validator does catch a bad manifest.
    let mut bad = docs[0].clone();
    bad["spec"]["replicas"] = Value::from("four");
    bad["spec"]["strategy"]["canary"]["stepz"] = Value::from(1);
    let mut problems = Vec::new();
    validate(
        &bad,
        &crd_schema("argo-rollouts/crds/rollout-crd.yaml"),
        "Rollout",
        &mut problems,
    );
    assert_eq!(problems.len(), 2, "{problems:#?}");
}

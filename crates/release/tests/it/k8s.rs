//! Generated Argo Rollouts manifests validate against Argo's own CRD
//! schemas (their `openAPIV3Schema` converted to JSON Schema and checked
//! with the `jsonschema` crate: types, required fields, known properties,
//! int-or-string, enums and formats).

use std::path::Path;

use flightdeck_release::k8s::{K8sOptions, argo_manifests, default_metrics};
use flightdeck_release::spec::CanarySpec;
use serde_json::Value;

use crate::fixture;

/// An OpenAPI v3 schema of a CRD as JSON Schema: `x-kubernetes-int-or-string`
/// becomes integer-or-string, `nullable` admits null, and an object with
/// known properties admits no others (what the API server prunes is an
/// error here, so a misspelt field is caught).
fn to_json_schema(schema: &Value) -> Value {
    let Some(obj) = schema.as_object() else {
        return schema.clone();
    };
    let mut out = serde_json::Map::new();
    for (k, v) in obj {
        let v = match k.as_str() {
            "properties" | "patternProperties" | "definitions" => Value::Object(
                v.as_object()
                    .into_iter()
                    .flatten()
                    .map(|(name, s)| (name.clone(), to_json_schema(s)))
                    .collect(),
            ),
            "items" | "additionalProperties" | "not" => to_json_schema(v),
            "allOf" | "anyOf" | "oneOf" => Value::Array(
                v.as_array()
                    .into_iter()
                    .flatten()
                    .map(to_json_schema)
                    .collect(),
            ),
            _ => v.clone(),
        };
        out.insert(k.clone(), v);
    }
    if obj.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true)) {
        out.remove("type");
        out.insert(
            "anyOf".into(),
            serde_json::json!([{"type": "integer"}, {"type": "string"}]),
        );
    }
    if obj.get("nullable") == Some(&Value::Bool(true))
        && let Some(Value::String(t)) = out.get("type").cloned()
    {
        out.insert("type".into(), serde_json::json!([t, "null"]));
    }
    if obj.contains_key("properties")
        && !obj.contains_key("additionalProperties")
        && obj.get("x-kubernetes-preserve-unknown-fields") != Some(&Value::Bool(true))
    {
        out.insert("additionalProperties".into(), Value::Bool(false));
    }
    Value::Object(out)
}

/// Problems of `v` against the CRD schema `schema` (converted, then checked
/// by the `jsonschema` crate), with their paths.
fn validate(v: &Value, schema: &Value, path: &str, out: &mut Vec<String>) {
    let validator = jsonschema::validator_for(&to_json_schema(schema))
        .expect("the CRD's schema is a valid JSON Schema once converted");
    for e in validator.iter_errors(v) {
        out.push(format!("{path}{}: {e}", e.instance_path()));
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

//! Kubernetes manifests for teams on Argo Rollouts: the same release as a
//! `Rollout` (canary steps from the spec's weights, a pause of one interval
//! after each), its two Services, and an `AnalysisTemplate` carrying the
//! spec's metrics; the Kayenta judge becomes a `web` metric calling
//! `flightdeck release judge --serve … --prometheus …` (`GET /analyze`).

use serde_json::{Value, json};

use crate::analysis::MetricSpec;
use crate::provider::Provider;
use crate::spec::CanarySpec;

/// What the manifests need beyond the spec.
#[derive(Debug, Clone)]
pub struct K8sOptions {
    /// The container image (with its tag: the canary's version).
    pub image: String,
    /// Pods.
    pub replicas: u32,
    /// The namespace, if any.
    pub namespace: Option<String>,
    /// The container port the service listens on.
    pub port: u16,
    /// Where the judge answers in the cluster (`…/analyze`), if the spec
    /// has a judge.
    pub judge_url: String,
}

impl Default for K8sOptions {
    fn default() -> Self {
        Self {
            image: "ghcr.io/example/flightdeck-service:latest".into(),
            replicas: 4,
            namespace: None,
            port: 8080,
            judge_url: "http://flightdeck-judge:8081/analyze".into(),
        }
    }
}

fn metadata(name: &str, o: &K8sOptions) -> Value {
    let mut m = json!({"name": name, "labels": {"app.kubernetes.io/name": name, "app.kubernetes.io/managed-by": "flightdeck"}});
    if let Some(ns) = &o.namespace {
        m["namespace"] = json!(ns);
    }
    m
}

fn duration(d: std::time::Duration) -> String {
    crate::duration::format(d)
}

/// The Argo metric for one of ours; `None` (with why) when Argo has no
/// equivalent (a local command, a bare probe: Kubernetes' own readiness
/// probes do that job).
fn argo_metric(spec: &MetricSpec, provider: &Provider, o: &K8sOptions) -> Result<Value, String> {
    let mut m = json!({"name": spec.name});
    if let Some(i) = spec.interval {
        m["interval"] = json!(duration(i));
    }
    if let Some(c) = spec.count {
        m["count"] = json!(c);
    }
    if let Some(d) = spec.initial_delay {
        m["initialDelay"] = json!(duration(d));
    }
    m["failureLimit"] = json!(spec.failure_limit);
    m["inconclusiveLimit"] = json!(spec.inconclusive_limit);
    m["consecutiveErrorLimit"] = json!(spec.consecutive_error_limit);
    if spec.consecutive_success_limit > 0 {
        m["consecutiveSuccessLimit"] = json!(spec.consecutive_success_limit);
    }
    if spec.dry_run {
        m["dryRun"] = json!(true);
    }
    if let Some(c) = &spec.success {
        m["successCondition"] = json!(c.text());
    }
    if let Some(c) = &spec.failure {
        m["failureCondition"] = json!(c.text());
    }
    m["provider"] = match provider {
        Provider::Prometheus { client, query } => {
            json!({"prometheus": {"address": client.address(), "query": query}})
        }
        Provider::Web {
            url,
            method,
            body,
            headers,
            json_path,
            timeout,
        } => {
            let mut w =
                json!({"url": url, "method": method, "timeoutSeconds": timeout.as_secs().max(1)});
            if let Some(b) = body {
                w["body"] = json!(b);
            }
            if let Some(p) = json_path {
                w["jsonPath"] = json!(p);
            }
            if !headers.is_empty() {
                w["headers"] = headers
                    .iter()
                    .map(|(k, v)| json!({"key": k, "value": v}))
                    .collect();
            }
            json!({ "web": w })
        }
        Provider::Judge(j) => {
            // The whole report comes back; conditions read its fields.
            let url = format!(
                "{}?baseline={}&canary={}",
                o.judge_url,
                url_encode(&j.baseline),
                url_encode(&j.canary)
            );
            json!({"web": {"url": url, "method": "GET", "timeoutSeconds": 30}})
        }
        Provider::SloBurn(b) => {
            // Argo evaluates one query; the fast page tier's long window
            // carries the decision (the short window is Argo's interval).
            let w = b.windows.page_quick;
            let ms = (w.long.as_millis() as f64 * b.scale).round().max(1000.0) as u64;
            let query = b.error_ratio.replace("${window}", &format!("{ms}ms"));
            let factor = w.factor(b.windows.period) * (1.0 - b.objective);
            m["successCondition"] = json!(format!("len(result) == 0 || result[0] <= {factor}"));
            json!({"prometheus": {"address": b.prometheus.address(), "query": query}})
        }
        Provider::Probe { url, .. } => {
            return Err(format!(
                "metric {}: a bare HTTP probe ({url}) has no Argo provider; the pod's readinessProbe covers it",
                spec.name
            ));
        }
        Provider::Command { argv, .. } => {
            return Err(format!(
                "metric {}: a local command ({}) needs an image to run as an Argo job; add it by hand",
                spec.name,
                argv.join(" ")
            ));
        }
    };
    Ok(m)
}

/// Percent-encodes a query-string value (RFC 3986 unreserved characters
/// stay).
pub fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The manifests (YAML documents separated by `---`), and the metrics
/// that could not be carried over, with why.
///
/// # Errors
///
/// A message when the output cannot be encoded.
pub fn argo_manifests(spec: &CanarySpec, o: &K8sOptions) -> Result<(String, Vec<String>), String> {
    let name = &spec.name;
    let analysis = format!("{name}-analysis");
    let mut steps = Vec::new();
    for w in spec.progression.steps.sequence() {
        if w >= 100 {
            break;
        }
        steps.push(json!({"setWeight": w}));
        steps.push(json!({"pause": {"duration": duration(spec.progression.interval)}}));
    }
    let mut skipped = Vec::new();
    let mut metrics = Vec::new();
    for m in &spec.metrics {
        match argo_metric(&m.spec, &m.provider, o) {
            Ok(v) => metrics.push(v),
            Err(why) => skipped.push(why),
        }
    }
    let labels = json!({"app": name});
    let probe = |path: &str| json!({"httpGet": {"path": path, "port": o.port}, "periodSeconds": 5});
    let mut rollout = json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": metadata(name, o),
        "spec": {
            "replicas": o.replicas,
            "revisionHistoryLimit": 3,
            "progressDeadlineSeconds": spec.progression.progress_deadline.as_secs(),
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{
                    "name": "service",
                    "image": o.image,
                    "args": ["serve", "--listen", format!("0.0.0.0:{}", o.port), "--build-version", spec.canary_version],
                    "env": [{"name": "FLIGHTDECK_ADMIN_TOKEN", "valueFrom": {"secretKeyRef": {"name": format!("{name}-admin"), "key": "token"}}}],
                    "ports": [{"name": "http", "containerPort": o.port}],
                    "readinessProbe": probe("/readyz"),
                    "livenessProbe": probe("/healthz"),
                }]},
            },
            "strategy": {"canary": {
                "canaryService": format!("{name}-canary"),
                "stableService": format!("{name}-stable"),
                "abortScaleDownDelaySeconds": 30,
                "steps": steps,
            }},
        },
    });
    if !metrics.is_empty() {
        rollout["spec"]["strategy"]["canary"]["analysis"] =
            json!({"templates": [{"templateName": analysis}], "startingStep": 1});
    }
    let service = |suffix: &str| {
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": metadata(&format!("{name}-{suffix}"), o),
            "spec": {"selector": labels, "ports": [{"name": "http", "port": 80, "targetPort": o.port}]},
        })
    };
    let mut docs = vec![rollout, service("stable"), service("canary")];
    if !metrics.is_empty() {
        docs.push(json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "AnalysisTemplate",
            "metadata": metadata(&analysis, o),
            "spec": {"metrics": metrics},
        }));
    }
    let mut out =
        String::from("# Generated by flightdeck release manifests; Argo Rollouts v1alpha1.\n");
    for (i, d) in docs.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        out.push_str(&serde_norway::to_string(d).map_err(|e| e.to_string())?);
    }
    for s in &skipped {
        out.push_str(&format!("# not carried over: {s}\n"));
    }
    Ok((out, skipped))
}

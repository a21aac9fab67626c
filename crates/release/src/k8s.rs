//! Kubernetes manifests for teams on Argo Rollouts: the same release as a
//! `Rollout` (canary steps from the spec's weights, a pause of one interval
//! after each), its two Services, and an `AnalysisTemplate` carrying the
//! spec's metrics; the Kayenta judge becomes a `web` metric calling
//! `flightdeck release judge --serve … --prometheus …` (`GET /analyze`).

use serde_json::{Value, json};

use crate::analysis::MetricSpec;
use crate::provider::Provider;
use crate::run::AnalysisMetric;

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

/// Rendered manifests, one YAML text per file.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifests {
    /// The Argo Rollouts `Rollout`.
    pub rollout: String,
    /// Its stable and canary `Service`s.
    pub services: String,
    /// The `AnalysisTemplate` (absent when no metric carries over).
    pub analysis_template: Option<String>,
    /// A plain `Deployment` and `Service` for teams without Argo Rollouts.
    pub deployment: String,
    /// Metrics that could not be carried over, with why.
    pub skipped: Vec<String>,
}

impl Manifests {
    /// Every document in one text, separated by `---`.
    pub fn all(&self) -> String {
        let mut parts = vec![self.rollout.as_str(), self.services.as_str()];
        if let Some(t) = &self.analysis_template {
            parts.push(t);
        }
        parts.push(&self.deployment);
        let mut out = parts.join("---\n");
        for s in &self.skipped {
            out.push_str(&format!("# not carried over: {s}\n"));
        }
        out
    }

    /// The files to write: (name, text).
    pub fn files(&self) -> Vec<(&'static str, &str)> {
        let mut v = vec![
            ("rollout.yaml", self.rollout.as_str()),
            ("services.yaml", self.services.as_str()),
        ];
        if let Some(t) = &self.analysis_template {
            v.push(("analysis-template.yaml", t.as_str()));
        }
        v.push(("deployment.yaml", self.deployment.as_str()));
        v
    }
}

fn yaml_docs(docs: &[Value]) -> Result<String, String> {
    let mut out = String::from("# Generated by flightdeck release manifests.\n");
    for (i, d) in docs.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        out.push_str(&serde_norway::to_string(d).map_err(|e| e.to_string())?);
    }
    Ok(out)
}

/// The metrics a release is judged by when no spec names them: the error
/// ratio and p99 latency of the app's answers (what the local judge
/// compares), as Argo Prometheus metrics, and the Kayenta judge through
/// `judge_url` (`flightdeck release judge --serve … --prometheus …`).
///
/// # Errors
///
/// A message when a built-in condition does not parse (never, for these).
pub fn default_metrics(
    name: &str,
    prometheus: &str,
    interval: std::time::Duration,
) -> Result<Vec<AnalysisMetric>, String> {
    use crate::expr::Condition;
    let q = |expr: String, cond: &str, metric: &str| -> Result<AnalysisMetric, String> {
        let mut spec = MetricSpec::new(metric);
        spec.interval = Some(interval);
        spec.failure_limit = 1;
        spec.success = Some(Condition::parse(cond)?);
        Ok(AnalysisMetric::new(
            spec,
            Provider::Prometheus {
                client: crate::provider::Prometheus::new(
                    prometheus,
                    std::time::Duration::from_secs(10),
                ),
                query: expr,
            },
        ))
    };
    Ok(vec![
        q(
            format!(
                "sum(rate(http_server_requests_total{{app=\"{name}\",role=\"canary\",http_route=\"/v1/answer\",status_class=\"5xx\"}}[1m])) / sum(rate(http_server_requests_total{{app=\"{name}\",role=\"canary\",http_route=\"/v1/answer\"}}[1m]))"
            ),
            "len(result) == 0 || isNaN(result) || result[0] < 0.01",
            "error-ratio",
        )?,
        q(
            format!(
                "histogram_quantile(0.99, sum by (le) (rate(http_server_request_duration_seconds_bucket{{app=\"{name}\",role=\"canary\",http_route=\"/v1/answer\"}}[1m])))"
            ),
            "len(result) == 0 || isNaN(result) || result[0] < 0.5",
            "latency-p99",
        )?,
    ])
}

/// Renders the release for a cluster.
///
/// # Errors
///
/// A message when the output cannot be encoded.
pub fn argo_manifests(
    name: &str,
    canary_version: &str,
    progression: &crate::progression::Progression,
    analysis: &[AnalysisMetric],
    o: &K8sOptions,
) -> Result<Manifests, String> {
    let template_name = format!("{name}-analysis");
    let mut steps = Vec::new();
    for w in progression.steps.sequence() {
        if w >= 100 {
            break;
        }
        steps.push(json!({"setWeight": w}));
        steps.push(json!({"pause": {"duration": duration(progression.interval)}}));
    }
    let mut skipped = Vec::new();
    let mut metrics = Vec::new();
    for m in analysis {
        match argo_metric(&m.spec, &m.provider, o) {
            Ok(v) => metrics.push(v),
            Err(why) => skipped.push(why),
        }
    }
    let labels = json!({"app": name});
    let probe = |path: &str| json!({"httpGet": {"path": path, "port": o.port}, "periodSeconds": 5});
    let pod = json!({
        "metadata": {"labels": labels},
        "spec": {
            "securityContext": {"runAsNonRoot": true},
            "containers": [{
                "name": "service",
                "image": o.image,
                "args": ["serve", "--listen", format!("0.0.0.0:{}", o.port), "--build-version", canary_version],
                "env": [{"name": "FLIGHTDECK_ADMIN_TOKEN", "valueFrom": {"secretKeyRef": {"name": format!("{name}-admin"), "key": "token"}}}],
                "ports": [{"name": "http", "containerPort": o.port}],
                "readinessProbe": probe("/readyz"),
                "livenessProbe": probe("/healthz"),
            }],
        },
    });
    let mut rollout = json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": metadata(name, o),
        "spec": {
            "replicas": o.replicas,
            "revisionHistoryLimit": 3,
            "progressDeadlineSeconds": progression.progress_deadline.as_secs(),
            "selector": {"matchLabels": labels},
            "template": pod,
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
            json!({"templates": [{"templateName": template_name}], "startingStep": 1});
    }
    let service = |svc: &str| {
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": metadata(svc, o),
            "spec": {"selector": labels, "ports": [{"name": "http", "port": 80, "targetPort": o.port}]},
        })
    };
    let analysis_template = if metrics.is_empty() {
        None
    } else {
        Some(yaml_docs(&[json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "AnalysisTemplate",
            "metadata": metadata(&template_name, o),
            "spec": {"metrics": metrics},
        })])?)
    };
    let deployment = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(name, o),
        "spec": {
            "replicas": o.replicas,
            "selector": {"matchLabels": labels},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": pod,
        },
    });
    Ok(Manifests {
        rollout: yaml_docs(&[rollout])?,
        services: yaml_docs(&[
            service(&format!("{name}-stable")),
            service(&format!("{name}-canary")),
        ])?,
        analysis_template,
        deployment: yaml_docs(&[deployment, service(name)])?,
        skipped,
    })
}

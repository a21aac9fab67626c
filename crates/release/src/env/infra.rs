//! Local production's infrastructure: HAProxy in front of stable and
//! canary (weights through the runtime API), Prometheus scraping both
//! through a file-discovered target list (rewritten atomically, picked up
//! without a restart), the analysis spec the controller reads, and the
//! small HTTP helpers every check uses (each call has a timeout).

use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::env::process::{ProcessRecord, write_atomic};
use crate::error::ReleaseError;
use crate::provider::agent;

/// The HAProxy backend and its two server slots.
pub(crate) const BACKEND: &str = "rag";

/// A free port on 127.0.0.1 (the OS picks it; the caller binds it soon).
pub(crate) fn free_port() -> Result<u16, ReleaseError> {
    let l = TcpListener::bind("127.0.0.1:0")
        .map_err(|e| ReleaseError::io("cannot find a free port on 127.0.0.1", e))?;
    Ok(l.local_addr()?.port())
}

/// The status and at most `limit` bytes of a response's body.
fn answer(mut r: ureq::http::Response<ureq::Body>, limit: u64) -> Result<(u16, String), String> {
    let status = r.status().as_u16();
    let body = r
        .body_mut()
        .with_config()
        .limit(limit)
        .read_to_string()
        .map_err(|e| e.to_string())?;
    Ok((status, body))
}

/// POST JSON to `url` (with a bearer token when given): the status and at
/// most 1 MiB of the body.
pub(crate) fn post_json(
    url: &str,
    body: &Value,
    token: Option<&str>,
    timeout: Duration,
) -> Result<(u16, String), String> {
    let mut req = agent(timeout)
        .post(url)
        .header("content-type", "application/json");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let r = req
        .send(body.to_string().as_bytes())
        .map_err(|e| e.to_string())?;
    answer(r, 1 << 20)
}

/// GET `url`: the status and at most 1 MiB of the body.
pub(crate) fn get(url: &str, timeout: Duration) -> Result<(u16, String), String> {
    answer(
        agent(timeout).get(url).call().map_err(|e| e.to_string())?,
        1 << 20,
    )
}

/// The largest `/metrics` page [`metrics_page`] reads.
pub const METRICS_PAGE_LIMIT: u64 = 16 << 20;

/// A service's `/metrics` page at `url`: a 200 answer, at most
/// [`METRICS_PAGE_LIMIT`] bytes, within `timeout`.
///
/// # Errors
///
/// The cause, in words (unreachable, a timeout, another status).
pub fn metrics_page(url: &str, timeout: Duration) -> Result<String, String> {
    let (status, page) = answer(
        agent(timeout).get(url).call().map_err(|e| e.to_string())?,
        METRICS_PAGE_LIMIT,
    )?;
    if status == 200 {
        Ok(page)
    } else {
        Err(format!("status {status}"))
    }
}

/// Polls `check` every 50 ms until it answers `Some` or `limit` passes.
pub(crate) fn poll<T>(limit: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The last `n` lines of a log (at most 64 KiB read), for error messages.
pub(crate) fn log_tail(path: &Path, n: usize) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)));
    let mut buf = Vec::new();
    let _ = f.take(64 * 1024).read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| match l.char_indices().nth(300) {
            Some((i, _)) => format!("{}…", &l[..i]),
            None => (*l).to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// HAProxy's configuration: one frontend, one backend with the stable and
/// canary slots (the canary in maintenance until a release fills it),
/// health checks on `/readyz`, and the admin socket.
pub(crate) fn haproxy_config(socket: &Path, frontend: u16, stable_addr: &str) -> String {
    format!(
        "# Written by flightdeck's local production; regenerated on restart.\n\
global\n  stats socket {socket} mode 600 level admin\n  maxconn 4096\n\
defaults\n  mode http\n  timeout connect 2s\n  timeout client 30s\n  timeout server 30s\n  retries 2\n  option redispatch 1\n  retry-on conn-failure empty-response\n\
frontend fe\n  bind 127.0.0.1:{frontend}\n  default_backend {BACKEND}\n\
backend {BACKEND}\n  balance roundrobin\n  option httpchk GET /readyz\n  default-server inter 500ms fall 2 rise 1\n\
  server stable {stable_addr} weight 100 check\n  server canary {stable_addr} weight 0 check disabled\n",
        socket = socket.display()
    )
}

/// Prometheus's configuration: a 1 s scrape of the file-discovered targets.
pub(crate) fn prometheus_config(targets: &Path) -> String {
    format!(
        "# Written by flightdeck's local production.\nglobal:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
scrape_configs:\n  - job_name: rag\n    file_sd_configs:\n      - files: ['{}']\n        refresh_interval: 2s\n",
        targets.display()
    )
}

/// Writes the scrape targets: each service labelled with its role and version.
pub(crate) fn write_targets(
    path: &Path,
    services: &[(&str, &ProcessRecord)],
) -> Result<(), ReleaseError> {
    let groups: Vec<Value> = services
        .iter()
        .filter_map(|(role, r)| {
            Some(json!({
                "targets": [r.addr.clone()?],
                "labels": {"role": role, "version": r.version.clone().unwrap_or_default()},
            }))
        })
        .collect();
    write_atomic(path, Value::Array(groups).to_string().as_bytes())
}

/// The first value of an instant query, when it has one (through the
/// providers' Prometheus client).
pub(crate) fn prometheus_value(prometheus: &str, query: &str) -> Option<f64> {
    crate::provider::Prometheus::new(prometheus, Duration::from_secs(2))
        .query(query)
        .ok()?
        .as_array()?
        .first()?
        .as_f64()
}

/// The Kayenta canary config the local judge uses: error ratio (critical)
/// and mean latency of `/v1/answer`, stable against canary.
pub(crate) fn kayenta_config() -> Value {
    let errors = "PromQL:(sum(rate(http_server_requests_total{http_route=\"/v1/answer\",status_class=\"5xx\",${scope}}[4s])) or vector(0)) / sum(rate(http_server_requests_total{http_route=\"/v1/answer\",${scope}}[4s]))";
    // Growth beyond 1 MB/s, so a canary warming up (caches, buffers: tens
    // of KB/s, measured) is not a leak and a real leak (MB/s) is.
    let memory = "PromQL:clamp_min(sum(deriv(process_resident_memory_bytes{${scope}}[10s])) / 1048576 - 1, 0)";
    let latency = "PromQL:sum(rate(http_server_request_duration_seconds_sum{http_route=\"/v1/answer\",${scope}}[4s])) / sum(rate(http_server_request_duration_seconds_count{http_route=\"/v1/answer\",${scope}}[4s]))";
    json!({
        "name": "rag-local",
        "metrics": [
            {"name": "error_ratio", "groups": ["errors"],
             "query": {"type": "prometheus", "customInlineTemplate": errors},
             "analysisConfigurations": {"canary": {"direction": "increase", "critical": true}}},
            {"name": "latency_mean", "groups": ["latency"],
             "query": {"type": "prometheus", "customInlineTemplate": latency},
             "analysisConfigurations": {"canary": {"direction": "increase", "effectSize": {"allowedIncrease": 1.5}}}},
            {"name": "memory_growth_over_1mb_per_s", "groups": ["memory"],
             "query": {"type": "prometheus", "customInlineTemplate": memory},
             "analysisConfigurations": {"canary": {"direction": "increase", "critical": true, "effectSize": {"allowedIncrease": 10.0}}}}
        ],
        "classifier": {"groupWeights": {"errors": 50, "latency": 30, "memory": 20}, "scoreThresholds": {"pass": 95, "marginal": 75}}
    })
}

/// Settings of a local canary's analysis.
#[derive(Debug, Clone)]
pub(crate) struct SpecInputs<'a> {
    pub(crate) release_stable: &'a str,
    pub(crate) release_canary: &'a str,
    pub(crate) socket: &'a Path,
    pub(crate) prometheus: &'a str,
    pub(crate) canary_addr: &'a str,
    pub(crate) interval: Duration,
    pub(crate) steps: &'a [u32],
    pub(crate) approval_file: &'a Path,
}

/// How long each step holds: enough judge samples (8 at a 1 s step) of
/// traffic at the step, and at least 8 intervals.
pub(crate) fn bake_secs(interval: Duration) -> u64 {
    (interval.as_secs_f64() * 8.0).ceil().max(10.0) as u64
}

/// The canary spec (`canary.yaml`) of a local release: HAProxy as router,
/// the judge and the canary's SLO burn over Prometheus, the canary's
/// readiness, and an approval gate before promotion.
pub(crate) fn canary_spec(i: &SpecInputs<'_>) -> String {
    let secs = i.interval.as_secs_f64().max(1.0);
    let steps: Vec<String> = i.steps.iter().map(u32::to_string).collect();
    let q = |s: &str| s.replace('\'', "''");
    let lines = [
        "# Written by flightdeck's local production for one release.".to_owned(),
        "name: rag".to_owned(),
        format!("stableVersion: '{}'", q(i.release_stable)),
        format!("canaryVersion: '{}'", q(i.release_canary)),
        "router:".to_owned(),
        format!(
            "  haproxy: {{socket: '{}', backend: {BACKEND}, stable: stable, canary: canary}}",
            q(&i.socket.display().to_string())
        ),
        "analysis:".to_owned(),
        format!("  interval: {}ms", i.interval.as_millis().max(200)),
        format!("  stepWeights: [{}]", steps.join(", ")),
        "  threshold: 2".to_owned(),
        format!("  progressDeadline: {}s", (secs * 60.0).round().max(30.0)),
        format!("  bakeTime: {}s", bake_secs(i.interval)),
        "  onNoData: pause".to_owned(),
        "  onFailure: rollback".to_owned(),
        "  judge:".to_owned(),
        format!("    prometheus: '{}'", q(i.prometheus)),
        "    config: kayenta.json".to_owned(),
        "    baseline: 'role=\"stable\"'".to_owned(),
        "    canary: 'role=\"canary\"'".to_owned(),
        format!("    lookback: {}s", bake_secs(i.interval)),
        "    step: 1s".to_owned(),
        "    minSamples: 8".to_owned(),
        "  sloBurn:".to_owned(),
        format!("    prometheus: '{}'", q(i.prometheus)),
        "    errorRatio: '(sum(rate(http_server_requests_total{role=\"canary\",http_route=\"/v1/answer\",status_class=\"5xx\"}[${window}])) or vector(0)) / sum(rate(http_server_requests_total{role=\"canary\",http_route=\"/v1/answer\"}[${window}]))'".to_owned(),
        "    objective: 99.9".to_owned(),
        "    scale: 0.01".to_owned(),
        "  metrics:".to_owned(),
        // Measured at every interval for the whole run (an Argo metric
        // without an interval is measured once); a refused connection (a
        // crashed canary) counts after two in a row.
        "    - name: canary-ready".to_owned(),
        format!("      interval: {}ms", i.interval.as_millis().max(200)),
        "      consecutiveErrorLimit: 1".to_owned(),
        "      successCondition: result == 200".to_owned(),
        format!("      provider: {{probe: {{url: 'http://{}/readyz'}}}}", i.canary_addr),
        "  webhooks:".to_owned(),
        format!(
            "    - {{name: production-approval, type: confirm-promotion, command: [test, -e, '{}'], timeout: 5s}}",
            q(&i.approval_file.display().to_string())
        ),
    ];
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generated_spec_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("kayenta.json"),
            kayenta_config().to_string(),
        )
        .unwrap();
        let text = canary_spec(&SpecInputs {
            release_stable: "1.0.0",
            release_canary: "1.1.0",
            socket: &dir.path().join("admin.sock"),
            prometheus: "http://127.0.0.1:9",
            canary_addr: "127.0.0.1:10",
            interval: Duration::from_secs(1),
            steps: &[5, 25],
            approval_file: &dir.path().join("approvals/x"),
        });
        let path = dir.path().join("canary.yaml");
        std::fs::write(&path, &text).unwrap();
        let spec = crate::spec::CanarySpec::from_yaml(&text, &path).unwrap();
        assert_eq!(spec.canary_version, "1.1.0");
        assert_eq!(spec.hooks.len(), 1);
        let names: Vec<&str> = spec.metrics.iter().map(|m| m.spec.name.as_str()).collect();
        assert!(
            names.contains(&"judge")
                && names.contains(&"slo-burn")
                && names.contains(&"canary-ready"),
            "{names:?}"
        );
    }
}

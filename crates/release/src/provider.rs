//! Measurement providers, as Argo Rollouts names them: a real Prometheus
//! over its HTTP API (instant and range queries, connect and total
//! timeouts), `web` (JSON, narrowed by a JSONPath), a `command` (exit
//! status, JSON on stdout; Argo's `job` run as a local process), an HTTP
//! probe (readiness), the Kayenta judge over Prometheus series, and SLO burn
//! rates of the canary's cohort.

use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::error::ReleaseError;
use crate::judge::{CanaryConfig, Judge, Label, MetricSetPair};

/// The most bytes read from a provider's answer.
pub const MAX_ANSWER_BYTES: u64 = 16 * 1024 * 1024;

/// An HTTP agent whose every request is bounded by `timeout`, and whose
/// error statuses are answers, not errors.
pub(crate) fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .timeout_connect(Some(timeout.min(Duration::from_secs(3))))
        .http_status_as_error(false)
        .build()
        .new_agent()
}

fn num_value(x: f64) -> Value {
    if x.is_finite() {
        json!(x)
    } else {
        json!(crate::judge::float_text(x))
    }
}

/// A Prometheus server's HTTP API.
#[derive(Debug, Clone)]
pub struct Prometheus {
    base: String,
    agent: ureq::Agent,
}

/// One series of a range query: its labels and (time, value) points.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The series' labels.
    pub labels: serde_json::Map<String, Value>,
    /// The points, oldest first.
    pub points: Vec<(f64, f64)>,
}

fn parse_sample(v: &Value) -> Option<f64> {
    v.get(1)?.as_str()?.parse().ok()
}

impl Prometheus {
    /// A client for `address` (`http://127.0.0.1:9090`), each request
    /// bounded by `timeout`.
    pub fn new(address: &str, timeout: Duration) -> Self {
        Self {
            base: address.trim_end_matches('/').to_owned(),
            agent: agent(timeout),
        }
    }

    /// The server's address.
    pub fn address(&self) -> &str {
        &self.base
    }

    fn get(&self, path: &str, params: &[(&str, String)]) -> Result<Value, ReleaseError> {
        let url = format!("{}{path}", self.base);
        let what = || format!("Prometheus {url}");
        let mut req = self.agent.get(&url);
        for (k, v) in params {
            req = req.query(*k, v);
        }
        let mut resp = req.call().map_err(|e| ReleaseError::io(what(), e))?;
        let status = resp.status().as_u16();
        let body = resp
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER_BYTES)
            .read_to_string()
            .map_err(|e| ReleaseError::io(what(), e))?;
        let v: Value = serde_json::from_str(&body)
            .map_err(|e| ReleaseError::io(what(), format!("status {status}, not JSON: {e}")))?;
        if v["status"] != "success" {
            return Err(ReleaseError::io(
                what(),
                format!(
                    "{}: {}",
                    v["errorType"].as_str().unwrap_or("error"),
                    flightdeck_obs_core::shown(v["error"].as_str().unwrap_or(&body))
                ),
            ));
        }
        Ok(v["data"].clone())
    }

    /// An instant query, as Argo's provider returns it: a vector becomes a
    /// list of numbers (`[]` when no series matched), a scalar a number.
    ///
    /// # Errors
    ///
    /// [`ReleaseError::Io`] naming the server and its complaint.
    pub fn query(&self, promql: &str) -> Result<Value, ReleaseError> {
        let data = self.get("/api/v1/query", &[("query", promql.to_owned())])?;
        match data["resultType"].as_str() {
            Some("vector") => Ok(Value::Array(
                data["result"]
                    .as_array()
                    .map(|rs| {
                        rs.iter()
                            .filter_map(|r| parse_sample(&r["value"]))
                            .map(num_value)
                            .collect()
                    })
                    .unwrap_or_default(),
            )),
            Some("scalar") => Ok(parse_sample(&data["result"]).map_or(Value::Null, num_value)),
            other => Err(ReleaseError::io(
                "Prometheus query",
                format!("unsupported result type {other:?} for {promql:?}"),
            )),
        }
    }

    /// A range query over `[end − lookback, end]` at `step`.
    ///
    /// # Errors
    ///
    /// [`ReleaseError::Io`] naming the server and its complaint.
    pub fn query_range(
        &self,
        promql: &str,
        lookback: Duration,
        step: Duration,
    ) -> Result<Vec<Series>, ReleaseError> {
        let end = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let start = end - lookback.as_secs_f64();
        let data = self.get(
            "/api/v1/query_range",
            &[
                ("query", promql.to_owned()),
                ("start", format!("{start:.3}")),
                ("end", format!("{end:.3}")),
                ("step", format!("{:.3}", step.as_secs_f64().max(0.001))),
            ],
        )?;
        Ok(data["result"]
            .as_array()
            .map(|rs| {
                rs.iter()
                    .map(|r| Series {
                        labels: r["metric"].as_object().cloned().unwrap_or_default(),
                        points: r["values"]
                            .as_array()
                            .map(|vs| {
                                vs.iter()
                                    .filter_map(|v| Some((v.get(0)?.as_f64()?, parse_sample(v)?)))
                                    .collect()
                            })
                            .unwrap_or_default(),
                    })
                    .collect()
            })
            .unwrap_or_default())
    }
}

/// A minimal JSONPath (`$.a.b[0].c`, optionally in braces as Argo writes
/// it: `{$.data.ok}`).
///
/// # Errors
///
/// A message naming the path when it is malformed.
pub fn json_path(v: &Value, path: &str) -> Result<Value, String> {
    let p = path.trim();
    let p = p
        .strip_prefix('{')
        .and_then(|x| x.strip_suffix('}'))
        .unwrap_or(p)
        .trim();
    let rest = p
        .strip_prefix('$')
        .ok_or_else(|| format!("{path:?}: a JSONPath starts with $"))?;
    let mut cur = v.clone();
    let mut chars = rest;
    while !chars.is_empty() {
        if let Some(r) = chars.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            let key = &r[..end];
            if key.is_empty() {
                return Err(format!("{path:?}: empty key"));
            }
            cur = cur.get(key).cloned().unwrap_or(Value::Null);
            chars = &r[end..];
        } else if let Some(r) = chars.strip_prefix('[') {
            let end = r
                .find(']')
                .ok_or_else(|| format!("{path:?}: [ without ]"))?;
            let inner = r[..end].trim().trim_matches(['\'', '"']);
            cur = match inner.parse::<usize>() {
                Ok(i) => cur.get(i).cloned().unwrap_or(Value::Null),
                Err(_) => cur.get(inner).cloned().unwrap_or(Value::Null),
            };
            chars = &r[end + 1..];
        } else {
            return Err(format!("{path:?}: unexpected {chars:?}"));
        }
    }
    Ok(cur)
}

/// The Kayenta judge over Prometheus: each metric's query (the config's
/// `query.customInlineTemplate`, with `${scope}` replaced by a side's label
/// selector) as a range query for the baseline and the canary.
#[derive(Debug, Clone)]
pub struct JudgeProvider {
    /// Where the series come from.
    pub prometheus: Prometheus,
    /// The canary config.
    pub config: CanaryConfig,
    /// The baseline's selector, e.g. `role="stable"`.
    pub baseline: String,
    /// The canary's selector, e.g. `role="canary"`.
    pub canary: String,
    /// How far back each analysis looks.
    pub lookback: Duration,
    /// The range query's step.
    pub step: Duration,
    /// Fewer points than this on either side of a metric is no data yet
    /// (a judge on three points passes anything): 5.
    pub min_samples: usize,
}

impl JudgeProvider {
    /// The metric's PromQL template (Kayenta's `customInlineTemplate`,
    /// `PromQL:` prefix allowed), or its `metricName` as a bare selector.
    fn template(query: &Value) -> Option<String> {
        if let Some(t) = query["customInlineTemplate"].as_str() {
            return Some(t.strip_prefix("PromQL:").unwrap_or(t).trim().to_owned());
        }
        query["metricName"]
            .as_str()
            .map(|m| format!("{m}{{${{scope}}}}"))
    }

    /// Pulls the series and judges them; the report is the measurement.
    /// Too few points on a side, or no data for every scored metric, is no
    /// data.
    ///
    /// # Errors
    ///
    /// A Prometheus error, or a metric without a query.
    pub fn measure(&self) -> Result<Measured, ReleaseError> {
        let mut pairs = Vec::with_capacity(self.config.metrics.len());
        let mut short = Vec::new();
        for m in &self.config.metrics {
            let t = Self::template(&m.query).ok_or_else(|| {
                ReleaseError::Invalid(format!(
                    "metric {} has no query.customInlineTemplate or query.metricName",
                    flightdeck_obs_core::shown(&m.name)
                ))
            })?;
            let side = |selector: &str| -> Result<Vec<f64>, ReleaseError> {
                let q = t.replace("${scope}", selector);
                Ok(self
                    .prometheus
                    .query_range(&q, self.lookback, self.step)?
                    .into_iter()
                    .flat_map(|s| s.points.into_iter().map(|p| p.1))
                    .collect())
            };
            let (baseline, canary) = (side(&self.baseline)?, side(&self.canary)?);
            // NaN points (0/0 before any traffic) are not data.
            let count = |v: &[f64]| v.iter().filter(|x| !x.is_nan()).count();
            let (nb, nc) = (count(&baseline), count(&canary));
            if !m.settings.muted && nb.min(nc) < self.min_samples {
                short.push(format!(
                    "{} has {nb} baseline and {nc} canary points (fewer than {})",
                    m.name, self.min_samples
                ));
            }
            pairs.push(MetricSetPair::new(m.name.clone(), baseline, canary));
        }
        if !short.is_empty() {
            return Ok(Measured::NoData(json!({"no_data": short})));
        }
        let report = Judge::default().judge(&self.config, &pairs)?;
        let all_nodata = report
            .metrics
            .iter()
            .filter(|m| !m.muted)
            .all(|m| matches!(m.classification, Label::Nodata | Label::NodataFailMetric));
        let value = serde_json::to_value(&report)
            .map_err(|e| ReleaseError::io("cannot encode the judge's report", e))?;
        Ok(if all_nodata {
            Measured::NoData(value)
        } else {
            Measured::Value(value)
        })
    }
}

/// SLO burn rates of the canary's cohort, from the slo crate's multiwindow
/// alert windows (the SRE workbook's page tiers: 2 % of the budget in
/// 1h/5m at 14.4×, 5 % in 6h/30m at 6×). The windows can be scaled down
/// (`scale: 0.01` turns 1h into 36 s) so a canary step can see them.
#[derive(Debug, Clone)]
pub struct SloBurnProvider {
    /// Where the series come from.
    pub prometheus: Prometheus,
    /// The canary's error ratio as PromQL, `${window}` standing for the
    /// range (`sum(rate(errors{role="canary"}[${window}])) / sum(rate(…))`).
    pub error_ratio: String,
    /// The SLO objective as a ratio (0.999).
    pub objective: f64,
    /// The alert windows (30d or 28d, as the slo crate defines them).
    pub windows: flightdeck_slo::AlertWindows,
    /// Multiplies every window (1.0: as written).
    pub scale: f64,
}

impl SloBurnProvider {
    /// Burn rates of both page tiers; `firing` when both windows of a tier
    /// burn faster than its factor.
    ///
    /// # Errors
    ///
    /// A Prometheus error.
    pub fn measure(&self) -> Result<Measured, ReleaseError> {
        let budget = 1.0 - self.objective;
        let window = |d: flightdeck_slo::PromDuration| {
            let ms = (d.as_millis() as f64 * self.scale).round().max(1000.0);
            format!("{}ms", ms as u64)
        };
        let mut tiers = Vec::new();
        let mut any_data = false;
        let mut firing = false;
        for (name, w) in [
            ("page_quick", self.windows.page_quick),
            ("page_slow", self.windows.page_slow),
        ] {
            let factor = w.factor(self.windows.period);
            let burn = |d| -> Result<Option<f64>, ReleaseError> {
                let q = self.error_ratio.replace("${window}", &window(d));
                Ok(self
                    .prometheus
                    .query(&q)?
                    .as_array()
                    .and_then(|a| a.first())
                    .and_then(Value::as_f64)
                    .map(|r| r / budget))
            };
            let (short, long) = (burn(w.short)?, burn(w.long)?);
            any_data |= short.is_some() || long.is_some();
            let tier_firing = short
                .zip(long)
                .is_some_and(|(s, l)| s > factor && l > factor);
            firing |= tier_firing;
            tiers.push(json!({
                "tier": name,
                "factor": factor,
                "short_window": window(w.short),
                "long_window": window(w.long),
                "short_burn": short,
                "long_burn": long,
                "firing": tier_firing,
            }));
        }
        let v = json!({"firing": firing, "tiers": tiers, "objective": self.objective});
        Ok(if any_data {
            Measured::Value(v)
        } else {
            Measured::NoData(v)
        })
    }
}

/// Where a metric's value comes from.
#[derive(Debug, Clone)]
pub enum Provider {
    /// An instant PromQL query (Argo's `prometheus`).
    Prometheus {
        /// The server.
        client: Prometheus,
        /// The query.
        query: String,
    },
    /// JSON from a URL, optionally narrowed by a JSONPath (Argo's `web`).
    Web {
        /// The URL.
        url: String,
        /// `GET` or `POST`.
        method: String,
        /// A body for POST.
        body: Option<String>,
        /// Headers.
        headers: Vec<(String, String)>,
        /// `jsonPath`.
        json_path: Option<String>,
        /// Total timeout.
        timeout: Duration,
    },
    /// The HTTP status of a URL (a readiness probe); the result is the
    /// status code, 0 when nothing answered.
    Probe {
        /// The URL.
        url: String,
        /// Total timeout.
        timeout: Duration,
    },
    /// A local command (Argo's `job`): exit 0 is success; JSON on stdout is
    /// the result.
    Command {
        /// Program and arguments.
        argv: Vec<String>,
        /// Killed after this long.
        timeout: Duration,
    },
    /// The Kayenta judge over Prometheus (the result is the report; its
    /// default failure condition is Kayenta's stage rule,
    /// `result.score <= result.thresholds.marginal`).
    Judge(Box<JudgeProvider>),
    /// SLO burn rates of the canary (default failure condition
    /// `result.firing == true`).
    SloBurn(Box<SloBurnProvider>),
}

/// A measurement's raw value, or why there is none.
#[derive(Debug, Clone, PartialEq)]
pub enum Measured {
    /// The value conditions see as `result`.
    Value(Value),
    /// The provider answered with no data (no series, all Nodata).
    NoData(Value),
    /// The provider decided by itself (a command's exit status).
    Decided(bool, Value),
}

impl Provider {
    /// Takes one measurement.
    ///
    /// # Errors
    ///
    /// [`ReleaseError::Io`] when the provider could not be reached (the
    /// measurement is then an Error).
    pub fn measure(&self) -> Result<Measured, ReleaseError> {
        match self {
            Self::Prometheus { client, query } => {
                let v = client.query(query)?;
                Ok(if v.as_array().is_some_and(Vec::is_empty) || v.is_null() {
                    Measured::NoData(v)
                } else {
                    Measured::Value(v)
                })
            }
            Self::Web {
                url,
                method,
                body,
                headers,
                json_path: path,
                timeout,
            } => {
                let a = agent(*timeout);
                let what = || format!("web {url}");
                let mut resp = if method.eq_ignore_ascii_case("POST") {
                    let mut r = a.post(url);
                    for (k, v) in headers {
                        r = r.header(k, v);
                    }
                    r.send(body.clone().unwrap_or_default())
                } else {
                    let mut r = a.get(url);
                    for (k, v) in headers {
                        r = r.header(k, v);
                    }
                    r.call()
                }
                .map_err(|e| ReleaseError::io(what(), e))?;
                let status = resp.status().as_u16();
                let text = resp
                    .body_mut()
                    .with_config()
                    .limit(MAX_ANSWER_BYTES)
                    .read_to_string()
                    .map_err(|e| ReleaseError::io(what(), e))?;
                if !(200..300).contains(&status) {
                    return Err(ReleaseError::io(what(), format!("status {status}")));
                }
                let v: Value = serde_json::from_str(&text)
                    .map_err(|e| ReleaseError::io(what(), format!("not JSON: {e}")))?;
                let v = match path {
                    Some(p) => json_path(&v, p).map_err(ReleaseError::Invalid)?,
                    None => v,
                };
                Ok(Measured::Value(v))
            }
            Self::Probe { url, timeout } => {
                let status = agent(*timeout)
                    .get(url)
                    .call()
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0);
                Ok(Measured::Value(json!(status)))
            }
            Self::Command { argv, timeout } => run_command(argv, *timeout),
            Self::SloBurn(b) => b.measure(),
            Self::Judge(j) => j.measure(),
        }
    }
}

fn run_command(argv: &[String], timeout: Duration) -> Result<Measured, ReleaseError> {
    let prog = argv
        .first()
        .ok_or_else(|| ReleaseError::Invalid("a command provider needs a program".into()))?;
    let (ok, out) = run_bounded(argv, None, timeout).map_err(|e| {
        ReleaseError::io(format!("command {}", flightdeck_obs_core::shown(prog)), e)
    })?;
    let v = serde_json::from_str::<Value>(out.trim()).unwrap_or(Value::Null);
    Ok(Measured::Decided(ok, v))
}

/// Runs `argv` (non-empty) with `input` on stdin, for at most `timeout`:
/// whether it exited 0, and its stdout (at most [`MAX_ANSWER_BYTES`]). A
/// child still running at the deadline is killed; that, or a failure to
/// start it, is the error (the cause only; callers name the command).
pub(crate) fn run_bounded(
    argv: &[String],
    input: Option<&[u8]>,
    timeout: Duration,
) -> Result<(bool, String), String> {
    use std::io::{Read, Write};
    let Some((prog, args)) = argv.split_first() else {
        return Err("no program".into());
    };
    let mut child = Command::new(prog)
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    if let (Some(mut stdin), Some(bytes)) = (child.stdin.take(), input) {
        let _ = stdin.write_all(bytes);
    }
    let mut stdout = child.stdout.take();
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        if let Some(s) = stdout.as_mut() {
            let _ = s.take(MAX_ANSWER_BYTES).read_to_string(&mut out);
        }
        out
    });
    let deadline = std::time::Instant::now() + timeout;
    let status = loop {
        match child.try_wait().map_err(|e| e.to_string())? {
            Some(s) => break s,
            None if std::time::Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "still running after {}s; killed",
                    timeout.as_secs()
                ));
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    Ok((status.success(), reader.join().unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_paths_as_argo_writes_them() {
        let v = json!({"data": {"ok": true, "items": [{"n": 1}, {"n": 2}]}});
        assert_eq!(json_path(&v, "{$.data.ok}"), Ok(json!(true)));
        assert_eq!(json_path(&v, "$.data.items[1].n"), Ok(json!(2)));
        assert_eq!(json_path(&v, "$.data['ok']"), Ok(json!(true)));
        assert_eq!(json_path(&v, "$.missing"), Ok(Value::Null));
        assert!(json_path(&v, "data.ok").is_err());
    }

    #[test]
    fn a_command_decides_by_its_exit_status_and_times_out() {
        let ok = run_command(
            &["sh".into(), "-c".into(), "echo '{\"x\": 1}'".into()],
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(ok, Measured::Decided(true, json!({"x": 1})));
        let bad = run_command(
            &["sh".into(), "-c".into(), "exit 3".into()],
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(bad, Measured::Decided(false, Value::Null));
        let slow =
            run_command(&["sleep".into(), "5".into()], Duration::from_millis(200)).unwrap_err();
        assert!(slow.to_string().contains("killed"), "{slow}");
    }
}

//! The canary spec (`canary.yaml`) and Argo Rollouts `AnalysisTemplate`
//! YAML, so teams bring the templates they already have.
//!
//! ```yaml
//! name: rag-service
//! stableVersion: 1.0.0
//! canaryVersion: 1.1.0
//! router:
//!   haproxy: {socket: /run/haproxy/admin.sock, backend: rag, stable: stable, canary: canary}
//!   # or, for a change behind a flag: flag: {file: flags.yaml, flag: new_chunking_strategy}
//! analysis:
//!   interval: 10s
//!   stepWeights: [5, 25, 100]      # or stepWeight + maxWeight
//!   threshold: 1
//!   progressDeadline: 10m
//!   bakeTime: 1m                   # each step holds this long before moving on
//!   onNoData: pause                # or fail
//!   onFailure: rollback            # or pause
//!   rollbackWindow: 10m
//!   templates: [analysis.yaml]     # Argo AnalysisTemplates (relative to this file)
//!   args: {service: rag}
//!   metrics: []                    # inline Argo metrics
//!   sloBurn:                       # the canary's SLO burn (page tiers)
//!     prometheus: http://127.0.0.1:9090
//!     errorRatio: 'sum(rate(http_server_requests_total{role="canary",status_class="5xx"}[${window}])) / sum(rate(http_server_requests_total{role="canary"}[${window}]))'
//!     objective: 99.9
//!     windows: 30d
//!     scale: 0.01                  # 1h → 36s, so a canary step sees it
//!   webhooks:                      # Flagger's gates and hooks
//!     - {name: approve, type: confirm-promotion, url: 'http://127.0.0.1:9000/gate'}
//!     - {name: smoke, type: pre-rollout, command: [./smoke.sh], timeout: 30s}
//!   judge:                         # Kayenta over Prometheus
//!     prometheus: http://127.0.0.1:9090
//!     config: kayenta.json
//!     baseline: 'role="stable"'
//!     canary: 'role="canary"'
//!     lookback: 60s
//!     step: 5s
//!     minSamples: 5                # fewer points on a side: no data yet
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::analysis::MetricSpec;
use crate::error::ReleaseError;
use crate::expr::Condition;
use crate::judge::CanaryConfig;
use crate::progression::{OnFailure, OnNoData, Progression, Steps};
use crate::provider::{JudgeProvider, Prometheus, Provider};
use crate::router::{FlagRouter, HaproxyRouter, Router};
use crate::run::AnalysisMetric;

/// Which router a spec names.
#[derive(Debug, Clone, PartialEq)]
pub enum RouterSpec {
    /// HAProxy's runtime API.
    Haproxy {
        /// Admin socket.
        socket: PathBuf,
        /// Backend.
        backend: String,
        /// Stable server.
        stable: String,
        /// Canary server.
        canary: String,
    },
    /// A flag's rollout percentage in a flags file.
    Flag {
        /// The flags file.
        file: PathBuf,
        /// The flag's id.
        flag: String,
    },
}

impl RouterSpec {
    /// Builds the router.
    pub fn build(&self) -> Box<dyn Router> {
        match self {
            Self::Haproxy {
                socket,
                backend,
                stable,
                canary,
            } => Box::new(HaproxyRouter::new(
                socket.clone(),
                backend.clone(),
                stable.clone(),
                canary.clone(),
            )),
            Self::Flag { file, flag } => Box::new(FlagRouter::new(file.clone(), flag.clone())),
        }
    }
}

/// A canary spec.
#[derive(Debug, Clone)]
pub struct CanarySpec {
    /// The release's name.
    pub name: String,
    /// Where the ledger lives (`stateDir`), if the spec says.
    pub state_dir: Option<PathBuf>,
    /// The stable version.
    pub stable_version: String,
    /// The canary version.
    pub canary_version: String,
    /// The router.
    pub router: RouterSpec,
    /// The progression.
    pub progression: Progression,
    /// Fast rollback after promotion, this long.
    pub rollback_window: Duration,
    /// The metrics (templates, inline, and the judge).
    pub metrics: Vec<AnalysisMetric>,
    /// Flagger's webhooks (`analysis.webhooks`).
    pub hooks: Vec<crate::hooks::Hook>,
}

struct Ctx<'a> {
    file: String,
    text: &'a str,
}

impl Ctx<'_> {
    fn err(&self, path: &str, message: impl Into<String>) -> ReleaseError {
        let key = path
            .rsplit(['.', '['])
            .next()
            .unwrap_or(path)
            .trim_end_matches(']');
        let at =
            flightdeck_obs_core::locate::find_key(self.text, key, 0, self.text.len()).unwrap_or(0);
        let (line, column) = flightdeck_obs_core::locate::line_column(self.text, at);
        ReleaseError::Input {
            file: self.file.clone(),
            line,
            column,
            path: path.to_owned(),
            message: message.into(),
        }
    }

    fn str<'v>(&self, v: &'v Value, path: &str) -> Result<&'v str, ReleaseError> {
        v.as_str()
            .ok_or_else(|| self.err(path, format!("expected text, got {}", short(v))))
    }

    fn opt_str(&self, v: &Value, key: &str, path: &str) -> Result<Option<String>, ReleaseError> {
        match v.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(x) => Ok(Some(self.str(x, &format!("{path}.{key}"))?.to_owned())),
        }
    }

    fn duration(&self, v: &Value, key: &str, path: &str) -> Result<Option<Duration>, ReleaseError> {
        let p = format!("{path}.{key}");
        match v.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_f64()
                .and_then(|s| Duration::try_from_secs_f64(s).ok())
                .map(Some)
                .ok_or_else(|| self.err(&p, format!("{n}: not a duration"))),
            Some(x) => crate::duration::parse(self.str(x, &p)?)
                .map(Some)
                .map_err(|e| self.err(&p, e)),
        }
    }

    /// An Argo int-or-string.
    fn int(&self, v: &Value, key: &str, path: &str) -> Result<Option<i64>, ReleaseError> {
        let p = format!("{path}.{key}");
        match v.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .map(Some)
                .ok_or_else(|| self.err(&p, format!("{n}: not a whole number"))),
            Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| {
                self.err(
                    &p,
                    format!("{}: not a whole number", flightdeck_obs_core::shown(s)),
                )
            }),
            Some(x) => Err(self.err(&p, format!("expected a whole number, got {}", short(x)))),
        }
    }
}

fn short(v: &Value) -> String {
    flightdeck_obs_core::shown(&v.to_string())
}

/// Replaces `{{args.NAME}}` (Argo's template arguments).
fn substitute(text: &str, args: &BTreeMap<String, String>) -> String {
    let mut out = text.to_owned();
    for (k, v) in args {
        for pat in [format!("{{{{args.{k}}}}}"), format!("{{{{ args.{k} }}}}")] {
            out = out.replace(&pat, v);
        }
    }
    out
}

fn nesting(text: &str, file: &str) -> Result<(), ReleaseError> {
    flightdeck_obs_core::locate::check_nesting(text, flightdeck_obs_core::locate::MAX_NESTING)
        .map_err(|e| ReleaseError::Input {
            file: file.to_owned(),
            line: e.line,
            column: e.column,
            path: String::new(),
            message: format!(
                "nested deeper than {}",
                flightdeck_obs_core::locate::MAX_NESTING
            ),
        })
}

/// A YAML syntax error, at its position in `file`.
fn yaml_error(e: &serde_norway::Error, file: &str) -> ReleaseError {
    let (line, column) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
    ReleaseError::Input {
        file: file.to_owned(),
        line,
        column,
        path: String::new(),
        message: e.to_string(),
    }
}

fn yaml(text: &str, file: &str) -> Result<Value, ReleaseError> {
    nesting(text, file)?;
    serde_norway::from_str(text).map_err(|e| yaml_error(&e, file))
}

/// Reads one Argo metric (`spec.metrics[i]` of an AnalysisTemplate, or an
/// inline metric of a canary spec).
fn metric(
    cx: &Ctx<'_>,
    m: &Value,
    path: &str,
    args: &BTreeMap<String, String>,
) -> Result<AnalysisMetric, ReleaseError> {
    let name = cx.str(
        m.get("name")
            .ok_or_else(|| cx.err(path, "a metric needs a name"))?,
        &format!("{path}.name"),
    )?;
    let mut spec = MetricSpec::new(name);
    spec.interval = cx.duration(m, "interval", path)?;
    spec.initial_delay = cx.duration(m, "initialDelay", path)?;
    spec.count = cx
        .int(m, "count", path)?
        .map(|c| {
            u32::try_from(c)
                .map_err(|_| cx.err(&format!("{path}.count"), format!("{c}: must be 0 or more")))
        })
        .transpose()?;
    if spec.count.is_some_and(|c| c > 1) && spec.interval.is_none() {
        return Err(cx.err(
            &format!("{path}.count"),
            "a count above 1 needs an interval (Argo's rule)",
        ));
    }
    for (key, field) in [
        ("failureLimit", &mut spec.failure_limit),
        ("inconclusiveLimit", &mut spec.inconclusive_limit),
        ("consecutiveErrorLimit", &mut spec.consecutive_error_limit),
        (
            "consecutiveSuccessLimit",
            &mut spec.consecutive_success_limit,
        ),
    ] {
        if let Some(v) = cx.int(m, key, path)? {
            *field = v;
        }
    }
    spec.dry_run = m.get("dryRun").and_then(Value::as_bool).unwrap_or(false);
    for (key, slot) in [
        ("successCondition", &mut spec.success),
        ("failureCondition", &mut spec.failure),
    ] {
        if let Some(c) = cx.opt_str(m, key, path)? {
            *slot = Some(Condition::parse(&substitute(&c, args)).map_err(|e| {
                cx.err(
                    &format!("{path}.{key}"),
                    format!("{}: {e}", flightdeck_obs_core::shown(&c)),
                )
            })?);
        }
    }
    let p = m
        .get("provider")
        .ok_or_else(|| cx.err(&format!("{path}.provider"), "a metric needs a provider"))?;
    let pp = format!("{path}.provider");
    let provider = if let Some(prom) = p.get("prometheus") {
        let address = cx
            .opt_str(prom, "address", &pp)?
            .ok_or_else(|| cx.err(&format!("{pp}.prometheus.address"), "missing"))?;
        let query = cx
            .opt_str(prom, "query", &pp)?
            .ok_or_else(|| cx.err(&format!("{pp}.prometheus.query"), "missing"))?;
        let timeout = cx
            .int(prom, "timeout", &pp)?
            .map_or(Duration::from_secs(10), |s| {
                Duration::from_secs(s.clamp(1, 300).unsigned_abs())
            });
        Provider::Prometheus {
            client: Prometheus::new(&substitute(&address, args), timeout),
            query: substitute(&query, args),
        }
    } else if let Some(web) = p.get("web") {
        let url = cx
            .opt_str(web, "url", &pp)?
            .ok_or_else(|| cx.err(&format!("{pp}.web.url"), "missing"))?;
        let headers = web
            .get("headers")
            .and_then(Value::as_array)
            .map(|hs| {
                hs.iter()
                    .filter_map(|h| {
                        Some((
                            h.get("key")?.as_str()?.to_owned(),
                            substitute(h.get("value")?.as_str()?, args),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Provider::Web {
            url: substitute(&url, args),
            method: cx
                .opt_str(web, "method", &pp)?
                .unwrap_or_else(|| "GET".into()),
            body: cx.opt_str(web, "body", &pp)?.map(|b| substitute(&b, args)),
            headers,
            json_path: cx.opt_str(web, "jsonPath", &pp)?,
            timeout: Duration::from_secs(
                cx.int(web, "timeoutSeconds", &pp)?
                    .unwrap_or(10)
                    .clamp(1, 300)
                    .unsigned_abs(),
            ),
        }
    } else if let Some(probe) = p.get("probe") {
        let url = cx
            .opt_str(probe, "url", &pp)?
            .ok_or_else(|| cx.err(&format!("{pp}.probe.url"), "missing"))?;
        Provider::Probe {
            url: substitute(&url, args),
            timeout: Duration::from_secs(2),
        }
    } else if let Some(cmd) = p.get("command").or_else(|| {
        // Argo's job: run the first container's command and args locally.
        p.pointer("/job/spec/template/spec/containers/0")
    }) {
        let mut argv: Vec<String> = Vec::new();
        for key in ["argv", "command", "args"] {
            if let Some(list) = cmd.get(key).and_then(Value::as_array) {
                for a in list {
                    argv.push(substitute(cx.str(a, &format!("{pp}.{key}"))?, args));
                }
            }
        }
        if argv.is_empty() {
            return Err(cx.err(&pp, "a command needs argv (or a job container's command)"));
        }
        Provider::Command {
            argv,
            timeout: Duration::from_secs(
                cx.int(cmd, "timeoutSeconds", &pp)?
                    .unwrap_or(60)
                    .clamp(1, 3600)
                    .unsigned_abs(),
            ),
        }
    } else {
        return Err(cx.err(
            &pp,
            "supported providers: prometheus, web, probe, command, job (run locally)",
        ));
    };
    Ok(AnalysisMetric::new(spec, provider))
}

/// Reads Argo `AnalysisTemplate`s (or `ClusterAnalysisTemplate`s; one
/// file may hold several documents separated by `---`): their metrics, with
/// `{{args.NAME}}` taken from `args` or each template's defaults.
///
/// # Errors
///
/// [`ReleaseError::Input`] naming the file, position and field.
pub fn analysis_template(
    text: &str,
    file: &str,
    args: &BTreeMap<String, String>,
) -> Result<Vec<AnalysisMetric>, ReleaseError> {
    let cx = Ctx {
        file: file.to_owned(),
        text,
    };
    nesting(text, file)?;
    let mut out = Vec::new();
    for de in serde_norway::Deserializer::from_str(text) {
        let doc: Value = serde::Deserialize::deserialize(de).map_err(|e| yaml_error(&e, file))?;
        if doc.is_null() {
            continue;
        }
        out.extend(template_doc(&cx, &doc, args)?);
    }
    Ok(out)
}

fn template_doc(
    cx: &Ctx<'_>,
    doc: &Value,
    args: &BTreeMap<String, String>,
) -> Result<Vec<AnalysisMetric>, ReleaseError> {
    let kind = doc.get("kind").and_then(Value::as_str).unwrap_or("");
    if !matches!(kind, "AnalysisTemplate" | "ClusterAnalysisTemplate") {
        return Err(cx.err(
            "kind",
            format!(
                "expected AnalysisTemplate, got {}",
                flightdeck_obs_core::shown(kind)
            ),
        ));
    }
    let mut all = BTreeMap::new();
    if let Some(defaults) = doc.pointer("/spec/args").and_then(Value::as_array) {
        for a in defaults {
            if let (Some(n), Some(v)) = (
                a.get("name").and_then(Value::as_str),
                a.get("value").and_then(Value::as_str),
            ) {
                all.insert(n.to_owned(), v.to_owned());
            }
        }
    }
    all.extend(args.iter().map(|(k, v)| (k.clone(), v.clone())));
    let metrics = doc
        .pointer("/spec/metrics")
        .and_then(Value::as_array)
        .ok_or_else(|| cx.err("spec.metrics", "an AnalysisTemplate needs spec.metrics"))?;
    metrics
        .iter()
        .enumerate()
        .map(|(i, m)| metric(cx, m, &format!("spec.metrics[{i}]"), &all))
        .collect()
}

impl CanarySpec {
    /// Reads a canary spec; templates and the judge config are read
    /// relative to `file`'s directory.
    ///
    /// # Errors
    ///
    /// [`ReleaseError::Input`] naming the file, position and field (also
    /// inside a template or the Kayenta config).
    pub fn from_yaml(text: &str, file: &Path) -> Result<Self, ReleaseError> {
        let name_of = file.display().to_string();
        let cx = Ctx {
            file: name_of.clone(),
            text,
        };
        let doc = yaml(text, &name_of)?;
        let base = file.parent().unwrap_or(Path::new("."));
        let resolve = |p: &str| resolve(base, p);
        let name = cx
            .opt_str(&doc, "name", "")?
            .ok_or_else(|| cx.err("name", "a canary spec needs a name"))?;
        let stable_version = cx
            .opt_str(&doc, "stableVersion", "")?
            .unwrap_or_else(|| "stable".into());
        let canary_version = cx
            .opt_str(&doc, "canaryVersion", "")?
            .unwrap_or_else(|| "canary".into());
        let state_dir = cx.opt_str(&doc, "stateDir", "")?.map(|p| resolve(&p));
        let router = router_spec(&cx, &doc, base)?;
        let a = doc.get("analysis").cloned().unwrap_or(Value::Null);
        let progression = progression_spec(&cx, &a)?;
        let rollback_window = cx
            .duration(&a, "rollbackWindow", "analysis")?
            .unwrap_or(Duration::from_secs(600));
        let args = analysis_args(&a);
        let mut metrics = Vec::new();
        if let Some(ts) = a.get("templates").and_then(Value::as_array) {
            for (i, t) in ts.iter().enumerate() {
                let p = resolve(cx.str(t, &format!("analysis.templates[{i}]"))?);
                let text = std::fs::read_to_string(&p).map_err(|e| {
                    cx.err(
                        &format!("analysis.templates[{i}]"),
                        format!("cannot read {}: {e}", p.display()),
                    )
                })?;
                metrics.extend(analysis_template(&text, &p.display().to_string(), &args)?);
            }
        }
        if let Some(ms) = a.get("metrics").and_then(Value::as_array) {
            for (i, m) in ms.iter().enumerate() {
                metrics.push(metric(&cx, m, &format!("analysis.metrics[{i}]"), &args)?);
            }
        }
        if let Some(j) = a.get("judge") {
            metrics.push(judge_metric(&cx, j, &args, base, progression.interval)?);
        }
        if let Some(b) = a.get("sloBurn") {
            metrics.push(slo_burn_metric(&cx, b, &args, progression.interval)?);
        }
        let hooks = webhooks(&cx, &a, &args)?;
        if metrics.is_empty() {
            return Err(cx.err("analysis", "no metrics: give templates, metrics or a judge"));
        }
        Ok(Self {
            name,
            state_dir,
            stable_version,
            canary_version,
            router,
            progression,
            rollback_window,
            metrics,
            hooks,
        })
    }
}

/// `p` relative to the spec's directory, unless absolute.
fn resolve(base: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// The `router` section.
fn router_spec(cx: &Ctx<'_>, doc: &Value, base: &Path) -> Result<RouterSpec, ReleaseError> {
    let resolve = |p: &str| resolve(base, p);
    let r = doc
        .get("router")
        .ok_or_else(|| cx.err("router", "a canary spec needs a router"))?;
    if let Some(h) = r.get("haproxy") {
        let get = |k: &str| {
            cx.opt_str(h, k, "router.haproxy")?
                .ok_or_else(|| cx.err(&format!("router.haproxy.{k}"), "missing"))
        };
        Ok(RouterSpec::Haproxy {
            socket: resolve(&get("socket")?),
            backend: get("backend")?,
            stable: get("stable")?,
            canary: get("canary")?,
        })
    } else if let Some(f) = r.get("flag") {
        let get = |k: &str| {
            cx.opt_str(f, k, "router.flag")?
                .ok_or_else(|| cx.err(&format!("router.flag.{k}"), "missing"))
        };
        Ok(RouterSpec::Flag {
            file: resolve(&get("file")?),
            flag: get("flag")?,
        })
    } else {
        Err(cx.err("router", "supported routers: haproxy, flag"))
    }
}

/// The progression part of the `analysis` section: interval, deadlines,
/// threshold, steps and what to do on no data or failure.
fn progression_spec(cx: &Ctx<'_>, a: &Value) -> Result<Progression, ReleaseError> {
    let mut progression = Progression::default();
    if let Some(i) = cx.duration(a, "interval", "analysis")? {
        progression.interval = i;
    }
    if let Some(d) = cx.duration(a, "progressDeadline", "analysis")? {
        progression.progress_deadline = d;
    }
    if let Some(d) = cx.duration(a, "bakeTime", "analysis")? {
        progression.bake_time = d;
    }
    if let Some(t) = cx.int(a, "threshold", "analysis")? {
        progression.threshold = u32::try_from(t)
            .ok()
            .filter(|t| *t >= 1)
            .ok_or_else(|| cx.err("analysis.threshold", format!("{t}: must be 1 or more")))?;
    }
    if let Some(ws) = a.get("stepWeights") {
        let list = ws
            .as_array()
            .ok_or_else(|| cx.err("analysis.stepWeights", "expected a list of weights"))?;
        let mut v = Vec::with_capacity(list.len());
        for (i, w) in list.iter().enumerate() {
            v.push(
                w.as_u64()
                    .and_then(|w| u32::try_from(w).ok())
                    .ok_or_else(|| {
                        cx.err(
                            &format!("analysis.stepWeights[{i}]"),
                            format!("{}: not a weight", short(w)),
                        )
                    })?,
            );
        }
        progression.steps = Steps::Explicit(v);
    } else if let Some(step) = cx.int(a, "stepWeight", "analysis")? {
        let max = cx.int(a, "maxWeight", "analysis")?.unwrap_or(100);
        progression.steps = Steps::Linear {
            step_weight: u32::try_from(step).unwrap_or(0),
            max_weight: u32::try_from(max).unwrap_or(0),
        };
    }
    progression
        .steps
        .validate()
        .map_err(|e| cx.err("analysis.stepWeights", e))?;
    if let Some(s) = cx.opt_str(a, "onNoData", "analysis")? {
        progression.on_no_data = match s.as_str() {
            "pause" => OnNoData::Pause,
            "fail" => OnNoData::Fail,
            other => {
                return Err(cx.err(
                    "analysis.onNoData",
                    format!("{}: use pause or fail", flightdeck_obs_core::shown(other)),
                ));
            }
        };
    }
    if let Some(s) = cx.opt_str(a, "onFailure", "analysis")? {
        progression.on_failure = match s.as_str() {
            "rollback" => OnFailure::Rollback,
            "pause" => OnFailure::Pause,
            other => {
                return Err(cx.err(
                    "analysis.onFailure",
                    format!(
                        "{}: use rollback or pause",
                        flightdeck_obs_core::shown(other)
                    ),
                ));
            }
        };
    }
    Ok(progression)
}

/// `analysis.args`, as text.
fn analysis_args(a: &Value) -> BTreeMap<String, String> {
    let mut args = BTreeMap::new();
    if let Some(m) = a.get("args").and_then(Value::as_object) {
        for (k, v) in m {
            let v = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            args.insert(k.clone(), v);
        }
    }
    args
}

/// `analysis.judge`: Kayenta's judge over Prometheus, as one analysis metric.
fn judge_metric(
    cx: &Ctx<'_>,
    j: &Value,
    args: &BTreeMap<String, String>,
    base: &Path,
    interval: Duration,
) -> Result<AnalysisMetric, ReleaseError> {
    let resolve = |p: &str| resolve(base, p);
    let get = |k: &str| {
        cx.opt_str(j, k, "analysis.judge")?
            .ok_or_else(|| cx.err(&format!("analysis.judge.{k}"), "missing"))
    };
    let config_path = resolve(&get("config")?);
    let config_text = std::fs::read_to_string(&config_path).map_err(|e| {
        cx.err(
            "analysis.judge.config",
            format!("cannot read {}: {e}", config_path.display()),
        )
    })?;
    let config = CanaryConfig::from_json(&config_text, &config_path.display().to_string())?;
    let judge = JudgeProvider {
        prometheus: Prometheus::new(&get("prometheus")?, Duration::from_secs(10)),
        config,
        baseline: substitute(&get("baseline")?, args),
        canary: substitute(&get("canary")?, args),
        lookback: cx
            .duration(j, "lookback", "analysis.judge")?
            .unwrap_or(Duration::from_secs(60)),
        step: cx
            .duration(j, "step", "analysis.judge")?
            .unwrap_or(Duration::from_secs(5)),
        min_samples: cx
            .int(j, "minSamples", "analysis.judge")?
            .map_or(5, |n| usize::try_from(n.max(1)).unwrap_or(5)),
    };
    let mut spec = MetricSpec::new(
        cx.opt_str(j, "name", "analysis.judge")?
            .unwrap_or_else(|| "judge".into()),
    );
    spec.interval = Some(interval);
    Ok(AnalysisMetric::new(spec, Provider::Judge(Box::new(judge))))
}

/// `analysis.sloBurn`: the SLO's multi-window burn rates, as one analysis metric.
fn slo_burn_metric(
    cx: &Ctx<'_>,
    b: &Value,
    args: &BTreeMap<String, String>,
    interval: Duration,
) -> Result<AnalysisMetric, ReleaseError> {
    let p = "analysis.sloBurn";
    let get = |k: &str| {
        cx.opt_str(b, k, p)?
            .ok_or_else(|| cx.err(&format!("{p}.{k}"), "missing"))
    };
    let error_ratio = substitute(&get("errorRatio")?, args);
    if !error_ratio.contains("${window}") {
        return Err(cx.err(
            &format!("{p}.errorRatio"),
            "the query must use ${window} for the range",
        ));
    }
    let objective = b
        .get("objective")
        .and_then(Value::as_f64)
        .filter(|o| *o > 0.0 && *o < 100.0)
        .ok_or_else(|| {
            cx.err(
                &format!("{p}.objective"),
                "give the objective in percent, e.g. 99.9",
            )
        })?
        / 100.0;
    let period = cx.opt_str(b, "windows", p)?.unwrap_or_else(|| "30d".into());
    let windows = flightdeck_slo::PromDuration::parse(&period)
        .ok()
        .and_then(flightdeck_slo::AlertWindows::builtin)
        .ok_or_else(|| {
            cx.err(
                &format!("{p}.windows"),
                format!("{}: use 30d or 28d", flightdeck_obs_core::shown(&period)),
            )
        })?;
    let scale = b.get("scale").and_then(Value::as_f64).unwrap_or(1.0);
    if !(scale > 0.0 && scale <= 1.0) {
        return Err(cx.err(&format!("{p}.scale"), format!("{scale}: must be in (0, 1]")));
    }
    let mut spec = MetricSpec::new(
        cx.opt_str(b, "name", p)?
            .unwrap_or_else(|| "slo-burn".into()),
    );
    spec.interval = Some(interval);
    spec.dry_run = b.get("dryRun").and_then(Value::as_bool).unwrap_or(false);
    Ok(AnalysisMetric::new(
        spec,
        Provider::SloBurn(Box::new(crate::provider::SloBurnProvider {
            prometheus: Prometheus::new(&get("prometheus")?, Duration::from_secs(10)),
            error_ratio,
            objective,
            windows,
            scale,
        })),
    ))
}

/// `analysis.webhooks`: Flagger-style hooks (a URL or a command).
fn webhooks(
    cx: &Ctx<'_>,
    a: &Value,
    args: &BTreeMap<String, String>,
) -> Result<Vec<crate::hooks::Hook>, ReleaseError> {
    let mut hooks = Vec::new();
    if let Some(ws) = a.get("webhooks") {
        let list = ws
            .as_array()
            .ok_or_else(|| cx.err("analysis.webhooks", "expected a list"))?;
        for (i, w) in list.iter().enumerate() {
            let p = format!("analysis.webhooks[{i}]");
            let name = cx
                .opt_str(w, "name", &p)?
                .ok_or_else(|| cx.err(&format!("{p}.name"), "a webhook needs a name"))?;
            let kind_text = cx
                .opt_str(w, "type", &p)?
                .unwrap_or_else(|| "rollout".into());
            let kind = crate::hooks::HookKind::parse(&kind_text).ok_or_else(|| {
                cx.err(
                    &format!("{p}.type"),
                    format!(
                        "{}: use confirm-rollout, pre-rollout, rollout, confirm-traffic-increase, confirm-promotion, post-rollout or rollback",
                        flightdeck_obs_core::shown(&kind_text)
                    ),
                )
            })?;
            let target = if let Some(url) = cx.opt_str(w, "url", &p)? {
                crate::hooks::HookTarget::Web {
                    url: substitute(&url, args),
                }
            } else if let Some(list) = w.get("command").and_then(Value::as_array) {
                let mut argv = Vec::with_capacity(list.len());
                for x in list {
                    argv.push(substitute(cx.str(x, &format!("{p}.command"))?, args));
                }
                if argv.is_empty() {
                    return Err(cx.err(&format!("{p}.command"), "give a program"));
                }
                crate::hooks::HookTarget::Command { argv }
            } else {
                return Err(cx.err(&p, "a webhook needs a url or a command"));
            };
            hooks.push(crate::hooks::Hook {
                name,
                kind,
                target,
                timeout: cx
                    .duration(w, "timeout", &p)?
                    .unwrap_or(Duration::from_secs(10)),
            });
        }
    }
    Ok(hooks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhooks_read_and_a_bad_type_is_named() {
        let text = "name: r\nrouter:\n  flag: {file: flags.yaml, flag: f}\nanalysis:\n  metrics:\n    - name: ok\n      provider: {command: {argv: [\"true\"]}}\n  webhooks:\n    - {name: gate, type: confirm-promotion, url: 'http://127.0.0.1:9/gate'}\n    - {name: smoke, type: pre-rollout, command: [./smoke.sh], timeout: 30s}\n";
        let spec = CanarySpec::from_yaml(text, Path::new("dir/canary.yaml")).unwrap();
        assert_eq!(spec.hooks.len(), 2);
        assert_eq!(spec.hooks[1].kind, crate::hooks::HookKind::PreRollout);
        assert_eq!(spec.hooks[1].timeout, Duration::from_secs(30));
        assert!(
            matches!(&spec.router, RouterSpec::Flag { file, .. } if file == Path::new("dir/flags.yaml"))
        );
        let bad = text.replace("type: pre-rollout", "type: pre-flight");
        let err = CanarySpec::from_yaml(&bad, Path::new("c.yaml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("c.yaml:")
                && err.contains("webhooks[1].type")
                && err.contains("pre-flight"),
            "{err}"
        );
    }

    #[test]
    fn argo_template_forms_read() {
        let t = r#"
kind: AnalysisTemplate
apiVersion: argoproj.io/v1alpha1
metadata: {name: success-rate}
spec:
  args:
    - name: service
      value: rag
  metrics:
    - name: success-rate
      interval: 5s
      count: "3"
      failureLimit: 1
      successCondition: result[0] >= 0.95
      provider:
        prometheus:
          address: http://127.0.0.1:9090
          query: sum(rate(http_server_requests_total{job="{{args.service}}"}[1m]))
"#;
        let ms = analysis_template(t, "t.yaml", &BTreeMap::new()).unwrap();
        assert_eq!(ms[0].spec.count, Some(3));
        assert_eq!(ms[0].spec.failure_limit, 1);
        match &ms[0].provider {
            Provider::Prometheus { query, .. } => assert!(query.contains("job=\"rag\""), "{query}"),
            other => panic!("{other:?}"),
        }
        let bad = t.replace("result[0] >= 0.95", "result[0] >=");
        let err = analysis_template(&bad, "t.yaml", &BTreeMap::new())
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("t.yaml:") && err.contains("successCondition"),
            "{err}"
        );
    }
}

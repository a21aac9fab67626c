//! Guarded flag rollouts: ramp a flag's rollout in a running service while
//! its flag-on cohort holds up against its flag-off cohort, and kill the
//! flag the moment it does not.
//!
//! Every interval the guard reads the service's `/metrics` (the per-cohort
//! answers, errors, latency and relevance it records, labelled `flag` and
//! `cohort`), turns the growth since the last read into one sample per
//! cohort, and judges the last window of samples with Kayenta's judge
//! (flag-off as the baseline, flag-on as the canary: error ratio — critical,
//! mean latency, mean relevance) and the flag-on cohort's SLO burn. The
//! [controller](crate::controller) moves the rollout through the steps
//! (through the flags file the service watches, [`FlagRouter`]) while they
//! hold; the first failed check rolls back, which kills the flag (its kill
//! switch beats every rollout, in every process watching the file) and sets
//! its rollout to 0. Every step, analysis and the reason are in the ledger.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::controller::{Analyzer, CanaryManager, CheckResult};
use crate::error::ReleaseError;
use crate::judge::{CanaryConfig, Judge, MetricSetPair, Verdict};
use crate::ledger::{Ledger, ReleaseState};
use crate::progression::{CheckOutcome, OnFailure, OnNoData, Progression, Steps};
use crate::router::FlagRouter;

/// The service's per-cohort metric names (`flightdeck-service` records them).
pub const COHORT_REQUESTS: &str = "flightdeck_flag_cohort_requests_total";
/// Latency by cohort (a summary: `_sum` and `_count`), seconds.
pub const COHORT_LATENCY: &str = "flightdeck_flag_cohort_request_duration_seconds";
/// Relevance by cohort (a summary).
pub const COHORT_RELEVANCE: &str = "flightdeck_flag_cohort_relevance";

/// How a guard runs.
#[derive(Debug, Clone)]
pub struct GuardOptions {
    /// The flag.
    pub flag: String,
    /// The flags file the service watches (the rollout is ramped in it, and
    /// the kill switch lives beside it).
    pub flags_file: PathBuf,
    /// The service's `/metrics` URL.
    pub metrics_url: String,
    /// Rollout steps before full coverage (a 100 in them is the promotion).
    pub steps: Vec<u32>,
    /// Time between checks.
    pub interval: Duration,
    /// How long each step holds before a pass moves it on.
    pub bake: Duration,
    /// Samples (intervals) the judge looks at.
    pub window: usize,
    /// Requests each cohort needs in the window before it is judged.
    pub min_requests: u64,
    /// The flag-on cohort's availability objective (percent).
    pub objective: f64,
    /// Burn rate of that objective's error budget that kills the flag.
    pub max_burn: f64,
    /// Where the ledger lives.
    pub state_dir: PathBuf,
}

impl GuardOptions {
    /// Defaults for `flag` in `flags_file`, read from `metrics_url`.
    pub fn new(flag: &str, flags_file: PathBuf, metrics_url: &str, state_dir: PathBuf) -> Self {
        Self {
            flag: flag.to_owned(),
            flags_file,
            metrics_url: metrics_url.to_owned(),
            steps: vec![5, 25, 50],
            interval: Duration::from_secs(10),
            bake: Duration::from_secs(30),
            window: 10,
            min_requests: 20,
            objective: 99.9,
            max_burn: 14.4,
            state_dir,
        }
    }
}

/// One cohort's totals at a read of `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Totals {
    /// Answers that succeeded.
    pub ok: f64,
    /// Answers that failed.
    pub failed: f64,
    /// Sum and count of latency (seconds).
    pub latency: (f64, f64),
    /// Sum and count of relevance.
    pub relevance: (f64, f64),
}

/// The labels of a Prometheus text line's series, when it has `flag`.
fn labels(series: &str) -> Vec<(&str, &str)> {
    let Some((_, rest)) = series.split_once('{') else {
        return Vec::new();
    };
    rest.trim_end_matches('}')
        .split(',')
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            Some((k.trim(), v.trim().trim_matches('"')))
        })
        .collect()
}

/// The `[off, on]` totals of `flag` in a `/metrics` page.
pub fn read_totals(page: &str, flag: &str) -> [Totals; 2] {
    let mut out = [Totals::default(); 2];
    for line in page.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(v) = value.parse::<f64>() else {
            continue;
        };
        let name = series.split('{').next().unwrap_or(series);
        let ls = labels(series);
        let get = |k: &str| ls.iter().find(|(n, _)| *n == k).map(|(_, v)| *v);
        if get("flag") != Some(flag) {
            continue;
        }
        let i = match get("cohort") {
            Some("on") => 1,
            Some("off") => 0,
            _ => continue,
        };
        let t = &mut out[i];
        match name {
            n if n == COHORT_REQUESTS => match get("outcome") {
                Some("ok") => t.ok += v,
                Some(_) => t.failed += v,
                None => {}
            },
            n if n == format!("{COHORT_LATENCY}_sum") => t.latency.0 += v,
            n if n == format!("{COHORT_LATENCY}_count") => t.latency.1 += v,
            n if n == format!("{COHORT_RELEVANCE}_sum") => t.relevance.0 += v,
            n if n == format!("{COHORT_RELEVANCE}_count") => t.relevance.1 += v,
            _ => {}
        }
    }
    out
}

/// One interval of one cohort.
#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    requests: f64,
    failed: f64,
    latency: f64,
    relevance: f64,
}

fn sample(now: &Totals, before: &Totals) -> Sample {
    let d = |a: f64, b: f64| (a - b).max(0.0);
    let requests = d(now.ok + now.failed, before.ok + before.failed);
    let ratio = |(s1, c1): (f64, f64), (s0, c0): (f64, f64)| {
        let c = d(c1, c0);
        if c > 0.0 { d(s1, s0) / c } else { f64::NAN }
    };
    Sample {
        requests,
        failed: d(now.failed, before.failed),
        latency: ratio(now.latency, before.latency),
        relevance: ratio(now.relevance, before.relevance),
    }
}

/// The judge's config for cohorts: error ratio (critical), mean latency,
/// mean relevance (a decrease is bad).
fn cohort_config() -> CanaryConfig {
    let config = json!({
        "name": "flag-cohorts",
        "metrics": [
            {"name": "error_ratio", "groups": ["errors"],
             "analysisConfigurations": {"canary": {"direction": "increase", "critical": true}}},
            {"name": "latency_mean", "groups": ["latency"],
             "analysisConfigurations": {"canary": {"direction": "increase", "effectSize": {"allowedIncrease": 1.5}}}},
            {"name": "relevance_mean", "groups": ["quality"],
             "analysisConfigurations": {"canary": {"direction": "decrease", "effectSize": {"allowedDecrease": 0.8}}}}
        ],
        "classifier": {"groupWeights": {"errors": 50, "latency": 25, "quality": 25},
                       "scoreThresholds": {"pass": 95, "marginal": 75}}
    });
    CanaryConfig::from_json(&config.to_string(), "built-in cohort config")
        .unwrap_or_else(|e| unreachable!("the built-in cohort config is valid: {e}"))
}

/// The guard's analysis: reads `/metrics`, judges the window.
#[derive(Debug)]
pub struct CohortAnalyzer {
    opts: GuardOptions,
    config: CanaryConfig,
    last: Option<[Totals; 2]>,
    window: VecDeque<[Sample; 2]>,
}

impl CohortAnalyzer {
    /// An analyzer for `opts`.
    pub fn new(opts: GuardOptions) -> Self {
        Self {
            config: cohort_config(),
            last: None,
            window: VecDeque::new(),
            opts,
        }
    }

    /// Reads the service once more and adds one sample per cohort.
    fn read(&mut self) -> Result<(), String> {
        let page = crate::env::metrics_page(&self.opts.metrics_url, Duration::from_secs(2))
            .map_err(|e| format!("cannot read {}: {e}", self.opts.metrics_url))?;
        let now = read_totals(&page, &self.opts.flag);
        if let Some(before) = self.last {
            self.window
                .push_back([sample(&now[0], &before[0]), sample(&now[1], &before[1])]);
            while self.window.len() > self.opts.window.max(2) {
                self.window.pop_front();
            }
        }
        self.last = Some(now);
        Ok(())
    }

    /// Judges the window: the result the controller acts on.
    fn judge(&self) -> CheckResult {
        let total =
            |i: usize, f: fn(&Sample) -> f64| -> f64 { self.window.iter().map(|s| f(&s[i])).sum() };
        let (off_n, on_n) = (total(0, |s| s.requests), total(1, |s| s.requests));
        let (off_failed, on_failed) = (total(0, |s| s.failed), total(1, |s| s.failed));
        let cohorts = json!({
            "off": {"requests": off_n, "failed": off_failed},
            "on": {"requests": on_n, "failed": on_failed},
            "samples": self.window.len(),
        });
        let min = self.opts.min_requests as f64;
        if on_n < min || off_n < min {
            return CheckResult {
                outcome: CheckOutcome::NoData,
                message: Some(format!(
                    "too few answers to compare the cohorts yet (on {on_n}, off {off_n}; each needs {})",
                    self.opts.min_requests
                )),
                detail: json!({"cohorts": cohorts}),
            };
        }
        // The flag-on cohort's SLO burn over the window.
        let budget = (1.0 - self.opts.objective / 100.0).max(1e-9);
        let burn = on_failed / on_n / budget;
        let series = |i: usize, f: fn(&Sample) -> f64| -> Vec<f64> {
            self.window
                .iter()
                .map(|s| {
                    if s[i].requests > 0.0 {
                        f(&s[i])
                    } else {
                        f64::NAN
                    }
                })
                .collect()
        };
        let ratio = |s: &Sample| s.failed / s.requests;
        let pairs = [
            MetricSetPair::new("error_ratio", series(0, ratio), series(1, ratio)),
            MetricSetPair::new(
                "latency_mean",
                series(0, |s| s.latency),
                series(1, |s| s.latency),
            ),
            MetricSetPair::new(
                "relevance_mean",
                series(0, |s| s.relevance),
                series(1, |s| s.relevance),
            ),
        ];
        let report = Judge::default().judge(&self.config, &pairs);
        let (verdict, report) = match report {
            Ok(r) => (
                r.classification,
                serde_json::to_value(&r).unwrap_or(Value::Null),
            ),
            Err(e) => {
                return CheckResult {
                    outcome: CheckOutcome::NoData,
                    message: Some(format!("the judge could not run: {e}")),
                    detail: json!({"cohorts": cohorts}),
                };
            }
        };
        let mut why = Vec::new();
        if verdict == Verdict::Fail {
            let failing: Vec<String> = report["metrics"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|m| m["classification"] != "Pass")
                .map(|m| {
                    format!(
                        "{} {}",
                        m["name"].as_str().unwrap_or("?"),
                        m["classification"].as_str().unwrap_or("?")
                    )
                })
                .collect();
            why.push(format!(
                "the judge failed the flag-on cohort against flag-off (score {}: {})",
                report["score"],
                failing.join(", ")
            ));
        }
        if burn >= self.opts.max_burn {
            why.push(format!(
                "the flag-on cohort burns its {} % error budget {burn:.1}x (limit {}x): {on_failed} of {on_n} answers failed",
                self.opts.objective, self.opts.max_burn
            ));
        }
        CheckResult {
            outcome: if why.is_empty() {
                CheckOutcome::Pass
            } else {
                CheckOutcome::Fail
            },
            message: (!why.is_empty()).then(|| why.join("; ")),
            detail: json!({"cohorts": cohorts, "burn_rate": burn, "judge": report}),
        }
    }
}

impl Analyzer for CohortAnalyzer {
    fn check(&mut self, _weight: u32) -> CheckResult {
        if let Err(e) = self.read() {
            return CheckResult {
                outcome: CheckOutcome::NoData,
                message: Some(e),
                detail: Value::Null,
            };
        }
        self.judge()
    }
}

/// The controller for a guard: the flag router, steps below 100, the first
/// failed check kills the flag.
///
/// # Errors
///
/// [`ReleaseError::Invalid`] for bad steps; ledger errors.
pub fn manager(opts: &GuardOptions) -> Result<CanaryManager, ReleaseError> {
    let steps: Vec<u32> = opts.steps.iter().copied().filter(|s| *s < 100).collect();
    if steps.is_empty() || steps.windows(2).any(|w| w[0] >= w[1]) || steps[0] == 0 {
        return Err(ReleaseError::Invalid(format!(
            "steps {:?}: rising percentages from 1, such as 5,25,50,100",
            opts.steps
        )));
    }
    let progression = Progression {
        interval: opts.interval,
        steps: Steps::Explicit(steps),
        threshold: 1,
        progress_deadline: (opts.interval * 60).max(opts.bake * 4),
        on_failure: OnFailure::Rollback,
        on_no_data: OnNoData::Pause,
        bake_time: opts.bake,
    };
    Ok(CanaryManager::new(
        Ledger::open(&opts.state_dir)?,
        Box::new(FlagRouter::new(&opts.flags_file, &opts.flag)),
        progression,
    ))
}

/// Runs a guarded rollout to its end: the flag fully on (`Succeeded`) or
/// killed (`RolledBack`). `stop` ends it early (the ledger keeps the state;
/// running again resumes).
///
/// # Errors
///
/// Ledger and router errors.
pub fn run(
    opts: &GuardOptions,
    stop: &dyn Fn() -> bool,
    progress: &mut dyn FnMut(&ReleaseState),
) -> Result<ReleaseState, ReleaseError> {
    let m = manager(opts)?;
    let running = m.ledger().state()?.is_some_and(|s| !s.phase.is_terminal());
    if !running {
        let id = format!("guard-{}-{}", opts.flag, crate::ledger::now_ms());
        m.start(&id, "off", "on")?;
    }
    let mut analyzer = CohortAnalyzer::new(opts.clone());
    loop {
        let t = Instant::now();
        let s = match m.tick(&mut analyzer) {
            Ok(s) => s,
            Err(ReleaseError::Conflict(_)) => m.state()?,
            Err(e) => return Err(e),
        };
        progress(&s);
        if s.phase.is_terminal() || stop() {
            return Ok(s);
        }
        if let Some(rest) = opts.interval.checked_sub(t.elapsed()) {
            std::thread::sleep(rest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = r#"# TYPE flightdeck_flag_cohort_requests_total counter
flightdeck_flag_cohort_requests_total{flag="f",cohort="on",outcome="ok"} 90
flightdeck_flag_cohort_requests_total{flag="f",cohort="on",outcome="error"} 10
flightdeck_flag_cohort_requests_total{flag="f",cohort="off",outcome="ok"} 200
flightdeck_flag_cohort_requests_total{flag="g",cohort="off",outcome="ok"} 7
flightdeck_flag_cohort_request_duration_seconds_sum{flag="f",cohort="on"} 5
flightdeck_flag_cohort_request_duration_seconds_count{flag="f",cohort="on"} 100
flightdeck_flag_cohort_relevance_sum{flag="f",cohort="off"} 160
flightdeck_flag_cohort_relevance_count{flag="f",cohort="off"} 200
"#;

    #[test]
    fn cohort_totals_read_from_prometheus_text() {
        let [off, on] = read_totals(PAGE, "f");
        assert_eq!((on.ok, on.failed), (90.0, 10.0));
        assert_eq!(on.latency, (5.0, 100.0));
        assert_eq!((off.ok, off.failed), (200.0, 0.0));
        assert_eq!(off.relevance, (160.0, 200.0));
        let s = sample(&on, &Totals::default());
        assert_eq!(s.requests, 100.0);
        assert!((s.latency - 0.05).abs() < 1e-12);
        assert!(s.relevance.is_nan(), "no relevance recorded: no sample");
    }

    fn analyzer(window: Vec<[Sample; 2]>) -> CohortAnalyzer {
        let mut a = CohortAnalyzer::new(GuardOptions::new(
            "f",
            "flags.yaml".into(),
            "http://x",
            "s".into(),
        ));
        a.window = window.into();
        a
    }

    fn s(requests: f64, failed: f64, latency: f64) -> Sample {
        Sample {
            requests,
            failed,
            latency,
            relevance: 0.8,
        }
    }

    #[test]
    fn a_failing_flag_on_cohort_fails_and_a_healthy_one_passes() {
        let healthy: Vec<[Sample; 2]> = (0..10)
            .map(|i| {
                [
                    s(40.0, 0.0, 0.05 + f64::from(i) * 1e-4),
                    s(10.0, 0.0, 0.05 + f64::from(i) * 1.1e-4),
                ]
            })
            .collect();
        let r = analyzer(healthy).judge();
        assert_eq!(r.outcome, CheckOutcome::Pass, "{:?}", r.message);
        let broken: Vec<[Sample; 2]> = (0..10)
            .map(|i| [s(40.0, 0.0, 0.05 + f64::from(i) * 1e-4), s(10.0, 3.0, 0.05)])
            .collect();
        let r = analyzer(broken).judge();
        assert_eq!(r.outcome, CheckOutcome::Fail);
        let m = r.message.unwrap();
        assert!(m.contains("error_ratio") && m.contains("burns"), "{m}");
        // Too few answers on a side: no data, never a pass.
        let thin: Vec<[Sample; 2]> = (0..3)
            .map(|_| [s(40.0, 0.0, 0.05), s(1.0, 0.0, 0.05)])
            .collect();
        assert_eq!(analyzer(thin).judge().outcome, CheckOutcome::NoData);
    }
}

//! An analysis run: each controller tick takes one measurement of every
//! metric still running, assesses each metric and the run as Argo does, and
//! turns the run's phase into the controller's check outcome (Failed or
//! Error → fail, Inconclusive → pause, no data → its own verdict).

use serde_json::{Value, json};

use crate::analysis::{
    Measurement, MetricResult, MetricSpec, Phase, assess_metric, assess_run, evaluate,
};
use crate::controller::{Analyzer, CheckResult};
use crate::expr::Condition;
use crate::ledger::now_ms;
use crate::progression::CheckOutcome;
use crate::provider::{Measured, Provider};

/// A metric and where its values come from.
#[derive(Debug, Clone)]
pub struct AnalysisMetric {
    /// Argo's settings (conditions, limits).
    pub spec: MetricSpec,
    /// The provider.
    pub provider: Provider,
}

impl AnalysisMetric {
    /// A metric; without conditions, a judge gets Kayenta's stage rule as
    /// its failure condition (`result.score <= result.thresholds.marginal`)
    /// and an SLO burn `result.firing == true`.
    pub fn new(mut spec: MetricSpec, provider: Provider) -> Self {
        if matches!(provider, Provider::Judge(_))
            && spec.success.is_none()
            && spec.failure.is_none()
        {
            spec.failure = Condition::parse("result.score <= result.thresholds.marginal").ok();
        }
        Self { spec, provider }
    }
}

/// The metrics of one release's analysis, with their results so far.
#[derive(Debug)]
pub struct AnalysisRun {
    metrics: Vec<AnalysisMetric>,
    results: Vec<MetricResult>,
}

impl AnalysisRun {
    /// A run over `metrics`.
    pub fn new(metrics: Vec<AnalysisMetric>) -> Self {
        let results = metrics
            .iter()
            .map(|m| MetricResult {
                name: m.spec.name.clone(),
                ..MetricResult::default()
            })
            .collect();
        Self { metrics, results }
    }

    /// The results so far.
    pub fn results(&self) -> &[MetricResult] {
        &self.results
    }
}

fn measure(m: &AnalysisMetric) -> (Option<Phase>, Option<Value>, Option<String>) {
    match m.provider.measure() {
        Ok(Measured::Value(v)) => {
            let (p, msg) = evaluate(&m.spec, &v);
            (Some(p), Some(v), msg)
        }
        Ok(Measured::Decided(ok, v)) => {
            if m.spec.success.is_some() || m.spec.failure.is_some() {
                let (p, msg) = evaluate(&m.spec, &v);
                (Some(p), Some(v), msg)
            } else {
                (
                    Some(if ok { Phase::Successful } else { Phase::Failed }),
                    Some(v),
                    (!ok).then(|| "the command exited with a failure".to_owned()),
                )
            }
        }
        // No data is not a measurement: it is its own verdict.
        Ok(Measured::NoData(v)) => {
            let why = v
                .get("no_data")
                .and_then(|d| serde_json::to_string(d).ok())
                .unwrap_or_else(|| "no data".into());
            (None, Some(v), Some(why))
        }
        Err(e) => (Some(Phase::Error), None, Some(e.to_string())),
    }
}

impl Analyzer for AnalysisRun {
    fn check(&mut self, weight: u32) -> CheckResult {
        let mut details = Vec::with_capacity(self.metrics.len());
        let mut nodata = Vec::new();
        for (m, r) in self.metrics.iter().zip(self.results.iter_mut()) {
            if r.phase.is_some_and(Phase::is_completed) {
                details.push(json!({"name": m.spec.name, "phase": r.phase, "message": r.message}));
                continue;
            }
            let (phase, value, message) = measure(m);
            match phase {
                Some(p) => r.record(Measurement {
                    phase: p,
                    value: value.clone(),
                    message: message.clone(),
                    finished_ms: now_ms(),
                }),
                None => {
                    if !m.spec.dry_run {
                        nodata.push(m.spec.name.clone());
                    }
                }
            }
            let (assessed, why) = assess_metric(&m.spec, r, false);
            if assessed.is_completed() {
                r.phase = Some(assessed);
                r.message.clone_from(&why);
            }
            details.push(json!({
                "name": m.spec.name,
                "measurement": phase,
                "value": value,
                "message": message,
                "phase": assessed,
                "assessment": why,
                "counts": {"count": r.count, "successful": r.successful, "failed": r.failed,
                           "inconclusive": r.inconclusive, "error": r.error},
                "dry_run": m.spec.dry_run,
            }));
        }
        let phases: Vec<(Phase, Option<String>)> = self
            .metrics
            .iter()
            .zip(&self.results)
            .map(|(m, r)| {
                let (p, msg) = assess_metric(&m.spec, r, false);
                // A failed measurement under its limit still explains a pause.
                let msg = msg.or_else(|| {
                    r.measurements
                        .last()
                        .filter(|x| x.phase != Phase::Successful)
                        .and_then(|x| x.message.clone())
                        .map(|e| format!("Metric \"{}\": {e}", m.spec.name))
                });
                (p, msg)
            })
            .collect();
        let (run, message) = assess_run(
            self.metrics
                .iter()
                .zip(&phases)
                .map(|(m, (p, msg))| (&m.spec, *p, msg.as_deref())),
        );
        let outcome = match run {
            Phase::Failed | Phase::Error => CheckOutcome::Fail,
            Phase::Inconclusive => CheckOutcome::Inconclusive,
            _ if !nodata.is_empty() => CheckOutcome::NoData,
            _ => CheckOutcome::Pass,
        };
        let message = match outcome {
            CheckOutcome::NoData => Some(format!("no data for {}", nodata.join(", "))),
            CheckOutcome::Pass => None,
            _ => message,
        };
        CheckResult {
            outcome,
            message,
            detail: json!({"weight": weight, "run": run, "metrics": details}),
        }
    }
}

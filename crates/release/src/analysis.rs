//! Argo Rollouts' analysis model: measurements, the metric assessment
//! (`assessMetricStatus`) and the run assessment, exactly as Argo computes
//! them, plus the explanation every abort carries (`Metric "error_rate"
//! assessed Failed due to failed (3) > failureLimit (2)`).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::expr::Condition;

/// A measurement's, metric's or run's phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Phase {
    /// Not started.
    Pending,
    /// In progress.
    Running,
    /// Passed.
    Successful,
    /// Failed.
    Failed,
    /// Could not be measured.
    Error,
    /// Neither success nor failure.
    Inconclusive,
}

impl Phase {
    /// The rank on Argo's lattice `Successful < Running < Pending <
    /// Inconclusive < Error < Failed` (the run takes the worst).
    pub fn rank(self) -> u8 {
        match self {
            Self::Successful => 0,
            Self::Running => 1,
            Self::Pending => 2,
            Self::Inconclusive => 3,
            Self::Error => 4,
            Self::Failed => 5,
        }
    }

    /// Whether the phase is final.
    pub fn is_completed(self) -> bool {
        matches!(
            self,
            Self::Successful | Self::Failed | Self::Error | Self::Inconclusive
        )
    }
}

/// One metric's settings (an Argo `AnalysisTemplate` metric, minus the
/// provider).
#[derive(Debug, Clone, PartialEq)]
pub struct MetricSpec {
    /// The metric's name.
    pub name: String,
    /// Time between measurements.
    pub interval: Option<Duration>,
    /// How many measurements (none and no interval: 1; interval only:
    /// indefinite).
    pub count: Option<u32>,
    /// Wait before the first measurement.
    pub initial_delay: Option<Duration>,
    /// `successCondition`.
    pub success: Option<Condition>,
    /// `failureCondition`.
    pub failure: Option<Condition>,
    /// `failureLimit` (0; −1 disables).
    pub failure_limit: i64,
    /// `inconclusiveLimit` (0).
    pub inconclusive_limit: i64,
    /// `consecutiveErrorLimit` (4).
    pub consecutive_error_limit: i64,
    /// `consecutiveSuccessLimit` (0: off).
    pub consecutive_success_limit: i64,
    /// Measured and reported, never decides the run.
    pub dry_run: bool,
}

impl MetricSpec {
    /// A metric with Argo's defaults.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            interval: None,
            count: None,
            initial_delay: None,
            success: None,
            failure: None,
            failure_limit: 0,
            inconclusive_limit: 0,
            consecutive_error_limit: 4,
            consecutive_success_limit: 0,
            dry_run: false,
        }
    }

    /// The number of measurements to take; `None` for indefinite.
    pub fn effective_count(&self) -> Option<u32> {
        match (self.count, self.interval) {
            (Some(c), _) if c > 0 => Some(c),
            (_, None) => Some(1),
            (_, Some(_)) => None,
        }
    }
}

/// Argo's `EvaluateResult`: the measurement's phase from its value.
///
/// No conditions: Successful (the code, not the docs). Success only:
/// Failed unless it holds. Failure only: Successful unless it holds. Both:
/// Failed if failure holds, Successful if success holds, else
/// Inconclusive. An evaluation error is an Error.
pub fn evaluate(spec: &MetricSpec, result: &Value) -> (Phase, Option<String>) {
    let check = |c: &Condition| c.eval(result).map_err(|e| format!("{}: {e}", c.text()));
    match (&spec.success, &spec.failure) {
        (None, None) => (Phase::Successful, None),
        (Some(s), None) => match check(s) {
            Ok(true) => (Phase::Successful, None),
            Ok(false) => (Phase::Failed, None),
            Err(e) => (Phase::Error, Some(e)),
        },
        (None, Some(f)) => match check(f) {
            Ok(true) => (Phase::Failed, None),
            Ok(false) => (Phase::Successful, None),
            Err(e) => (Phase::Error, Some(e)),
        },
        (Some(s), Some(f)) => match (check(f), check(s)) {
            (Err(e), _) | (_, Err(e)) => (Phase::Error, Some(e)),
            (Ok(true), _) => (Phase::Failed, None),
            (Ok(false), Ok(true)) => (Phase::Successful, None),
            (Ok(false), Ok(false)) => (Phase::Inconclusive, None),
        },
    }
}

/// One measurement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    /// Its phase.
    pub phase: Phase,
    /// The provider's value (JSON), when it answered.
    pub value: Option<Value>,
    /// Why it errored, or what the provider said.
    pub message: Option<String>,
    /// When it finished (Unix milliseconds).
    pub finished_ms: u64,
}

/// A metric's measurements and counters (Argo's `MetricResult`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricResult {
    /// The metric's name.
    pub name: String,
    /// The last measurements (at most [`MAX_KEPT`]).
    pub measurements: Vec<Measurement>,
    /// Measurements taken.
    pub count: i64,
    /// Successful ones.
    pub successful: i64,
    /// Failed ones.
    pub failed: i64,
    /// Inconclusive ones.
    pub inconclusive: i64,
    /// Errors.
    pub error: i64,
    /// Errors in a row.
    pub consecutive_error: i64,
    /// Successes in a row.
    pub consecutive_success: i64,
    /// The assessed phase, once completed.
    pub phase: Option<Phase>,
    /// Why it completed the way it did.
    pub message: Option<String>,
}

/// How many measurements a result keeps (Argo's `measurementRetention`
/// default is 10).
pub const MAX_KEPT: usize = 10;

impl MetricResult {
    /// Records a measurement and updates the counters.
    pub fn record(&mut self, m: Measurement) {
        self.count += 1;
        match m.phase {
            Phase::Successful => {
                self.successful += 1;
                self.consecutive_success += 1;
                self.consecutive_error = 0;
            }
            Phase::Failed => {
                self.failed += 1;
                self.consecutive_success = 0;
                self.consecutive_error = 0;
            }
            Phase::Inconclusive => {
                self.inconclusive += 1;
                self.consecutive_success = 0;
                self.consecutive_error = 0;
            }
            Phase::Error => {
                self.error += 1;
                self.consecutive_error += 1;
                self.consecutive_success = 0;
            }
            Phase::Pending | Phase::Running => {}
        }
        self.measurements.push(m);
        if self.measurements.len() > MAX_KEPT {
            self.measurements.remove(0);
        }
    }
}

/// Argo's `assessMetricStatus`: the metric's phase and, when it completed
/// badly, the message that explains it.
pub fn assess_metric(
    spec: &MetricSpec,
    result: &MetricResult,
    terminating: bool,
) -> (Phase, Option<String>) {
    if let Some(p) = result.phase
        && p.is_completed()
    {
        return (p, result.message.clone());
    }
    if result.count == 0 && result.measurements.is_empty() {
        return (
            if terminating {
                Phase::Successful
            } else {
                Phase::Pending
            },
            None,
        );
    }
    if result
        .measurements
        .last()
        .is_some_and(|m| m.phase == Phase::Running)
    {
        return (Phase::Running, None);
    }
    let name = &spec.name;
    let mut phase = None;
    let mut message = None;
    if spec.failure_limit >= 0 && result.failed > spec.failure_limit {
        phase = Some(Phase::Failed);
        message = Some(format!(
            "Metric \"{name}\" assessed Failed due to failed ({}) > failureLimit ({})",
            result.failed, spec.failure_limit
        ));
    }
    if spec.inconclusive_limit >= 0 && result.inconclusive > spec.inconclusive_limit {
        phase = Some(Phase::Inconclusive);
        message = Some(format!(
            "Metric \"{name}\" assessed Inconclusive due to inconclusive ({}) > inconclusiveLimit ({})",
            result.inconclusive, spec.inconclusive_limit
        ));
    }
    if spec.consecutive_error_limit >= 0 && result.consecutive_error > spec.consecutive_error_limit
    {
        phase = Some(Phase::Error);
        message = Some(format!(
            "Metric \"{name}\" assessed Error due to consecutiveErrors ({}) > consecutiveErrorLimit ({})",
            result.consecutive_error, spec.consecutive_error_limit
        ));
    }
    if let Some(p) = phase {
        return (p, message);
    }
    let csl = spec.consecutive_success_limit > 0;
    if csl && result.consecutive_success >= spec.consecutive_success_limit {
        return (Phase::Successful, None);
    }
    match spec.effective_count() {
        Some(c) if result.count >= i64::from(c) => {
            let fl = spec.failure_limit >= 0;
            if fl && csl {
                (
                    Phase::Inconclusive,
                    Some(format!(
                        "Metric \"{name}\" assessed Inconclusive: count ({c}) reached with consecutiveSuccess ({}) < consecutiveSuccessLimit ({}) and failed ({}) ≤ failureLimit ({})",
                        result.consecutive_success,
                        spec.consecutive_success_limit,
                        result.failed,
                        spec.failure_limit
                    )),
                )
            } else if csl {
                (
                    Phase::Failed,
                    Some(format!(
                        "Metric \"{name}\" assessed Failed: count ({c}) reached with consecutiveSuccess ({}) < consecutiveSuccessLimit ({})",
                        result.consecutive_success, spec.consecutive_success_limit
                    )),
                )
            } else {
                (Phase::Successful, None)
            }
        }
        _ => (
            if terminating {
                Phase::Successful
            } else {
                Phase::Running
            },
            None,
        ),
    }
}

/// Argo's run assessment over the metrics' phases: the worst on the
/// lattice, dry-run metrics left out, with the first bad metric's message.
/// The run is terminating once any non-dry-run metric completed Failed,
/// Error or Inconclusive.
pub fn assess_run<'a>(
    metrics: impl IntoIterator<Item = (&'a MetricSpec, Phase, Option<&'a str>)>,
) -> (Phase, Option<String>) {
    let mut worst = Phase::Successful;
    let mut message = None;
    let mut any = false;
    for (spec, phase, msg) in metrics {
        if spec.dry_run {
            continue;
        }
        any = true;
        if phase.rank() > worst.rank() {
            worst = phase;
            message = msg.map(str::to_owned);
        }
    }
    if !any {
        return (Phase::Successful, None);
    }
    (worst, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_run_takes_the_worst_phase_and_ignores_dry_runs() {
        let a = MetricSpec::new("a");
        let mut b = MetricSpec::new("b");
        let (p, m) = assess_run([
            (&a, Phase::Successful, None),
            (&b, Phase::Failed, Some("b failed")),
        ]);
        assert_eq!((p, m.as_deref()), (Phase::Failed, Some("b failed")));
        b.dry_run = true;
        let (p, _) = assess_run([(&a, Phase::Running, None), (&b, Phase::Failed, None)]);
        assert_eq!(p, Phase::Running);
    }

    #[test]
    fn every_argo_evaluate_branch() {
        let v = serde_json::json!([0.5]);
        let mut s = MetricSpec::new("m");
        assert_eq!(evaluate(&s, &v).0, Phase::Successful);
        s.success = Some(Condition::parse("result[0] > 0.9").unwrap());
        assert_eq!(evaluate(&s, &v).0, Phase::Failed);
        s.failure = Some(Condition::parse("result[0] < 0.1").unwrap());
        assert_eq!(evaluate(&s, &v).0, Phase::Inconclusive);
        s.success = None;
        assert_eq!(evaluate(&s, &v).0, Phase::Successful);
        assert_eq!(evaluate(&s, &serde_json::json!([])).0, Phase::Error);
    }
}

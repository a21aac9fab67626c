//! Flagger's progression: every interval a passing check moves the canary
//! weight one step (linear `stepWeight` up to `maxWeight`, or explicit
//! `stepWeights`), a failing one adds to `failedChecks` (cumulative within a
//! run), `failedChecks ≥ threshold` or a missed `progressDeadline` rolls
//! back, and once the weight reaches the maximum the next passing check
//! promotes.
//!
//! What users of Argo and Flagger keep asking for is built in: no data is a
//! verdict with its own policy (pause or fail, never promote), and a failure
//! can pause instead of rolling back.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How the weight moves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Steps {
    /// `stepWeight` at a time until `maxWeight` is reached.
    Linear {
        /// The step.
        step_weight: u32,
        /// The weight at which the next passing check promotes.
        max_weight: u32,
    },
    /// Exactly these weights, then promote.
    Explicit(Vec<u32>),
}

impl Steps {
    /// The weight after `current` (Flagger's `nextStepWeight`), or `None`
    /// when the next passing check promotes.
    pub fn next(&self, current: u32) -> Option<u32> {
        match self {
            Self::Linear {
                step_weight,
                max_weight,
            } => (current < *max_weight).then(|| current + step_weight),
            Self::Explicit(ws) => ws.iter().copied().find(|w| *w > current),
        }
    }

    /// The weights a run passes through when every check passes.
    pub fn sequence(&self) -> Vec<u32> {
        let mut out = Vec::new();
        let mut w = 0;
        while let Some(n) = self.next(w) {
            if out.len() > 1000 {
                break;
            }
            out.push(n);
            w = n;
        }
        out
    }

    /// Checks the steps make progress: a step > 0, weights rising and at
    /// most 100.
    ///
    /// # Errors
    ///
    /// A message naming the bad value.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            Self::Linear {
                step_weight,
                max_weight,
            } => {
                if *step_weight == 0 || *step_weight > 100 {
                    return Err(format!("stepWeight {step_weight}: must be 1 to 100"));
                }
                if *max_weight == 0 || *max_weight > 100 {
                    return Err(format!("maxWeight {max_weight}: must be 1 to 100"));
                }
            }
            Self::Explicit(ws) => {
                if ws.is_empty() {
                    return Err("stepWeights: give at least one weight".into());
                }
                let mut last = 0;
                for (i, w) in ws.iter().enumerate() {
                    if *w <= last || *w > 100 {
                        return Err(format!(
                            "stepWeights[{i}] = {w}: weights must rise, each 1 to 100"
                        ));
                    }
                    last = *w;
                }
            }
        }
        Ok(())
    }
}

/// What a failed check does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OnFailure {
    /// Count it; roll back at the threshold (Flagger).
    #[default]
    Rollback,
    /// Pause for a person instead (Argo #2866, Flagger #1186).
    Pause,
}

/// What no data does (Argo #1905, Flagger #1098): never promote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OnNoData {
    /// Hold the weight and wait for data (within the progress deadline;
    /// past it, roll back).
    #[default]
    Pause,
    /// Count it as a failed check (Flagger's behaviour).
    Fail,
}

/// The analysis settings of a canary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Progression {
    /// Time between checks.
    #[serde(with = "crate::duration")]
    pub interval: Duration,
    /// How the weight moves.
    pub steps: Steps,
    /// Failed checks (cumulative within a run) that roll back (1).
    pub threshold: u32,
    /// A run that makes no progress this long rolls back (600 s).
    #[serde(with = "crate::duration")]
    pub progress_deadline: Duration,
    /// What a failed check does.
    #[serde(default)]
    pub on_failure: OnFailure,
    /// What no data does.
    #[serde(default)]
    pub on_no_data: OnNoData,
    /// How long each step must hold before a passing check moves the
    /// canary on (0: the first pass moves it, as Flagger does). Gives the
    /// judge a window of traffic at the step, not from before it.
    #[serde(default, with = "crate::duration")]
    pub bake_time: Duration,
}

impl Default for Progression {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(60),
            steps: Steps::Explicit(vec![5, 25, 100]),
            threshold: 1,
            progress_deadline: Duration::from_secs(600),
            on_failure: OnFailure::Rollback,
            on_no_data: OnNoData::Pause,
            bake_time: Duration::ZERO,
        }
    }
}

/// One check's outcome, as the analysis reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckOutcome {
    /// Every metric passed.
    Pass,
    /// A metric failed.
    Fail,
    /// A metric had no data.
    NoData,
    /// Inconclusive: a person should look (Argo pauses).
    Inconclusive,
}

/// What the controller should do after a check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "action")]
pub enum Decision {
    /// Move the canary to this weight.
    SetWeight {
        /// The new weight.
        weight: u32,
    },
    /// Promote: the canary becomes stable.
    Promote,
    /// Hold the weight; count the failure.
    Hold {
        /// Failed checks so far.
        failed_checks: u32,
    },
    /// Hold the weight without counting a failure (no data yet).
    Wait {
        /// Why.
        reason: String,
    },
    /// Pause for a person.
    Pause {
        /// Why.
        reason: String,
    },
    /// Roll back to stable.
    Rollback {
        /// Why.
        reason: String,
    },
}

/// The state Flagger keeps in `status`: the weight and the failed checks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// The canary's weight now.
    pub weight: u32,
    /// Failed checks in this run.
    pub failed_checks: u32,
}

impl Progression {
    /// One tick: the decision after a check, and the status it leaves.
    /// `since_progress` is the time since the weight last moved (for the
    /// progress deadline).
    pub fn decide(
        &self,
        status: Status,
        outcome: CheckOutcome,
        since_progress: Duration,
    ) -> (Decision, Status) {
        let mut s = status;
        let failed = match outcome {
            CheckOutcome::Pass => false,
            CheckOutcome::Fail => true,
            CheckOutcome::NoData => match self.on_no_data {
                OnNoData::Fail => true,
                OnNoData::Pause => {
                    if since_progress >= self.progress_deadline {
                        return (
                            Decision::Rollback {
                                reason: format!(
                                    "no data for {}s, past the progress deadline ({}s)",
                                    since_progress.as_secs(),
                                    self.progress_deadline.as_secs()
                                ),
                            },
                            s,
                        );
                    }
                    return (
                        Decision::Wait {
                            reason: "no data: holding the weight until metrics arrive (never promoting without data)".into(),
                        },
                        s,
                    );
                }
            },
            CheckOutcome::Inconclusive => {
                return (
                    Decision::Pause {
                        reason: "the analysis was inconclusive: promote or abort by hand".into(),
                    },
                    s,
                );
            }
        };
        if failed {
            s.failed_checks += 1;
            if self.on_failure == OnFailure::Pause {
                return (
                    Decision::Pause {
                        reason: format!(
                            "a check failed ({} so far); paused instead of rolling back",
                            s.failed_checks
                        ),
                    },
                    s,
                );
            }
            if s.failed_checks >= self.threshold {
                return (
                    Decision::Rollback {
                        reason: format!(
                            "failed checks ({}) reached the threshold ({})",
                            s.failed_checks, self.threshold
                        ),
                    },
                    s,
                );
            }
            return (
                Decision::Hold {
                    failed_checks: s.failed_checks,
                },
                s,
            );
        }
        if since_progress >= self.progress_deadline && s.weight > 0 {
            // Passing but stuck (a gate never opened): Flagger's deadline.
            return (
                Decision::Rollback {
                    reason: format!(
                        "no progress for {}s, past the progress deadline ({}s)",
                        since_progress.as_secs(),
                        self.progress_deadline.as_secs()
                    ),
                },
                s,
            );
        }
        if since_progress < self.bake_time && s.weight > 0 {
            return (
                Decision::Wait {
                    reason: format!(
                        "baking at {}%: {}s of {}s",
                        s.weight,
                        since_progress.as_secs(),
                        self.bake_time.as_secs()
                    ),
                },
                s,
            );
        }
        match self.steps.next(s.weight) {
            Some(w) => {
                s.weight = w;
                (Decision::SetWeight { weight: w }, s)
            }
            None => (Decision::Promote, s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_checks_accumulate_to_the_threshold() {
        let p = Progression {
            threshold: 2,
            ..Progression::default()
        };
        let s = Status::default();
        let (d, s) = p.decide(s, CheckOutcome::Pass, Duration::ZERO);
        assert_eq!(d, Decision::SetWeight { weight: 5 });
        let (d, s) = p.decide(s, CheckOutcome::Fail, Duration::ZERO);
        assert_eq!(d, Decision::Hold { failed_checks: 1 });
        let (d, s) = p.decide(s, CheckOutcome::Pass, Duration::ZERO);
        assert_eq!(d, Decision::SetWeight { weight: 25 });
        let (d, _) = p.decide(s, CheckOutcome::Fail, Duration::ZERO);
        assert!(matches!(d, Decision::Rollback { .. }), "cumulative: {d:?}");
    }

    #[test]
    fn no_data_pauses_and_never_promotes_then_rolls_back_at_the_deadline() {
        let p = Progression::default();
        let s = Status {
            weight: 100,
            failed_checks: 0,
        };
        let (d, _) = p.decide(s, CheckOutcome::NoData, Duration::from_secs(10));
        assert!(matches!(d, Decision::Wait { .. }), "{d:?}");
        let (d, _) = p.decide(s, CheckOutcome::NoData, Duration::from_secs(601));
        assert!(matches!(d, Decision::Rollback { .. }), "{d:?}");
        let (d, _) = p.decide(s, CheckOutcome::Pass, Duration::ZERO);
        assert_eq!(d, Decision::Promote);
    }

    #[test]
    fn a_step_bakes_before_a_pass_moves_it_on() {
        let p = Progression {
            bake_time: Duration::from_secs(10),
            steps: Steps::Explicit(vec![5, 25]),
            ..Default::default()
        };
        let s = Status {
            weight: 5,
            failed_checks: 0,
        };
        let (d, _) = p.decide(s, CheckOutcome::Pass, Duration::from_secs(3));
        assert!(
            matches!(&d, Decision::Wait { reason } if reason.contains("baking at 5%")),
            "{d:?}"
        );
        // A failure is not held back by the bake.
        let (d, st) = p.decide(s, CheckOutcome::Fail, Duration::from_secs(3));
        assert!(matches!(d, Decision::Rollback { .. }), "{d:?}");
        assert_eq!(st.failed_checks, 1);
        let (d, _) = p.decide(s, CheckOutcome::Pass, Duration::from_secs(10));
        assert_eq!(d, Decision::SetWeight { weight: 25 });
    }
}

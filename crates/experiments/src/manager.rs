//! The experiment manager: the original design's API (`register_experiment`,
//! `get_variant`, `record_result`) with a lifecycle, exposures, results and
//! live SRM checks.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use flightdeck_obs_core::{Clock, SystemClock};
use flightdeck_stats::DEFAULT_SRM_ALPHA;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::context::Context;
use crate::error::{ManagerError, ResultsError};
use crate::experiment::{Experiment, ExperimentResult};
use crate::exposure::ExposureLogger;
use crate::results::{ResultRecord, ResultsTracker};
use crate::srm::{SrmCheck, srm_check};

/// Where an experiment is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum Lifecycle {
    /// Defined, not serving: everyone gets variation 0, nothing is logged.
    Draft,
    /// Assigning users and logging exposures.
    Running,
    /// Finished: everyone gets `serve`, and no exposures are recorded.
    Stopped {
        /// The variation served to everyone (usually the winner).
        serve: usize,
    },
}

impl Lifecycle {
    fn name(self) -> &'static str {
        match self {
            Lifecycle::Draft => "draft",
            Lifecycle::Running => "running",
            Lifecycle::Stopped { .. } => "stopped",
        }
    }
}

/// An owned assignment, as the manager returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Variant {
    /// The experiment.
    pub experiment: String,
    /// The variation's index.
    pub variation_id: usize,
    /// The variation's key.
    pub key: String,
    /// The variation's value.
    pub value: Value,
    /// Whether the user counts as a participant.
    pub in_experiment: bool,
    /// The user's bucket, when hashed.
    pub bucket: Option<f64>,
}

impl Variant {
    fn of(r: &ExperimentResult<'_>) -> Self {
        Self {
            experiment: r.experiment_key.to_owned(),
            variation_id: r.variation_id,
            key: r.key.to_owned(),
            value: r.value.clone(),
            in_experiment: r.in_experiment,
            bucket: r.bucket,
        }
    }
}

#[derive(Debug)]
struct Managed {
    experiment: Experiment,
    state: RwLock<Lifecycle>,
    exposures: Vec<AtomicU64>,
}

/// Registers experiments, assigns users, logs exposures and records
/// results.
///
/// ```
/// use std::sync::Arc;
/// use flightdeck_experiments::{Experiment, ExperimentManager, ExposureLogger, InMemoryExposureSink};
/// use serde_json::json;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let sink = Arc::new(InMemoryExposureSink::new());
/// let manager = ExperimentManager::new().with_exposures(Arc::new(ExposureLogger::new(sink.clone())));
/// manager.register_experiment(Experiment::from_json(&json!({
///     "key": "reranker", "variations": ["off", "on"],
/// })))?;
/// let v = manager.get_variant("reranker", "user-7")?;
/// assert!(v.in_experiment);
/// manager.record_result("reranker", "user-7", &[("clicked", 1.0)])?;
/// manager.stop("reranker", 1)?;
/// assert_eq!(manager.get_variant("reranker", "user-7")?.value, json!("on"));
/// assert_eq!(sink.exposures().len(), 1); // none after stopping
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct ExperimentManager {
    experiments: RwLock<HashMap<String, Arc<Managed>>>,
    exposures: Option<Arc<ExposureLogger>>,
    results: ResultsTracker,
    clock: Arc<dyn Clock>,
}

impl Default for ExperimentManager {
    fn default() -> Self {
        Self::new()
    }
}

impl ExperimentManager {
    /// A manager with no exposure logging and in-memory results.
    pub fn new() -> Self {
        Self {
            experiments: RwLock::new(HashMap::new()),
            exposures: None,
            results: ResultsTracker::in_memory(),
            clock: Arc::new(SystemClock),
        }
    }

    /// Logs exposures through `logger`. Defaults to none.
    #[must_use]
    pub fn with_exposures(mut self, logger: Arc<ExposureLogger>) -> Self {
        self.exposures = Some(logger);
        self
    }

    /// Records results in `tracker` (for example one writing a file).
    /// Defaults to in-memory.
    #[must_use]
    pub fn with_results(mut self, tracker: ResultsTracker) -> Self {
        self.results = tracker;
        self
    }

    /// Reads time from `clock`. Defaults to the system clock.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Adds an experiment. It starts `Running`, or `Draft` when its JSON
    /// says `"status": "draft"` (`"stopped"` registers it stopped, serving
    /// variation 0).
    ///
    /// # Errors
    ///
    /// [`ManagerError::Duplicate`] when the key is taken.
    pub fn register_experiment(&self, experiment: Experiment) -> Result<(), ManagerError> {
        let mut map = self.experiments.write().unwrap_or_else(|p| p.into_inner());
        let key = experiment.key().to_owned();
        if map.contains_key(&key) {
            return Err(ManagerError::Duplicate(key));
        }
        let state = match experiment.raw().get("status").and_then(Value::as_str) {
            Some("draft") => Lifecycle::Draft,
            // A stopped experiment without a chosen variation serves the control.
            Some("stopped") => Lifecycle::Stopped { serve: 0 },
            _ => Lifecycle::Running,
        };
        let experiment = experiment.without_status();
        let exposures = (0..experiment.variations().len())
            .map(|_| AtomicU64::new(0))
            .collect();
        map.insert(
            key,
            Arc::new(Managed {
                experiment,
                state: RwLock::new(state),
                exposures,
            }),
        );
        Ok(())
    }

    fn get(&self, id: &str) -> Result<Arc<Managed>, ManagerError> {
        let map = self.experiments.read().unwrap_or_else(|p| p.into_inner());
        map.get(id)
            .cloned()
            .ok_or_else(|| ManagerError::Unknown(id.to_owned()))
    }

    /// The experiment's state.
    ///
    /// # Errors
    ///
    /// [`ManagerError::Unknown`].
    pub fn lifecycle(&self, id: &str) -> Result<Lifecycle, ManagerError> {
        let m = self.get(id)?;
        let state = *m.state.read().unwrap_or_else(|p| p.into_inner());
        Ok(state)
    }

    fn transition(&self, id: &str, to: Lifecycle) -> Result<(), ManagerError> {
        let m = self.get(id)?;
        let mut state = m.state.write().unwrap_or_else(|p| p.into_inner());
        let allowed = matches!(
            (*state, to),
            (Lifecycle::Draft, Lifecycle::Running)
                | (
                    Lifecycle::Draft | Lifecycle::Running,
                    Lifecycle::Stopped { .. }
                )
        );
        if !allowed {
            return Err(ManagerError::BadTransition {
                id: id.to_owned(),
                from: state.name(),
                to: to.name(),
            });
        }
        *state = to;
        Ok(())
    }

    /// Draft → running.
    ///
    /// # Errors
    ///
    /// [`ManagerError::BadTransition`] from any other state.
    pub fn start(&self, id: &str) -> Result<(), ManagerError> {
        self.transition(id, Lifecycle::Running)
    }

    /// Stops the experiment, serving variation `serve` to everyone.
    ///
    /// # Errors
    ///
    /// [`ManagerError::NoSuchVariation`], or [`ManagerError::BadTransition`]
    /// when already stopped.
    pub fn stop(&self, id: &str, serve: usize) -> Result<(), ManagerError> {
        let m = self.get(id)?;
        if serve >= m.experiment.variations().len() {
            return Err(ManagerError::NoSuchVariation {
                id: id.to_owned(),
                index: serve,
            });
        }
        self.transition(id, Lifecycle::Stopped { serve })
    }

    fn assign(&self, m: &Managed, ctx: &Context) -> Variant {
        let state = *m.state.read().unwrap_or_else(|p| p.into_inner());
        let exp = &m.experiment;
        let fixed = |index: usize| Variant {
            experiment: exp.key().to_owned(),
            variation_id: index,
            key: exp.variation_keys()[index].clone(),
            value: exp.variations()[index].clone(),
            in_experiment: false,
            bucket: None,
        };
        match state {
            Lifecycle::Draft => fixed(0),
            Lifecycle::Stopped { serve } => fixed(serve),
            Lifecycle::Running => {
                let r = exp.run(ctx);
                if r.in_experiment {
                    let logged = self.exposures.as_ref().is_some_and(|l| l.log(&r));
                    if logged {
                        m.exposures[r.variation_id].fetch_add(1, Ordering::Relaxed);
                    }
                }
                Variant::of(&r)
            }
        }
    }

    /// The variation for `user_id` (hashed as the `id` attribute).
    ///
    /// # Errors
    ///
    /// [`ManagerError::Unknown`].
    pub fn get_variant(&self, experiment_id: &str, user_id: &str) -> Result<Variant, ManagerError> {
        self.get_variant_for(experiment_id, &Context::for_user(user_id))
    }

    /// The variation for a full context (targeting attributes and all).
    ///
    /// # Errors
    ///
    /// [`ManagerError::Unknown`].
    pub fn get_variant_for(
        &self,
        experiment_id: &str,
        ctx: &Context,
    ) -> Result<Variant, ManagerError> {
        let m = self.get(experiment_id)?;
        Ok(self.assign(&m, ctx))
    }

    /// Records metric values for `user_id` under their variation. Returns
    /// `false` (and records nothing) when the user is not a participant.
    ///
    /// # Errors
    ///
    /// [`ResultsError::UnknownExperiment`], or [`ResultsError::NonFinite`].
    pub fn record_result(
        &self,
        experiment_id: &str,
        user_id: &str,
        metrics: &[(&str, f64)],
    ) -> Result<bool, ResultsError> {
        let m = self
            .get(experiment_id)
            .map_err(|_| ResultsError::UnknownExperiment(experiment_id.to_owned()))?;
        let state = *m.state.read().unwrap_or_else(|p| p.into_inner());
        if state != Lifecycle::Running {
            return Ok(false);
        }
        let ctx = Context::for_user(user_id);
        let r = m.experiment.run(&ctx);
        if !r.in_experiment {
            return Ok(false);
        }
        self.results.record(ResultRecord {
            timestamp_ms: self.clock.now_unix_nanos() / 1_000_000,
            experiment: experiment_id.to_owned(),
            user_id: user_id.to_owned(),
            variation_id: r.variation_id,
            variation_key: r.key.to_owned(),
            metrics: metrics
                .iter()
                .map(|(k, v)| ((*k).to_owned(), *v))
                .collect::<BTreeMap<_, _>>(),
        })?;
        Ok(true)
    }

    /// The results tracker.
    pub fn results(&self) -> &ResultsTracker {
        &self.results
    }

    /// Deduplicated exposures logged per variation since registration.
    ///
    /// # Errors
    ///
    /// [`ManagerError::Unknown`].
    pub fn exposure_counts(&self, id: &str) -> Result<Vec<u64>, ManagerError> {
        let m = self.get(id)?;
        Ok(m.exposures
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect())
    }

    /// Checks live exposure counts against the configured weights (p <
    /// 0.001 is a mismatch).
    ///
    /// # Errors
    ///
    /// [`ManagerError::Unknown`].
    pub fn srm(&self, id: &str) -> Result<SrmCheck, ManagerError> {
        let m = self.get(id)?;
        let counts: Vec<u64> = m
            .exposures
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        Ok(srm_check(
            &counts,
            m.experiment.weights(),
            DEFAULT_SRM_ALPHA,
        ))
    }
}

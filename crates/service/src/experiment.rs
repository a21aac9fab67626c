//! The `reranker-v2` experiment: which cross-encoder reranks, 50/50 by user,
//! with exposures logged once per user and per-request results recorded for
//! `flightdeck experiments analyze`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use flightdeck::experiments::analysis::{
    AnalysisConfig, ExperimentAnalysis, ExperimentAnalyzer, MetricSpec,
};
use flightdeck::experiments::{
    Context, Experiment, ExposureLogger, ExposureSink, JsonLinesExposureSink, ResultRecord,
    ResultsTracker, TracingExposureSink,
};

/// The experiment's key.
pub const RERANKER_EXPERIMENT: &str = "reranker-v2";

/// Users exposed so far, per experiment and variation (counted once per
/// user, as the exposure log is written).
pub const EXPOSURES_TOTAL: &str = "flightdeck_experiment_exposures_total";

/// The experiment's GrowthBook definition (what `flightdeck experiments
/// analyze --experiment` reads): cross-encoder v1 against v2, 50/50 by user.
pub fn definition() -> serde_json::Value {
    serde_json::json!({
        "key": RERANKER_EXPERIMENT,
        "variations": ["cross-encoder-v1", "cross-encoder-v2"],
        "weights": [0.5, 0.5],
        "hashAttribute": "id",
        "meta": [{"key": "control"}, {"key": "v2"}],
    })
}

/// The experiment with its exposure log and results.
#[derive(Debug)]
pub struct Reranker {
    experiment: Experiment,
    exposures: ExposureLogger,
    sink: Arc<dyn ExposureSink>,
    results: ResultsTracker,
}

/// One request's assignment.
#[derive(Debug, Clone)]
pub struct Assignment {
    /// The variation's index (0 is control).
    pub variation_id: usize,
    /// The variation's key (`control`, `v2`).
    pub key: String,
    /// The reranker model it chooses.
    pub model: String,
}

impl Reranker {
    /// The experiment, logging to `dir/exposures.jsonl` and
    /// `dir/results.jsonl` when given. Without a directory, exposures go to
    /// the JSON logs (target `flightdeck::exposure`, with the request's ids)
    /// and results to the in-memory summaries only: nothing keeps a copy of
    /// each exposure, so memory does not grow with the number of users.
    ///
    /// # Errors
    ///
    /// A message when the files cannot be opened.
    pub fn new(dir: Option<&Path>) -> Result<Self, String> {
        metrics::describe_counter!(
            EXPOSURES_TOTAL,
            metrics::Unit::Count,
            "Users exposed to an experiment, by experiment and variation (once per user)."
        );
        let experiment = Experiment::from_json(&definition());
        let (sink, results): (Arc<dyn ExposureSink>, ResultsTracker) = match dir {
            Some(d) => (
                Arc::new(
                    JsonLinesExposureSink::to_file(d.join("exposures.jsonl"), 65_536)
                        .map_err(|e| e.to_string())?,
                ),
                ResultsTracker::to_file(d.join("results.jsonl"), 65_536)
                    .map_err(|e| e.to_string())?,
            ),
            None => (Arc::new(TracingExposureSink), ResultsTracker::in_memory()),
        };
        Ok(Self {
            exposures: ExposureLogger::new(Arc::clone(&sink)),
            sink,
            experiment,
            results,
        })
    }

    /// The user's variation; the exposure is logged once per user.
    pub fn assign(&self, user_id: &str) -> Assignment {
        self.assign_in(&Context::new(serde_json::json!({ "id": user_id })))
    }

    /// The variation for a request's context (hashed on its `id`), so one
    /// context built per request serves the experiment and the flags.
    pub fn assign_in(&self, ctx: &Context) -> Assignment {
        let r = self.experiment.run(ctx);
        if self.exposures.log(&r) {
            // Low cardinality: one series per variation.
            metrics::counter!(EXPOSURES_TOTAL, "experiment" => RERANKER_EXPERIMENT, "variation" => r.key.to_owned())
                .increment(1);
        }
        Assignment {
            variation_id: r.variation_id,
            key: r.key.to_owned(),
            model: r.value.as_str().unwrap_or("cross-encoder-v1").to_owned(),
        }
    }

    /// Records one finished request for the analysis.
    pub fn record(
        &self,
        user_id: &str,
        a: &Assignment,
        latency_ms: f64,
        relevance: Option<f64>,
        ok: bool,
    ) {
        let mut metrics = BTreeMap::from([
            ("latency_ms".to_owned(), latency_ms),
            ("error".to_owned(), if ok { 0.0 } else { 1.0 }),
        ]);
        if let Some(r) = relevance {
            metrics.insert("relevance".to_owned(), r);
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let _ = self.results.record(ResultRecord {
            timestamp_ms: now,
            experiment: RERANKER_EXPERIMENT.to_owned(),
            user_id: user_id.to_owned(),
            variation_id: a.variation_id,
            variation_key: a.key.clone(),
            metrics,
        });
    }

    /// The analysis so far as JSON (`None` before any result).
    pub fn analysis(&self) -> Option<serde_json::Value> {
        serde_json::to_value(self.analyze()?).ok()
    }

    /// The analysis so far (`None` before any result): relevance as the
    /// goal, latency and errors as guardrails.
    pub fn analyze(&self) -> Option<ExperimentAnalysis> {
        let config = AnalysisConfig {
            metrics: vec![
                MetricSpec::parse("relevance:mean").ok()?,
                MetricSpec::parse("latency_ms:mean:lower:guardrail").ok()?,
                MetricSpec::parse("error:binomial:lower:guardrail").ok()?,
            ],
            ..AnalysisConfig::default()
        };
        ExperimentAnalyzer::new(config)
            .analyze_tracker(
                &self.results,
                RERANKER_EXPERIMENT,
                Some(self.experiment.weights()),
            )
            .ok()
    }

    /// Writes queued exposures and results.
    pub fn flush(&self, timeout: Duration) {
        let _ = self.sink.flush(timeout);
        let _ = self.results.flush(timeout);
    }
}

#[cfg(test)]
mod tests {
    use flightdeck_obs_core::{InMemoryLogs, JsonLogLayer};
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    /// Regression: without a data directory the exposures went to an
    /// in-memory list that nothing read and nothing bounded, one entry per
    /// user for as long as the service ran.
    #[test]
    fn without_a_directory_exposures_are_logged_once_per_user_and_not_kept() {
        let logs = InMemoryLogs::new();
        let subscriber = tracing_subscriber::registry().with(
            JsonLogLayer::builder()
                .with_in_memory(logs.clone())
                .build()
                .unwrap(),
        );
        tracing::subscriber::with_default(subscriber, || {
            let reranker = Reranker::new(None).unwrap();
            for _ in 0..3 {
                for user in ["ada", "grace", "edsger"] {
                    reranker.assign(user);
                }
            }
        });
        let exposures: Vec<_> = logs
            .json()
            .into_iter()
            .filter(|l| l["target"] == flightdeck::experiments::EXPOSURE_TARGET)
            .collect();
        let mut users: Vec<_> = exposures
            .iter()
            .map(|l| l["fields"]["hash_value"].as_str().unwrap().to_owned())
            .collect();
        users.sort();
        assert_eq!(users, ["ada", "edsger", "grace"], "{exposures:?}");
        assert!(
            exposures
                .iter()
                .all(|l| l["fields"]["experiment"] == RERANKER_EXPERIMENT)
        );
    }
}

//! Results tracking: streaming per-variation, per-metric summaries, persisted
//! as JSON Lines so an analysis can be rerun from the file.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use flightdeck_obs_core::{ExportError, JsonLinesWriter, WriterStats};
use flightdeck_stats::{
    Proportion, ProportionsTest, Summary, TTest, TTestKind, proportions_ztest, ttest,
};
use serde::{Deserialize, Serialize};

use crate::error::ResultsError;

/// One user's metric values in one variation (a line of the results file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultRecord {
    /// When, in Unix milliseconds.
    pub timestamp_ms: u64,
    /// The experiment's key.
    pub experiment: String,
    /// The user.
    pub user_id: String,
    /// The variation's index.
    pub variation_id: usize,
    /// The variation's key.
    pub variation_key: String,
    /// Metric name → value (a conversion is a value > 0).
    pub metrics: BTreeMap<String, f64>,
}

/// One metric in one variation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MetricSummary {
    /// Count, mean and variance (Welford, from `flightdeck-stats`).
    pub summary: Summary,
    /// How many values were > 0 (conversions).
    pub conversions: u64,
}

/// Everything recorded for one variation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VariationResults {
    /// The variation's key.
    pub key: String,
    /// Records received.
    pub records: u64,
    /// Metric name → summary.
    pub metrics: BTreeMap<String, MetricSummary>,
}

/// Variation index → results, for one experiment.
pub type ExperimentResults = BTreeMap<usize, VariationResults>;

/// Collects results in memory and, optionally, in a JSON Lines file written
/// off the caller's thread.
///
/// ```
/// use std::collections::BTreeMap;
/// use flightdeck_experiments::{ResultRecord, ResultsTracker};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let tracker = ResultsTracker::in_memory();
/// for (user, variation, converted) in [("a", 0, 0.0), ("b", 1, 1.0), ("c", 1, 1.0)] {
///     tracker.record(ResultRecord {
///         timestamp_ms: 0,
///         experiment: "e".into(),
///         user_id: user.into(),
///         variation_id: variation,
///         variation_key: variation.to_string(),
///         metrics: BTreeMap::from([("converted".to_owned(), converted)]),
///     })?;
/// }
/// let results = tracker.results("e").unwrap();
/// assert_eq!(results[&1].metrics["converted"].conversions, 2);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct ResultsTracker {
    state: Mutex<HashMap<String, ExperimentResults>>,
    writer: Option<JsonLinesWriter<ResultRecord>>,
}

impl ResultsTracker {
    /// Keeps results in memory only.
    pub fn in_memory() -> Self {
        Self {
            state: Mutex::new(HashMap::new()),
            writer: None,
        }
    }

    /// Keeps results in memory and appends each record to `path`.
    ///
    /// # Errors
    ///
    /// [`ResultsError::Writer`] when the file cannot be opened.
    pub fn to_file(path: impl AsRef<Path>, capacity: usize) -> Result<Self, ResultsError> {
        Ok(Self {
            state: Mutex::new(HashMap::new()),
            writer: Some(JsonLinesWriter::to_file(path, capacity, "results")?),
        })
    }

    /// Rebuilds the summaries from a results file.
    ///
    /// # Errors
    ///
    /// [`ResultsError::Io`] when unreadable, [`ResultsError::BadRecord`]
    /// naming the line of a record that does not parse.
    pub fn replay(path: &Path) -> Result<Self, ResultsError> {
        let text = std::fs::read_to_string(path).map_err(|source| ResultsError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let tracker = Self::in_memory();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let bad = |message: String| ResultsError::BadRecord {
                path: path.display().to_string(),
                line: i + 1,
                message,
            };
            let record: ResultRecord =
                serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
            tracker.apply(&record).map_err(|e| bad(e.to_string()))?;
        }
        Ok(tracker)
    }

    fn apply(&self, record: &ResultRecord) -> Result<(), ResultsError> {
        if let Some((m, v)) = record.metrics.iter().find(|(_, v)| !v.is_finite()) {
            return Err(ResultsError::NonFinite {
                metric: m.clone(),
                value: *v,
            });
        }
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        // Looked up before inserting: the names are cloned only the first
        // time an experiment or metric is seen, not on every record.
        let experiment = match state.get_mut(&record.experiment) {
            Some(e) => e,
            None => state.entry(record.experiment.clone()).or_default(),
        };
        let variation = experiment.entry(record.variation_id).or_default();
        if variation.key.is_empty() {
            variation.key.clone_from(&record.variation_key);
        }
        variation.records += 1;
        for (name, value) in &record.metrics {
            let m = match variation.metrics.get_mut(name) {
                Some(m) => m,
                None => variation
                    .metrics
                    .entry(name.clone())
                    .or_insert_with(|| MetricSummary {
                        summary: Summary::new(),
                        conversions: 0,
                    }),
            };
            m.summary.push(*value)?;
            if *value > 0.0 {
                m.conversions += 1;
            }
        }
        Ok(())
    }

    /// Adds one record to the summaries (and queues it for the file).
    ///
    /// # Errors
    ///
    /// [`ResultsError::NonFinite`] for a NaN or infinite value; nothing is
    /// recorded then.
    pub fn record(&self, record: ResultRecord) -> Result<(), ResultsError> {
        self.apply(&record)?;
        if let Some(w) = &self.writer {
            w.send(record);
        }
        Ok(())
    }

    /// A copy of one experiment's results.
    pub fn results(&self, experiment: &str) -> Option<ExperimentResults> {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.get(experiment).cloned()
    }

    /// The experiments with results.
    pub fn experiments(&self) -> Vec<String> {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let mut keys: Vec<_> = state.keys().cloned().collect();
        keys.sort();
        keys
    }

    /// Compares every variation with variation 0 on every metric.
    ///
    /// # Errors
    ///
    /// [`ResultsError::UnknownExperiment`] when nothing was recorded for it.
    pub fn analyze(&self, experiment: &str, alpha: f64) -> Result<Analysis, ResultsError> {
        let results = self
            .results(experiment)
            .ok_or_else(|| ResultsError::UnknownExperiment(experiment.to_owned()))?;
        Ok(Analysis::new(experiment, &results, alpha))
    }

    /// Waits until queued records are in the file.
    ///
    /// # Errors
    ///
    /// As [`JsonLinesWriter::flush`].
    pub fn flush(&self, timeout: Duration) -> Result<(), ExportError> {
        self.writer.as_ref().map_or(Ok(()), |w| w.flush(timeout))
    }

    /// Writes everything queued and closes the file.
    ///
    /// # Errors
    ///
    /// As [`JsonLinesWriter::shutdown`].
    pub fn shutdown(&self, timeout: Duration) -> Result<Option<WriterStats>, ExportError> {
        self.writer
            .as_ref()
            .map(|w| w.shutdown(timeout))
            .transpose()
    }
}

/// One metric of one treatment against the control.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricComparison {
    /// The metric.
    pub metric: String,
    /// The treatment's variation index.
    pub variation_id: usize,
    /// The treatment's key.
    pub variation_key: String,
    /// Control count, mean.
    pub control: (u64, f64),
    /// Treatment count, mean.
    pub treatment: (u64, f64),
    /// Welch's t-test of treatment minus control (when both have 2+ values).
    pub ttest: Option<TTest>,
    /// Two-proportion z-test on conversions (values > 0).
    pub conversion: Option<ProportionsTest>,
}

/// An experiment's comparisons.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    /// The experiment.
    pub experiment: String,
    /// The significance level used.
    pub alpha: f64,
    /// Records per variation.
    pub records: BTreeMap<usize, u64>,
    /// One per (treatment, metric).
    pub comparisons: Vec<MetricComparison>,
}

impl Analysis {
    fn new(experiment: &str, results: &ExperimentResults, alpha: f64) -> Self {
        let mut comparisons = Vec::new();
        if let Some(control) = results.get(&0) {
            for (&vid, variation) in results.iter().filter(|(id, _)| **id != 0) {
                for (metric, t) in &variation.metrics {
                    let Some(c) = control.metrics.get(metric) else {
                        continue;
                    };
                    let tt = (c.summary.count() >= 2 && t.summary.count() >= 2)
                        .then(|| ttest(&c.summary, &t.summary, TTestKind::Welch, alpha).ok())
                        .flatten();
                    let conversion = Proportion::new(c.conversions, c.summary.count())
                        .and_then(|a| {
                            Proportion::new(t.conversions, t.summary.count())
                                .and_then(|b| proportions_ztest(a, b, alpha))
                        })
                        .ok()
                        .filter(|p| p.p_value.is_finite());
                    comparisons.push(MetricComparison {
                        metric: metric.clone(),
                        variation_id: vid,
                        variation_key: variation.key.clone(),
                        control: (c.summary.count(), c.summary.mean()),
                        treatment: (t.summary.count(), t.summary.mean()),
                        ttest: tt,
                        conversion,
                    });
                }
            }
        }
        Self {
            experiment: experiment.to_owned(),
            alpha,
            records: results.iter().map(|(k, v)| (*k, v.records)).collect(),
            comparisons,
        }
    }

    /// A plain-text table.
    pub fn render_text(&self) -> String {
        let mut out = format!("experiment {} (alpha {})\n", self.experiment, self.alpha);
        for (v, n) in &self.records {
            let _ = writeln!(out, "  variation {v}: {n} records");
        }
        for c in &self.comparisons {
            let _ = write!(
                out,
                "  {} [{} vs control]: control {:.4} (n={}), treatment {:.4} (n={})",
                c.metric, c.variation_key, c.control.1, c.control.0, c.treatment.1, c.treatment.0
            );
            if let Some(t) = &c.ttest {
                let _ = write!(
                    out,
                    ", diff {:+.4} [{:+.4}, {:+.4}], p={:.4}",
                    t.diff, t.ci_low, t.ci_high, t.p_value
                );
            }
            out.push('\n');
        }
        out
    }
}

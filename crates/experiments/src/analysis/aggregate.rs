//! Streaming aggregation of result records: per arm and metric the sums
//! gbstats needs, plus a bounded timeline for the plots. Memory grows with
//! arms × metrics × time buckets (all capped), never with the file.

use std::collections::BTreeMap;
use std::io::BufRead;

use flightdeck_obs_core::locate::shown;
use serde::{Deserialize, Serialize};

use super::gbstats::ArmSums;
use crate::results::{ResultRecord, ResultsTracker};

/// The most variations an analysis accepts (a file naming more is refused).
pub const MAX_ARMS: usize = 64;
/// The most distinct metrics an analysis accepts.
pub const MAX_METRICS: usize = 256;
/// Timeline buckets kept; past this the bucket width doubles.
pub const MAX_BUCKETS: usize = 256;
/// The longest line read.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// A problem with the results input.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AnalysisError {
    /// A line that does not parse or holds a bad value.
    #[error("{file}:{line}: {message}")]
    BadLine {
        /// The file.
        file: String,
        /// 1-based line.
        line: usize,
        /// What is wrong, naming the value.
        message: String,
    },
    /// Reading failed.
    #[error("{file}: {source}")]
    Io {
        /// The file.
        file: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A bad setting (a metric declaration, the control, alpha).
    #[error("{0}")]
    Config(String),
}

/// One arm (variation) of one metric: sums over the values present, and
/// how many lines lacked the metric (they count as 0).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct MetricArm {
    /// Sums over present values.
    pub sums: ArmSums,
    /// Lines of this arm with the metric.
    pub present: u64,
}

/// One metric across arms.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MetricAgg {
    /// Per variation id.
    pub arms: BTreeMap<usize, MetricArm>,
    /// Whether any value is not 0 or 1 (so it cannot be binomial).
    pub non_binary: bool,
}

/// One timeline bucket: users per arm and per-metric sums per arm.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Bucket {
    /// Users per variation id.
    pub users: BTreeMap<usize, u64>,
    /// Metric → variation id → sums (present values only).
    pub metrics: BTreeMap<String, BTreeMap<usize, ArmSums>>,
}

/// Everything an analysis needs from the records.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Aggregate {
    /// Users (lines) per variation id.
    pub users: BTreeMap<usize, u64>,
    /// Variation keys as the records name them.
    pub keys: BTreeMap<usize, String>,
    /// Per metric.
    pub metrics: BTreeMap<String, MetricAgg>,
    /// Bucket start (Unix ms) → bucket.
    pub timeline: BTreeMap<u64, Bucket>,
    /// Bucket width in ms.
    pub bucket_ms: u64,
    /// Lines read for this experiment.
    pub lines: u64,
    /// Lines for other experiments, skipped.
    pub other_experiments: u64,
    /// Earliest and latest timestamps (Unix ms).
    pub span_ms: Option<(u64, u64)>,
}

impl Aggregate {
    fn new() -> Self {
        Self {
            bucket_ms: 60_000,
            ..Self::default()
        }
    }

    /// Adds one record.
    ///
    /// # Errors
    ///
    /// A message naming the value: a non-finite value, or more than
    /// [`MAX_ARMS`] variations or [`MAX_METRICS`] metrics.
    pub fn push(&mut self, r: &ResultRecord) -> Result<(), String> {
        let metrics: Vec<(&str, f64)> = r.metrics.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        self.push_parts(r.timestamp_ms, r.variation_id, &r.variation_key, &metrics)
    }

    /// [`push`](Self::push) from borrowed parts (what the streaming reader
    /// uses, so a line costs no allocation once its names are known).
    ///
    /// # Errors
    ///
    /// As [`push`](Self::push), and a metric named twice in one line.
    pub fn push_parts(
        &mut self,
        timestamp_ms: u64,
        variation_id: usize,
        variation_key: &str,
        metrics: &[(&str, f64)],
    ) -> Result<(), String> {
        for (i, (m, v)) in metrics.iter().enumerate() {
            if !v.is_finite() {
                return Err(format!("metric {} is {v}, not a finite number", shown(m)));
            }
            if metrics[..i].iter().any(|(k, _)| k == m) {
                return Err(format!("metric {} appears twice in the line", shown(m)));
            }
        }
        if !self.users.contains_key(&variation_id) && self.users.len() >= MAX_ARMS {
            return Err(format!(
                "variation_id {variation_id} would be variation number {}: at most {MAX_ARMS} are analyzed",
                MAX_ARMS + 1
            ));
        }
        if let Some((new, _)) = metrics.iter().find(|(k, _)| !self.metrics.contains_key(*k))
            && self.metrics.len() >= MAX_METRICS
        {
            return Err(format!(
                "metric {} would be metric number {}: at most {MAX_METRICS} are analyzed",
                shown(new),
                MAX_METRICS + 1
            ));
        }
        self.lines += 1;
        *self.users.entry(variation_id).or_insert(0) += 1;
        if !variation_key.is_empty() && !self.keys.contains_key(&variation_id) {
            self.keys.insert(variation_id, variation_key.to_owned());
        }
        for &(name, v) in metrics {
            let m = match self.metrics.get_mut(name) {
                Some(m) => m,
                None => self.metrics.entry(name.to_owned()).or_default(),
            };
            if v != 0.0 && v != 1.0 {
                m.non_binary = true;
            }
            let arm = m.arms.entry(variation_id).or_default();
            arm.sums.push(v);
            arm.present += 1;
        }
        self.span_ms = Some(match self.span_ms {
            None => (timestamp_ms, timestamp_ms),
            Some((lo, hi)) => (lo.min(timestamp_ms), hi.max(timestamp_ms)),
        });
        let start = timestamp_ms - timestamp_ms % self.bucket_ms;
        let bucket = self.timeline.entry(start).or_default();
        *bucket.users.entry(variation_id).or_insert(0) += 1;
        for &(name, v) in metrics {
            let m = match bucket.metrics.get_mut(name) {
                Some(m) => m,
                None => bucket.metrics.entry(name.to_owned()).or_default(),
            };
            m.entry(variation_id).or_default().push(v);
        }
        if self.timeline.len() > MAX_BUCKETS {
            self.coarsen();
        }
        Ok(())
    }

    /// Doubles the bucket width, merging neighbours.
    fn coarsen(&mut self) {
        while self.timeline.len() > MAX_BUCKETS {
            self.bucket_ms *= 2;
            let old = std::mem::take(&mut self.timeline);
            for (start, b) in old {
                let to = self
                    .timeline
                    .entry(start - start % self.bucket_ms)
                    .or_default();
                for (arm, n) in b.users {
                    *to.users.entry(arm).or_insert(0) += n;
                }
                for (name, arms) in b.metrics {
                    let m = to.metrics.entry(name).or_default();
                    for (arm, s) in arms {
                        let t = m.entry(arm).or_default();
                        t.n += s.n;
                        t.sum += s.sum;
                        t.sum_squares += s.sum_squares;
                    }
                }
            }
        }
    }

    /// Reads result records (JSON Lines) for `experiment` (all when `None`).
    ///
    /// # Errors
    ///
    /// [`AnalysisError::BadLine`] naming `file:line`, or
    /// [`AnalysisError::Io`].
    pub fn read(
        input: impl BufRead,
        file: &str,
        experiment: Option<&str>,
    ) -> Result<Self, AnalysisError> {
        let mut agg = Self::new();
        let mut input = input;
        let mut buf = Vec::new();
        let mut line = 0usize;
        loop {
            buf.clear();
            let n = std::io::Read::take(&mut input, MAX_LINE_BYTES as u64 + 1)
                .read_until(b'\n', &mut buf)
                .map_err(|source| AnalysisError::Io {
                    file: file.to_owned(),
                    source,
                })?;
            if n == 0 {
                break;
            }
            line += 1;
            let bad = |message: String| AnalysisError::BadLine {
                file: file.to_owned(),
                line,
                message,
            };
            if buf.len() > MAX_LINE_BYTES {
                return Err(bad(format!(
                    "the line is longer than {MAX_LINE_BYTES} bytes"
                )));
            }
            let text = std::str::from_utf8(&buf)
                .map_err(|e| bad(format!("not UTF-8 at byte {}", e.valid_up_to() + 1)))?;
            if text.trim().is_empty() {
                continue;
            }
            let record: Line<'_> = serde_json::from_str(text).map_err(|e| {
                let m = e.to_string();
                bad(m
                    .rsplit_once(" at line ")
                    .map_or(m.as_str(), |(a, _)| a)
                    .to_owned())
            })?;
            if experiment.is_some_and(|k| k != record.experiment.0) {
                agg.other_experiments += 1;
                continue;
            }
            let metrics: Vec<(&str, f64)> = record
                .metrics
                .0
                .iter()
                .map(|(k, v)| (k.0.as_ref(), *v))
                .collect();
            agg.push_parts(
                record.timestamp_ms,
                record.variation_id,
                &record.variation_key.0,
                &metrics,
            )
            .map_err(bad)?;
        }
        Ok(agg)
    }

    /// The aggregate of one experiment in a [`ResultsTracker`]. The tracker
    /// keeps count, mean and variance per metric; sums are rebuilt from
    /// them (exact to rounding). It keeps no timestamps, so no timeline.
    pub fn from_tracker(tracker: &ResultsTracker, experiment: &str) -> Option<Self> {
        let results = tracker.results(experiment)?;
        let mut agg = Self::new();
        for (&vid, v) in &results {
            agg.users.insert(vid, v.records);
            agg.lines += v.records;
            if !v.key.is_empty() {
                agg.keys.insert(vid, v.key.clone());
            }
            for (name, m) in &v.metrics {
                let s = &m.summary;
                let n = s.count();
                let mean = s.mean();
                let sums = ArmSums {
                    n,
                    sum: mean * n as f64,
                    sum_squares: s.variance() * (n.saturating_sub(1)) as f64
                        + n as f64 * mean * mean,
                };
                let entry = agg.metrics.entry(name.clone()).or_default();
                let zero_one = |x: f64| x == 0.0 || x == 1.0;
                let binary = zero_one(s.min())
                    && zero_one(s.max())
                    && (mean * n as f64 - m.conversions as f64).abs() < 1e-6;
                if !binary {
                    entry.non_binary = true;
                }
                entry.arms.insert(vid, MetricArm { sums, present: n });
            }
        }
        Some(agg)
    }

    /// One metric's sums for one arm with missing values counted as 0
    /// (n is the arm's users).
    pub fn arm_sums(&self, metric: &str, arm: usize) -> ArmSums {
        let users = self.users.get(&arm).copied().unwrap_or(0);
        let s = self
            .metrics
            .get(metric)
            .and_then(|m| m.arms.get(&arm))
            .map(|a| a.sums)
            .unwrap_or_default();
        ArmSums {
            n: users,
            sum: s.sum,
            sum_squares: s.sum_squares,
        }
    }

    /// Lines of `arm` without `metric`.
    pub fn missing(&self, metric: &str, arm: usize) -> u64 {
        let users = self.users.get(&arm).copied().unwrap_or(0);
        let present = self
            .metrics
            .get(metric)
            .and_then(|m| m.arms.get(&arm))
            .map_or(0, |a| a.present);
        users.saturating_sub(present)
    }
}

/// A string borrowed from the line when it has no escapes.
#[derive(Debug, Default)]
struct Text<'a>(std::borrow::Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = Text<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(
                self,
                v: &'de str,
            ) -> Result<Self::Value, E> {
                Ok(Text(std::borrow::Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(std::borrow::Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V(std::marker::PhantomData))
    }
}

/// A line's metrics in file order, names borrowed.
#[derive(Debug, Default)]
struct Metrics<'a>(Vec<(Text<'a>, f64)>);

impl<'de: 'a, 'a> Deserialize<'de> for Metrics<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = Metrics<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object of metric names to numbers")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(4));
                while let Some((k, v)) = map.next_entry::<Text<'a>, f64>()? {
                    out.push((k, v));
                }
                Ok(Metrics(out))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// One results line as the analyzer reads it (the `ResultRecord` shape;
/// `user_id` is not needed and not required).
#[derive(Debug, Deserialize)]
struct Line<'a> {
    timestamp_ms: u64,
    #[serde(borrow)]
    experiment: Text<'a>,
    variation_id: usize,
    #[serde(borrow, default)]
    variation_key: Text<'a>,
    #[serde(borrow)]
    metrics: Metrics<'a>,
}

//! [`MetricsCollector`]: latency, cost and quality in one place, mirrored
//! into the `metrics` facade for Prometheus.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::dashboard::{
    CostSummary, DashboardData, LatencySummary, ModelCost, OperationSummary, QualitySummary,
    RatingSummary, ScoreSummary,
};
use super::labels::LabelCap;
use super::sketch::{DEFAULT_MAX_BINS, LatencySketch};
use crate::clock::{Clock, SystemClock};
use crate::names::{metric, span};

/// Prices of one model, in micro-USD per million tokens (integers, so
/// cost arithmetic is exact).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelPrice {
    /// Micro-USD per 1,000,000 input tokens (`150_000` = $0.15 per million).
    pub input_usd_micros_per_mtok: u64,
    /// Micro-USD per 1,000,000 output tokens.
    pub output_usd_micros_per_mtok: u64,
}

impl ModelPrice {
    /// From USD per million tokens, rounded to the nearest micro-USD.
    pub fn from_usd_per_mtok(input: f64, output: f64) -> Self {
        Self {
            input_usd_micros_per_mtok: (input * 1e6).round().max(0.0) as u64,
            output_usd_micros_per_mtok: (output * 1e6).round().max(0.0) as u64,
        }
    }
}

/// Model name to price. Models missing from the table are counted but cost 0
/// and are flagged `priced: false` in the dashboard.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PriceTable {
    models: BTreeMap<String, ModelPrice>,
}

impl PriceTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a model's price.
    #[must_use]
    pub fn with_model(mut self, model: impl Into<String>, price: ModelPrice) -> Self {
        self.models.insert(model.into(), price);
        self
    }

    /// The price of `model`.
    pub fn get(&self, model: &str) -> Option<ModelPrice> {
        self.models.get(model).copied()
    }

    /// Number of priced models.
    pub fn len(&self) -> usize {
        self.models.len()
    }

    /// Whether no model is priced.
    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }
}

struct OpMetrics {
    sketch: LatencySketch,
    ok: AtomicU64,
    errors: AtomicU64,
    histogram: metrics::Histogram,
    ok_counter: metrics::Counter,
    error_counter: metrics::Counter,
}

struct ModelUsage {
    price: Option<ModelPrice>,
    input_tokens: AtomicU64,
    output_tokens: AtomicU64,
    calls: AtomicU64,
    /// Flat-priced spend (per-call APIs) in micro-USD.
    extra_usd_micros: AtomicU64,
    input_counter: metrics::Counter,
    output_counter: metrics::Counter,
    calls_counter: metrics::Counter,
    cost_counter: metrics::Counter,
}

impl ModelUsage {
    /// Total cost from the exact token totals: no per-call rounding drift.
    fn cost_usd_micros(&self) -> u64 {
        let p = self.price.unwrap_or(ModelPrice {
            input_usd_micros_per_mtok: 0,
            output_usd_micros_per_mtok: 0,
        });
        let numerator = u128::from(self.input_tokens.load(Ordering::Relaxed))
            * u128::from(p.input_usd_micros_per_mtok)
            + u128::from(self.output_tokens.load(Ordering::Relaxed))
                * u128::from(p.output_usd_micros_per_mtok);
        let tokens_cost = u64::try_from(numerator / 1_000_000).unwrap_or(u64::MAX);
        tokens_cost.saturating_add(self.extra_usd_micros.load(Ordering::Relaxed))
    }
}

#[derive(Debug, Default)]
struct ScoreState {
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
    rejected: u64,
}

impl ScoreState {
    fn add(&mut self, v: f64) {
        if self.count == 0 {
            self.min = v;
            self.max = v;
        }
        self.count += 1;
        self.sum += v;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }

    fn summary(&self) -> ScoreSummary {
        ScoreSummary {
            count: self.count,
            mean: (self.count > 0).then(|| self.sum / self.count as f64),
            min: (self.count > 0).then_some(self.min),
            max: (self.count > 0).then_some(self.max),
            rejected: self.rejected,
        }
    }
}

#[derive(Debug, Default)]
struct QualityState {
    relevance: ScoreState,
    ratings: ScoreState,
    rating_counts: BTreeMap<String, u64>,
    guardrails: BTreeMap<String, u64>,
}

struct Inner {
    service_name: String,
    max_bins: usize,
    labels: LabelCap,
    prices: PriceTable,
    clock: Arc<dyn Clock>,
    ops: RwLock<HashMap<String, Arc<OpMetrics>>>,
    models: RwLock<HashMap<String, Arc<ModelUsage>>>,
    quality: Mutex<QualityState>,
    relevance_hist: metrics::Histogram,
    rating_hist: metrics::Histogram,
}

/// Latency, cost and quality metrics for a service.
///
/// Every recording also goes through the `metrics` facade, so a Prometheus
/// recorder installed *before* the collector is built renders them next to the
/// application's own metrics. Handles are cached: look up a
/// [`LatencyHandle`] once and record through it on hot paths. Clones share
/// the same data.
///
/// ```
/// use flightdeck_obs_core::{MetricsCollector, ModelPrice, PriceTable};
/// let prices = PriceTable::new().with_model("gpt-4o-mini", ModelPrice::from_usd_per_mtok(0.15, 0.60));
/// let metrics = MetricsCollector::builder().with_prices(prices).build();
/// {
///     let _timer = metrics.time_operation("rag.retrieve");
/// }
/// let cost = metrics.record_tokens("gpt-4o-mini", 1_000, 200);
/// assert_eq!(cost, 270); // micro-USD: 1000 * 0.15 + 200 * 0.60
/// metrics.record_relevance(0.83);
/// let dash = metrics.dashboard();
/// assert_eq!(dash.operations["rag.retrieve"].count, 1);
/// assert_eq!(dash.cost.total_usd_micros, 270);
/// ```
#[derive(Clone)]
pub struct MetricsCollector {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for MetricsCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsCollector")
            .field("service_name", &self.inner.service_name)
            .field("max_bins", &self.inner.max_bins)
            .finish_non_exhaustive()
    }
}

/// Builds a [`MetricsCollector`].
///
/// | setting | default |
/// |---|---|
/// | service name | `rag-service` |
/// | sketch bins per operation | 2048 (8 bytes each) |
/// | distinct values per label | 64 |
/// | price table | empty |
/// | clock | [`SystemClock`] (only for the dashboard's timestamp) |
#[derive(Debug)]
pub struct MetricsCollectorBuilder {
    service_name: String,
    max_bins: usize,
    max_label_values: usize,
    prices: PriceTable,
    clock: Arc<dyn Clock>,
}

impl Default for MetricsCollectorBuilder {
    fn default() -> Self {
        Self {
            service_name: crate::settings::DEFAULT_SERVICE_NAME.to_owned(),
            max_bins: DEFAULT_MAX_BINS,
            max_label_values: super::labels::DEFAULT_MAX_LABEL_VALUES,
            prices: PriceTable::new(),
            clock: Arc::new(SystemClock),
        }
    }
}

impl MetricsCollectorBuilder {
    /// The service named in the dashboard. Defaults to `rag-service`.
    #[must_use]
    pub fn with_service_name(mut self, name: impl Into<String>) -> Self {
        self.service_name = name.into();
        self
    }

    /// Sketch bins per operation (memory bound; at least 1600). Defaults to 2048.
    #[must_use]
    pub fn with_max_bins(mut self, bins: usize) -> Self {
        self.max_bins = bins;
        self
    }

    /// Distinct values kept per label before folding into `other`. Defaults to 64.
    #[must_use]
    pub fn with_max_label_values(mut self, n: usize) -> Self {
        self.max_label_values = n;
        self
    }

    /// Model prices for cost. Defaults to an empty table.
    #[must_use]
    pub fn with_prices(mut self, prices: PriceTable) -> Self {
        self.prices = prices;
        self
    }

    /// The clock for the dashboard timestamp. Defaults to [`SystemClock`].
    #[must_use]
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Builds the collector. Registers its histograms with the `metrics`
    /// recorder installed now, so install the recorder first.
    pub fn build(self) -> MetricsCollector {
        super::prometheus::describe_metrics();
        MetricsCollector {
            inner: Arc::new(Inner {
                service_name: self.service_name,
                max_bins: self.max_bins,
                labels: LabelCap::new(self.max_label_values),
                prices: self.prices,
                clock: self.clock,
                ops: RwLock::new(HashMap::new()),
                models: RwLock::new(HashMap::new()),
                quality: Mutex::new(QualityState::default()),
                relevance_hist: metrics::histogram!(metric::RELEVANCE_SCORE),
                rating_hist: metrics::histogram!(metric::USER_RATING),
            }),
        }
    }
}

/// A cached handle for one operation's latency and outcomes.
///
/// Recording is lock-free: the sketch bins are atomics and the facade handle
/// was resolved once.
#[derive(Clone)]
pub struct LatencyHandle {
    op: Arc<OpMetrics>,
}

impl std::fmt::Debug for LatencyHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LatencyHandle")
            .field("count", &self.op.sketch.count())
            .finish()
    }
}

impl LatencyHandle {
    /// Records one latency sample.
    #[inline]
    pub fn record(&self, elapsed: Duration) {
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.op.sketch.record_nanos(nanos);
        self.op.histogram.record(elapsed.as_secs_f64());
    }

    /// Records a finished operation: its latency and whether it succeeded.
    #[inline]
    pub fn record_outcome(&self, elapsed: Duration, ok: bool) {
        self.record(elapsed);
        if ok {
            self.op.ok.fetch_add(1, Ordering::Relaxed);
            self.op.ok_counter.increment(1);
        } else {
            self.op.errors.fetch_add(1, Ordering::Relaxed);
            self.op.error_counter.increment(1);
        }
    }

    /// Starts a timer that records when dropped.
    pub fn start_timer(&self) -> OperationTimer {
        OperationTimer {
            handle: self.clone(),
            started: Instant::now(),
            failed: false,
        }
    }
}

/// Times an operation from creation to drop, then records its latency and
/// outcome: `ok` unless [`fail`](Self::fail) was called or a panic is
/// unwinding.
#[derive(Debug)]
#[must_use = "the timer records when dropped; binding it to `_` drops it at once"]
pub struct OperationTimer {
    handle: LatencyHandle,
    started: Instant,
    failed: bool,
}

impl OperationTimer {
    /// Marks the operation failed.
    pub fn fail(&mut self) {
        self.failed = true;
    }

    /// Time since the timer started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

impl Drop for OperationTimer {
    fn drop(&mut self) {
        let ok = !self.failed && !std::thread::panicking();
        self.handle.record_outcome(self.started.elapsed(), ok);
    }
}

impl MetricsCollector {
    /// A builder with the defaults in [`MetricsCollectorBuilder`].
    pub fn builder() -> MetricsCollectorBuilder {
        MetricsCollectorBuilder::default()
    }

    /// A collector with default settings.
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// The cached handle for `operation` (the name is label-capped).
    pub fn latency(&self, operation: &str) -> LatencyHandle {
        if let Some(op) = self
            .inner
            .ops
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(operation)
        {
            return LatencyHandle { op: Arc::clone(op) };
        }
        let name = self.inner.labels.cap("operation", operation);
        let mut ops = self.inner.ops.write().unwrap_or_else(|e| e.into_inner());
        let op = ops
            .entry(name.clone())
            .or_insert_with(|| {
                Arc::new(OpMetrics {
                    sketch: LatencySketch::new(self.inner.max_bins),
                    ok: AtomicU64::new(0),
                    errors: AtomicU64::new(0),
                    histogram: metrics::histogram!(metric::OPERATION_DURATION_SECONDS, "operation" => name.clone()),
                    ok_counter: metrics::counter!(metric::OPERATIONS_TOTAL, "operation" => name.clone(), "outcome" => "ok"),
                    error_counter: metrics::counter!(metric::OPERATIONS_TOTAL, "operation" => name.clone(), "outcome" => "error"),
                })
            })
            .clone();
        // Later lookups by the original (possibly overflowed) name hit the cache.
        if name != operation {
            ops.insert(operation.to_owned(), Arc::clone(&op));
        }
        LatencyHandle { op }
    }

    /// Starts timing `operation`; records latency and outcome when dropped.
    pub fn time_operation(&self, operation: &str) -> OperationTimer {
        self.latency(operation).start_timer()
    }

    fn model(&self, model: &str) -> Arc<ModelUsage> {
        if let Some(m) = self
            .inner
            .models
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(model)
        {
            return Arc::clone(m);
        }
        let name = self.inner.labels.cap("model", model);
        let mut models = self.inner.models.write().unwrap_or_else(|e| e.into_inner());
        let usage = models
            .entry(name.clone())
            .or_insert_with(|| {
                Arc::new(ModelUsage {
                    price: self.inner.prices.get(&name),
                    input_tokens: AtomicU64::new(0),
                    output_tokens: AtomicU64::new(0),
                    calls: AtomicU64::new(0),
                    extra_usd_micros: AtomicU64::new(0),
                    input_counter: metrics::counter!(metric::LLM_TOKENS_TOTAL, "model" => name.clone(), "token_type" => "input"),
                    output_counter: metrics::counter!(metric::LLM_TOKENS_TOTAL, "model" => name.clone(), "token_type" => "output"),
                    calls_counter: metrics::counter!(metric::LLM_CALLS_TOTAL, "model" => name.clone()),
                    cost_counter: metrics::counter!(metric::LLM_COST_USD_MICROS_TOTAL, "model" => name.clone()),
                })
            })
            .clone();
        if name != model {
            models.insert(model.to_owned(), Arc::clone(&usage));
        }
        usage
    }

    /// Records one model call's token usage; returns the call's cost in
    /// micro-USD (rounded down; the running total is computed from exact
    /// token totals, so it never drifts).
    pub fn record_tokens(&self, model: &str, input_tokens: u64, output_tokens: u64) -> u64 {
        let m = self.model(model);
        m.input_tokens.fetch_add(input_tokens, Ordering::Relaxed);
        m.output_tokens.fetch_add(output_tokens, Ordering::Relaxed);
        m.calls.fetch_add(1, Ordering::Relaxed);
        m.input_counter.increment(input_tokens);
        m.output_counter.increment(output_tokens);
        m.calls_counter.increment(1);
        // `absolute` keeps the larger value, so racing updates cannot go backwards.
        m.cost_counter.absolute(m.cost_usd_micros());
        m.price.map_or(0, |p| {
            let n = u128::from(input_tokens) * u128::from(p.input_usd_micros_per_mtok)
                + u128::from(output_tokens) * u128::from(p.output_usd_micros_per_mtok);
            u64::try_from(n / 1_000_000).unwrap_or(u64::MAX)
        })
    }

    /// Records a call billed per call rather than per token (a reranking API,
    /// a search API), with its cost in micro-USD.
    pub fn record_call_cost(&self, model: &str, cost_usd_micros: u64) {
        let m = self.model(model);
        m.calls.fetch_add(1, Ordering::Relaxed);
        m.extra_usd_micros
            .fetch_add(cost_usd_micros, Ordering::Relaxed);
        m.calls_counter.increment(1);
        m.cost_counter.absolute(m.cost_usd_micros());
    }

    fn quality(&self) -> std::sync::MutexGuard<'_, QualityState> {
        self.inner.quality.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a relevance score; values outside 0..=1 (or NaN) are rejected
    /// and counted in the dashboard's `rejected`.
    pub fn record_relevance(&self, score: f64) {
        let mut q = self.quality();
        if (0.0..=1.0).contains(&score) {
            q.relevance.add(score);
            drop(q);
            self.inner.relevance_hist.record(score);
        } else {
            q.relevance.rejected += 1;
        }
    }

    /// Records a user rating from 1 to 5; other values are rejected and counted.
    pub fn record_rating(&self, rating: u8) {
        let mut q = self.quality();
        if (1..=5).contains(&rating) {
            q.ratings.add(f64::from(rating));
            *q.rating_counts.entry(rating.to_string()).or_default() += 1;
            drop(q);
            self.inner.rating_hist.record(f64::from(rating));
        } else {
            q.ratings.rejected += 1;
        }
    }

    /// Records that guardrail `name` triggered (the name is label-capped).
    pub fn record_guardrail_trigger(&self, name: &str) {
        let name = self.inner.labels.cap("guardrail", name);
        metrics::counter!(metric::GUARDRAIL_TRIGGERS_TOTAL, "guardrail" => name.clone())
            .increment(1);
        *self.quality().guardrails.entry(name).or_default() += 1;
    }

    /// The label cap shared by this collector's labels.
    pub fn label_cap(&self) -> &LabelCap {
        &self.inner.labels
    }

    /// A snapshot of everything, for the dashboard and the CLI.
    pub fn dashboard(&self) -> DashboardData {
        let mut operations = BTreeMap::new();
        {
            let ops = self.inner.ops.read().unwrap_or_else(|e| e.into_inner());
            for (name, op) in ops.iter() {
                // Aliases (overflowed names) point at the `other` entry; list it once.
                if name != &self.inner.labels.cap_if_known("operation", name) {
                    continue;
                }
                operations.insert(name.clone(), summarize_op(op));
            }
        }
        let mut cost = CostSummary::default();
        {
            let models = self.inner.models.read().unwrap_or_else(|e| e.into_inner());
            for (name, m) in models.iter() {
                if name != &self.inner.labels.cap_if_known("model", name) {
                    continue;
                }
                let mc = ModelCost {
                    input_tokens: m.input_tokens.load(Ordering::Relaxed),
                    output_tokens: m.output_tokens.load(Ordering::Relaxed),
                    calls: m.calls.load(Ordering::Relaxed),
                    cost_usd_micros: m.cost_usd_micros(),
                    // Per-call prices (record_call_cost) need no table entry.
                    priced: m.price.is_some()
                        || m.input_tokens.load(Ordering::Relaxed)
                            + m.output_tokens.load(Ordering::Relaxed)
                            == 0,
                };
                cost.total_usd_micros += mc.cost_usd_micros;
                cost.total_input_tokens += mc.input_tokens;
                cost.total_output_tokens += mc.output_tokens;
                cost.total_calls += mc.calls;
                cost.models.insert(name.clone(), mc);
            }
        }
        let quality = {
            let q = self.quality();
            QualitySummary {
                relevance: q.relevance.summary(),
                ratings: RatingSummary {
                    summary: q.ratings.summary(),
                    distribution: q.rating_counts.clone(),
                },
                guardrail_triggers: q.guardrails.clone(),
                total_guardrail_triggers: q.guardrails.values().sum(),
            }
        };
        let requests = operations.get(span::REQUEST).cloned();
        DashboardData {
            service_name: self.inner.service_name.clone(),
            generated_at: crate::log::format_rfc3339(self.inner.clock.now_unix_nanos()),
            error_rate: requests.as_ref().and_then(|r| r.error_rate),
            requests: requests.map_or(0, |r| r.count),
            operations,
            cost,
            quality,
            label_overflows: self.inner.labels.all_overflows().into_iter().collect(),
        }
    }
}

impl Default for MetricsCollector {
    fn default() -> Self {
        Self::new()
    }
}

fn summarize_op(op: &OpMetrics) -> OperationSummary {
    let s = &op.sketch;
    let count = s.count();
    let q = s.quantiles_nanos(&[0.5, 0.95, 0.99]);
    let ms = |n: Option<f64>| n.map(|v| v / 1e6);
    let ok = op.ok.load(Ordering::Relaxed);
    let errors = op.errors.load(Ordering::Relaxed);
    let outcomes = ok + errors;
    OperationSummary {
        count,
        errors,
        error_rate: (outcomes > 0).then(|| errors as f64 / outcomes as f64),
        latency: LatencySummary {
            mean_ms: (count > 0).then(|| s.sum_nanos() as f64 / count as f64 / 1e6),
            min_ms: s.min_nanos().map(|v| v as f64 / 1e6),
            max_ms: s.max_nanos().map(|v| v as f64 / 1e6),
            p50_ms: ms(q[0]),
            p95_ms: ms(q[1]),
            p99_ms: ms(q[2]),
        },
    }
}

impl LabelCap {
    /// The stored name for `value`: itself when kept, else `other`. Does not
    /// add values or count overflows.
    pub(crate) fn cap_if_known(&self, label: &'static str, value: &str) -> String {
        if self.contains(label, value) {
            value.to_owned()
        } else {
            metric::OVERFLOW_LABEL_VALUE.to_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_totals_are_exact_over_many_small_calls() {
        let prices = PriceTable::new().with_model("m", ModelPrice::from_usd_per_mtok(0.15, 0.60));
        let c = MetricsCollector::builder().with_prices(prices).build();
        let mut per_call_sum = 0;
        for _ in 0..1000 {
            // 3 input tokens cost 0.45 micro-USD: rounds to 0 per call.
            per_call_sum += c.record_tokens("m", 3, 0);
        }
        assert_eq!(per_call_sum, 0);
        // 3000 tokens * $0.15 / 1M = 450 micro-USD, exactly.
        assert_eq!(c.dashboard().cost.total_usd_micros, 450);
    }

    #[test]
    fn unpriced_models_are_flagged() {
        let c = MetricsCollector::new();
        assert_eq!(c.record_tokens("mystery", 10, 10), 0);
        c.record_call_cost("rerank-api", 2_000);
        let d = c.dashboard();
        assert!(!d.cost.models["mystery"].priced);
        assert_eq!(d.cost.models["rerank-api"].cost_usd_micros, 2_000);
        assert_eq!(d.cost.total_calls, 2);
    }

    #[test]
    fn timers_record_outcomes_and_panics_count_as_errors() {
        let c = MetricsCollector::new();
        {
            let _t = c.time_operation("op");
        }
        {
            let mut t = c.time_operation("op");
            t.fail();
        }
        let c2 = c.clone();
        let _ = std::thread::spawn(move || {
            let _t = c2.time_operation("op");
            panic!("boom");
        })
        .join();
        let d = c.dashboard();
        let op = &d.operations["op"];
        assert_eq!(op.count, 3);
        assert_eq!(op.errors, 2);
        assert!((op.error_rate.unwrap() - 2.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn operation_names_are_capped_and_listed_once() {
        let c = MetricsCollector::builder().with_max_label_values(2).build();
        for i in 0..5 {
            c.latency(&format!("op{i}"))
                .record(Duration::from_millis(1));
        }
        let d = c.dashboard();
        let names: Vec<&String> = d.operations.keys().collect();
        assert_eq!(names, ["op0", "op1", "other"]);
        assert_eq!(d.operations["other"].count, 3);
        assert_eq!(d.label_overflows["operation"], 3);
    }

    #[test]
    fn invalid_quality_samples_are_rejected_and_counted() {
        let c = MetricsCollector::new();
        c.record_relevance(0.5);
        c.record_relevance(1.5);
        c.record_relevance(f64::NAN);
        c.record_rating(5);
        c.record_rating(0);
        c.record_guardrail_trigger("pii");
        c.record_guardrail_trigger("pii");
        let q = c.dashboard().quality;
        assert_eq!(q.relevance.count, 1);
        assert_eq!(q.relevance.rejected, 2);
        assert_eq!(q.ratings.summary.count, 1);
        assert_eq!(q.ratings.summary.rejected, 1);
        assert_eq!(q.ratings.distribution["5"], 1);
        assert_eq!(q.guardrail_triggers["pii"], 2);
        assert_eq!(q.total_guardrail_triggers, 2);
    }
}

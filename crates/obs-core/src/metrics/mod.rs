//! Latency, cost and quality metrics.
//!
//! * [`LatencySketch`]: lock-free quantiles within 1 % relative error
//!   (log-linear bins, [`SUB_BUCKETS`] per power of two).
//! * [`MetricsCollector`]: per-operation latency and outcomes, token cost,
//!   quality signals; all mirrored into the `metrics` facade.
//! * [`DashboardData`]: one serializable snapshot of all of it.
//! * [`PrometheusExposition`]: renders the facade's metrics as Prometheus text.

mod collector;
mod dashboard;
mod labels;
mod prometheus;
mod sketch;

pub use self::collector::{
    LatencyHandle, MetricsCollector, MetricsCollectorBuilder, ModelPrice, OperationTimer,
    PriceTable,
};
pub use self::dashboard::{
    CostSummary, DashboardData, LatencySummary, ModelCost, OperationSummary, QualitySummary,
    RatingSummary, ScoreSummary, format_usd_micros,
};
pub use self::labels::{DEFAULT_MAX_LABEL_VALUES, LabelCap};
pub use self::prometheus::{
    LATENCY_BUCKETS_SECONDS, LocalPrometheus, PrometheusExposition, RATING_BUCKETS, SCORE_BUCKETS,
    UPKEEP_INTERVAL, Upkeep, describe_metrics,
};
pub use self::sketch::{
    DEFAULT_MAX_BINS, LatencySketch, MIN_BINS, MIN_TRACKED_NANOS, RELATIVE_ACCURACY, SUB_BUCKETS,
    max_tracked_nanos,
};

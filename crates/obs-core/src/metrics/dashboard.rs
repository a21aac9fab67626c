//! [`DashboardData`]: one serde snapshot of latency, cost and quality.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// Everything the dashboard and the CLI show, in one serializable value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DashboardData {
    /// The service the numbers are for.
    pub service_name: String,
    /// When the snapshot was taken (RFC 3339 UTC).
    pub generated_at: String,
    /// Requests seen: the count of the `rag.request` operation.
    pub requests: u64,
    /// Request error rate, from the `rag.request` operation's outcomes.
    pub error_rate: Option<f64>,
    /// Per operation: count, errors and latency quantiles.
    pub operations: BTreeMap<String, OperationSummary>,
    /// Tokens, calls and money.
    pub cost: CostSummary,
    /// Relevance, ratings and guardrails.
    pub quality: QualitySummary,
    /// Per label: values folded into `other` by the cardinality cap.
    pub label_overflows: BTreeMap<String, u64>,
}

/// One operation's numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperationSummary {
    /// Latency samples.
    pub count: u64,
    /// Samples recorded as failed.
    pub errors: u64,
    /// `errors / (ok + errors)`, when any outcome was recorded.
    pub error_rate: Option<f64>,
    /// Latency quantiles in milliseconds (within 1 % relative error).
    pub latency: LatencySummary,
}

/// Latency figures in milliseconds; `None` when there are no samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Mean (exact).
    pub mean_ms: Option<f64>,
    /// Minimum (exact).
    pub min_ms: Option<f64>,
    /// Maximum (exact).
    pub max_ms: Option<f64>,
    /// Median.
    pub p50_ms: Option<f64>,
    /// 95th percentile.
    pub p95_ms: Option<f64>,
    /// 99th percentile.
    pub p99_ms: Option<f64>,
}

/// Spend and usage.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CostSummary {
    /// Total spend in micro-USD.
    pub total_usd_micros: u64,
    /// Input tokens over all models.
    pub total_input_tokens: u64,
    /// Output tokens over all models.
    pub total_output_tokens: u64,
    /// Calls over all models.
    pub total_calls: u64,
    /// Per model.
    pub models: BTreeMap<String, ModelCost>,
}

/// One model's usage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelCost {
    /// Input tokens.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Calls.
    pub calls: u64,
    /// Spend in micro-USD.
    pub cost_usd_micros: u64,
    /// False when tokens were used but the model is not in the price table
    /// (their cost then shows as 0).
    pub priced: bool,
}

/// Quality signals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QualitySummary {
    /// Relevance scores (0 to 1).
    pub relevance: ScoreSummary,
    /// User ratings (1 to 5).
    pub ratings: RatingSummary,
    /// Triggers per guardrail.
    pub guardrail_triggers: BTreeMap<String, u64>,
    /// Triggers over all guardrails.
    pub total_guardrail_triggers: u64,
}

/// Summary of a bounded score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreSummary {
    /// Accepted samples.
    pub count: u64,
    /// Mean of accepted samples.
    pub mean: Option<f64>,
    /// Smallest accepted sample.
    pub min: Option<f64>,
    /// Largest accepted sample.
    pub max: Option<f64>,
    /// Samples rejected as out of range or NaN.
    pub rejected: u64,
}

/// User ratings with their distribution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RatingSummary {
    /// Count, mean and range.
    #[serde(flatten)]
    pub summary: ScoreSummary,
    /// Count per rating value (`"1"` to `"5"`).
    pub distribution: BTreeMap<String, u64>,
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{v:.digits$}"))
}

/// Formats micro-USD as dollars with six decimals: `$0.001234`.
pub fn format_usd_micros(micros: u64) -> String {
    format!("${}.{:06}", micros / 1_000_000, micros % 1_000_000)
}

impl DashboardData {
    /// A plain-text report for terminals.
    pub fn render_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "Flightdeck dashboard: {} at {}",
            self.service_name, self.generated_at
        );
        let _ = writeln!(
            s,
            "requests: {}   error rate: {}",
            self.requests,
            self.error_rate
                .map_or("-".into(), |r| format!("{:.2}%", r * 100.0))
        );
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "{:<20} {:>7} {:>7} {:>10} {:>10} {:>10} {:>10}",
            "operation", "count", "errors", "p50 ms", "p95 ms", "p99 ms", "max ms"
        );
        for (name, op) in &self.operations {
            let _ = writeln!(
                s,
                "{:<20} {:>7} {:>7} {:>10} {:>10} {:>10} {:>10}",
                name,
                op.count,
                op.errors,
                opt(op.latency.p50_ms, 2),
                opt(op.latency.p95_ms, 2),
                opt(op.latency.p99_ms, 2),
                opt(op.latency.max_ms, 2)
            );
        }
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "cost: {} over {} calls ({} input + {} output tokens)",
            format_usd_micros(self.cost.total_usd_micros),
            self.cost.total_calls,
            self.cost.total_input_tokens,
            self.cost.total_output_tokens
        );
        for (model, m) in &self.cost.models {
            let _ = writeln!(
                s,
                "  {:<26} {:>6} calls {:>9} in {:>9} out  {}{}",
                model,
                m.calls,
                m.input_tokens,
                m.output_tokens,
                format_usd_micros(m.cost_usd_micros),
                if m.priced { "" } else { "  (no price)" }
            );
        }
        let _ = writeln!(s);
        let q = &self.quality;
        let _ = writeln!(
            s,
            "quality: relevance mean {} (n={}), rating mean {} (n={}), guardrail triggers {}",
            opt(q.relevance.mean, 3),
            q.relevance.count,
            opt(q.ratings.summary.mean, 2),
            q.ratings.summary.count,
            q.total_guardrail_triggers
        );
        for (name, n) in &q.guardrail_triggers {
            let _ = writeln!(s, "  {name:<26} {n}");
        }
        if !self.label_overflows.is_empty() {
            let _ = writeln!(
                s,
                "label values folded into `other`: {:?}",
                self.label_overflows
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usd_micros_format_exactly() {
        assert_eq!(format_usd_micros(0), "$0.000000");
        assert_eq!(format_usd_micros(1_234_567), "$1.234567");
    }
}

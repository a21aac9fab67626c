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
    /// "N over M calls (input + output tokens)", shared by the text and the picture.
    fn cost_line(&self) -> String {
        format!(
            "{} over {} calls ({} input + {} output tokens)",
            format_usd_micros(self.cost.total_usd_micros),
            self.cost.total_calls,
            self.cost.total_input_tokens,
            self.cost.total_output_tokens
        )
    }

    /// The quality summary line, shared by the text and the picture.
    fn quality_line(&self) -> String {
        let q = &self.quality;
        format!(
            "relevance mean {} (n={}), rating mean {} (n={}), guardrail triggers {}",
            opt(q.relevance.mean, 3),
            q.relevance.count,
            opt(q.ratings.summary.mean, 2),
            q.ratings.summary.count,
            q.total_guardrail_triggers
        )
    }

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
        let _ = writeln!(s, "cost: {}", self.cost_line());
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
        let _ = writeln!(s, "quality: {}", self.quality_line());
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

/// Escapes text for XML content and attribute values.
fn xml(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

impl DashboardData {
    /// A self-contained SVG picture of the dashboard: p50/p95/p99 latency bars
    /// per operation on one shared scale, then cost and quality.
    ///
    /// Every bar is a `rect` with `data-op` and `data-quantile` attributes,
    /// so tools (and tests) can find them.
    pub fn render_svg(&self) -> String {
        const WIDTH: f64 = 920.0;
        const LABEL: f64 = 190.0;
        const ROW: f64 = 54.0;
        const TOP: f64 = 96.0;
        let ops: Vec<(&String, &OperationSummary)> = self.operations.iter().collect();
        let max_ms = ops
            .iter()
            .filter_map(|(_, o)| o.latency.p99_ms)
            .fold(0.0f64, f64::max)
            .max(1e-9);
        let plot = WIDTH - LABEL - 120.0;
        let height = TOP + ROW * ops.len() as f64 + 110.0;
        let mut s = String::with_capacity(4096 + ops.len() * 900);
        let _ = write!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="13">"#
        );
        s.push_str(r##"<rect width="100%" height="100%" fill="#ffffff"/>"##);
        let _ = write!(
            s,
            r#"<text x="20" y="32" font-size="20" font-weight="bold">{}</text>"#,
            xml(&format!("Flightdeck dashboard: {}", self.service_name))
        );
        let _ = write!(
            s,
            r##"<text x="20" y="56" fill="#444">{}</text>"##,
            xml(&format!(
                "{} requests, error rate {}, generated {}",
                self.requests,
                self.error_rate
                    .map_or("-".into(), |r| format!("{:.2}%", r * 100.0)),
                self.generated_at
            ))
        );
        let colors = [("p50", "#9ecae1"), ("p95", "#4292c6"), ("p99", "#08519c")];
        for (i, (q, c)) in colors.iter().enumerate() {
            let x = LABEL + i as f64 * 90.0;
            let _ = write!(
                s,
                r#"<rect x="{x}" y="70" width="12" height="12" fill="{c}"/><text x="{}" y="81">{q}</text>"#,
                x + 16.0
            );
        }
        let _ = write!(
            s,
            r##"<text x="{}" y="81" fill="#444">latency, ms (scale 0 to {:.1})</text>"##,
            LABEL + 280.0,
            max_ms
        );
        for (row, (name, op)) in ops.iter().enumerate() {
            let y = TOP + row as f64 * ROW;
            let _ = write!(
                s,
                r##"<text x="20" y="{}">{}</text><text x="20" y="{}" fill="#666" font-size="11">{}</text>"##,
                y + 18.0,
                xml(name),
                y + 34.0,
                xml(&format!("{} calls, {} errors", op.count, op.errors))
            );
            let values = [op.latency.p50_ms, op.latency.p95_ms, op.latency.p99_ms];
            for (i, ((q, c), v)) in colors.iter().zip(values).enumerate() {
                let Some(v) = v else { continue };
                let w = (v / max_ms * plot).max(1.0);
                let by = y + 2.0 + i as f64 * 14.0;
                let _ = write!(
                    s,
                    r#"<rect data-op="{}" data-quantile="{q}" x="{LABEL}" y="{by}" width="{w:.1}" height="12" fill="{c}"/><text x="{}" y="{}" font-size="11">{v:.1}</text>"#,
                    xml(name),
                    LABEL + w + 6.0,
                    by + 10.0
                );
            }
        }
        let y = TOP + ROW * ops.len() as f64 + 30.0;
        let lines = [
            format!("Cost: {}", self.cost_line()),
            format!("Quality: {}", self.quality_line()),
        ];
        for (i, line) in lines.iter().enumerate() {
            let _ = write!(
                s,
                r#"<text x="20" y="{}">{}</text>"#,
                y + i as f64 * 22.0,
                xml(line)
            );
        }
        s.push_str("</svg>\n");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn svg_escapes_names_and_draws_three_bars_per_operation() {
        let lat = |p50, p95, p99| LatencySummary {
            mean_ms: None,
            min_ms: None,
            max_ms: None,
            p50_ms: Some(p50),
            p95_ms: Some(p95),
            p99_ms: Some(p99),
        };
        let op = |l| OperationSummary {
            count: 3,
            errors: 0,
            error_rate: Some(0.0),
            latency: l,
        };
        let d = DashboardData {
            service_name: "svc <&>".into(),
            generated_at: "now".into(),
            requests: 3,
            error_rate: Some(0.0),
            operations: BTreeMap::from([
                ("a\"b".to_owned(), op(lat(1.0, 2.0, 4.0))),
                ("c".to_owned(), op(lat(3.0, 5.0, 8.0))),
            ]),
            cost: CostSummary::default(),
            quality: QualitySummary {
                relevance: ScoreSummary {
                    count: 0,
                    mean: None,
                    min: None,
                    max: None,
                    rejected: 0,
                },
                ratings: RatingSummary {
                    summary: ScoreSummary {
                        count: 0,
                        mean: None,
                        min: None,
                        max: None,
                        rejected: 0,
                    },
                    distribution: BTreeMap::new(),
                },
                guardrail_triggers: BTreeMap::new(),
                total_guardrail_triggers: 0,
            },
            label_overflows: BTreeMap::new(),
        };
        let svg = d.render_svg();
        assert_eq!(svg.matches("data-quantile=").count(), 6);
        assert!(svg.contains("svc &lt;&amp;&gt;"));
        assert!(svg.contains(r#"data-op="a&quot;b""#));
        assert!(!svg.contains("<&>"));
    }

    #[test]
    fn usd_micros_format_exactly() {
        assert_eq!(format_usd_micros(0), "$0.000000");
        assert_eq!(format_usd_micros(1_234_567), "$1.234567");
    }
}

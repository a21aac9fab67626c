use std::time::Duration;

use flightdeck_obs_core::{
    LatencySketch, LocalPrometheus, MetricsCollector, ModelPrice, PriceTable,
};
use rand::SeedableRng;
use rand_distr::{Distribution, LogNormal};

#[test]
fn sketch_quantiles_are_within_one_percent_on_a_million_lognormal_samples() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    // Median 50 ms, heavy right tail.
    let dist = LogNormal::new((50e6f64).ln(), 0.8).unwrap();
    let sketch = LatencySketch::new(2048);
    let mut exact: Vec<u64> = (0..1_000_000)
        .map(|_| dist.sample(&mut rng) as u64)
        .collect();
    for &v in &exact {
        sketch.record_nanos(v);
    }
    exact.sort_unstable();
    for q in [0.5, 0.95, 0.99, 0.999] {
        // The same rank definition as the sketch: floor(q * (n - 1)).
        let truth = exact[(q * (exact.len() - 1) as f64) as usize] as f64;
        let est = sketch.quantile_nanos(q).unwrap();
        let rel = (est - truth).abs() / truth;
        assert!(
            rel <= 0.01,
            "q={q}: estimate {est} vs exact {truth}: relative error {rel}"
        );
    }
    assert_eq!(sketch.count(), 1_000_000);
    assert!(
        sketch.memory_bytes() < 20 * 1024,
        "memory independent of the sample count"
    );
}

#[test]
fn sketches_merge_across_threads() {
    let total = LatencySketch::new(2048);
    let parts: Vec<LatencySketch> = std::thread::scope(|s| {
        (0..4)
            .map(|t| {
                s.spawn(move || {
                    let sk = LatencySketch::new(2048);
                    for i in 0..10_000u64 {
                        sk.record_nanos(1_000_000 + t * 10_000 + i);
                    }
                    sk
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect()
    });
    for p in &parts {
        total.merge(p);
    }
    assert_eq!(total.count(), 40_000);
    assert_eq!(total.min_nanos(), Some(1_000_000));
    assert_eq!(total.max_nanos(), Some(1_039_999));
}

#[test]
fn everything_renders_as_prometheus_text_next_to_user_metrics() {
    let (local, prom) = LocalPrometheus::new();
    local.scoped(|| {
        let prices =
            PriceTable::new().with_model("gpt-4o-mini", ModelPrice::from_usd_per_mtok(0.15, 0.60));
        let m = MetricsCollector::builder()
            .with_prices(prices)
            .with_max_label_values(2)
            .build();
        m.latency("rag.embed").record(Duration::from_millis(20));
        m.record_tokens("gpt-4o-mini", 1000, 100);
        m.record_relevance(0.9);
        m.record_rating(4);
        m.record_guardrail_trigger("pii");
        for i in 0..5 {
            m.record_tokens(&format!("user-model-{i}"), 1, 1);
        }
        metrics::counter!("app_requests_total", "route" => "/ask").increment(3);
    });
    let text = prom.render();
    for expected in [
        "flightdeck_operation_duration_seconds_bucket{operation=\"rag.embed\",le=\"0.025\"} 1",
        "flightdeck_llm_tokens_total{model=\"gpt-4o-mini\",token_type=\"input\"} 1000",
        "flightdeck_llm_cost_usd_micros_total{model=\"gpt-4o-mini\"} 210",
        "flightdeck_guardrail_triggers_total{guardrail=\"pii\"} 1",
        "flightdeck_relevance_score_count 1",
        "flightdeck_user_rating_sum 4",
        "flightdeck_llm_calls_total{model=\"other\"} 4",
        "flightdeck_label_overflow_total{label=\"model\"} 4",
        "app_requests_total{route=\"/ask\"} 3",
        "# HELP flightdeck_operation_duration_seconds",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}

//! Property tests: invariants cheaper to state than examples.

use flightdeck_experiments::{Context, Experiment};
use proptest::prelude::*;
use serde_json::json;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Raising an experiment's coverage moves no user who was in: they stay
    /// in, in the same variation (GrowthBook's ranges grow in place).
    #[test]
    fn raising_coverage_moves_no_user_who_was_in(
        low in 0.0f64..=1.0,
        extra in 0.0f64..=1.0,
        weights in proptest::collection::vec(0.05f64..1.0, 2..5),
        seed in "[a-z]{0,8}",
        users in proptest::collection::vec("[a-zA-Z0-9_-]{1,16}", 1..50),
    ) {
        let high = (low + extra).min(1.0);
        let sum: f64 = weights.iter().sum();
        let weights: Vec<f64> = weights.iter().map(|w| w / sum).collect();
        let variations: Vec<usize> = (0..weights.len()).collect();
        let exp = |coverage: f64| Experiment::from_json(&json!({
            "key": "reranker-v2", "seed": seed, "variations": variations,
            "weights": weights, "coverage": coverage,
        }));
        let (before, after) = (exp(low), exp(high));
        for u in &users {
            let ctx = Context::for_user(u);
            let (b, a) = (before.run(&ctx), after.run(&ctx));
            if b.in_experiment {
                prop_assert!(a.in_experiment, "{u} left at coverage {low} -> {high}");
                prop_assert_eq!(a.variation_id, b.variation_id, "{} moved", u);
            }
        }
    }
}

//! Type-I error: 2,000 seeded A/A experiments give a false-positive rate
//! inside the binomial 99% band around alpha.

use flightdeck_stats::{TTestKind, ttest_slices};
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};

/// The two-sided 99% band for Binomial(n, alpha) / n, by the normal
/// approximation with continuity correction (n·alpha = 100 here).
fn band(n: f64, alpha: f64) -> (f64, f64) {
    let sd = (n * alpha * (1.0 - alpha)).sqrt();
    let z = 2.5758293035489004;
    (
        (n * alpha - z * sd - 0.5) / n,
        (n * alpha + z * sd + 0.5) / n,
    )
}

#[test]
fn welch_t_test_holds_its_false_positive_rate_on_aa_experiments() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let dist = Normal::new(100.0, 15.0).unwrap();
    let experiments = 2000;
    let alpha = 0.05;
    let mut positives = 0;
    for _ in 0..experiments {
        let a: Vec<f64> = (0..200).map(|_| dist.sample(&mut rng)).collect();
        let b: Vec<f64> = (0..200).map(|_| dist.sample(&mut rng)).collect();
        if ttest_slices(&a, &b, TTestKind::Welch, alpha)
            .unwrap()
            .p_value
            < alpha
        {
            positives += 1;
        }
    }
    let rate = positives as f64 / experiments as f64;
    let (lo, hi) = band(experiments as f64, alpha);
    assert!(
        (lo..=hi).contains(&rate),
        "false-positive rate {rate} outside [{lo}, {hi}]"
    );
}

//! The statistics on arbitrary finite numbers, as a stats input file holds
//! them: a finite answer or an error, never a panic, NaN or infinity.
#![no_main]

use flightdeck_stats::{
    TTestKind, chi_square_independence, mann_whitney, sample_ratio_mismatch, ttest_slices,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (Vec<f64>, Vec<f64>, Vec<u32>, f64)| {
    let (a, b, counts, level) = input;
    let finite = |xs: &[f64]| {
        xs.iter()
            .copied()
            .filter(|x| x.is_finite())
            .take(200)
            .collect::<Vec<_>>()
    };
    let (a, b) = (finite(&a), finite(&b));
    let alpha = if level.is_finite() {
        level.abs().fract()
    } else {
        0.05
    };
    for kind in [TTestKind::Welch, TTestKind::Student] {
        if let Ok(r) = ttest_slices(&a, &b, kind, alpha) {
            for v in [r.statistic, r.p_value, r.df, r.diff, r.ci_low, r.ci_high] {
                assert!(
                    v.is_finite() || v.is_infinite() && r.p_value.is_finite(),
                    "{r:?}"
                );
            }
            assert!((0.0..=1.0).contains(&r.p_value), "{r:?}");
        }
    }
    if let Ok(r) = mann_whitney(&a, &b, 1.0 - alpha) {
        assert!((0.0..=1.0).contains(&r.p_value), "{r:?}");
    }
    let table: Vec<Vec<f64>> = counts
        .chunks(2)
        .filter(|c| c.len() == 2)
        .take(6)
        .map(|c| c.iter().map(|&x| f64::from(x)).collect())
        .collect();
    if let Ok(r) = chi_square_independence(&table, alpha > 0.5) {
        assert!(
            r.statistic.is_finite() && (0.0..=1.0).contains(&r.p_value),
            "{r:?}"
        );
    }
    let observed: Vec<u64> = counts.iter().take(8).map(|&c| u64::from(c)).collect();
    let weights = vec![1.0; observed.len()];
    if let Ok(r) = sample_ratio_mismatch(&observed, &weights, alpha) {
        assert!((0.0..=1.0).contains(&r.p_value), "{r:?}");
    }
});

//! Every case in `reference.json` (scipy 1.17.1, statsmodels 0.15.0).

use flightdeck_stats::{
    Correction, Proportion, Summary, TTestKind, adjust_p_values, chi_square_goodness_of_fit,
    chi_square_independence, cohens_h, mann_whitney, normal_minimum_detectable_effect,
    normal_power, normal_sample_size, proportions_ztest, sample_ratio_mismatch, ttest,
    ttest_slices,
};

use crate::{assert_close, fixture, num, nums};

#[test]
fn t_tests_match_scipy() {
    let reference = fixture("reference.json");
    let cases = reference["ttest"].as_array().unwrap();
    assert!(cases.len() >= 8);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let (a, b) = (nums(&case["a"]), nums(&case["b"]));
        let alpha = num(&case["alpha"]);
        for (kind, key) in [(TTestKind::Welch, "welch"), (TTestKind::Student, "student")] {
            let e = &case[key];
            let r = ttest_slices(&a, &b, kind, alpha).unwrap();
            let what = |f: &str| format!("{name}/{key}/{f}");
            assert_close(r.statistic, num(&e["statistic"]), &what("statistic"));
            assert_close(r.df, num(&e["df"]), &what("df"));
            assert_close(r.p_value, num(&e["p_value"]), &what("p_value"));
            assert_close(
                r.p_value_greater,
                num(&e["p_value_greater"]),
                &what("p_value_greater"),
            );
            assert_close(
                r.p_value_less,
                num(&e["p_value_less"]),
                &what("p_value_less"),
            );
            assert_close(r.ci_low, num(&e["ci_low"]), &what("ci_low"));
            assert_close(r.ci_high, num(&e["ci_high"]), &what("ci_high"));
        }
    }
}

#[test]
fn t_tests_from_summaries_match_scipy_at_huge_n() {
    let reference = fixture("reference.json");
    for case in reference["ttest_from_stats"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let arm = |v: &serde_json::Value| {
            let s = nums(v);
            Summary::from_moments(s[2] as u64, s[0], s[1] * s[1]).unwrap()
        };
        let (a, b) = (arm(&case["a"]), arm(&case["b"]));
        for (kind, key) in [(TTestKind::Welch, "welch"), (TTestKind::Student, "student")] {
            let e = &case[key];
            let r = ttest(&a, &b, kind, num(&case["alpha"])).unwrap();
            assert_close(
                r.statistic,
                num(&e["statistic"]),
                &format!("{name}/{key}/statistic"),
            );
            assert_close(r.df, num(&e["df"]), &format!("{name}/{key}/df"));
            assert_close(
                r.p_value,
                num(&e["p_value"]),
                &format!("{name}/{key}/p_value"),
            );
            assert_close(r.ci_low, num(&e["ci_low"]), &format!("{name}/{key}/ci_low"));
            assert_close(
                r.ci_high,
                num(&e["ci_high"]),
                &format!("{name}/{key}/ci_high"),
            );
        }
    }
}

#[test]
fn proportions_match_statsmodels() {
    let reference = fixture("reference.json");
    for case in reference["proportions"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let p = |v: &serde_json::Value| {
            let x = nums(v);
            Proportion::new(x[0] as u64, x[1] as u64).unwrap()
        };
        let r = proportions_ztest(p(&case["a"]), p(&case["b"]), num(&case["alpha"])).unwrap();
        assert_close(
            r.statistic,
            num(&case["statistic"]),
            &format!("{name}/statistic"),
        );
        assert_close(r.p_value, num(&case["p_value"]), &format!("{name}/p_value"));
        assert_close(r.ci_low, num(&case["ci_low"]), &format!("{name}/ci_low"));
        assert_close(r.ci_high, num(&case["ci_high"]), &format!("{name}/ci_high"));
    }
}

#[test]
fn chi_square_tests_match_scipy() {
    let reference = fixture("reference.json");
    for case in reference["chi_square_independence"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let table: Vec<Vec<f64>> = case["table"].as_array().unwrap().iter().map(nums).collect();
        let r = chi_square_independence(&table, case["yates"].as_bool().unwrap()).unwrap();
        assert_close(
            r.statistic,
            num(&case["statistic"]),
            &format!("{name}/statistic"),
        );
        assert_eq!(r.df, num(&case["df"]), "{name}/df");
        assert_close(r.p_value, num(&case["p_value"]), &format!("{name}/p_value"));
    }
    for case in reference["chi_square_goodness_of_fit"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let r =
            chi_square_goodness_of_fit(&nums(&case["observed"]), &nums(&case["expected"])).unwrap();
        assert_close(
            r.statistic,
            num(&case["statistic"]),
            &format!("{name}/statistic"),
        );
        assert_close(r.p_value, num(&case["p_value"]), &format!("{name}/p_value"));
    }
}

#[test]
fn sample_ratio_mismatch_uses_the_configured_weights() {
    let reference = fixture("reference.json");
    for case in reference["sample_ratio_mismatch"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let observed: Vec<u64> = nums(&case["observed"]).iter().map(|&x| x as u64).collect();
        let r = sample_ratio_mismatch(&observed, &nums(&case["weights"]), 0.001).unwrap();
        assert_close(
            r.statistic,
            num(&case["statistic"]),
            &format!("{name}/statistic"),
        );
        assert_close(r.p_value, num(&case["p_value"]), &format!("{name}/p_value"));
        assert_eq!(
            r.mismatch,
            case["mismatch"].as_bool().unwrap(),
            "{name}/mismatch"
        );
    }
}

#[test]
fn mann_whitney_statistic_and_p_match_scipy() {
    let reference = fixture("reference.json");
    for case in reference["mann_whitney"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let r = mann_whitney(&nums(&case["a"]), &nums(&case["b"]), 0.95).unwrap();
        assert_eq!(r.statistic, num(&case["statistic"]), "{name}/statistic");
        assert_close(r.p_value, num(&case["p_value"]), &format!("{name}/p_value"));
        // R's uniroot stops within 1e-4, so with heavy ties the three roots
        // may cross by up to that much.
        assert!(
            r.ci_low - 1e-4 <= r.estimate && r.estimate <= r.ci_high + 1e-4,
            "{name}: {r:?}"
        );
    }
}

#[test]
fn adjusted_p_values_match_statsmodels() {
    let reference = fixture("reference.json");
    for case in reference["multiple_comparisons"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let p = nums(&case["p_values"]);
        for (method, key) in [
            (Correction::Bonferroni, "bonferroni"),
            (Correction::Holm, "holm"),
            (Correction::BenjaminiHochberg, "benjamini_hochberg"),
        ] {
            let got = adjust_p_values(&p, method).unwrap();
            for (i, (g, e)) in got.iter().zip(nums(&case[key])).enumerate() {
                assert_close(*g, e, &format!("{name}/{key}[{i}]"));
            }
        }
    }
}

#[test]
fn proportion_power_matches_statsmodels() {
    let reference = fixture("reference.json");
    for case in reference["power_proportions"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let (alpha, power) = (num(&case["alpha"]), num(&case["power"]));
        let h = cohens_h(num(&case["treatment"]), num(&case["baseline"])).unwrap();
        assert_close(h, num(&case["effect_size"]), &format!("{name}/effect_size"));
        let n = normal_sample_size(h, alpha, power).unwrap();
        assert_close(
            n.n_per_group_exact,
            num(&case["n_per_group_exact"]),
            &format!("{name}/n exact"),
        );
        assert_eq!(
            n.n_per_group,
            case["n_per_group"].as_u64().unwrap(),
            "{name}/n"
        );
        let achieved = normal_power(h, n.n_per_group as f64, alpha).unwrap();
        assert_close(
            achieved,
            num(&case["achieved_power_at_n"]),
            &format!("{name}/achieved power"),
        );
        let mde = normal_minimum_detectable_effect(n.n_per_group as f64, alpha, power).unwrap();
        assert_close(mde, num(&case["mde_at_n"]).abs(), &format!("{name}/mde"));
    }
}

#[test]
fn distribution_tails_match_scipy_to_1e_11() {
    // The crate's p-values rest on these; scipy (Boost/cephes) is the reference.
    let reference = fixture("reference.json");
    for case in reference["t_distribution"].as_array().unwrap() {
        let (df, x, want) = (num(&case["df"]), num(&case["x"]), num(&case["sf"]));
        let got = flightdeck_stats::distributions::t_sf(x, df);
        let ok = if want < 1e-300 {
            got < 1e-290
        } else {
            (got - want).abs() <= 1e-11 * want
        };
        assert!(ok, "t sf(x={x}, df={df}): {got:e} vs {want:e}");
    }
    for case in reference["normal"].as_array().unwrap() {
        let (x, want) = (num(&case["x"]), num(&case["sf"]));
        let got = flightdeck_stats::distributions::norm_sf(x);
        // erfc(x/√2): rounding x/√2 costs up to x²·2.2e-16 relative (2e-13 at x = 30).
        assert!(
            (got - want).abs() <= 1e-12 * want,
            "normal sf({x}): {got:e} vs {want:e}"
        );
    }
}

#[test]
fn ttest_power_matches_statsmodels() {
    let reference = fixture("reference.json");
    let cases = reference["power_ttest"].as_array().unwrap();
    assert!(cases.len() >= 5);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let (d, alpha, power) = (
            num(&case["effect_size"]),
            num(&case["alpha"]),
            num(&case["power"]),
        );
        let n = flightdeck_stats::ttest_sample_size(d, alpha, power).unwrap();
        assert_close(
            n.n_per_group_exact,
            num(&case["n_per_group_exact"]),
            &format!("{name}/n exact"),
        );
        assert_eq!(
            n.n_per_group,
            case["n_per_group"].as_u64().unwrap(),
            "{name}/n"
        );
        let achieved = flightdeck_stats::ttest_power(d, n.n_per_group as f64, alpha).unwrap();
        assert_close(
            achieved,
            num(&case["achieved_power_at_n"]),
            &format!("{name}/achieved power"),
        );
        let mde =
            flightdeck_stats::ttest_minimum_detectable_effect(n.n_per_group as f64, alpha, power)
                .unwrap();
        assert_close(mde, num(&case["mde_at_n"]), &format!("{name}/mde"));
    }
}

#[test]
fn cuped_matches_numpy_and_scipy_on_the_adjusted_data() {
    let reference = fixture("reference.json");
    for case in reference["cuped"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let adj = flightdeck_stats::cuped(
            &nums(&case["a_y"]),
            &nums(&case["a_x"]),
            &nums(&case["b_y"]),
            &nums(&case["b_x"]),
        )
        .unwrap();
        assert_close(adj.theta, num(&case["theta"]), &format!("{name}/theta"));
        assert_close(
            adj.variance_reduction,
            num(&case["variance_reduction"]),
            &format!("{name}/variance reduction"),
        );
        let r = ttest(&adj.a, &adj.b, TTestKind::Welch, 0.05).unwrap();
        for (got, key) in [
            (r.statistic, "statistic"),
            (r.p_value, "p_value"),
            (r.ci_low, "ci_low"),
            (r.ci_high, "ci_high"),
        ] {
            assert_close(got, num(&case[key]), &format!("{name}/{key}"));
        }
    }
}

#[test]
fn bootstrap_interval_agrees_with_welch_on_large_normal_samples() {
    use rand::SeedableRng;
    use rand_distr::{Distribution, Normal};
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let (da, db) = (
        Normal::new(10.0, 2.0).unwrap(),
        Normal::new(10.3, 3.0).unwrap(),
    );
    let a: Vec<f64> = (0..2000).map(|_| da.sample(&mut rng)).collect();
    let b: Vec<f64> = (0..2000).map(|_| db.sample(&mut rng)).collect();
    let (lo, hi) = flightdeck_stats::bootstrap_mean_diff(&a, &b, 4000, 0.95, &mut rng).unwrap();
    let w = ttest_slices(&a, &b, TTestKind::Welch, 0.05).unwrap();
    let width = w.ci_high - w.ci_low;
    // Monte Carlo error of a 4,000-resample percentile is a few percent of the width.
    assert!(
        (lo - w.ci_low).abs() < 0.05 * width,
        "bootstrap low {lo} vs Welch {}",
        w.ci_low
    );
    assert!(
        (hi - w.ci_high).abs() < 0.05 * width,
        "bootstrap high {hi} vs Welch {}",
        w.ci_high
    );
}

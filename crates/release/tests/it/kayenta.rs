//! Kayenta's classifier suite (34 cases) and Mann-Whitney vectors, and the
//! scorer's settled points.

use flightdeck_release::judge::{
    CanaryConfig, Classifier, Direction, EffectMeasure, Judge, Label, MetricSetPair,
    MetricSettings, NanStrategy, Verdict, pairs_from_json, preprocess,
};
use serde_json::Value;

use crate::fixture;

fn f64s(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| match x {
            Value::String(s) if s == "NaN" => f64::NAN,
            x => x.as_f64().unwrap(),
        })
        .collect()
}

fn settings(p: &Value) -> MetricSettings {
    let effect = f64s(&p["effect_size_thresholds(decrease,increase)"]);
    let critical = f64s(&p["critical_thresholds(decrease,increase)"]);
    MetricSettings {
        direction: Direction::parse(p["direction"].as_str().unwrap()),
        critical: p["is_critical"].as_bool().unwrap(),
        must_have_data: p["is_data_required"].as_bool().unwrap(),
        nan_strategy: match p["nan_strategy"].as_str().unwrap() {
            "Replace" => NanStrategy::Replace,
            _ => NanStrategy::Remove,
        },
        effect_measure: match p["effect_size_measure"].as_str().unwrap() {
            "cles" => EffectMeasure::Cles,
            _ => EffectMeasure::MeanRatio,
        },
        allowed_decrease: effect[0],
        allowed_increase: effect[1],
        critical_decrease: critical[0],
        critical_increase: critical[1],
        ..MetricSettings::default()
    }
}

#[test]
fn all_34_kayenta_classifier_cases_pass() {
    let doc: Value = serde_json::from_str(&fixture("kayenta/classifier-cases.json")).unwrap();
    let cases = doc["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 34);
    let mut checked = 0;
    for c in cases {
        let name = c["name"].as_str().unwrap();
        let p = &c["params"];
        let s = settings(p);
        let classifier = Classifier {
            tolerance: p["tolerance"].as_f64().unwrap(),
            confidence: p["conf_level"].as_f64().unwrap(),
        };
        let control = preprocess(&f64s(&c["control"]), &s);
        let experiment = preprocess(&f64s(&c["experiment"]), &s);
        let got = classifier.classify(&control, &experiment, &s);
        let e = &c["expected"];
        if let Some(label) = e["classification"].as_str() {
            assert_eq!(got.label.as_str(), label, "{name}: {got:?}");
            checked += 1;
        }
        if let Some(critical) = e["critical"].as_bool() {
            assert_eq!(got.critical, critical, "{name}: {got:?}");
            checked += 1;
        }
        match &e["deviation"] {
            Value::String(s) if s == "NaN" => {
                assert!(got.ratio.is_nan(), "{name}: {got:?}");
                checked += 1;
            }
            Value::Number(n) => {
                assert_eq!(got.ratio, n.as_f64().unwrap(), "{name}: {got:?}");
                checked += 1;
            }
            _ => {}
        }
        if e["reason_non_empty"].as_bool() == Some(true) {
            assert!(
                got.reason.as_deref().is_some_and(|r| !r.is_empty()),
                "{name}: {got:?}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 34 + 8, "only {checked} expectations checked");
}

#[test]
fn the_mann_whitney_vectors_reproduce_r() {
    let doc: Value = serde_json::from_str(&fixture("kayenta/mannwhitney-vectors.json")).unwrap();
    let mut checked = 0;
    for c in doc["cases"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        let e = &c["expected"];
        if name == "zquant" {
            // The commons-math quantile Kayenta uses at 98 %.
            let z = flightdeck_stats::distributions::norm_ppf(0.01);
            assert!(
                (z - e.as_f64().unwrap()).abs() <= c["tolerance"].as_f64().unwrap(),
                "{z}"
            );
            checked += 1;
            continue;
        }
        let r = flightdeck_stats::mann_whitney(
            &f64s(&c["control"]),
            &f64s(&c["experiment"]),
            c["confidence_level"].as_f64().unwrap(),
        )
        .unwrap();
        let tol = c["tolerance"].as_f64().unwrap_or(1e-6);
        // The zero-heavy case gives the roots under upstream's names.
        let (lo, hi, est) = match e.get("ci_low") {
            Some(lo) => (lo, &e["ci_high"], &e["estimate"]),
            None => (
                &e["root(+z_q) [upstream var ciLower]"],
                &e["root(-z_q) [upstream var ciUpper]"],
                &e["estimate root(0)"],
            ),
        };
        assert!(
            (r.ci_low - lo.as_f64().unwrap()).abs() <= tol,
            "{name}: {r:?}"
        );
        assert!(
            (r.ci_high - hi.as_f64().unwrap()).abs() <= tol,
            "{name}: {r:?}"
        );
        assert!(
            (r.estimate - est.as_f64().unwrap()).abs() <= 1e-4,
            "{name}: {r:?}"
        );
        checked += 1;
    }
    assert_eq!(checked, 5);
}

/// Shifted samples: baseline around 10, canary around `mean`.
fn pair(name: &str, canary_mean: f64) -> MetricSetPair {
    let control: Vec<f64> = (0..40).map(|i| 10.0 + f64::from(i % 9) * 0.1).collect();
    let experiment: Vec<f64> = (0..40)
        .map(|i| canary_mean + f64::from(i % 7) * 0.1)
        .collect();
    MetricSetPair::new(name, control, experiment)
}

const CONFIG: &str = r#"{
  "name": "settled-points",
  "metrics": [
    {"name": "a", "groups": ["g1"], "analysisConfigurations": {"canary": {"direction": "increase"}}},
    {"name": "b", "groups": ["g1", "g2"], "analysisConfigurations": {"canary": {}}},
    {"name": "c", "groups": ["g2"], "analysisConfigurations": {"canary": {"mustHaveData": true}}},
    {"name": "d", "groups": ["g3"], "analysisConfigurations": {"canary": {"muted": true, "critical": true}}},
    {"name": "e", "groups": ["g4"], "analysisConfigurations": {"canary": {}}}
  ],
  "classifier": {"groupWeights": {"g1": 40, "g3": 20}, "scoreThresholds": {"pass": 95, "marginal": 75}}
}"#;

#[test]
fn the_scorer_follows_kayenta_groups_weights_muting_and_nodata() {
    let config = CanaryConfig::from_json(CONFIG, "settled.json").unwrap();
    // a High (canary 30 vs 10), b Pass, c no data with mustHaveData
    // (NodataFailMetric), d muted High (critical, yet ignored), e Nodata.
    let pairs = vec![
        pair("a", 30.0),
        pair("b", 10.0),
        MetricSetPair::new("c", vec![], vec![1.0]),
        pair("d", 30.0),
        MetricSetPair::new("e", vec![1.0, 2.0], vec![]),
    ];
    let r = Judge::default().judge(&config, &pairs).unwrap();
    let labels: Vec<&str> = r
        .metrics
        .iter()
        .map(|m| m.classification.as_str())
        .collect();
    assert_eq!(
        labels,
        ["High", "Pass", "NodataFailMetric", "High", "Nodata"]
    );
    assert!(r.metrics[3].critical && r.metrics[3].muted);
    let g = |n: &str| r.groups.iter().find(|g| g.name == n).unwrap();
    // g1: a High, b Pass → 50. g2: b Pass, c NodataFailMetric → 50.
    // g3 holds only a muted metric: gone (its weight 20 is not given away).
    // g4 holds only Nodata: reported 0 with no_data, counted 100 in the sum.
    assert_eq!((g("g1").score, g("g1").weight), (50.0, 40.0));
    assert_eq!((g("g2").score, g("g2").weight), (50.0, 20.0));
    assert!(r.groups.iter().all(|g| g.name != "g3"));
    assert_eq!(
        (g("g4").score, g("g4").no_data, g("g4").weight),
        (0.0, true, 20.0)
    );
    // 50·0.4 + 50·0.2 + 100·0.2 = 50; 1 Nodata of 4 scored metrics < 50 %.
    assert_eq!(r.score, 50.0);
    assert_eq!(r.classification, Verdict::Fail);
}

#[test]
fn a_critical_failure_or_half_nodata_forces_zero() {
    let config = CanaryConfig::from_json(
        r#"{"metrics": [
            {"name": "errors", "groups": ["g"], "analysisConfigurations": {"canary": {"critical": true, "direction": "increase"}}},
            {"name": "latency", "groups": ["g"]}
        ], "classifier": {"groupWeights": {"g": 100}}}"#,
        "c.json",
    )
    .unwrap();
    let r = Judge::default()
        .judge(&config, &[pair("errors", 30.0), pair("latency", 10.0)])
        .unwrap();
    assert_eq!(r.score, 0.0);
    assert!(
        r.reasons[0].contains("Critical metric \"errors\" was classified as High"),
        "{r:?}"
    );
    // A critical metric with no data is Nodata, critical, and forces 0 too.
    let r = Judge::default()
        .judge(
            &config,
            &[
                MetricSetPair::new("errors", vec![1.0], vec![]),
                pair("latency", 10.0),
            ],
        )
        .unwrap();
    assert_eq!(r.metrics[0].classification, Label::Nodata);
    assert!(r.metrics[0].critical);
    assert_eq!(r.score, 0.0);
    // Healthy: 100, Pass.
    let r = Judge::default()
        .judge(&config, &[pair("errors", 10.0), pair("latency", 10.0)])
        .unwrap();
    assert_eq!((r.score, r.classification), (100.0, Verdict::Pass));
}

#[test]
fn kayenta_configs_load_and_nan_arrives_as_a_string() {
    for f in [
        "kayenta/canary-config.judge-test.json",
        "kayenta/canary-config.prometheus-cpu.json",
        "kayenta/canary-config.prometheus-muted.json",
    ] {
        CanaryConfig::from_json(&fixture(f), f).unwrap();
    }
    let muted = CanaryConfig::from_json(
        &fixture("kayenta/canary-config.prometheus-muted.json"),
        "muted",
    )
    .unwrap();
    assert!(muted.metrics[0].settings.muted && muted.metrics[0].settings.critical);
    assert_eq!(muted.thresholds.pass, 75.0);
    let pairs = pairs_from_json(
        r#"[{"name": "Successful metric", "id": "x", "tags": {"pod": "a"},
             "values": {"control": [1.0, "NaN", 2.0], "experiment": ["NaN", 1.5, 2.5]},
             "attributes": {"control": {}, "experiment": {}}}]"#,
        "pairs.json",
    )
    .unwrap();
    assert!(pairs[0].values.control.0[1].is_nan());
    let err = pairs_from_json(
        r#"[{"name": "m", "values": {"control": [1, "oops"], "experiment": []}}]"#,
        "pairs.json",
    )
    .unwrap_err()
    .to_string();
    assert!(err.starts_with("pairs.json:1:"), "{err}");
    assert!(
        err.contains("[0].values.control") && err.contains("\"oops\""),
        "{err}"
    );
}

/// Kayenta's standalone integration cases: a healthy canary scores 100;
/// a canary drawn from U[20, 23] against U[10, 20] scores 0 on its
/// critical metric; a muted failing metric does not count.
#[test]
fn the_integration_cases_reproduce() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut uniform = |lo: f64, hi: f64, n: usize| -> Vec<f64> {
        (0..n).map(|_| rng.random_range(lo..hi)).collect()
    };
    let cpu = CanaryConfig::from_json(&fixture("kayenta/canary-config.prometheus-cpu.json"), "cpu")
        .unwrap();
    let name = cpu.metrics[0].name.clone();
    let healthy = MetricSetPair::new(&name, uniform(10.0, 20.0, 60), uniform(10.0, 20.0, 60));
    let r = Judge::default().judge(&cpu, &[healthy]).unwrap();
    assert_eq!((r.score, r.classification), (100.0, Verdict::Pass), "{r:?}");
    let marginal = MetricSetPair::new(&name, uniform(10.0, 20.0, 60), uniform(20.0, 23.0, 60));
    let r = Judge::default().judge(&cpu, &[marginal]).unwrap();
    assert_eq!((r.score, r.classification), (0.0, Verdict::Fail), "{r:?}");

    let muted = CanaryConfig::from_json(
        &fixture("kayenta/canary-config.prometheus-muted.json"),
        "muted",
    )
    .unwrap();
    let r = Judge::default()
        .judge(
            &muted,
            &[
                MetricSetPair::new(
                    "Failing metric",
                    uniform(10.0, 20.0, 60),
                    uniform(20.0, 23.0, 60),
                ),
                MetricSetPair::new(
                    "Successful metric",
                    uniform(10.0, 20.0, 60),
                    uniform(10.0, 20.0, 60),
                ),
            ],
        )
        .unwrap();
    assert_eq!(r.metrics[0].classification, Label::High);
    assert_eq!((r.score, r.classification), (100.0, Verdict::Pass), "{r:?}");
}

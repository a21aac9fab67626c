//! The analyzer against gbstats 0.8.0 and scipy (reference values in
//! `tests/fixtures/analysis/reference.json`, made by `generate.py` there).

use std::path::PathBuf;

use flightdeck_experiments::analysis::{
    AnalysisConfig, Decision, Direction, Engine, ExperimentAnalysis, ExperimentAnalyzer,
    MetricKind, MetricSpec, Role,
};
use flightdeck_experiments::load_experiment_file;
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/analysis")
        .join(name)
}

fn reference() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture("reference.json")).unwrap()).unwrap()
}

fn analyze(case: &Value, engine: Engine) -> ExperimentAnalysis {
    let name = case["name"].as_str().unwrap();
    let exp = load_experiment_file(&fixture(&format!("{name}.experiment.json"))).unwrap();
    let metrics = case["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| MetricSpec {
            name: m["name"].as_str().unwrap().to_owned(),
            kind: Some(if m["kind"] == "binomial" {
                MetricKind::Binomial
            } else {
                MetricKind::Mean
            }),
            direction: if m["lower_is_better"] == true {
                Direction::Lower
            } else {
                Direction::Higher
            },
            role: Role::Goal,
        })
        .collect();
    let config = AnalysisConfig {
        metrics,
        engine,
        ..AnalysisConfig::default()
    };
    let file = std::fs::File::open(fixture(&format!("{name}.jsonl"))).unwrap();
    ExperimentAnalyzer::new(config)
        .analyze_reader(
            std::io::BufReader::new(file),
            name,
            exp.key(),
            Some(exp.weights()),
        )
        .unwrap()
}

/// |a − b| ≤ tol, printing where on failure.
fn close(what: &str, got: f64, want: &Value, tol: f64) {
    let want = want
        .as_f64()
        .unwrap_or_else(|| panic!("{what}: reference is {want}"));
    assert!(
        (got - want).abs() <= tol,
        "{what}: got {got:e}, gbstats/scipy {want:e} (diff {:e})",
        (got - want).abs()
    );
}

#[test]
fn every_number_matches_gbstats_and_scipy_to_1e_9() {
    let r = reference();
    let mut checked = 0;
    for case in r["cases"].as_array().unwrap() {
        let a = analyze(case, Engine::Frequentist);
        let name = case["name"].as_str().unwrap();
        // SRM: gbstats' check_srm and scipy's chisquare.
        let srm = &case["srm"];
        assert_eq!(
            serde_json::to_value(&a.srm.observed).unwrap(),
            srm["observed"],
            "{name}"
        );
        close(
            &format!("{name} srm p"),
            a.srm.p_value,
            &srm["p_value"],
            1e-9,
        );
        close(
            &format!("{name} srm p (scipy)"),
            a.srm.p_value,
            &srm["scipy_p_value"],
            1e-9,
        );
        close(
            &format!("{name} srm statistic"),
            a.srm.statistic,
            &srm["statistic"],
            1e-9,
        );
        for (k, e) in a.srm.expected.iter().enumerate() {
            close(
                &format!("{name} srm expected {k}"),
                *e,
                &srm["expected"][k],
                1e-9,
            );
        }
        for m in case["metrics"].as_array().unwrap() {
            let mname = m["name"].as_str().unwrap();
            let got = a.metrics.iter().find(|x| x.name == mname).unwrap();
            for (v, want) in got
                .variations
                .iter()
                .zip(m["variations"].as_array().unwrap())
            {
                let at = format!("{name}/{mname}/arm {}", v.variation_id);
                assert_eq!(v.n, want["n"].as_u64().unwrap(), "{at} n");
                assert_eq!(v.missing, want["missing"].as_u64().unwrap(), "{at} missing");
                close(&format!("{at} mean"), v.mean, &want["mean"], 1e-9);
                close(
                    &format!("{at} variance"),
                    v.variance,
                    &want["variance"],
                    1e-9,
                );
            }
            for want in m["comparisons"].as_array().unwrap() {
                let id = want["variation_id"].as_u64().unwrap() as usize;
                let c = got
                    .comparisons
                    .iter()
                    .find(|c| c.variation_id == id)
                    .unwrap();
                for (diff, f, b) in [
                    ("relative", &c.frequentist.relative, &c.bayesian.relative),
                    ("absolute", &c.frequentist.absolute, &c.bayesian.absolute),
                ] {
                    let at = format!("{name}/{mname}/v{id}/{diff}");
                    let wf = &want["frequentist"][diff];
                    close(&format!("{at} estimate"), f.estimate, &wf["estimate"], 1e-9);
                    close(&format!("{at} ci_low"), f.ci_low, &wf["ci_low"], 1e-9);
                    close(&format!("{at} ci_high"), f.ci_high, &wf["ci_high"], 1e-9);
                    close(&format!("{at} p"), f.p_value, &wf["p_value"], 1e-9);
                    let guard = f.error.map(|e| serde_json::to_value(e).unwrap());
                    assert_eq!(guard.unwrap_or(Value::Null), wf["error"], "{at} guard");
                    let wb = &want["bayesian"][diff];
                    close(
                        &format!("{at} chance to win"),
                        b.chance_to_win,
                        &wb["chance_to_win"],
                        1e-9,
                    );
                    close(&format!("{at} credible low"), b.ci_low, &wb["ci_low"], 1e-9);
                    close(
                        &format!("{at} credible high"),
                        b.ci_high,
                        &wb["ci_high"],
                        1e-9,
                    );
                    close(
                        &format!("{at} risk control"),
                        b.risk_control,
                        &wb["risk_control"],
                        1e-9,
                    );
                    close(
                        &format!("{at} risk treatment"),
                        b.risk_treatment,
                        &wb["risk_treatment"],
                        1e-9,
                    );
                    let guard = b.error.map(|e| serde_json::to_value(e).unwrap());
                    assert_eq!(
                        guard.unwrap_or(Value::Null),
                        wb["error"],
                        "{at} bayes guard"
                    );
                    checked += 1;
                }
                match (&c.welch, want.get("welch")) {
                    (Some(w), Some(ww)) => {
                        let at = format!("{name}/{mname}/v{id} welch");
                        close(&format!("{at} t"), w.statistic, &ww["statistic"], 1e-9);
                        close(&format!("{at} p"), w.p_value, &ww["p_value"], 1e-9);
                        close(&format!("{at} df"), w.df, &ww["df"], 1e-6);
                    }
                    (None, None) => {}
                    (got, want) => panic!("{name}/{mname}/v{id}: welch {got:?} against {want:?}"),
                }
            }
        }
    }
    assert!(checked >= 20, "{checked} comparisons checked");
}

#[test]
fn an_srm_is_invalid_and_never_ships_whatever_the_lift() {
    let r = reference();
    let case = r["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "srm")
        .unwrap();
    for engine in [Engine::Frequentist, Engine::Bayesian] {
        let a = analyze(case, engine);
        assert!(a.srm.mismatch);
        assert_eq!(a.recommendation.decision, Decision::Invalid, "{engine:?}");
        assert!(
            a.recommendation.reasons[0].starts_with("sample ratio mismatch"),
            "{:?}",
            a.recommendation.reasons
        );
    }
}

#[test]
fn the_three_arm_experiment_gets_a_reasoned_verdict() {
    let r = reference();
    let case = r["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "three-arm")
        .unwrap();
    let a = analyze(case, Engine::Frequentist);
    // converted: v1 +30 % with raw p = 0.022, but 6 goal comparisons under
    // Holm leave it short of 0.05; latency: v1 faster (good), v2 slower.
    let converted = &a.metrics[0];
    let v1 = &converted.comparisons[0];
    assert!(v1.adjusted_p_value.unwrap() > v1.frequentist.relative.p_value);
    assert_ne!(a.recommendation.decision, Decision::Invalid);
    assert!(!a.recommendation.reasons.is_empty());
    let json = serde_json::to_value(&a).unwrap();
    for key in ["experiment", "srm", "metrics", "recommendation"] {
        assert!(json.get(key).is_some(), "{key}");
    }
    for key in ["observed", "expected", "statistic", "p_value", "mismatch"] {
        assert!(json["srm"].get(key).is_some(), "srm.{key}");
    }
    let c = &json["metrics"][0]["comparisons"][0];
    for path in [
        "frequentist/relative/estimate",
        "frequentist/absolute/p_value",
        "bayesian/relative/chance_to_win",
        "bayesian/absolute/risk_treatment",
        "welch/df",
        "adjusted_p_value",
    ] {
        let mut v = c;
        for part in path.split('/') {
            v = &v[part];
        }
        assert!(v.is_number(), "{path} in {c}");
    }
    assert_eq!(json["metrics"][0]["kind"], "binomial");
    assert!(json["recommendation"]["decision"].is_string());
}

#[test]
fn latency_as_a_lower_is_better_guardrail_blocks_a_slower_winner() {
    // Arm 2 is 10 % slower (significant); declared as a guardrail, a win on
    // another goal cannot ship it.
    let r = reference();
    let case = r["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "three-arm")
        .unwrap();
    let exp = load_experiment_file(&fixture("three-arm.experiment.json")).unwrap();
    let config = AnalysisConfig {
        metrics: vec![
            MetricSpec::parse("latency_ms:mean:lower").unwrap(),
            MetricSpec::parse("revenue:mean:guardrail").unwrap(),
        ],
        only_declared: true,
        correction: None,
        ..AnalysisConfig::default()
    };
    let file = std::fs::File::open(fixture("three-arm.jsonl")).unwrap();
    let a = ExperimentAnalyzer::new(config)
        .analyze_reader(
            std::io::BufReader::new(file),
            "three-arm",
            exp.key(),
            Some(exp.weights()),
        )
        .unwrap();
    let _ = case;
    // v1 is faster (p ≈ 2e-6): a win on the lower-is-better goal.
    assert_eq!(
        a.recommendation.decision,
        Decision::Ship,
        "{:#?}",
        a.recommendation
    );
    assert_eq!(a.recommendation.variation_id, Some(1));
    assert_eq!(a.recommendation.metric.as_deref(), Some("latency_ms"));
    assert!(
        a.recommendation.reasons[0].contains("-6.7 %"),
        "{:?}",
        a.recommendation.reasons
    );
    assert!(
        a.recommendation
            .reasons
            .iter()
            .any(|r| r.contains("v2 is worse on goal latency_ms")),
        "{:?}",
        a.recommendation.reasons
    );
    // The Bayesian engine agrees: v1's chance to be faster is ~100 % and
    // the risk of shipping it is tiny.
    let config = AnalysisConfig {
        metrics: vec![MetricSpec::parse("latency_ms:mean:lower").unwrap()],
        only_declared: true,
        engine: Engine::Bayesian,
        ..AnalysisConfig::default()
    };
    let file = std::fs::File::open(fixture("three-arm.jsonl")).unwrap();
    let b = ExperimentAnalyzer::new(config)
        .analyze_reader(
            std::io::BufReader::new(file),
            "three-arm",
            exp.key(),
            Some(exp.weights()),
        )
        .unwrap();
    assert_eq!(
        (b.recommendation.decision, b.recommendation.variation_id),
        (Decision::Ship, Some(1))
    );
    assert!(b.recommendation.confidence.unwrap() > 0.999);
    assert!(
        b.recommendation.reasons[0].contains("chance to win"),
        "{:?}",
        b.recommendation.reasons
    );
}

fn lines(arms: &[(usize, f64)], per_arm: usize) -> String {
    let mut out = String::new();
    for i in 0..per_arm {
        for &(arm, rate) in arms {
            // A deterministic 0/1 pattern at the given rate.
            let converted = u8::from(((i * 7919 + arm * 104_729) % 1000) as f64 / 1000.0 < rate);
            out.push_str(&format!(
                "{{\"timestamp_ms\":{},\"experiment\":\"e\",\"user_id\":\"u{arm}-{i}\",\"variation_id\":{arm},\"variation_key\":\"v{arm}\",\"metrics\":{{\"converted\":{converted}}}}}\n",
                1_780_000_000_000u64 + i as u64 * 1000
            ));
        }
    }
    out
}

#[test]
fn a_worse_treatment_keeps_the_control_and_a_small_one_keeps_running() {
    let worse = lines(&[(0, 0.20), (1, 0.12)], 3000);
    let a = ExperimentAnalyzer::default()
        .analyze_reader(worse.as_bytes(), "r", "e", Some(&[0.5, 0.5]))
        .unwrap();
    assert_eq!(
        a.recommendation.decision,
        Decision::KeepControl,
        "{:#?}",
        a.recommendation
    );
    assert!(
        a.recommendation
            .reasons
            .iter()
            .any(|r| r.contains("v1 is worse on goal converted")),
        "{:?}",
        a.recommendation.reasons
    );
    let tiny = lines(&[(0, 0.20), (1, 0.21)], 50);
    let a = ExperimentAnalyzer::default()
        .analyze_reader(tiny.as_bytes(), "r", "e", Some(&[0.5, 0.5]))
        .unwrap();
    assert_eq!(a.recommendation.decision, Decision::KeepRunning);
    assert!(
        a.recommendation.reasons[0].contains("only 50 users in the smallest arm"),
        "{:?}",
        a.recommendation.reasons
    );
    let flat = lines(&[(0, 0.20), (1, 0.205)], 2000);
    let a = ExperimentAnalyzer::default()
        .analyze_reader(flat.as_bytes(), "r", "e", Some(&[0.5, 0.5]))
        .unwrap();
    assert_eq!(a.recommendation.decision, Decision::KeepRunning);
    let p = a.power.unwrap();
    assert!(p.users_needed_per_arm.unwrap() > 2000, "{p:?}");
    assert!(
        a.recommendation
            .reasons
            .iter()
            .any(|r| r.contains("users per arm")),
        "{:?}",
        a.recommendation.reasons
    );
}

#[test]
fn an_in_process_tracker_gives_the_same_answer_as_its_file() {
    use flightdeck_experiments::{ResultRecord, ResultsTracker};
    let text = lines(&[(0, 0.10), (1, 0.16)], 2000);
    let tracker = ResultsTracker::in_memory();
    for l in text.lines() {
        tracker
            .record(serde_json::from_str::<ResultRecord>(l).unwrap())
            .unwrap();
    }
    let analyzer = ExperimentAnalyzer::default();
    let from_file = analyzer
        .analyze_reader(text.as_bytes(), "r", "e", Some(&[0.5, 0.5]))
        .unwrap();
    let in_process = analyzer
        .analyze_tracker(&tracker, "e", Some(&[0.5, 0.5]))
        .unwrap();
    assert_eq!(
        from_file.recommendation.decision,
        in_process.recommendation.decision
    );
    let (f, t) = (
        &from_file.metrics[0].comparisons[0].frequentist.relative,
        &in_process.metrics[0].comparisons[0].frequentist.relative,
    );
    assert!(
        (f.estimate - t.estimate).abs() < 1e-12 && (f.p_value - t.p_value).abs() < 1e-12,
        "{f:?} {t:?}"
    );
    assert_eq!(in_process.metrics[0].kind, MetricKind::Binomial);
}

#[test]
fn metric_declarations_parse_or_name_the_bad_part() {
    let m = MetricSpec::parse("latency_ms:mean:lower:guardrail").unwrap();
    assert_eq!(
        (m.kind, m.direction, m.role),
        (Some(MetricKind::Mean), Direction::Lower, Role::Guardrail)
    );
    let e = MetricSpec::parse("x:median").unwrap_err();
    assert!(e.contains("\"median\" is not one of"), "{e}");
    assert!(MetricSpec::parse(":mean").is_err());
}

#[test]
fn bad_lines_name_file_and_line_and_memory_is_bounded() {
    let text = "{\"timestamp_ms\":1,\"experiment\":\"e\",\"user_id\":\"u\",\"variation_id\":0,\"variation_key\":\"c\",\"metrics\":{}}\nnot json\n";
    let err = ExperimentAnalyzer::default()
        .analyze_reader(text.as_bytes(), "r.jsonl", "e", None)
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("r.jsonl:2: "), "{err}");
    let many: String = (0..100).map(|i| format!("{{\"timestamp_ms\":1,\"experiment\":\"e\",\"user_id\":\"u\",\"variation_id\":{i},\"variation_key\":\"c\",\"metrics\":{{}}}}\n")).collect();
    let err = ExperimentAnalyzer::default()
        .analyze_reader(many.as_bytes(), "r.jsonl", "e", None)
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("r.jsonl:65: variation_id 64"), "{err}");
}

#[test]
fn a_huge_variation_id_is_a_leak_not_a_huge_allocation() {
    // Found by the experiment_results fuzz target: the arms were a dense
    // range up to the largest id a record named (195 GB for this one).
    let mut text = lines(&[(0, 0.2), (1, 0.2)], 200);
    text.push_str("{\"timestamp_ms\":1,\"experiment\":\"e\",\"user_id\":\"x\",\"variation_id\":19555555555,\"variation_key\":\"odd\",\"metrics\":{\"converted\":1}}\n");
    let a = ExperimentAnalyzer::default()
        .analyze_reader(text.as_bytes(), "r", "e", Some(&[0.5, 0.5]))
        .unwrap();
    assert_eq!(a.srm.variation_ids, [0, 1, 19_555_555_555]);
    assert!(a.srm.mismatch, "users in a variation the experiment lacks");
    assert_eq!(a.recommendation.decision, Decision::Invalid);
}

/// gbstats itself, run now, reproduces the committed reference values and
/// data (so the fixtures are what the generator says they are).
#[test]
fn gbstats_regenerates_the_committed_reference() {
    let cache = std::env::var("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache")
        });
    let python = cache.join("flightdeck/gbstats-venv/bin/python");
    assert!(
        python.exists(),
        "gbstats is not installed ({}); run `cargo xtask install-test-deps`",
        python.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(&python)
        .arg(fixture("generate.py"))
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "generate.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for data in ["three-arm.jsonl", "srm.jsonl", "guards.jsonl"] {
        assert_eq!(
            std::fs::read(dir.path().join(data)).unwrap(),
            std::fs::read(fixture(data)).unwrap(),
            "{data} differs from the committed copy"
        );
    }
    let fresh: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("reference.json")).unwrap())
            .unwrap();
    let committed = reference();
    // Numbers equal to 1e-12 (library versions may round the last digit).
    fn same(a: &Value, b: &Value, at: &str) {
        match (a, b) {
            (Value::Number(x), Value::Number(y)) => {
                let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
                assert!(
                    (x - y).abs() <= 1e-12 * x.abs().max(1.0),
                    "{at}: {x} vs {y}"
                );
            }
            (Value::Array(x), Value::Array(y)) => {
                assert_eq!(x.len(), y.len(), "{at}");
                for (i, (p, q)) in x.iter().zip(y).enumerate() {
                    same(p, q, &format!("{at}[{i}]"));
                }
            }
            (Value::Object(x), Value::Object(y)) => {
                for (k, v) in x {
                    if k == "scipy" || k == "numpy" {
                        continue;
                    }
                    same(v, &y[k], &format!("{at}.{k}"));
                }
            }
            _ => assert_eq!(a, b, "{at}"),
        }
    }
    same(&fresh["cases"], &committed["cases"], "cases");
}

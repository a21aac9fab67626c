//! GrowthBook's cross-SDK suite (`tests/fixtures/cases.json`, see SOURCES.md),
//! section by section. Every case runs unless `exclusions.json` names it with
//! a reason; an exclusion that names no case fails the test.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use flightdeck_experiments::{
    Condition, Context, Experiment, FeatureSet, InMemoryStickyBucketService, SavedGroups,
    StickyAssignmentsDocument, StickyBucketService, bucket_ranges, choose_variation, equal_weights,
    hash, in_namespace, query_string_override,
};
use serde_json::{Value, json};

fn cases() -> &'static Value {
    static CASES: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    CASES.get_or_init(|| {
        let text = include_str!("../fixtures/cases.json");
        serde_json::from_str(text).expect("the vendored suite is valid JSON")
    })
}

fn exclusions() -> BTreeMap<String, BTreeMap<String, String>> {
    let text = include_str!("../fixtures/exclusions.json");
    serde_json::from_str(text).expect("exclusions.json is valid")
}

/// Runs `check` on every case of `section`, returning (ran, excluded) and
/// panicking with every failure listed.
fn run_section(section: &str, check: impl Fn(&[Value]) -> Result<(), String>) -> (usize, usize) {
    let excl = exclusions().remove(section).unwrap_or_default();
    let list = cases()[section].as_array().expect("section is an array");
    let mut ran = 0;
    let mut skipped = 0;
    let mut failures = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (i, case) in list.iter().enumerate() {
        let case = case.as_array().expect("case is an array");
        let name = case[0]
            .as_str()
            .map_or_else(|| i.to_string(), str::to_owned);
        if excl.contains_key(&name) {
            seen.insert(name);
            skipped += 1;
            continue;
        }
        ran += 1;
        if let Err(e) = check(case) {
            failures.push(format!("{section}[{i}] {name}: {e}"));
        }
    }
    let stale: Vec<_> = excl.keys().filter(|k| !seen.contains(*k)).collect();
    assert!(
        stale.is_empty(),
        "{section}: exclusions name no case: {stale:?}"
    );
    assert!(
        failures.is_empty(),
        "{} of {ran} {section} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    #[allow(clippy::print_stderr)]
    {
        eprintln!("{section}: {ran} ran, {skipped} excluded");
    }
    (ran, skipped)
}

fn floor8(x: f64) -> f64 {
    (x * 1e8).floor() / 1e8
}

fn ranges_json(r: &[(f64, f64)]) -> Value {
    Value::from(
        r.iter()
            .map(|(a, b)| json!([floor8(*a), floor8(*b)]))
            .collect::<Vec<_>>(),
    )
}

fn as_ranges(v: &Value) -> Vec<(f64, f64)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| (r[0].as_f64().unwrap(), r[1].as_f64().unwrap()))
        .collect()
}

fn expect_eq<T: PartialEq + std::fmt::Debug>(got: T, want: T) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("got {got:?}, want {want:?}"))
    }
}

#[test]
fn hash_section() {
    let (ran, _) = run_section("hash", |c| {
        let got = hash(
            c[0].as_str().unwrap(),
            c[1].as_str().unwrap(),
            c[2].as_u64().unwrap() as u32,
        );
        expect_eq(got, c[3].as_f64())
    });
    assert_eq!(ran, 15);
}

#[test]
fn get_bucket_range_section() {
    run_section("getBucketRange", |c| {
        let args = &c[1];
        let weights: Option<Vec<f64>> = args[2]
            .as_array()
            .map(|w| w.iter().map(|x| x.as_f64().unwrap()).collect());
        let got = bucket_ranges(
            args[0].as_u64().unwrap() as usize,
            args[1].as_f64().unwrap(),
            weights.as_deref(),
        );
        expect_eq(ranges_json(&got), ranges_json(&as_ranges(&c[2])))
    });
}

#[test]
fn choose_variation_section() {
    run_section("chooseVariation", |c| {
        let got = choose_variation(c[1].as_f64().unwrap(), &as_ranges(&c[2]));
        expect_eq(got.map_or(-1, |i| i as i64), c[3].as_i64().unwrap())
    });
}

#[test]
fn get_equal_weights_section() {
    let list = cases()["getEqualWeights"].as_array().unwrap();
    for c in list {
        let n = c[0].as_i64().unwrap();
        let got: Vec<f64> = equal_weights(n.max(0) as usize)
            .into_iter()
            .map(floor8)
            .collect();
        let want: Vec<f64> = c[1]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| floor8(x.as_f64().unwrap()))
            .collect();
        assert_eq!(got, want, "getEqualWeights({n})");
    }
    assert_eq!(list.len(), 6);
}

#[test]
fn in_namespace_section() {
    run_section("inNamespace", |c| {
        let ns = &c[2];
        let got = in_namespace(
            c[1].as_str().unwrap(),
            ns[0].as_str().unwrap(),
            ns[1].as_f64().unwrap(),
            ns[2].as_f64().unwrap(),
        );
        expect_eq(got, c[3].as_bool().unwrap())
    });
}

#[test]
fn get_query_string_override_section() {
    run_section("getQueryStringOverride", |c| {
        let got = query_string_override(
            c[1].as_str().unwrap(),
            c[2].as_str().unwrap(),
            c[3].as_u64().unwrap() as usize,
        );
        expect_eq(got.map(|i| i as u64), c[4].as_u64())
    });
}

#[test]
fn eval_condition_section() {
    run_section("evalCondition", |c| {
        let (cond, _warnings) = Condition::compile(&c[1]);
        let groups: SavedGroups = c
            .get(4)
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_array().cloned().unwrap_or_default()))
                    .collect()
            })
            .unwrap_or_default();
        expect_eq(cond.eval(&c[2], &groups), c[3].as_bool().unwrap())
    });
}

fn feature_set(ctx: &Value) -> FeatureSet {
    FeatureSet::from_json(
        ctx.get("features").unwrap_or(&Value::Null),
        ctx.get("savedGroups"),
    )
}

#[test]
fn run_section_cases() {
    run_section("run", |c| {
        let ctx = Context::from_json(&c[1]);
        let features = feature_set(&c[1]);
        let exp = Experiment::from_json(&c[2]);
        let r = exp.run_with(&ctx, &features, None);
        expect_eq(
            (r.value.clone(), r.in_experiment, r.hash_used),
            (
                c[3].clone(),
                c[4].as_bool().unwrap(),
                c[5].as_bool().unwrap(),
            ),
        )
    });
}

/// Compares JSON treating numbers by value (1 == 1.0).
fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_json(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_json(v, w)))
        }
        _ => a == b,
    }
}

#[test]
fn feature_section() {
    run_section("feature", |c| {
        let ctx = Context::from_json(&c[1]);
        let features = feature_set(&c[1]);
        let got = features.eval(c[2].as_str().unwrap(), &ctx).to_json();
        let mut want = c[3].clone();
        if want.get("ruleId").is_none() {
            want["ruleId"] = Value::from("");
        }
        if same_json(&got, &want) {
            Ok(())
        } else {
            Err(format!("\n got {got}\nwant {want}"))
        }
    });
}

#[test]
fn sticky_bucket_section() {
    run_section("stickyBucket", |c| {
        let service = Arc::new(InMemoryStickyBucketService::new());
        for doc in c[2].as_array().unwrap() {
            let doc: StickyAssignmentsDocument = serde_json::from_value(doc.clone()).unwrap();
            service.save_assignments(doc).unwrap();
        }
        let ctx = Context::from_json(&c[1]).with_sticky_buckets(service.clone());
        let features = feature_set(&c[1]);
        let r = features.eval(c[3].as_str().unwrap(), &ctx);
        let got = r
            .experiment_result
            .as_ref()
            .map_or(Value::Null, |r| r.to_json());
        if !same_json(&got, &c[4]) {
            return Err(format!("result\n got {got}\nwant {}", c[4]));
        }
        // The suite's expected documents are the user's own (the SDK loads
        // only the documents for the user's attribute values).
        let attrs = &c[1]["attributes"];
        let mine: BTreeMap<_, _> = service
            .all()
            .into_iter()
            .filter(|(_, d)| {
                attrs.get(&d.attribute_name).and_then(Value::as_str) == Some(&d.attribute_value)
            })
            .collect();
        let docs = serde_json::to_value(mine).unwrap();
        if !same_json(&docs, &c[5]) {
            return Err(format!("docs\n got {docs}\nwant {}", c[5]));
        }
        Ok(())
    });
}

#[test]
fn the_suite_is_the_vendored_version() {
    assert_eq!(cases()["specVersion"], "0.8.0");
    let _ = Mutex::new(());
}

#[test]
fn non_ascii_ids_hash_as_in_javascript() {
    let v: Value = serde_json::from_str(include_str!("../fixtures/non_ascii_hashes.json")).unwrap();
    let list = v["cases"].as_array().unwrap();
    assert!(list.len() >= 10);
    for c in list {
        let got = hash(
            c[0].as_str().unwrap(),
            c[1].as_str().unwrap(),
            c[2].as_u64().unwrap() as u32,
        );
        assert_eq!(got, c[3].as_f64(), "hash({}, {}, {})", c[0], c[1], c[2]);
    }
}

//! Large simple-format files, which are decoded and compiled on several
//! threads: every flag evaluates as it does when compiled alone, a
//! dependency across the threads' shares still gates, and problems from
//! every share are listed in line order.

use flightdeck_experiments::{Context, FeatureSource};
use flightdeck_flags::{FeatureFlagManager, FlagSet, LoadError};
use serde_json::{Value, json};

const N: usize = 600;

/// Flag `i`: a rollout, targeting on even flags, listed users on every
/// third, string variants on every fifth, and on every seventh flag from
/// 300 on a dependency on flag `i - 300` (in the other thread's share).
fn flag(i: usize) -> Value {
    let mut f = json!({"id": format!("flag-{i}"), "rollout_percentage": (i * 7) % 101});
    if i.is_multiple_of(2) {
        f["targeting"] =
            json!({"attributes": {"country": {"$in": ["US", "CA"]}, "age": {"$gt": 20 + i % 20}}});
    }
    if i.is_multiple_of(3) {
        f["targeting"]["user_ids"] = json!(["user-1", "user-4"]);
    }
    if i.is_multiple_of(5) {
        f["variants"] = json!([
            {"key": "a", "value": "blue", "weight": 1},
            {"key": "b", "value": "green", "weight": 3},
        ]);
        f["default"] = json!("a");
    }
    if i.is_multiple_of(7) && i >= 300 {
        f["depends_on"] = json!([format!("flag-{}", i - 300)]);
    }
    f
}

fn yaml(flags: &[Value]) -> String {
    serde_norway::to_string(&json!({ "flags": flags })).unwrap()
}

fn users() -> Vec<Context> {
    (0..40)
        .map(|u| {
            let country = ["US", "FR", "CA"][u % 3];
            Context::new(json!({"id": format!("user-{u}"), "country": country, "age": 18 + u}))
        })
        .collect()
}

#[test]
fn every_flag_evaluates_as_when_compiled_alone() {
    let flags: Vec<Value> = (0..N).map(flag).collect();
    let all =
        FeatureFlagManager::with_flags(FlagSet::parse("all.yaml", &yaml(&flags), None).unwrap());
    let users = users();
    let mut compared = 0;
    for (i, f) in flags.iter().enumerate() {
        let key = format!("flag-{i}");
        if f.get("depends_on").is_some() {
            continue;
        }
        let alone = FeatureFlagManager::with_flags(
            FlagSet::parse("one.yaml", &yaml(std::slice::from_ref(f)), None).unwrap(),
        );
        for ctx in &users {
            let (a, b) = (all.evaluate(&key, ctx), alone.evaluate(&key, ctx));
            assert_eq!(
                (&a.value, a.source, &a.rule_id),
                (&b.value, b.source, &b.rule_id),
                "{key}"
            );
            compared += 1;
        }
    }
    assert!(compared > 500 * 40, "{compared}");
    // Dependencies across shares gate: a dependent is never on where its
    // parent is off.
    let mut gated = 0;
    for i in (300..N).filter(|i| i % 7 == 0) {
        for ctx in &users {
            let parent = all.evaluate(&format!("flag-{}", i - 300), ctx);
            let child = all.evaluate(&format!("flag-{i}"), ctx);
            if !parent.on {
                assert_eq!(child.source, FeatureSource::Prerequisite, "flag-{i}");
                gated += 1;
            }
        }
    }
    assert!(gated > 100, "{gated}");
}

#[test]
fn problems_from_every_share_are_listed_in_line_order() {
    let mut flags: Vec<Value> = (0..N).map(flag).collect();
    flags[10]["rollout_percentage"] = json!(150);
    flags[590]["depends_on"] = json!(["flag-nope"]);
    flags[595]["colour"] = json!("red");
    let text = yaml(&flags);
    let line_of = |id: &str| {
        text.lines()
            .position(|l| l.trim_start_matches("- ").trim() == format!("id: {id}"))
            .unwrap()
            + 1
    };
    let Err(LoadError::Invalid(problems)) = FlagSet::parse("big.yaml", &text, None) else {
        panic!("the file should be rejected");
    };
    let shown: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert_eq!(shown.len(), 3, "{shown:#?}");
    assert!(
        shown[0].contains("flag \"flag-10\": rollout_percentage 150"),
        "{shown:#?}"
    );
    assert!(
        shown[1].contains("flag \"flag-590\": depends on unknown flag \"flag-nope\""),
        "{shown:#?}"
    );
    assert!(
        shown[2].contains("flag \"flag-595\"") && shown[2].contains("colour"),
        "{shown:#?}"
    );
    let lines: Vec<usize> = problems.iter().map(|p| p.line).collect();
    assert!(lines.windows(2).all(|w| w[0] <= w[1]), "{lines:?}");
    assert!(
        lines[0] >= line_of("flag-10") && lines[0] < line_of("flag-11"),
        "{shown:#?}"
    );
    assert!(
        lines[1] >= line_of("flag-590") && lines[1] < line_of("flag-591"),
        "{shown:#?}"
    );
    assert!(
        lines[2] >= line_of("flag-595") && lines[2] < line_of("flag-596"),
        "{shown:#?}"
    );
}

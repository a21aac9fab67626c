//! Flagger's weight progressions (docs and example Canaries).

use std::time::Duration;

use flightdeck_release::progression::{CheckOutcome, Decision, Progression, Status, Steps};
use serde_json::Value;

use crate::fixture;

#[test]
fn every_flagger_weight_sequence_matches() {
    let doc: Value =
        serde_json::from_str(&fixture("flagger/weight-progression-cases.json")).unwrap();
    let cases = doc["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 5);
    for c in cases {
        let a = &c["analysis"];
        let steps = match a.get("stepWeights") {
            Some(ws) => Steps::Explicit(
                ws.as_array()
                    .unwrap()
                    .iter()
                    .map(|w| u32::try_from(w.as_u64().unwrap()).unwrap())
                    .collect(),
            ),
            None => Steps::Linear {
                step_weight: u32::try_from(a["stepWeight"].as_u64().unwrap()).unwrap(),
                max_weight: u32::try_from(a["maxWeight"].as_u64().unwrap()).unwrap(),
            },
        };
        steps.validate().unwrap();
        // Drive the controller's decision function with passing checks.
        let p = Progression {
            steps,
            ..Progression::default()
        };
        let mut status = Status::default();
        let mut seen: Vec<Value> = Vec::new();
        for _ in 0..200 {
            let (d, s) = p.decide(status, CheckOutcome::Pass, Duration::ZERO);
            status = s;
            match d {
                Decision::SetWeight { weight } => seen.push(Value::from(weight)),
                Decision::Promote => {
                    seen.push(Value::from("promote"));
                    break;
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(&Value::from(seen), &c["expected"], "{}", c["source"]);
    }
}

#[test]
fn a_failing_check_at_threshold_1_rolls_back_at_once() {
    let p = Progression::default();
    let (d, s) = p.decide(Status::default(), CheckOutcome::Pass, Duration::ZERO);
    assert_eq!(d, Decision::SetWeight { weight: 5 });
    let (d, s) = p.decide(s, CheckOutcome::Fail, Duration::ZERO);
    assert_eq!(s.failed_checks, 1);
    match d {
        Decision::Rollback { reason } => {
            assert_eq!(reason, "failed checks (1) reached the threshold (1)");
        }
        other => panic!("{other:?}"),
    }
}

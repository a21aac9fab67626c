//! `flightdeck flags`: eval output, validate's problem list, kill and restore
//! with an audit log.

use serde_json::Value;

use crate::{flightdeck, run_ok};

const FLAGS: &str = "flags:
  - id: hybrid
    targeting:
      attributes: {country: {$in: [US, CA]}}
  - id: ranker
    default: bm25
    variants:
      - {key: bm25, value: bm25}
      - {key: colbert, value: colbert}
  - id: old
    expires: 2020-01-01
";

fn eval(dir: &std::path::Path, ctx: &str, flag: &str) -> Value {
    let out = run_ok(
        flightdeck()
            .args([
                "flags",
                "eval",
                "--json",
                "--flag",
                flag,
                "--context",
                ctx,
                "--flags",
            ])
            .arg(dir.join("flags.yaml")),
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn eval_kill_restore_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("flags.yaml"), FLAGS).unwrap();
    let v = eval(dir.path(), r#"{"id": "u1", "country": "US"}"#, "hybrid");
    assert_eq!(v["value"], true);
    assert_eq!(v["source"], "force");
    assert_eq!(v["rule_id"], "rollout");
    for k in ["key", "value", "on", "source", "rule_id", "variation_id"] {
        assert!(v.get(k).is_some(), "{k} missing from {v}");
    }
    let v = eval(dir.path(), r#"{"attributes": {"id": "u1"}}"#, "ranker");
    assert_eq!(v["source"], "experiment");
    assert!(v["variation_id"].is_u64());

    // All flags, one line each.
    let out = run_ok(
        flightdeck()
            .args([
                "flags",
                "eval",
                "--json",
                "--context",
                r#"{"id": "u1"}"#,
                "--flags",
            ])
            .arg(dir.path().join("flags.yaml")),
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 3);

    run_ok(
        flightdeck()
            .args([
                "flags",
                "kill",
                "hybrid",
                "--reason",
                "p99 doubled",
                "--actor",
                "alice",
                "--flags",
            ])
            .arg(dir.path().join("flags.yaml")),
    );
    let v = eval(dir.path(), r#"{"id": "u1", "country": "US"}"#, "hybrid");
    assert_eq!(
        (v["value"].clone(), v["source"].clone()),
        (Value::Bool(false), Value::from("killSwitch"))
    );
    assert_eq!(v["kill"]["actor"], "alice");
    run_ok(
        flightdeck()
            .args([
                "flags", "restore", "hybrid", "--reason", "fixed", "--actor", "alice", "--flags",
            ])
            .arg(dir.path().join("flags.yaml")),
    );
    let v = eval(dir.path(), r#"{"id": "u1", "country": "US"}"#, "hybrid");
    assert_eq!(v["value"], true);
    let audit = std::fs::read_to_string(dir.path().join("flags.yaml.audit.jsonl")).unwrap();
    let lines: Vec<Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["action"], "kill");
    assert_eq!(lines[0]["reason"], "p99 doubled");
    assert_eq!(lines[1]["action"], "restore");

    // Killing an unknown flag fails without touching the log.
    let out = flightdeck()
        .args(["flags", "kill", "nope", "--reason", "x", "--flags"])
        .arg(dir.path().join("flags.yaml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown flag \"nope\""));
}

#[test]
fn validate_summarises_or_lists_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("flags.yaml");
    std::fs::write(&good, FLAGS).unwrap();
    let out = run_ok(flightdeck().args(["flags", "validate"]).arg(&good));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("3 flags (2 boolean, 1 typed)"), "{text}");
    assert!(
        text.contains("past their expiry date: old (2020-01-01)"),
        "{text}"
    );

    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "flags:\n  - id: a\n    rollout_percentage: 200\n  - id: b\n    depends_on: [zz]\n  - id: c\n    targeting:\n      attributes: {email: {$regex: \"(\"}}\n",
    )
    .unwrap();
    let out = flightdeck()
        .args(["flags", "validate"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let b = bad.display().to_string();
    assert!(
        err.contains(&format!("{b}:3:5: flag \"a\": rollout_percentage 200")),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "{b}:5:5: flag \"b\": depends on unknown flag \"zz\""
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "{b}:8:7: flag \"c\": targeting.attributes.email.$regex: invalid regex"
        )),
        "{err}"
    );
}

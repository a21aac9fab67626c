//! The acceptance scenarios at the library level: a second run with new
//! ids, shifted timestamps and ±5 % jitter passes; each regression fails
//! with exactly that difference at that span.

use flightdeck_golden::{Case, Checker, DiffKind, RawTrace, Rules, Spec, Tree, compare};
use serde_json::json;

use crate::common::{MS, Stages, jitter, rag_trace, reidentify, slow_down, with_attr, without};

fn golden() -> RawTrace {
    rag_trace(
        "req-1",
        1_700_000_000_000_000_000,
        1,
        &Stages::typical(),
        0.91,
    )
}

fn diffs(actual: &RawTrace) -> Vec<flightdeck_golden::Difference> {
    let g = Tree::build(&golden()).unwrap();
    let a = Tree::build(actual).unwrap();
    compare(&g, &a, &Rules::new())
}

fn rerun(seed: u64) -> RawTrace {
    jitter(
        &reidentify(&golden(), 10_000, 3_600 * 1_000 * MS),
        0.05,
        seed,
    )
}

#[test]
fn a_second_run_with_new_ids_shifted_times_and_jitter_agrees() {
    for seed in 0..50 {
        let d = diffs(&rerun(seed));
        assert!(d.is_empty(), "seed {seed}: {d:#?}");
    }
}

#[test]
fn a_removed_stage_is_one_missing_span() {
    let d = diffs(&without(&rerun(1), "rag.rerank"));
    assert_eq!(d.len(), 1, "{d:#?}");
    assert_eq!(d[0].kind, DiffKind::MissingSpan);
    assert_eq!(d[0].path, "rag.request/rag.rerank");
    assert_eq!(d[0].message, r#"span "rag.request/rag.rerank": missing"#);
    // A stage with children is one difference at its top.
    let d = diffs(&without(&rerun(1), "rag.retrieve"));
    let missing: Vec<_> = d
        .iter()
        .filter(|d| d.kind == DiffKind::MissingSpan)
        .collect();
    assert_eq!(missing.len(), 1, "{d:#?}");
    assert!(
        missing[0]
            .message
            .ends_with("missing (with 3 spans below it)")
    );
}

#[test]
fn a_stage_three_times_slower_is_blamed_alone() {
    let d = diffs(&slow_down(&rerun(2), "rag.generate", 3.0));
    assert_eq!(d.len(), 1, "{d:#?}");
    assert_eq!(d[0].kind, DiffKind::Latency);
    assert_eq!(d[0].path, "rag.request/rag.generate");
    assert!(d[0].fails);
    let (e, a) = (
        d[0].expected.as_f64().unwrap(),
        d[0].actual.as_f64().unwrap(),
    );
    assert!((a / e - 3.0).abs() < 0.2, "{e} {a}");
    assert!(
        d[0].message.contains("slower: self time"),
        "{}",
        d[0].message
    );
}

#[test]
fn small_spans_under_the_floor_and_faster_spans_do_not_fail() {
    // The 4 ms guardrail taking 1.5× as long is 2 ms: under the 5 ms floor.
    let d = diffs(&slow_down(&golden(), "rag.guardrail", 1.5));
    assert!(d.is_empty(), "{d:#?}");
    let faster = diffs(&slow_down(&golden(), "rag.generate", 0.5));
    assert_eq!(faster.len(), 1);
    assert!(
        !faster[0].fails && faster[0].message.contains("faster"),
        "{faster:#?}"
    );
}

#[test]
fn a_changed_model_is_an_attribute_difference_at_that_span() {
    let d = diffs(&with_attr(
        &rerun(3),
        "rag.generate",
        "gen_ai.request.model",
        json!("gpt-4o"),
    ));
    assert_eq!(d.len(), 1, "{d:#?}");
    assert_eq!(d[0].kind, DiffKind::Attribute);
    assert_eq!(d[0].path, "rag.request/rag.generate");
    assert_eq!(
        (d[0].expected.clone(), d[0].actual.clone()),
        (json!("gpt-4o-mini"), json!("gpt-4o"))
    );
    assert_eq!(
        d[0].message,
        r#"span "rag.request/rag.generate": attribute "gen_ai.request.model" expected "gpt-4o-mini", actual "gpt-4o""#
    );
    // Response ids are volatile by default.
    assert!(
        diffs(&with_attr(
            &rerun(3),
            "rag.generate",
            "gen_ai.response.id",
            json!("other")
        ))
        .is_empty()
    );
}

#[test]
fn a_relevance_drop_fails_and_a_rise_is_reported() {
    let d = diffs(&with_attr(
        &rerun(4),
        "rag.rerank",
        "rag.relevance_score",
        json!(0.71),
    ));
    assert_eq!(d.len(), 1, "{d:#?}");
    assert_eq!(d[0].kind, DiffKind::Quality);
    assert_eq!(d[0].path, "rag.request/rag.rerank");
    assert!(
        d[0].fails && d[0].message.contains("dropped by 0.200"),
        "{}",
        d[0].message
    );
    let small = diffs(&with_attr(
        &rerun(4),
        "rag.rerank",
        "rag.relevance_score",
        json!(0.88),
    ));
    assert!(
        small.is_empty(),
        "a drop of 0.03 is within 0.05: {small:#?}"
    );
    let rise = diffs(&with_attr(
        &rerun(4),
        "rag.rerank",
        "rag.relevance_score",
        json!(0.99),
    ));
    assert!(!rise[0].fails);
}

#[test]
fn status_and_event_changes_are_named() {
    let mut t = rerun(5);
    let g = t
        .spans
        .iter_mut()
        .find(|s| s.name == "rag.generate")
        .unwrap();
    g.status = flightdeck_obs_core::SpanStatus::Error {
        message: "rate limited".into(),
    };
    let r = t
        .spans
        .iter_mut()
        .find(|s| s.name == "rag.retrieve")
        .unwrap();
    r.events[0].attributes.insert("documents".into(), json!(9));
    let d = diffs(&t);
    assert_eq!(d.len(), 2, "{d:#?}");
    assert_eq!(d[0].kind, DiffKind::Event);
    assert_eq!(
        d[0].message,
        r#"span "rag.request/rag.retrieve": event[0] "retrieved documents": attribute "documents" expected 17, actual 9"#
    );
    assert_eq!(d[1].kind, DiffKind::Status);
    assert_eq!(
        d[1].message,
        r#"span "rag.request/rag.generate": status expected ok, actual error "rate limited""#
    );
}

#[test]
fn yaml_rules_relax_what_they_name() {
    let spec = Spec::from_yaml(
        "attributes:\n  gen_ai.request.model: {regex: \"^gpt-4o\"}\n  rag.retrieval.documents: {tolerance: 2}\n",
        "golden.yaml",
        Default::default(),
    )
    .unwrap();
    let g = Tree::build(&golden()).unwrap();
    let t = with_attr(
        &with_attr(
            &rerun(6),
            "rag.generate",
            "gen_ai.request.model",
            json!("gpt-4o"),
        ),
        "rag.retrieve",
        "rag.retrieval.documents",
        json!(19),
    );
    assert!(compare(&g, &Tree::build(&t).unwrap(), &spec.rules).is_empty());
    let t = with_attr(
        &rerun(6),
        "rag.retrieve",
        "rag.retrieval.documents",
        json!(20),
    );
    assert_eq!(compare(&g, &Tree::build(&t).unwrap(), &spec.rules).len(), 1);
}

#[test]
fn the_checker_reports_pass_fail_missing_and_new() {
    let mut cases = std::collections::BTreeMap::new();
    for k in ["a", "b", "c"] {
        let t = rag_trace(k, 0, 1, &Stages::typical(), 0.9);
        cases.insert(k.to_owned(), Case::new(k, Tree::build(&t).unwrap()));
    }
    let spec = Spec::from_yaml(
        "specs:\n  - name: small model\n    selector: span[name=\"rag.generate\"]\n    assertions:\n      - attr:gen_ai.request.model = \"gpt-4o-mini\"\n      - attr:tracetest.selected_spans.count = 1\n",
        "golden.yaml",
        Default::default(),
    )
    .unwrap();
    let mut checker = Checker::new(&cases, &spec, flightdeck_golden::CaseKey::CorrelationId);
    checker
        .add(rag_trace("a", 5, 50, &Stages::typical(), 0.9))
        .unwrap();
    let b = rag_trace("b", 5, 50, &Stages::typical(), 0.9);
    checker
        .add(with_attr(
            &b,
            "rag.generate",
            "gen_ai.request.model",
            json!("gpt-4o"),
        ))
        .unwrap();
    checker
        .add(rag_trace("zzz", 5, 50, &Stages::typical(), 0.9))
        .unwrap();
    let report = checker.finish();
    assert_eq!(
        (report.passed, report.failed, report.missing, report.new),
        (1, 1, 1, 1)
    );
    assert_eq!(report.new_cases, ["zzz"]);
    let b = &report.cases[1];
    // The golden comparison and the YAML assertion both name the change.
    assert_eq!(b.differences.len(), 2, "{:#?}", b.differences);
    assert!(
        b.differences[1].message.contains(
            r#"check "small model": attr:gen_ai.request.model = "gpt-4o-mini" failed: "gpt-4o""#
        ),
        "{}",
        b.differences[1].message
    );
    let junit = report.to_junit("golden");
    assert!(
        junit.contains(r#"<testcase classname="golden" name="a"/>"#),
        "{junit}"
    );
    assert!(junit.contains(r#"<failure type="attribute" message="span &quot;rag.request/rag.generate&quot;: attribute"#), "{junit}");
    assert!(junit.contains(r#"<failure type="missing""#));
    assert!(junit.contains(r#"name="zzz">"#) && junit.contains("<skipped"));
}

#[test]
fn checks_with_when_skip_traces_their_selector_misses() {
    let yaml = |when: &str| {
        format!(
            "specs:\n  - name: model\n{when}    selector: span[name=\"rag.generate\"]\n    assertions:\n      - attr:gen_ai.request.model = \"gpt-4o-mini\"\n"
        )
    };
    let no_generate = Tree::build(&without(&golden(), "rag.generate")).unwrap();
    let strict = Spec::from_yaml(&yaml(""), "golden.yaml", Default::default()).unwrap();
    let d = strict.run(&no_generate);
    assert_eq!(
        d.len(),
        1,
        "as in Tracetest, nothing to assert on is a failure"
    );
    assert!(
        d[0].message.contains("the selector matched no spans"),
        "{}",
        d[0].message
    );
    let guarded = Spec::from_yaml(
        &yaml("    when: span[name=\"rag.generate\"]\n"),
        "golden.yaml",
        Default::default(),
    )
    .unwrap();
    assert!(guarded.run(&no_generate).is_empty());
    // Where the selector matches, the check still runs.
    let changed = Tree::build(&with_attr(
        &golden(),
        "rag.generate",
        "gen_ai.request.model",
        json!("gpt-4o"),
    ))
    .unwrap();
    assert_eq!(guarded.run(&changed).len(), 1);
}

//! Conformance: Tracetest's 14 selector cases, the opentelemetry-rust OTLP
//! golden, and collector-contrib's ptracetest pairs.

use std::borrow::Cow;
use std::path::PathBuf;

use flightdeck_golden::{Rules, Selectable, Selector, Tree, compare, read_otlp, read_otlp_value};
use serde_json::Value;

fn fixture(p: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(p)
}

/// The Tracetest fixture's tree, flattened in pre-order.
struct Fixture {
    ids: Vec<String>,
    names: Vec<String>,
    kinds: Vec<String>,
    parents: Vec<Option<usize>>,
    attrs: Vec<serde_json::Map<String, Value>>,
}

impl Fixture {
    fn load(trace: &Value) -> Self {
        let mut f = Self {
            ids: vec![],
            names: vec![],
            kinds: vec![],
            parents: vec![],
            attrs: vec![],
        };
        let mut stack = vec![(trace, None)];
        while let Some((node, parent)) = stack.pop() {
            let me = f.ids.len();
            f.ids.push(node["id"].as_str().unwrap().to_owned());
            f.names.push(node["name"].as_str().unwrap().to_owned());
            f.kinds.push(node["kind"].as_str().unwrap().to_owned());
            f.parents.push(parent);
            f.attrs
                .push(node["attributes"].as_object().unwrap().clone());
            for child in node["children"].as_array().unwrap().iter().rev() {
                stack.push((child, Some(me)));
            }
        }
        f
    }
}

impl Selectable for Fixture {
    fn span_count(&self) -> usize {
        self.ids.len()
    }
    fn parent_of(&self, span: usize) -> Option<usize> {
        self.parents[span]
    }
    fn name_of(&self, span: usize) -> &str {
        &self.names[span]
    }
    fn kind_of(&self, span: usize) -> Cow<'_, str> {
        Cow::Borrowed(&self.kinds[span])
    }
    fn attribute_of(&self, span: usize, key: &str) -> Option<Value> {
        self.attrs[span].get(key).cloned()
    }
}

#[test]
fn tracetest_selector_cases_all_pass() {
    let doc: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("tracetest/selector-cases.json")).unwrap(),
    )
    .unwrap();
    let tree = Fixture::load(&doc["trace"]);
    let cases = doc["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 14);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let selector = Selector::parse(case["selector"].as_str().unwrap())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let got: Vec<&str> = selector
            .select(&tree)
            .into_iter()
            .map(|i| tree.ids[i].as_str())
            .collect();
        let want: Vec<&str> = case["expected_span_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(got, want, "{name}: {}", selector.as_str());
    }
}

#[test]
fn selectors_on_our_trees_use_the_same_language() {
    let t = crate::common::rag_trace("k", 0, 1, &crate::common::Stages::typical(), 0.9);
    let tree = Tree::build(&t).unwrap();
    let sel = |s: &str| -> Vec<String> {
        Selector::parse(s)
            .unwrap()
            .select(&tree)
            .into_iter()
            .map(|i| tree.spans()[i].path.clone())
            .collect()
    };
    assert_eq!(
        sel(r#"span[name="rag.generate" gen_ai.request.model="gpt-4o-mini"]"#),
        ["rag.request/rag.generate"]
    );
    assert_eq!(
        sel(r#"span[name="rag.retrieve"] span[kind="client"]:last"#),
        ["rag.request/rag.retrieve/rag.retrieve.shard[2]"]
    );
    assert_eq!(
        sel(r#"span[name="rag.guardrail"]:nth_child(2)"#),
        ["rag.request/rag.guardrail[1]"]
    );
    assert_eq!(
        sel(r#"span[name="rag.guardrail"]:nth_child(0)"#),
        Vec::<String>::new()
    );
    let a = flightdeck_golden::Assertion::parse("attr:tracetest.span.duration < 500ms").unwrap();
    let all = Selector::parse("span[]").unwrap().select(&tree);
    assert!(a.check(&tree, &all).passed);
    let b = flightdeck_golden::Assertion::parse("attr:tracetest.span.duration < 100ms").unwrap();
    let o = b.check(&tree, &all);
    assert!(!o.passed);
    assert_eq!(
        tree.spans()[o.span.unwrap()].path,
        "rag.request",
        "the first failing span"
    );
    let c =
        flightdeck_golden::Assertion::parse("attr:tracetest.selected_spans.count >= 10").unwrap();
    assert!(c.check(&tree, &all).passed);
    let none = Selector::parse(r#"span[name="nope"]"#)
        .unwrap()
        .select(&tree);
    let o = flightdeck_golden::Assertion::parse("attr:x = 1")
        .unwrap()
        .check(&tree, &none);
    assert!(
        !o.passed && o.observed.starts_with("the selector matched no spans"),
        "{o:?}"
    );
}

fn otel_rust() -> Vec<flightdeck_golden::RawTrace> {
    let path = fixture("otel/otel-rust-expected-traces.json");
    read_otlp(
        &std::fs::read_to_string(&path).unwrap(),
        "otel-rust-expected-traces.json",
    )
    .unwrap()
}

#[test]
fn the_otel_rust_golden_imports_and_equals_itself_modulo_ids() {
    let traces = otel_rust();
    assert_eq!(traces.len(), 1);
    let golden = Tree::build(&traces[0]).unwrap();
    // Listed child first, each span in its own resourceSpans: order must not matter.
    let paths: Vec<&str> = golden.spans().iter().map(|s| s.path.as_str()).collect();
    assert_eq!(paths, ["operation", "operation/Sub operation..."]);
    assert_eq!(golden.spans()[0].attributes["ex.com/another"], "yes");
    assert_eq!(golden.spans()[0].events[0].name, "Nice operation!");
    assert_eq!(golden.spans()[0].events[0].attributes["bogons"], 100);
    // The same spans with every id replaced and the order reversed.
    let mut other = traces[0].clone();
    other.spans.reverse();
    for s in &mut other.spans {
        s.span_id ^= 0x5555;
        s.parent_span_id = s.parent_span_id.map(|p| p ^ 0x5555);
    }
    other.trace_id = "ffffffffffffffffffffffffffffffff".into();
    let actual = Tree::build(&other).unwrap();
    assert!(compare(&golden, &actual, &Rules::new()).is_empty());
    // And a real difference is seen: upstream's asserter compares events too.
    other.spans[0].events.clear();
    let d = compare(&golden, &Tree::build(&other).unwrap(), &Rules::new());
    assert_eq!(d.len(), 1, "{d:#?}");
}

fn yaml(p: &str) -> Vec<flightdeck_golden::RawTrace> {
    let text = std::fs::read_to_string(fixture(p)).unwrap();
    let v: serde_norway::Value = serde_norway::from_str(&text).unwrap();
    read_otlp_value(&serde_json::to_value(v).unwrap(), p).unwrap()
}

#[test]
fn ptracetest_pairs_compare_as_ids_ignored() {
    // ignore-spanid: equal once span ids are ignored, which we always do.
    let e = Tree::build(&yaml("otel/ptracetest/ignore-spanid/expected.yaml")[0]).unwrap();
    let a = Tree::build(&yaml("otel/ptracetest/ignore-spanid/actual.yaml")[0]).unwrap();
    assert!(compare(&e, &a, &Rules::new()).is_empty());
    // parentspanid-mismatch: one span whose parent is outside the capture
    // (a remote parent); the ids differ, the shape does not.
    let e = Tree::build(&yaml("otel/ptracetest/parentspanid-mismatch/expected.yaml")[0]).unwrap();
    let a = Tree::build(&yaml("otel/ptracetest/parentspanid-mismatch/actual.yaml")[0]).unwrap();
    assert_eq!(e.spans()[0].attributes["key1"], "value1");
    assert!(compare(&e, &a, &Rules::new()).is_empty());
}

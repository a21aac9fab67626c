//! The store: pretty files with stable order, atomic writes, JSONL export
//! and import, and errors naming file and line.

use flightdeck_golden::{Case, Store, Tree, file_name};

use crate::common::{Stages, rag_trace};

fn case(name: &str) -> Case {
    Case::new(
        name,
        Tree::build(&rag_trace(name, 0, 1, &Stages::typical(), 0.9)).unwrap(),
    )
}

#[test]
fn cases_round_trip_through_files_with_sorted_keys() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path().join("golden"));
    assert!(
        store.load().unwrap().is_empty(),
        "a missing directory is an empty store"
    );
    let path = store.write(&case("req/1")).unwrap();
    assert_eq!(
        path.file_name().unwrap().to_str().unwrap(),
        file_name("req/1")
    );
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.starts_with("{\n  \"flightdeck_golden\": 1,\n  \"name\": \"req/1\",\n  \"spans\": ["),
        "{text}"
    );
    // Attributes are sorted, so a re-record diffs only what changed.
    let gen_at = text.find("\"gen_ai.request.model\"").unwrap();
    assert!(text[..gen_at].rfind("\"rag.request/rag.embed\"").is_some());
    let loaded = store.load().unwrap();
    assert_eq!(loaded["req/1"], case("req/1"));
    // Writing the same case again gives the same bytes.
    store.write(&case("req/1")).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    let leftovers: Vec<_> = std::fs::read_dir(store.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        leftovers
            .iter()
            .all(|n| !n.to_string_lossy().contains(".tmp")),
        "{leftovers:?}"
    );
}

#[test]
fn the_store_exports_and_imports_as_jsonl() {
    let dir = tempfile::tempdir().unwrap();
    let a = Store::new(dir.path().join("a"));
    a.write(&case("x")).unwrap();
    a.write(&case("y")).unwrap();
    let jsonl = a.export_jsonl().unwrap();
    assert_eq!(jsonl.lines().count(), 2);
    let b = Store::new(dir.path().join("b"));
    assert_eq!(b.import_jsonl(&jsonl, "all.jsonl").unwrap(), 2);
    assert_eq!(a.load().unwrap(), b.load().unwrap());
    let bad = format!(
        "{}\n{{\"flightdeck_golden\": 1, \"name\": \"z\", \"spans\": [{{\"path\": 3}}]}}\n",
        jsonl.lines().next().unwrap()
    );
    let err = b.import_jsonl(&bad, "all.jsonl").unwrap_err().to_string();
    assert!(err.starts_with("all.jsonl:2:"), "{err}");
}

#[test]
fn bad_files_are_errors_naming_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path());
    std::fs::write(
        dir.path().join("a.json"),
        "{\n  \"flightdeck_golden\": 1,\n  \"name\": \"a\",\n  \"spans\": [}\n",
    )
    .unwrap();
    let err = store.load().unwrap_err().to_string();
    assert!(err.contains("a.json:4:"), "{err}");
    std::fs::write(dir.path().join("a.json"), r#"{"flightdeck_golden": 1, "name": "a", "spans": [{"path": "r/x", "kind": "internal", "status": {"code": "ok"}, "duration_ms": 1, "self_ms": 1}]}"#).unwrap();
    let err = store.load().unwrap_err().to_string();
    assert!(
        err.contains("a.json: spans[0].path: \"r/x\": its parent \"r\" is not listed before it"),
        "{err}"
    );
    std::fs::write(dir.path().join("a.json"), r#"{"flightdeck_golden": 1, "name": "a", "spans": [{"path": "r", "kind": "internal", "status": {"code": "ok"}, "duration_ms": -1, "self_ms": 1}]}"#).unwrap();
    let err = store.load().unwrap_err().to_string();
    assert!(
        err.contains("spans[0].duration_ms: -1 is not a duration"),
        "{err}"
    );
    std::fs::write(dir.path().join("a.json"), "[".repeat(10_000)).unwrap();
    let err = store.load().unwrap_err().to_string();
    assert!(err.contains("nested deeper than 128"), "{err}");
}

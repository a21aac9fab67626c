//! `flightdeck golden` end to end on demo output: a re-run with new ids,
//! shifted timestamps and ±5 % jitter passes; a removed stage, a stage three
//! times slower, a changed model and a relevance drop each fail with exactly
//! that difference at that span, in the JSON and in JUnit.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::{Value, json};

use crate::{flightdeck, read_jsonl, run_ok};

fn run(args: &[&str]) -> Output {
    flightdeck()
        .args(args)
        .output()
        .expect("the flightdeck binary runs")
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn write_jsonl(path: &Path, lines: &[Value]) {
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(path, text).unwrap();
}

/// Demo output and its goldens, made once per test.
struct World {
    dir: tempfile::TempDir,
    spans: Vec<Value>,
    golden: PathBuf,
}

impl World {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("demo");
        run_ok(
            flightdeck()
                .args([
                    "demo",
                    "--requests",
                    "12",
                    "--time-scale",
                    "0.3",
                    "--seed",
                    "11",
                    "--out",
                ])
                .arg(&out)
                .arg("--golden")
                .arg(dir.path().join("unused")),
        );
        let traces = out.join("traces.jsonl");
        let golden = dir.path().join("golden");
        let rec = run_ok(
            flightdeck()
                .args(["golden", "record", "--traces"])
                .arg(&traces)
                .arg("--out")
                .arg(&golden),
        );
        assert!(
            String::from_utf8_lossy(&rec.stdout).contains("recorded 12 case(s)"),
            "{rec:?}"
        );
        let spans = read_jsonl(&traces);
        Self { dir, spans, golden }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The spans of one request (by correlation id).
    fn case_with(&self, stage: &str) -> String {
        // A request that completed (its root is ok) and has the stage.
        let ok_roots: Vec<&str> = self
            .spans
            .iter()
            .filter(|s| s["parent_span_id"].is_null() && s["status"]["code"] == "ok")
            .map(|s| s["correlation_id"].as_str().unwrap())
            .collect();
        ok_roots
            .into_iter()
            .find(|c| {
                self.spans
                    .iter()
                    .any(|s| s["correlation_id"] == *c && s["name"] == stage)
            })
            .unwrap()
            .to_owned()
    }

    /// A re-run: new ids, timestamps an hour later, and each trace's time
    /// warped monotonically by slopes within ±5 % (every duration moves by
    /// at most 5 %, and parents still contain their children).
    fn rerun(&self) -> Vec<Value> {
        let mut ids: HashMap<String, String> = HashMap::new();
        let mut fresh = |old: &str, width: usize| {
            let n = ids.len() as u128 + 1;
            ids.entry(old.to_owned())
                .or_insert_with(|| format!("{:0width$x}", n * 7919 + 0xabc, width = width))
                .clone()
        };
        let mut starts: HashMap<String, u64> = HashMap::new();
        for s in &self.spans {
            let t = s["trace_id"].as_str().unwrap().to_owned();
            let v = s["start_unix_nanos"].as_u64().unwrap();
            starts
                .entry(t)
                .and_modify(|m| *m = (*m).min(v))
                .or_insert(v);
        }
        let warp = |trace: &str, t: u64| -> u64 {
            let t0 = starts[trace];
            let step = 1_000_000u64;
            let rel = t - t0;
            let slope = |k: u64| {
                1.0 + 0.05 * (((k.wrapping_mul(2_654_435_761) >> 7) % 2001) as f64 / 1000.0 - 1.0)
            };
            let whole = rel / step;
            let mut acc = 0.0;
            for k in 0..whole {
                acc += slope(k) * step as f64;
            }
            acc += slope(whole) * (rel % step) as f64;
            t0 + 3_600_000_000_000 + acc as u64
        };
        self.spans
            .iter()
            .map(|s| {
                let mut s = s.clone();
                let trace = s["trace_id"].as_str().unwrap().to_owned();
                let (a, b) = (
                    s["start_unix_nanos"].as_u64().unwrap(),
                    s["end_unix_nanos"].as_u64().unwrap(),
                );
                let (a2, b2) = (warp(&trace, a), warp(&trace, b));
                s["start_unix_nanos"] = json!(a2);
                s["end_unix_nanos"] = json!(b2);
                s["duration_nanos"] = json!(b2 - a2);
                s["trace_id"] = json!(fresh(&trace, 32));
                s["span_id"] = json!(fresh(s["span_id"].as_str().unwrap(), 16));
                if let Some(p) = s["parent_span_id"].as_str() {
                    s["parent_span_id"] = json!(fresh(p, 16));
                }
                if let Some(events) = s.get_mut("events").and_then(Value::as_array_mut) {
                    for e in events {
                        let t = e["time_unix_nanos"].as_u64().unwrap();
                        e["time_unix_nanos"] = json!(warp(&trace, t));
                    }
                }
                s
            })
            .collect()
    }

    fn check(&self, name: &str, spans: &[Value]) -> (Output, Value, String) {
        let traces = self.path(&format!("{name}.jsonl"));
        write_jsonl(&traces, spans);
        let junit = self.path(&format!("{name}.xml"));
        let out = run(&[
            "golden",
            "check",
            "--golden",
            self.golden.to_str().unwrap(),
            "--traces",
            traces.to_str().unwrap(),
            "--junit",
            junit.to_str().unwrap(),
            "--json",
        ]);
        let report: Value =
            serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));
        let xml = std::fs::read_to_string(&junit).unwrap();
        (out, report, xml)
    }
}

/// Moves every timestamp of `corr`'s trace at or after `at` by `delta`.
fn shift_after(spans: &mut [Value], corr: &str, at: u64, delta: i64) {
    for s in spans.iter_mut().filter(|s| s["correlation_id"] == corr) {
        for key in ["start_unix_nanos", "end_unix_nanos"] {
            let v = s[key].as_u64().unwrap();
            if v >= at {
                s[key] = json!(v.saturating_add_signed(delta));
            }
        }
        let d = s["end_unix_nanos"].as_u64().unwrap() - s["start_unix_nanos"].as_u64().unwrap();
        s["duration_nanos"] = json!(d);
    }
}

fn find<'a>(spans: &'a mut [Value], corr: &str, name: &str) -> &'a mut Value {
    spans
        .iter_mut()
        .find(|s| s["correlation_id"] == corr && s["name"] == name)
        .unwrap()
}

/// Exactly one failing case, with exactly one failing difference: its kind and path.
fn the_failure(report: &Value) -> (String, String, String, Value) {
    let failing: Vec<&Value> = report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] != "pass")
        .collect();
    assert_eq!(failing.len(), 1, "{report:#}");
    let diffs: Vec<&Value> = failing[0]["differences"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["fails"] == true)
        .collect();
    assert_eq!(diffs.len(), 1, "{report:#}");
    let d = diffs[0];
    for field in ["kind", "path", "expected", "actual", "message"] {
        assert!(d.get(field).is_some(), "{field} missing from {d}");
    }
    (
        failing[0]["name"].as_str().unwrap().to_owned(),
        d["kind"].as_str().unwrap().to_owned(),
        d["path"].as_str().unwrap().to_owned(),
        d.clone(),
    )
}

fn assert_junit(xml: &str, case: &str, kind: &str, path: &str) {
    assert!(
        xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"),
        "{xml}"
    );
    assert!(
        xml.contains(&format!("name=\"{case}\">\n      <failure type=\"{kind}\"")),
        "{xml}"
    );
    let quoted = format!("span &quot;{path}&quot;");
    assert!(xml.contains(&quoted), "{quoted} not in {xml}");
    // Well-formed XML, as a CI system's parser reads it.
    let out = std::process::Command::new("python3")
        .args(["-c", "import sys, xml.etree.ElementTree as E; r = E.fromstring(sys.stdin.read()); print(len(r.iter('testcase').__next__().attrib))"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(xml.as_bytes())?;
            c.wait_with_output()
        })
        .expect("python3 runs (a prerequisite)");
    assert!(
        out.status.success(),
        "JUnit XML does not parse: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_rerun_passes_and_each_regression_fails_at_its_span() {
    let w = World::new();

    let (out, report, xml) = w.check("rerun", &w.rerun());
    assert_eq!(code(&out), 0, "{report:#} {}", stderr(&out));
    assert_eq!(
        (
            report["passed"].as_u64(),
            report["failed"].as_u64(),
            report["missing"].as_u64(),
            report["new"].as_u64()
        ),
        (Some(12), Some(0), Some(0), Some(0))
    );
    assert!(!xml.contains("<failure"), "{xml}");

    // A stage removed (what followed it starts earlier, as in a real run).
    let corr = w.case_with("rag.rerank");
    let mut spans = w.rerun();
    let r = find(&mut spans, &corr, "rag.rerank").clone();
    spans.retain(|s| !(s["correlation_id"] == corr.as_str() && s["name"] == "rag.rerank"));
    let (start, end) = (
        r["start_unix_nanos"].as_u64().unwrap(),
        r["end_unix_nanos"].as_u64().unwrap(),
    );
    shift_after(&mut spans, &corr, end, -((end - start) as i64));
    let (out, report, xml) = w.check("removed", &spans);
    assert_eq!(code(&out), 3, "{report:#}");
    let (case, kind, path, d) = the_failure(&report);
    assert_eq!(
        (case.as_str(), kind.as_str(), path.as_str()),
        (corr.as_str(), "missing_span", "rag.request/rag.rerank")
    );
    assert_eq!(d["message"], r#"span "rag.request/rag.rerank": missing"#);
    assert_junit(&xml, &corr, "missing_span", "rag.request/rag.rerank");

    // A stage three times slower (everything after it moves).
    let corr = w.case_with("rag.generate");
    let mut spans = w.rerun();
    let g = find(&mut spans, &corr, "rag.generate").clone();
    let (start, end) = (
        g["start_unix_nanos"].as_u64().unwrap(),
        g["end_unix_nanos"].as_u64().unwrap(),
    );
    shift_after(&mut spans, &corr, end, 2 * (end - start) as i64);
    let (out, report, xml) = w.check("slower", &spans);
    assert_eq!(code(&out), 3, "{report:#}");
    let (case, kind, path, d) = the_failure(&report);
    assert_eq!(
        (case.as_str(), kind.as_str(), path.as_str()),
        (corr.as_str(), "latency", "rag.request/rag.generate")
    );
    let ratio = d["actual"].as_f64().unwrap() / d["expected"].as_f64().unwrap();
    assert!((2.6..3.4).contains(&ratio), "{d}");
    assert_junit(&xml, &corr, "latency", "rag.request/rag.generate");

    // A changed model name.
    let mut spans = w.rerun();
    find(&mut spans, &corr, "rag.generate")["attributes"]["gen_ai.request.model"] = json!("gpt-4o");
    let (out, report, xml) = w.check("model", &spans);
    assert_eq!(code(&out), 3, "{report:#}");
    let (case, kind, path, d) = the_failure(&report);
    assert_eq!(
        (case.as_str(), kind.as_str(), path.as_str()),
        (corr.as_str(), "attribute", "rag.request/rag.generate")
    );
    assert_eq!(
        (d["expected"].clone(), d["actual"].clone()),
        (json!("gpt-4o-mini"), json!("gpt-4o"))
    );
    assert_junit(&xml, &corr, "attribute", "rag.request/rag.generate");
    let model_change = spans;

    // A relevance drop of 0.2.
    let corr = w.case_with("rag.rerank");
    let mut spans = w.rerun();
    let rel = &mut find(&mut spans, &corr, "rag.rerank")["attributes"]["rag.relevance_score"];
    let before = rel.as_f64().unwrap();
    *rel = json!(before - 0.2);
    let (out, report, xml) = w.check("relevance", &spans);
    assert_eq!(code(&out), 3, "{report:#}");
    let (case, kind, path, d) = the_failure(&report);
    assert_eq!(
        (case.as_str(), kind.as_str(), path.as_str()),
        (corr.as_str(), "quality", "rag.request/rag.rerank")
    );
    assert!(
        d["message"].as_str().unwrap().contains("dropped by 0.200"),
        "{d}"
    );
    assert_junit(&xml, &corr, "quality", "rag.request/rag.rerank");

    // The text report names the same thing, for a reviewer.
    let traces = w.path("model.jsonl");
    let text = run(&[
        "golden",
        "check",
        "--golden",
        w.golden.to_str().unwrap(),
        "--traces",
        traces.to_str().unwrap(),
    ]);
    assert_eq!(code(&text), 3);
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert!(stdout.contains(r#"✗ attribute       span "rag.request/rag.generate": attribute "gen_ai.request.model" expected "gpt-4o-mini", actual "gpt-4o""#), "{stdout}");
    assert!(
        stdout.contains("golden check: 11 passed, 1 failed, 0 missing, 0 new"),
        "{stdout}"
    );
    assert!(
        !stdout.contains('\x1b'),
        "no colour when stdout is not a terminal"
    );

    // Blessing the reviewed capture makes it the golden.
    let model_case = w.case_with("rag.generate");
    write_jsonl(&traces, &model_change);
    let bless = run_ok(
        flightdeck()
            .args(["golden", "bless", "--golden"])
            .arg(&w.golden)
            .arg("--traces")
            .arg(&traces)
            .args(["--case", &model_case]),
    );
    assert!(
        String::from_utf8_lossy(&bless.stdout).contains(&format!(
            "blessed {model_case} (1 difference(s) from before)"
        )),
        "{bless:?}"
    );
    let (out, report, _) = w.check("model-again", &model_change);
    assert_eq!(code(&out), 0, "{report:#}");
}

#[test]
fn missing_and_new_cases_are_reported_and_templates_check_shapes() {
    let w = World::new();
    let spans = w.rerun();
    let first = spans
        .iter()
        .find(|s| s["parent_span_id"].is_null())
        .unwrap()["correlation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let dropped: Vec<Value> = spans
        .iter()
        .filter(|s| s["correlation_id"] != first.as_str())
        .cloned()
        .collect();
    let (out, report, xml) = w.check("missing", &dropped);
    assert_eq!(code(&out), 3);
    assert_eq!(report["missing"], 1, "{report:#}");
    assert!(xml.contains(r#"<failure type="missing""#));

    let mut renamed = spans.clone();
    for s in renamed
        .iter_mut()
        .filter(|s| s["correlation_id"] == first.as_str())
    {
        s["correlation_id"] = json!("brand-new");
    }
    let (out, report, xml) = w.check("new", &renamed);
    assert_eq!(code(&out), 3, "the renamed case is missing");
    assert_eq!(
        (report["new"].clone(), report["new_cases"].clone()),
        (json!(1), json!(["brand-new"]))
    );
    assert!(
        xml.contains(r#"name="brand-new">"#) && xml.contains("<skipped"),
        "{xml}"
    );

    // The demo's pipeline is guarded RAG with a reranker: it fits
    // guarded-rag and not simple-rag.
    let traces = w.path("new.jsonl");
    let ok = run(&[
        "golden",
        "check",
        "--template",
        "guarded-rag",
        "--traces",
        traces.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code(&ok), 0, "{}", String::from_utf8_lossy(&ok.stdout));
    let bad = run(&[
        "golden",
        "check",
        "--template",
        "simple-rag",
        "--traces",
        traces.to_str().unwrap(),
    ]);
    assert_eq!(code(&bad), 3);
    let text = String::from_utf8_lossy(&bad.stdout);
    assert!(
        text.contains(r#"span "rag.request/rag.rerank": unexpected for template simple-rag"#),
        "{text}"
    );
    let unknown = run(&[
        "golden",
        "check",
        "--template",
        "nope",
        "--traces",
        traces.to_str().unwrap(),
    ]);
    assert_eq!(code(&unknown), 2);
    assert!(
        stderr(&unknown).contains("--template \"nope\" is not a template"),
        "{}",
        stderr(&unknown)
    );
}

#[test]
fn show_diff_export_and_import_work_on_real_cases() {
    let w = World::new();
    let corr = w.case_with("rag.generate");
    let show = run_ok(
        flightdeck()
            .args(["golden", "show", "--golden"])
            .arg(&w.golden)
            .args(["--case", &corr]),
    );
    let text = String::from_utf8_lossy(&show.stdout);
    assert!(text.starts_with(&format!("{corr}  (")), "{text}");
    assert!(text.contains("\n    rag.generate  client  ok  "), "{text}");
    assert!(text.contains("rag.retrieve.shard[1]"), "{text}");

    let a = w.path("a.jsonl");
    let b = w.path("b.jsonl");
    write_jsonl(&a, &w.spans);
    let mut spans = w.rerun();
    find(&mut spans, &corr, "rag.generate")["attributes"]["gen_ai.request.model"] = json!("gpt-4o");
    write_jsonl(&b, &spans);
    let diff = run(&["golden", "diff", a.to_str().unwrap(), b.to_str().unwrap()]);
    assert_eq!(code(&diff), 3);
    let text = String::from_utf8_lossy(&diff.stdout);
    assert!(text.contains(&format!("{corr}\n")), "{text}");
    assert!(text.contains("\n!   rag.generate  client  ok"), "{text}");
    assert!(text.contains(r#"      span "rag.request/rag.generate": attribute "gen_ai.request.model" expected "gpt-4o-mini", actual "gpt-4o""#), "{text}");
    assert!(text.contains("1 of 12 trace(s) differ"), "{text}");

    let export = w.path("all.jsonl");
    run_ok(
        flightdeck()
            .args(["golden", "export", "--golden"])
            .arg(&w.golden)
            .arg("--out")
            .arg(&export),
    );
    assert_eq!(
        std::fs::read_to_string(&export).unwrap().lines().count(),
        12
    );
    let copy = w.path("copy");
    run_ok(
        flightdeck()
            .args(["golden", "import", "--golden"])
            .arg(&copy)
            .arg("--file")
            .arg(&export),
    );
    let names = |d: &Path| {
        let mut v: Vec<_> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n.to_string_lossy().ends_with(".json"))
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(&w.golden), names(&copy));
}

#[test]
fn unusable_input_exits_2_naming_the_problem() {
    let w = World::new();
    // An orphan: a span whose parent is not in its trace (and a root exists).
    let mut spans = w.rerun();
    let victim = spans.iter_mut().find(|s| s["name"] == "rag.embed").unwrap();
    victim["parent_span_id"] = json!("00000000000000ff");
    let traces = w.path("orphan.jsonl");
    write_jsonl(&traces, &spans);
    let out = run(&[
        "golden",
        "check",
        "--golden",
        w.golden.to_str().unwrap(),
        "--traces",
        traces.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains(r#"span "rag.embed""#) && stderr(&out).contains("is an orphan"),
        "{}",
        stderr(&out)
    );

    // A bad line names file and line.
    std::fs::write(&traces, "{\"trace_id\": 1}\n").unwrap();
    let out = run(&[
        "golden",
        "check",
        "--golden",
        w.golden.to_str().unwrap(),
        "--traces",
        traces.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("orphan.jsonl:1:"), "{}", stderr(&out));

    // A broken golden file names itself.
    let first = std::fs::read_dir(&w.golden)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::write(&first, "{\"flightdeck_golden\": 1,\n \"name\": 5}").unwrap();
    let out = run(&[
        "golden",
        "check",
        "--golden",
        w.golden.to_str().unwrap(),
        "--traces",
        traces.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains(&format!("{}:2:", first.display())),
        "{}",
        stderr(&out)
    );

    // A missing traces file and a bad tolerance are bad input too.
    let out = run(&[
        "golden",
        "check",
        "--golden",
        w.golden.to_str().unwrap(),
        "--traces",
        "/nonexistent/t.jsonl",
    ]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let out = run(&[
        "golden",
        "check",
        "--traces",
        "x",
        "--latency-tolerance",
        "-1",
    ]);
    assert_eq!(code(&out), 2);
    let out = run(&["golden", "record", "--traces", "x", "--key", "nope"]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("\"nope\" is not a key"),
        "{}",
        stderr(&out)
    );
}

/// N runs of one input, as a load generator would capture them: a latency
/// profile records them, and a batch with one stage 20 % slower fails with
/// that stage named and an interval.
#[test]
fn profiles_recorded_over_runs_catch_a_slower_stage() {
    use rand::SeedableRng;
    use rand_distr::{Distribution, LogNormal};
    let dir = tempfile::tempdir().unwrap();
    let lines = |seed: u64, slower: f64| -> Vec<Value> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut out = Vec::new();
        for run in 0..40u64 {
            let mut draw =
                |m: f64| (LogNormal::new(f64::ln(m), 0.2).unwrap().sample(&mut rng) * 1e6) as u64;
            let (embed, retrieve, generate) =
                (draw(20.0), draw(40.0), (draw(200.0) as f64 * slower) as u64);
            let trace = format!("{:032x}", seed * 1000 + run + 1);
            let t0 = 1_700_000_000_000_000_000 + run * 10_000_000_000;
            let mut t = t0 + 100_000;
            let mut spans = Vec::new();
            for (k, (name, d)) in [
                ("rag.embed", embed),
                ("rag.retrieve", retrieve),
                ("rag.generate", generate),
            ]
            .into_iter()
            .enumerate()
            {
                spans.push(json!({"trace_id": trace, "span_id": format!("{:016x}", k + 2), "parent_span_id": "0000000000000001", "name": name, "kind": "client", "start_unix_nanos": t, "end_unix_nanos": t + d, "duration_nanos": d, "attributes": {}, "status": {"code": "ok"}, "correlation_id": "load-1", "service_name": "s"}));
                t += d;
            }
            spans.push(json!({"trace_id": trace, "span_id": "0000000000000001", "parent_span_id": null, "name": "rag.request", "kind": "server", "start_unix_nanos": t0, "end_unix_nanos": t + 100_000, "duration_nanos": t + 100_000 - t0, "attributes": {}, "status": {"code": "ok"}, "correlation_id": "load-1", "service_name": "s"}));
            out.extend(spans);
        }
        out
    };
    let rec = dir.path().join("runs.jsonl");
    write_jsonl(&rec, &lines(1, 1.0));
    let golden = dir.path().join("golden");
    let out = run_ok(
        flightdeck()
            .args(["golden", "record", "--runs", "40", "--traces"])
            .arg(&rec)
            .arg("--out")
            .arg(&golden),
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("latency profiles of up to 40 runs"),
        "{out:?}"
    );
    let same = dir.path().join("same.jsonl");
    write_jsonl(&same, &lines(2, 1.0));
    let ok = run(&[
        "golden",
        "check",
        "--golden",
        golden.to_str().unwrap(),
        "--traces",
        same.to_str().unwrap(),
    ]);
    assert_eq!(code(&ok), 0, "{}", String::from_utf8_lossy(&ok.stdout));
    let slow = dir.path().join("slow.jsonl");
    write_jsonl(&slow, &lines(3, 1.2));
    let bad = run(&[
        "golden",
        "check",
        "--golden",
        golden.to_str().unwrap(),
        "--traces",
        slow.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code(&bad), 3);
    let report: Value = serde_json::from_slice(&bad.stdout).unwrap();
    let (_, kind, path, d) = the_failure(&report);
    assert_eq!(
        (kind.as_str(), path.as_str()),
        ("latency", "rag.request/rag.generate")
    );
    let m = d["message"].as_str().unwrap();
    assert!(
        m.contains("rag.generate +") && m.contains(" p=") && m.contains('['),
        "{m}"
    );
}

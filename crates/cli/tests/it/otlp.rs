//! `flightdeck demo` with OTLP: spans reach a real collector with the ids of
//! the demo's own files; with no collector it finishes promptly and says
//! what it could not deliver.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use flightdeck_obs_otel::testing::Collector;

use crate::{flightdeck, read_jsonl, run_ok};

#[test]
fn demo_spans_arrive_with_the_ids_of_its_files() {
    let collector = Collector::start();
    let dir = tempfile::tempdir().unwrap();
    let out = run_ok(
        flightdeck()
            .args(["demo", "--requests", "20", "--out"])
            .arg(dir.path())
            .env(
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                format!("http://127.0.0.1:{}", collector.http),
            ),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let records = read_jsonl(&dir.path().join("traces.jsonl"));
    assert!(
        stdout.contains(&format!("{} spans exported over OTLP", records.len())),
        "{stdout}"
    );
    let traces: BTreeSet<String> = records
        .iter()
        .map(|r| r["trace_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(traces.len(), 20, "one trace per request");
    let last = records.last().unwrap()["span_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let text = collector.wait_for(&last, 1);
    assert!(
        text.contains("deployment.environment.name: Str(development)"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "service.version: Str({})",
            env!("CARGO_PKG_VERSION")
        )),
        "{text}"
    );
    // Every span record, with its parent, is at the collector.
    let blocks: Vec<&str> = text.split("Span #").skip(1).collect();
    for r in &records {
        let id = r["span_id"].as_str().unwrap();
        let block = blocks
            .iter()
            .find(|b| {
                b.lines().any(|l| {
                    let t = l.trim();
                    t.starts_with("ID ") && t.ends_with(id)
                })
            })
            .unwrap_or_else(|| panic!("span {id} ({}) not at the collector", r["name"]));
        assert!(block.contains(r["trace_id"].as_str().unwrap()), "{block}");
        if let Some(parent) = r["parent_span_id"].as_str() {
            assert!(
                block.contains(parent),
                "parent of {id} should be {parent}: {block}"
            );
        }
    }
    // Log lines carry the same ids.
    let logs = read_jsonl(&dir.path().join("logs.jsonl"));
    let logged: BTreeSet<String> = logs
        .iter()
        .filter_map(|l| l["trace_id"].as_str().map(str::to_owned))
        .collect();
    assert!(
        !logged.is_empty() && logged.is_subset(&traces),
        "log trace ids {logged:?}"
    );
}

#[test]
fn with_no_collector_the_demo_finishes_and_says_what_it_lost() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    demo_finishes_and_says_what_it_lost(port, "http/protobuf");
}

#[test]
fn with_a_black_holing_collector_the_demo_finishes_and_says_what_it_lost() {
    // Accepts connections and never answers: exports wait out their timeout.
    let port = flightdeck_obs_otel::testing::BlackHole::start().port;
    for protocol in ["http/protobuf", "grpc"] {
        let logs = demo_finishes_and_says_what_it_lost(port, protocol);
        // The exporter's own complaints are logged, not lost: every line
        // reached the file (the demo exits non-zero otherwise).
        assert!(logs.len() >= 105, "{protocol}: {} lines", logs.len());
    }
}

/// Runs the demo against `port` and checks that it finishes within 5 s of
/// its normal time, says it delivered nothing, and wrote its local files;
/// returns its log lines.
fn demo_finishes_and_says_what_it_lost(port: u16, protocol: &str) -> Vec<serde_json::Value> {
    let dir = tempfile::tempdir().unwrap();
    // The normal time, without OTLP.
    let start = Instant::now();
    run_ok(
        flightdeck()
            .args(["demo", "--requests", "20", "--out"])
            .arg(dir.path().join("baseline")),
    );
    let normal = start.elapsed();
    let start = Instant::now();
    let out = run_ok(
        flightdeck()
            .args(["demo", "--requests", "20", "--out"])
            .arg(dir.path())
            .env(
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                format!("http://127.0.0.1:{port}"),
            )
            .env("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
    );
    let took = start.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("could not deliver 200 of 200 spans over OTLP"),
        "{stdout}"
    );
    // Every lost span is in one of the three counts, including those cut
    // off at the shutdown deadline.
    let counts: Vec<u64> = stdout
        .split_once("spans over OTLP (")
        .and_then(|(_, rest)| rest.split_once(')'))
        .map(|(inside, _)| {
            inside
                .split(", ")
                .filter_map(|part| part.split(' ').next()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(counts.len(), 3, "{stdout}");
    assert_eq!(counts.iter().sum::<u64>(), 200, "{stdout}");
    assert!(
        took < normal + Duration::from_secs(5),
        "{protocol}: took {took:?}, normally {normal:?}"
    );
    assert_eq!(
        read_jsonl(&dir.path().join("traces.jsonl")).len(),
        200,
        "{protocol}: the local files are complete"
    );
    read_jsonl(&dir.path().join("logs.jsonl"))
}

//! Regression tests for the defect classes of the hardening issue: each
//! failed (a crash, a hang, a lost update, a silent wrong answer or a
//! wrong exit code) on the code before the fix.

use std::io::Read;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::flightdeck;

fn run(args: &[&str]) -> Output {
    flightdeck().args(args).output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Exit code and no panic, abort or signal.
fn assert_exit(out: &Output, code: i32, what: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(code), "{what}: {err}");
    assert!(!err.contains("panicked"), "{what}: {err}");
}

#[test]
fn deeply_nested_flag_files_are_errors_naming_the_place_not_aborts() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        // The reported 24 KB file: `{$not: {$not: ...}}` 10,000 deep.
        format!(
            "flags:\n  - id: a\n    targeting:\n      attributes: {}1{}\n",
            "{$not: ".repeat(3_000),
            "}".repeat(3_000)
        ),
        format!(
            "flags:\n  - id: a\n    default: {}{}\n",
            "[".repeat(10_000),
            "]".repeat(10_000)
        ),
        format!(
            "{{\"flags\": [{}{}]}}",
            "[".repeat(10_000),
            "]".repeat(10_000)
        ),
    ];
    for (i, text) in cases.iter().enumerate() {
        let f = dir.path().join(format!("deep{i}.yaml"));
        std::fs::write(&f, text).unwrap();
        let out = run(&["flags", "validate", f.to_str().unwrap()]);
        assert_exit(&out, 2, "deep flags file");
        let err = stderr(&out);
        assert!(err.contains("nested deeper than 128"), "{err}");
        assert!(err.contains(&format!("deep{i}.yaml:")), "{err}");
    }
}

#[test]
fn deeply_nested_slo_specs_fail_fast() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("deep.yaml");
    // 200 KB of flow nesting took serde_norway 32 s.
    std::fs::write(
        &f,
        format!("version: {}{}\n", "[".repeat(100_000), "]".repeat(100_000)),
    )
    .unwrap();
    let started = Instant::now();
    let out = run(&["slo", "validate", f.to_str().unwrap()]);
    assert_exit(&out, 2, "deep SLO spec");
    assert!(
        stderr(&out).contains("nested deeper than 128"),
        "{}",
        stderr(&out)
    );
    // Not a timing claim about speed, a bound against the quadratic parse.
    assert!(started.elapsed() < Duration::from_secs(10));
}

const FLAGS: &str = "flags:\n  - id: alpha\n    rollout_percentage: 50\n  - id: beta\n    rollout_percentage: 10\n  - id: gamma\n    rollout_percentage: 10\n  - id: delta\n    rollout_percentage: 10\n";

#[test]
fn concurrent_kills_from_several_processes_all_land() {
    let dir = tempfile::tempdir().unwrap();
    let flags = dir.path().join("flags.yaml");
    std::fs::write(&flags, FLAGS).unwrap();
    let names = ["alpha", "beta", "gamma", "delta"];
    for round in 0..10 {
        let kills = dir.path().join("flags.yaml.kills.json");
        let _ = std::fs::remove_file(&kills);
        let children: Vec<_> = names
            .iter()
            .map(|n| {
                flightdeck()
                    .args(["flags", "kill", n, "--reason", "round"])
                    .arg("--flags")
                    .arg(&flags)
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for mut c in children {
            let status = c.wait().unwrap();
            let mut err = String::new();
            c.stderr.take().unwrap().read_to_string(&mut err).unwrap();
            assert!(status.success(), "round {round}: {err}");
        }
        let set: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&kills).unwrap()).unwrap();
        for n in names {
            assert!(
                set.get(n).is_some(),
                "round {round}: kill of {n} lost: {set}"
            );
        }
    }
    // Every acknowledged flip has its audit line.
    let audit = std::fs::read_to_string(dir.path().join("flags.yaml.audit.jsonl")).unwrap();
    assert_eq!(audit.lines().count(), 40);
}

#[test]
fn a_kill_works_when_the_flags_file_is_broken_and_repairs_a_corrupt_kill_file() {
    let dir = tempfile::tempdir().unwrap();
    let flags = dir.path().join("flags.yaml");
    std::fs::write(
        &flags,
        "flags:\n  - id: alpha\n    rollout_percentage: 50\n  - id: broken\n    rollout_percentage: 150\n",
    )
    .unwrap();
    let f = flags.to_str().unwrap();
    let out = run(&[
        "flags", "kill", "alpha", "--reason", "incident", "--flags", f,
    ]);
    assert_exit(&out, 0, "kill with a broken file");
    let err = stderr(&out);
    assert!(err.contains("warning:") && err.contains("150"), "{err}");
    // A flag the file does not name is still refused.
    let out = run(&["flags", "kill", "nope", "--reason", "x", "--flags", f]);
    assert_exit(&out, 2, "unknown flag");

    // A stale kill of a flag since removed can be lifted.
    std::fs::write(&flags, "flags:\n  - id: other\n    rollout_percentage: 5\n").unwrap();
    let out = run(&[
        "flags", "restore", "alpha", "--reason", "gone", "--flags", f,
    ]);
    assert_exit(&out, 0, "restore of a removed flag");

    // A corrupt kill file is reported once and replaced, its contents kept.
    let kills = dir.path().join("flags.yaml.kills.json");
    std::fs::write(&kills, "{not json").unwrap();
    let out = run(&["flags", "kill", "other", "--reason", "x", "--flags", f]);
    assert_exit(&out, 0, "kill over a corrupt kill file");
    let err = stderr(&out);
    assert_eq!(err.matches("is corrupt").count(), 1, "reported once: {err}");
    assert_eq!(err.lines().count(), 2, "{err}");
    let set: serde_json::Value = serde_json::from_slice(&std::fs::read(&kills).unwrap()).unwrap();
    assert!(set.get("other").is_some(), "{set}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("flags.yaml.kills.json.corrupt")).unwrap(),
        "{not json"
    );
}

#[test]
fn srm_variation_ids_from_input_are_range_checked() {
    let dir = tempfile::tempdir().unwrap();
    let exp = dir.path().join("e.json");
    std::fs::write(
        &exp,
        r#"{"key": "e", "variations": [0, 1], "weights": [0.5, 0.5]}"#,
    )
    .unwrap();
    let line = |v: &str| {
        format!(
            r#"{{"timestamp_ms": 0, "experiment": "e", "variation_id": {v}, "variation_key": "x", "hash_attribute": "id", "hash_value": "u"}}"#
        )
    };
    for id in ["18446744073709551615", "1000000000"] {
        let exposures = dir.path().join("x.jsonl");
        let text: Vec<String> = (0..10)
            .map(|i| line(&(i % 2).to_string()))
            .chain([line(id)])
            .collect();
        std::fs::write(&exposures, text.join("\n")).unwrap();
        let out = run(&[
            "experiments",
            "srm",
            "--exposures",
            exposures.to_str().unwrap(),
            "--experiment",
            exp.to_str().unwrap(),
        ]);
        assert_exit(&out, 3, id);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(&format!("(ids {id})")), "{text}");
    }
}

#[test]
fn extreme_numbers_give_finite_answers_or_exit_2_never_nan_with_exit_0() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.txt");
    let b = dir.path().join("b.txt");
    std::fs::write(&a, "1e200\n-1e200\n3e199\n").unwrap();
    std::fs::write(&b, "2e200\n-1e199\n1e200\n").unwrap();
    for extra in [None, Some("--equal-var")] {
        let mut args = vec![
            "stats",
            "ttest",
            "--a",
            a.to_str().unwrap(),
            "--b",
            b.to_str().unwrap(),
            "--json",
        ];
        args.extend(extra);
        let out = run(&args);
        assert_exit(&out, 0, "ttest on 1e200");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        for k in ["statistic", "p_value", "ci_low", "ci_high", "df"] {
            assert!(v[k].as_f64().is_some_and(f64::is_finite), "{k}: {v}");
        }
    }
    let out = run(&["stats", "chisq", "--table", "1e308,1e308;1e308,1e308"]);
    assert_exit(&out, 2, "chisq overflow");
    assert!(stderr(&out).contains("overflow"), "{}", stderr(&out));
    let big = u64::MAX.to_string();
    let half = (u64::MAX / 2).to_string();
    let p = format!("{half}/{big}");
    let out = run(&["stats", "proportions", "--a", &p, "--b", &p, "--json"]);
    assert_exit(&out, 0, "proportions near u64::MAX");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!((v["rate_a"].as_f64().unwrap() - 0.5).abs() < 1e-9, "{v}");
    let out = run(&[
        "stats",
        "proportions",
        "--a",
        &format!("1/{big}0"),
        "--b",
        "1/2",
    ]);
    assert_exit(&out, 2, "a count past u64");
}

#[test]
fn a_prometheus_that_never_answers_times_out() {
    // Accepts connections and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let held = std::thread::spawn(move || {
        let mut conns = Vec::new();
        for c in listener.incoming().take(1) {
            conns.push(c);
        }
        conns
    });
    let spec = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../slo/tests/fixtures/sloth/in-base.yaml");
    let started = Instant::now();
    let out = run(&[
        "slo",
        "status",
        "--spec",
        spec.to_str().unwrap(),
        "--prometheus",
        &format!("http://{addr}"),
        "--timeout",
        "1",
    ]);
    assert_exit(&out, 1, "black-holing Prometheus");
    assert!(stderr(&out).contains("timed out"), "{}", stderr(&out));
    assert!(started.elapsed() < Duration::from_secs(30));
    drop(held);
}

#[test]
fn messages_escape_and_bound_the_values_they_echo() {
    // The kernel caps one argument at 128 KiB.
    let long = format!("\u{1b}[2J{}", "x".repeat(100_000));
    let out = run(&["stats", "srm", "--observed", &long]);
    assert_exit(&out, 2, "a 100 KB bad value");
    let err = stderr(&out);
    assert!(err.len() < 1_000, "{} bytes echoed", err.len());
    assert!(!err.contains('\u{1b}'), "raw escape echoed: {err:?}");
    assert!(err.contains("\\u{1b}"), "{err}");

    // Non-UTF-8 input and a byte order mark.
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("n.txt");
    std::fs::write(&f, b"1\n2\n\xff3\n").unwrap();
    let ttest = |a: &std::path::Path, b: &std::path::Path| {
        run(&[
            "stats",
            "ttest",
            "--a",
            a.to_str().unwrap(),
            "--b",
            b.to_str().unwrap(),
        ])
    };
    let out = ttest(&f, &f);
    assert_exit(&out, 2, "non-UTF-8");
    assert!(
        stderr(&out).contains("n.txt:3:1: not UTF-8"),
        "{}",
        stderr(&out)
    );
    std::fs::write(&f, b"\xEF\xBB\xBF1\n2\n3\n").unwrap();
    let g = dir.path().join("g.txt");
    std::fs::write(&g, "2\n3\n5\n").unwrap();
    let out = ttest(&f, &g);
    assert_exit(&out, 0, "a BOM");

    // Each cause once: no `(os error 2): ... (os error 2)`.
    let out = run(&["flags", "validate", "/nonexistent/flags.yaml"]);
    assert_exit(&out, 2, "missing file");
    assert_eq!(
        stderr(&out).matches("os error 2").count(),
        1,
        "{}",
        stderr(&out)
    );

    // The --power error names --power.
    let out = run(&["stats", "power", "--effect-size", "0.5", "--power", "1.5"]);
    assert_exit(&out, 2, "bad --power");
    assert!(stderr(&out).contains("--power"), "{}", stderr(&out));

    // Bad arguments exit 2 everywhere, including range checks.
    let out = run(&[
        "experiments",
        "srm",
        "--alpha",
        "2",
        "--exposures",
        "x",
        "--experiment",
        "y",
    ]);
    assert_exit(&out, 2, "--alpha 2");
}

#[test]
fn help_documents_the_exit_codes() {
    for args in [
        vec!["--help"],
        vec!["flags", "kill", "--help"],
        vec!["stats", "srm", "--help"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_flightdeck"))
            .args(&args)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("Exit codes") && text.contains("3 a finding"),
            "{args:?}: {text}"
        );
    }
}

/// A field of `/proc/PID/status` (a number, its unit dropped).
fn proc_status(pid: u32, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| {
            v.trim_start_matches(':')
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no {field} in {text}"))
}

#[test]
fn hostile_clients_cannot_starve_the_metrics_endpoint_or_grow_memory() {
    use crate::prometheus::{free_port, http_get, poll, spawn_demo_serving};
    use std::io::Write;
    use std::net::TcpStream;

    let dir = tempfile::tempdir().unwrap();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let demo = spawn_demo_serving(
        &[
            "--requests",
            "5",
            "--time-scale",
            "0.01",
            "--linger-secs",
            "120",
        ],
        addr,
        dir.path(),
    );
    let pid = demo.0.id();
    let rss_before = proc_status(pid, "VmRSS");

    // One client pipelines 1,000 GETs and never reads the answers.
    let mut pipeliner = TcpStream::connect(addr).unwrap();
    pipeliner
        .set_write_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let one = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    let _ = pipeliner.write_all(one.repeat(1_000).as_bytes());
    // Fifty send 4 MB header values that never end.
    let big = vec![b'a'; 4 << 20];
    let mut slow = Vec::new();
    for _ in 0..50 {
        let Ok(mut s) = TcpStream::connect(addr) else {
            continue;
        };
        s.set_write_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nX-Big: ");
        let _ = s.write_all(&big);
        slow.push(s);
    }
    // Scrapes still answer while all of them hold their connections.
    for _ in 0..5 {
        let body = poll(Duration::from_secs(10), || http_get(addr, "/metrics"))
            .expect("a scrape answers under attack");
        assert!(body.contains("# TYPE"), "{body}");
    }
    let rss = proc_status(pid, "VmRSS");
    let threads = proc_status(pid, "Threads");
    assert!(
        rss < rss_before + 50 * 1024,
        "resident memory grew from {rss_before} kB to {rss} kB"
    );
    assert!(threads < 30, "{threads} threads");
    drop(slow);
    drop(pipeliner);
}

#[test]
fn silent_acceptance_is_now_an_error_or_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let flags = dir.path().join("flags.yaml");
    std::fs::write(&flags, "flags:\n  - id: a\n    rollout_percentage: 50\n").unwrap();
    let f = flags.to_str().unwrap();
    // A context whose attributes are not an object.
    let out = run(&[
        "flags",
        "eval",
        "--flags",
        f,
        "--context",
        r#"{"attributes": 5}"#,
    ]);
    assert_exit(&out, 2, "attributes 5");
    assert!(
        stderr(&out).contains("\"attributes\" must be an object"),
        "{}",
        stderr(&out)
    );
    // A decryption key for a payload with nothing encrypted.
    let out = run(&[
        "flags",
        "validate",
        f,
        "--decryption-key",
        "AAAAAAAAAAAAAAAAAAAAAA==",
    ]);
    assert_exit(&out, 0, "unused key");
    assert!(
        stderr(&out).contains("warning: --decryption-key"),
        "{}",
        stderr(&out)
    );
    // OTEL_SDK_DISABLED=maybe and an ftp:// endpoint stop the demo with exit 2.
    for (k, v) in [
        ("OTEL_SDK_DISABLED", "maybe"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "ftp://127.0.0.1:4318"),
    ] {
        let out = flightdeck()
            .args(["demo", "--requests", "1", "--out"])
            .arg(dir.path().join("o"))
            .env(k, v)
            .output()
            .unwrap();
        assert_exit(&out, 2, k);
        assert!(
            stderr(&out).contains(k) && stderr(&out).contains(v),
            "{}",
            stderr(&out)
        );
    }
}

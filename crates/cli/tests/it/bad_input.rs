use crate::flightdeck;

fn fails_with(args: &[&str], env: &[(&str, &str)], code: i32, needles: &[&str]) {
    let out = flightdeck()
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    for n in needles {
        assert!(stderr.contains(n), "{args:?}: expected {n:?} in: {stderr}");
    }
}

#[test]
fn bad_arguments_are_clear_errors() {
    fails_with(&["demo", "--requests", "0"], &[], 2, &["--requests", "0"]);
    fails_with(
        &["demo", "--requests", "lots"],
        &[],
        2,
        &["--requests", "lots"],
    );
    fails_with(
        &["demo", "--time-scale", "-1"],
        &[],
        2,
        &["--time-scale", "-1"],
    );
    fails_with(
        &["demo", "--prometheus-listen", "not-an-addr"],
        &[],
        2,
        &["--prometheus-listen", "not-an-addr"],
    );
    fails_with(
        &["demo", "--linger-secs", "5"],
        &[],
        2,
        &["--prometheus-listen"],
    );
    fails_with(&["serve", "--threads", "0"], &[], 2, &["--threads", "0"]);
    fails_with(
        &["serve", "--threads", "many"],
        &[],
        2,
        &["--threads", "many"],
    );
}

#[test]
fn bad_guard_arguments_are_named_before_anything_moves() {
    let dir = tempfile::tempdir().unwrap();
    let flags = dir.path().join("flags.yaml");
    std::fs::write(&flags, "flags:\n  - id: f\n    rollout_percentage: 0\n").unwrap();
    let f = flags.to_str().unwrap();
    fn guard<'a>(f: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
        let mut a = vec![
            "release",
            "guard",
            "--flag",
            "f",
            "--flags",
            f,
            "--service",
            "http://127.0.0.1:9",
        ];
        a.extend_from_slice(extra);
        a
    }
    fails_with(&guard(f, &["--interval", "0s"]), &[], 2, &["--interval"]);
    fails_with(&guard(f, &["--steps", "50,25"]), &[], 2, &["steps", "50"]);
    fails_with(
        &guard(f, &["--objective", "100"]),
        &[],
        2,
        &["--objective", "100"],
    );
    fails_with(
        &[
            "release",
            "guard",
            "--flag",
            "f",
            "--flags",
            "/no/such/flags.yaml",
        ],
        &[],
        2,
        &["/no/such/flags.yaml"],
    );
    fails_with(
        &[
            "release",
            "guard",
            "--flag",
            "f",
            "--flags",
            f,
            "--service",
            "ftp://x",
        ],
        &[],
        2,
        &["--service", "ftp://x"],
    );
    // Nothing moved: the rollout is untouched and no ledger was written.
    assert!(
        std::fs::read_to_string(&flags)
            .unwrap()
            .contains("rollout_percentage: 0")
    );
    assert!(!dir.path().join(".guard-f").exists());
}

#[test]
fn an_unwritable_output_directory_is_named() {
    fails_with(
        &["demo", "--requests", "1", "--out", "/proc/flightdeck-out"],
        &[],
        1,
        &["/proc/flightdeck-out"],
    );
}

#[test]
fn bad_settings_name_the_key_value_and_origin() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o");
    let out = out.to_str().unwrap();
    fails_with(
        &["demo", "--requests", "1", "--out", out],
        &[("FLIGHTDECK_TRACE_SAMPLE_RATE", "1.5")],
        2,
        &[
            "trace_sample_rate",
            "1.5",
            "FLIGHTDECK_TRACE_SAMPLE_RATE",
            "0.0 to 1.0",
        ],
    );
    let config = dir.path().join("flightdeck.toml");
    std::fs::write(&config, "service_name = \"svc\"\nlog_levl = \"info\"\n").unwrap();
    fails_with(
        &[
            "demo",
            "--requests",
            "1",
            "--out",
            out,
            "--config",
            config.to_str().unwrap(),
        ],
        &[],
        2,
        &["log_levl", "flightdeck.toml:2", "log_level"],
    );
}

#[test]
fn a_port_in_use_is_reported() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    fails_with(
        &[
            "demo",
            "--requests",
            "1",
            "--prometheus-listen",
            &addr,
            "--out",
            dir.path().to_str().unwrap(),
        ],
        &[],
        1,
        &[&addr],
    );
    // The service's listener too: named, exit 1, before anything is served.
    fails_with(
        &["serve", "--listen", &addr, "--time-scale", "0"],
        &[],
        1,
        &["cannot listen on", &addr],
    );
}

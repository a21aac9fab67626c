//! The HTTP source against a real HTTP server on 127.0.0.1 serving a
//! GrowthBook-compatible payload: ETags, failures, backoff, staleness,
//! bootstrap, timeouts.

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flightdeck_experiments::Context;

use crate::eventually;
use flightdeck_flags::{FeatureFlagManager, HttpSource, HttpSourceConfig, SourceHealth};

const OK: u8 = 0;
const FAIL: u8 = 1;
const HANG: u8 = 2;
const ERROR: u8 = 3;

struct Endpoint {
    payload: Mutex<(String, u64)>,
    mode: AtomicU8,
    requests: AtomicU64,
    not_modified: AtomicU64,
    url: String,
    _server: Arc<tiny_http::Server>,
}

fn payload(on: bool) -> String {
    serde_json::json!({"features": {"feature": {"defaultValue": on}}}).to_string()
}

fn endpoint() -> Arc<Endpoint> {
    let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
    let port = server.server_addr().to_ip().unwrap().port();
    let ep = Arc::new(Endpoint {
        payload: Mutex::new((payload(true), 1)),
        mode: AtomicU8::new(OK),
        requests: AtomicU64::new(0),
        not_modified: AtomicU64::new(0),
        url: format!("http://127.0.0.1:{port}/api/features/sdk-test"),
        _server: server.clone(),
    });
    let state = ep.clone();
    std::thread::spawn(move || {
        for req in server.incoming_requests() {
            state.requests.fetch_add(1, Ordering::Relaxed);
            match state.mode.load(Ordering::Relaxed) {
                FAIL => {
                    let _ =
                        req.respond(tiny_http::Response::from_string("down").with_status_code(503));
                }
                ERROR => {
                    let _ =
                        req.respond(tiny_http::Response::from_string("boom").with_status_code(500));
                }
                HANG => {
                    let st = state.clone();
                    std::thread::spawn(move || {
                        while st.mode.load(Ordering::Relaxed) == HANG {
                            std::thread::sleep(Duration::from_millis(10));
                        }
                        drop(req);
                    });
                }
                _ => {
                    let (body, version) = state.payload.lock().unwrap().clone();
                    let etag = format!("\"v{version}\"");
                    let matches = req
                        .headers()
                        .iter()
                        .any(|h| h.field.equiv("If-None-Match") && h.value.as_str() == etag);
                    if matches {
                        state.not_modified.fetch_add(1, Ordering::Relaxed);
                        let _ = req.respond(tiny_http::Response::empty(304));
                    } else {
                        let header =
                            tiny_http::Header::from_bytes("ETag", etag.as_bytes()).unwrap();
                        let _ =
                            req.respond(tiny_http::Response::from_string(body).with_header(header));
                    }
                }
            }
        }
    });
    ep
}

#[test]
fn polls_with_etags_and_applies_changes() {
    let ep = endpoint();
    let manager = Arc::new(FeatureFlagManager::new());
    let _source = HttpSource::start(
        HttpSourceConfig::new(&ep.url).with_interval(Duration::from_millis(20)),
        manager.clone(),
    )
    .unwrap();
    let ctx = Context::for_user("u");
    assert!(manager.is_ready());
    assert!(manager.is_enabled("feature", &ctx));
    eventually("conditional requests", Duration::from_secs(5), || {
        ep.not_modified.load(Ordering::Relaxed) >= 3
    });
    *ep.payload.lock().unwrap() = (payload(false), 2);
    eventually("the change", Duration::from_secs(5), || {
        !manager.is_enabled("feature", &ctx)
    });
}

#[test]
fn a_failing_endpoint_keeps_the_last_flags_backs_off_and_turns_stale() {
    let ep = endpoint();
    let health = Arc::new(SourceHealth::new(Duration::from_millis(150)));
    let manager = Arc::new(FeatureFlagManager::new().with_health(health.clone()));
    let _source = HttpSource::start(
        HttpSourceConfig::new(&ep.url)
            .with_interval(Duration::from_millis(10))
            .with_max_backoff(Duration::from_millis(200))
            .with_seed(7),
        manager.clone(),
    )
    .unwrap();
    let ctx = Context::for_user("u");
    ep.mode.store(FAIL, Ordering::Relaxed);
    let before = ep.requests.load(Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(1000));
    let during = ep.requests.load(Ordering::Relaxed) - before;
    // A fixed 10 ms interval would be ~100 requests; the backoff caps near 200 ms.
    assert!(during <= 20, "{during} requests in 1 s while failing");
    let e = manager.evaluate("feature", &ctx);
    assert!(e.on, "the last good flags keep serving");
    assert!(e.stale, "failing for longer than 150 ms is stale");
    assert!(health.last_error().unwrap().contains("503"));

    ep.mode.store(OK, Ordering::Relaxed);
    eventually("recovery", Duration::from_secs(5), || {
        !manager.evaluate("feature", &ctx).stale
    });
}

/// The acceptance run: the endpoint serves flags, then answers 500, then
/// hangs past the timeout, then serves a new version. An evaluating thread
/// never sees a failure (the flag stays known and keeps its last good value)
/// and picks up the new version.
#[test]
fn serves_then_500s_then_times_out_then_serves_a_new_version() {
    let ep = endpoint();
    let manager = Arc::new(FeatureFlagManager::new());
    let _source = HttpSource::start(
        HttpSourceConfig::new(&ep.url)
            .with_interval(Duration::from_millis(20))
            .with_timeout(Duration::from_millis(150))
            .with_max_backoff(Duration::from_millis(100)),
        manager.clone(),
    )
    .unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let saw_new = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let evaluator = {
        let (manager, stop, saw_new) = (manager.clone(), stop.clone(), saw_new.clone());
        std::thread::spawn(move || {
            let ctx = Context::for_user("u");
            let (mut evaluations, mut turned_off) = (0u64, false);
            while !stop.load(Ordering::Relaxed) {
                let e = manager.evaluate("feature", &ctx);
                assert_eq!(
                    e.source,
                    flightdeck_experiments::FeatureSource::DefaultValue,
                    "{e:?}"
                );
                // The old version until the new one, then the new one only.
                assert!(!(turned_off && e.on), "went back to the old version: {e:?}");
                turned_off |= !e.on;
                saw_new.store(turned_off, Ordering::Relaxed);
                evaluations += 1;
            }
            (evaluations, turned_off)
        })
    };
    let failures = || manager.health().failures();
    let error = || manager.health().last_error().unwrap_or_default();

    ep.mode.store(ERROR, Ordering::Relaxed);
    eventually("a 500 to be seen", Duration::from_secs(5), || {
        failures() >= 2 && error().contains("500")
    });
    assert!(manager.is_enabled("feature", &Context::for_user("u")));

    ep.mode.store(HANG, Ordering::Relaxed);
    let before = failures();
    let start = Instant::now();
    while failures() <= before || error().contains("500") {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no timeout seen: {} failures since, last error {:?}",
            failures() - before,
            error()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let timeout = error();
    assert!(manager.is_enabled("feature", &Context::for_user("u")));

    *ep.payload.lock().unwrap() = (payload(false), 2);
    ep.mode.store(OK, Ordering::Relaxed);
    eventually("the new version", Duration::from_secs(5), || {
        !manager.is_enabled("feature", &Context::for_user("u"))
    });
    eventually(
        "the evaluating thread to see it",
        Duration::from_secs(5),
        || saw_new.load(Ordering::Relaxed),
    );
    stop.store(true, Ordering::Relaxed);
    let (evaluations, turned_off) = evaluator.join().unwrap();
    assert!(evaluations > 10, "{evaluations} evaluations");
    assert!(turned_off);
    assert!(manager.health().last_error().is_none(), "{timeout}");
    assert!(
        timeout.to_lowercase().contains("time"),
        "the hang was not reported as a timeout: {timeout}"
    );
}

#[test]
fn a_black_holed_endpoint_times_out() {
    let ep = endpoint();
    ep.mode.store(HANG, Ordering::Relaxed);
    let manager = Arc::new(FeatureFlagManager::new());
    let start = Instant::now();
    let _source = HttpSource::start(
        HttpSourceConfig::new(&ep.url).with_timeout(Duration::from_millis(200)),
        manager.clone(),
    )
    .unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "start waited {:?}",
        start.elapsed()
    );
    assert!(!manager.is_ready());
    assert!(manager.health().last_error().is_some());
    ep.mode.store(OK, Ordering::Relaxed);
}

#[test]
fn the_bootstrap_file_serves_when_the_endpoint_is_down_at_start() {
    let ep = endpoint();
    ep.mode.store(FAIL, Ordering::Relaxed);
    let dir = tempfile::tempdir().unwrap();
    let boot = dir.path().join("bootstrap.json");
    std::fs::write(&boot, payload(true)).unwrap();
    let manager = Arc::new(FeatureFlagManager::new());
    let _source = HttpSource::start(
        HttpSourceConfig::new(&ep.url)
            .with_interval(Duration::from_millis(20))
            .with_bootstrap(&boot),
        manager.clone(),
    )
    .unwrap();
    assert!(manager.is_ready());
    assert!(manager.is_enabled("feature", &Context::for_user("u")));
    // The endpoint comes back with different flags: they take over.
    *ep.payload.lock().unwrap() = (payload(false), 5);
    ep.mode.store(OK, Ordering::Relaxed);
    eventually("the endpoint's flags", Duration::from_secs(5), || {
        !manager.is_enabled("feature", &Context::for_user("u"))
    });
}

#[test]
fn only_plain_http_urls_are_accepted() {
    let err = HttpSource::start(
        HttpSourceConfig::new("https://cdn.example/x"),
        Arc::new(FeatureFlagManager::new()),
    )
    .unwrap_err();
    assert!(err.to_string().contains("https://cdn.example/x"), "{err}");
}

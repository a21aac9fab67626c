use flightdeck_obs_core::{CorrelationId, RequestScope, StartLine};

use crate::capture;

fn outcome_line(lines: &[serde_json::Value]) -> &serde_json::Value {
    lines
        .iter()
        .find(|l| l["message"] == "request finished")
        .expect("an end line")
}

#[test]
fn start_and_end_lines_with_duration_and_outcome() {
    let (subscriber, spans, logs) = capture();
    tracing::subscriber::with_default(subscriber, || {
        let r = RequestScope::start("answer", CorrelationId::new("r-1").unwrap());
        r.in_scope(|| std::thread::sleep(std::time::Duration::from_millis(3)));
        r.finish_ok();
    });
    let lines = logs.json();
    assert_eq!(lines[0]["message"], "request started");
    let end = outcome_line(&lines);
    assert_eq!(end["fields"]["outcome"], "ok");
    assert!(end["fields"]["duration_ms"].as_f64().unwrap() >= 3.0);
    assert_eq!(end["correlation_id"], "r-1");
    let root = &spans.take()[0];
    assert!(!root.status.is_error());
    assert_eq!(
        root.attribute("flightdeck.request.outcome")
            .unwrap()
            .as_str(),
        Some("ok")
    );
}

#[test]
fn a_panic_ends_the_request_as_panicked() {
    let (subscriber, spans, logs) = capture();
    tracing::subscriber::with_default(subscriber, || {
        let result = std::panic::catch_unwind(|| {
            let r = RequestScope::start("answer", CorrelationId::new("r-2").unwrap());
            r.in_scope(|| panic!("handler bug"));
        });
        assert!(result.is_err());
    });
    let lines = logs.json();
    assert_eq!(outcome_line(&lines)["fields"]["outcome"], "panicked");
    assert!(spans.take()[0].status.is_error());
}

#[test]
fn async_requests_end_by_their_result_or_as_cancelled() {
    let (subscriber, _spans, logs) = capture();
    tracing::subscriber::with_default(subscriber, || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let r = RequestScope::start("answer", CorrelationId::new("ok-1").unwrap());
            let v: Result<u8, String> = r.run(async { Ok(1) }).await;
            assert_eq!(v, Ok(1));
            let r = RequestScope::start("answer", CorrelationId::new("err-1").unwrap());
            let v: Result<u8, String> = r.run(async { Err("no documents".to_owned()) }).await;
            assert!(v.is_err());
            let r = RequestScope::start("answer", CorrelationId::new("cancel-1").unwrap());
            let slow = r.run(async {
                tokio::time::sleep(std::time::Duration::from_secs(60)).await;
                Ok::<u8, String>(0)
            });
            let timed_out = tokio::time::timeout(std::time::Duration::from_millis(5), slow).await;
            assert!(timed_out.is_err());
        });
    });
    let ends: Vec<(String, String)> = logs
        .json()
        .iter()
        .filter(|l| l["message"] == "request finished")
        .map(|l| {
            (
                l["correlation_id"].as_str().unwrap().to_owned(),
                l["fields"]["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        ends,
        [
            ("ok-1".into(), "ok".into()),
            ("err-1".into(), "error".into()),
            ("cancel-1".into(), "cancelled".into())
        ]
    );
}

#[test]
fn the_start_line_takes_the_level_asked_for_and_the_end_line_stays_info() {
    let (subscriber, _spans, logs) = capture();
    tracing::subscriber::with_default(subscriber, || {
        RequestScope::start("answer", CorrelationId::new("lvl-1").unwrap()).finish_ok();
        RequestScope::start_with(
            "answer",
            CorrelationId::new("lvl-2").unwrap(),
            StartLine::Debug,
        )
        .finish_ok();
    });
    let lines = logs.json();
    let level = |cid: &str, message: &str| {
        lines
            .iter()
            .find(|l| l["correlation_id"] == cid && l["message"] == message)
            .map(|l| l["level"].clone())
    };
    assert_eq!(level("lvl-1", "request started"), Some("INFO".into()));
    assert_eq!(level("lvl-2", "request started"), Some("DEBUG".into()));
    assert_eq!(level("lvl-2", "request finished"), Some("INFO".into()));
}

#[test]
fn in_current_span_reuses_a_server_span_that_declares_the_request_fields() {
    let (subscriber, spans, logs) = capture();
    tracing::subscriber::with_default(subscriber, || {
        // Without such a span it opens its own, as `start_with` does.
        RequestScope::in_current_span(
            "answer",
            CorrelationId::new("own").unwrap(),
            StartLine::Info,
        )
        .finish_ok();
        let server = tracing::info_span!(
            "http.server",
            flightdeck.request.operation = tracing::field::Empty,
            flightdeck.request.outcome = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
            otel.status_message = tracing::field::Empty,
        );
        server.in_scope(|| {
            RequestScope::in_current_span(
                "answer",
                CorrelationId::new("reused").unwrap(),
                StartLine::Info,
            )
            .finish_err(&"the model timed out");
        });
    });
    let records = spans.take();
    let names: Vec<&str> = records.iter().map(|r| &*r.name).collect();
    assert_eq!(names, ["rag.request", "http.server"], "one span each");
    let server = &records[1];
    assert_eq!(
        server
            .attribute("flightdeck.request.outcome")
            .unwrap()
            .as_str(),
        Some("error")
    );
    assert_eq!(
        server
            .attribute("flightdeck.request.operation")
            .unwrap()
            .as_str(),
        Some("answer")
    );
    assert!(server.status.is_error());
    let end = logs
        .json()
        .into_iter()
        .find(|l| l["message"] == "request finished" && l["fields"]["outcome"] == "error")
        .expect("the finish line");
    assert_eq!(end["fields"]["error"], "the model timed out");
}

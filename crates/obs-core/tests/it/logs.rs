use crate::capture;

#[test]
fn a_message_with_quotes_and_newlines_stays_one_valid_line() {
    let (subscriber, _spans, logs) = capture();
    let evil = "done\"}\n{\"level\":\"ERROR\",\"message\":\"forged";
    tracing::subscriber::with_default(subscriber, || {
        tracing::info_span!("s", user = evil).in_scope(|| {
            tracing::info!(query = evil, dbg = ?evil, "{evil}");
        });
    });
    let lines = logs.lines();
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(!lines[0].contains('\n'));
    let v: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(v["message"], evil);
    assert_eq!(v["fields"]["query"], evil);
    assert_eq!(v["fields"]["dbg"], format!("{evil:?}"));
    assert_eq!(v["span_fields"]["user"], evil);
    assert_eq!(v["level"], "INFO");
}

#[test]
fn lines_carry_timestamp_level_target_ids_span_and_merged_span_fields() {
    let (subscriber, spans, logs) = capture();
    tracing::subscriber::with_default(subscriber, || {
        tracing::info_span!("outer", tenant = "acme", k = 1).in_scope(|| {
            tracing::info_span!("inner", k = 2).in_scope(|| {
                tracing::warn!(target: "rag.retrieval", n = 3, ok = true, score = 0.5, "msg");
            });
        });
    });
    let v = &logs.json()[0];
    let inner = spans
        .records()
        .into_iter()
        .find(|r| r.name == "inner")
        .unwrap();
    let ts = v["timestamp"].as_str().unwrap();
    assert_eq!(ts.len(), 27, "{ts}");
    assert!(ts.ends_with('Z') && ts.as_bytes()[10] == b'T', "{ts}");
    assert_eq!(v["level"], "WARN");
    assert_eq!(v["target"], "rag.retrieval");
    assert_eq!(v["span"], "inner");
    assert_eq!(v["span_id"], inner.span_id.to_string());
    assert_eq!(v["trace_id"], inner.trace_id.to_string());
    assert_eq!(
        v["fields"],
        serde_json::json!({"n": 3, "ok": true, "score": 0.5})
    );
    assert_eq!(
        v["span_fields"],
        serde_json::json!({"tenant": "acme", "k": 2}),
        "inner wins"
    );
    assert_eq!(v["service"], "it");
}

#[test]
fn span_fields_recorded_later_reach_the_next_line_and_a_field_free_span_inherits() {
    let (subscriber, _spans, logs) = capture();
    tracing::subscriber::with_default(subscriber, || {
        let outer = tracing::info_span!("outer", docs = tracing::field::Empty, k = 1);
        outer.in_scope(|| {
            tracing::info_span!("bare").in_scope(|| {
                tracing::info!("first");
                tracing::Span::current().record("k", 9);
            });
            outer.record("docs", 5);
            let inner = tracing::info_span!("inner", k = 2, n = tracing::field::Empty);
            inner.in_scope(|| {
                tracing::info!("second");
                inner.record("n", 7);
                tracing::info!("third");
            });
        });
    });
    let lines = logs.json();
    assert_eq!(lines.len(), 3, "{lines:#?}");
    assert_eq!(lines[0]["span"], "bare");
    assert_eq!(lines[0]["span_fields"], serde_json::json!({"k": 1}));
    assert_eq!(lines[1]["span"], "inner");
    assert_eq!(
        lines[1]["span_fields"],
        serde_json::json!({"k": 2, "docs": 5}),
        "the outer span's later field shows, inner's k wins"
    );
    assert_eq!(
        lines[2]["span_fields"],
        serde_json::json!({"k": 2, "docs": 5, "n": 7}),
        "a field recorded on the span renders again"
    );
}

#[test]
fn lines_show_ancestors_current_fields_through_cached_renderings() {
    let (subscriber, _spans, logs) = capture();
    tracing::subscriber::with_default(subscriber, || {
        let root = tracing::info_span!("root", a = 1, b = 2);
        root.in_scope(|| {
            let mid = tracing::info_span!("mid", c = 3);
            mid.in_scope(|| {
                tracing::info!("mid first"); // renders root and mid, kept
                tracing::info_span!("leaf", b = 9).in_scope(|| tracing::info!("override"));
                tracing::info_span!("leaf2", d = 4).in_scope(|| tracing::info!("append"));
                root.record("a", 5);
                tracing::info!("mid after root recorded");
                tracing::info_span!("leaf3", e = 6).in_scope(|| tracing::info!("new child"));
            });
        });
    });
    let lines = logs.json();
    let fields = |i: usize| lines[i]["span_fields"].clone();
    let keys = |i: usize| -> Vec<String> {
        // Key order as written (serde_json's map keeps insertion order only
        // with preserve_order, so read the raw line).
        let raw = &logs.lines()[i];
        let start = raw.find("\"span_fields\":{").unwrap();
        raw[start..]
            .split('"')
            .skip(3)
            .step_by(2)
            .take_while(|k| !k.is_empty())
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(lines.len(), 5, "{lines:#?}");
    assert_eq!(fields(0), serde_json::json!({"a": 1, "b": 2, "c": 3}));
    assert_eq!(
        fields(1),
        serde_json::json!({"a": 1, "b": 9, "c": 3}),
        "nearest wins"
    );
    assert_eq!(
        keys(1)[..3],
        ["a", "b", "c"],
        "an override keeps the ancestor's place"
    );
    assert_eq!(
        fields(2),
        serde_json::json!({"a": 1, "b": 2, "c": 3, "d": 4})
    );
    assert_eq!(
        fields(3),
        serde_json::json!({"a": 5, "b": 2, "c": 3}),
        "the root's record shows"
    );
    assert_eq!(
        fields(4),
        serde_json::json!({"a": 5, "b": 2, "c": 3, "e": 6}),
        "a new child does not start from a stale rendering"
    );
}

/// The same spans and events under `subscriber`; the log lines' span fields.
fn span_fields_under(subscriber: impl tracing::Subscriber + Send + Sync) -> Vec<serde_json::Value> {
    #[derive(Debug)]
    struct Shape {
        _sides: u8,
    }
    tracing::subscriber::with_default(subscriber, || {
        let outer = tracing::info_span!(
            "outer",
            s = "a \"quoted\"\nvalue",
            big = u64::MAX,
            neg = -3_i64,
            x = 0.25,
            nan = f64::NAN,
            ok = true,
            shape = ?Shape { _sides: 3 },
            correlation_id = "corr-1",
            otel.kind = "server",
            late = tracing::field::Empty,
        );
        outer.in_scope(|| {
            tracing::info!("first");
            outer.record("late", 7);
            tracing::info_span!("inner", ok = false, extra = "e").in_scope(|| {
                tracing::info!("second");
            });
        });
    });
    logs_of_last_capture()
        .iter()
        .map(|l| l["span_fields"].clone())
        .collect()
}

thread_local! {
    static LAST: std::cell::RefCell<Option<flightdeck_obs_core::InMemoryLogs>> =
        const { std::cell::RefCell::new(None) };
}

fn logs_of_last_capture() -> Vec<serde_json::Value> {
    LAST.with(|l| l.borrow().as_ref().unwrap().json())
}

#[test]
fn span_fields_read_from_the_span_layer_match_the_log_layers_own() {
    use flightdeck_obs_core::{InMemoryExporter, InMemoryLogs, JsonLogLayer, SpanLayer};
    use tracing_subscriber::layer::SubscriberExt;
    let stack = |span_first: bool| {
        let logs = InMemoryLogs::new();
        LAST.with(|l| *l.borrow_mut() = Some(logs.clone()));
        let spans = SpanLayer::builder()
            .with_exporter(InMemoryExporter::new())
            .build()
            .unwrap();
        let log = JsonLogLayer::builder()
            .with_in_memory(logs)
            .build()
            .unwrap();
        // The layer added first sees each new span first.
        let (a, b): (
            Box<dyn tracing_subscriber::Layer<_> + Send + Sync>,
            Box<dyn tracing_subscriber::Layer<_> + Send + Sync>,
        ) = if span_first {
            (Box::new(spans), Box::new(log))
        } else {
            (Box::new(log), Box::new(spans))
        };
        tracing_subscriber::registry().with(a).with(b)
    };
    let from_span_layer = span_fields_under(stack(true));
    let own = span_fields_under(stack(false));
    let logs_alone = {
        let logs = InMemoryLogs::new();
        LAST.with(|l| *l.borrow_mut() = Some(logs.clone()));
        span_fields_under(
            tracing_subscriber::registry().with(
                JsonLogLayer::builder()
                    .with_in_memory(logs)
                    .build()
                    .unwrap(),
            ),
        )
    };
    assert_eq!(from_span_layer.len(), 2, "{from_span_layer:#?}");
    assert_eq!(from_span_layer, own);
    assert_eq!(from_span_layer, logs_alone);
    let expected_first = serde_json::json!({
        "s": "a \"quoted\"\nvalue", "big": u64::MAX, "neg": -3, "x": 0.25,
        "nan": "NaN", "ok": true, "shape": "Shape { _sides: 3 }",
    });
    assert_eq!(from_span_layer[0], expected_first);
    let mut second = expected_first.clone();
    second["late"] = 7.into();
    second["ok"] = false.into();
    second["extra"] = "e".into();
    assert_eq!(from_span_layer[1], second);
}

#[test]
fn file_output_is_written_off_thread_and_flushed_on_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/dir/logs.jsonl");
    let layer = flightdeck_obs_core::JsonLogLayer::builder()
        .with_file(&path)
        .build()
        .unwrap();
    let handle = layer.handle();
    use tracing_subscriber::layer::SubscriberExt;
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        for i in 0..1000 {
            tracing::info!(i, "line");
        }
    });
    handle.shutdown(std::time::Duration::from_secs(10)).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 1000);
    assert_eq!(handle.stats().written, 1000);
}

#[test]
fn an_unwritable_log_path_is_an_error_naming_it() {
    let err = flightdeck_obs_core::JsonLogLayer::builder()
        .with_file("/proc/no-such-dir/logs.jsonl")
        .build()
        .unwrap_err();
    assert!(
        err.to_string().contains("/proc/no-such-dir/logs.jsonl"),
        "{err}"
    );
}

#[test]
fn long_attribute_values_are_cut_to_the_limit_in_logs_and_spans() {
    use flightdeck_obs_core::limits::DEFAULT_ATTRIBUTE_VALUE_LIMIT;
    let (subscriber, spans, logs) = capture();
    let agent = "é".repeat(50_000); // 100 KB
    tracing::subscriber::with_default(subscriber, || {
        tracing::info_span!("request", user_agent.original = %agent).in_scope(|| {
            for _ in 0..3 {
                tracing::info!(header = agent.as_str(), "handled");
            }
        });
    });
    for line in logs.lines() {
        assert!(
            line.len() < 3 * DEFAULT_ATTRIBUTE_VALUE_LIMIT,
            "{} bytes",
            line.len()
        );
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        let kept = v["span_fields"]["user_agent.original"].as_str().unwrap();
        assert!(kept.len() <= DEFAULT_ATTRIBUTE_VALUE_LIMIT && kept.len() > 4000);
        assert!(agent.starts_with(kept));
        assert_eq!(v["fields"]["header"].as_str().unwrap(), kept);
    }
    let record = spans
        .records()
        .into_iter()
        .find(|r| r.name == "request")
        .unwrap();
    let json = serde_json::to_value(&record).unwrap();
    let kept = json["attributes"]["user_agent.original"].as_str().unwrap();
    assert!(
        kept.len() <= DEFAULT_ATTRIBUTE_VALUE_LIMIT,
        "{}",
        kept.len()
    );
}

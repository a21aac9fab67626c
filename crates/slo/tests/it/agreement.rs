//! The in-process monitor and the generated Prometheus rules, fed the same
//! event stream, agree on which alerts fire at each evaluation step.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use flightdeck_slo::{
    AlertWindows, GenerateOptions, ManualClock, SliKind, SloDefinition, SloMonitor, SloSpec,
    generate,
};

/// Events per minute in each regime: (minutes, total, bad). Healthy traffic
/// fails 0.05%, half the budget rate, clear of any threshold: at exactly 1x
/// the monitor's budget (1 - 0.999) and Sloth's literal ((100 - 99.9)/100)
/// sit on opposite sides of the `>`.
const REGIMES: [(u64, u64, u64); 3] = [(120, 2000, 1), (90, 2000, 160), (420, 2000, 1)];

const SPEC: &str = r#"version: prometheus/v1
service: agree
slos:
  - name: availability
    objective: 99.9
    sli:
      events:
        error_query: sum(rate(events_total{outcome="bad"}[{{.window}}]))
        total_query: sum(rate(events_total[{{.window}}]))
    alerting:
      name: AgreeAvailability
"#;

#[test]
fn monitor_and_rules_fire_the_same_alerts_at_the_same_steps() {
    let spec = SloSpec::from_yaml(SPEC, "agree.yaml").unwrap();
    let options = GenerateOptions::new();
    let rules = generate(&spec, &options).unwrap();

    // Feed the monitor minute by minute, and evaluate it at chosen steps,
    // each well inside a regime (rate() extrapolation and minute buckets
    // differ by design right at a transition).
    let windows = AlertWindows::google_30d();
    let def =
        SloDefinition::with_alert_windows("availability", SliKind::Availability, 0.999, windows)
            .unwrap();
    let start = 1_700_000_000 - 1_700_000_000 % 3600;
    let clock = ManualClock::from_secs(start);
    let monitor = SloMonitor::with_clock(def, clock.clone());
    let eval_minutes = [100u64, 150, 200, 330, 440, 620];
    let mut decisions: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    let (mut minute, mut bad_total, mut good_total) = (0u64, 0u64, 0u64);
    let mut bad_series = vec![0u64];
    let mut good_series = vec![0u64];
    for (minutes, total, bad) in REGIMES {
        for _ in 0..minutes {
            clock.advance(Duration::from_secs(60));
            minute += 1;
            for i in 0..total {
                if i < bad {
                    monitor.record_failure()
                } else {
                    monitor.record_success()
                }
            }
            bad_total += bad;
            good_total += total - bad;
            bad_series.push(bad_total);
            good_series.push(good_total);
            if eval_minutes.contains(&minute) {
                monitor.evaluate();
                decisions.insert(minute, monitor.status().firing);
            }
        }
    }
    assert_eq!(decisions[&100], Vec::<String>::new(), "healthy: quiet");
    assert_eq!(
        decisions[&150],
        ["page", "ticket"],
        "8% errors: an 80x burn pages"
    );
    assert_eq!(
        decisions[&440],
        ["ticket"],
        "the 6h/3d ticket tier still sees the burst"
    );
    assert_eq!(
        decisions[&620],
        Vec::<String>::new(),
        "recovered once the 6h window is clean"
    );

    // The same stream as promtool input series, expecting the monitor's decisions.
    let series = |values: &[u64]| {
        values
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut tests = format!(
        "rule_files: [rules.yml]\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n      - series: 'events_total{{outcome=\"bad\"}}'\n        values: '{}'\n      - series: 'events_total{{outcome=\"good\"}}'\n        values: '{}'\n    alert_rule_test:\n",
        series(&bad_series),
        series(&good_series)
    );
    for (m, firing) in &decisions {
        tests.push_str(&format!(
            "      - eval_time: {m}m\n        alertname: AgreeAvailability\n        exp_alerts:"
        ));
        if firing.is_empty() {
            tests.push_str(" []\n");
            continue;
        }
        tests.push('\n');
        for severity in firing {
            tests.push_str(&format!(
                "          - exp_labels: {{sloth_id: agree-availability, sloth_service: agree, sloth_slo: availability, sloth_severity: {severity}}}\n            exp_annotations:\n              title: ({severity}) agree availability SLO error budget burn rate is too fast.\n              summary: agree availability SLO error budget burn rate is over expected.\n"
            ));
        }
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rules.yml"), rules.to_yaml()).unwrap();
    std::fs::write(dir.path().join("agree.test.yml"), &tests).unwrap();
    let out = Command::new("promtool")
        .args(["test", "rules", "agree.test.yml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "Prometheus disagrees with the monitor:\n{}{}\n{tests}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

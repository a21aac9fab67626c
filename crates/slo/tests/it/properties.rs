//! Property tests: invariants cheaper to state than examples.

use std::time::Duration;

use flightdeck_slo::{ManualClock, PromDuration, SliKind, SloDefinition, SloMonitor};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The monitor's period totals equal a brute-force recount of the
    /// events in the last 30 days, however events and gaps interleave:
    /// minutes `now/60 - 43199 ..= now/60`, the first (partial) hour
    /// counted whole, as documented.
    #[test]
    fn window_sums_equal_a_brute_force_recount(
        steps in proptest::collection::vec((0u64..4 * 86_400, 0u32..20, 0u32..5), 1..80)
    ) {
        let def = SloDefinition::new(
            "availability",
            SliKind::Availability,
            0.999,
            PromDuration::parse("30d").unwrap(),
        )
        .unwrap();
        let start = 1_700_000_000u64;
        let clock = ManualClock::from_secs(start);
        let monitor = SloMonitor::with_clock(def, clock.clone());
        let mut now = start;
        // (time, good, bad) of every batch recorded.
        let mut log: Vec<(u64, u64, u64)> = Vec::new();
        for (gap, good, bad) in steps {
            clock.advance(Duration::from_secs(gap));
            now += gap;
            for _ in 0..good {
                monitor.record_success();
            }
            for _ in 0..bad {
                monitor.record_failure();
            }
            log.push((now, u64::from(good), u64::from(bad)));
            let first_minute = (now / 60 + 1).saturating_sub(30 * 1440) / 60 * 60;
            let in_window = |t: u64| t / 60 >= first_minute;
            let total: u64 = log.iter().filter(|(t, ..)| in_window(*t)).map(|(_, g, b)| g + b).sum();
            let bad_total: u64 = log.iter().filter(|(t, ..)| in_window(*t)).map(|(_, _, b)| *b).sum();
            let status = monitor.status();
            prop_assert_eq!(status.total_events, total, "at +{} s", now - start);
            prop_assert_eq!(status.error_budget_consumed, bad_total);
        }
    }
}

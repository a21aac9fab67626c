//! Property tests: invariants cheaper to state than examples.

use std::collections::BTreeSet;

use flightdeck_flags::{AuditAction, AuditEntry, KillStore};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Kill and restore sequences from several writers at once (each with
    /// its own store, as separate processes have) end in the state a serial
    /// replay of each writer's sequence gives, and the audit log holds
    /// every change.
    #[test]
    fn concurrent_kill_restore_sequences_end_as_a_serial_replay(
        plans in proptest::collection::vec(
            proptest::collection::vec((0usize..4, any::<bool>()), 1..12),
            2..5,
        )
    ) {
        let dir = tempfile::tempdir().unwrap();
        let flags = dir.path().join("flags.yaml");
        std::thread::scope(|s| {
            for (w, plan) in plans.iter().enumerate() {
                let flags = &flags;
                s.spawn(move || {
                    let store = KillStore::beside(flags);
                    for (i, &(flag, kill)) in plan.iter().enumerate() {
                        let entry = AuditEntry {
                            timestamp_ms: i as u64,
                            action: if kill { AuditAction::Kill } else { AuditAction::Restore },
                            // Each writer has its own flags.
                            flag: format!("w{w}-f{flag}"),
                            actor: format!("writer {w}"),
                            reason: "property".into(),
                        };
                        store.apply(&Default::default(), &entry).unwrap();
                    }
                });
            }
        });
        let mut expected = BTreeSet::new();
        for (w, plan) in plans.iter().enumerate() {
            for &(flag, kill) in plan {
                let key = format!("w{w}-f{flag}");
                if kill {
                    expected.insert(key);
                } else {
                    expected.remove(&key);
                }
            }
        }
        let got: BTreeSet<String> = KillStore::beside(&flags).load().unwrap().into_keys().collect();
        prop_assert_eq!(got, expected);
        let audit = flightdeck_flags::read_audit_log(&dir.path().join("flags.yaml.audit.jsonl")).unwrap();
        prop_assert_eq!(audit.len(), plans.iter().map(Vec::len).sum::<usize>());
    }
}

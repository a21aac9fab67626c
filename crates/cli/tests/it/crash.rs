//! Crash safety of the state files: writers killed with SIGKILL at random
//! moments leave no corrupt file, lose no acknowledged update and leave no
//! temporary file behind once the next writer has run.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::flightdeck;

/// A small seeded generator (xorshift), so a failing round can be replayed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn kill_cmd(flag: &str, flags: &std::path::Path, restore: bool) -> Child {
    flightdeck()
        .args(["flags", if restore { "restore" } else { "kill" }, flag])
        .args(["--reason", "crash test", "--flags"])
        .arg(flags)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn kill_switch_writers_killed_at_random_moments_lose_no_acknowledged_update() {
    let seed = 0x5eed_u64;
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let flags = dir.path().join("flags.yaml");
    const ROUNDS: usize = 200;
    let mut text = String::from("flags:\n");
    for i in 0..ROUNDS * 3 {
        text.push_str(&format!("  - id: f{i}\n    rollout_percentage: 50\n"));
    }
    std::fs::write(&flags, text).unwrap();
    let mut acknowledged: Vec<String> = Vec::new();
    let mut killed_mid_write = 0;
    for round in 0..ROUNDS {
        // Three writers of distinct flags at once; one is killed after a
        // random delay of up to 40 ms (start-up, locking, writing, syncing).
        let mut children: Vec<(String, Child)> = (0..3)
            .map(|k| {
                let flag = format!("f{}", round * 3 + k);
                let child = kill_cmd(&flag, &flags, false);
                (flag, child)
            })
            .collect();
        let victim = rng.below(3) as usize;
        let delay = Duration::from_micros(rng.below(40_000));
        let started = Instant::now();
        while started.elapsed() < delay {
            std::hint::spin_loop();
        }
        // SIGKILL: no destructor, no flush.
        let _ = children[victim].1.kill();
        for (i, (flag, c)) in children.iter_mut().enumerate() {
            let out = c.wait().unwrap();
            if out.success() {
                acknowledged.push(flag.clone());
            } else if i == victim {
                killed_mid_write += 1;
            } else {
                panic!("round {round}: writer of {flag} failed: {out}");
            }
        }
    }
    assert!(
        killed_mid_write > ROUNDS / 4,
        "only {killed_mid_write} writers were killed before finishing"
    );
    // The next start: one more writer runs normally.
    let last = kill_cmd("f0", &flags, true).wait_with_output().unwrap();
    assert!(last.status.success());
    let kills_path = dir.path().join("flags.yaml.kills.json");
    let set: serde_json::Value = serde_json::from_slice(&std::fs::read(&kills_path).unwrap())
        .unwrap_or_else(|e| panic!("seed {seed:#x}: the kill file is corrupt: {e}"));
    for flag in &acknowledged {
        if flag != "f0" {
            assert!(
                set.get(flag).is_some(),
                "seed {seed:#x}: acknowledged kill of {flag} lost"
            );
        }
    }
    // Every audit line parses (one write per line), and every flip in the
    // file has its line.
    let audit = std::fs::read_to_string(dir.path().join("flags.yaml.audit.jsonl")).unwrap();
    let logged: std::collections::BTreeSet<String> = audit
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("seed {seed:#x}: torn audit line {l:?}: {e}"));
            v["flag"].as_str().unwrap().to_owned()
        })
        .collect();
    for flag in &acknowledged {
        assert!(
            logged.contains(flag),
            "seed {seed:#x}: no audit line for {flag}"
        );
    }
    // The audit line follows the durable flip: no line names a kill that
    // is not in the file (f0 was restored on purpose).
    for flag in logged.iter().filter(|f| *f != "f0") {
        assert!(
            set.get(flag).is_some(),
            "seed {seed:#x}: an audit line for {flag}, whose kill never landed"
        );
    }
    let stray: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-"))
        .collect();
    assert!(
        stray.is_empty(),
        "seed {seed:#x}: stray temporary files {stray:?}"
    );
}

//! Evaluation counts that cost an evaluation no locked instruction.
//!
//! Incrementing a `metrics::Counter` from every evaluation is a locked
//! read-modify-write on a cache line every thread shares (two of them in
//! `metrics-util`'s generational storage, which the Prometheus recorder
//! uses). On 2 cores that cut 8-thread throughput from 1.9x to 1.37x one
//! thread's. Striping the counts over cache lines and adding with
//! `fetch_add` fixed the sharing but not the cost: a locked instruction is
//! a full barrier, and holding the next evaluation's loads behind it took
//! `is_enabled` from 58 to about 100 ns.
//!
//! So each thread counts into its own [`CountBlock`], one per snapshot it
//! evaluates against, with a relaxed load and store (it is the only
//! writer, so nothing is lost). A publisher thread, one for the process,
//! adds what each block gained since it last looked to the flag's
//! `metrics` counters every [`PUBLISH_INTERVAL`]; a manager publishes
//! on demand ([`Tally::publish`]) and when it drops. A block nobody else
//! holds any more (its thread moved to a newer snapshot, or ended) is
//! published a last time and let go.
//!
//! No crate does this: `metrics` has no per-thread counters, and a
//! recorder cannot pull counts at scrape time.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering, fence};
use std::sync::{Arc, Condvar, Mutex, OnceLock, Weak};
use std::time::Duration;

/// How often the publisher adds the threads' counts to the counters.
pub(crate) const PUBLISH_INTERVAL: Duration = Duration::from_secs(1);

/// Slots a page holds: a page is allocated when one of its slots is first
/// counted, so a thread that evaluates a few flags of many holds a few
/// pages.
const PAGE: usize = 64;

/// The counters counts are published to, by slot.
pub(crate) trait SlotCounters: Send + Sync {
    /// The counter behind `slot`, if it has been registered.
    fn counter(&self, slot: u32) -> Option<&metrics::Counter>;
}

struct Page {
    // Written by the block's thread only.
    counts: [AtomicU64; PAGE],
    // Read and written by publishers only, under the tally's lock.
    published: [AtomicU64; PAGE],
}

impl Page {
    fn new() -> Self {
        Self {
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            published: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

/// One thread's counts against one snapshot.
pub(crate) struct CountBlock {
    pages: Box<[OnceLock<Box<Page>>]>,
    target: Arc<dyn SlotCounters>,
}

impl fmt::Debug for CountBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let touched = self.pages.iter().filter(|p| p.get().is_some()).count();
        f.debug_struct("CountBlock")
            .field("pages", &self.pages.len())
            .field("touched", &touched)
            .finish_non_exhaustive()
    }
}

impl CountBlock {
    /// A block for `slots` slots, publishing to `target`.
    pub(crate) fn new(slots: u32, target: Arc<dyn SlotCounters>) -> Self {
        let pages = (slots as usize).div_ceil(PAGE);
        Self {
            pages: (0..pages).map(|_| OnceLock::new()).collect(),
            target,
        }
    }

    /// Counts one evaluation in `slot`. Only the thread that owns the block
    /// may call this: the increment is a plain load and store.
    #[inline]
    pub(crate) fn bump(&self, slot: u32) {
        let slot = slot as usize;
        let Some(page) = self.pages.get(slot / PAGE) else {
            return;
        };
        let page = match page.get() {
            Some(p) => p,
            None => Self::first_touch(page),
        };
        let cell = &page.counts[slot % PAGE];
        cell.store(
            cell.load(Ordering::Relaxed).wrapping_add(1),
            Ordering::Relaxed,
        );
    }

    #[cold]
    #[inline(never)]
    fn first_touch(page: &OnceLock<Box<Page>>) -> &Page {
        page.get_or_init(|| Box::new(Page::new()))
    }

    /// Adds what every slot gained since the last call to its counter.
    /// Callers hold the tally's lock, so publishers never race.
    fn publish(&self) {
        for (p, page) in self.pages.iter().enumerate() {
            let Some(page) = page.get() else { continue };
            for (i, (count, published)) in page.counts.iter().zip(&page.published).enumerate() {
                let now = count.load(Ordering::Relaxed);
                let delta = now.wrapping_sub(published.load(Ordering::Relaxed));
                if delta == 0 {
                    continue;
                }
                published.store(now, Ordering::Relaxed);
                let slot = (p * PAGE + i) as u32;
                if let Some(c) = self.target.counter(slot) {
                    c.increment(delta);
                }
            }
        }
    }
}

/// The count blocks of one manager.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    blocks: Mutex<Vec<Arc<CountBlock>>>,
    enlisted: OnceLock<()>,
}

impl Tally {
    /// Publishes `block`'s counts from now on, and while it lives.
    pub(crate) fn register(self: &Arc<Self>, block: Arc<CountBlock>) {
        self.enlisted
            .get_or_init(|| publisher().enlist(Arc::downgrade(self)));
        self.blocks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(block);
    }

    /// Publishes every block's counts, and lets go of blocks no thread
    /// holds any more.
    pub(crate) fn publish(&self) {
        let mut blocks = self.blocks.lock().unwrap_or_else(|p| p.into_inner());
        blocks.retain(|b| {
            // Only this list can clone a block, and it is locked: a block
            // held by nobody else stays that way.
            let released = Arc::strong_count(b) == 1;
            if released {
                // Pairs with the release of the thread's handle, so its
                // last counts are seen.
                fence(Ordering::Acquire);
            }
            b.publish();
            !released
        });
    }
}

/// The process's publisher: the tallies it publishes every interval, and
/// sooner when a thread has let a block go (so the configuration the block
/// holds is freed soon, and on the publisher's thread rather than in an
/// evaluation).
struct Publisher {
    tallies: Mutex<Vec<Weak<Tally>>>,
    released: Mutex<bool>,
    wake: Condvar,
}

static PUBLISHER: OnceLock<Publisher> = OnceLock::new();

fn publisher() -> &'static Publisher {
    PUBLISHER.get_or_init(|| {
        let spawned = std::thread::Builder::new()
            .name("flightdeck-flag-counts".into())
            .spawn(|| {
                loop {
                    match PUBLISHER.get() {
                        Some(p) => {
                            p.wait();
                            p.publish_all();
                        }
                        None => std::thread::sleep(PUBLISH_INTERVAL),
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the flag count publisher; evaluation counts are published only by flush_counts and when a manager drops");
        }
        Publisher {
            tallies: Mutex::new(Vec::new()),
            released: Mutex::new(false),
            wake: Condvar::new(),
        }
    })
}

/// Tells the publisher a thread has let a block go (after a reload), so it
/// publishes and frees it now instead of at the next interval.
pub(crate) fn block_released() {
    if let Some(p) = PUBLISHER.get() {
        *p.released.lock().unwrap_or_else(|e| e.into_inner()) = true;
        p.wake.notify_one();
    }
}

impl Publisher {
    /// Waits for the interval, or until a block is released.
    fn wait(&self) {
        let released = self.released.lock().unwrap_or_else(|e| e.into_inner());
        let (mut released, _) = self
            .wake
            .wait_timeout_while(released, PUBLISH_INTERVAL, |r| !*r)
            .unwrap_or_else(|e| e.into_inner());
        *released = false;
    }

    fn enlist(&self, tally: Weak<Tally>) {
        self.tallies
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(tally);
    }

    fn publish_all(&self) {
        let live: Vec<Arc<Tally>> = {
            let mut tallies = self.tallies.lock().unwrap_or_else(|p| p.into_inner());
            tallies.retain(|t| t.strong_count() > 0);
            tallies.iter().filter_map(Weak::upgrade).collect()
        };
        for t in live {
            t.publish();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Counters(Vec<metrics::Counter>);

    impl SlotCounters for Counters {
        fn counter(&self, slot: u32) -> Option<&metrics::Counter> {
            self.0.get(slot as usize)
        }
    }

    #[derive(Default)]
    struct Sum(AtomicU64);

    impl metrics::CounterFn for Sum {
        fn increment(&self, value: u64) {
            self.0.fetch_add(value, Ordering::Relaxed);
        }
        fn absolute(&self, value: u64) {
            self.0.store(value, Ordering::Relaxed);
        }
    }

    #[test]
    fn every_count_is_published_once_across_pages_and_threads() {
        let sums: Vec<Arc<Sum>> = (0..200).map(|_| Arc::new(Sum::default())).collect();
        let target = Arc::new(Counters(
            sums.iter()
                .map(|s| metrics::Counter::from_arc(s.clone()))
                .collect(),
        ));
        let tally = Arc::new(Tally::default());
        std::thread::scope(|s| {
            for t in 0..4u32 {
                let tally = tally.clone();
                let target = target.clone();
                s.spawn(move || {
                    let block = Arc::new(CountBlock::new(200, target));
                    tally.register(block.clone());
                    for i in 0..10_000u32 {
                        block.bump((i * 7 + t) % 200);
                        if i % 2_500 == 0 {
                            tally.publish();
                        }
                    }
                });
            }
        });
        tally.publish();
        let total: u64 = sums.iter().map(|s| s.0.load(Ordering::Relaxed)).sum();
        assert_eq!(total, 40_000);
        assert_eq!(
            sums[0].0.load(Ordering::Relaxed),
            (0..4u32)
                .map(|t| (0..10_000u32).filter(|i| (i * 7 + t) % 200 == 0).count() as u64)
                .sum::<u64>()
        );
        // Every thread's block was released and published a last time.
        assert!(tally.blocks.lock().unwrap().is_empty());
        tally.publish();
        let again: u64 = sums.iter().map(|s| s.0.load(Ordering::Relaxed)).sum();
        assert_eq!(again, 40_000);
    }

    #[test]
    fn slots_past_the_end_are_ignored() {
        let block = CountBlock::new(3, Arc::new(Counters(Vec::new())));
        block.bump(64);
        block.bump(2);
        assert_eq!(block.pages.len(), 1);
    }
}

//! The lock-free rings of time buckets events land in.

use super::*;

#[derive(Debug, Clone, Copy)]
pub(super) struct Tier {
    pub(super) severity: &'static str,
    pub(super) name: &'static str,
    pub(super) factor: f64,
    pub(super) short: PromDuration,
    pub(super) long: PromDuration,
}

/// Counter stripes per bucket, so concurrent writers touch different cache lines.
pub(super) const STRIPES: usize = 8;

static NEXT_STRIPE: AtomicU32 = AtomicU32::new(0);

thread_local! {
    static STRIPE: usize = NEXT_STRIPE.fetch_add(1, Ordering::Relaxed) as usize % STRIPES;
}

/// One ring of buckets of `width` seconds. Each bucket has a (good, total)
/// pair packed in a u64 per stripe, and an epoch (its index since the Unix
/// epoch, truncated) shared by the stripes. Counts are stripe-major, so each
/// thread's writes stay in its own cache lines.
#[derive(Debug)]
pub(super) struct Ring {
    pub(super) width: u64,
    pub(super) len: usize,
    pub(super) counts: Box<[AtomicU64]>,
    pub(super) epochs: Box<[AtomicU32]>,
}

/// Epoch value meaning "being reset by another thread".
pub(super) const RESETTING: u32 = u32::MAX;

impl Ring {
    pub(super) fn new(width: u64, len: usize) -> Self {
        Self {
            width,
            len,
            counts: (0..len * STRIPES).map(|_| AtomicU64::new(0)).collect(),
            epochs: (0..len).map(|_| AtomicU32::new(RESETTING - 1)).collect(),
        }
    }

    #[inline]
    pub(super) fn add(&self, now: u64, packed: u64) {
        let epoch = now / self.width;
        let i = (epoch % self.len as u64) as usize;
        let e = epoch as u32;
        let stripe = STRIPE.with(|s| *s);
        loop {
            let seen = self.epochs[i].load(Ordering::Acquire);
            if seen == e {
                self.counts[stripe * self.len + i].fetch_add(packed, Ordering::Relaxed);
                return;
            }
            if seen != RESETTING
                && self.epochs[i]
                    .compare_exchange(seen, RESETTING, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
            {
                // We own the reset: clear the stale counts, then open the bucket.
                for s in 0..STRIPES {
                    self.counts[s * self.len + i].store(0, Ordering::Relaxed);
                }
                self.epochs[i].store(e, Ordering::Release);
            } else {
                std::hint::spin_loop();
            }
        }
    }

    /// (good, total) over bucket epochs `first..=last` still held by the ring.
    pub(super) fn sum_range(&self, first: u64, last: u64) -> (u64, u64) {
        let (mut good, mut total) = (0, 0);
        if first > last {
            return (0, 0);
        }
        let first = first.max(last.saturating_sub(self.len as u64 - 1));
        for epoch in first..=last {
            let i = (epoch % self.len as u64) as usize;
            if self.epochs[i].load(Ordering::Acquire) == epoch as u32 {
                for s in 0..STRIPES {
                    let v = self.counts[s * self.len + i].load(Ordering::Relaxed);
                    good += v >> 32;
                    total += v & 0xffff_ffff;
                }
            }
        }
        (good, total)
    }
}

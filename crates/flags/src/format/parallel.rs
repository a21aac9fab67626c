//! Compiling large flag sets on several threads, in input order.

use super::*;

/// `f` over `items` with their indices, on up to 4 threads when there are
/// many (each thread takes a contiguous share, so results keep their order).
pub(super) fn par_map<T: Send, R: Send>(items: Vec<T>, f: impl Fn(usize, T) -> R + Sync) -> Vec<R> {
    par_shares(items, |offset, share| {
        share
            .into_iter()
            .enumerate()
            .map(|(j, t)| f(offset + j, t))
            .collect::<Vec<R>>()
    })
    .into_iter()
    .flatten()
    .collect()
}

/// Splits `items` into contiguous shares, one per thread (up to 4; one
/// share below [`PARALLEL_FROM`] items), and runs `f(offset, share)` on each.
pub(crate) fn par_shares<T: Send, R: Send>(
    items: Vec<T>,
    f: impl Fn(usize, Vec<T>) -> R + Sync,
) -> Vec<R> {
    let threads = if items.len() < PARALLEL_FROM {
        1
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
    };
    if threads == 1 {
        return vec![f(0, items)];
    }
    let chunk = items.len().div_ceil(threads);
    let mut shares = Vec::with_capacity(threads);
    let mut rest = items;
    let mut offset = 0;
    while rest.len() > chunk {
        let tail = rest.split_off(chunk);
        shares.push((offset, rest));
        offset += chunk;
        rest = tail;
    }
    shares.push((offset, rest));
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> = shares
            .into_iter()
            .map(|(offset, share)| s.spawn(move || f(offset, share)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
}

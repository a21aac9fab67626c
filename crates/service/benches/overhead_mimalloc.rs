//! The overhead comparison of `overhead.rs` with both stacks under mimalloc,
//! a thread-caching allocator. Under glibc, the OTel export thread frees the
//! span data the request's thread allocated, and the two contend on the
//! allocator's arena lock (futex waits and wakes were 18 % of the request
//! thread's time in a profile); mimalloc frees across threads without that
//! lock. The `flightdeck` binary runs under mimalloc for this reason. Results
//! are in docs/benchmarks.md.

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{criterion_group, criterion_main};

#[path = "common/mod.rs"]
mod common;

criterion_group!(benches, common::bench);
criterion_main!(benches);

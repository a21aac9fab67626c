//! The span-cost comparison of `otel.rs` with both stacks under mimalloc, a
//! thread-caching allocator: glibc's arena lock (spans are allocated on the
//! caller's thread and freed on writer threads) dominates the system-allocator
//! figures. Results are in docs/benchmarks.md.

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{criterion_group, criterion_main};

#[path = "common/mod.rs"]
mod common;

use common::bench_span;

criterion_group!(benches, bench_span);
criterion_main!(benches);

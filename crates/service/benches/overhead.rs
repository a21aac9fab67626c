//! Instrumentation overhead per request under the system allocator (glibc
//! here). The cases are in `common/mod.rs`; `overhead_mimalloc.rs` runs the
//! same cases under mimalloc. Results are in docs/benchmarks.md.

use criterion::{criterion_group, criterion_main};

#[path = "common/mod.rs"]
mod common;

criterion_group!(benches, common::bench);
criterion_main!(benches);

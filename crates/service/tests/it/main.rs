//! Service integration tests. One binary (docs/style.md §6).

mod server;

//! Cross-crate end-to-end tests. One binary: `cargo test -p flightdeck-tests`.

mod init;

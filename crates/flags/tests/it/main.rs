//! Integration tests for flightdeck-flags (one binary, see STYLE.md B.6).

mod conformance;
mod http;
mod kill;
mod openfeature;
mod reload;
mod simple;

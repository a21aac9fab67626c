//! Integration tests for flightdeck-experiments (one binary, see STYLE.md B.6).

mod assignment;
mod conformance;
mod manager;
mod properties;
mod typed;

//! Integration tests for flightdeck-experiments (one binary, see docs/style.md §6).

mod analysis;
mod assignment;
mod conformance;
mod manager;
mod properties;
mod typed;

//! Integration tests of flightdeck-golden.

mod common;
mod conformance;
mod profile;
mod scenarios;
mod store;

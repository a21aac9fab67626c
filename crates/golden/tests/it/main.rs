//! Integration tests of flightdeck-golden.

mod capture;
mod common;
mod conformance;
mod profile;
mod scenarios;
mod store;

//! flightdeck-slo integration tests. One binary (docs/style.md §6).

mod agreement;
mod hostile;
mod openslo;
mod properties;
mod sloth;

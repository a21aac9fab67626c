//! flightdeck-slo integration tests. One binary (STYLE.md B.6).

mod agreement;
mod hostile;
mod openslo;
mod properties;
mod sloth;

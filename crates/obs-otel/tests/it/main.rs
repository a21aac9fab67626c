//! Integration tests for flightdeck-obs-otel (one binary, see STYLE.md B.6).

mod collector;
mod export;
mod ids;
mod resilience;
mod services;

//! Integration tests for flightdeck-obs-otel (one binary, see STYLE.md B.6).

mod export;
mod ids;
mod resilience;
mod services;

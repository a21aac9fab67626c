//! SLOs and error budgets for Flightdeck, starting with Sloth-compatible
//! Prometheus rule generation.
//!
//! This crate provides:
//!
//! * [`SloSpec`]: SLO specs in Sloth's `prometheus/v1` format or as OpenSLO
//!   `v1alpha` SLOs, validated with Sloth's rules.
//! * [`AlertWindows`]: multiwindow, multi-burn-rate alert windows (the SRE
//!   workbook defaults for 30d and 28d, or Sloth `AlertWindows` files).
//! * [`generate`]: the recording and alerting rules, rule for rule what
//!   Sloth v0.16 generates (checked against Sloth's own expected outputs).
//! * [`SloRegistry`]: SLO monitors by name, fed per SLO or once per
//!   request, with one dashboard over all of them.
//! * [`SloMonitor`]: in-process tracking: O(1) lock-free recording into
//!   fixed time buckets, [`SloStatus`] (SLI, budget, burn rates, time to
//!   exhaustion) and multiwindow burn-rate alerts with transitions and callbacks.
//! * [`validate_openslo`]: OpenSLO v1 validation with the reference
//!   validator's rules, every problem as `file: document N: field: message`.
//! * [`promtool_tests`]: a `promtool test rules` file proving each SLO's
//!   alerts fire under a sustained fast burn and stay quiet at 0.5×.
//!
//! # Usage
//!
//! ```
//! use flightdeck_slo::{GenerateOptions, SloSpec, generate};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let spec = SloSpec::from_yaml(r#"
//! version: prometheus/v1
//! service: rag
//! slos:
//!   - name: availability
//!     objective: 99.9
//!     sli:
//!       events:
//!         error_query: sum(rate(flightdeck_operations_total{operation="rag.request",outcome="error"}[{{.window}}]))
//!         total_query: sum(rate(flightdeck_operations_total{operation="rag.request"}[{{.window}}]))
//!     alerting:
//!       name: RagAvailability
//! "#, "rag-slos.yaml")?;
//! let rules = generate(&spec, &GenerateOptions::new())?;
//! assert_eq!(rules.groups.len(), 3);
//! assert!(rules.to_yaml().contains("slo:sli_error:ratio_rate5m"));
//! # Ok(())
//! # }
//! ```
//!
//! # Feature flags
//!
//! None.
//!
//! # Layer
//!
//! Layer 2 in `docs/architecture.md`.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod duration;
mod error;
mod monitor;
mod openslo;
mod promtest;
mod registry;
mod rules;
mod spec;
mod windows;

pub use self::duration::PromDuration;
pub use self::error::SpecError;
pub use self::monitor::{
    AlertTransition, Budgeting, BurnRate, Calendar, Clock, ManualClock, SliKind, SloDashboard,
    SloDefinition, SloMonitor, SloStatus, SystemClock, rag_defaults, slo_dashboard,
};
pub use self::openslo::{OpenSloProblem, validate_openslo};
pub use self::promtest::promtool_tests;
pub use self::registry::{RegistryError, SloRegistry};
pub use self::rules::{GenerateOptions, Rule, RuleFile, RuleGroup, generate, unreachable_alerts};
pub use self::spec::{AlertSettings, Alerting, Sli, Slo, SloSpec, SpecFormat};
pub use self::windows::{AlertWindows, BurnWindow};

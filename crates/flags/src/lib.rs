//! Feature flags for Flightdeck on the GrowthBook engine of
//! `flightdeck-experiments`: rollouts, targeting, prerequisites, kill
//! switches with an audit log, live reload that never serves a broken
//! configuration, and an OpenFeature provider.
//!
//! This crate provides:
//!
//! * [`FlagSet`]: flags from GrowthBook's features payload (encrypted or
//!   not) or from our simple YAML/JSON format ([`FlagDefinition`]), both
//!   compiled to one engine; every problem reported as `file:line:column`.
//! * [`FeatureFlagManager`]: lock-free evaluation of an atomically swapped
//!   configuration (`is_enabled`, typed getters, [`FlagEvaluation`]), kill
//!   switches ([`KillStore`], [`AuditEntry`]), staleness ([`SourceHealth`])
//!   and evaluation counters.
//! * [`FileSource`] and [`HttpSource`]: polled sources that keep the last
//!   good configuration, with ETags, timeouts, backoff with jitter and a
//!   bootstrap file.
//! * [`FlightdeckProvider`]: an `open-feature` 0.3 provider.
//! * [`decrypt`](fn@decrypt): GrowthBook's AES-128-CBC payload encryption.
//!
//! # Usage
//!
//! ```
//! use flightdeck_experiments::Context;
//! use flightdeck_flags::{FeatureFlagManager, FlagSet};
//! use serde_json::json;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let flags = FlagSet::parse("flags.yaml", r#"
//! flags:
//!   - id: hybrid-retrieval
//!     rollout_percentage: 100
//!     targeting:
//!       attributes: {plan: {$in: [pro, team]}}
//! "#, None)?;
//! let manager = FeatureFlagManager::with_flags(flags);
//! let ctx = Context::new(json!({"id": "user-1", "plan": "pro"}));
//! assert!(manager.is_enabled("hybrid-retrieval", &ctx));
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
//! Layer 3 in `docs/architecture.md`: depends on `flightdeck-experiments`
//! and `flightdeck-obs-core`.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod counts;
mod decrypt;
mod error;
mod format;
mod kill;
mod manager;
mod openfeature;
mod source;
mod yaml;

pub use self::decrypt::decrypt;
pub use self::error::{DecryptError, KillError, LoadError, Problem, SourceError};
pub use self::format::{
    FlagDefinition, FlagKind, FlagMeta, FlagSet, MAX_DEPENDENCY_CHAIN, Targeting, VariantDefinition,
};
pub use self::kill::{AuditAction, AuditEntry, KillRecord, KillSet, KillStore, read_audit_log};
pub use self::manager::{DEFAULT_FLAG_LABEL_CAP, FeatureFlagManager, FlagEvaluation, SourceHealth};
pub use self::openfeature::{FlightdeckProvider, context_from_openfeature};
pub use self::source::{FileSource, HttpSource, HttpSourceConfig, SourceHandle};

/// Entry points for the fuzz targets in `fuzz/`; not part of the API.
#[doc(hidden)]
pub mod __fuzz {
    /// Whether the YAML subset reader agrees with `serde_norway` on `text`.
    pub fn yaml_subset_agrees(text: &str) -> bool {
        crate::yaml::subset_agrees(text)
    }
}

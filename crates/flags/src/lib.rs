#![doc = include_str!("../README.md")]
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
pub use self::manager::{DEFAULT_FLAG_LABEL_CAP, FeatureFlagManager, FlagEvaluation};
pub use self::openfeature::{FlightdeckProvider, context_from_openfeature};
pub use self::source::SourceHealth;
pub use self::source::{FileSource, HttpSource, HttpSourceConfig, SourceHandle};

/// Entry points for the fuzz targets in `fuzz/`; not part of the API.
#[doc(hidden)]
pub mod __fuzz {
    /// Whether the YAML subset reader agrees with `serde_norway` on `text`.
    pub fn yaml_subset_agrees(text: &str) -> bool {
        crate::yaml::subset_agrees(text)
    }
}

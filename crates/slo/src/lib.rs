#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod duration;
mod error;
mod monitor;
mod openslo;
mod promtest;
mod registry;
mod rules;
mod settings;
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
pub use self::settings::{SLO_KEYS, SloSettings};
pub use self::spec::{AlertSettings, Alerting, Sli, Slo, SloSpec, SpecFormat};
pub use self::windows::{AlertWindows, BurnWindow};

//! Deterministic A/B/n assignment for Flightdeck, conforming to GrowthBook's
//! cross-SDK specification, with exposure logging, results tracking and
//! sample-ratio-mismatch checks.
//!
//! This crate provides:
//!
//! * [`Context`]: who is being assigned (JSON attributes, nested objects
//!   and arrays allowed), plus forced variations, QA mode, sticky buckets
//!   and an exposure logger.
//! * [`hash`], [`bucket_ranges`], [`choose_variation`], [`in_namespace`]:
//!   GrowthBook's hashing (FNV-1a over UTF-16 code units, versions 1 and 2)
//!   and bucketing, where raising coverage never moves an assigned user.
//! * [`Condition`]: the whole targeting language (`$and $or $nor $not`,
//!   comparisons, `$in`/`$nin`/`$all` and case-insensitive forms, regexes,
//!   `$elemMatch $size $exists $type`, versions, saved groups), compiled
//!   once.
//! * [`Experiment`] and [`ExperimentResult`]: the `run` algorithm
//!   (namespaces, filters, forced variations, holdouts, sticky bucketing,
//!   bucket versions) with no heap allocation on the common path.
//! * [`FeatureSet`]: GrowthBook feature rules (force, rollout, experiment,
//!   prerequisites), the engine the flags crate builds on.
//! * [`StickyBucketService`], with [`InMemoryStickyBucketService`] and
//!   [`FileStickyBucketService`].
//! * [`ExposureLogger`] and [`ExposureSink`]: deduplicated exposure
//!   logging to memory, a JSON Lines file or `tracing`.
//! * [`ExperimentManager`]: `register_experiment`, `get_variant`,
//!   `record_result`, with a [`Lifecycle`] (draft → running → stopped).
//! * [`ResultsTracker`]: streaming per-variation metric summaries persisted
//!   as JSON Lines, replayable into an [`Analysis`].
//! * [`srm_check`]: sample-ratio-mismatch checks against configured weights.
//! * [`load_experiment_file`]: strict loading, errors naming file, line,
//!   column and field.
//!
//! # Usage
//!
//! ```
//! use flightdeck_experiments::{Context, Experiment};
//! use serde_json::json;
//! let exp = Experiment::from_json(&json!({
//!     "key": "new-ranker",
//!     "variations": ["bm25", "hybrid"],
//!     "weights": [0.5, 0.5],
//!     "coverage": 0.2,
//! }));
//! let ctx = Context::for_user("user-123");
//! let r = exp.run(&ctx);
//! // Deterministic: the same user always gets the same answer.
//! assert_eq!(r, exp.run(&ctx));
//! ```
//!
//! # Feature flags
//!
//! None.
//!
//! # Layer
//!
//! Layer 2 in `docs/architecture.md`: depends on `flightdeck-stats` and
//! `flightdeck-obs-core`.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod analysis;
mod attr;
mod condition;
mod context;
mod error;
mod experiment;
mod exposure;
mod feature;
mod file;
mod hash;
mod js;
mod manager;
mod results;
mod srm;
mod sticky;

pub use self::condition::{Condition, ConditionWarning, MAX_CONDITION_DEPTH, SavedGroups};
pub use self::context::{Context, DEFAULT_HASH_ATTRIBUTE};
pub use self::error::{LoadError, ManagerError, ResultsError, StickyError};
pub use self::experiment::{Experiment, ExperimentResult};
pub use self::exposure::{
    DEFAULT_DEDUP_CAPACITY, DEFAULT_DEDUP_WINDOW, EXPOSURE_TARGET, Exposure, ExposureLogger,
    ExposureSink, InMemoryExposureSink, JsonLinesExposureSink, NoopExposureSink,
    TracingExposureSink, read_exposures,
};
pub use self::feature::{
    ExperimentRule, Feature, FeatureResult, FeatureSet, FeatureSource, ForceRule,
    MAX_PREREQUISITE_DEPTH, Overrides,
};
pub use self::file::{load_experiment_file, parse_experiment};
pub use self::hash::{
    BucketRange, bucket_ranges, choose_variation, equal_weights, fnv1a32, hash, in_namespace,
    query_string_override, weights_are_valid,
};
pub use self::js::truthy;
pub use self::manager::{ExperimentManager, Lifecycle, Variant};
pub use self::results::{
    Analysis, ExperimentResults, MetricComparison, MetricSummary, ResultRecord, ResultsTracker,
    VariationResults,
};
pub use self::srm::{SrmCheck, srm_check, srm_from_exposures};
pub use self::sticky::{
    FileStickyBucketService, InMemoryStickyBucketService, StickyAssignmentsDocument,
    StickyBucketService, sticky_key,
};

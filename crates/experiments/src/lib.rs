#![doc = include_str!("../README.md")]
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

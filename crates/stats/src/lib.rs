#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod bootstrap;
mod chisq;
mod cuped;
pub mod distributions;
mod error;
mod mannwhitney;
mod multiple;
mod power;
mod proportions;
mod sequential;
mod summary;
mod ttest;

pub use self::bootstrap::bootstrap_mean_diff;
pub use self::chisq::{
    ChiSquare, DEFAULT_SRM_ALPHA, SampleRatioMismatch, chi_square_goodness_of_fit,
    chi_square_independence, sample_ratio_mismatch,
};
pub use self::cuped::{CupedAdjustment, cuped};
pub use self::error::StatsError;
pub use self::mannwhitney::{MannWhitney, mann_whitney};
pub use self::multiple::{Correction, adjust_p_values};
pub use self::power::{
    SampleSize, cohens_h, normal_minimum_detectable_effect, normal_power, normal_sample_size,
    ttest_minimum_detectable_effect, ttest_power, ttest_sample_size,
};
pub use self::proportions::{Proportion, ProportionsTest, proportions_ztest};
pub use self::sequential::{DEFAULT_TUNING_N, SequentialLook, SequentialMonitor};
pub use self::summary::Summary;
pub use self::ttest::{TTest, TTestKind, ttest, ttest_slices};

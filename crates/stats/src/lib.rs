//! The statistics behind experiments and canaries, matching scipy,
//! statsmodels and R to the digits their fixtures give.
//!
//! This crate provides:
//!
//! * [`Summary`]: streaming, mergeable count/mean/variance/min/max.
//! * [`ttest`]: Welch and Student t-tests with the interval of the
//!   difference and the relative lift ([`TTest`]).
//! * [`proportions_ztest`]: the pooled two-proportion z-test with a Wald
//!   interval ([`ProportionsTest`]).
//! * [`chi_square_independence`], [`chi_square_goodness_of_fit`] and
//!   [`sample_ratio_mismatch`] against configured weights.
//! * [`mann_whitney`]: U test plus the Hodges-Lehmann shift and its
//!   interval exactly as R's `wilcox.test` (Kayenta's canary judge).
//! * [`normal_sample_size`], [`normal_power`],
//!   [`normal_minimum_detectable_effect`], [`cohens_h`]: planning two-proportion tests.
//! * [`ttest_sample_size`], [`ttest_power`], [`ttest_minimum_detectable_effect`]:
//!   planning t-tests (noncentral t, as statsmodels' `TTestIndPower`).
//! * [`adjust_p_values`]: Bonferroni, Holm, Benjamini-Hochberg.
//! * [`cuped`]: CUPED variance reduction with a pre-period covariate.
//! * [`bootstrap_mean_diff`]: percentile bootstrap with an injected, seeded RNG.
//! * [`SequentialMonitor`]: an always-valid mSPRT p-value and confidence
//!   sequence (Johari et al. 2022), so results can be watched continuously.
//! * [`distributions`]: normal and Student t tails and quantiles accurate
//!   to about 1e-12 relative at any degrees of freedom.
//!
//! Conventions: `a` is the control, `b` the treatment, and every difference is
//! `b − a`.
//!
//! # Usage
//!
//! ```
//! use flightdeck_stats::{Summary, TTestKind, sample_ratio_mismatch, ttest};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let srm = sample_ratio_mismatch(&[50_500, 49_500], &[0.5, 0.5], 0.001)?;
//! assert!(!srm.mismatch);
//! let control = Summary::from_slice(&[10.0, 12.0, 11.0, 13.0])?;
//! let treatment = Summary::from_slice(&[12.0, 14.0, 13.0, 15.0])?;
//! let t = ttest(&control, &treatment, TTestKind::Welch, 0.05)?;
//! assert_eq!(t.diff, 2.0);
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
//! Layer 0 in `docs/architecture.md`: pure maths on `statrs`; no other
//! workspace crate, no I/O, no runtime.
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

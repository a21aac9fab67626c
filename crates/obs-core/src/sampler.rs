//! The trace sampler the standard `OTEL_TRACES_SAMPLER` and
//! `OTEL_TRACES_SAMPLER_ARG` variables ask for: the one parser the settings
//! (a sample rate) and the OTLP pipeline (an SDK sampler) both use.

/// Which traces are recorded and exported.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sampler {
    /// Every trace.
    AlwaysOn,
    /// None.
    AlwaysOff,
    /// A share of traces, by trace id.
    TraceIdRatio(f64),
    /// The parent's decision; roots always on.
    ParentBasedAlwaysOn,
    /// The parent's decision; roots never.
    ParentBasedAlwaysOff,
    /// The parent's decision; roots by trace-id ratio.
    ParentBasedTraceIdRatio(f64),
}

/// A sampler variable with a value it does not accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SamplerError {
    /// The variable.
    pub name: &'static str,
    /// Its value.
    pub value: String,
    /// What would be accepted.
    pub expected: &'static str,
}

/// The sampler names `OTEL_TRACES_SAMPLER` accepts.
pub const SAMPLER_NAMES: &str = "always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio";

impl Sampler {
    /// The sampler `OTEL_TRACES_SAMPLER` (`sampler`) and
    /// `OTEL_TRACES_SAMPLER_ARG` (`arg`) ask for, or `None` when no sampler
    /// is named. Names are case-insensitive; the ratio defaults to 1.0 and
    /// is checked whenever it is given.
    ///
    /// ```
    /// use flightdeck_obs_core::Sampler;
    /// assert_eq!(
    ///     Sampler::from_otel_env(Some("parentbased_traceidratio"), Some("0.25")),
    ///     Ok(Some(Sampler::ParentBasedTraceIdRatio(0.25)))
    /// );
    /// assert!(Sampler::from_otel_env(None, Some("1.5")).is_err());
    /// ```
    ///
    /// # Errors
    ///
    /// [`SamplerError`] naming the variable: an unknown sampler, or a ratio
    /// that is not a number between 0 and 1.
    pub fn from_otel_env(
        sampler: Option<&str>,
        arg: Option<&str>,
    ) -> Result<Option<Self>, SamplerError> {
        let ratio = match arg.map(str::trim).filter(|a| !a.is_empty()) {
            None => 1.0,
            Some(a) => a
                .parse::<f64>()
                .ok()
                .filter(|r| (0.0..=1.0).contains(r))
                .ok_or_else(|| SamplerError {
                    name: "OTEL_TRACES_SAMPLER_ARG",
                    value: a.to_owned(),
                    expected: "a ratio between 0 and 1",
                })?,
        };
        let Some(name) = sampler.map(str::trim).filter(|s| !s.is_empty()) else {
            return Ok(None);
        };
        Ok(Some(match name.to_ascii_lowercase().as_str() {
            "always_on" => Self::AlwaysOn,
            "always_off" => Self::AlwaysOff,
            "traceidratio" => Self::TraceIdRatio(ratio),
            "parentbased_always_on" => Self::ParentBasedAlwaysOn,
            "parentbased_always_off" => Self::ParentBasedAlwaysOff,
            "parentbased_traceidratio" => Self::ParentBasedTraceIdRatio(ratio),
            _ => {
                return Err(SamplerError {
                    name: "OTEL_TRACES_SAMPLER",
                    value: name.to_owned(),
                    expected: SAMPLER_NAMES,
                });
            }
        }))
    }

    /// The share of root traces kept: 1 or 0, or the ratio.
    pub fn root_ratio(self) -> f64 {
        match self {
            Self::AlwaysOn | Self::ParentBasedAlwaysOn => 1.0,
            Self::AlwaysOff | Self::ParentBasedAlwaysOff => 0.0,
            Self::TraceIdRatio(r) | Self::ParentBasedTraceIdRatio(r) => r,
        }
    }
}

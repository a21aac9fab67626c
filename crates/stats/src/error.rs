//! Error types.

/// A statistical computation could not be carried out on its input.
///
/// Each variant names the offending input so the caller can fix it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum StatsError {
    /// An arm has too few observations for the test.
    #[error("{input} has {n} observations; at least {min} are needed")]
    TooFewObservations {
        /// Which input ("sample a", "sample b", ...).
        input: String,
        /// How many it has.
        n: u64,
        /// How many the test needs.
        min: u64,
    },
    /// Every observation in every arm is identical, so the test statistic is undefined.
    #[error("zero variance in both samples: {detail}")]
    ZeroVariance {
        /// What was constant.
        detail: String,
    },
    /// NaN or infinity in the input.
    #[error("{input} has a non-finite value {value} at position {index}")]
    NonFinite {
        /// Which input.
        input: String,
        /// Zero-based position.
        index: usize,
        /// The value.
        value: f64,
    },
    /// A count that must be non-negative (or within its total) is not.
    #[error("invalid count in {input}: {detail}")]
    InvalidCount {
        /// Which input.
        input: String,
        /// What is wrong.
        detail: String,
    },
    /// A significance level, power or confidence level outside (0, 1).
    #[error("{name} must be strictly between 0 and 1, got {value}")]
    OutOfUnitInterval {
        /// The parameter.
        name: &'static str,
        /// The rejected value.
        value: f64,
    },
    /// The input is finite but so large that a result overflows `f64`
    /// (infinite or undefined); no result is better than a wrong one.
    #[error("{input}: values too large to compute {what} in f64 (it overflows); rescale the data")]
    Overflow {
        /// Which input.
        input: String,
        /// The quantity that overflowed.
        what: &'static str,
    },
    /// Any other invalid argument.
    #[error("invalid {name}: {detail}")]
    InvalidArgument {
        /// The parameter.
        name: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// A numerical search did not converge.
    #[error("{what} did not converge: {detail}")]
    NoConvergence {
        /// The search.
        what: &'static str,
        /// Where it stopped.
        detail: String,
    },
}

/// Checks that `value` is strictly inside (0, 1).
pub(crate) fn unit_interval(name: &'static str, value: f64) -> Result<f64, StatsError> {
    if value > 0.0 && value < 1.0 {
        Ok(value)
    } else {
        Err(StatsError::OutOfUnitInterval { name, value })
    }
}

/// Checks that each named arm has at least `min` observations.
pub(crate) fn require_counts(arms: &[(&str, u64)], min: u64) -> Result<(), StatsError> {
    match arms.iter().find(|(_, n)| *n < min) {
        None => Ok(()),
        Some((name, n)) => Err(StatsError::TooFewObservations {
            input: (*name).to_owned(),
            n: *n,
            min,
        }),
    }
}

/// Checks that two samples are non-empty and finite.
pub(crate) fn require_samples(a: &[f64], b: &[f64]) -> Result<(), StatsError> {
    require_counts(
        &[("sample a", a.len() as u64), ("sample b", b.len() as u64)],
        1,
    )?;
    finite("sample a", a)?;
    finite("sample b", b)
}

/// Checks that every value is finite.
pub(crate) fn finite(input: &str, values: &[f64]) -> Result<(), StatsError> {
    match values.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(index) => Err(StatsError::NonFinite {
            input: input.to_owned(),
            index,
            value: values[index],
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_input() {
        assert_eq!(
            StatsError::TooFewObservations {
                input: "sample a".into(),
                n: 1,
                min: 2
            }
            .to_string(),
            "sample a has 1 observations; at least 2 are needed"
        );
        assert_eq!(
            unit_interval("alpha", 1.5).unwrap_err().to_string(),
            "alpha must be strictly between 0 and 1, got 1.5"
        );
        assert_eq!(
            finite("sample b", &[1.0, f64::NAN])
                .unwrap_err()
                .to_string(),
            "sample b has a non-finite value NaN at position 1"
        );
    }
}

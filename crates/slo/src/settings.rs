//! [`SloSettings`]: the `slo_*` keys, loaded from the same settings file and
//! `FLIGHTDECK_*` variables as the observability settings.

use flightdeck_obs_core::{SettingValue, SettingsCheck, SettingsError, SettingsSection};
use serde::{Deserialize, Serialize};

/// The keys [`SloSettings`] owns.
pub const SLO_KEYS: [&str; 4] = [
    "slo_availability_target",
    "slo_latency_p99_ms",
    "slo_quality_target",
    "slo_error_rate_target",
];

/// The objectives of the default RAG SLOs ([`rag_defaults`](crate::rag_defaults)).
///
/// A [`SettingsSection`]: the facade's `flightdeck::Settings` loads it from
/// the settings file and the variables together with the observability keys,
/// e.g. `slo_latency_p99_ms = 300` or `FLIGHTDECK_SLO_LATENCY_P99_MS=300`.
///
/// | key | default | allowed |
/// |---|---|---|
/// | `slo_availability_target` | `0.999` | above 0, below 1 |
/// | `slo_latency_p99_ms` | `500` | above 0 |
/// | `slo_quality_target` | `0.8` | 0 to 1 |
/// | `slo_error_rate_target` | `0.001` | above 0, below 1 |
///
/// ```
/// use flightdeck_obs_core::ObservabilitySettings;
/// use flightdeck_slo::SloSettings;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut slo = SloSettings::default();
/// let env = [("FLIGHTDECK_SLO_LATENCY_P99_MS".to_owned(), "300".to_owned())];
/// ObservabilitySettings::load_with(None, env, &mut [&mut slo])?;
/// assert_eq!(slo.latency_p99_ms, 300.0);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SloSettings {
    /// Availability objective (`slo_availability_target`).
    pub availability_target: f64,
    /// p99 latency objective in milliseconds (`slo_latency_p99_ms`).
    pub latency_p99_ms: f64,
    /// Minimum quality score of a good answer (`slo_quality_target`).
    pub quality_target: f64,
    /// Maximum error rate (`slo_error_rate_target`).
    pub error_rate_target: f64,
}

impl Default for SloSettings {
    fn default() -> Self {
        Self {
            availability_target: 0.999,
            latency_p99_ms: 500.0,
            quality_target: 0.8,
            error_rate_target: 0.001,
        }
    }
}

impl SloSettings {
    /// Checks every value against its allowed range (for values set in code).
    ///
    /// # Errors
    ///
    /// [`SettingsError::InvalidValue`] naming the first bad key and its value.
    pub fn validate(&self) -> Result<(), SettingsError> {
        SettingsSection::validate(self, &SettingsCheck::in_code())
    }
}

impl SettingsSection for SloSettings {
    fn keys(&self) -> &'static [&'static str] {
        &SLO_KEYS
    }

    fn set(&mut self, value: &SettingValue<'_>) -> Result<(), SettingsError> {
        let v = value.number()?;
        match value.key() {
            "slo_availability_target" => self.availability_target = v,
            "slo_latency_p99_ms" => self.latency_p99_ms = v,
            "slo_quality_target" => self.quality_target = v,
            "slo_error_rate_target" => self.error_rate_target = v,
            _ => return Err(value.invalid("one of the slo_* keys")),
        }
        Ok(())
    }

    fn validate(&self, check: &SettingsCheck<'_>) -> Result<(), SettingsError> {
        check.open_share(
            "slo_availability_target",
            self.availability_target,
            "a number above 0 and below 1, e.g. 0.999",
        )?;
        check.above(
            "slo_latency_p99_ms",
            self.latency_p99_ms,
            0.0,
            "a number of milliseconds above 0",
        )?;
        check.within(
            "slo_quality_target",
            self.quality_target,
            0.0..=1.0,
            "a number from 0.0 to 1.0",
        )?;
        check.open_share(
            "slo_error_rate_target",
            self.error_rate_target,
            "a number above 0 and below 1, e.g. 0.001",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flightdeck_obs_core::ObservabilitySettings;
    use std::path::Path;

    #[test]
    fn defaults_match_the_original_design() {
        let s = SloSettings::default();
        assert_eq!(
            (
                s.latency_p99_ms,
                s.availability_target,
                s.quality_target,
                s.error_rate_target
            ),
            (500.0, 0.999, 0.8, 0.001)
        );
        s.validate().unwrap();
    }

    #[test]
    fn every_range_is_checked() {
        let cases = [
            ("slo_availability_target = 1.0", "slo_availability_target"),
            ("slo_latency_p99_ms = 0", "slo_latency_p99_ms"),
            ("slo_quality_target = 1.2", "slo_quality_target"),
            ("slo_error_rate_target = 0", "slo_error_rate_target"),
            ("slo_latency_p99_ms = \"fast\"", "slo_latency_p99_ms"),
        ];
        for (text, key) in cases {
            let mut slo = SloSettings::default();
            let err = ObservabilitySettings::from_toml_str_with(
                text,
                Path::new("a.toml"),
                &mut [&mut slo],
            )
            .unwrap_err();
            assert!(
                matches!(&err, SettingsError::InvalidValue { key: k, origin, .. } if *k == key && origin == "a.toml:1"),
                "{text}: {err}"
            );
        }
    }
}

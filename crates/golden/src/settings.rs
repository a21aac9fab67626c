//! [`GoldenSettings`]: the `golden_*` keys, loaded from the same settings
//! file and `FLIGHTDECK_*` variables as the observability settings.

use std::path::PathBuf;

use flightdeck_obs_core::{SettingValue, SettingsCheck, SettingsError, SettingsSection};
use serde::{Deserialize, Serialize};

use crate::Tolerances;

/// The keys [`GoldenSettings`] owns.
pub const GOLDEN_KEYS: [&str; 3] = [
    "golden_traces_path",
    "golden_trace_latency_tolerance",
    "golden_trace_quality_tolerance",
];

/// Where golden traces live and how far a run may drift from them.
///
/// A [`SettingsSection`]: the facade's `flightdeck::Settings` loads it from
/// the settings file and the variables together with the observability keys.
///
/// | key | default | allowed |
/// |---|---|---|
/// | `golden_traces_path` | `golden_traces` | a non-empty path |
/// | `golden_trace_latency_tolerance` | `0.2` | 0 or more (a share: 0.2 = 20 %) |
/// | `golden_trace_quality_tolerance` | `0.05` | 0 to 1 |
///
/// ```
/// use flightdeck_obs_core::ObservabilitySettings;
/// use flightdeck_golden::GoldenSettings;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut golden = GoldenSettings::default();
/// let env = [("FLIGHTDECK_GOLDEN_TRACE_LATENCY_TOLERANCE".to_owned(), "0.5".to_owned())];
/// ObservabilitySettings::load_with(None, env, &mut [&mut golden])?;
/// assert_eq!(golden.tolerances().latency, 0.5);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GoldenSettings {
    /// Where golden traces are stored (`golden_traces_path`).
    pub traces_path: PathBuf,
    /// Allowed relative latency change (`golden_trace_latency_tolerance`).
    pub latency_tolerance: f64,
    /// Allowed absolute quality change (`golden_trace_quality_tolerance`).
    pub quality_tolerance: f64,
}

impl Default for GoldenSettings {
    fn default() -> Self {
        Self {
            traces_path: PathBuf::from("golden_traces"),
            latency_tolerance: 0.2,
            quality_tolerance: 0.05,
        }
    }
}

impl GoldenSettings {
    /// The comparison tolerances these settings give, with the default 5 ms
    /// latency floor.
    pub fn tolerances(&self) -> Tolerances {
        Tolerances {
            latency: self.latency_tolerance,
            quality: self.quality_tolerance,
            ..Tolerances::default()
        }
    }

    /// Checks every value against its allowed range (for values set in code).
    ///
    /// # Errors
    ///
    /// [`SettingsError::InvalidValue`] naming the first bad key and its value.
    pub fn validate(&self) -> Result<(), SettingsError> {
        SettingsSection::validate(self, &SettingsCheck::in_code())
    }
}

impl SettingsSection for GoldenSettings {
    fn keys(&self) -> &'static [&'static str] {
        &GOLDEN_KEYS
    }

    fn set(&mut self, value: &SettingValue<'_>) -> Result<(), SettingsError> {
        match value.key() {
            "golden_traces_path" => {
                self.traces_path = value
                    .path()?
                    .ok_or_else(|| value.invalid("a non-empty path"))?;
            }
            "golden_trace_latency_tolerance" => self.latency_tolerance = value.number()?,
            "golden_trace_quality_tolerance" => self.quality_tolerance = value.number()?,
            _ => return Err(value.invalid("one of the golden_* keys")),
        }
        Ok(())
    }

    fn validate(&self, check: &SettingsCheck<'_>) -> Result<(), SettingsError> {
        check.at_least(
            "golden_trace_latency_tolerance",
            self.latency_tolerance,
            0.0,
            "a share of 0 or more, e.g. 0.2 for 20%",
        )?;
        check.within(
            "golden_trace_quality_tolerance",
            self.quality_tolerance,
            0.0..=1.0,
            "a number from 0.0 to 1.0",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flightdeck_obs_core::ObservabilitySettings;
    use std::path::Path;

    #[test]
    fn every_range_is_checked() {
        let cases = [
            (
                "golden_trace_latency_tolerance = -1",
                "golden_trace_latency_tolerance",
            ),
            (
                "golden_trace_quality_tolerance = 2",
                "golden_trace_quality_tolerance",
            ),
            ("golden_traces_path = \"\"", "golden_traces_path"),
        ];
        for (text, key) in cases {
            let mut golden = GoldenSettings::default();
            let err = ObservabilitySettings::from_toml_str_with(
                text,
                Path::new("a.toml"),
                &mut [&mut golden],
            )
            .unwrap_err();
            assert!(
                matches!(&err, SettingsError::InvalidValue { key: k, .. } if *k == key),
                "{text}: {err}"
            );
        }
    }

    #[test]
    fn tolerances_follow_the_settings() {
        let mut golden = GoldenSettings::default();
        ObservabilitySettings::from_toml_str_with(
            "golden_trace_quality_tolerance = 0.1\ngolden_traces_path = \"g\"",
            Path::new("a.toml"),
            &mut [&mut golden],
        )
        .unwrap();
        let t = golden.tolerances();
        assert_eq!((t.latency, t.quality), (0.2, 0.1));
        assert_eq!(t.latency_floor_ms, Tolerances::default().latency_floor_ms);
        assert_eq!(golden.traces_path, PathBuf::from("g"));
    }
}

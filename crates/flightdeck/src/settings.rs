//! [`Settings`]: the one settings object users load, composed of the
//! sections each crate owns.

use std::path::Path;

use flightdeck_obs_core::{ObservabilitySettings, SettingsError, SettingsSection};

/// Every Flightdeck setting, from one TOML file and one set of variables:
/// obs-core's [`ObservabilitySettings`], and with their features the `slo`
/// crate's `SloSettings` (the `slo_*` keys) and the `golden` crate's
/// `GoldenSettings` (the `golden_*` keys).
///
/// Precedence is the same for every key: the defaults, then the file
/// (`FLIGHTDECK_CONFIG` names it for [`from_env`](Self::from_env)), then
/// `OTEL_SERVICE_NAME`, `OTEL_TRACES_SAMPLER(_ARG)` and `RUST_LOG`, then
/// `FLIGHTDECK_<KEY>`. A key no section owns is an error naming it and
/// listing the known ones; a key of a crate whose feature is off is unknown.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let env = [("FLIGHTDECK_TRACE_SAMPLE_RATE".to_owned(), "0.25".to_owned())];
/// let settings = flightdeck::Settings::load(None, env)?;
/// assert_eq!(settings.observability.trace_sample_rate, 0.25);
/// let _guard = flightdeck::init(settings.observability.clone())?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct Settings {
    /// Spans, logs, metrics and prices (obs-core's keys).
    pub observability: ObservabilitySettings,
    /// The default RAG SLOs' objectives (the `slo_*` keys).
    #[cfg(feature = "slo")]
    #[cfg_attr(docsrs, doc(cfg(feature = "slo")))]
    pub slo: flightdeck_slo::SloSettings,
    /// Golden traces' directory and tolerances (the `golden_*` keys).
    #[cfg(feature = "golden")]
    #[cfg_attr(docsrs, doc(cfg(feature = "golden")))]
    pub golden: flightdeck_golden::GoldenSettings,
}

impl Settings {
    /// Defaults, then the file named by `FLIGHTDECK_CONFIG` (if set), then
    /// the process environment.
    ///
    /// # Errors
    ///
    /// [`SettingsError`] naming the key, value and origin of the first problem.
    pub fn from_env() -> Result<Self, SettingsError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        let file = flightdeck_obs_core::config_file_from(&env);
        Self::load(file.as_deref(), env)
    }

    /// Defaults, then `file` (when given), then the variables in `env`.
    ///
    /// # Errors
    ///
    /// [`SettingsError`] naming the key, value and origin of the first problem.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, SettingsError> {
        let mut s = Self::default();
        s.observability = ObservabilitySettings::load_with(file, env, &mut s.sections())?;
        Ok(s)
    }

    /// Parses TOML text on top of the defaults (no environment).
    ///
    /// # Errors
    ///
    /// [`SettingsError`] for syntax errors, unknown keys or invalid values.
    pub fn from_toml_str(text: &str, origin: &Path) -> Result<Self, SettingsError> {
        let mut s = Self::default();
        s.observability =
            ObservabilitySettings::from_toml_str_with(text, origin, &mut s.sections())?;
        Ok(s)
    }

    /// Checks every section's values against their ranges.
    ///
    /// # Errors
    ///
    /// [`SettingsError::InvalidValue`] naming the first bad key and its value.
    pub fn validate(&self) -> Result<(), SettingsError> {
        self.observability.validate()?;
        #[cfg(feature = "slo")]
        self.slo.validate()?;
        #[cfg(feature = "golden")]
        self.golden.validate()?;
        Ok(())
    }

    /// Every key a file or a `FLIGHTDECK_*` variable may set, section by section.
    pub fn keys() -> Vec<&'static str> {
        let mut s = Self::default();
        let mut keys: Vec<&'static str> = flightdeck_obs_core::KNOWN_KEYS.to_vec();
        keys.extend(s.sections().iter().flat_map(|s| s.keys().iter().copied()));
        keys
    }

    /// The sections other than obs-core's, for its loader.
    fn sections(&mut self) -> Vec<&mut dyn SettingsSection> {
        vec![
            #[cfg(feature = "slo")]
            &mut self.slo,
            #[cfg(feature = "golden")]
            &mut self.golden,
        ]
    }
}

impl From<Settings> for ObservabilitySettings {
    fn from(s: Settings) -> Self {
        s.observability
    }
}

impl From<ObservabilitySettings> for Settings {
    fn from(observability: ObservabilitySettings) -> Self {
        Self {
            observability,
            ..Self::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn one_file_and_one_set_of_variables_set_every_section() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flightdeck.toml");
        // Each section's keys, as far as the features enabled here have them.
        let mut text = String::from("service_name = \"svc\"\n");
        let mut vars = vec![("OTEL_SERVICE_NAME", "otel-svc")];
        if cfg!(feature = "slo") {
            text.push_str("slo_latency_p99_ms = 250\n");
            vars.push(("FLIGHTDECK_SLO_QUALITY_TARGET", "0.7"));
        }
        if cfg!(feature = "golden") {
            text.push_str("golden_traces_path = \"g\"\n");
            vars.push(("FLIGHTDECK_GOLDEN_TRACE_QUALITY_TOLERANCE", "0.1"));
        }
        std::fs::write(&path, text).unwrap();
        let s = Settings::load(Some(&path), env(&vars)).unwrap();
        assert_eq!(s.observability.service_name, "otel-svc");
        #[cfg(feature = "slo")]
        assert_eq!((s.slo.latency_p99_ms, s.slo.quality_target), (250.0, 0.7));
        #[cfg(feature = "golden")]
        assert_eq!(
            (s.golden.traces_path.as_path(), s.golden.quality_tolerance),
            (Path::new("g"), 0.1)
        );
        #[cfg(not(all(feature = "slo", feature = "golden")))]
        let _ = s;
    }

    #[test]
    fn keys_span_the_sections_and_unknown_ones_are_errors() {
        let keys = Settings::keys();
        assert!(keys.contains(&"trace_sample_rate"));
        #[cfg(feature = "slo")]
        assert!(keys.contains(&"slo_availability_target"));
        #[cfg(feature = "golden")]
        assert!(keys.contains(&"golden_trace_latency_tolerance"));
        let err = Settings::load(None, env(&[("FLIGHTDECK_SLO_LATENCY_P99", "1")])).unwrap_err();
        assert!(
            err.to_string().contains("FLIGHTDECK_SLO_LATENCY_P99"),
            "{err}"
        );
    }

    #[test]
    fn every_section_validates_with_its_origin() {
        #[cfg(feature = "slo")]
        {
            let err = Settings::from_toml_str("slo_quality_target = 1.2", Path::new("a.toml"))
                .unwrap_err();
            assert!(err.to_string().contains("a.toml:1"), "{err}");
        }
        let err =
            Settings::from_toml_str("trace_sample_rate = 2", Path::new("a.toml")).unwrap_err();
        assert!(err.to_string().contains("trace_sample_rate"), "{err}");
        Settings::default().validate().unwrap();
    }
}

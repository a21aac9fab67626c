//! [`ObservabilitySettings`]: the observability knobs, loaded from defaults,
//! then a TOML file, then the environment; and [`SettingsSection`], how the
//! crates above obs-core load their own keys from the same file and variables.

mod section;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::SettingsError;
use crate::metrics::{MIN_BINS, ModelPrice, PriceTable};

pub(crate) use self::section::Raw;
use self::section::Sections;
pub use self::section::{SettingValue, SettingsCheck, SettingsSection};

/// The default service name.
pub const DEFAULT_SERVICE_NAME: &str = "rag-service";

/// Variable naming the TOML settings file for [`ObservabilitySettings::from_env`].
pub const ENV_CONFIG: &str = "FLIGHTDECK_CONFIG";

/// `FLIGHTDECK_*` variables that are not settings but belong to commands
/// (`flightdeck serve --admin-token` reads `FLIGHTDECK_ADMIN_TOKEN`): the
/// settings loader leaves them alone instead of calling them unknown.
pub(crate) const ENV_NOT_SETTINGS: [&str; 2] = [ENV_CONFIG, "FLIGHTDECK_ADMIN_TOKEN"];
/// Prefix of the per-key variables, e.g. `FLIGHTDECK_LOG_LEVEL`.
pub const ENV_PREFIX: &str = "FLIGHTDECK_";
/// Standard OpenTelemetry variable for the service name.
pub const ENV_OTEL_SERVICE_NAME: &str = "OTEL_SERVICE_NAME";
/// Standard OpenTelemetry sampler name (`always_on`, `always_off`, `traceidratio`, ...).
pub const ENV_OTEL_TRACES_SAMPLER: &str = "OTEL_TRACES_SAMPLER";
/// Standard OpenTelemetry sampler argument (the ratio for ratio samplers).
pub const ENV_OTEL_TRACES_SAMPLER_ARG: &str = "OTEL_TRACES_SAMPLER_ARG";
/// The `tracing-subscriber` filter variable.
pub const ENV_RUST_LOG: &str = "RUST_LOG";

/// Every key of [`ObservabilitySettings`] a settings file or `FLIGHTDECK_*`
/// variable may set. The `slo_*` and `golden_*` keys belong to the `slo` and
/// `golden` crates' sections, which the facade's `flightdeck::Settings` loads
/// together with these.
pub const KNOWN_KEYS: [&str; 13] = [
    "service_name",
    "service_version",
    "environment",
    "tracing_enabled",
    "trace_file_path",
    "trace_console_output",
    "trace_sample_rate",
    "structured_logging",
    "log_level",
    "log_file_path",
    "metrics_enabled",
    "metrics_max_samples",
    "prices",
];

/// [`ObservabilitySettings`]: the observability knobs, loaded from defaults,
/// then a TOML file, then the environment.
///
/// Precedence, lowest first:
///
/// 1. the defaults below;
/// 2. a TOML file (`FLIGHTDECK_CONFIG` names it for [`ObservabilitySettings::from_env`]);
/// 3. the standard variables `OTEL_SERVICE_NAME`, `OTEL_TRACES_SAMPLER` with
///    `OTEL_TRACES_SAMPLER_ARG`, and `RUST_LOG`;
/// 4. `FLIGHTDECK_<KEY>` for every key, e.g. `FLIGHTDECK_TRACE_SAMPLE_RATE=0.1`.
///
/// Unknown keys (in the file, or `FLIGHTDECK_*` variables) are errors, so
/// typos do not pass silently. Every value is validated in [`validate`](ObservabilitySettings::validate);
/// an error names the key, the value, where it came from and what is allowed.
/// Crates above obs-core add their own keys as [`SettingsSection`]s loaded
/// with [`load_with`](ObservabilitySettings::load_with), under the same rules.
///
/// | key | default | allowed |
/// |---|---|---|
/// | `service_name` | `rag-service` | non-empty |
/// | `service_version` | none | text, e.g. `1.4.2` (OTLP `service.version`) |
/// | `environment` | `development` | non-empty |
/// | `tracing_enabled` | `true` | bool |
/// | `trace_file_path` | none | path to a JSON Lines file |
/// | `trace_console_output` | `false` | bool |
/// | `trace_sample_rate` | `1.0` | 0.0 to 1.0 |
/// | `structured_logging` | `true` | bool |
/// | `log_level` | `info` | an `EnvFilter` directive, e.g. `info,rag=debug` |
/// | `log_file_path` | none (standard output) | path |
/// | `metrics_enabled` | `true` | bool |
/// | `metrics_max_samples` | `2048` | 1600 to 1,048,576: sketch bins per operation (2048 cover 1 µs to 6 days) |
/// | `[prices.<model>]` | none | `input_usd_per_mtok`, `output_usd_per_mtok`, 0 or more |
///
/// `metrics_max_samples` was a sample reservoir's size in the original
/// design; quantiles now come from a sketch, so it bounds the sketch's bins
/// (memory is 8 bytes per bin, whatever the sample count).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObservabilitySettings {
    /// Service name on spans, logs and metrics.
    pub service_name: String,
    /// The service's version, exported as OTLP `service.version`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_version: Option<String>,
    /// Deployment environment, e.g. `production`.
    pub environment: String,
    /// Whether spans are recorded.
    pub tracing_enabled: bool,
    /// JSON Lines file for span records; none writes no file.
    pub trace_file_path: Option<PathBuf>,
    /// Whether spans are also printed to stderr.
    pub trace_console_output: bool,
    /// Share of traces recorded, 0.0 to 1.0.
    pub trace_sample_rate: f64,
    /// Whether JSON logs are written.
    pub structured_logging: bool,
    /// Log filter directive.
    pub log_level: String,
    /// JSON log file; none writes to standard output.
    pub log_file_path: Option<PathBuf>,
    /// Whether metrics are collected.
    pub metrics_enabled: bool,
    /// Sketch bins per operation (bounds memory).
    pub metrics_max_samples: usize,
    /// Model prices for cost metrics.
    pub prices: PriceTable,
}

impl Default for ObservabilitySettings {
    fn default() -> Self {
        Self {
            service_name: DEFAULT_SERVICE_NAME.to_owned(),
            service_version: None,
            environment: "development".to_owned(),
            tracing_enabled: true,
            trace_file_path: None,
            trace_console_output: false,
            trace_sample_rate: 1.0,
            structured_logging: true,
            log_level: "info".to_owned(),
            log_file_path: None,
            metrics_enabled: true,
            metrics_max_samples: crate::metrics::DEFAULT_MAX_BINS,
            prices: PriceTable::new(),
        }
    }
}

/// The settings file `FLIGHTDECK_CONFIG` names in `env`, if any.
pub fn config_file_from(env: &[(String, String)]) -> Option<PathBuf> {
    env.iter()
        .find(|(k, _)| k == ENV_CONFIG)
        .map(|(_, v)| PathBuf::from(v))
}

impl ObservabilitySettings {
    /// Defaults, then the file named by `FLIGHTDECK_CONFIG` (if set), then
    /// the process environment.
    ///
    /// # Errors
    ///
    /// [`SettingsError`] naming the key, value and origin of the first problem.
    pub fn from_env() -> Result<Self, SettingsError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        let file = config_file_from(&env);
        Self::load(file.as_deref(), env)
    }

    /// Defaults, then `file` (when given), then the variables in `env`.
    ///
    /// Taking the environment as an argument keeps tests free of process-wide
    /// state.
    ///
    /// ```
    /// use flightdeck_obs_core::ObservabilitySettings;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let env = [("FLIGHTDECK_TRACE_SAMPLE_RATE".to_owned(), "0.25".to_owned())];
    /// let s = ObservabilitySettings::load(None, env)?;
    /// assert_eq!(s.trace_sample_rate, 0.25);
    ///
    /// let bad = [("FLIGHTDECK_TRACE_SAMPLE_RATE".to_owned(), "1.5".to_owned())];
    /// let err = ObservabilitySettings::load(None, bad).unwrap_err();
    /// assert!(err.to_string().contains("trace_sample_rate"));
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`SettingsError`] naming the key, value and origin of the first problem.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, SettingsError> {
        Self::load_with(file, env, &mut [])
    }

    /// Like [`load`](Self::load), and sets the keys `others` own from the
    /// same file and variables, under the same precedence: an unknown key is
    /// one no section owns. Each section is validated after everything is set.
    ///
    /// # Errors
    ///
    /// [`SettingsError`] naming the key, value and origin of the first problem
    /// in any section.
    pub fn load_with(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        others: &mut [&mut dyn SettingsSection],
    ) -> Result<Self, SettingsError> {
        let text = match file {
            Some(path) => Some(
                std::fs::read_to_string(path).map_err(|e| SettingsError::Read {
                    path: path.to_path_buf(),
                    message: e.to_string(),
                })?,
            ),
            None => None,
        };
        let env: Vec<(String, String)> = env.into_iter().collect();
        Self::build(file.zip(text.as_deref()), &env, others)
    }

    /// Parses TOML text on top of the defaults (no environment), for tests and tools.
    ///
    /// # Errors
    ///
    /// [`SettingsError`] for syntax errors, unknown keys or invalid values.
    pub fn from_toml_str(text: &str, origin: &Path) -> Result<Self, SettingsError> {
        Self::from_toml_str_with(text, origin, &mut [])
    }

    /// Like [`from_toml_str`](Self::from_toml_str), with other sections'
    /// keys (see [`load_with`](Self::load_with)).
    ///
    /// # Errors
    ///
    /// [`SettingsError`] for syntax errors, unknown keys or invalid values.
    pub fn from_toml_str_with(
        text: &str,
        origin: &Path,
        others: &mut [&mut dyn SettingsSection],
    ) -> Result<Self, SettingsError> {
        Self::build(Some((origin, text)), &[], others)
    }

    /// The defaults, then the TOML text (with the file it came from), then
    /// the variables, into every section; then each section is validated.
    fn build(
        toml: Option<(&Path, &str)>,
        env: &[(String, String)],
        others: &mut [&mut dyn SettingsSection],
    ) -> Result<Self, SettingsError> {
        let mut s = Self::default();
        {
            let mut sections = Sections::new(&mut s, others)?;
            if let Some((path, text)) = toml {
                sections.apply_toml(text, path)?;
            }
            apply_env(&mut sections, env)?;
            sections.validate()?;
        }
        Ok(s)
    }

    /// Checks every value against its allowed range.
    ///
    /// # Errors
    ///
    /// [`SettingsError::InvalidValue`] naming the first bad key and its value.
    pub fn validate(&self) -> Result<(), SettingsError> {
        SettingsSection::validate(self, &SettingsCheck::in_code())
    }
}

impl SettingsSection for ObservabilitySettings {
    fn keys(&self) -> &'static [&'static str] {
        &KNOWN_KEYS
    }

    fn set(&mut self, value: &SettingValue<'_>) -> Result<(), SettingsError> {
        match value.key() {
            "service_name" => self.service_name = value.string()?,
            "service_version" => {
                let v = value.string()?;
                self.service_version = (!v.trim().is_empty()).then_some(v);
            }
            "environment" => self.environment = value.string()?,
            "tracing_enabled" => self.tracing_enabled = value.boolean()?,
            "trace_file_path" => self.trace_file_path = value.path()?,
            "trace_console_output" => self.trace_console_output = value.boolean()?,
            "trace_sample_rate" => self.trace_sample_rate = value.number()?,
            "structured_logging" => self.structured_logging = value.boolean()?,
            "log_level" => self.log_level = value.string()?,
            "log_file_path" => self.log_file_path = value.path()?,
            "metrics_enabled" => self.metrics_enabled = value.boolean()?,
            "metrics_max_samples" => self.metrics_max_samples = value.integer()?,
            "prices" => self.prices = parse_prices(value)?,
            other => return Err(value.invalid(&format!("a key of {other}'s own section"))),
        }
        Ok(())
    }

    fn validate(&self, check: &SettingsCheck<'_>) -> Result<(), SettingsError> {
        if self.service_name.trim().is_empty() {
            return Err(check.invalid(
                "service_name",
                self.service_name.clone(),
                "a non-empty name",
            ));
        }
        if self.environment.trim().is_empty() {
            return Err(check.invalid("environment", self.environment.clone(), "a non-empty name"));
        }
        check.within(
            "trace_sample_rate",
            self.trace_sample_rate,
            0.0..=1.0,
            "a number from 0.0 to 1.0",
        )?;
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log_level) {
            return Err(check.invalid(
                "log_level",
                self.log_level.clone(),
                &format!("a level (error, warn, info, debug, trace) or filter directive: {e}"),
            ));
        }
        if !(MIN_BINS..=1 << 20).contains(&self.metrics_max_samples) {
            return Err(check.invalid(
                "metrics_max_samples",
                self.metrics_max_samples.to_string(),
                "a whole number from 1600 to 1048576 (sketch bins per operation)",
            ));
        }
        Ok(())
    }
}

/// Applies the variables: the standard ones first, then `FLIGHTDECK_*`
/// (which win). Every `FLIGHTDECK_*` variable must name a key some section owns.
fn apply_env(
    sections: &mut Sections<'_, '_>,
    env: &[(String, String)],
) -> Result<(), SettingsError> {
    let get = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    if let Some(v) = get(ENV_OTEL_SERVICE_NAME) {
        let origin = format!("environment {ENV_OTEL_SERVICE_NAME}");
        sections.apply("service_name", Raw::Text(v), &origin)?;
    }
    if let Some(rate) = otel_sampler_rate(
        get(ENV_OTEL_TRACES_SAMPLER),
        get(ENV_OTEL_TRACES_SAMPLER_ARG),
    )? {
        let origin = format!("environment {ENV_OTEL_TRACES_SAMPLER}/{ENV_OTEL_TRACES_SAMPLER_ARG}");
        sections.apply("trace_sample_rate", Raw::Text(&rate), &origin)?;
    }
    if let Some(v) = get(ENV_RUST_LOG) {
        let origin = format!("environment {ENV_RUST_LOG}");
        sections.apply("log_level", Raw::Text(v), &origin)?;
    }
    let mut ours: Vec<&(String, String)> = env
        .iter()
        .filter(|(k, _)| k.starts_with(ENV_PREFIX) && !ENV_NOT_SETTINGS.contains(&k.as_str()))
        .collect();
    ours.sort();
    for (name, value) in ours {
        let key = name[ENV_PREFIX.len()..].to_ascii_lowercase();
        if key == "prices" || !sections.owns(&key) {
            let origin = if key == "prices" {
                "environment (prices can only be set in the settings file)"
            } else {
                "environment"
            };
            return Err(SettingsError::UnknownKey {
                key: name.clone(),
                origin: origin.into(),
                known: known_env_names(&sections.keys()),
            });
        }
        sections.apply(&key, Raw::Text(value), &format!("environment {name}"))?;
    }
    Ok(())
}

/// The sample rate the standard OTel sampler variables ask for, if any
/// (the sampler's share of root traces), by the one sampler parser.
fn otel_sampler_rate(
    sampler: Option<&str>,
    arg: Option<&str>,
) -> Result<Option<String>, SettingsError> {
    crate::Sampler::from_otel_env(sampler, arg)
        .map(|s| s.map(|s| s.root_ratio().to_string()))
        .map_err(|e| SettingsError::InvalidValue {
            key: "trace_sample_rate",
            value: e.value,
            origin: format!("environment {}", e.name),
            expected: e.expected.to_owned(),
        })
}

fn known_env_names(keys: &[&str]) -> String {
    keys.iter()
        .filter(|k| **k != "prices")
        .map(|k| format!("{ENV_PREFIX}{}", k.to_ascii_uppercase()))
        .chain(std::iter::once(ENV_CONFIG.to_owned()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn parse_prices(value: &SettingValue<'_>) -> Result<PriceTable, SettingsError> {
    let bad = |shown: String, expected: &str| SettingsError::InvalidValue {
        key: "prices",
        value: shown,
        origin: value.origin().to_owned(),
        expected: expected.to_owned(),
    };
    let Some(toml::Value::Table(models)) = value.toml() else {
        return Err(
            value.invalid("a table of models: [prices.\"model\"] input_usd_per_mtok = 0.15")
        );
    };
    let mut table = PriceTable::new();
    for (model, entry) in models {
        let toml::Value::Table(fields) = entry else {
            return Err(bad(
                format!("{model} = {entry}"),
                "a table with input_usd_per_mtok and output_usd_per_mtok",
            ));
        };
        let mut input = None;
        let mut output = None;
        for (field, value) in fields {
            let number = match value {
                toml::Value::Float(f) => *f,
                toml::Value::Integer(i) => *i as f64,
                other => {
                    return Err(bad(
                        format!("prices.{model}.{field} = {other}"),
                        "a number of USD per million tokens",
                    ));
                }
            };
            if !number.is_finite() || number < 0.0 {
                return Err(bad(
                    format!("prices.{model}.{field} = {number}"),
                    "a number of USD per million tokens, 0 or more",
                ));
            }
            match field.as_str() {
                "input_usd_per_mtok" => input = Some(number),
                "output_usd_per_mtok" => output = Some(number),
                _ => {
                    return Err(bad(
                        format!("prices.{model}.{field}"),
                        "only input_usd_per_mtok and output_usd_per_mtok",
                    ));
                }
            }
        }
        table = table.with_model(
            model.clone(),
            ModelPrice::from_usd_per_mtok(input.unwrap_or(0.0), output.unwrap_or(0.0)),
        );
    }
    Ok(table)
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

    fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flightdeck.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn defaults_match_the_original_design() {
        let s = ObservabilitySettings::load(None, env(&[])).unwrap();
        assert_eq!(s.service_name, "rag-service");
        assert_eq!(s.trace_sample_rate, 1.0);
        assert!(s.tracing_enabled && s.structured_logging && s.metrics_enabled);
    }

    #[test]
    fn file_then_standard_env_then_flightdeck_env() {
        let (_d, path) = write(
            "service_name = \"from-file\"\nenvironment = \"staging\"\ntrace_sample_rate = 0.5\nlog_level = \"warn\"\n",
        );
        let s = ObservabilitySettings::load(Some(&path), env(&[])).unwrap();
        assert_eq!(
            (
                s.service_name.as_str(),
                s.environment.as_str(),
                s.trace_sample_rate
            ),
            ("from-file", "staging", 0.5)
        );

        let s = ObservabilitySettings::load(
            Some(&path),
            env(&[
                ("OTEL_SERVICE_NAME", "from-otel"),
                ("OTEL_TRACES_SAMPLER", "traceidratio"),
                ("OTEL_TRACES_SAMPLER_ARG", "0.3"),
                ("RUST_LOG", "debug"),
            ]),
        )
        .unwrap();
        assert_eq!(
            (
                s.service_name.as_str(),
                s.trace_sample_rate,
                s.log_level.as_str()
            ),
            ("from-otel", 0.3, "debug")
        );

        let s = ObservabilitySettings::load(
            Some(&path),
            env(&[
                ("OTEL_SERVICE_NAME", "from-otel"),
                ("FLIGHTDECK_SERVICE_NAME", "from-flightdeck"),
                ("FLIGHTDECK_TRACE_SAMPLE_RATE", "0.1"),
            ]),
        )
        .unwrap();
        assert_eq!(
            (s.service_name.as_str(), s.trace_sample_rate),
            ("from-flightdeck", 0.1)
        );
        assert_eq!(
            s.environment, "staging",
            "untouched keys keep the file's value"
        );
    }

    #[test]
    fn sample_rate_out_of_range_names_key_value_origin_and_range() {
        let (_d, path) = write("service_name = \"x\"\ntrace_sample_rate = 1.5\n");
        let err = ObservabilitySettings::load(Some(&path), env(&[])).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("`trace_sample_rate`"), "{msg}");
        assert!(msg.contains("\"1.5\""), "{msg}");
        assert!(msg.contains("flightdeck.toml:2"), "{msg}");
        assert!(msg.contains("0.0 to 1.0"), "{msg}");

        let err =
            ObservabilitySettings::load(None, env(&[("FLIGHTDECK_TRACE_SAMPLE_RATE", "-0.1")]))
                .unwrap_err();
        assert!(
            err.to_string()
                .contains("environment FLIGHTDECK_TRACE_SAMPLE_RATE"),
            "{err}"
        );
    }

    #[test]
    fn unknown_keys_are_errors_in_files_and_env() {
        let (_d, path) = write("service_name = \"x\"\n\ntrace_sampel_rate = 0.5\n");
        let err = ObservabilitySettings::load(Some(&path), env(&[])).unwrap_err();
        assert!(
            matches!(&err, SettingsError::UnknownKey { key, origin, .. } if key == "trace_sampel_rate" && origin.ends_with("flightdeck.toml:3")),
            "{err}"
        );
        assert!(
            err.to_string().contains("trace_sample_rate"),
            "lists the known keys: {err}"
        );

        let err = ObservabilitySettings::load(None, env(&[("FLIGHTDECK_LOG_LEVLE", "info")]))
            .unwrap_err();
        assert!(err.to_string().contains("FLIGHTDECK_LOG_LEVLE"), "{err}");
        assert!(err.to_string().contains("FLIGHTDECK_LOG_LEVEL"), "{err}");
        // A command's own variable is not a setting, and not an error.
        ObservabilitySettings::load(None, env(&[("FLIGHTDECK_ADMIN_TOKEN", "0123456789abcdef")]))
            .unwrap();
    }

    #[test]
    fn wrong_types_and_bad_syntax_are_reported() {
        let err = ObservabilitySettings::from_toml_str(
            "tracing_enabled = \"yes please\"",
            Path::new("a.toml"),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("`tracing_enabled`")
                && err.to_string().contains("true or false"),
            "{err}"
        );
        let err = ObservabilitySettings::from_toml_str("service_name = ", Path::new("a.toml"))
            .unwrap_err();
        assert!(matches!(err, SettingsError::Parse { .. }), "{err}");
        assert!(err.to_string().contains("line 1"), "{err}");
        let err =
            ObservabilitySettings::load(None, env(&[("FLIGHTDECK_METRICS_ENABLED", "maybe")]))
                .unwrap_err();
        assert!(err.to_string().contains("\"maybe\""), "{err}");
    }

    #[test]
    fn every_range_is_checked() {
        let cases = [
            ("metrics_max_samples = 10", "metrics_max_samples"),
            ("service_name = \"\"", "service_name"),
            ("log_level = \"info,[[[\"", "log_level"),
            ("trace_sample_rate = nan", "trace_sample_rate"),
        ];
        for (text, key) in cases {
            let err = ObservabilitySettings::from_toml_str(text, Path::new("a.toml")).unwrap_err();
            assert!(
                matches!(&err, SettingsError::InvalidValue { key: k, .. } if *k == key),
                "{text}: {err}"
            );
        }
    }

    #[test]
    fn otel_sampler_names_map_to_rates() {
        let s = ObservabilitySettings::load(None, env(&[("OTEL_TRACES_SAMPLER", "always_off")]))
            .unwrap();
        assert_eq!(s.trace_sample_rate, 0.0);
        let s = ObservabilitySettings::load(
            None,
            env(&[
                ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
                ("OTEL_TRACES_SAMPLER_ARG", "0.05"),
            ]),
        )
        .unwrap();
        assert_eq!(s.trace_sample_rate, 0.05);
        let err =
            ObservabilitySettings::load(None, env(&[("OTEL_TRACES_SAMPLER", "jaeger_remote")]))
                .unwrap_err();
        assert!(err.to_string().contains("jaeger_remote"), "{err}");
    }

    #[test]
    fn prices_parse_from_the_file() {
        let text =
            "[prices.\"gpt-4o-mini\"]\ninput_usd_per_mtok = 0.15\noutput_usd_per_mtok = 0.6\n";
        let s = ObservabilitySettings::from_toml_str(text, Path::new("a.toml")).unwrap();
        assert_eq!(
            s.prices.get("gpt-4o-mini"),
            Some(ModelPrice {
                input_usd_micros_per_mtok: 150_000,
                output_usd_micros_per_mtok: 600_000
            })
        );
        let err = ObservabilitySettings::from_toml_str(
            "[prices.m]\ninput_usd_per_mtok = -1\n",
            Path::new("a.toml"),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("prices.m.input_usd_per_mtok = -1"),
            "{err}"
        );
    }

    /// A section of another crate: one key, a share in (0, 1).
    #[derive(Debug, Default)]
    struct Other {
        share: Option<f64>,
    }

    impl SettingsSection for Other {
        fn keys(&self) -> &'static [&'static str] {
            &["other_share"]
        }
        fn set(&mut self, value: &SettingValue<'_>) -> Result<(), SettingsError> {
            self.share = Some(value.number()?);
            Ok(())
        }
        fn validate(&self, check: &SettingsCheck<'_>) -> Result<(), SettingsError> {
            match self.share {
                Some(v) => check.open_share("other_share", v, "a share above 0 and below 1"),
                None => Ok(()),
            }
        }
    }

    #[test]
    fn other_sections_load_from_the_same_file_and_variables() {
        let (_d, path) = write("service_name = \"x\"\nother_share = 0.5\n");
        let mut other = Other::default();
        let s = ObservabilitySettings::load_with(Some(&path), env(&[]), &mut [&mut other]).unwrap();
        assert_eq!((s.service_name.as_str(), other.share), ("x", Some(0.5)));

        // The variable wins over the file, as for obs-core's own keys.
        let mut other = Other::default();
        ObservabilitySettings::load_with(
            Some(&path),
            env(&[("FLIGHTDECK_OTHER_SHARE", "0.25")]),
            &mut [&mut other],
        )
        .unwrap();
        assert_eq!(other.share, Some(0.25));

        // Its range errors name the key, the value and where it was set.
        let (_d, bad) = write("service_name = \"x\"\n\nother_share = 1.5\n");
        let mut other = Other::default();
        let err =
            ObservabilitySettings::load_with(Some(&bad), env(&[]), &mut [&mut other]).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("`other_share`") && msg.contains("\"1.5\""),
            "{msg}"
        );
        assert!(msg.contains("flightdeck.toml:3"), "{msg}");

        // Without the section its key is unknown, and the known list says so.
        let err = ObservabilitySettings::load(Some(&path), env(&[])).unwrap_err();
        assert!(
            matches!(&err, SettingsError::UnknownKey { key, .. } if key == "other_share"),
            "{err}"
        );
        let err = ObservabilitySettings::load_with(
            None,
            env(&[("FLIGHTDECK_OTHER_SHAER", "0.1")]),
            &mut [&mut Other::default()],
        )
        .unwrap_err();
        assert!(err.to_string().contains("FLIGHTDECK_OTHER_SHARE"), "{err}");
    }

    #[test]
    fn two_sections_cannot_own_one_key() {
        let err = ObservabilitySettings::load_with(
            None,
            env(&[]),
            &mut [&mut Other::default(), &mut Other::default()],
        )
        .unwrap_err();
        assert!(err.to_string().contains("other_share"), "{err}");
        assert!(err.to_string().contains("two settings sections"), "{err}");
    }
}

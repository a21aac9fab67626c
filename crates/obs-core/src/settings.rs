//! [`ObservabilitySettings`]: every knob in one place, loaded from defaults,
//! then a TOML file, then the environment.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::SettingsError;
use crate::metrics::{MIN_BINS, ModelPrice, PriceTable};

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

/// Every key a settings file or `FLIGHTDECK_*` variable may set.
pub const KNOWN_KEYS: [&str; 20] = [
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
    "slo_availability_target",
    "slo_latency_p99_ms",
    "slo_quality_target",
    "slo_error_rate_target",
    "golden_traces_path",
    "golden_trace_latency_tolerance",
    "golden_trace_quality_tolerance",
    "prices",
];

/// [`ObservabilitySettings`]: every knob in one place, loaded from defaults,
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
/// | `slo_availability_target` | `0.999` | above 0, below 1 |
/// | `slo_latency_p99_ms` | `500` | above 0 |
/// | `slo_quality_target` | `0.8` | 0 to 1 |
/// | `slo_error_rate_target` | `0.001` | above 0, below 1 |
/// | `golden_traces_path` | `golden_traces` | path |
/// | `golden_trace_latency_tolerance` | `0.2` | 0 or more (a share: 0.2 = 20 %) |
/// | `golden_trace_quality_tolerance` | `0.05` | 0 to 1 |
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
    /// Availability objective.
    pub slo_availability_target: f64,
    /// p99 latency objective in milliseconds.
    pub slo_latency_p99_ms: f64,
    /// Minimum mean quality score.
    pub slo_quality_target: f64,
    /// Maximum error rate.
    pub slo_error_rate_target: f64,
    /// Where golden traces are stored.
    pub golden_traces_path: PathBuf,
    /// Allowed relative latency change against a golden trace.
    pub golden_trace_latency_tolerance: f64,
    /// Allowed absolute quality change against a golden trace.
    pub golden_trace_quality_tolerance: f64,
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
            slo_availability_target: 0.999,
            slo_latency_p99_ms: 500.0,
            slo_quality_target: 0.8,
            slo_error_rate_target: 0.001,
            golden_traces_path: PathBuf::from("golden_traces"),
            golden_trace_latency_tolerance: 0.2,
            golden_trace_quality_tolerance: 0.05,
            prices: PriceTable::new(),
        }
    }
}

/// A raw value from a file or a variable.
enum Raw<'a> {
    Toml(&'a toml::Value),
    Text(&'a str),
}

impl Raw<'_> {
    fn shown(&self) -> String {
        match self {
            Raw::Toml(v) => v.to_string(),
            Raw::Text(s) => (*s).to_owned(),
        }
    }
}

/// Tracks where each key's value came from, for error messages.
#[derive(Debug, Default)]
struct Origins(HashMap<&'static str, String>);

impl ObservabilitySettings {
    /// Defaults, then the file named by `FLIGHTDECK_CONFIG` (if set), then
    /// the process environment.
    ///
    /// # Errors
    ///
    /// [`SettingsError`] naming the key, value and origin of the first problem.
    pub fn from_env() -> Result<Self, SettingsError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        let file = env
            .iter()
            .find(|(k, _)| k == ENV_CONFIG)
            .map(|(_, v)| PathBuf::from(v));
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
        let mut s = Self::default();
        let mut origins = Origins::default();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|e| SettingsError::Read {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
            s.apply_toml(&text, path, &mut origins)?;
        }
        s.apply_env(env, &mut origins)?;
        s.validate_with(&origins)?;
        Ok(s)
    }

    /// Parses TOML text on top of the defaults (no environment), for tests and tools.
    ///
    /// # Errors
    ///
    /// [`SettingsError`] for syntax errors, unknown keys or invalid values.
    pub fn from_toml_str(text: &str, origin: &Path) -> Result<Self, SettingsError> {
        let mut s = Self::default();
        let mut origins = Origins::default();
        s.apply_toml(text, origin, &mut origins)?;
        s.validate_with(&origins)?;
        Ok(s)
    }

    fn apply_toml(
        &mut self,
        text: &str,
        path: &Path,
        origins: &mut Origins,
    ) -> Result<(), SettingsError> {
        let table: toml::Table =
            text.parse()
                .map_err(|e: toml::de::Error| SettingsError::Parse {
                    path: path.to_path_buf(),
                    message: e.to_string().trim_end().replace('\n', " "),
                })?;
        for (key, value) in &table {
            let origin = match line_of_key(text, key) {
                Some(line) => format!("{}:{line}", path.display()),
                None => path.display().to_string(),
            };
            self.apply(key, Raw::Toml(value), &origin, origins)?;
        }
        Ok(())
    }

    fn apply_env(
        &mut self,
        env: impl IntoIterator<Item = (String, String)>,
        origins: &mut Origins,
    ) -> Result<(), SettingsError> {
        let env: Vec<(String, String)> = env.into_iter().collect();
        let get = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        // Standard variables first, so FLIGHTDECK_* (applied after) win.
        if let Some(v) = get(ENV_OTEL_SERVICE_NAME) {
            self.apply(
                "service_name",
                Raw::Text(v),
                &format!("environment {ENV_OTEL_SERVICE_NAME}"),
                origins,
            )?;
        }
        if let Some(rate) = otel_sampler_rate(
            get(ENV_OTEL_TRACES_SAMPLER),
            get(ENV_OTEL_TRACES_SAMPLER_ARG),
        )? {
            let origin =
                format!("environment {ENV_OTEL_TRACES_SAMPLER}/{ENV_OTEL_TRACES_SAMPLER_ARG}");
            self.apply("trace_sample_rate", Raw::Text(&rate), &origin, origins)?;
        }
        if let Some(v) = get(ENV_RUST_LOG) {
            self.apply(
                "log_level",
                Raw::Text(v),
                &format!("environment {ENV_RUST_LOG}"),
                origins,
            )?;
        }
        let mut ours: Vec<&(String, String)> = env
            .iter()
            .filter(|(k, _)| k.starts_with(ENV_PREFIX) && !ENV_NOT_SETTINGS.contains(&k.as_str()))
            .collect();
        ours.sort();
        for (name, value) in ours {
            let key = name[ENV_PREFIX.len()..].to_ascii_lowercase();
            if key == "prices" {
                return Err(SettingsError::UnknownKey {
                    key: name.clone(),
                    origin: "environment (prices can only be set in the settings file)".into(),
                    known: known_env_names(),
                });
            }
            if !KNOWN_KEYS.contains(&key.as_str()) {
                return Err(SettingsError::UnknownKey {
                    key: name.clone(),
                    origin: "environment".into(),
                    known: known_env_names(),
                });
            }
            self.apply(
                &key,
                Raw::Text(value),
                &format!("environment {name}"),
                origins,
            )?;
        }
        Ok(())
    }

    fn apply(
        &mut self,
        key: &str,
        raw: Raw<'_>,
        origin: &str,
        origins: &mut Origins,
    ) -> Result<(), SettingsError> {
        let Some(&key) = KNOWN_KEYS.iter().find(|k| **k == key) else {
            return Err(SettingsError::UnknownKey {
                key: key.to_owned(),
                origin: origin.to_owned(),
                known: KNOWN_KEYS.join(", "),
            });
        };
        let invalid = |expected: &str| SettingsError::InvalidValue {
            key,
            value: raw.shown(),
            origin: origin.to_owned(),
            expected: expected.to_owned(),
        };
        let string = || -> Result<String, SettingsError> {
            match &raw {
                Raw::Toml(toml::Value::String(s)) => Ok(s.clone()),
                Raw::Text(s) => Ok((*s).to_owned()),
                Raw::Toml(_) => Err(invalid("a string")),
            }
        };
        let boolean = || -> Result<bool, SettingsError> {
            match &raw {
                Raw::Toml(toml::Value::Boolean(b)) => Ok(*b),
                Raw::Text(s) => match s.trim().to_ascii_lowercase().as_str() {
                    "true" | "1" | "yes" | "on" => Ok(true),
                    "false" | "0" | "no" | "off" => Ok(false),
                    _ => Err(invalid("true or false")),
                },
                Raw::Toml(_) => Err(invalid("true or false")),
            }
        };
        let number = || -> Result<f64, SettingsError> {
            match &raw {
                Raw::Toml(toml::Value::Float(f)) => Ok(*f),
                Raw::Toml(toml::Value::Integer(i)) => Ok(*i as f64),
                Raw::Text(s) => s.trim().parse::<f64>().map_err(|_| invalid("a number")),
                Raw::Toml(_) => Err(invalid("a number")),
            }
        };
        let integer = || -> Result<usize, SettingsError> {
            match &raw {
                Raw::Toml(toml::Value::Integer(i)) => {
                    usize::try_from(*i).map_err(|_| invalid("a whole number, 0 or more"))
                }
                Raw::Text(s) => s
                    .trim()
                    .parse::<usize>()
                    .map_err(|_| invalid("a whole number, 0 or more")),
                Raw::Toml(_) => Err(invalid("a whole number")),
            }
        };
        let path = || -> Result<Option<PathBuf>, SettingsError> {
            let s = string()?;
            Ok((!s.is_empty()).then(|| PathBuf::from(s)))
        };
        match key {
            "service_name" => self.service_name = string()?,
            "service_version" => {
                let v = string()?;
                self.service_version = (!v.trim().is_empty()).then_some(v);
            }
            "environment" => self.environment = string()?,
            "tracing_enabled" => self.tracing_enabled = boolean()?,
            "trace_file_path" => self.trace_file_path = path()?,
            "trace_console_output" => self.trace_console_output = boolean()?,
            "trace_sample_rate" => self.trace_sample_rate = number()?,
            "structured_logging" => self.structured_logging = boolean()?,
            "log_level" => self.log_level = string()?,
            "log_file_path" => self.log_file_path = path()?,
            "metrics_enabled" => self.metrics_enabled = boolean()?,
            "metrics_max_samples" => self.metrics_max_samples = integer()?,
            "slo_availability_target" => self.slo_availability_target = number()?,
            "slo_latency_p99_ms" => self.slo_latency_p99_ms = number()?,
            "slo_quality_target" => self.slo_quality_target = number()?,
            "slo_error_rate_target" => self.slo_error_rate_target = number()?,
            "golden_traces_path" => {
                self.golden_traces_path = path()?.ok_or_else(|| invalid("a non-empty path"))?;
            }
            "golden_trace_latency_tolerance" => self.golden_trace_latency_tolerance = number()?,
            "golden_trace_quality_tolerance" => self.golden_trace_quality_tolerance = number()?,
            "prices" => self.prices = parse_prices(&raw, origin)?,
            _ => unreachable!("every KNOWN_KEYS entry has an arm"),
        }
        origins.0.insert(key, origin.to_owned());
        Ok(())
    }

    /// Checks every value against its allowed range.
    ///
    /// # Errors
    ///
    /// [`SettingsError::InvalidValue`] naming the first bad key and its value.
    pub fn validate(&self) -> Result<(), SettingsError> {
        self.validate_with(&Origins::default())
    }

    fn validate_with(&self, origins: &Origins) -> Result<(), SettingsError> {
        let origin = |key: &str| {
            origins
                .0
                .get(key)
                .cloned()
                .unwrap_or_else(|| "settings".into())
        };
        let bad = |key: &'static str, value: String, expected: &str| SettingsError::InvalidValue {
            key,
            value,
            origin: origin(key),
            expected: expected.to_owned(),
        };
        let in_range = |key: &'static str,
                        v: f64,
                        lo: f64,
                        hi: f64,
                        lo_open: bool,
                        hi_open: bool,
                        expected: &str| {
            let ok = v.is_finite()
                && if lo_open { v > lo } else { v >= lo }
                && if hi_open { v < hi } else { v <= hi };
            if ok {
                Ok(())
            } else {
                Err(bad(key, v.to_string(), expected))
            }
        };
        if self.service_name.trim().is_empty() {
            return Err(bad(
                "service_name",
                self.service_name.clone(),
                "a non-empty name",
            ));
        }
        if self.environment.trim().is_empty() {
            return Err(bad(
                "environment",
                self.environment.clone(),
                "a non-empty name",
            ));
        }
        in_range(
            "trace_sample_rate",
            self.trace_sample_rate,
            0.0,
            1.0,
            false,
            false,
            "a number from 0.0 to 1.0",
        )?;
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log_level) {
            return Err(bad(
                "log_level",
                self.log_level.clone(),
                &format!("a level (error, warn, info, debug, trace) or filter directive: {e}"),
            ));
        }
        if !(MIN_BINS..=1 << 20).contains(&self.metrics_max_samples) {
            return Err(bad(
                "metrics_max_samples",
                self.metrics_max_samples.to_string(),
                "a whole number from 1600 to 1048576 (sketch bins per operation)",
            ));
        }
        in_range(
            "slo_availability_target",
            self.slo_availability_target,
            0.0,
            1.0,
            true,
            true,
            "a number above 0 and below 1, e.g. 0.999",
        )?;
        in_range(
            "slo_latency_p99_ms",
            self.slo_latency_p99_ms,
            0.0,
            f64::INFINITY,
            true,
            true,
            "a number of milliseconds above 0",
        )?;
        in_range(
            "slo_quality_target",
            self.slo_quality_target,
            0.0,
            1.0,
            false,
            false,
            "a number from 0.0 to 1.0",
        )?;
        in_range(
            "slo_error_rate_target",
            self.slo_error_rate_target,
            0.0,
            1.0,
            true,
            true,
            "a number above 0 and below 1, e.g. 0.001",
        )?;
        in_range(
            "golden_trace_latency_tolerance",
            self.golden_trace_latency_tolerance,
            0.0,
            f64::INFINITY,
            false,
            true,
            "a share of 0 or more, e.g. 0.2 for 20%",
        )?;
        in_range(
            "golden_trace_quality_tolerance",
            self.golden_trace_quality_tolerance,
            0.0,
            1.0,
            false,
            false,
            "a number from 0.0 to 1.0",
        )?;
        Ok(())
    }
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

fn known_env_names() -> String {
    KNOWN_KEYS
        .iter()
        .filter(|k| **k != "prices")
        .map(|k| format!("{ENV_PREFIX}{}", k.to_ascii_uppercase()))
        .chain(std::iter::once(ENV_CONFIG.to_owned()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn parse_prices(raw: &Raw<'_>, origin: &str) -> Result<PriceTable, SettingsError> {
    let bad = |value: String, expected: &str| SettingsError::InvalidValue {
        key: "prices",
        value,
        origin: origin.to_owned(),
        expected: expected.to_owned(),
    };
    let Raw::Toml(toml::Value::Table(models)) = raw else {
        return Err(bad(
            raw.shown(),
            "a table of models: [prices.\"model\"] input_usd_per_mtok = 0.15",
        ));
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

/// The 1-based line where `key` is set at the top level of a TOML text.
fn line_of_key(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|line| {
            let l = line.trim_start();
            let rest = l
                .strip_prefix(key)
                .or_else(|| l.strip_prefix(&format!("\"{key}\"")))
                .or_else(|| l.strip_prefix(&format!("[{key}")));
            rest.is_some_and(|r| {
                let r = r.trim_start();
                r.starts_with('=') || r.starts_with('.') || r.starts_with(']')
            })
        })
        .map(|i| i + 1)
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
        assert_eq!(s.slo_latency_p99_ms, 500.0);
        assert_eq!(s.slo_availability_target, 0.999);
        assert_eq!(s.slo_quality_target, 0.8);
        assert_eq!(s.slo_error_rate_target, 0.001);
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
            ("slo_availability_target = 1.0", "slo_availability_target"),
            ("slo_latency_p99_ms = 0", "slo_latency_p99_ms"),
            ("slo_quality_target = 1.2", "slo_quality_target"),
            ("slo_error_rate_target = 0", "slo_error_rate_target"),
            ("metrics_max_samples = 10", "metrics_max_samples"),
            (
                "golden_trace_latency_tolerance = -1",
                "golden_trace_latency_tolerance",
            ),
            (
                "golden_trace_quality_tolerance = 2",
                "golden_trace_quality_tolerance",
            ),
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
}

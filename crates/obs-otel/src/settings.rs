//! OTLP settings from the standard `OTEL_*` variables.
//!
//! Precedence: explicit `with_*` settings win over the variables, which win
//! over the defaults. Values are checked here, once, and a bad one is an
//! error naming the variable and the value.

use std::time::Duration;

use crate::error::SettingsError;

/// `OTEL_EXPORTER_OTLP_ENDPOINT`: base URL; `/v1/traces` is appended for HTTP.
pub const ENV_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
/// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`: the traces URL, used as given.
pub const ENV_TRACES_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
/// `OTEL_EXPORTER_OTLP_PROTOCOL`: `grpc` or `http/protobuf`.
pub const ENV_PROTOCOL: &str = "OTEL_EXPORTER_OTLP_PROTOCOL";
/// `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`: as above, for traces only.
pub const ENV_TRACES_PROTOCOL: &str = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL";
/// `OTEL_EXPORTER_OTLP_HEADERS`: `key=value,...`, values percent-encoded.
pub const ENV_HEADERS: &str = "OTEL_EXPORTER_OTLP_HEADERS";
/// `OTEL_EXPORTER_OTLP_TRACES_HEADERS`: added to (and winning over) the above.
pub const ENV_TRACES_HEADERS: &str = "OTEL_EXPORTER_OTLP_TRACES_HEADERS";
/// `OTEL_EXPORTER_OTLP_TIMEOUT`: export timeout in milliseconds.
pub const ENV_TIMEOUT: &str = "OTEL_EXPORTER_OTLP_TIMEOUT";
/// `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT`: as above, for traces only.
pub const ENV_TRACES_TIMEOUT: &str = "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT";
/// `OTEL_SERVICE_NAME`: wins over `service.name` in the resource attributes.
pub const ENV_SERVICE_NAME: &str = "OTEL_SERVICE_NAME";
/// `OTEL_RESOURCE_ATTRIBUTES`: `key=value,...`, values percent-encoded.
pub const ENV_RESOURCE_ATTRIBUTES: &str = "OTEL_RESOURCE_ATTRIBUTES";
/// `OTEL_TRACES_SAMPLER`.
pub const ENV_TRACES_SAMPLER: &str = "OTEL_TRACES_SAMPLER";
/// `OTEL_TRACES_SAMPLER_ARG`: the ratio for the ratio samplers.
pub const ENV_TRACES_SAMPLER_ARG: &str = "OTEL_TRACES_SAMPLER_ARG";
/// `OTEL_SDK_DISABLED`: `true` turns export off.
pub const ENV_SDK_DISABLED: &str = "OTEL_SDK_DISABLED";

/// The OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpProtocol {
    /// OTLP/gRPC (default port 4317).
    Grpc,
    /// OTLP/HTTP with protobuf bodies (default port 4318).
    HttpProtobuf,
}

impl OtlpProtocol {
    fn parse(name: &'static str, v: &str) -> Result<Self, SettingsError> {
        match v.trim() {
            "grpc" => Ok(Self::Grpc),
            "http/protobuf" => Ok(Self::HttpProtobuf),
            _ => Err(SettingsError::Invalid {
                name,
                value: v.to_owned(),
                expected: "grpc or http/protobuf (http/json is not supported)",
            }),
        }
    }
}

pub use flightdeck_obs_core::Sampler;

/// OTLP trace export settings.
///
/// | setting | variable | default |
/// |---|---|---|
/// | endpoint | `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, else `OTEL_EXPORTER_OTLP_ENDPOINT` (+ `/v1/traces` for HTTP) | none: export off |
/// | protocol | `OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL` | `http/protobuf` |
/// | headers | `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_EXPORTER_OTLP_TRACES_HEADERS` | none |
/// | timeout | `OTEL_EXPORTER_OTLP_(TRACES_)TIMEOUT` (ms) | 10 s |
/// | service name | `OTEL_SERVICE_NAME`, else `service.name` in the resource | `rag-service` |
/// | resource attributes | `OTEL_RESOURCE_ATTRIBUTES` | none |
/// | sampler | `OTEL_TRACES_SAMPLER` / `_ARG` | `parentbased_always_on` |
/// | disabled | `OTEL_SDK_DISABLED=true` | false |
///
/// ```
/// use flightdeck_obs_otel::{OtlpProtocol, OtlpSettings};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let vars = |name: &str| match name {
///     "OTEL_EXPORTER_OTLP_ENDPOINT" => Some("http://127.0.0.1:4318".to_owned()),
///     "OTEL_SERVICE_NAME" => Some("ranker".to_owned()),
///     _ => None,
/// };
/// let s = OtlpSettings::from_vars(vars)?;
/// assert_eq!(s.traces_endpoint(), Some("http://127.0.0.1:4318/v1/traces".to_owned()));
/// assert_eq!(s.protocol(), OtlpProtocol::HttpProtobuf);
/// assert_eq!(s.service_name(), "ranker");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct OtlpSettings {
    base_endpoint: Option<String>,
    traces_endpoint: Option<String>,
    protocol: OtlpProtocol,
    headers: Vec<(String, String)>,
    timeout: Duration,
    service_name: Option<String>,
    resource: Vec<(String, String)>,
    sampler: Sampler,
    disabled: bool,
}

impl Default for OtlpSettings {
    fn default() -> Self {
        Self {
            base_endpoint: None,
            traces_endpoint: None,
            protocol: OtlpProtocol::HttpProtobuf,
            headers: Vec::new(),
            timeout: Duration::from_secs(10),
            service_name: None,
            resource: Vec::new(),
            sampler: Sampler::ParentBasedAlwaysOn,
            disabled: false,
        }
    }
}

/// Percent-decodes `s` (as the W3C baggage format encodes values).
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Parses `key=value,...` lists (headers and resource attributes).
fn parse_pairs(name: &'static str, v: &str) -> Result<Vec<(String, String)>, SettingsError> {
    let bad = || SettingsError::Invalid {
        name,
        value: v.to_owned(),
        expected: "comma-separated key=value pairs, values percent-encoded",
    };
    v.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            let (k, val) = p.split_once('=').ok_or_else(bad)?;
            let k = k.trim();
            if k.is_empty() {
                return Err(bad());
            }
            Ok((k.to_owned(), percent_decode(val.trim()).ok_or_else(bad)?))
        })
        .collect()
}

impl OtlpSettings {
    /// Reads the process environment.
    ///
    /// # Errors
    ///
    /// [`SettingsError::Invalid`] naming the variable and its value.
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// Reads variables through `get` (tests pass a map).
    ///
    /// # Errors
    ///
    /// [`SettingsError::Invalid`] naming the variable and its value.
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let get = |n: &str| get(n).filter(|v| !v.trim().is_empty());
        // An endpoint is an http:// or https:// URL; anything else would
        // fail on every export, long after start-up.
        let endpoint = |name: &'static str| -> Result<Option<String>, SettingsError> {
            match get(name) {
                Some(v)
                    if !(v.trim().starts_with("http://") || v.trim().starts_with("https://")) =>
                {
                    Err(SettingsError::Invalid {
                        name,
                        value: v,
                        expected: "an http:// or https:// URL",
                    })
                }
                other => Ok(other),
            }
        };
        let mut s = Self {
            base_endpoint: endpoint(ENV_ENDPOINT)?,
            traces_endpoint: endpoint(ENV_TRACES_ENDPOINT)?,
            ..Self::default()
        };
        if let Some(v) = get(ENV_TRACES_PROTOCOL) {
            s.protocol = OtlpProtocol::parse(ENV_TRACES_PROTOCOL, &v)?;
        } else if let Some(v) = get(ENV_PROTOCOL) {
            s.protocol = OtlpProtocol::parse(ENV_PROTOCOL, &v)?;
        }
        for name in [ENV_HEADERS, ENV_TRACES_HEADERS] {
            if let Some(v) = get(name) {
                for (k, val) in parse_pairs(name, &v)? {
                    s.headers.retain(|(x, _)| !x.eq_ignore_ascii_case(&k));
                    s.headers.push((k, val));
                }
            }
        }
        for name in [ENV_TIMEOUT, ENV_TRACES_TIMEOUT] {
            if let Some(v) = get(name) {
                let ms: u64 = v.trim().parse().map_err(|_| SettingsError::Invalid {
                    name,
                    value: v.clone(),
                    expected: "a whole number of milliseconds",
                })?;
                s.timeout = Duration::from_millis(ms);
            }
        }
        if let Some(v) = get(ENV_RESOURCE_ATTRIBUTES) {
            s.resource = parse_pairs(ENV_RESOURCE_ATTRIBUTES, &v)?;
        }
        s.service_name = get(ENV_SERVICE_NAME);
        // The one sampler parser, shared with obs-core's settings.
        if let Some(sampler) = Sampler::from_otel_env(
            get(ENV_TRACES_SAMPLER).as_deref(),
            get(ENV_TRACES_SAMPLER_ARG).as_deref(),
        )
        .map_err(|e| SettingsError::Invalid {
            name: e.name,
            value: e.value,
            expected: e.expected,
        })? {
            s.sampler = sampler;
        }
        s.disabled = match get(ENV_SDK_DISABLED) {
            None => false,
            Some(v) if v.trim().eq_ignore_ascii_case("true") => true,
            Some(v) if v.trim().eq_ignore_ascii_case("false") => false,
            Some(v) => {
                return Err(SettingsError::Invalid {
                    name: ENV_SDK_DISABLED,
                    value: v,
                    expected: "true or false",
                });
            }
        };
        Ok(s)
    }

    /// Sends traces to `url` (used as given). Wins over the variables.
    #[must_use]
    pub fn with_traces_endpoint(mut self, url: impl Into<String>) -> Self {
        self.traces_endpoint = Some(url.into());
        self
    }

    /// Uses `protocol`. Wins over the variables.
    #[must_use]
    pub fn with_protocol(mut self, protocol: OtlpProtocol) -> Self {
        self.protocol = protocol;
        self
    }

    /// Names the service. Wins over the variables.
    #[must_use]
    pub fn with_service_name(mut self, name: impl Into<String>) -> Self {
        self.service_name = Some(name.into());
        self
    }

    /// Adds (or replaces) a resource attribute. Wins over the variables.
    #[must_use]
    pub fn with_resource_attribute(
        mut self,
        key: impl Into<String>,
        value: impl Into<String>,
    ) -> Self {
        let key = key.into();
        self.resource.retain(|(k, _)| *k != key);
        self.resource.push((key, value.into()));
        self
    }

    /// Uses `sampler`. Wins over the variables.
    #[must_use]
    pub fn with_sampler(mut self, sampler: Sampler) -> Self {
        self.sampler = sampler;
        self
    }

    /// Sets the export timeout. Wins over the variables.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The URL traces go to, or `None` when export is off (no endpoint, or
    /// `OTEL_SDK_DISABLED=true`).
    pub fn traces_endpoint(&self) -> Option<String> {
        if self.disabled {
            return None;
        }
        if let Some(t) = &self.traces_endpoint {
            return Some(t.clone());
        }
        let base = self.base_endpoint.as_ref()?;
        Some(match self.protocol {
            OtlpProtocol::Grpc => base.clone(),
            OtlpProtocol::HttpProtobuf => format!("{}/v1/traces", base.trim_end_matches('/')),
        })
    }

    /// Whether export is on.
    pub fn enabled(&self) -> bool {
        self.traces_endpoint().is_some()
    }

    /// The protocol.
    pub fn protocol(&self) -> OtlpProtocol {
        self.protocol
    }

    /// Extra request headers (for example an API key).
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// The export timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The service name: explicit or `OTEL_SERVICE_NAME`, else
    /// `service.name` from the resource attributes, else `rag-service`.
    pub fn service_name(&self) -> &str {
        self.service_name
            .as_deref()
            .or_else(|| {
                self.resource
                    .iter()
                    .find(|(k, _)| k == "service.name")
                    .map(|(_, v)| v.as_str())
            })
            .unwrap_or(flightdeck_obs_core::DEFAULT_SERVICE_NAME)
    }

    /// The resource attributes (without `service.name`, which
    /// [`service_name`](Self::service_name) resolves).
    pub fn resource_attributes(&self) -> impl Iterator<Item = (&str, &str)> {
        self.resource
            .iter()
            .filter(|(k, _)| k != "service.name")
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The sampler.
    pub fn sampler(&self) -> Sampler {
        self.sampler
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars(pairs: &[(&str, &str)]) -> Result<OtlpSettings, SettingsError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        OtlpSettings::from_vars(|n| map.get(n).cloned())
    }

    #[test]
    fn endpoints_follow_the_specification() {
        for (name, value) in [
            (ENV_SDK_DISABLED, "maybe"),
            (ENV_ENDPOINT, "ftp://c:4318"),
            (ENV_TRACES_ENDPOINT, "c:4318"),
        ] {
            let err = vars(&[(name, value)]).unwrap_err().to_string();
            assert!(err.contains(name) && err.contains(value), "{err}");
        }
        assert!(!vars(&[(ENV_SDK_DISABLED, " False ")]).unwrap().disabled);
        let s = vars(&[(ENV_ENDPOINT, "http://c:4318/")]).unwrap();
        assert_eq!(s.traces_endpoint().unwrap(), "http://c:4318/v1/traces");
        let s = vars(&[
            (ENV_ENDPOINT, "http://c:4318"),
            (ENV_TRACES_ENDPOINT, "http://t:9/x"),
        ])
        .unwrap();
        assert_eq!(s.traces_endpoint().unwrap(), "http://t:9/x");
        let s = vars(&[(ENV_ENDPOINT, "http://c:4317"), (ENV_PROTOCOL, "grpc")]).unwrap();
        assert_eq!(s.traces_endpoint().unwrap(), "http://c:4317");
        assert!(!vars(&[]).unwrap().enabled());
        assert!(
            !vars(&[(ENV_ENDPOINT, "http://c:4318"), (ENV_SDK_DISABLED, "TRUE")])
                .unwrap()
                .enabled()
        );
    }

    #[test]
    fn explicit_settings_win_over_variables() {
        let s = vars(&[(ENV_SERVICE_NAME, "env"), (ENV_PROTOCOL, "grpc")])
            .unwrap()
            .with_service_name("explicit")
            .with_protocol(OtlpProtocol::HttpProtobuf);
        assert_eq!(s.service_name(), "explicit");
        assert_eq!(s.protocol(), OtlpProtocol::HttpProtobuf);
    }

    #[test]
    fn headers_resources_samplers_and_timeouts() {
        let s = vars(&[
            (ENV_HEADERS, "api-key=se%20cret, x=1"),
            (ENV_TRACES_HEADERS, "x=2"),
            (
                ENV_RESOURCE_ATTRIBUTES,
                "service.name=from-res,deployment.environment.name=prod",
            ),
            (ENV_TRACES_SAMPLER, "parentbased_traceidratio"),
            (ENV_TRACES_SAMPLER_ARG, "0.25"),
            (ENV_TIMEOUT, "2500"),
        ])
        .unwrap();
        assert_eq!(
            s.headers(),
            &[
                ("api-key".into(), "se cret".into()),
                ("x".into(), "2".into())
            ]
        );
        assert_eq!(s.service_name(), "from-res");
        assert_eq!(
            s.resource_attributes().collect::<Vec<_>>(),
            vec![("deployment.environment.name", "prod")]
        );
        assert_eq!(s.sampler(), Sampler::ParentBasedTraceIdRatio(0.25));
        assert_eq!(s.timeout(), Duration::from_millis(2500));
    }

    #[test]
    fn bad_values_name_the_variable_and_value() {
        for (pairs, needle) in [
            (
                vec![(ENV_PROTOCOL, "http/json")],
                "OTEL_EXPORTER_OTLP_PROTOCOL=\"http/json\"",
            ),
            (
                vec![(ENV_TRACES_SAMPLER, "sometimes")],
                "OTEL_TRACES_SAMPLER=\"sometimes\"",
            ),
            (
                vec![(ENV_TRACES_SAMPLER_ARG, "1.5")],
                "OTEL_TRACES_SAMPLER_ARG=\"1.5\"",
            ),
            (
                vec![(ENV_TIMEOUT, "5s")],
                "OTEL_EXPORTER_OTLP_TIMEOUT=\"5s\"",
            ),
            (
                vec![(ENV_HEADERS, "novalue")],
                "OTEL_EXPORTER_OTLP_HEADERS=\"novalue\"",
            ),
            (
                vec![(ENV_RESOURCE_ATTRIBUTES, "a=%zz")],
                "OTEL_RESOURCE_ATTRIBUTES=\"a=%zz\"",
            ),
        ] {
            let e = vars(&pairs).unwrap_err().to_string();
            assert!(e.starts_with(needle), "{e}");
        }
    }
}

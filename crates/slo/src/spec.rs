//! SLO specs: Sloth's `prometheus/v1` format and OpenSLO's `v1alpha` SLO, both
//! read into one model ([`SloSpec`]).

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::duration::PromDuration;
use crate::error::SpecError;

/// Which input format a spec came from (it shows in `sloth_spec`/`sloth_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecFormat {
    /// Sloth `version: prometheus/v1`.
    SlothV1,
    /// OpenSLO `apiVersion: openslo/v1alpha`, `kind: SLO`.
    OpenSloV1Alpha,
    /// OpenSLO `apiVersion: openslo/v1`, `kind: SLO`.
    OpenSloV1,
}

impl SpecFormat {
    /// The `sloth_spec` label value.
    pub fn spec_label(self) -> &'static str {
        match self {
            Self::SlothV1 => "prometheus/v1",
            Self::OpenSloV1Alpha => "openslo/v1alpha",
            Self::OpenSloV1 => "openslo/v1",
        }
    }

    /// The `sloth_mode` label value.
    pub fn mode_label(self) -> &'static str {
        match self {
            Self::SlothV1 => "cli-gen-prom",
            Self::OpenSloV1Alpha | Self::OpenSloV1 => "cli-gen-openslo",
        }
    }
}

/// The service's SLOs.
#[derive(Debug, Clone, PartialEq)]
pub struct SloSpec {
    /// The input format.
    pub format: SpecFormat,
    /// The service name.
    pub service: String,
    /// The SLOs, in file order.
    pub slos: Vec<Slo>,
    /// The period the spec asks for, when it names one (OpenSLO `timeWindows`).
    pub period: Option<PromDuration>,
}

/// One SLO.
#[derive(Debug, Clone, PartialEq)]
pub struct Slo {
    /// Name, unique within the service.
    pub name: String,
    /// Objective in percent, in (0, 100].
    pub objective: f64,
    /// Human description.
    pub description: String,
    /// Service labels merged with the SLO's own (the SLO's win).
    pub labels: BTreeMap<String, String>,
    /// How the error ratio is measured.
    pub sli: Sli,
    /// Alert settings.
    pub alerting: Alerting,
}

/// The error-ratio query, with `{{.window}}` where the window goes.
#[derive(Debug, Clone, PartialEq)]
pub enum Sli {
    /// `errors / total`.
    Events {
        /// Bad events per second over the window.
        error_query: String,
        /// All events per second over the window.
        total_query: String,
    },
    /// A query that already returns the error ratio.
    Raw {
        /// The ratio query.
        error_ratio_query: String,
    },
}

/// Alert settings for one SLO.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Alerting {
    /// Alert name (required unless both alerts are disabled).
    pub name: Option<String>,
    /// Labels on both alerts.
    pub labels: BTreeMap<String, String>,
    /// Annotations on both alerts.
    pub annotations: BTreeMap<String, String>,
    /// The page (fast burn) alert.
    pub page: AlertSettings,
    /// The ticket (slow burn) alert.
    pub ticket: AlertSettings,
}

impl Alerting {
    /// No alerts at all (OpenSLO inputs carry no Sloth alerting section).
    pub fn disabled() -> Self {
        let off = AlertSettings {
            disabled: true,
            ..AlertSettings::default()
        };
        Self {
            page: off.clone(),
            ticket: off,
            ..Self::default()
        }
    }
}

/// One alert's settings.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AlertSettings {
    /// Whether this alert is off.
    pub disabled: bool,
    /// Extra labels.
    pub labels: BTreeMap<String, String>,
    /// Extra annotations.
    pub annotations: BTreeMap<String, String>,
}

// ---- Sloth prometheus/v1 ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SlothDoc {
    version: String,
    service: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    slos: Vec<SlothSlo>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SlothSlo {
    name: String,
    objective: f64,
    #[serde(default)]
    description: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    sli: SlothSli,
    #[serde(default)]
    alerting: SlothAlerting,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SlothSli {
    events: Option<SlothEvents>,
    raw: Option<SlothRaw>,
    plugin: Option<serde_norway::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SlothEvents {
    error_query: String,
    total_query: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SlothRaw {
    error_ratio_query: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SlothAlerting {
    name: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    page_alert: SlothAlert,
    #[serde(default)]
    ticket_alert: SlothAlert,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SlothAlert {
    #[serde(default)]
    disable: bool,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

// ---- OpenSLO v1alpha (the subset Sloth reads) ----

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OpenSloDoc {
    api_version: String,
    kind: String,
    metadata: OpenSloMeta,
    spec: OpenSloSpec,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OpenSloMeta {
    name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OpenSloSpec {
    service: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    budgeting_method: Option<String>,
    objectives: Vec<OpenSloObjective>,
    #[serde(default)]
    time_windows: Vec<OpenSloWindow>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OpenSloObjective {
    ratio_metrics: Option<OpenSloRatio>,
    target: f64,
}

#[derive(Deserialize)]
struct OpenSloRatio {
    good: OpenSloQuery,
    total: OpenSloQuery,
}

#[derive(Deserialize)]
struct OpenSloQuery {
    query: String,
}

#[derive(Deserialize)]
struct OpenSloWindow {
    count: u64,
    unit: String,
}

/// Sloth's name rule: `^[A-Za-z0-9][-A-Za-z0-9_.]*[A-Za-z0-9]$`.
fn valid_name(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// Replaces every `{{.window}}` (spaces allowed inside the braces) with `window`.
pub(crate) fn substitute_window(query: &str, window: &str) -> String {
    let mut out = String::with_capacity(query.len());
    let mut rest = query;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let inner_end = after.find("}}");
        match inner_end {
            Some(end) if after[..end].trim() == ".window" => {
                out.push_str(&rest[..start]);
                out.push_str(window);
                rest = &after[end + 2..];
            }
            _ => {
                out.push_str(&rest[..start + 2]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn has_window(query: &str) -> bool {
    substitute_window(query, "\u{0}") != query
}

impl SloSpec {
    /// Parses a Sloth `prometheus/v1` or OpenSLO `v1alpha` SLO document and
    /// validates it with Sloth's rules.
    ///
    /// ```
    /// use flightdeck_slo::SloSpec;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let spec = SloSpec::from_yaml(r#"
    /// version: prometheus/v1
    /// service: rag
    /// slos:
    ///   - name: availability
    ///     objective: 99.9
    ///     sli:
    ///       events:
    ///         error_query: sum(rate(req_total{code=~"5.."}[{{.window}}]))
    ///         total_query: sum(rate(req_total[{{.window}}]))
    ///     alerting:
    ///       name: RagAvailability
    /// "#, "rag-slos.yaml")?;
    /// assert_eq!(spec.slos[0].objective, 99.9);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`SpecError`] naming `origin`, the field and the value: YAML syntax,
    /// unknown fields, an objective outside (0, 100], bad names, queries
    /// without `{{.window}}`, or a missing alert name.
    pub fn from_yaml(text: &str, origin: &str) -> Result<Self, SpecError> {
        let parse_err = |e: serde_norway::Error| SpecError::Parse {
            origin: origin.to_owned(),
            message: e.to_string(),
        };
        SpecError::check_nesting(text, origin)?;
        let probe: serde_norway::Value = serde_norway::from_str(text).map_err(parse_err)?;
        let read = || {
            let spec = if probe.get("apiVersion").and_then(|v| v.as_str()) == Some("openslo/v1") {
                Self::from_openslo_v1(&probe, text, origin)?
            } else if probe.get("apiVersion").and_then(|v| v.as_str()) == Some("openslo/v1alpha") {
                let doc: OpenSloDoc = serde_norway::from_str(text).map_err(parse_err)?;
                Self::from_openslo(doc, origin)?
            } else {
                let doc: SlothDoc = serde_norway::from_str(text).map_err(parse_err)?;
                Self::from_sloth(doc, origin)?
            };
            spec.check_names(origin)?;
            Ok(spec)
        };
        read().map_err(|e: SpecError| e.located_in(text))
    }

    /// What every source format must satisfy for the generated rules to be
    /// valid: the service is a name (it is pasted into PromQL label
    /// matchers and rule names), and SLO names are unique in the service
    /// (promtool rejects two rule groups of one name).
    fn check_names(&self, origin: &str) -> Result<(), SpecError> {
        if !valid_name(&self.service) {
            return Err(SpecError::invalid(
                origin,
                "service",
                format!(
                    "{} must match ^[A-Za-z0-9][-A-Za-z0-9_.]*[A-Za-z0-9]$",
                    flightdeck_obs_core::shown(&self.service)
                ),
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, slo) in self.slos.iter().enumerate() {
            if !seen.insert(slo.name.as_str()) {
                return Err(SpecError::invalid(
                    origin,
                    format!("slos[{i}].name"),
                    format!(
                        "{} is used by an earlier SLO; names must be unique in a service",
                        flightdeck_obs_core::shown(&slo.name)
                    ),
                ));
            }
        }
        Ok(())
    }

    fn from_sloth(doc: SlothDoc, origin: &str) -> Result<Self, SpecError> {
        if doc.version != "prometheus/v1" {
            return Err(SpecError::invalid(
                origin,
                "version",
                format!(
                    "{:?} is not supported; use prometheus/v1 (or an openslo/v1alpha SLO)",
                    doc.version
                ),
            ));
        }
        if doc.service.trim().is_empty() {
            return Err(SpecError::invalid(origin, "service", "must not be empty"));
        }
        if doc.slos.is_empty() {
            return Err(SpecError::invalid(
                origin,
                "slos",
                "at least one SLO is required",
            ));
        }
        let mut slos = Vec::with_capacity(doc.slos.len());
        for (i, s) in doc.slos.into_iter().enumerate() {
            let field = |f: &str| format!("slos[{i}].{f}");
            if !valid_name(&s.name) {
                return Err(SpecError::invalid(
                    origin,
                    field("name"),
                    format!(
                        "{:?} must match ^[A-Za-z0-9][-A-Za-z0-9_.]*[A-Za-z0-9]$",
                        s.name
                    ),
                ));
            }
            if !(s.objective > 0.0 && s.objective <= 100.0) {
                return Err(SpecError::invalid(
                    origin,
                    field("objective"),
                    format!("{} is not within (0, 100]", s.objective),
                ));
            }
            let sli = match (s.sli.events, s.sli.raw, s.sli.plugin) {
                (Some(e), None, None) => {
                    for (f, q) in [
                        ("sli.events.error_query", &e.error_query),
                        ("sli.events.total_query", &e.total_query),
                    ] {
                        if !has_window(q) {
                            return Err(SpecError::invalid(
                                origin,
                                field(f),
                                format!("{q:?} has no {{{{.window}}}} placeholder"),
                            ));
                        }
                    }
                    if e.error_query == e.total_query {
                        return Err(SpecError::invalid(
                            origin,
                            field("sli.events"),
                            "error_query and total_query must differ",
                        ));
                    }
                    Sli::Events {
                        error_query: e.error_query,
                        total_query: e.total_query,
                    }
                }
                (None, Some(r), None) => {
                    if !has_window(&r.error_ratio_query) {
                        return Err(SpecError::invalid(
                            origin,
                            field("sli.raw.error_ratio_query"),
                            format!(
                                "{:?} has no {{{{.window}}}} placeholder",
                                r.error_ratio_query
                            ),
                        ));
                    }
                    Sli::Raw {
                        error_ratio_query: r.error_ratio_query,
                    }
                }
                (None, None, Some(_)) => {
                    return Err(SpecError::invalid(
                        origin,
                        field("sli.plugin"),
                        "SLI plugins are not supported; use events or raw",
                    ));
                }
                _ => {
                    return Err(SpecError::invalid(
                        origin,
                        field("sli"),
                        "exactly one of events, raw or plugin is required",
                    ));
                }
            };
            let a = s.alerting;
            let both_disabled = a.page_alert.disable && a.ticket_alert.disable;
            match &a.name {
                None if !both_disabled => {
                    return Err(SpecError::invalid(
                        origin,
                        field("alerting.name"),
                        "is required unless both alerts are disabled",
                    ));
                }
                Some(n) if !valid_name(n) => {
                    return Err(SpecError::invalid(
                        origin,
                        field("alerting.name"),
                        format!("{n:?} must match ^[A-Za-z0-9][-A-Za-z0-9_.]*[A-Za-z0-9]$"),
                    ));
                }
                _ => {}
            }
            let mut labels = doc.labels.clone();
            labels.extend(s.labels);
            slos.push(Slo {
                name: s.name,
                objective: s.objective,
                description: s.description,
                labels,
                sli,
                alerting: Alerting {
                    name: a.name,
                    labels: a.labels,
                    annotations: a.annotations,
                    page: AlertSettings {
                        disabled: a.page_alert.disable,
                        labels: a.page_alert.labels,
                        annotations: a.page_alert.annotations,
                    },
                    ticket: AlertSettings {
                        disabled: a.ticket_alert.disable,
                        labels: a.ticket_alert.labels,
                        annotations: a.ticket_alert.annotations,
                    },
                },
            });
        }
        Ok(Self {
            format: SpecFormat::SlothV1,
            service: doc.service,
            slos,
            period: None,
        })
    }

    /// An OpenSLO v1 SLO with an inline `ratioMetric` indicator whose metric
    /// sources hold PromQL in `spec.query`, and a rolling time window.
    fn from_openslo_v1(
        doc: &serde_norway::Value,
        text: &str,
        origin: &str,
    ) -> Result<Self, SpecError> {
        let problems = crate::openslo::validate_openslo(text).map_err(|m| SpecError::Parse {
            origin: origin.to_owned(),
            message: m,
        })?;
        if let Some(p) = problems.first() {
            return Err(SpecError::invalid(
                origin,
                format!("document {} ({}): {}", p.document, p.subject, p.field),
                p.message.clone(),
            ));
        }
        let str_at = |path: &[&str]| -> Option<String> {
            let mut v = doc;
            for k in path {
                v = v.get(*k)?;
            }
            v.as_str().map(str::to_owned)
        };
        if str_at(&["kind"]).as_deref() != Some("SLO") {
            return Err(SpecError::invalid(
                origin,
                "kind",
                "rules are generated from kind SLO documents",
            ));
        }
        let name = str_at(&["metadata", "name"]).unwrap_or_default();
        let spec = &doc["spec"];
        let ratio = spec
            .get("indicator")
            .and_then(|i| i.get("spec"))
            .and_then(|s| s.get("ratioMetric"))
            .ok_or_else(|| {
                SpecError::invalid(
                    origin,
                    "spec.indicator.spec.ratioMetric",
                    "rules need an inline ratioMetric indicator",
                )
            })?;
        let query = |part: &str| {
            ratio
                .get(part)
                .and_then(|p| p.get("metricSource"))
                .and_then(|m| m.get("spec"))
                .and_then(|s| s.get("query"))
                .and_then(|q| q.as_str())
                .map(str::to_owned)
        };
        let total = query("total").ok_or_else(|| {
            SpecError::invalid(
                origin,
                "spec.indicator.spec.ratioMetric.total.metricSource.spec.query",
                "a PromQL query is required",
            )
        })?;
        let (error_ratio_query, field) = match (query("good"), query("bad")) {
            (Some(good), None) => (
                format!("\n1 - (\n  (\n    {good}\n  )\n  /\n  (\n    {total}\n  )\n)\n"),
                "good",
            ),
            (None, Some(bad)) => (format!("\n(\n  {bad}\n)\n/\n(\n  {total}\n)\n"), "bad"),
            _ => {
                return Err(SpecError::invalid(
                    origin,
                    "spec.indicator.spec.ratioMetric",
                    "exactly one of good or bad (with a PromQL query) is required",
                ));
            }
        };
        for q in [&error_ratio_query] {
            if !has_window(q) {
                return Err(SpecError::invalid(
                    origin,
                    format!("spec.indicator.spec.ratioMetric.{field}.metricSource.spec.query"),
                    "queries need a {{.window}} placeholder where the range goes",
                ));
            }
        }
        let window = &spec["timeWindow"][0];
        if window
            .get("isRolling")
            .and_then(serde_norway::Value::as_bool)
            != Some(true)
        {
            return Err(SpecError::invalid(
                origin,
                "spec.timeWindow[0].isRolling",
                "rules need a rolling window",
            ));
        }
        let duration = window
            .get("duration")
            .and_then(|d| d.as_str())
            .unwrap_or_default();
        let period = PromDuration::parse(duration)
            .map_err(|m| SpecError::invalid(origin, "spec.timeWindow[0].duration", m))?;
        let mut slos = Vec::new();
        for (i, o) in spec["objectives"]
            .as_sequence()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let target = o
                .get("target")
                .and_then(serde_norway::Value::as_f64)
                .or_else(|| {
                    o.get("targetPercent")
                        .and_then(serde_norway::Value::as_f64)
                        .map(|p| p / 100.0)
                })
                .unwrap_or_default();
            slos.push(Slo {
                name: format!("{name}-{i}"),
                objective: target * 100.0,
                description: str_at(&["spec", "description"]).unwrap_or_default(),
                labels: BTreeMap::new(),
                sli: Sli::Raw {
                    error_ratio_query: error_ratio_query.clone(),
                },
                alerting: Alerting::disabled(),
            });
        }
        Ok(Self {
            format: SpecFormat::OpenSloV1,
            service: str_at(&["spec", "service"]).unwrap_or_default(),
            slos,
            period: Some(period),
        })
    }

    fn from_openslo(doc: OpenSloDoc, origin: &str) -> Result<Self, SpecError> {
        if doc.kind != "SLO" {
            return Err(SpecError::invalid(
                origin,
                "kind",
                format!("{:?} is not SLO", doc.kind),
            ));
        }
        let s = doc.spec;
        if let Some(m) = s
            .budgeting_method
            .as_deref()
            .filter(|m| *m != "Occurrences")
        {
            return Err(SpecError::invalid(
                origin,
                "spec.budgetingMethod",
                format!("{m:?}: only Occurrences is supported"),
            ));
        }
        let period = match s.time_windows.as_slice() {
            [] => None,
            [w] => {
                let unit = match w.unit.as_str() {
                    "Day" => "d",
                    "Week" => "w",
                    other => {
                        return Err(SpecError::invalid(
                            origin,
                            "spec.timeWindows[0].unit",
                            format!("{other:?}: use Day or Week"),
                        ));
                    }
                };
                Some(
                    PromDuration::parse(&format!("{}{unit}", w.count))
                        .map_err(|m| SpecError::invalid(origin, "spec.timeWindows[0].count", m))?,
                )
            }
            _ => {
                return Err(SpecError::invalid(
                    origin,
                    "spec.timeWindows",
                    "exactly one time window is supported",
                ));
            }
        };
        let mut slos = Vec::new();
        for (i, o) in s.objectives.into_iter().enumerate() {
            let field = |f: &str| format!("spec.objectives[{i}].{f}");
            let Some(r) = o.ratio_metrics else {
                return Err(SpecError::invalid(
                    origin,
                    field("ratioMetrics"),
                    "is required",
                ));
            };
            if !(o.target > 0.0 && o.target <= 1.0) {
                return Err(SpecError::invalid(
                    origin,
                    field("target"),
                    format!("{} is not within (0, 1]", o.target),
                ));
            }
            let error_ratio_query = format!(
                "\n1 - (\n  (\n    {}\n  )\n  /\n  (\n    {}\n  )\n)\n",
                r.good.query, r.total.query
            );
            slos.push(Slo {
                name: format!("{}-{i}", doc.metadata.name),
                objective: o.target * 100.0,
                description: s.description.clone(),
                labels: BTreeMap::new(),
                sli: Sli::Raw { error_ratio_query },
                alerting: Alerting::disabled(),
            });
        }
        let _ = doc.api_version;
        Ok(Self {
            format: SpecFormat::OpenSloV1Alpha,
            service: s.service,
            slos,
            period,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_placeholders_are_substituted_with_optional_spaces() {
        assert_eq!(
            substitute_window("rate(x[{{.window}}]) + rate(y[{{ .window }}])", "5m"),
            "rate(x[5m]) + rate(y[5m])"
        );
        assert_eq!(substitute_window("{{$labels.x}}", "5m"), "{{$labels.x}}");
    }

    #[test]
    fn names_follow_sloths_rule() {
        assert!(valid_name("slo-1.a_b"));
        assert!(!valid_name("-slo"));
        assert!(!valid_name("slo!"));
    }
}

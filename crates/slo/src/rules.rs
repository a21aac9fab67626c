//! Prometheus recording and alerting rules for SLOs, rule for rule what Sloth
//! (v0.16) generates: SLI error ratios per window, the optimized period
//! ratio, metadata (objective, budget, burn rates, budget remaining) and the
//! multiwindow, multi-burn-rate page and ticket alerts.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::duration::PromDuration;
use crate::error::SpecError;
use crate::spec::{AlertSettings, Sli, Slo, SloSpec, substitute_window};
use crate::windows::{AlertWindows, BurnWindow};

/// A Prometheus rule file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleFile {
    /// Rule groups, three per SLO (the alerts group is left out when both alerts are off).
    pub groups: Vec<RuleGroup>,
}

/// One rule group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleGroup {
    /// Group name, e.g. `sloth-slo-sli-recordings-<service>-<slo>`.
    pub name: String,
    /// The rules.
    pub rules: Vec<Rule>,
}

/// A recording or alerting rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rule {
    /// Recording rule name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Option<String>,
    /// Alert name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert: Option<String>,
    /// PromQL.
    pub expr: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Annotations (alerts only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// Options for [`generate`].
///
/// | setting | default |
/// |---|---|
/// | period | the spec's own, else 30d |
/// | alert windows | the built-in Google windows for 30d or 28d |
/// | version (the `sloth_version` label) | this crate's version |
/// | extra labels on every rule | none |
#[derive(Debug, Clone, Default)]
pub struct GenerateOptions {
    period: Option<PromDuration>,
    windows: Option<AlertWindows>,
    version: Option<String>,
    extra_labels: BTreeMap<String, String>,
}

impl GenerateOptions {
    /// The defaults above.
    pub fn new() -> Self {
        Self::default()
    }

    /// The SLO period. Defaults to the spec's, else 30d.
    #[must_use]
    pub fn with_period(mut self, period: PromDuration) -> Self {
        self.period = Some(period);
        self
    }

    /// Custom alert windows (their period wins). Defaults to the built-ins.
    #[must_use]
    pub fn with_windows(mut self, windows: AlertWindows) -> Self {
        self.windows = Some(windows);
        self
    }

    /// The `sloth_version` label. Defaults to this crate's version.
    #[must_use]
    pub fn with_version(mut self, version: impl Into<String>) -> Self {
        self.version = Some(version.into());
        self
    }

    /// A label added to every rule. Defaults to none.
    #[must_use]
    pub fn with_label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.extra_labels.insert(key.into(), value.into());
        self
    }
}

/// Generates the rule file for `spec`.
///
/// # Errors
///
/// [`SpecError::Invalid`] when the period has no built-in windows (only 30d
/// and 28d do) and none were given.
pub fn generate(spec: &SloSpec, options: &GenerateOptions) -> Result<RuleFile, SpecError> {
    let windows = match (&options.windows, options.period.or(spec.period)) {
        (Some(w), _) => *w,
        (None, period) => {
            let period =
                period.unwrap_or_else(|| PromDuration::parse("30d").expect("a valid literal"));
            AlertWindows::builtin(period).ok_or_else(|| {
                SpecError::invalid(
                    "options",
                    "period",
                    format!("{period} has no built-in alert windows (30d and 28d do); give AlertWindows for it"),
                )
            })?
        }
    };
    let version = options
        .version
        .clone()
        .unwrap_or_else(|| env!("CARGO_PKG_VERSION").to_owned());
    let mut groups = Vec::with_capacity(spec.slos.len() * 3);
    for slo in &spec.slos {
        let g = SloRules::new(spec, slo, &windows, &options.extra_labels);
        groups.push(g.sli_group());
        groups.push(g.meta_group(spec, &version));
        if let Some(alerts) = g.alert_group() {
            groups.push(alerts);
        }
    }
    Ok(RuleFile { groups })
}

/// Alerts that can never fire: their threshold error ratio,
/// `factor × (1 − objective)`, is above 100%. Returns (SLO, tier, ratio).
///
/// # Errors
///
/// As [`generate`].
pub fn unreachable_alerts(
    spec: &SloSpec,
    options: &GenerateOptions,
) -> Result<Vec<(String, &'static str, f64)>, SpecError> {
    // Resolves the windows exactly as generate does (and fails the same way).
    generate(spec, options)?;
    let windows = match (&options.windows, options.period.or(spec.period)) {
        (Some(w), _) => *w,
        (None, period) => AlertWindows::builtin(
            period.unwrap_or_else(|| PromDuration::parse("30d").expect("a valid literal")),
        )
        .expect("generate succeeded, so built-in windows exist"),
    };
    let mut out = Vec::new();
    for slo in &spec.slos {
        let budget = (100.0 - slo.objective) / 100.0;
        let tiers = [
            ("page_quick", windows.page_quick, slo.alerting.page.disabled),
            ("page_slow", windows.page_slow, slo.alerting.page.disabled),
            (
                "ticket_quick",
                windows.ticket_quick,
                slo.alerting.ticket.disabled,
            ),
            (
                "ticket_slow",
                windows.ticket_slow,
                slo.alerting.ticket.disabled,
            ),
        ];
        for (tier, w, disabled) in tiers {
            let ratio = w.factor(windows.period) * budget;
            if !disabled && ratio > 1.0 {
                out.push((slo.name.clone(), tier, ratio));
            }
        }
    }
    Ok(out)
}

impl RuleFile {
    /// The rule file as YAML, with a generated-code header.
    pub fn to_yaml(&self) -> String {
        let body = serde_norway::to_string(self).expect("rule files are plain maps and strings");
        format!("# Code generated by Flightdeck (Sloth-compatible rules). DO NOT EDIT.\n{body}")
    }
}

struct SloRules<'a> {
    slo: &'a Slo,
    id: String,
    service: &'a str,
    windows: &'a AlertWindows,
    base_labels: BTreeMap<String, String>,
    selector: String,
}

fn with(mut m: BTreeMap<String, String>, k: &str, v: &str) -> BTreeMap<String, String> {
    m.insert(k.to_owned(), v.to_owned());
    m
}

impl<'a> SloRules<'a> {
    fn new(
        spec: &'a SloSpec,
        slo: &'a Slo,
        windows: &'a AlertWindows,
        extra: &BTreeMap<String, String>,
    ) -> Self {
        let id = format!("{}-{}", spec.service, slo.name);
        let mut base_labels = extra.clone();
        base_labels.extend(slo.labels.clone());
        base_labels.insert("sloth_id".into(), id.clone());
        base_labels.insert("sloth_service".into(), spec.service.clone());
        base_labels.insert("sloth_slo".into(), slo.name.clone());
        let selector = format!(
            "sloth_id=\"{id}\", sloth_service=\"{}\", sloth_slo=\"{}\"",
            spec.service, slo.name
        );
        Self {
            slo,
            id,
            service: &spec.service,
            windows,
            base_labels,
            selector,
        }
    }

    /// The shortest alert window: the base of the period ratio and current burn rate.
    fn shortest(&self) -> PromDuration {
        self.windows.all_windows()[0]
    }

    fn ratio_name(window: PromDuration) -> String {
        format!("slo:sli_error:ratio_rate{window}")
    }

    fn sli_group(&self) -> RuleGroup {
        let mut rules: Vec<Rule> = self
            .windows
            .all_windows()
            .into_iter()
            .map(|w| {
                let ws = w.to_string();
                let expr = match &self.slo.sli {
                    Sli::Events {
                        error_query,
                        total_query,
                    } => format!(
                        "({})\n/\n({})\n",
                        substitute_window(error_query, &ws),
                        substitute_window(total_query, &ws)
                    ),
                    Sli::Raw { error_ratio_query } => {
                        format!("({})", substitute_window(error_ratio_query, &ws))
                    }
                };
                Rule {
                    record: Some(Self::ratio_name(w)),
                    alert: None,
                    expr,
                    labels: with(self.base_labels.clone(), "sloth_window", &ws),
                    annotations: None,
                }
            })
            .collect();
        // The period ratio, "optimized" as Sloth does: the mean of the shortest
        // window's ratios (5m for every Sloth window set).
        let p = self.windows.period.to_string();
        let five = Self::ratio_name(self.shortest());
        rules.push(Rule {
            record: Some(Self::ratio_name(self.windows.period)),
            alert: None,
            expr: format!(
                "sum_over_time({five}{{{sel}}}[{p}])\n/ ignoring (sloth_window)\ncount_over_time({five}{{{sel}}}[{p}])\n",
                sel = self.selector
            ),
            labels: with(self.base_labels.clone(), "sloth_window", &p),
            annotations: None,
        });
        RuleGroup {
            name: format!("sloth-slo-sli-recordings-{}", self.id),
            rules,
        }
    }

    fn meta_group(&self, spec: &SloSpec, version: &str) -> RuleGroup {
        let objective_ratio = self.slo.objective / 100.0;
        let sel = &self.selector;
        let record = |name: &str, expr: String, labels: BTreeMap<String, String>| Rule {
            record: Some(name.to_owned()),
            alert: None,
            expr,
            labels,
            annotations: None,
        };
        let burn = |ratio: String| {
            format!(
                "{ratio}{{{sel}}}\n/ on(sloth_id, sloth_slo, sloth_service) group_left\nslo:error_budget:ratio{{{sel}}}\n"
            )
        };
        let mut info = self.base_labels.clone();
        info.insert("sloth_mode".into(), spec.format.mode_label().into());
        info.insert("sloth_objective".into(), format!("{}", self.slo.objective));
        info.insert("sloth_spec".into(), spec.format.spec_label().into());
        info.insert("sloth_version".into(), version.into());
        let l = || self.base_labels.clone();
        let days = self.windows.period.hours() / 24.0;
        RuleGroup {
            name: format!("sloth-slo-meta-recordings-{}", self.id),
            rules: vec![
                record(
                    "slo:objective:ratio",
                    format!("vector({objective_ratio})"),
                    l(),
                ),
                record(
                    "slo:error_budget:ratio",
                    format!("vector(1-{objective_ratio})"),
                    l(),
                ),
                record("slo:time_period:days", format!("vector({days})"), l()),
                record(
                    "slo:current_burn_rate:ratio",
                    burn(Self::ratio_name(self.shortest())),
                    l(),
                ),
                record(
                    "slo:period_burn_rate:ratio",
                    burn(Self::ratio_name(self.windows.period)),
                    l(),
                ),
                record(
                    "slo:period_error_budget_remaining:ratio",
                    format!("1 - slo:period_burn_rate:ratio{{{sel}}}"),
                    l(),
                ),
                record("sloth_slo_info", "vector(1)".into(), info),
            ],
        }
    }

    fn alert_expr(&self, quick: &BurnWindow, slow: &BurnWindow) -> String {
        let budget = (100.0 - self.slo.objective) / 100.0;
        let part = |w: PromDuration, factor: f64| {
            format!(
                "max({}{{{}}} > ({factor} * {budget})) without (sloth_window)",
                Self::ratio_name(w),
                self.selector
            )
        };
        let period = self.windows.period;
        let (fq, fs) = (quick.factor(period), slow.factor(period));
        format!(
            "(\n    {}\n    and\n    {}\n)\nor\n(\n    {}\n    and\n    {}\n)\n",
            part(quick.short, fq),
            part(quick.long, fq),
            part(slow.short, fs),
            part(slow.long, fs)
        )
    }

    fn alert(
        &self,
        severity: &str,
        settings: &AlertSettings,
        quick: &BurnWindow,
        slow: &BurnWindow,
    ) -> Rule {
        let a = &self.slo.alerting;
        let mut labels = a.labels.clone();
        labels.extend(settings.labels.clone());
        labels.insert("sloth_severity".into(), severity.into());
        let mut annotations = BTreeMap::from([
            (
                "title".to_owned(),
                format!("({severity}) {{{{$labels.sloth_service}}}} {{{{$labels.sloth_slo}}}} SLO error budget burn rate is too fast."),
            ),
            (
                "summary".to_owned(),
                "{{$labels.sloth_service}} {{$labels.sloth_slo}} SLO error budget burn rate is over expected.".to_owned(),
            ),
        ]);
        annotations.extend(a.annotations.clone());
        annotations.extend(settings.annotations.clone());
        Rule {
            record: None,
            alert: a.name.clone(),
            expr: self.alert_expr(quick, slow),
            labels,
            annotations: Some(annotations),
        }
    }

    fn alert_group(&self) -> Option<RuleGroup> {
        let a = &self.slo.alerting;
        let w = self.windows;
        let mut rules = Vec::new();
        if !a.page.disabled {
            rules.push(self.alert("page", &a.page, &w.page_quick, &w.page_slow));
        }
        if !a.ticket.disabled {
            rules.push(self.alert("ticket", &a.ticket, &w.ticket_quick, &w.ticket_slow));
        }
        let _ = self.service;
        (!rules.is_empty()).then(|| RuleGroup {
            name: format!("sloth-slo-alerts-{}", self.id),
            rules,
        })
    }
}

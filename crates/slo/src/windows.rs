//! Multiwindow, multi-burn-rate alert windows, in Sloth's `AlertWindows`
//! format, with the Google SRE workbook defaults for 30- and 28-day periods.

use serde::Deserialize;

use crate::duration::PromDuration;
use crate::error::SpecError;

/// One alert: fire when both windows burn faster than `factor`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BurnWindow {
    /// Share of the period's error budget this alert protects, in percent.
    pub error_budget_percent: f64,
    /// The short (reset) window.
    pub short: PromDuration,
    /// The long (detection) window.
    pub long: PromDuration,
}

impl BurnWindow {
    /// The burn-rate factor, computed exactly as Sloth does:
    /// `errorBudgetPercent * period.Hours() / 100 / longWindow.Hours()`.
    pub fn factor(&self, period: PromDuration) -> f64 {
        self.error_budget_percent * period.hours() / 100.0 / self.long.hours()
    }
}

/// The four alert windows for one SLO period.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AlertWindows {
    /// The SLO period these windows are for.
    pub period: PromDuration,
    /// Page, fast burn (SRE workbook: 2% in 1h/5m).
    pub page_quick: BurnWindow,
    /// Page, slow burn (5% in 6h/30m).
    pub page_slow: BurnWindow,
    /// Ticket, fast burn (10% in 1d/2h).
    pub ticket_quick: BurnWindow,
    /// Ticket, slow burn (10% in 3d/6h).
    pub ticket_slow: BurnWindow,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct WindowsDoc {
    api_version: String,
    kind: String,
    spec: WindowsSpec,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct WindowsSpec {
    slo_period: String,
    page: Pair,
    ticket: Pair,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Pair {
    quick: RawWindow,
    slow: RawWindow,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawWindow {
    error_budget_percent: f64,
    short_window: String,
    long_window: String,
}

impl AlertWindows {
    /// The SRE workbook windows for a 30-day period (factors 14.4 / 6 / 3 / 1).
    pub fn google_30d() -> Self {
        Self::from_yaml(
            include_str!("windows/google-30d.yaml"),
            "built-in google-30d",
        )
        .expect("the built-in 30d windows are valid")
    }

    /// The same budget shares for a 28-day period (factors 13.44 / 5.6 / 2.8 / 0.93).
    pub fn google_28d() -> Self {
        Self::from_yaml(
            include_str!("windows/google-28d.yaml"),
            "built-in google-28d",
        )
        .expect("the built-in 28d windows are valid")
    }

    /// The built-in windows for `period` (30d or 28d), if there are any.
    pub fn builtin(period: PromDuration) -> Option<Self> {
        [Self::google_30d(), Self::google_28d()]
            .into_iter()
            .find(|w| w.period == period)
    }

    /// Parses a Sloth `sloth.slok.dev/v1 AlertWindows` document.
    ///
    /// # Errors
    ///
    /// [`SpecError`] naming the origin and field for bad YAML, wrong kind,
    /// bad durations or budget percentages outside (0, 100].
    pub fn from_yaml(text: &str, origin: &str) -> Result<Self, SpecError> {
        Self::read_yaml(text, origin).map_err(|e| e.located_in(text))
    }

    fn read_yaml(text: &str, origin: &str) -> Result<Self, SpecError> {
        SpecError::check_nesting(text, origin)?;
        let doc: WindowsDoc = serde_norway::from_str(text).map_err(|e| SpecError::Parse {
            origin: origin.to_owned(),
            message: e.to_string(),
        })?;
        if doc.api_version != "sloth.slok.dev/v1" || doc.kind != "AlertWindows" {
            return Err(SpecError::invalid(
                origin,
                "apiVersion/kind",
                format!(
                    "{}/{} is not sloth.slok.dev/v1 AlertWindows",
                    doc.api_version, doc.kind
                ),
            ));
        }
        let dur = |field: &str, v: &str| {
            PromDuration::parse(v).map_err(|m| SpecError::invalid(origin, field, m))
        };
        let win = |field: &str, w: &RawWindow| -> Result<BurnWindow, SpecError> {
            if !(w.error_budget_percent > 0.0 && w.error_budget_percent <= 100.0) {
                return Err(SpecError::invalid(
                    origin,
                    format!("{field}.errorBudgetPercent"),
                    format!("{} is not within (0, 100]", w.error_budget_percent),
                ));
            }
            let short = dur(&format!("{field}.shortWindow"), &w.short_window)?;
            let long = dur(&format!("{field}.longWindow"), &w.long_window)?;
            if short >= long {
                return Err(SpecError::invalid(
                    origin,
                    format!("{field}.shortWindow"),
                    format!("{short} must be shorter than the long window {long}"),
                ));
            }
            Ok(BurnWindow {
                error_budget_percent: w.error_budget_percent,
                short,
                long,
            })
        };
        let s = &doc.spec;
        Ok(Self {
            period: dur("spec.sloPeriod", &s.slo_period)?,
            page_quick: win("spec.page.quick", &s.page.quick)?,
            page_slow: win("spec.page.slow", &s.page.slow)?,
            ticket_quick: win("spec.ticket.quick", &s.ticket.quick)?,
            ticket_slow: win("spec.ticket.slow", &s.ticket.slow)?,
        })
    }

    /// Every window a rule set needs, shortest first, without repeats.
    pub fn all_windows(&self) -> Vec<PromDuration> {
        let mut v: Vec<PromDuration> = [
            self.page_quick,
            self.page_slow,
            self.ticket_quick,
            self.ticket_slow,
        ]
        .iter()
        .flat_map(|w| [w.short, w.long])
        .collect();
        v.sort();
        v.dedup();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factors_match_sloth_to_the_last_bit() {
        let w = AlertWindows::google_30d();
        let f: Vec<f64> = [w.page_quick, w.page_slow, w.ticket_quick, w.ticket_slow]
            .iter()
            .map(|x| x.factor(w.period))
            .collect();
        assert_eq!(f, [14.4, 6.0, 3.0, 1.0]);
        let w = AlertWindows::google_28d();
        let f: Vec<f64> = [w.page_quick, w.page_slow, w.ticket_quick, w.ticket_slow]
            .iter()
            .map(|x| x.factor(w.period))
            .collect();
        assert_eq!(
            f,
            [
                13.44,
                5.6000000000000005,
                2.8000000000000003,
                0.9333333333333333
            ]
        );
        let names: Vec<String> = AlertWindows::google_30d()
            .all_windows()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(names, ["5m", "30m", "1h", "2h", "6h", "1d", "3d"]);
    }

    #[test]
    fn bad_windows_name_the_field() {
        let text = include_str!("windows/google-30d.yaml")
            .replace("errorBudgetPercent: 5", "errorBudgetPercent: 150");
        let e = AlertWindows::from_yaml(&text, "w.yaml").unwrap_err();
        assert_eq!(
            e.to_string(),
            "w.yaml:14:7: spec.page.slow.errorBudgetPercent: 150 is not within (0, 100]"
        );
        let text =
            include_str!("windows/google-30d.yaml").replace("shortWindow: 5m", "shortWindow: 5x");
        assert!(
            AlertWindows::from_yaml(&text, "w.yaml")
                .unwrap_err()
                .to_string()
                .contains("w.yaml:11:7: spec.page.quick.shortWindow")
        );
    }
}

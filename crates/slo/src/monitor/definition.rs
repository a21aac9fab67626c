//! What an SLO is: its SLI, objective, window (rolling or calendar) and
//! budgeting, validated.

use super::*;

/// A calendar-aligned SLO window (UTC), as OpenSLO's `isRolling: false`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Calendar {
    /// From midnight on the first of the current month.
    Month,
    /// From midnight on the current ISO week's Monday.
    Week,
}

impl Calendar {
    /// Seconds from the start of the current period to `now`.
    pub(super) fn elapsed_secs(self, now: u64) -> u64 {
        let days = now / 86_400;
        let start_day = match self {
            Calendar::Month => {
                let (_, _, day) = flightdeck_obs_core::civil_from_days(days as i64);
                days - u64::from(day - 1)
            }
            // 1970-01-01 was a Thursday: (days + 3) % 7 is 0 on Mondays.
            Calendar::Week => days - (days + 3) % 7,
        };
        now - start_day * 86_400 + 1
    }
}

/// How the error budget is counted (OpenSLO's `budgetingMethod`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum Budgeting {
    /// Good events / all events. The default.
    Occurrences,
    /// Good one-minute slices / slices with events, where a slice is good when
    /// its own ratio is at least `slice_target`.
    Timeslices {
        /// The share of good events that makes a minute good, in (0, 1].
        slice_target: f64,
    },
}

/// An SLO evaluated in process.
#[derive(Debug, Clone, PartialEq)]
pub struct SloDefinition {
    /// How the SLI and budget count: occurrences or timeslices.
    pub budgeting: Budgeting,
    /// Name.
    pub name: String,
    /// What the SLO promises, for people.
    pub description: String,
    /// Labels for dashboards and alert routing.
    pub labels: std::collections::BTreeMap<String, String>,
    /// A calendar window instead of the rolling `window`; alert tiers still
    /// use their rolling windows.
    pub calendar: Option<Calendar>,
    /// What counts as good.
    pub sli: SliKind,
    /// Objective as a ratio, e.g. 0.999.
    pub objective: f64,
    /// Rolling window, e.g. 30d.
    pub window: PromDuration,
    /// Alert windows (their factors are computed for `window`).
    pub alerts: AlertWindows,
    /// No alert fires while the long window holds fewer events than this.
    pub min_events: u64,
}

impl SloDefinition {
    /// A rolling-window SLO with the built-in alert windows for 30d or 28d.
    ///
    /// # Errors
    ///
    /// [`SpecError::Invalid`] for an objective outside (0, 1), a window
    /// without built-in alert windows, or a non-finite threshold.
    pub fn new(
        name: &str,
        sli: SliKind,
        objective: f64,
        window: PromDuration,
    ) -> Result<Self, SpecError> {
        let alerts = AlertWindows::builtin(window).ok_or_else(|| {
            SpecError::invalid(
                name,
                "window",
                format!("{window} has no built-in alert windows; use with_alert_windows"),
            )
        })?;
        Self::with_alert_windows(name, sli, objective, alerts)
    }

    /// An SLO over `alerts.period` with custom alert windows.
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new).
    pub fn with_alert_windows(
        name: &str,
        sli: SliKind,
        objective: f64,
        alerts: AlertWindows,
    ) -> Result<Self, SpecError> {
        if !(objective > 0.0 && objective < 1.0) {
            return Err(SpecError::invalid(
                name,
                "objective",
                format!("{objective} is not within (0, 1), e.g. 0.999"),
            ));
        }
        let threshold_ok = match sli {
            SliKind::Availability => true,
            SliKind::Latency { threshold_ms } => threshold_ms.is_finite() && threshold_ms > 0.0,
            SliKind::Quality { threshold } => threshold.is_finite(),
        };
        if !threshold_ok {
            return Err(SpecError::invalid(
                name,
                "sli",
                format!("{sli:?} needs a finite, positive threshold"),
            ));
        }
        Ok(Self {
            budgeting: Budgeting::Occurrences,
            name: name.to_owned(),
            description: String::new(),
            labels: std::collections::BTreeMap::new(),
            calendar: None,
            sli,
            objective,
            window: alerts.period,
            alerts,
            min_events: 10,
        })
    }

    /// Sets the description. Defaults to empty.
    #[must_use]
    pub fn with_description(mut self, text: impl Into<String>) -> Self {
        self.description = text.into();
        self
    }

    /// Adds a label. Defaults to none.
    #[must_use]
    pub fn with_label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// Measures the SLI and budget over the current calendar month or week
    /// instead of the rolling window. Defaults to rolling.
    #[must_use]
    pub fn with_calendar(mut self, calendar: Calendar) -> Self {
        self.calendar = Some(calendar);
        self
    }

    /// Counts the budget in one-minute slices, each good when at least
    /// `slice_target` of its events are good. Alert burn rates stay
    /// occurrence-based (as Sloth's). Defaults to occurrences.
    ///
    /// # Errors
    ///
    /// [`SpecError::Invalid`] unless `slice_target` is within (0, 1].
    pub fn with_timeslices(mut self, slice_target: f64) -> Result<Self, SpecError> {
        if !(slice_target > 0.0 && slice_target <= 1.0) {
            return Err(SpecError::invalid(
                &self.name,
                "slice_target",
                format!("{slice_target} is not within (0, 1]"),
            ));
        }
        self.budgeting = Budgeting::Timeslices { slice_target };
        Ok(self)
    }

    /// Sets the low-traffic guard. Defaults to 10 events in the long window.
    #[must_use]
    pub fn with_min_events(mut self, n: u64) -> Self {
        self.min_events = n;
        self
    }

    /// Alert tiers whose threshold is an error ratio above 100%, so they can never fire.
    pub fn unreachable_alerts(&self) -> Vec<&'static str> {
        self.tiers()
            .into_iter()
            .filter(|t| t.factor * (1.0 - self.objective) > 1.0)
            .map(|t| t.name)
            .collect()
    }

    pub(super) fn tiers(&self) -> Vec<Tier> {
        let a = &self.alerts;
        [
            ("page", "page_quick", a.page_quick),
            ("page", "page_slow", a.page_slow),
            ("ticket", "ticket_quick", a.ticket_quick),
            ("ticket", "ticket_slow", a.ticket_slow),
        ]
        .into_iter()
        .map(|(severity, name, w)| Tier {
            severity,
            name,
            factor: w.factor(a.period),
            short: w.short,
            long: w.long,
        })
        .collect()
    }
}

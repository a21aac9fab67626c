//! What a monitor reports: status, burn rates and alert transitions.

use super::*;

/// A change of an alert's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertTransition {
    /// The SLO.
    pub slo: String,
    /// `page` or `ticket`.
    pub severity: String,
    /// `firing` or `resolved`.
    pub state: String,
    /// The burn rate over the long window that decided it.
    pub burn_rate: f64,
    /// When, in seconds since the Unix epoch.
    pub at_secs: u64,
}

pub(super) type Callback = Box<dyn Fn(&AlertTransition) + Send + Sync>;

/// Burn rate over one alert tier's windows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BurnRate {
    /// Tier name, e.g. `page_quick`.
    pub tier: String,
    /// `page` or `ticket`.
    pub severity: String,
    /// The threshold factor.
    pub factor: f64,
    /// Burn over the short window (error ratio / budget).
    pub short: f64,
    /// Burn over the long window.
    pub long: f64,
    /// Events in the long window.
    pub long_events: u64,
}

/// A snapshot of one SLO, for dashboards and the CLI.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SloStatus {
    /// The SLO.
    pub name: String,
    /// Objective ratio.
    pub objective: f64,
    /// Good / total over the window (`None` with no events).
    pub sli: Option<f64>,
    /// Events in the window.
    pub total_events: u64,
    /// Bad events allowed in the window at the current volume.
    pub error_budget_total: f64,
    /// Bad events so far.
    pub error_budget_consumed: u64,
    /// Share of the budget left (negative when overspent).
    pub error_budget_remaining: f64,
    /// Whether the SLI meets the objective.
    pub compliant: bool,
    /// Burn rates per alert tier.
    pub burn_rates: Vec<BurnRate>,
    /// Seconds until the budget is gone at the fastest long-window burn, if burning.
    pub seconds_to_exhaustion: Option<f64>,
    /// Severities currently firing.
    pub firing: Vec<String>,
}

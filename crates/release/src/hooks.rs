//! Flagger's webhooks: gates that hold a release until they say yes
//! (`confirm-rollout`, `confirm-traffic-increase`, `confirm-promotion`),
//! hooks that run at its moments (`pre-rollout`, `rollout` with each
//! analysis, `post-rollout` at the end), and `rollback`, which aborts the
//! release when it answers yes. A hook is a URL (POST of the release's
//! state as JSON; 2xx is yes) or a local command (exit 0 is yes).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// When a hook runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HookKind {
    /// Gate before the first step.
    ConfirmRollout,
    /// Runs once before the first step; a failure is a failed check.
    PreRollout,
    /// Runs with every analysis; a failure is a failed check.
    Rollout,
    /// Gate before each weight increase.
    ConfirmTrafficIncrease,
    /// Gate before promotion.
    ConfirmPromotion,
    /// Runs once the release is over (promoted or rolled back).
    PostRollout,
    /// Asked every tick; yes aborts the release.
    Rollback,
}

impl HookKind {
    /// Flagger's spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "confirm-rollout" => Self::ConfirmRollout,
            "pre-rollout" => Self::PreRollout,
            "rollout" => Self::Rollout,
            "confirm-traffic-increase" => Self::ConfirmTrafficIncrease,
            "confirm-promotion" => Self::ConfirmPromotion,
            "post-rollout" => Self::PostRollout,
            "rollback" => Self::Rollback,
            _ => return None,
        })
    }
}

/// What a hook calls.
#[derive(Debug, Clone, PartialEq)]
pub enum HookTarget {
    /// POST the payload; 2xx is yes.
    Web {
        /// The URL.
        url: String,
    },
    /// Run a program with the payload on stdin; exit 0 is yes.
    Command {
        /// Program and arguments.
        argv: Vec<String>,
    },
}

/// One webhook.
#[derive(Debug, Clone, PartialEq)]
pub struct Hook {
    /// Its name (in the ledger and messages).
    pub name: String,
    /// When it runs.
    pub kind: HookKind,
    /// What it calls.
    pub target: HookTarget,
    /// How long it may take (a timeout is a no).
    pub timeout: Duration,
}

impl Hook {
    /// Calls the hook with `payload`: `Ok(true)` for yes, `Ok(false)` for
    /// no, `Err` when it could not be asked (also a no for gates).
    ///
    /// # Errors
    ///
    /// A message naming the hook and what went wrong.
    pub fn call(&self, payload: &Value) -> Result<bool, String> {
        let body = payload.to_string();
        match &self.target {
            HookTarget::Web { url } => {
                let agent = ureq::Agent::config_builder()
                    .timeout_global(Some(self.timeout))
                    .http_status_as_error(false)
                    .build()
                    .new_agent();
                let r = agent
                    .post(url)
                    .content_type("application/json")
                    .send(body)
                    .map_err(|e| format!("hook {}: {url}: {e}", self.name))?;
                Ok(r.status().is_success())
            }
            HookTarget::Command { argv } => {
                crate::provider::run_bounded(argv, Some(body.as_bytes()), self.timeout)
                    .map(|(ok, _)| ok)
                    .map_err(|e| {
                        let prog = argv.first().map_or("", String::as_str);
                        format!("hook {}: {prog}: {e}", self.name)
                    })
            }
        }
    }
}

/// Runs every hook of `kind`: `None` when all said yes, else the first
/// refusal's explanation.
pub fn first_refusal(hooks: &[Hook], kind: HookKind, payload: &Value) -> Option<String> {
    hooks
        .iter()
        .filter(|h| h.kind == kind)
        .find_map(|h| match h.call(payload) {
            Ok(true) => None,
            Ok(false) => Some(format!("{} hook {:?} said no", kind_name(kind), h.name)),
            Err(e) => Some(e),
        })
}

/// The first hook of `kind` that says yes (for `rollback`).
pub fn first_yes(hooks: &[Hook], kind: HookKind, payload: &Value) -> Option<String> {
    hooks
        .iter()
        .filter(|h| h.kind == kind)
        .find(|h| h.call(payload) == Ok(true))
        .map(|h| h.name.clone())
}

fn kind_name(k: HookKind) -> &'static str {
    match k {
        HookKind::ConfirmRollout => "confirm-rollout",
        HookKind::PreRollout => "pre-rollout",
        HookKind::Rollout => "rollout",
        HookKind::ConfirmTrafficIncrease => "confirm-traffic-increase",
        HookKind::ConfirmPromotion => "confirm-promotion",
        HookKind::PostRollout => "post-rollout",
        HookKind::Rollback => "rollback",
    }
}

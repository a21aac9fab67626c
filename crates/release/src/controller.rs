//! The canary controller (`CanaryManager`): Pending → Progressing(weight) →
//! Paused → Promoting → Succeeded, or RollingBack → RolledBack (with the
//! reason) / Failed. Every transition and every analysis result goes to the
//! ledger before the router acts on it, so a controller killed at any
//! moment resumes without promoting twice or losing a rollback.

use std::time::Duration;

use serde_json::{Value, json};

use crate::error::ReleaseError;
use crate::hooks::{Hook, HookKind, first_refusal, first_yes};
use crate::ledger::{Entry, EntryKind, Ledger, ReleasePhase, ReleaseState, now_ms};
use crate::progression::{CheckOutcome, Decision, Progression, Status};
use crate::router::Router;

/// One analysis's outcome, with the explanation and the details (the
/// judge's report, each metric's assessment) the ledger keeps.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckResult {
    /// Pass, fail, no data or inconclusive.
    pub outcome: CheckOutcome,
    /// Why, in one line (`Metric "error_rate" assessed Failed due to …`).
    pub message: Option<String>,
    /// Details for the ledger.
    pub detail: Value,
}

/// What runs the checks at each tick.
pub trait Analyzer {
    /// Analyses the canary at `weight` percent of traffic.
    fn check(&mut self, weight: u32) -> CheckResult;
}

impl<F: FnMut(u32) -> CheckResult> Analyzer for F {
    fn check(&mut self, weight: u32) -> CheckResult {
        self(weight)
    }
}

/// The canary controller of one environment.
#[derive(Debug)]
pub struct CanaryManager {
    ledger: Ledger,
    router: Box<dyn Router>,
    progression: Progression,
    rollback_window: Duration,
    hooks: Vec<Hook>,
}

fn entry(state: &ReleaseState, kind: EntryKind, phase: ReleasePhase, weight: u32) -> Entry {
    Entry {
        seq: 0,
        time_ms: 0,
        release: state.release.clone(),
        kind,
        phase,
        weight,
        failed_checks: state.failed_checks,
        reason: None,
        detail: Value::Null,
    }
}

impl CanaryManager {
    /// A controller writing to `ledger` and moving traffic with `router`.
    pub fn new(ledger: Ledger, router: Box<dyn Router>, progression: Progression) -> Self {
        Self {
            ledger,
            router,
            progression,
            rollback_window: Duration::from_secs(600),
            hooks: Vec::new(),
        }
    }

    /// Flagger's webhooks: gates, pre/post-rollout and rollout hooks, and
    /// rollback hooks.
    #[must_use]
    pub fn with_hooks(mut self, hooks: Vec<Hook>) -> Self {
        self.hooks = hooks;
        self
    }

    fn payload(s: &ReleaseState) -> Value {
        json!({
            "name": s.release,
            "phase": s.phase,
            "weight": s.weight,
            "failed_checks": s.failed_checks,
            "stable_version": s.stable_version,
            "canary_version": s.canary_version,
        })
    }

    /// Records that a gate holds the release (once per distinct reason).
    fn held(&self, s: &ReleaseState, why: String) -> Result<ReleaseState, ReleaseError> {
        if s.reason.as_deref() == Some(why.as_str()) {
            return Ok(s.clone());
        }
        let mut e = entry(s, EntryKind::Hook, s.phase, s.weight);
        e.reason = Some(why);
        self.ledger.append_after(e, Some(s.seq))
    }

    /// Runs the post-rollout hooks once the release is over (best effort;
    /// a refusal is recorded).
    fn post_rollout(&self, s: ReleaseState) -> Result<ReleaseState, ReleaseError> {
        if !s.phase.is_terminal() {
            return Ok(s);
        }
        match first_refusal(&self.hooks, HookKind::PostRollout, &Self::payload(&s)) {
            None => Ok(s),
            Some(why) => {
                let mut e = entry(&s, EntryKind::Hook, s.phase, s.weight);
                e.reason = Some(why);
                self.ledger.append(e)
            }
        }
    }

    /// How long after a promotion `rollback` still works fast (600 s).
    #[must_use]
    pub fn with_rollback_window(mut self, window: Duration) -> Self {
        self.rollback_window = window;
        self
    }

    /// The ledger.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// The progression settings.
    pub fn progression(&self) -> &Progression {
        &self.progression
    }

    /// The current state.
    ///
    /// # Errors
    ///
    /// As [`Ledger::state`]; [`ReleaseError::Invalid`] before any release.
    pub fn state(&self) -> Result<ReleaseState, ReleaseError> {
        self.ledger.state()?.ok_or_else(|| {
            ReleaseError::Invalid("no release has started in this environment".into())
        })
    }

    /// Starts a release of `canary_version` over `stable_version`.
    ///
    /// # Errors
    ///
    /// [`ReleaseError::Invalid`] while another release is still running.
    pub fn start(
        &self,
        release: &str,
        stable_version: &str,
        canary_version: &str,
    ) -> Result<ReleaseState, ReleaseError> {
        if let Some(s) = self.ledger.state()?
            && !s.phase.is_terminal()
        {
            return Err(ReleaseError::Invalid(format!(
                "release {} is still {:?}; promote, abort or wait for it first",
                flightdeck_obs_core::shown(&s.release),
                s.phase
            )));
        }
        self.ledger.append(Entry {
            seq: 0,
            time_ms: 0,
            release: release.to_owned(),
            kind: EntryKind::Start,
            phase: ReleasePhase::Pending,
            weight: 0,
            failed_checks: 0,
            reason: None,
            detail: json!({"stable_version": stable_version, "canary_version": canary_version, "router": self.router.name()}),
        })
    }

    /// Puts the router where the ledger says traffic is (after a restart).
    ///
    /// # Errors
    ///
    /// The router's error.
    pub fn reconcile(&self) -> Result<ReleaseState, ReleaseError> {
        let s = self.state()?;
        match s.phase {
            ReleasePhase::Pending | ReleasePhase::Progressing | ReleasePhase::Paused => {
                self.router.set_weight(s.weight)?;
            }
            _ => {}
        }
        Ok(s)
    }

    /// One step of the loop: finish a promotion or rollback in progress,
    /// or analyse and decide. Returns the state after it.
    ///
    /// # Errors
    ///
    /// A router or ledger error (recorded in the ledger when it can be;
    /// the next tick tries again).
    pub fn tick(&self, analyzer: &mut dyn Analyzer) -> Result<ReleaseState, ReleaseError> {
        let s = self.state()?;
        if matches!(
            s.phase,
            ReleasePhase::Pending | ReleasePhase::Progressing | ReleasePhase::Paused
        ) && let Some(name) = first_yes(&self.hooks, HookKind::Rollback, &Self::payload(&s))
        {
            let s = self.abort(
                &format!("rollback hook {name}"),
                "the rollback hook said yes",
            )?;
            return self.post_rollout(s);
        }
        let after = match s.phase {
            ReleasePhase::Succeeded | ReleasePhase::RolledBack | ReleasePhase::Failed => {
                return Ok(s);
            }
            ReleasePhase::Paused => return Ok(s),
            ReleasePhase::Promoting => self.finish_promotion(&s),
            ReleasePhase::RollingBack => self.finish_rollback(&s),
            ReleasePhase::Pending => self.begin(&s),
            ReleasePhase::Progressing => self.analyse(&s, analyzer),
        }?;
        self.post_rollout(after)
    }

    /// Pending: the confirm-rollout gate, the pre-rollout hooks, then the
    /// first step.
    fn begin(&self, s: &ReleaseState) -> Result<ReleaseState, ReleaseError> {
        let payload = Self::payload(s);
        if let Some(why) = first_refusal(&self.hooks, HookKind::ConfirmRollout, &payload) {
            return self.held(s, why);
        }
        if let Some(why) = first_refusal(&self.hooks, HookKind::PreRollout, &payload) {
            let failed = s.failed_checks + 1;
            let mut e = entry(s, EntryKind::Analysis, ReleasePhase::Pending, 0);
            e.failed_checks = failed;
            e.reason = Some(why.clone());
            let s = self.ledger.append_after(e, Some(s.seq))?;
            if failed >= self.progression.threshold {
                let mut e = entry(&s, EntryKind::Transition, ReleasePhase::RollingBack, 0);
                e.reason = Some(format!(
                    "{why}; failed checks ({failed}) reached the threshold ({})",
                    self.progression.threshold
                ));
                let s = self.ledger.append_after(e, Some(s.seq))?;
                return self.finish_rollback(&s);
            }
            return Ok(s);
        }
        let first = self.progression.steps.next(0).unwrap_or(100);
        self.move_to(s, first)
    }

    /// Progressing: analysis and rollout hooks, the decision, and the gates
    /// on moving forward.
    fn analyse(
        &self,
        s: &ReleaseState,
        analyzer: &mut dyn Analyzer,
    ) -> Result<ReleaseState, ReleaseError> {
        let s = s.clone();
        let mut r = analyzer.check(s.weight);
        if let Some(why) = first_refusal(&self.hooks, HookKind::Rollout, &Self::payload(&s)) {
            r.outcome = CheckOutcome::Fail;
            r.message = Some(match r.message {
                Some(m) => format!("{m}; {why}"),
                None => why,
            });
        }
        let since = Duration::from_millis(now_ms().saturating_sub(s.progressed_ms));
        let (mut decision, status) = self.progression.decide(
            Status {
                weight: s.weight,
                failed_checks: s.failed_checks,
            },
            r.outcome,
            since,
        );
        let gate = match decision {
            Decision::SetWeight { .. } => Some(HookKind::ConfirmTrafficIncrease),
            Decision::Promote => Some(HookKind::ConfirmPromotion),
            _ => None,
        };
        if let Some(kind) = gate
            && let Some(why) = first_refusal(&self.hooks, kind, &Self::payload(&s))
        {
            decision = Decision::Wait { reason: why };
        }
        let mut e = entry(&s, EntryKind::Analysis, ReleasePhase::Progressing, s.weight);
        e.failed_checks = status.failed_checks;
        e.reason.clone_from(&r.message);
        e.detail = json!({
            "outcome": r.outcome,
            "decision": decision,
            "analysis": r.detail,
        });
        let s = self.ledger.append_after(e, Some(s.seq))?;
        match decision {
            Decision::SetWeight { weight } => self.move_to(&s, weight),
            Decision::Hold { .. } | Decision::Wait { .. } => Ok(s),
            Decision::Promote => {
                let mut e = entry(&s, EntryKind::Transition, ReleasePhase::Promoting, s.weight);
                e.reason = Some("every check passed at the last step".into());
                let s = self.ledger.append_after(e, Some(s.seq))?;
                self.finish_promotion(&s)
            }
            Decision::Pause { reason } => {
                let mut e = entry(&s, EntryKind::Transition, ReleasePhase::Paused, s.weight);
                e.reason = Some(match &r.message {
                    Some(m) => format!("{reason}: {m}"),
                    None => reason,
                });
                self.ledger.append_after(e, Some(s.seq))
            }
            Decision::Rollback { reason } => {
                let mut e = entry(
                    &s,
                    EntryKind::Transition,
                    ReleasePhase::RollingBack,
                    s.weight,
                );
                e.reason = Some(match &r.message {
                    Some(m) => format!("{m}; {reason}"),
                    None => reason,
                });
                let s = self.ledger.append_after(e, Some(s.seq))?;
                self.finish_rollback(&s)
            }
        }
    }

    fn move_to(&self, s: &ReleaseState, weight: u32) -> Result<ReleaseState, ReleaseError> {
        if let Err(err) = self.router.set_weight(weight) {
            let mut e = entry(s, EntryKind::Error, s.phase, s.weight);
            e.reason = Some(format!(
                "{} could not move the canary to {weight}%: {err}",
                self.router.name()
            ));
            self.ledger.append(e)?;
            return Err(err);
        }
        let mut e = entry(s, EntryKind::Weight, ReleasePhase::Progressing, weight);
        e.reason = Some(format!("canary at {weight}%"));
        self.append_or_reconcile(e, s.seq)
    }

    /// Appends after `seq`; if another command moved the ledger on in the
    /// meantime, the router is put back where the ledger now says.
    fn append_or_reconcile(&self, e: Entry, seq: u64) -> Result<ReleaseState, ReleaseError> {
        match self.ledger.append_after(e, Some(seq)) {
            Err(ReleaseError::Conflict(why)) => {
                let now = self.state()?;
                match now.phase {
                    ReleasePhase::RollingBack | ReleasePhase::RolledBack => self.router.abort()?,
                    ReleasePhase::Promoting | ReleasePhase::Succeeded => {
                        self.router.set_weight(100)?
                    }
                    _ => self.router.set_weight(now.weight)?,
                }
                Err(ReleaseError::Conflict(why))
            }
            other => other,
        }
    }

    fn finish_promotion(&self, s: &ReleaseState) -> Result<ReleaseState, ReleaseError> {
        if let Err(err) = self.router.set_weight(100) {
            let mut e = entry(s, EntryKind::Error, s.phase, s.weight);
            e.reason = Some(format!("promotion: {err}"));
            self.ledger.append(e)?;
            return Err(err);
        }
        let mut e = entry(s, EntryKind::Transition, ReleasePhase::Succeeded, 100);
        e.reason = Some(format!(
            "{} is the new stable",
            flightdeck_obs_core::shown(&s.canary_version)
        ));
        self.append_or_reconcile(e, s.seq)
    }

    fn finish_rollback(&self, s: &ReleaseState) -> Result<ReleaseState, ReleaseError> {
        if let Err(err) = self.router.abort() {
            let mut e = entry(s, EntryKind::Error, s.phase, s.weight);
            e.reason = Some(format!(
                "rollback: traffic may still reach the canary, retrying: {err}"
            ));
            self.ledger.append(e)?;
            return Err(err);
        }
        let mut e = entry(s, EntryKind::Transition, ReleasePhase::RolledBack, 0);
        e.reason.clone_from(&s.reason);
        self.append_or_reconcile(e, s.seq)
    }

    fn command(
        &self,
        s: &ReleaseState,
        phase: ReleasePhase,
        actor: &str,
        what: &str,
        reason: String,
    ) -> Result<ReleaseState, ReleaseError> {
        let mut e = entry(s, EntryKind::Command, phase, s.weight);
        e.reason = Some(reason);
        e.detail = json!({"command": what, "actor": actor});
        self.ledger.append_after(e, Some(s.seq))
    }

    /// Promotes now (skipping the remaining steps), by `actor`.
    ///
    /// # Errors
    ///
    /// [`ReleaseError::Invalid`] when the release is already over.
    pub fn promote(&self, actor: &str) -> Result<ReleaseState, ReleaseError> {
        let s = self.state()?;
        if s.phase.is_terminal() {
            return Err(ReleaseError::Invalid(format!(
                "release {} is already {:?}",
                flightdeck_obs_core::shown(&s.release),
                s.phase
            )));
        }
        let s = self.command(
            &s,
            ReleasePhase::Promoting,
            actor,
            "promote",
            format!("promoted by {}", flightdeck_obs_core::shown(actor)),
        )?;
        self.finish_promotion(&s)
    }

    /// Aborts: traffic goes back to stable at once.
    ///
    /// # Errors
    ///
    /// [`ReleaseError::Invalid`] when the release is already over; the
    /// router's error (the ledger then says RollingBack, and the next tick
    /// retries).
    pub fn abort(&self, actor: &str, why: &str) -> Result<ReleaseState, ReleaseError> {
        let s = self.state()?;
        if s.phase.is_terminal() {
            return Err(ReleaseError::Invalid(format!(
                "release {} is already {:?}; use rollback after a promotion",
                flightdeck_obs_core::shown(&s.release),
                s.phase
            )));
        }
        let s = self.command(
            &s,
            ReleasePhase::RollingBack,
            actor,
            "abort",
            format!("aborted by {}: {why}", flightdeck_obs_core::shown(actor)),
        )?;
        self.finish_rollback(&s)
    }

    /// Resumes a paused release.
    ///
    /// # Errors
    ///
    /// [`ReleaseError::Invalid`] unless the release is paused.
    pub fn resume(&self, actor: &str) -> Result<ReleaseState, ReleaseError> {
        let s = self.state()?;
        if s.phase != ReleasePhase::Paused {
            return Err(ReleaseError::Invalid(format!(
                "release {} is {:?}, not Paused",
                flightdeck_obs_core::shown(&s.release),
                s.phase
            )));
        }
        self.command(
            &s,
            ReleasePhase::Progressing,
            actor,
            "resume",
            format!("resumed by {}", flightdeck_obs_core::shown(actor)),
        )
    }

    /// Rolls a promoted release back, within the rollback window (the old
    /// stable must still be running; the delivery side keeps it for the
    /// window).
    ///
    /// # Errors
    ///
    /// [`ReleaseError::Invalid`] outside the window or before a promotion
    /// (abort a running release instead).
    pub fn rollback(&self, actor: &str, why: &str) -> Result<ReleaseState, ReleaseError> {
        let s = self.state()?;
        match s.phase {
            ReleasePhase::Succeeded => {
                let age =
                    Duration::from_millis(now_ms().saturating_sub(s.finished_ms.unwrap_or(0)));
                if age >= self.rollback_window {
                    return Err(ReleaseError::Invalid(format!(
                        "release {} was promoted {}s ago, past the rollback window ({}s): deploy the old version as a new release",
                        flightdeck_obs_core::shown(&s.release),
                        age.as_secs(),
                        self.rollback_window.as_secs()
                    )));
                }
            }
            ReleasePhase::RolledBack | ReleasePhase::Failed => {
                return Err(ReleaseError::Invalid(format!(
                    "release {} is already {:?}",
                    flightdeck_obs_core::shown(&s.release),
                    s.phase
                )));
            }
            _ => return self.abort(actor, why),
        }
        let s = self.command(
            &s,
            ReleasePhase::RollingBack,
            actor,
            "rollback",
            format!(
                "rolled back after promotion by {}: {why}",
                flightdeck_obs_core::shown(actor)
            ),
        )?;
        self.finish_rollback(&s)
    }

    /// Ticks every `progression.interval` until the release ends or `stop`
    /// says so; reconciles the router with the ledger first. Router errors
    /// are retried at the next tick.
    ///
    /// # Errors
    ///
    /// A ledger error (the state can no longer be trusted).
    pub fn run(
        &self,
        analyzer: &mut dyn Analyzer,
        stop: &dyn Fn() -> bool,
        mut on_state: impl FnMut(&ReleaseState),
    ) -> Result<ReleaseState, ReleaseError> {
        let _ = self.reconcile();
        loop {
            let s = match self.tick(analyzer) {
                Ok(s) => s,
                Err(ReleaseError::Io { .. } | ReleaseError::Conflict(_)) => self.state()?,
                Err(e) => return Err(e),
            };
            on_state(&s);
            if s.phase.is_terminal() || stop() {
                return Ok(s);
            }
            let deadline = std::time::Instant::now() + self.progression.interval;
            while std::time::Instant::now() < deadline {
                if stop() {
                    return Ok(s);
                }
                std::thread::sleep(Duration::from_millis(50).min(self.progression.interval));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::progression::Steps;
    use crate::router::RecordingRouter;

    #[derive(Debug, Clone)]
    struct Shared(Arc<RecordingRouter>);
    impl Router for Shared {
        fn name(&self) -> &str {
            "recording"
        }
        fn set_weight(&self, w: u32) -> Result<(), ReleaseError> {
            self.0.set_weight(w)
        }
    }

    fn pass(_: u32) -> CheckResult {
        CheckResult {
            outcome: CheckOutcome::Pass,
            message: None,
            detail: Value::Null,
        }
    }

    fn manager(dir: &std::path::Path, router: &Arc<RecordingRouter>) -> CanaryManager {
        CanaryManager::new(
            Ledger::open(dir).unwrap(),
            Box::new(Shared(Arc::clone(router))),
            Progression {
                interval: Duration::from_millis(1),
                steps: Steps::Explicit(vec![5, 25, 100]),
                ..Progression::default()
            },
        )
    }

    #[test]
    fn a_healthy_canary_goes_5_25_100_and_is_promoted() {
        let dir = tempfile::tempdir().unwrap();
        let router = Arc::new(RecordingRouter::default());
        let m = manager(dir.path(), &router);
        m.start("r1", "1.0.0", "1.1.0").unwrap();
        let s = m.run(&mut pass, &|| false, |_| {}).unwrap();
        assert_eq!(s.phase, ReleasePhase::Succeeded);
        // reconcile (0), then 5, 25, 100, then the promotion's 100.
        assert_eq!(router.weights(), [0, 5, 25, 100, 100]);
        assert!(
            m.start("r1", "1.0.0", "1.1.0").is_ok(),
            "a new release may start"
        );
    }

    #[test]
    fn a_failing_check_rolls_back_with_the_reason_in_the_ledger() {
        let dir = tempfile::tempdir().unwrap();
        let router = Arc::new(RecordingRouter::default());
        let m = manager(dir.path(), &router);
        m.start("r1", "1.0.0", "1.1.0").unwrap();
        let mut fail = |_| CheckResult {
            outcome: CheckOutcome::Fail,
            message: Some(
                "Metric \"error_rate\" assessed Failed due to failed (1) > failureLimit (0)".into(),
            ),
            detail: json!({"judge": {"score": 0}}),
        };
        let s = m.run(&mut fail, &|| false, |_| {}).unwrap();
        assert_eq!(s.phase, ReleasePhase::RolledBack);
        assert_eq!(router.weights().last(), Some(&0));
        let reason = s.reason.unwrap();
        assert!(
            reason.starts_with("Metric \"error_rate\" assessed Failed"),
            "{reason}"
        );
        assert!(
            reason.ends_with("failed checks (1) reached the threshold (1)"),
            "{reason}"
        );
        let entries = m.ledger().entries().unwrap();
        assert!(
            entries
                .iter()
                .any(|e| e.detail["analysis"]["judge"]["score"] == 0)
        );
    }

    #[test]
    fn a_kill_between_ledger_and_router_resumes_without_repeating() {
        let dir = tempfile::tempdir().unwrap();
        let router = Arc::new(RecordingRouter::default());
        let m = manager(dir.path(), &router);
        m.start("r1", "1.0.0", "1.1.0").unwrap();
        m.tick(&mut pass).unwrap(); // 5 %
        // The controller decided to promote and recorded it, then died.
        let s = m.state().unwrap();
        let mut e = entry(&s, EntryKind::Transition, ReleasePhase::Promoting, s.weight);
        e.reason = Some("every check passed".into());
        m.ledger().append(e).unwrap();
        drop(m);
        let router2 = Arc::new(RecordingRouter::default());
        let m = manager(dir.path(), &router2);
        let s = m.run(&mut pass, &|| false, |_| {}).unwrap();
        assert_eq!(s.phase, ReleasePhase::Succeeded);
        assert_eq!(
            router2.weights(),
            [100],
            "finished the promotion once, no new analysis"
        );
        let promotions = m
            .ledger()
            .entries()
            .unwrap()
            .iter()
            .filter(|e| e.phase == ReleasePhase::Succeeded)
            .count();
        assert_eq!(promotions, 1);
    }

    #[test]
    fn a_router_error_during_abort_is_recorded_and_retried() {
        let dir = tempfile::tempdir().unwrap();
        let router = Arc::new(RecordingRouter::default());
        let m = manager(dir.path(), &router);
        m.start("r1", "1.0.0", "1.1.0").unwrap();
        m.tick(&mut pass).unwrap();
        router.set_failing(true);
        assert!(m.abort("alice", "looks wrong").is_err());
        let s = m.state().unwrap();
        assert_eq!(
            s.phase,
            ReleasePhase::RollingBack,
            "the rollback is not lost"
        );
        router.set_failing(false);
        let s = m.tick(&mut pass).unwrap();
        assert_eq!(s.phase, ReleasePhase::RolledBack);
        assert_eq!(
            s.reason.as_deref(),
            Some("aborted by \"alice\": looks wrong")
        );
    }

    #[test]
    fn an_abort_from_another_process_during_a_tick_wins() {
        let dir = tempfile::tempdir().unwrap();
        let router = Arc::new(RecordingRouter::default());
        let m = manager(dir.path(), &router);
        m.start("r1", "1.0.0", "1.1.0").unwrap();
        m.tick(&mut pass).unwrap(); // 5 %
        let other = manager(dir.path(), &router);
        // While this tick analyses, an operator aborts from elsewhere.
        let mut abort_midway = |_| {
            other.abort("carol", "pager went off").unwrap();
            pass(0)
        };
        let err = m.tick(&mut abort_midway).unwrap_err();
        assert!(matches!(err, ReleaseError::Conflict(_)), "{err}");
        let s = m.state().unwrap();
        assert_eq!(s.phase, ReleasePhase::RolledBack);
        assert_eq!(router.weights().last(), Some(&0), "{:?}", router.weights());
    }

    fn hook(kind: crate::hooks::HookKind, script: &str) -> crate::hooks::Hook {
        crate::hooks::Hook {
            name: format!("{kind:?}"),
            kind,
            target: crate::hooks::HookTarget::Command {
                argv: vec!["sh".into(), "-c".into(), script.into()],
            },
            timeout: Duration::from_secs(10),
        }
    }

    #[test]
    fn gates_hold_the_release_until_they_say_yes() {
        use crate::hooks::HookKind;
        let dir = tempfile::tempdir().unwrap();
        let router = Arc::new(RecordingRouter::default());
        let go = dir.path().join("go");
        let promote = dir.path().join("promote");
        let m = manager(dir.path(), &router).with_hooks(vec![
            hook(
                HookKind::ConfirmRollout,
                &format!("test -f {}", go.display()),
            ),
            hook(
                HookKind::ConfirmPromotion,
                &format!("test -f {}", promote.display()),
            ),
            hook(HookKind::PostRollout, "exit 1"),
        ]);
        m.start("r1", "1.0.0", "1.1.0").unwrap();
        for _ in 0..3 {
            m.tick(&mut pass).unwrap();
        }
        let s = m.state().unwrap();
        assert_eq!((s.phase, s.weight), (ReleasePhase::Pending, 0));
        assert!(s.reason.unwrap().contains("confirm-rollout hook"));
        // One hold entry, not one per tick.
        assert_eq!(m.ledger().entries().unwrap().len(), 2);
        std::fs::write(&go, "").unwrap();
        for _ in 0..5 {
            m.tick(&mut pass).unwrap();
        }
        let s = m.state().unwrap();
        assert_eq!(
            (s.phase, s.weight),
            (ReleasePhase::Progressing, 100),
            "held before promotion"
        );
        std::fs::write(&promote, "").unwrap();
        let s = m.tick(&mut pass).unwrap();
        assert_eq!(s.phase, ReleasePhase::Succeeded);
        let last = m.ledger().entries().unwrap().pop().unwrap();
        assert_eq!(
            last.kind,
            EntryKind::Hook,
            "the failing post-rollout hook is recorded"
        );
    }

    #[test]
    fn a_failing_pre_rollout_or_rollout_hook_fails_the_check_and_a_rollback_hook_aborts() {
        use crate::hooks::HookKind;
        let dir = tempfile::tempdir().unwrap();
        let router = Arc::new(RecordingRouter::default());
        let m = manager(dir.path(), &router).with_hooks(vec![hook(HookKind::PreRollout, "exit 1")]);
        m.start("r1", "1.0.0", "1.1.0").unwrap();
        let s = m.tick(&mut pass).unwrap();
        assert_eq!(s.phase, ReleasePhase::RolledBack);
        assert!(
            s.reason.unwrap().contains("pre-rollout hook"),
            "never got traffic"
        );

        let dir = tempfile::tempdir().unwrap();
        let m = manager(dir.path(), &router).with_hooks(vec![hook(HookKind::Rollout, "exit 1")]);
        m.start("r2", "1.0.0", "1.1.0").unwrap();
        m.tick(&mut pass).unwrap();
        let s = m.tick(&mut pass).unwrap();
        assert_eq!(s.phase, ReleasePhase::RolledBack);
        assert!(s.reason.unwrap().contains("rollout hook"));

        let dir = tempfile::tempdir().unwrap();
        let flag = dir.path().join("abort");
        let m = manager(dir.path(), &router).with_hooks(vec![hook(
            HookKind::Rollback,
            &format!("test -f {}", flag.display()),
        )]);
        m.start("r3", "1.0.0", "1.1.0").unwrap();
        m.tick(&mut pass).unwrap();
        std::fs::write(&flag, "").unwrap();
        let s = m.tick(&mut pass).unwrap();
        assert_eq!(s.phase, ReleasePhase::RolledBack);
        assert!(s.reason.unwrap().contains("rollback hook"));
        assert_eq!(router.weights().last(), Some(&0));
    }

    #[test]
    fn rollback_after_promotion_works_inside_the_window_only() {
        let dir = tempfile::tempdir().unwrap();
        let router = Arc::new(RecordingRouter::default());
        let m = manager(dir.path(), &router);
        m.start("r1", "1.0.0", "1.1.0").unwrap();
        m.run(&mut pass, &|| false, |_| {}).unwrap();
        let s = m.rollback("bob", "errors after promotion").unwrap();
        assert_eq!(s.phase, ReleasePhase::RolledBack);
        assert_eq!(router.weights().last(), Some(&0));
        let m = manager(dir.path(), &router).with_rollback_window(Duration::ZERO);
        m.start("r2", "1.0.0", "1.2.0").unwrap();
        m.run(&mut pass, &|| false, |_| {}).unwrap();
        let err = m.rollback("bob", "too late").unwrap_err().to_string();
        assert!(err.contains("past the rollback window"), "{err}");
    }
}

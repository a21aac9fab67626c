//! The flag manager: lock-free reads of an atomically swapped configuration,
//! kill switches, staleness and evaluation telemetry.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use arc_swap::ArcSwap;
use flightdeck_experiments::{Context, ExperimentResult, ExposureLogger, FeatureSource};
use flightdeck_obs_core::names::metric;
use flightdeck_obs_core::{Clock, LabelCap, SystemClock};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::counts::{CountBlock, SlotCounters, Tally};
use crate::error::{KillError, LoadError};
use crate::format::{FlagDefinition, FlagMeta, FlagSet};
use crate::kill::{AuditAction, AuditEntry, KillRecord, KillSet, KillStore};
use crate::source::SourceHealth;

static NULL: Value = Value::Null;

/// Every source, in a fixed order (the index of the per-source counters).
const SOURCES: [FeatureSource; 8] = [
    FeatureSource::DefaultValue,
    FeatureSource::Force,
    FeatureSource::Experiment,
    FeatureSource::UnknownFeature,
    FeatureSource::Prerequisite,
    FeatureSource::CyclicPrerequisite,
    FeatureSource::KillSwitch,
    FeatureSource::Disabled,
];

/// `s`'s place in [`SOURCES`]: its discriminant, without a search whose
/// branches a rollout's coin flip would mispredict.
fn source_index(s: FeatureSource) -> usize {
    s as usize
}

// `SOURCES` lists the sources in declaration order, so the discriminant is
// the index.
const _: () = {
    let mut i = 0;
    while i < SOURCES.len() {
        assert!(SOURCES[i] as usize == i);
        i += 1;
    }
};

/// Evaluation counters of one flag, registered on its first evaluation.
#[derive(Debug)]
struct FlagCounters {
    by_source: Vec<metrics::Counter>,
    by_variant: Vec<(String, metrics::Counter)>,
}

impl FlagCounters {
    /// The counter of a source (below `SOURCES.len()`) or variant (after).
    fn at(&self, i: usize) -> Option<&metrics::Counter> {
        match i.checked_sub(SOURCES.len()) {
            None => self.by_source.get(i),
            Some(v) => self.by_variant.get(v).map(|(_, c)| c),
        }
    }
}

#[derive(Debug)]
struct Entry {
    meta: FlagMeta,
    position: Option<usize>,
    // The first of the flag's count slots (one per source, then one per
    // variation key), when it has a position.
    slot_base: Option<u32>,
    rules: usize,
    counters: OnceLock<FlagCounters>,
}

#[derive(Debug)]
struct Snapshot {
    flags: FlagSet,
    // Keys come from configuration: the fast non-cryptographic hasher is safe.
    entries: FxHashMap<String, Entry>,
    // Where each position's count slots start, and (last) how many slots
    // there are.
    slot_bases: Vec<u32>,
}

impl Snapshot {
    fn new(mut flags: FlagSet) -> Self {
        // The metadata moves into the entries (a reload of 10k flags should
        // not copy it); the snapshot's `flags.meta` is left empty.
        let meta = std::mem::take(&mut flags.meta);
        let mut slot_bases = Vec::with_capacity(flags.features.len() + 1);
        let mut next = 0u32;
        for (_, f) in flags.features.iter() {
            slot_bases.push(next);
            let variations: usize = f.experiments().map(|e| e.variation_keys().len()).sum();
            next = next.saturating_add((SOURCES.len() + variations) as u32);
        }
        slot_bases.push(next);
        let entries = meta
            .into_iter()
            .map(|(k, meta)| {
                let position = flags.features.position(&k);
                let rules = flags.features.get(&k).map_or(0, |f| f.rule_count());
                let entry = Entry {
                    meta,
                    position,
                    slot_base: position.map(|p| slot_bases[p]),
                    rules,
                    counters: OnceLock::new(),
                };
                (k, entry)
            })
            .collect();
        Self {
            flags,
            entries,
            slot_bases,
        }
    }

    /// Frees a replaced snapshot. A large one's features are freed in the
    /// same contiguous shares, on as many threads, as they were compiled, so
    /// each thread frees memory from one compiling thread's heap arena
    /// (under glibc a free takes the lock of the arena it came from).
    fn free(self) {
        let Self { flags, entries, .. } = self;
        crate::format::par_shares(flags.features.into_features(), |_, share| drop(share));
        drop(entries);
    }

    /// How many count slots the flags have.
    fn slots(&self) -> u32 {
        self.slot_bases.last().copied().unwrap_or(0)
    }
}

impl SlotCounters for Snapshot {
    fn counter(&self, slot: u32) -> Option<&metrics::Counter> {
        let position = self
            .slot_bases
            .partition_point(|&b| b <= slot)
            .checked_sub(1)?;
        let key = self.flags.features.key_at(position)?;
        let counters = self.entries.get(key)?.counters.get()?;
        counters.at((slot - self.slot_bases[position]) as usize)
    }
}

/// A flag's evaluation, owned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlagEvaluation {
    /// The flag.
    pub key: String,
    /// Its value for this context.
    pub value: Value,
    /// JavaScript truthiness of the value.
    pub on: bool,
    /// Why it has this value.
    pub source: FeatureSource,
    /// The rule that decided (empty for none).
    pub rule_id: String,
    /// The variation, when an experiment rule decided.
    pub variation_id: Option<usize>,
    /// The variation's key, when an experiment rule decided.
    pub variation_key: Option<String>,
    /// Whether the source has been failing for longer than the stale age.
    pub stale: bool,
    /// Who killed the flag, when its kill switch decided.
    pub kill: Option<KillRecord>,
}

impl FlagEvaluation {
    /// The JSON the CLI prints: `key, value, on, source, rule_id,
    /// variation_id` (and `stale`, `kill` when set).
    pub fn to_json(&self) -> Value {
        let mut v = serde_json::json!({
            "key": self.key,
            "value": self.value,
            "on": self.on,
            "source": self.source.as_str(),
            "rule_id": self.rule_id,
            "variation_id": self.variation_id,
        });
        if self.stale {
            v["stale"] = Value::Bool(true);
        }
        if let Some(k) = &self.kill {
            v["kill"] = serde_json::to_value(k).unwrap_or(Value::Null);
        }
        v
    }
}

/// What an evaluation decided, borrowing the configuration.
#[derive(Debug)]
pub(crate) struct Decision<'a> {
    pub(crate) value: &'a Value,
    pub(crate) source: FeatureSource,
    pub(crate) rule_id: &'a str,
    pub(crate) result: Option<&'a ExperimentResult<'a>>,
    pub(crate) kill: Option<&'a KillRecord>,
    pub(crate) stale: bool,
    pub(crate) rules: usize,
}

/// Feature flags: register or load them, evaluate them lock-free, kill them.
///
/// ```
/// use flightdeck_experiments::Context;
/// use flightdeck_flags::{FeatureFlagManager, FlagDefinition};
/// use serde_json::json;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let flags = FeatureFlagManager::new();
/// flags.register_flag(FlagDefinition::new("fast-rerank").with_condition(json!({"plan": "pro"})))?;
/// let pro = Context::new(json!({"id": "u1", "plan": "pro"}));
/// assert!(flags.is_enabled("fast-rerank", &pro));
/// flags.kill("fast-rerank", "oncall", "p99 doubled")?;
/// assert!(!flags.is_enabled("fast-rerank", &pro));
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct FeatureFlagManager {
    snapshot: ArcSwap<Snapshot>,
    // Bumped after every swap of `snapshot`: a snapshot a thread cached
    // (see `LAST_SNAPSHOT`) is current while this still reads as it did.
    generation: AtomicU64,
    // Names this manager in the per-thread caches, which hold it weakly to
    // learn when the manager is gone.
    token: Arc<()>,
    kills: ArcSwap<KillSet>,
    // Whether `kills` may be non-empty: evaluations skip loading it when not.
    any_kills: AtomicBool,
    kill_store: KillStore,
    kill_lock: Mutex<()>,
    registered: Mutex<Vec<FlagDefinition>>,
    health: Arc<SourceHealth>,
    exposures: Option<Arc<ExposureLogger>>,
    clock: Arc<dyn Clock>,
    label_cap: Arc<LabelCap>,
    reload_failures: metrics::Counter,
    ready: AtomicBool,
    // The evaluation counts of the threads' cached snapshots.
    tally: Arc<Tally>,
}

thread_local! {
    // The snapshot this thread last evaluated against, for one manager.
    //
    // Loading through `ArcSwap` on every evaluation costs two locked
    // instructions (claiming and releasing a debt slot), about a third of
    // a simple flag's evaluation; checking a generation number is a plain
    // load, and an `Rc` handle is not atomic. `arc_swap::cache::Cache` does
    // the same check, but hands out a borrow that cannot leave the
    // thread-local without an atomic clone, and serves a single `ArcSwap`.
    //
    // The cost: a thread keeps the snapshot it last used alive until its next
    // evaluation, so an idle thread delays freeing a replaced configuration
    // (one snapshot per thread at most).
    static LAST_SNAPSHOT: RefCell<Option<CachedSnapshot>> = const { RefCell::new(None) };
}

/// A non-atomic handle on a shared snapshot and this thread's counts
/// against it: cloning it for an evaluation touches no shared cache line.
type LocalSnapshot = Rc<Local>;

struct Local {
    snapshot: Arc<Snapshot>,
    counts: Arc<CountBlock>,
}

struct CachedSnapshot {
    owner: Weak<()>,
    generation: u64,
    snapshot: LocalSnapshot,
}

/// A snapshot held for one evaluation.
enum CurrentSnapshot {
    Cached(LocalSnapshot),
    Shared(arc_swap::Guard<Arc<Snapshot>>),
}

impl std::ops::Deref for CurrentSnapshot {
    type Target = Snapshot;

    fn deref(&self) -> &Snapshot {
        match self {
            CurrentSnapshot::Cached(s) => &s.snapshot,
            CurrentSnapshot::Shared(s) => s,
        }
    }
}

/// Distinct flag names kept as metric labels before folding into `other`.
pub const DEFAULT_FLAG_LABEL_CAP: usize = 500;

impl Default for FeatureFlagManager {
    fn default() -> Self {
        Self::new()
    }
}

impl FeatureFlagManager {
    /// A manager with no flags (every flag is unknown until some are
    /// registered or loaded), kills in memory.
    pub fn new() -> Self {
        Self {
            snapshot: ArcSwap::from_pointee(Snapshot::new(FlagSet::default())),
            generation: AtomicU64::new(0),
            token: Arc::new(()),
            kills: ArcSwap::from_pointee(KillSet::new()),
            any_kills: AtomicBool::new(false),
            kill_store: KillStore::in_memory(),
            kill_lock: Mutex::new(()),
            registered: Mutex::new(Vec::new()),
            health: Arc::new(SourceHealth::default()),
            exposures: None,
            clock: Arc::new(SystemClock),
            label_cap: Arc::new(LabelCap::new(DEFAULT_FLAG_LABEL_CAP)),
            reload_failures: metrics::counter!(metric::FLAGS_RELOAD_FAILURES_TOTAL),
            ready: AtomicBool::new(false),
            tally: Arc::new(Tally::default()),
        }
    }

    /// A manager serving `flags`.
    pub fn with_flags(flags: FlagSet) -> Self {
        let m = Self::new();
        m.replace(flags);
        m
    }

    /// Keeps kill switches in `store` (loading the kills already there).
    /// Defaults to memory only.
    ///
    /// # Errors
    ///
    /// [`KillError::Audit`] when the stored kills cannot be read.
    pub fn with_kill_store(mut self, store: KillStore) -> Result<Self, KillError> {
        let kills = store.load()?;
        self.any_kills.store(!kills.is_empty(), Ordering::Release);
        self.kills.store(Arc::new(kills));
        self.kill_store = store;
        Ok(self)
    }

    /// Logs experiment exposures from experiment rules. Defaults to none.
    #[must_use]
    pub fn with_exposures(mut self, logger: Arc<ExposureLogger>) -> Self {
        self.exposures = Some(logger);
        self
    }

    /// Shares `health` with a source, for the `stale` marker. Defaults to a
    /// health that is never stale.
    #[must_use]
    pub fn with_health(mut self, health: Arc<SourceHealth>) -> Self {
        self.health = health;
        self
    }

    /// Reads time from `clock`. Defaults to the system clock.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The source health.
    pub fn health(&self) -> &Arc<SourceHealth> {
        &self.health
    }

    /// Whether a configuration has been loaded (or a flag registered).
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Swaps in a new configuration atomically: evaluations in flight finish
    /// on the old one, later ones see the new one, and nobody waits.
    pub fn replace(&self, flags: FlagSet) {
        let old = self.snapshot.swap(Arc::new(Snapshot::new(flags)));
        self.generation.fetch_add(1, Ordering::Release);
        self.ready.store(true, Ordering::Release);
        if let Ok(old) = Arc::try_unwrap(old) {
            old.free();
        }
    }

    /// Parses and swaps in `text`; on failure keeps serving the last good
    /// configuration, logs one error and counts it in
    /// `flightdeck_flags_reload_failures_total`.
    ///
    /// # Errors
    ///
    /// The [`LoadError`], after it has been logged and counted.
    pub fn reload_from(
        &self,
        origin: &str,
        text: &str,
        key: Option<&str>,
    ) -> Result<usize, LoadError> {
        match FlagSet::parse(origin, text, key) {
            Ok(set) => {
                let n = set.len();
                self.replace(set);
                tracing::info!(origin, flags = n, "flags reloaded");
                Ok(n)
            }
            Err(e) => {
                self.reload_failures.increment(1);
                tracing::error!(origin, error = %e, "flags reload rejected; still serving the previous flags");
                Err(e)
            }
        }
    }

    /// Counts a reload that failed before parsing (an unreadable file, a
    /// failed fetch).
    pub(crate) fn count_reload_failure(&self) {
        self.reload_failures.increment(1);
    }

    /// Adds (or replaces) one simple-format flag.
    ///
    /// # Errors
    ///
    /// [`LoadError::Invalid`] when the definition is invalid; nothing changes.
    pub fn register_flag(&self, def: FlagDefinition) -> Result<(), LoadError> {
        let mut reg = self.registered.lock().unwrap_or_else(|p| p.into_inner());
        let mut next = reg.clone();
        next.retain(|d| d.id != def.id);
        next.push(def);
        let set = FlagSet::from_definitions(&next)?;
        self.replace(set);
        *reg = next;
        Ok(())
    }

    /// The keys of the loaded flags, sorted.
    pub fn flag_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.snapshot.load().entries.keys().cloned().collect();
        keys.sort_unstable();
        keys
    }

    /// The snapshot to evaluate against: the one this thread cached, while
    /// no reload has replaced it, else a fresh one (see [`refresh`](Self::refresh)).
    #[inline]
    fn current(&self) -> CurrentSnapshot {
        let generation = self.generation.load(Ordering::Acquire);
        let hit = LAST_SNAPSHOT.try_with(|slot| {
            let slot = slot.try_borrow().ok()?;
            let c = slot.as_ref()?;
            (self.owns(c) && c.generation == generation).then(|| c.snapshot.clone())
        });
        match hit {
            Ok(Some(snapshot)) => CurrentSnapshot::Cached(snapshot),
            _ => self.refresh(generation),
        }
    }

    /// Whether `c` is this manager's cached snapshot.
    #[inline]
    fn owns(&self, c: &CachedSnapshot) -> bool {
        std::ptr::eq(c.owner.as_ptr(), Arc::as_ptr(&self.token))
    }

    /// The current snapshot, cached for this thread when its slot is free,
    /// holds a manager that is gone, or holds this one's older snapshot.
    #[cold]
    #[inline(never)]
    fn refresh(&self, generation: u64) -> CurrentSnapshot {
        let cached = LAST_SNAPSHOT.try_with(|slot| {
            // Busy only if a nested evaluation runs while the slot is being
            // refreshed; that one takes the shared path.
            let mut slot = slot.try_borrow_mut().ok()?;
            if let Some(c) = &*slot
                && !self.owns(c)
                && c.owner.strong_count() > 0
            {
                // Another manager that is still alive keeps the slot.
                return None;
            }
            let snapshot = self.snapshot.load_full();
            let counts = Arc::new(CountBlock::new(snapshot.slots(), snapshot.clone()));
            self.tally.register(counts.clone());
            let snapshot = Rc::new(Local { snapshot, counts });
            let replaced = slot.replace(CachedSnapshot {
                owner: Arc::downgrade(&self.token),
                generation,
                snapshot: snapshot.clone(),
            });
            if replaced.is_some() {
                // Its block (and perhaps the last handle on its
                // configuration) now waits for the publisher.
                drop(replaced);
                crate::counts::block_released();
            }
            Some(snapshot)
        });
        match cached {
            Ok(Some(snapshot)) => CurrentSnapshot::Cached(snapshot),
            _ => CurrentSnapshot::Shared(self.snapshot.load()),
        }
    }

    pub(crate) fn decide<R>(
        &self,
        key: &str,
        ctx: &Context,
        f: impl FnOnce(Decision<'_>) -> R,
    ) -> R {
        let snap = self.current();
        let kills = self
            .any_kills
            .load(Ordering::Acquire)
            .then(|| self.kills.load());
        let kills = kills.as_deref().filter(|k| !k.is_empty());
        let stale = self.health.is_stale();
        let Some(entry) = snap.entries.get(key) else {
            return f(Decision {
                value: &NULL,
                source: FeatureSource::UnknownFeature,
                rule_id: "",
                result: None,
                kill: None,
                stale,
                rules: 0,
            });
        };
        let kill = kills.and_then(|k| k.get(key));
        let d = if kill.is_some() || entry.meta.kill_switch {
            Decision {
                value: &entry.meta.off_value,
                source: FeatureSource::KillSwitch,
                rule_id: "",
                result: None,
                kill,
                stale,
                rules: entry.rules,
            }
        } else if !entry.meta.enabled {
            Decision {
                value: &entry.meta.off_value,
                source: FeatureSource::Disabled,
                rule_id: "",
                result: None,
                kill: None,
                stale,
                rules: entry.rules,
            }
        } else {
            let kill_set: Option<&KillSet> = kills.map(|k| &**k);
            // The evaluation stays where it was returned and the decision
            // borrows from it: moving its (large) experiment result again
            // cost a store-forwarding stall on every call.
            let r = eval_entry(&snap, entry, key, ctx, kill_set);
            let d = Decision {
                value: r.value,
                source: r.source,
                rule_id: r.rule_id,
                result: r.experiment_result.as_ref(),
                kill: None,
                stale,
                rules: entry.rules,
            };
            return self.finish(&snap, key, entry, d, f);
        };
        self.finish(&snap, key, entry, d, f)
    }

    /// Counts and logs decision `d` of `key`, then hands it to `f`.
    #[inline]
    fn finish<R>(
        &self,
        snap: &CurrentSnapshot,
        key: &str,
        entry: &Entry,
        d: Decision<'_>,
        f: impl FnOnce(Decision<'_>) -> R,
    ) -> R {
        self.count(snap, key, entry, d.source, d.result);
        if let (Some(log), Some(r)) = (&self.exposures, d.result) {
            log.log(r);
        }
        f(d)
    }

    /// Counts an evaluation: inlined for the common case (this thread's
    /// own counts, a flag whose counters exist, no experiment).
    #[inline]
    fn count(
        &self,
        snap: &CurrentSnapshot,
        key: &str,
        entry: &Entry,
        source: FeatureSource,
        result: Option<&ExperimentResult<'_>>,
    ) {
        if let (None, CurrentSnapshot::Cached(local), Some(base), Some(_)) =
            (result, snap, entry.slot_base, entry.counters.get())
        {
            local.counts.bump(base + source_index(source) as u32);
            return;
        }
        self.count_any(snap, key, entry, source, result);
    }

    #[inline(never)]
    fn count_any(
        &self,
        snap: &CurrentSnapshot,
        key: &str,
        entry: &Entry,
        source: FeatureSource,
        result: Option<&ExperimentResult<'_>>,
    ) {
        let counters = entry.counters.get_or_init(|| {
            let flag = self.label_cap.cap("flag", key);
            let by_source = SOURCES
                .iter()
                .map(|s| {
                    metrics::counter!(metric::FLAG_EVALUATIONS_TOTAL, "flag" => flag.clone(), "variant" => s.as_str())
                })
                .collect();
            let by_variant = variation_keys(snap, key)
                .into_iter()
                .map(|v| {
                    let c = metrics::counter!(metric::FLAG_EVALUATIONS_TOTAL, "flag" => flag.clone(), "variant" => v.clone());
                    (v, c)
                })
                .collect();
            FlagCounters {
                by_source,
                by_variant,
            }
        });
        let i = match result {
            Some(r) => match counters.by_variant.iter().position(|(k, _)| k == r.key) {
                Some(v) => SOURCES.len() + v,
                None => return,
            },
            None => source_index(source),
        };
        match (snap, entry.slot_base) {
            // This thread's own counts: no locked instruction.
            (CurrentSnapshot::Cached(local), Some(base)) => local.counts.bump(base + i as u32),
            _ => {
                if let Some(c) = counters.at(i) {
                    c.increment(1);
                }
            }
        }
    }

    /// Publishes the evaluation counts gathered so far to
    /// `flightdeck_flag_evaluations_total`.
    ///
    /// Each thread counts its evaluations on its own, and they are added
    /// to the counters within a second, when the manager drops, or when
    /// this is called (before rendering the counters in a test, say).
    pub fn flush_counts(&self) {
        self.tally.publish();
    }

    /// Whether `flag` is on for `ctx` (unknown flags are off).
    pub fn is_enabled(&self, flag: &str, ctx: &Context) -> bool {
        self.decide(flag, ctx, |d| flightdeck_experiments::truthy(d.value))
    }

    /// [`is_enabled`](Self::is_enabled) for a bare user id.
    pub fn is_enabled_for_user(&self, flag: &str, user_id: &str) -> bool {
        self.is_enabled(flag, &Context::for_user(user_id))
    }

    /// The full evaluation (the value is cloned).
    pub fn evaluate(&self, flag: &str, ctx: &Context) -> FlagEvaluation {
        self.decide(flag, ctx, |d| FlagEvaluation {
            key: flag.to_owned(),
            value: d.value.clone(),
            on: flightdeck_experiments::truthy(d.value),
            source: d.source,
            rule_id: d.rule_id.to_owned(),
            variation_id: d.result.map(|r| r.variation_id),
            variation_key: d.result.map(|r| r.key.to_owned()),
            stale: d.stale,
            kill: d.kill.cloned(),
        })
    }

    /// A boolean flag's value, or `default` when unknown or not a boolean.
    pub fn get_bool(&self, flag: &str, ctx: &Context, default: bool) -> bool {
        self.decide(flag, ctx, |d| d.value.as_bool().unwrap_or(default))
    }

    /// A string flag's value, or `default` when unknown or not a string.
    pub fn get_string(&self, flag: &str, ctx: &Context, default: &str) -> String {
        self.decide(flag, ctx, |d| {
            d.value.as_str().unwrap_or(default).to_owned()
        })
    }

    /// A number flag's value, or `default` when unknown or not a number.
    pub fn get_number(&self, flag: &str, ctx: &Context, default: f64) -> f64 {
        self.decide(flag, ctx, |d| d.value.as_f64().unwrap_or(default))
    }

    /// A flag's JSON value, or `default` when unknown (or null).
    pub fn get_json(&self, flag: &str, ctx: &Context, default: Value) -> Value {
        self.decide(flag, ctx, |d| {
            if d.value.is_null() {
                default
            } else {
                d.value.clone()
            }
        })
    }

    /// Turns `flag` off for everyone, overriding every rule. The audit log
    /// gets `actor` and `reason` first; if it cannot be written, nothing
    /// changes.
    ///
    /// # Errors
    ///
    /// [`KillError::UnknownFlag`], [`KillError::MissingReason`] or
    /// [`KillError::Audit`].
    pub fn kill(&self, flag: &str, actor: &str, reason: &str) -> Result<KillRecord, KillError> {
        self.set_kill(flag, actor, reason, AuditAction::Kill)
            .map(|r| {
                r.unwrap_or_else(|| KillRecord {
                    actor: actor.to_owned(),
                    reason: reason.to_owned(),
                    at_ms: 0,
                })
            })
    }

    /// Lifts a kill switch.
    ///
    /// # Errors
    ///
    /// As [`kill`](Self::kill).
    pub fn restore(&self, flag: &str, actor: &str, reason: &str) -> Result<(), KillError> {
        self.set_kill(flag, actor, reason, AuditAction::Restore)
            .map(|_| ())
    }

    fn set_kill(
        &self,
        flag: &str,
        actor: &str,
        reason: &str,
        action: AuditAction,
    ) -> Result<Option<KillRecord>, KillError> {
        if reason.trim().is_empty() {
            return Err(KillError::MissingReason);
        }
        let known = self.snapshot.load().entries.contains_key(flag);
        // A stale kill of a flag since removed from the file can still be
        // lifted.
        let stale = action == AuditAction::Restore && self.kills.load().contains_key(flag);
        if !(known || stale) {
            return Err(KillError::UnknownFlag(flag.to_owned()));
        }
        let _guard = self.kill_lock.lock().unwrap_or_else(|p| p.into_inner());
        let now_ms = self.clock.now_unix_nanos() / 1_000_000;
        let record = KillRecord {
            actor: actor.to_owned(),
            reason: reason.to_owned(),
            at_ms: now_ms,
        };
        let (next, set_aside) = self.kill_store.apply(
            &self.kills.load(),
            &AuditEntry {
                timestamp_ms: now_ms,
                action,
                flag: flag.to_owned(),
                actor: actor.to_owned(),
                reason: reason.to_owned(),
            },
        )?;
        if let Some(copy) = set_aside {
            tracing::warn!(copy = %copy.display(), "replaced a corrupt kill file; its old contents are in the copy");
        }
        let any = !next.is_empty();
        self.kills.store(Arc::new(next));
        self.any_kills.store(any, Ordering::Release);
        tracing::warn!(flag, actor, reason, ?action, "kill switch changed");
        Ok((action == AuditAction::Kill).then_some(record))
    }

    /// Re-reads the kill store (kills made by another process).
    ///
    /// # Errors
    ///
    /// [`KillError::Audit`] when the kill file cannot be read; the current
    /// kills stay.
    pub fn reload_kills(&self) -> Result<(), KillError> {
        let kills = self.kill_store.load()?;
        let _guard = self.kill_lock.lock().unwrap_or_else(|p| p.into_inner());
        if **self.kills.load() != kills {
            let any = !kills.is_empty();
            self.kills.store(Arc::new(kills));
            self.any_kills.store(any, Ordering::Release);
        }
        Ok(())
    }

    /// The killed flags now.
    pub fn kills(&self) -> KillSet {
        (**self.kills.load()).clone()
    }

    pub(crate) fn now_ms(&self) -> u64 {
        self.clock.now_unix_nanos() / 1_000_000
    }

    pub(crate) fn kill_store(&self) -> &KillStore {
        &self.kill_store
    }
}

impl Drop for FeatureFlagManager {
    fn drop(&mut self) {
        // The threads' last counts.
        self.tally.publish();
    }
}

/// Evaluates one flag's rules; killed prerequisites turn their dependents
/// off too.
fn eval_entry<'a>(
    snap: &'a Snapshot,
    entry: &'a Entry,
    key: &'a str,
    ctx: &'a Context,
    kills: Option<&'a KillSet>,
) -> flightdeck_experiments::FeatureResult<'a> {
    let killed = move |k: &str| -> Option<&'a Value> { off_if_killed(snap, kills, k) };
    let overrides: Option<flightdeck_experiments::Overrides<'_, 'a>> =
        if kills.is_some() { Some(&killed) } else { None };
    match entry.position {
        Some(p) => snap.flags.features.eval_at(p, ctx, overrides),
        None => snap.flags.features.eval_with_overrides(key, ctx, &killed),
    }
}

/// The value a killed flag serves, when `k` is killed.
fn off_if_killed<'s>(snap: &'s Snapshot, kills: Option<&KillSet>, k: &str) -> Option<&'s Value> {
    kills
        .filter(|set| set.contains_key(k))
        .and_then(|_| snap.entries.get(k).map(|e| &e.meta.off_value))
}

/// The variation keys of `key`'s experiment rules, for its counters (from
/// the same snapshot the entry belongs to).
fn variation_keys(snap: &Snapshot, key: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    if let Some(f) = snap.flags.features.get(key) {
        for exp in f.experiments() {
            for k in exp.variation_keys() {
                if !out.contains(k) {
                    out.push(k.clone());
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn flags(rollout: u32) -> FlagSet {
        let text = format!("flags:\n  - id: f\n    rollout_percentage: {rollout}\n");
        FlagSet::parse("f.yaml", &text, None).unwrap()
    }

    #[test]
    fn a_replaced_configuration_is_freed_once_the_threads_move_on() {
        let m = FeatureFlagManager::with_flags(flags(50));
        let ctx = Context::for_user("u1");
        m.is_enabled("f", &ctx);
        let old = Arc::downgrade(&m.snapshot.load_full());
        m.replace(flags(60));
        // This thread's cache and its counts still hold it.
        assert!(old.upgrade().is_some());
        m.is_enabled("f", &ctx);
        let start = Instant::now();
        while old.upgrade().is_some() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the replaced configuration was never freed"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

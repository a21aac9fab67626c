//! Feature flags: `new_chunking_strategy` (a percentage rollout with
//! targeting) chooses the chunker. From a watched flags file when given
//! (live reload, the last good flags kept, kills beside the file), else the
//! built-in default.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use flightdeck::experiments::Context;
use flightdeck::flags::{FeatureFlagManager, FileSource, FlagSet, KillStore, SourceHandle};

/// The flag that chooses the chunker.
pub const CHUNKING_FLAG: &str = "new_chunking_strategy";

/// The flags served when no file is given.
const DEFAULT_FLAGS: &str = r#"
flags:
  - id: new_chunking_strategy
    description: semantic chunking instead of fixed windows
    rollout_percentage: 50
    targeting:
      attributes: {plan: {$ne: free}}
"#;

/// The manager and, with a file, its polling source.
#[derive(Debug)]
pub struct Flags {
    /// The manager every request asks.
    pub manager: Arc<FeatureFlagManager>,
    _source: Option<SourceHandle>,
}

impl Flags {
    /// Flags from `file` (polled every `interval`), else the defaults.
    ///
    /// # Errors
    ///
    /// A message when the file cannot be watched or the defaults do not load.
    pub fn new(file: Option<&Path>, interval: Duration) -> Result<Self, String> {
        match file {
            Some(path) => {
                let manager = Arc::new(
                    FeatureFlagManager::new()
                        .with_kill_store(KillStore::beside(path))
                        .map_err(|e| e.to_string())?,
                );
                let source = FileSource::start(path, Arc::clone(&manager), interval, None)
                    .map_err(|e| e.to_string())?;
                Ok(Self {
                    manager,
                    _source: Some(source),
                })
            }
            None => {
                let set = FlagSet::parse("built-in flags", DEFAULT_FLAGS, None)
                    .map_err(|e| e.to_string())?;
                Ok(Self {
                    manager: Arc::new(FeatureFlagManager::with_flags(set)),
                    _source: None,
                })
            }
        }
    }

    /// The chunker for this user, and whether the flag was on.
    pub fn chunker(&self, user_id: &str) -> (bool, &'static str) {
        self.chunker_in(&request_context(user_id))
    }

    /// The chunker for a request's context (see [`request_context`]).
    pub fn chunker_in(&self, ctx: &Context) -> (bool, &'static str) {
        let on = self.manager.is_enabled(CHUNKING_FLAG, ctx);
        (on, if on { "semantic" } else { "fixed-512" })
    }

    /// Every flag with whether it is killed (for `/api/flags`).
    pub fn describe(&self) -> serde_json::Value {
        let kills = self.manager.kills();
        let flags: Vec<serde_json::Value> = self
            .manager
            .flag_keys()
            .into_iter()
            .map(|k| {
                let kill = kills.get(&k);
                serde_json::json!({
                    "id": k,
                    "killed": kill.is_some(),
                    "kill": kill,
                })
            })
            .collect();
        serde_json::json!({ "ready": self.manager.is_ready(), "flags": flags })
    }
}

/// A request's targeting context: the user's id (what the flag's rollout
/// and the experiment hash) and the plan the rollout targets. Built once per
/// request for the flags and the experiment.
pub fn request_context(user_id: &str) -> Context {
    Context::new(serde_json::json!({ "id": user_id, "plan": "pro" }))
}

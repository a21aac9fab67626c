//! Flag files: our simple format (YAML or JSON) and GrowthBook's features
//! payload, both compiled to one engine ([`FeatureSet`]).
//!
//! The simple format, one entry per flag:
//!
//! ```yaml
//! flags:
//!   - id: new-search            # required; letters, digits, . _ -
//!     description: Hybrid retrieval for search
//!     owner: search-team
//!     expires: 2027-03-31       # reported by `flightdeck flags validate` once past
//!     enabled: true             # false: serve `default` to everyone
//!     default: false            # served when the flag is off for a user
//!     rollout_percentage: 25    # share of eligible users (hashed on `id`)
//!     targeting:
//!       user_ids: [alice]       # always on for these ids
//!       groups: [beta]          # always on when the `groups` attribute holds one
//!       attributes:             # a GrowthBook condition on the attributes
//!         country: {$in: [US, CA]}
//!     kill_switch: false        # true: off for everyone, before any rule
//!     depends_on: [search-v2]   # off unless every listed flag is on
//! ```
//!
//! With `variants` (`[{key, value, weight}]`) the flag serves typed values:
//! eligible users (listed ids or groups, or matching `attributes`) inside the
//! rollout are split by weight, and `default` names the variant served to
//! everyone else.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use flightdeck_experiments::{
    Condition, ConditionWarning, ExperimentRule, Feature, FeatureSet, ForceRule,
};
use flightdeck_obs_core::locate;
use rustc_hash::{FxHashMap, FxHashSet};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use crate::decrypt::decrypt;
use crate::error::{LoadError, Problem};

/// One flag in the simple format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlagDefinition {
    /// The flag's key.
    pub id: String,
    /// When false, everyone gets `default`.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Share of eligible users who get the flag, 0 to 100 (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout_percentage: Option<f64>,
    /// Who is eligible.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targeting: Option<Targeting>,
    /// The value when off (a boolean; or a variant key when there are variants).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "unique::option_value"
    )]
    pub default: Option<Value>,
    /// Typed values split by weight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variants: Option<Vec<VariantDefinition>>,
    /// Off for everyone, before any rule.
    #[serde(default)]
    pub kill_switch: bool,
    /// Flags that must be on for this one to be on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    /// What the flag is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Who owns it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// When it should be removed (`YYYY-MM-DD`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
}

fn yes() -> bool {
    true
}

impl FlagDefinition {
    /// A boolean flag, on for everyone.
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            enabled: true,
            rollout_percentage: None,
            targeting: None,
            default: None,
            variants: None,
            kill_switch: false,
            depends_on: Vec::new(),
            description: None,
            owner: None,
            expires: None,
        }
    }

    /// On for `percent` of eligible users. Defaults to 100.
    #[must_use]
    pub fn with_rollout(mut self, percent: f64) -> Self {
        self.rollout_percentage = Some(percent);
        self
    }

    /// Eligible only when `condition` (GrowthBook's language) matches.
    /// Defaults to everyone.
    #[must_use]
    pub fn with_condition(mut self, condition: Value) -> Self {
        let t = self.targeting.get_or_insert_with(Targeting::default);
        t.attributes = condition.as_object().cloned();
        self
    }

    /// Always on for these user ids. Defaults to none.
    #[must_use]
    pub fn with_user_ids(mut self, ids: &[&str]) -> Self {
        let t = self.targeting.get_or_insert_with(Targeting::default);
        t.user_ids = ids.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    /// Off unless `flag` is on. Defaults to no dependencies.
    #[must_use]
    pub fn with_dependency(mut self, flag: impl Into<String>) -> Self {
        self.depends_on.push(flag.into());
        self
    }

    /// Disabled: everyone gets the default. Defaults to enabled.
    #[must_use]
    pub fn with_enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }
}

/// Who a simple-format flag is for.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Targeting {
    /// Always on for these `id` attribute values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub user_ids: Vec<String>,
    /// Always on when the `groups` attribute holds one of these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// A GrowthBook condition on the attributes.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "unique::option_map"
    )]
    pub attributes: Option<Map<String, Value>>,
}

/// One typed value of a multi-variant flag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariantDefinition {
    /// The variant's key.
    pub key: String,
    /// Its value (all variants of a flag share one JSON type).
    #[serde(deserialize_with = "unique::value")]
    pub value: Value,
    /// Its relative weight.
    #[serde(default = "one")]
    pub weight: f64,
}

fn one() -> f64 {
    1.0
}

/// The type of a flag's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FlagKind {
    /// `true`/`false`.
    Bool,
    /// Text.
    String,
    /// A number.
    Number,
    /// Any JSON (objects, arrays).
    Json,
}

impl FlagKind {
    pub(crate) fn of(v: &Value) -> Self {
        match v {
            Value::Bool(_) => FlagKind::Bool,
            Value::String(_) => FlagKind::String,
            Value::Number(_) => FlagKind::Number,
            _ => FlagKind::Json,
        }
    }
}

/// What the engine needs to know about a flag beyond its rules.
#[derive(Debug, Clone, PartialEq)]
pub struct FlagMeta {
    /// The value type.
    pub kind: FlagKind,
    /// Disabled flags serve `off_value` with source `disabled`.
    pub enabled: bool,
    /// Killed in the file itself.
    pub kill_switch: bool,
    /// What a disabled or killed flag serves.
    pub off_value: Value,
    /// The description, if any.
    pub description: Option<String>,
    /// The owner, if any.
    pub owner: Option<String>,
    /// The expiry date (`YYYY-MM-DD`), if any.
    pub expires: Option<String>,
}

/// A compiled set of flags: the engine's features and each flag's metadata.
#[derive(Debug, Clone, Default)]
pub struct FlagSet {
    pub(crate) features: FeatureSet,
    pub(crate) meta: FxHashMap<String, FlagMeta>,
    pub(crate) origin: String,
}

/// A decoding error in words a user acts on: YAML reads `1e999` as a string
/// (it is no finite number), and serde then says "invalid type: string";
/// what is wrong is that the number is out of range. Positions in the
/// message are dropped (the problem carries them).
fn explain_decode_error(message: &str) -> String {
    let message = strip_position(message);
    if let Some(rest) = message.strip_prefix("invalid type: string \"")
        && let Some((value, _)) = rest.split_once('"')
        && value.parse::<f64>().is_ok_and(f64::is_infinite)
    {
        return format!(
            "{} is out of range for a number (beyond about 1.8e308)",
            flightdeck_obs_core::shown(value)
        );
    }
    if message.starts_with("number out of range") {
        return "a number out of range (beyond about 1.8e308)".to_owned();
    }
    message
}

/// Values in flag definitions refuse duplicate keys (`serde_json::Value`
/// alone keeps the last), in YAML and JSON alike.
mod unique {
    use flightdeck_obs_core::UniqueKeys;
    use serde::de::{Deserialize, Deserializer, Error, Unexpected};
    use serde_json::{Map, Value};

    pub(super) fn value<'de, D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        UniqueKeys::deserialize(d).map(|v| v.0)
    }

    pub(super) fn option_value<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
        Ok(Option::<UniqueKeys>::deserialize(d)?.map(|v| v.0))
    }

    pub(super) fn option_map<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Map<String, Value>>, D::Error> {
        match Option::<UniqueKeys>::deserialize(d)? {
            None => Ok(None),
            Some(UniqueKeys(Value::Object(m))) => Ok(Some(m)),
            Some(UniqueKeys(other)) => Err(D::Error::invalid_type(
                Unexpected::Other(match other {
                    Value::Array(_) => "a sequence",
                    Value::String(_) => "a string",
                    Value::Number(_) => "a number",
                    Value::Bool(_) => "a boolean",
                    _ => "null",
                }),
                &"a map of attribute conditions",
            )),
        }
    }
}

/// The longest `depends_on` chain (in flags, counting the dependent and
/// the flag it ends on) that evaluation follows; see
/// [`MAX_PREREQUISITE_DEPTH`](flightdeck_experiments::MAX_PREREQUISITE_DEPTH).
pub const MAX_DEPENDENCY_CHAIN: usize = flightdeck_experiments::MAX_PREREQUISITE_DEPTH;

/// Where line and column of things in a file are.
struct Locator<'t> {
    text: &'t str,
    path: &'t str,
}

impl Locator<'_> {
    fn at(&self, offset: usize) -> (usize, usize) {
        locate::line_column(self.text, offset)
    }

    /// The byte offset of `key` (as `key:` or `"key":`) at or after `from`,
    /// before `until`.
    fn find_key(&self, key: &str, from: usize, until: usize) -> Option<usize> {
        locate::find_key(self.text, key, from, until)
    }

    fn problem(&self, offset: usize, message: String) -> Problem {
        let (line, column) = self.at(offset);
        Problem {
            path: self.path.to_owned(),
            line,
            column,
            message,
        }
    }
}

fn parse_document(path: &str, text: &str) -> Result<Value, LoadError> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        serde_json::from_str(text).map_err(|e| {
            LoadError::Invalid(vec![Problem {
                path: path.to_owned(),
                line: e.line(),
                column: e.column().max(1),
                message: format!("invalid JSON: {}", strip_position(&e.to_string())),
            }])
        })
    } else {
        // Read through `UniqueKeys`: a `Value` alone keeps the last of two
        // equal keys, where JSON files get an error.
        serde_norway::from_str::<flightdeck_obs_core::UniqueKeys>(text)
            .map(|v| v.0)
            .map_err(|e| {
                let (line, column) = e
                    .location()
                    .map_or((1, 1), |l| (l.line().max(1), l.column().max(1)));
                LoadError::Invalid(vec![Problem {
                    path: path.to_owned(),
                    line,
                    column,
                    message: format!("invalid YAML: {}", strip_position(&e.to_string())),
                }])
            })
    }
}

/// The text of a flags file, or a problem locating its first byte that is
/// not UTF-8 (a reload then keeps the last good flags).
pub(crate) fn text_of<'b>(origin: &str, bytes: &'b [u8]) -> Result<&'b str, LoadError> {
    locate::utf8_text(bytes).map_err(|e| {
        LoadError::Invalid(vec![Problem {
            path: origin.to_owned(),
            line: e.line,
            column: e.column,
            message: format!("not UTF-8 text (byte 0x{:02x})", e.byte),
        }])
    })
}

fn strip_position(msg: &str) -> String {
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}

impl FlagSet {
    /// Parses a flags file: GrowthBook's payload (`{"features": …}`, or
    /// `{"encryptedFeatures": …}` with `key`) or the simple format
    /// (`flags: [...]`), in YAML or JSON. `path` names the file in problems.
    ///
    /// ```
    /// use flightdeck_flags::FlagSet;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let set = FlagSet::parse("flags.yaml", "flags:\n  - id: dark-mode\n    rollout_percentage: 50\n", None)?;
    /// assert_eq!(set.len(), 1);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`LoadError::Invalid`] listing every problem as `file:line:column:
    /// message`, or [`LoadError::Decrypt`].
    pub fn parse(path: &str, text: &str, key: Option<&str>) -> Result<Self, LoadError> {
        let loc = Locator { text, path };
        // Before any recursive reader sees the text: a file nested
        // thousands deep would overflow its stack.
        if let Err(e) = locate::check_nesting(text, locate::MAX_NESTING) {
            return Err(LoadError::Invalid(vec![Problem {
                path: path.to_owned(),
                line: e.line,
                column: e.column,
                message: format!("collections nested deeper than {} levels", e.limit),
            }]));
        }
        if let Some(result) = parse_json_document(text, &loc, key) {
            return result;
        }
        // Simple-format YAML in the subset flag files use, read flag by flag
        // on the threads that compile them; anything else goes to the full
        // parser below.
        if let Some(items) = crate::yaml::flag_items(text) {
            let items = items.into_iter().map(Item::Yaml).collect();
            if let Some(result) = compile_simple_items(items, None, &loc) {
                return result;
            }
        }
        let doc = parse_document(path, text)?;
        if doc.get("flags").is_some() {
            return compile_simple(doc, &loc);
        }
        if doc.get("features").is_some() || doc.get("encryptedFeatures").is_some() {
            return compile_growthbook(&doc, &loc, key);
        }
        Err(LoadError::Invalid(vec![loc.problem(
            0,
            "expected `flags:` (simple format) or `features` (GrowthBook payload) at the top level"
                .into(),
        )]))
    }

    /// Reads and parses a flags file.
    ///
    /// # Errors
    ///
    /// [`LoadError::Read`], or as [`parse`](Self::parse).
    pub fn load(path: &std::path::Path, key: Option<&str>) -> Result<Self, LoadError> {
        let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let name = path.display().to_string();
        Self::parse(&name, text_of(&name, &bytes)?, key)
    }

    /// Builds a set from simple-format definitions.
    ///
    /// # Errors
    ///
    /// [`LoadError::Invalid`] for invalid definitions.
    pub fn from_definitions(defs: &[FlagDefinition]) -> Result<Self, LoadError> {
        let flags: Vec<Value> = defs
            .iter()
            .map(|d| serde_json::to_value(d).unwrap_or(Value::Null))
            .collect();
        let text = serde_json::to_string_pretty(&json!({ "flags": flags })).unwrap_or_default();
        Self::parse("<definitions>", &text, None)
    }

    /// The number of flags.
    pub fn len(&self) -> usize {
        self.meta.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.meta.is_empty()
    }

    /// The flag keys, sorted.
    pub fn keys(&self) -> Vec<&str> {
        let mut k: Vec<&str> = self.meta.keys().map(String::as_str).collect();
        k.sort_unstable();
        k
    }

    /// One flag's metadata.
    pub fn meta(&self, key: &str) -> Option<&FlagMeta> {
        self.meta.get(key)
    }

    /// The compiled features.
    pub fn features(&self) -> &FeatureSet {
        &self.features
    }

    /// Where the set came from (a path or URL).
    pub fn origin(&self) -> &str {
        &self.origin
    }
}

/// A JSON value (a feature's or a flag's definition), as raw text or
/// already parsed.
#[derive(Clone, Copy)]
enum Json<'a> {
    Raw(&'a RawValue),
    Parsed(&'a Value),
}

/// A JSON document (either format) read without building it as one
/// `Value` tree: its top-level values stay raw text, and each flag or
/// feature is parsed on its own, on the thread that compiles it. `None`
/// when `text` is not a JSON object (the caller's general path then reports
/// where it is broken) or holds neither format.
fn parse_json_document(
    text: &str,
    loc: &Locator<'_>,
    key: Option<&str>,
) -> Option<Result<FlagSet, LoadError>> {
    let top: BTreeMap<String, &RawValue> = serde_json::from_str(text).ok()?;
    if let Some(flags) = top.get("flags") {
        let extra = top.keys().find(|k| *k != "flags").map(String::as_str);
        let result = match serde_json::from_str::<Vec<&RawValue>>(flags.get()) {
            // Raw items are always read: `None` cannot come back.
            Ok(items) => compile_simple_items(
                items
                    .into_iter()
                    .map(|r| Item::Json(Json::Raw(r)))
                    .collect(),
                extra,
                loc,
            )?,
            Err(_) => Err(not_a_flag_list(loc)),
        };
        return Some(result);
    }
    if !top.contains_key("features") && !top.contains_key("encryptedFeatures") {
        return None;
    }
    let saved_groups = top
        .get("savedGroups")
        .and_then(|r| serde_json::from_str::<Value>(r.get()).ok());
    let encrypted = top
        .get("encryptedFeatures")
        .and_then(|r| serde_json::from_str::<String>(r.get()).ok());
    if key.is_some() && encrypted.is_none() {
        tracing::warn!(
            path = loc.path,
            "a decryption key is configured but the payload is not encrypted; serving it as it is"
        );
    }
    let groups = saved_groups.as_ref();
    // An object of feature key to raw definition, compiled.
    let compile_raw = |text: &str| {
        serde_json::from_str::<BTreeMap<String, &RawValue>>(text).map(|map| {
            let entries = map.into_iter().map(|(k, v)| (k, Json::Raw(v))).collect();
            compile_features(entries, groups, loc)
        })
    };
    let result = match (top.get("features"), encrypted) {
        (Some(f), _) if f.get().trim_start().starts_with('{') => {
            compile_raw(f.get()).unwrap_or_else(|_| Err(features_not_an_object(loc)))
        }
        (_, Some(enc)) => decrypt_features(&enc, key, loc)
            .and_then(|plain| compile_raw(&plain).map_err(|e| decrypted_not_json(&e, loc))?),
        _ => Err(features_not_an_object(loc)),
    };
    Some(result)
}

fn features_not_an_object(loc: &Locator<'_>) -> LoadError {
    LoadError::Invalid(vec![loc.problem(
        loc.find_key("features", 0, loc.text.len()).unwrap_or(0),
        "`features` must be an object of feature key to definition".into(),
    )])
}

fn decrypt_features(enc: &str, key: Option<&str>, loc: &Locator<'_>) -> Result<String, LoadError> {
    let key = key.ok_or_else(|| LoadError::Decrypt {
        path: loc.path.to_owned(),
        source: crate::error::DecryptError::MissingKey,
    })?;
    decrypt(enc, key).map_err(|source| LoadError::Decrypt {
        path: loc.path.to_owned(),
        source,
    })
}

fn decrypted_not_json(e: &serde_json::Error, loc: &Locator<'_>) -> LoadError {
    LoadError::Invalid(vec![Problem {
        path: loc.path.to_owned(),
        line: e.line(),
        column: e.column().max(1),
        message: format!(
            "decrypted features are not valid JSON: {}",
            strip_position(&e.to_string())
        ),
    }])
}

/// A GrowthBook payload already parsed as a `Value` (a YAML document).
fn compile_growthbook(
    doc: &Value,
    loc: &Locator<'_>,
    key: Option<&str>,
) -> Result<FlagSet, LoadError> {
    let decrypted;
    let features = match (
        doc.get("features"),
        doc.get("encryptedFeatures").and_then(Value::as_str),
    ) {
        (Some(f), _) if f.is_object() => f,
        (_, Some(enc)) => {
            let plain = decrypt_features(enc, key, loc)?;
            decrypted =
                serde_json::from_str::<Value>(&plain).map_err(|e| decrypted_not_json(&e, loc))?;
            &decrypted
        }
        _ => return Err(features_not_an_object(loc)),
    };
    let entries: Vec<(String, Json<'_>)> = features
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), Json::Parsed(v)))
        .collect();
    compile_features(entries, doc.get("savedGroups"), loc)
}

/// Below this many features one thread compiles them all.
const PARALLEL_FROM: usize = 512;

/// What one thread makes of its share of the features.
#[derive(Default)]
struct Compiled {
    features: Vec<(String, Feature)>,
    meta: Vec<(String, FlagMeta)>,
    warnings: Vec<ConditionWarning>,
    problems: Vec<Problem>,
}

/// Compiles GrowthBook feature definitions, on several threads for large
/// payloads: each thread parses (for raw text), checks and compiles its
/// share, and frees its parse trees itself.
fn compile_features(
    entries: Vec<(String, Json<'_>)>,
    saved_groups: Option<&Value>,
    loc: &Locator<'_>,
) -> Result<FlagSet, LoadError> {
    let n = entries.len();
    let parts = par_shares(entries, |_, share| compile_share(&share, loc));
    let mut all = Compiled::default();
    let mut meta = FxHashMap::with_capacity_and_hasher(n, Default::default());
    for part in parts {
        all.features.extend(part.features);
        meta.extend(part.meta);
        all.warnings.extend(part.warnings);
        all.problems.extend(part.problems);
    }
    for w in &all.warnings {
        let feature = w
            .path
            .strip_prefix("features.")
            .and_then(|p| p.split('.').next())
            .unwrap_or("");
        let at = loc.find_key(feature, 0, loc.text.len()).unwrap_or(0);
        all.problems
            .push(loc.problem(at, format!("{}: {}", w.path, w.message)));
    }
    if !all.problems.is_empty() {
        return Err(LoadError::Invalid(all.problems));
    }
    Ok(FlagSet {
        features: FeatureSet::from_compiled(all.features, saved_groups, all.warnings),
        meta,
        origin: loc.path.to_owned(),
    })
}

fn compile_share(share: &[(String, Json<'_>)], loc: &Locator<'_>) -> Compiled {
    let mut out = Compiled {
        features: Vec::with_capacity(share.len()),
        meta: Vec::with_capacity(share.len()),
        ..Compiled::default()
    };
    for (k, def) in share {
        // Located only when there is a problem: a search per feature would
        // make loading quadratic in the number of features.
        let at = || loc.find_key(k, 0, loc.text.len()).unwrap_or(0);
        let parsed;
        let def: &Value = match def {
            Json::Parsed(v) => v,
            Json::Raw(raw) => match serde_json::from_str::<Value>(raw.get()) {
                Ok(v) => {
                    parsed = v;
                    &parsed
                }
                Err(e) => {
                    out.problems
                        .push(loc.problem(at(), format!("feature {k:?}: {e}")));
                    continue;
                }
            },
        };
        if !def.is_object() {
            out.problems.push(loc.problem(
                at(),
                format!("feature {k:?}: must be an object, found {def}"),
            ));
            continue;
        }
        if let Some(rules) = def.get("rules")
            && !rules.is_array()
        {
            out.problems
                .push(loc.problem(at(), format!("feature {k:?}: rules must be an array")));
        }
        let default = def.get("defaultValue").cloned().unwrap_or(Value::Null);
        out.meta.push((
            k.clone(),
            FlagMeta {
                kind: FlagKind::of(&default),
                enabled: true,
                kill_switch: false,
                off_value: default,
                description: None,
                owner: None,
                expires: None,
            },
        ));
        let feature = Feature::compile(k, def, &mut out.warnings);
        out.features.push((k.clone(), feature));
    }
    out
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn valid_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && s[..4].parse::<u32>().is_ok()
        && s[5..7].parse::<u32>().is_ok_and(|m| (1..=12).contains(&m))
        && s[8..].parse::<u32>().is_ok_and(|d| (1..=31).contains(&d))
}

/// The falsy values: a prerequisite is on when its value is none of these.
fn on_condition() -> Value {
    json!({"value": {"$nin": [false, null, 0, ""]}})
}

/// [`on_condition`] compiled, for the gates of typed rules.
static FLAG_IS_ON: LazyLock<Condition> = LazyLock::new(|| Condition::compile(&on_condition()).0);

/// One simple-format flag definition: JSON, or an item of a YAML `flags:`
/// list for the subset reader.
#[derive(Clone, Copy)]
enum Item<'a> {
    Json(Json<'a>),
    Yaml(&'a str),
}

fn not_a_flag_list(loc: &Locator<'_>) -> LoadError {
    LoadError::Invalid(vec![loc.problem(
        loc.find_key("flags", 0, loc.text.len()).unwrap_or(0),
        "`flags` must be a list of flags".into(),
    )])
}

/// The simple format from a parsed document (YAML, or JSON the raw path
/// could not read).
fn compile_simple(doc: Value, loc: &Locator<'_>) -> Result<FlagSet, LoadError> {
    let Value::Object(mut top) = doc else {
        return Err(not_a_flag_list(loc));
    };
    let Some(Value::Array(list)) = top.remove("flags") else {
        return Err(not_a_flag_list(loc));
    };
    let extra = top.keys().next().map(String::as_str);
    // Parsed items are always read: `None` cannot come back.
    compile_simple_items(
        list.iter().map(|v| Item::Json(Json::Parsed(v))).collect(),
        extra,
        loc,
    )
    .unwrap_or_else(|| Err(not_a_flag_list(loc)))
}

/// Checks and compiles simple-format flags; `extra` is a top-level field
/// other than `flags`, which is a problem. `None` when a YAML item is
/// outside the fast reader's subset (see `crate::yaml`).
fn compile_simple_items(
    list: Vec<Item<'_>>,
    extra: Option<&str>,
    loc: &Locator<'_>,
) -> Option<Result<FlagSet, LoadError>> {
    let mut problems = Vec::new();
    if let Some(extra) = extra {
        problems.push(loc.problem(
            loc.find_key(extra, 0, loc.text.len()).unwrap_or(0),
            format!("unknown top-level field `{extra}` (expected only `flags`)"),
        ));
    }
    // Where each flag starts in the text, found in order by its id.
    let mut starts = Vec::with_capacity(list.len());
    let mut cursor = loc.find_key("flags", 0, loc.text.len()).unwrap_or(0);
    for _ in &list {
        let at = loc.find_key("id", cursor, loc.text.len()).unwrap_or(cursor);
        starts.push(at);
        cursor = at + 2;
    }
    let span = |i: usize| {
        (
            starts[i],
            starts.get(i + 1).copied().unwrap_or(loc.text.len()),
        )
    };
    // Each flag is decoded, checked and compiled on one of several threads
    // (for large files), so what a flag's work allocates is freed on the
    // thread that allocated it. The document itself stays with this thread.
    let outcomes = par_map(list, |i, item| {
        let (start, end) = span(i);
        // A YAML item is decoded straight from the fast reader's nodes. One
        // outside its subset, or one that does not decode, sends the whole
        // file to the full parser (which then names the field).
        let item = match item {
            Item::Yaml(chunk) => {
                let d = FlagDefinition::deserialize(crate::yaml::item(chunk)?).ok()?;
                let depends_on = d.depends_on.clone();
                return Some(Ok((i, depends_on, compile_flag(d, loc, start, end))));
            }
            Item::Json(json) => json,
        };
        // Decoded without path tracking first (it costs a third of the
        // decoding); a flag that fails is decoded again to name the field.
        let quick = match item {
            Json::Parsed(v) => FlagDefinition::deserialize(v).ok(),
            Json::Raw(r) => serde_json::from_str::<FlagDefinition>(r.get()).ok(),
        };
        let decoded = match (quick, item) {
            (Some(d), _) => Ok(d),
            (None, Json::Parsed(v)) => serde_path_to_error::deserialize::<_, FlagDefinition>(v),
            (None, Json::Raw(r)) => serde_path_to_error::deserialize::<_, FlagDefinition>(
                &mut serde_json::Deserializer::from_str(r.get()),
            ),
        };
        Some(match decoded {
            Ok(d) => {
                let depends_on = d.depends_on.clone();
                Ok((i, depends_on, compile_flag(d, loc, start, end)))
            }
            Err(e) => {
                let reparsed;
                let v = match item {
                    Json::Parsed(v) => v,
                    Json::Raw(r) => {
                        reparsed = serde_json::from_str::<Value>(r.get()).unwrap_or(Value::Null);
                        &reparsed
                    }
                };
                let name = v.get("id").and_then(Value::as_str).unwrap_or("?");
                let path = e.path().to_string();
                let top = path.split(['.', '[']).next().unwrap_or("");
                let at = loc.find_key(top, start, end).unwrap_or(start);
                let message = explain_decode_error(&e.into_inner().to_string());
                Err(loc.problem(at, format!("flag {name:?}: {path}: {message}")))
            }
        })
    });
    let outcomes: Vec<_> = outcomes.into_iter().collect::<Option<_>>()?;
    let mut compiled = Vec::with_capacity(outcomes.len());
    for o in outcomes {
        match o {
            Ok(c) => compiled.push(c),
            Err(p) => problems.push(p),
        }
    }
    // What needs every flag: unique ids, known dependencies, no cycle.
    let mut ids: FxHashSet<&str> =
        FxHashSet::with_capacity_and_hasher(compiled.len(), Default::default());
    let mut duplicate = vec![false; compiled.len()];
    for ((_, _, c), dup) in compiled.iter().zip(&mut duplicate) {
        *dup = !ids.insert(c.id.as_str());
    }
    // Only flags with dependencies can be on a cycle.
    let mut graph: BTreeMap<&str, &[String]> = BTreeMap::new();
    for ((i, depends_on, c), dup) in compiled.iter().zip(duplicate) {
        let (start, end) = span(*i);
        let mut bad = |k: &str, msg: String| {
            let at = loc.find_key(k, start, end).unwrap_or(start);
            problems.push(loc.problem(at, format!("flag {:?}: {msg}", c.id)));
        };
        if dup {
            bad("id", "duplicate id (each flag appears once)".into());
        }
        for dep in depends_on {
            if !ids.contains(dep.as_str()) {
                bad("depends_on", format!("depends on unknown flag {dep:?}"));
            } else if dep == &c.id {
                bad("depends_on", "depends on itself".into());
            }
        }
        if !depends_on.is_empty() {
            graph.insert(c.id.as_str(), depends_on);
        }
    }
    let at_flag = |id: &str| {
        compiled
            .iter()
            .find(|(_, _, c)| c.id == id)
            .map_or(0, |(i, _, _)| {
                let (start, end) = span(*i);
                loc.find_key("depends_on", start, end).unwrap_or(start)
            })
    };
    match check_dependencies(&graph) {
        Err(cycle) => {
            problems.push(loc.problem(
                at_flag(cycle[0]),
                format!("dependency cycle: {}", cycle.join(" -> ")),
            ));
        }
        // Evaluation gives up on chains longer than this (and serves them
        // as `cyclicPrerequisite`): refuse them here so the two agree.
        Ok(chain) if chain.len() > MAX_DEPENDENCY_CHAIN => {
            problems.push(loc.problem(
                at_flag(chain[0]),
                format!(
                    "a depends_on chain of {} flags is longer than the {MAX_DEPENDENCY_CHAIN} evaluation follows: {} -> ... -> {}",
                    chain.len(),
                    chain[0],
                    chain[chain.len() - 1]
                ),
            ));
        }
        Ok(_) => {}
    }
    let mut features = Vec::with_capacity(compiled.len());
    let mut meta = FxHashMap::with_capacity_and_hasher(compiled.len(), Default::default());
    let mut warnings = Vec::new();
    for (_, _, c) in compiled {
        problems.extend(c.problems);
        warnings.extend(c.warnings);
        meta.insert(c.id.clone(), c.meta);
        features.push((c.id, c.feature));
    }
    if !problems.is_empty() {
        problems.sort_by_key(|p| (p.line, p.column));
        return Some(Err(LoadError::Invalid(problems)));
    }
    Some(Ok(FlagSet {
        features: FeatureSet::from_compiled(features, None, warnings),
        meta,
        origin: loc.path.to_owned(),
    }))
}

/// One simple-format flag, checked and compiled.
struct CompiledFlag {
    id: String,
    feature: Feature,
    meta: FlagMeta,
    problems: Vec<Problem>,
    warnings: Vec<ConditionWarning>,
}

/// Checks one flag (whose text lies in `start..end`) on its own, and
/// compiles it to the GrowthBook feature it stands for. What needs the other
/// flags (ids, dependencies) is checked by the caller.
fn compile_flag(
    mut d: FlagDefinition,
    loc: &Locator<'_>,
    start: usize,
    end: usize,
) -> CompiledFlag {
    let mut problems = Vec::new();
    let field = |k: &str| loc.find_key(k, start, end).unwrap_or(start);
    let id = d.id.clone();
    let mut bad = |k: &str, msg: String| {
        problems.push(loc.problem(field(k), format!("flag {id:?}: {msg}")));
    };
    if !valid_id(&d.id) {
        bad(
            "id",
            format!("id {:?} must be letters, digits, `.`, `_` or `-`", d.id),
        );
    }
    if let Some(p) = d.rollout_percentage
        && (!(0.0..=100.0).contains(&p) || !p.is_finite())
    {
        bad(
            "rollout_percentage",
            format!("rollout_percentage {p} is outside 0..=100"),
        );
    }
    if let Some(e) = &d.expires
        && !valid_date(e)
    {
        bad("expires", format!("expires {e:?} is not a YYYY-MM-DD date"));
    }
    // Targeting is compiled once: its problems are reported here, and a
    // boolean flag's rollout rule takes the compiled condition.
    let mut targeting = None;
    if let Some(attrs) = d.targeting.as_ref().and_then(|t| t.attributes.as_ref()) {
        let (condition, warnings) = Condition::compile_object(attrs);
        for w in warnings {
            bad(
                "attributes",
                format!(
                    "targeting.attributes{}: {}",
                    w.path.trim_start_matches('$'),
                    w.message
                ),
            );
        }
        targeting = Some(condition);
    }
    let t = d.targeting.take().unwrap_or_default();
    // Every rule of a flag with dependencies carries the same gates.
    let gated = |rule: ForceRule| {
        d.depends_on
            .iter()
            .fold(rule, |r, p| r.with_gate(p.clone(), FLAG_IS_ON.clone()))
    };
    // A boolean flag: forced on for listed ids and groups, then for the
    // rollout share of users matching the attributes. Built as typed rules:
    // a JSON payload in between cost more than the compile itself.
    let bool_feature = |default: Value, targeting: Option<Condition>| {
        let mut feature = Feature::new(default);
        for (id, attribute, values) in [
            ("user_ids", "id", &t.user_ids),
            ("groups", "groups", &t.groups),
        ] {
            if !values.is_empty() {
                let (condition, _) = Condition::compile(&json!({ attribute: { "$in": values } }));
                feature = feature.with_force_rule(gated(
                    ForceRule::new(Value::Bool(true))
                        .with_id(id)
                        .with_condition(condition),
                ));
            }
        }
        let mut rollout = ForceRule::new(Value::Bool(true)).with_id("rollout");
        if let Some(condition) = targeting {
            rollout = rollout.with_condition(condition);
        }
        if let Some(p) = d.rollout_percentage {
            rollout = rollout.with_rollout(p / 100.0, "id", &d.id);
        }
        feature.with_force_rule(gated(rollout))
    };
    // A disabled or killed flag has no rules, so that flags depending on
    // it see its off value too.
    let live = d.enabled && !d.kill_switch;
    let mut warnings = Vec::new();
    let (kind, default_value, feature) = match &d.variants {
        None => {
            let default = d.default.clone().unwrap_or(Value::Bool(false));
            if !default.is_boolean() {
                bad(
                    "default",
                    format!("default {default} must be true or false for a flag without variants"),
                );
            }
            let feature = if live {
                bool_feature(default.clone(), targeting)
            } else {
                Feature::new(default.clone())
            };
            (FlagKind::Bool, default, feature)
        }
        Some(vs) => {
            if vs.len() < 2 {
                bad(
                    "variants",
                    format!("needs at least 2 variants, found {}", vs.len()),
                );
            }
            let mut keys = BTreeSet::new();
            for v in vs {
                if !keys.insert(v.key.as_str()) {
                    bad("variants", format!("duplicate variant key {:?}", v.key));
                }
                if !(v.weight.is_finite() && v.weight >= 0.0) {
                    bad(
                        "variants",
                        format!("variant {:?}: weight {} must be >= 0", v.key, v.weight),
                    );
                }
            }
            let total: f64 = vs.iter().map(|v| v.weight).sum();
            if vs.len() >= 2 && total <= 0.0 {
                bad("variants", "variant weights sum to 0".into());
            }
            let kind = vs
                .first()
                .map_or(FlagKind::Json, |v| FlagKind::of(&v.value));
            if let Some(v) = vs.iter().find(|v| FlagKind::of(&v.value) != kind) {
                bad(
                    "variants",
                    format!(
                        "variant {:?} is {:?} but the first variant is {kind:?}",
                        v.key,
                        FlagKind::of(&v.value)
                    ),
                );
            }
            let default = match &d.default {
                Some(Value::String(k)) => match vs.iter().find(|v| &v.key == k) {
                    Some(v) => v.value.clone(),
                    None => {
                        bad("default", format!("default {k:?} names no variant"));
                        Value::Null
                    }
                },
                Some(other) => {
                    bad(
                        "default",
                        format!("default {other} must name a variant key"),
                    );
                    Value::Null
                }
                None => vs.first().map(|v| v.value.clone()).unwrap_or(Value::Null),
            };
            // Built as a typed experiment rule, as boolean flags are built
            // as typed force rules (the payload JSON cost more than the
            // compile). The condition is the targeting's when only
            // attributes are given, else the `$or` of ids, groups and
            // attributes.
            let condition = if t.user_ids.is_empty() && t.groups.is_empty() {
                targeting
            } else {
                let mut any = Vec::new();
                if !t.user_ids.is_empty() {
                    any.push(json!({"id": {"$in": t.user_ids}}));
                }
                if !t.groups.is_empty() {
                    any.push(json!({"groups": {"$in": t.groups}}));
                }
                if let Some(a) = t.attributes {
                    any.push(Value::Object(a));
                }
                let (condition, w) = Condition::compile(&json!({ "$or": any }));
                warnings.extend(w.into_iter().map(|mut w| {
                    w.path = format!("features.{}.rules[0].condition.{}", d.id, w.path);
                    w
                }));
                Some(condition)
            };
            let weights: Vec<f64> = vs
                .iter()
                .map(|v| if total > 0.0 { v.weight / total } else { 0.0 })
                .collect();
            let mut feature = Feature::new(default.clone());
            if live {
                let variations = vs
                    .iter()
                    .map(|v| (v.key.clone(), v.value.clone()))
                    .collect();
                let mut rule = ExperimentRule::new(d.id.clone(), variations)
                    .with_id("variants")
                    .with_seed(d.id.clone())
                    .with_weights(weights)
                    .with_coverage(d.rollout_percentage.unwrap_or(100.0) / 100.0);
                if let Some(c) = condition {
                    rule = rule.with_condition(c);
                }
                for p in &d.depends_on {
                    rule = rule.with_gate(p.clone(), FLAG_IS_ON.clone());
                }
                feature = feature.with_experiment_rule(rule);
            }
            (kind, default, feature)
        }
    };
    CompiledFlag {
        meta: FlagMeta {
            kind,
            enabled: d.enabled,
            kill_switch: d.kill_switch,
            off_value: default_value,
            description: d.description,
            owner: d.owner,
            expires: d.expires,
        },
        id: d.id,
        feature,
        problems,
        warnings,
    }
}

/// `f` over `items` with their indices, on up to 4 threads when there are
/// many (each thread takes a contiguous share, so results keep their order).
fn par_map<T: Send, R: Send>(items: Vec<T>, f: impl Fn(usize, T) -> R + Sync) -> Vec<R> {
    par_shares(items, |offset, share| {
        share
            .into_iter()
            .enumerate()
            .map(|(j, t)| f(offset + j, t))
            .collect::<Vec<R>>()
    })
    .into_iter()
    .flatten()
    .collect()
}

/// Splits `items` into contiguous shares, one per thread (up to 4; one
/// share below [`PARALLEL_FROM`] items), and runs `f(offset, share)` on each.
pub(crate) fn par_shares<T: Send, R: Send>(
    items: Vec<T>,
    f: impl Fn(usize, Vec<T>) -> R + Sync,
) -> Vec<R> {
    let threads = if items.len() < PARALLEL_FROM {
        1
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
    };
    if threads == 1 {
        return vec![f(0, items)];
    }
    let chunk = items.len().div_ceil(threads);
    let mut shares = Vec::with_capacity(threads);
    let mut rest = items;
    let mut offset = 0;
    while rest.len() > chunk {
        let tail = rest.split_off(chunk);
        shares.push((offset, rest));
        offset += chunk;
        rest = tail;
    }
    shares.push((offset, rest));
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> = shares
            .into_iter()
            .map(|(offset, share)| s.spawn(move || f(offset, share)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
}

/// A dependency cycle, as the flags along it (first repeated at the end).
/// `graph` holds the flags that have dependencies.
/// A dependency cycle (its flags, the first repeated at the end), or the
/// longest dependency chain (its flags, from the dependent to the flag it
/// ends on). Iterative, so a chain of any length cannot overflow the stack.
fn check_dependencies<'a>(
    graph: &BTreeMap<&'a str, &'a [String]>,
) -> Result<Vec<&'a str>, Vec<&'a str>> {
    // Per flag: on the walk's stack, or done with its longest chain's
    // length and the next flag on it.
    enum State<'a> {
        Open,
        Done(usize, Option<&'a str>),
    }
    let mut state: FxHashMap<&'a str, State<'a>> = FxHashMap::default();
    let deps = |n: &str| graph.get(n).copied().unwrap_or_default();
    for &root in graph.keys() {
        if state.contains_key(root) {
            continue;
        }
        // (flag, index of the next dependency to visit)
        let mut stack: Vec<(&'a str, usize)> = vec![(root, 0)];
        state.insert(root, State::Open);
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            let list = deps(node);
            if let Some(dep) = list.get(*next) {
                *next += 1;
                let dep = dep.as_str();
                if dep == node {
                    continue; // reported as "depends on itself"
                }
                match state.get(dep) {
                    Some(State::Open) => {
                        let from = stack.iter().position(|(n, _)| *n == dep).unwrap_or(0);
                        let mut cycle: Vec<&str> = stack[from..].iter().map(|(n, _)| *n).collect();
                        cycle.push(dep);
                        return Err(cycle);
                    }
                    Some(State::Done(..)) => {}
                    None => {
                        state.insert(dep, State::Open);
                        stack.push((dep, 0));
                    }
                }
                continue;
            }
            // Every dependency is done: this flag's longest chain.
            let best = list
                .iter()
                .filter(|d| d.as_str() != node)
                .map(|d| match state.get(d.as_str()) {
                    Some(State::Done(len, _)) => (*len, d.as_str()),
                    _ => (1, d.as_str()),
                })
                .max_by_key(|(len, _)| *len);
            let done = match best {
                Some((len, d)) => State::Done(len + 1, Some(d)),
                None => State::Done(1, None),
            };
            state.insert(node, done);
            stack.pop();
        }
    }
    let mut longest: Vec<&'a str> = Vec::new();
    let start = state
        .iter()
        .filter_map(|(n, s)| match s {
            State::Done(len, _) => Some((*len, *n)),
            State::Open => None,
        })
        .max();
    let mut at = start.map(|(_, n)| n);
    while let Some(n) = at {
        longest.push(n);
        at = match state.get(n) {
            Some(State::Done(_, next)) => *next,
            _ => None,
        };
    }
    Ok(longest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<String> {
        match FlagSet::parse("f.yaml", text, None) {
            Ok(_) => Vec::new(),
            Err(e) => e.problems().iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn every_problem_is_listed_with_its_line() {
        let p = problems(
            "flags:\n  - id: a\n    rollout_percentage: 120\n  - id: b\n    depends_on: [nope]\n    expires: soon\n",
        );
        assert_eq!(
            p,
            vec![
                "f.yaml:3:5: flag \"a\": rollout_percentage 120 is outside 0..=100",
                "f.yaml:5:5: flag \"b\": depends on unknown flag \"nope\"",
                "f.yaml:6:5: flag \"b\": expires \"soon\" is not a YYYY-MM-DD date",
            ]
        );
    }

    #[test]
    fn wrong_types_and_unknown_fields_name_the_field() {
        let p = problems(
            "flags:\n  - id: a\n    rollout_percentage: lots\n  - id: b\n    colour: red\n",
        );
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(
            p[0].starts_with("f.yaml:3:5: flag \"a\": rollout_percentage: invalid type"),
            "{p:?}"
        );
        assert!(p[1].contains("unknown field `colour`"), "{p:?}");
    }

    #[test]
    fn numbers_out_of_range_are_called_that_in_yaml_and_json() {
        for text in [
            "flags:\n  - id: a\n    rollout_percentage: 1e999\n",
            "{\"flags\": [{\"id\": \"a\", \"rollout_percentage\": 1e999}]}",
        ] {
            let p = problems(text);
            assert_eq!(p.len(), 1, "{p:?}");
            assert!(p[0].contains("out of range"), "{p:?}");
            assert!(!p[0].contains("invalid type"), "{p:?}");
        }
    }

    #[test]
    fn json_flags_are_checked_as_yaml_ones_are() {
        // The same problems as the YAML test, plus an unknown top-level
        // field, through the raw JSON path.
        let text = "{\"flags\": [\n  {\"id\": \"a\",\n   \"rollout_percentage\": \"lots\"},\n  {\"id\": \"b\", \"colour\": \"red\"},\n  {\"id\": \"c\", \"depends_on\": [\"zz\"]}\n],\n\"extra\": 1}";
        let p = problems(text);
        assert_eq!(p.len(), 4, "{p:?}");
        assert!(
            p[0].starts_with("f.yaml:3:")
                && p[0].contains("flag \"a\": rollout_percentage: invalid type"),
            "{p:?}"
        );
        assert!(
            p[1].starts_with("f.yaml:4:") && p[1].contains("unknown field `colour`"),
            "{p:?}"
        );
        assert!(
            p[2].starts_with("f.yaml:5:") && p[2].contains("unknown flag \"zz\""),
            "{p:?}"
        );
        assert!(p[3].contains("unknown top-level field `extra`"), "{p:?}");
        let ok = "{\"flags\": [{\"id\": \"a\", \"rollout_percentage\": 50}]}";
        let set = FlagSet::parse("f.json", ok, None).unwrap();
        assert_eq!(set.keys(), ["a"]);
        assert!(problems("{\"flags\": {\"id\": \"a\"}}")[0].contains("must be a list"));
    }

    #[test]
    fn cycles_are_found() {
        let p =
            problems("flags:\n  - id: a\n    depends_on: [b]\n  - id: b\n    depends_on: [a]\n");
        assert!(
            p.iter()
                .any(|m| m.contains("dependency cycle: a -> b -> a")),
            "{p:?}"
        );
    }

    #[test]
    fn yaml_syntax_errors_are_located() {
        let p = problems("flags:\n  - id: a\n   bad: [\n");
        assert_eq!(p.len(), 1);
        assert!(p[0].starts_with("f.yaml:3:"), "{p:?}");
    }
}

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

mod deps;
mod growthbook;
mod parallel;
mod simple;

use self::deps::*;
use self::growthbook::*;
pub(crate) use self::parallel::par_shares;
use self::parallel::*;
use self::simple::*;

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
    let message = locate::without_position(message);
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
    /// The byte offset of `key` (as `key:` or `"key":`) at or after `from`,
    /// before `until`.
    fn find_key(&self, key: &str, from: usize, until: usize) -> Option<usize> {
        locate::find_key(self.text, key, from, until)
    }

    fn problem(&self, offset: usize, message: String) -> Problem {
        Problem::at(self.path, self.text, offset, message)
    }
}

fn parse_document(path: &str, text: &str) -> Result<Value, LoadError> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        serde_json::from_str(text).map_err(|e| {
            let mut p = Problem::json(path, &e);
            p.message = format!("invalid JSON: {}", p.message);
            LoadError::Invalid(vec![p])
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
                LoadError::Invalid(vec![Problem::new(
                    path.to_owned(),
                    line,
                    column,
                    format!("invalid YAML: {}", locate::without_position(&e.to_string())),
                )])
            })
    }
}

/// The text of a flags file, or a problem locating its first byte that is
/// not UTF-8 (a reload then keeps the last good flags).
pub(crate) fn text_of<'b>(origin: &str, bytes: &'b [u8]) -> Result<&'b str, LoadError> {
    locate::utf8_text(bytes).map_err(|e| {
        LoadError::Invalid(vec![Problem::new(
            origin.to_owned(),
            e.line,
            e.column,
            format!("not UTF-8 text (byte 0x{:02x})", e.byte),
        )])
    })
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
            return Err(LoadError::Invalid(vec![Problem::new(
                path.to_owned(),
                e.line,
                e.column,
                format!("collections nested deeper than {} levels", e.limit),
            )]));
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

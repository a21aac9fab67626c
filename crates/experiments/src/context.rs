//! The evaluation context: who is being assigned.

use std::collections::HashMap;
use std::sync::Arc;

use rustc_hash::FxHashMap;
use serde_json::{Map, Value};

use crate::exposure::ExposureLogger;
use crate::js::{NULL, NumText, truthy};
use crate::sticky::StickyBucketService;

/// The attribute hashed when an experiment names none.
pub const DEFAULT_HASH_ATTRIBUTE: &str = "id";

/// Who is being assigned: attributes (JSON values, nested objects and arrays
/// allowed) plus the per-user switches of GrowthBook's context.
///
/// | setting | default |
/// |---|---|
/// | attributes | `{}` |
/// | url | none (no query-string overrides) |
/// | forced variations | none |
/// | QA mode | off |
/// | enabled | on |
/// | sticky bucket service | none |
/// | exposure logger | none |
///
/// ```
/// use flightdeck_experiments::Context;
/// use serde_json::json;
/// let ctx = Context::new(json!({"id": "user-1", "country": "US"}));
/// assert_eq!(ctx.attributes()["country"], "US");
/// ```
#[derive(Debug, Clone, Default)]
pub struct Context {
    attributes: Value,
    // The top-level attributes again, hashed: targeting reads them on every
    // evaluation, and a hash lookup beats the JSON object's ordered search.
    index: FxHashMap<String, Value>,
    url: Option<String>,
    forced_variations: HashMap<String, i64>,
    qa_mode: bool,
    disabled: bool,
    sticky: Option<Arc<dyn StickyBucketService>>,
    exposures: Option<Arc<ExposureLogger>>,
}

impl Context {
    /// A context with these attributes. A value that is not an object is
    /// treated as no attributes.
    pub fn new(attributes: Value) -> Self {
        let attributes = match attributes {
            Value::Object(_) => attributes,
            _ => Value::Object(Map::new()),
        };
        let index = attributes
            .as_object()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        Self {
            attributes,
            index,
            ..Self::default()
        }
    }

    /// A context for one user id, hashed as the `id` attribute.
    pub fn for_user(user_id: &str) -> Self {
        let mut map = Map::new();
        map.insert(DEFAULT_HASH_ATTRIBUTE.to_owned(), Value::from(user_id));
        Self::new(Value::Object(map))
    }

    /// Reads GrowthBook's JSON context shape: `attributes`, `url`,
    /// `forcedVariations`, `qaMode` and `enabled` (other keys, such as
    /// `features`, belong to a [`FeatureSet`](crate::FeatureSet)).
    pub fn from_json(v: &Value) -> Self {
        let mut ctx = Self::new(v.get("attributes").cloned().unwrap_or(Value::Null));
        ctx.url = v.get("url").and_then(Value::as_str).map(str::to_owned);
        if let Some(Value::Object(forced)) = v.get("forcedVariations") {
            ctx.forced_variations = forced
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_f64()? as i64)))
                .collect();
        }
        ctx.qa_mode = v.get("qaMode").is_some_and(truthy);
        ctx.disabled = v.get("enabled") == Some(&Value::Bool(false));
        ctx
    }

    /// Sets the page URL, read for `?experiment-key=N` overrides.
    /// Defaults to none.
    #[must_use]
    pub fn with_url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// Forces `experiment_key` to variation `index` for this user (an index
    /// out of range means "not in the experiment"). Defaults to none.
    #[must_use]
    pub fn with_forced_variation(mut self, experiment_key: impl Into<String>, index: i64) -> Self {
        self.forced_variations.insert(experiment_key.into(), index);
        self
    }

    /// QA mode: nobody is hashed into an experiment. Defaults to off.
    #[must_use]
    pub fn with_qa_mode(mut self, on: bool) -> Self {
        self.qa_mode = on;
        self
    }

    /// Turns all experiments off for this context. Defaults to enabled.
    #[must_use]
    pub fn with_enabled(mut self, enabled: bool) -> Self {
        self.disabled = !enabled;
        self
    }

    /// Keeps assignments in `service` so a user keeps their variation when
    /// weights change. Defaults to none.
    #[must_use]
    pub fn with_sticky_buckets(mut self, service: Arc<dyn StickyBucketService>) -> Self {
        self.sticky = Some(service);
        self
    }

    /// Logs an exposure for each assignment into an experiment. Defaults to
    /// none.
    #[must_use]
    pub fn with_exposures(mut self, logger: Arc<ExposureLogger>) -> Self {
        self.exposures = Some(logger);
        self
    }

    /// Sets one attribute.
    #[must_use]
    pub fn with_attribute(mut self, name: impl Into<String>, value: Value) -> Self {
        let name = name.into();
        if let Value::Object(map) = &mut self.attributes {
            map.insert(name.clone(), value.clone());
        }
        self.index.insert(name, value);
        self
    }

    /// The attributes object.
    pub fn attributes(&self) -> &Value {
        &self.attributes
    }

    /// The top-level attributes, hashed.
    pub(crate) fn attribute_index(&self) -> &FxHashMap<String, Value> {
        &self.index
    }

    /// The page URL, if set.
    pub fn url(&self) -> Option<&str> {
        self.url.as_deref()
    }

    pub(crate) fn forced_variation(&self, key: &str) -> Option<i64> {
        self.forced_variations.get(key).copied()
    }

    pub(crate) fn qa_mode(&self) -> bool {
        self.qa_mode
    }

    pub(crate) fn enabled(&self) -> bool {
        !self.disabled
    }

    pub(crate) fn sticky(&self) -> Option<&Arc<dyn StickyBucketService>> {
        self.sticky.as_ref()
    }

    pub(crate) fn exposures(&self) -> Option<&Arc<ExposureLogger>> {
        self.exposures.as_ref()
    }

    /// An attribute by its literal name, else by dot path; `null` when absent.
    pub(crate) fn attribute(&self, name: &str) -> &Value {
        if let Some(v) = self.index.get(name) {
            return v;
        }
        if !name.contains('.') {
            return &NULL;
        }
        let mut current = &self.attributes;
        for part in name.split('.') {
            current = match current {
                Value::Object(m) => match m.get(part) {
                    Some(v) => v,
                    None => return &NULL,
                },
                _ => return &NULL,
            };
        }
        current
    }

    /// GrowthBook's `getHashAttribute`: the attribute to hash (defaulting to
    /// `id`) and its value, falling back to `fallback` when the first is
    /// falsy.
    pub(crate) fn hash_attribute<'a>(
        &'a self,
        attr: Option<&'a str>,
        fallback: Option<&'a str>,
    ) -> (&'a str, &'a Value) {
        let name = attr.unwrap_or(DEFAULT_HASH_ATTRIBUTE);
        let value = self.attribute(name);
        if !truthy(value) {
            if let Some(fb) = fallback {
                let v = self.attribute(fb);
                if truthy(v) {
                    return (fb, v);
                }
            }
        }
        (name, value)
    }
}

/// An attribute value as the text that is hashed (JavaScript's string
/// concatenation), without allocating for strings and numbers.
#[derive(Debug)]
pub(crate) enum AttrText<'a> {
    Borrowed(&'a str),
    Num(NumText),
    Owned(String),
}

impl<'a> AttrText<'a> {
    pub(crate) fn of(v: &'a Value) -> Self {
        match v {
            Value::String(s) => AttrText::Borrowed(s),
            Value::Number(n) => AttrText::Num(NumText::of_number(n)),
            other => AttrText::Owned(crate::js::to_js_string(other).into_owned()),
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        match self {
            AttrText::Borrowed(s) => s,
            AttrText::Num(n) => n.as_str(),
            AttrText::Owned(s) => s,
        }
    }
}

/// GrowthBook's `toString` for sticky-bucket keys: strings as they are,
/// anything else as JSON.
pub(crate) fn sticky_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

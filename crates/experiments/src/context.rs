//! The evaluation context: who is being assigned.

use std::collections::HashMap;
use std::sync::Arc;

use rustc_hash::FxHashMap;
use serde_json::{Map, Value};

use crate::attr::{self, AttrId, AttrName};
use crate::exposure::ExposureLogger;
use crate::js::{NULL, NumText, truthy};
use crate::sticky::StickyBucketService;

/// The attribute hashed when an experiment names none.
pub const DEFAULT_HASH_ATTRIBUTE: &str = "id";

static DEFAULT_ATTR: std::sync::LazyLock<AttrName> =
    std::sync::LazyLock::new(|| AttrName::new(DEFAULT_HASH_ATTRIBUTE));

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
    // The top-level attributes again, for targeting, which reads them on
    // every evaluation: by interned id (see `attr`) when the name had one
    // when the context was built, else by name.
    slots: Slots,
    url: Option<String>,
    forced_variations: HashMap<String, i64>,
    qa_mode: bool,
    disabled: bool,
    sticky: Option<Arc<dyn StickyBucketService>>,
    exposures: Option<Arc<ExposureLogger>>,
}

/// The top-level attributes, findable by interned id or by name.
#[derive(Debug, Clone, Default)]
struct Slots {
    values: Vec<Value>,
    by_name: FxHashMap<String, u32>,
    // Indexed by attribute id: 1 + the index into `values`, or 0 when the
    // context lacks that attribute. Used while there are few ids.
    dense: Vec<u32>,
    // (id, index into `values`), sorted by id, when there are many ids.
    by_id: Vec<(AttrId, u32)>,
    // Every id below this one was looked up when the context was built, so
    // an id below it that is not found is an absent attribute.
    known_ids: AttrId,
}

/// Up to this many interned names, a context finds attributes by direct
/// indexing (a 4-byte entry per name); beyond it, by binary search.
const DENSE_IDS: AttrId = 512;

impl Slots {
    fn new(attributes: &Value) -> Self {
        let Some(map) = attributes.as_object() else {
            return Self::default();
        };
        let mut slots = Self {
            values: Vec::with_capacity(map.len()),
            by_name: FxHashMap::with_capacity_and_hasher(map.len(), Default::default()),
            dense: Vec::new(),
            by_id: Vec::new(),
            known_ids: 0,
        };
        attr::read(|table| {
            slots.known_ids = table.len();
            if slots.known_ids <= DENSE_IDS {
                slots.dense = vec![0; slots.known_ids as usize];
            }
            for (k, v) in map {
                let slot = slots.values.len() as u32;
                slots.values.push(v.clone());
                slots.by_name.insert(k.clone(), slot);
                if let Some(id) = table.get(k) {
                    slots.index(id, slot);
                }
            }
        });
        slots
    }

    /// Records that attribute `id` (below `known_ids`) is at `slot`.
    fn index(&mut self, id: AttrId, slot: u32) {
        if self.known_ids <= DENSE_IDS {
            self.dense[id as usize] = slot + 1;
        } else {
            let at = self.by_id.partition_point(|&(i, _)| i < id);
            self.by_id.insert(at, (id, slot));
        }
    }

    fn set(&mut self, name: String, value: Value) {
        if let Some(&slot) = self.by_name.get(&name) {
            self.values[slot as usize] = value;
            return;
        }
        let slot = self.values.len() as u32;
        self.values.push(value);
        let id = attr::read(|t| t.get(&name));
        self.by_name.insert(name, slot);
        match id {
            Some(id) if id < self.known_ids => self.index(id, slot),
            // Newer than the ids this context knows: found by name.
            _ => {}
        }
    }

    fn by_name(&self, name: &str) -> Option<&Value> {
        self.by_name.get(name).map(|&s| &self.values[s as usize])
    }

    #[inline]
    fn get(&self, id: AttrId, name: &str) -> Option<&Value> {
        if id >= self.known_ids {
            return self.by_name(name);
        }
        let slot = match self.dense.get(id as usize) {
            Some(&s) => s.checked_sub(1)?,
            None => {
                let at = self.by_id.binary_search_by_key(&id, |&(i, _)| i).ok()?;
                self.by_id[at].1
            }
        };
        self.values.get(slot as usize)
    }
}

impl Context {
    /// A context with these attributes. A value that is not an object is
    /// treated as no attributes.
    pub fn new(attributes: Value) -> Self {
        let attributes = match attributes {
            Value::Object(_) => attributes,
            _ => Value::Object(Map::new()),
        };
        Self {
            slots: Slots::new(&attributes),
            attributes,
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
        self.slots.set(name, value);
        self
    }

    /// The attributes object.
    pub fn attributes(&self) -> &Value {
        &self.attributes
    }

    /// A top-level attribute by its interned id (`name` is the same
    /// attribute's name, for contexts built before the id existed).
    #[inline]
    pub(crate) fn top_level(&self, id: AttrId, name: &str) -> Option<&Value> {
        self.slots.get(id, name)
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
        match self.slots.by_name(name) {
            Some(v) => v,
            None => self.dotted(name),
        }
    }

    /// [`attribute`](Self::attribute) for an interned name.
    #[inline]
    fn attribute_at(&self, a: &AttrName) -> &Value {
        match self.slots.get(a.id, &a.name) {
            Some(v) => v,
            None => self.dotted(&a.name),
        }
    }

    fn dotted(&self, name: &str) -> &Value {
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
    #[inline]
    pub(crate) fn hash_attribute<'a>(
        &'a self,
        attr: Option<&'a AttrName>,
        fallback: Option<&'a str>,
    ) -> (&'a str, &'a Value) {
        let attr = attr.unwrap_or(&DEFAULT_ATTR);
        let (name, value) = (attr.name.as_str(), self.attribute_at(attr));
        if !truthy(value)
            && let Some(fb) = fallback
        {
            let v = self.attribute(fb);
            if truthy(v) {
                return (fb, v);
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn attributes_are_found_by_id_with_few_or_many_interned_names() {
        let a = attr::intern("slots-test-a");
        let few = Context::new(json!({"slots-test-a": 1, "other": 2}));
        assert_eq!(few.top_level(a, "slots-test-a"), Some(&json!(1)));
        // Past the dense limit, contexts switch to a sorted search.
        let many: Vec<AttrId> = (0..DENSE_IDS + 10)
            .map(|i| attr::intern(&format!("slots-test-{i}")))
            .collect();
        let ctx = Context::new(json!({"slots-test-3": "x", "slots-test-a": 5}))
            .with_attribute("slots-test-500", json!(true));
        assert!(ctx.slots.known_ids > DENSE_IDS && ctx.slots.dense.is_empty());
        assert_eq!(ctx.top_level(many[3], "slots-test-3"), Some(&json!("x")));
        assert_eq!(ctx.top_level(a, "slots-test-a"), Some(&json!(5)));
        assert_eq!(
            ctx.top_level(many[500], "slots-test-500"),
            Some(&json!(true))
        );
        assert_eq!(ctx.top_level(many[4], "slots-test-4"), None);
        // A context built before, with the dense table, still answers.
        assert_eq!(few.top_level(many[3], "slots-test-3"), None);
        assert_eq!(few.top_level(a, "slots-test-a"), Some(&json!(1)));
    }
}

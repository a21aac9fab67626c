//! Strict loading of experiment files a person edits.
//!
//! [`Experiment::from_json`] follows the SDK spec and tolerates anything (bad
//! weights become equal weights). A file in a repository deserves better: a
//! typo'd field, weights that do not sum to 1 or an invalid regex are
//! errors naming the file, line, column and field.

use std::path::Path;

use flightdeck_obs_core::locate;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::condition::Condition;
use crate::error::LoadError;
use crate::experiment::Experiment;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)] // Fields are read for their types; the value is recompiled.
struct ExperimentDef {
    key: String,
    variations: Vec<Value>,
    weights: Option<Vec<f64>>,
    coverage: Option<f64>,
    condition: Option<Map<String, Value>>,
    parent_conditions: Option<Vec<ParentDef>>,
    namespace: Option<(String, f64, f64)>,
    filters: Option<Vec<FilterDef>>,
    force: Option<u32>,
    active: Option<bool>,
    status: Option<Status>,
    seed: Option<String>,
    hash_version: Option<u32>,
    hash_attribute: Option<String>,
    fallback_attribute: Option<String>,
    disable_sticky_bucketing: Option<bool>,
    bucket_version: Option<u32>,
    min_bucket_version: Option<u32>,
    meta: Option<Vec<MetaDef>>,
    ranges: Option<Vec<(f64, f64)>>,
    name: Option<String>,
    phase: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum Status {
    Draft,
    Running,
    Stopped,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct ParentDef {
    id: String,
    condition: Map<String, Value>,
    gate: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
struct FilterDef {
    seed: String,
    ranges: Vec<(f64, f64)>,
    hash_version: Option<u32>,
    attribute: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct MetaDef {
    key: Option<String>,
    name: Option<String>,
    passthrough: Option<bool>,
}

/// A problem with `field`, located at its key in `text`: the innermost key
/// of the path that can be found (`condition.email.$regex` at `$regex`),
/// the document's start when not even the first can.
fn invalid(path: &str, text: &str, field: &str, message: String) -> LoadError {
    let at = locate::find_path(text, field).unwrap_or(0);
    LoadError::Invalid(locate::Problem::at(path, text, at, message).with_field(field))
}

/// Parses and validates an experiment from `text`; `path` names it in
/// errors.
///
/// ```
/// use flightdeck_experiments::parse_experiment;
/// let err = parse_experiment("exp.json", r#"{
///   "key": "e",
///   "variations": [0, 1],
///   "weights": [0.5, "half"]
/// }"#).unwrap_err();
/// assert!(err.to_string().starts_with("exp.json:4:"), "{err}");
/// assert!(err.to_string().contains("weights[1]"), "{err}");
/// ```
///
/// # Errors
///
/// [`LoadError::Invalid`] for malformed JSON, unknown fields, wrong types,
/// and values the SDK would silently repair: fewer than two variations,
/// weights of the wrong length or not summing to 1, coverage outside
/// `[0, 1]`, unknown hash versions, namespaces and ranges outside `[0, 1]`,
/// forced variations that do not exist, invalid regexes and unknown
/// operators.
pub fn parse_experiment(path: &str, text: &str) -> Result<Experiment, LoadError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let def: ExperimentDef = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        LoadError::Invalid(locate::Problem::json(path, &inner).with_field(field))
    })?;
    de.end()
        .map_err(|e| LoadError::Invalid(locate::Problem::json(path, &e).with_field(".")))?;
    let n = def.variations.len();
    let bad = |field: &str, message: String| Err(invalid(path, text, field, message));
    if def.key.trim().is_empty() {
        return bad("key", "must not be empty".into());
    }
    if n < 2 {
        return bad(
            "variations",
            format!("needs at least 2 variations, found {n}"),
        );
    }
    if let Some(w) = &def.weights {
        if w.len() != n {
            return bad("weights", format!("{} weights for {n} variations", w.len()));
        }
        if let Some((i, x)) = w
            .iter()
            .enumerate()
            .find(|(_, x)| !(x.is_finite() && **x >= 0.0))
        {
            return bad(
                &format!("weights[{i}]"),
                format!("weight {x} must be a finite number >= 0"),
            );
        }
        let total: f64 = w.iter().sum();
        if !(0.99..=1.01).contains(&total) {
            return bad("weights", format!("weights sum to {total}, not 1"));
        }
    }
    if let Some(c) = def.coverage
        && !(0.0..=1.0).contains(&c)
    {
        return bad("coverage", format!("coverage {c} is outside [0, 1]"));
    }
    if let Some(h) = def.hash_version
        && h != 1
        && h != 2
    {
        return bad(
            "hashVersion",
            format!("unknown hash version {h}; use 1 or 2"),
        );
    }
    if let Some((_, s, e)) = &def.namespace
        && !(0.0 <= *s && s <= e && *e <= 1.0)
    {
        return bad(
            "namespace",
            format!("range [{s}, {e}] is not inside [0, 1]"),
        );
    }
    if let Some(r) = &def.ranges {
        if r.len() != n {
            return bad("ranges", format!("{} ranges for {n} variations", r.len()));
        }
        if let Some((i, (s, e))) = r
            .iter()
            .enumerate()
            .find(|(_, (s, e))| !(0.0 <= *s && s <= e && *e <= 1.0))
        {
            return bad(
                &format!("ranges[{i}]"),
                format!("[{s}, {e}] is not inside [0, 1]"),
            );
        }
    }
    if let Some(f) = def.force
        && f as usize >= n
    {
        return bad(
            "force",
            format!("variation {f} does not exist ({n} variations)"),
        );
    }
    if let Some(m) = &def.meta
        && m.len() != n
    {
        return bad(
            "meta",
            format!("{} meta entries for {n} variations", m.len()),
        );
    }
    let value: Value = serde_json::from_str(text)
        .map_err(|e| LoadError::Invalid(locate::Problem::json(path, &e).with_field(".")))?;
    if let Some(c) = value.get("condition")
        && let Some(w) = Condition::compile(c).1.first()
    {
        let field = format!("condition{}", w.path.trim_start_matches('$'));
        return bad(&field, w.message.clone());
    }
    let exp = Experiment::from_json(&value);
    if let Some(w) = exp.warnings().first() {
        return bad(&w.path, w.message.clone());
    }
    Ok(exp)
}

/// Reads and validates an experiment file (GrowthBook's JSON shape).
///
/// # Errors
///
/// [`LoadError::Read`] when unreadable; otherwise as [`parse_experiment`].
pub fn load_experiment_file(path: &Path) -> Result<Experiment, LoadError> {
    let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let name = path.display().to_string();
    let text = locate::utf8_text(&bytes).map_err(|e| {
        LoadError::Invalid(
            locate::Problem::new(
                name.clone(),
                e.line,
                e.column,
                format!("not UTF-8 text (byte 0x{:02x})", e.byte),
            )
            .with_field("."),
        )
    })?;
    parse_experiment(&name, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        parse_experiment("e.json", text).unwrap_err().to_string()
    }

    #[test]
    fn syntax_errors_name_line_and_column() {
        let e = err("{\n  \"key\": \"e\",\n  \"variations\": [0, 1\n}");
        assert!(e.starts_with("e.json:4:1: "), "{e}");
    }

    #[test]
    fn unknown_fields_are_errors() {
        let e = err(r#"{"key": "e", "variations": [0, 1], "wieghts": [0.5, 0.5]}"#);
        assert!(e.contains("unknown field `wieghts`"), "{e}");
    }

    #[test]
    fn weights_must_sum_to_one_and_the_line_is_found() {
        let e = err("{\n\"key\": \"e\",\n\"variations\": [0, 1],\n\"weights\": [0.5, 0.6]\n}");
        assert_eq!(e, "e.json:4:1: weights: weights sum to 1.1, not 1");
    }

    #[test]
    fn invalid_regex_is_an_error_with_its_path() {
        let e =
            err(r#"{"key": "e", "variations": [0, 1], "condition": {"email": {"$regex": "("}}}"#);
        assert!(e.contains("condition.email.$regex: invalid regex"), "{e}");
        // On its own line, the nested key itself is located.
        let e = err(
            "{\n\"key\": \"e\",\n\"variations\": [0, 1],\n\"condition\": {\n  \"email\": {\n    \"$regex\": \"(\"\n  }\n}\n}",
        );
        assert!(
            e.starts_with("e.json:6:5: condition.email.$regex: invalid regex"),
            "{e}"
        );
    }

    #[test]
    fn a_valid_file_loads() {
        let exp = parse_experiment(
            "e.json",
            r#"{"key": "e", "variations": ["a", "b"], "weights": [0.2, 0.8], "coverage": 0.5}"#,
        )
        .unwrap();
        assert_eq!(exp.weights(), &[0.2, 0.8]);
    }
}

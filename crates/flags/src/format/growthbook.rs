//! GrowthBook's features payload (plain or encrypted) compiled to the engine,
//! shares compiled in parallel past a size.

use super::*;

/// A JSON value (a feature's or a flag's definition), as raw text or
/// already parsed.
#[derive(Clone, Copy)]
pub(super) enum Json<'a> {
    Raw(&'a RawValue),
    Parsed(&'a Value),
}

/// A JSON document (either format) read without building it as one
/// `Value` tree: its top-level values stay raw text, and each flag or
/// feature is parsed on its own, on the thread that compiles it. `None`
/// when `text` is not a JSON object (the caller's general path then reports
/// where it is broken) or holds neither format.
pub(super) fn parse_json_document(
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

pub(super) fn features_not_an_object(loc: &Locator<'_>) -> LoadError {
    LoadError::Invalid(vec![loc.problem(
        loc.find_key("features", 0, loc.text.len()).unwrap_or(0),
        "`features` must be an object of feature key to definition".into(),
    )])
}

pub(super) fn decrypt_features(
    enc: &str,
    key: Option<&str>,
    loc: &Locator<'_>,
) -> Result<String, LoadError> {
    let key = key.ok_or_else(|| LoadError::Decrypt {
        path: loc.path.to_owned(),
        source: crate::error::DecryptError::MissingKey,
    })?;
    decrypt(enc, key).map_err(|source| LoadError::Decrypt {
        path: loc.path.to_owned(),
        source,
    })
}

pub(super) fn decrypted_not_json(e: &serde_json::Error, loc: &Locator<'_>) -> LoadError {
    let mut p = Problem::json(loc.path, e);
    p.message = format!("decrypted features are not valid JSON: {}", p.message);
    LoadError::Invalid(vec![p])
}

/// A GrowthBook payload already parsed as a `Value` (a YAML document).
pub(super) fn compile_growthbook(
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
pub(super) const PARALLEL_FROM: usize = 512;

/// What one thread makes of its share of the features.
#[derive(Default)]
pub(super) struct Compiled {
    features: Vec<(String, Feature)>,
    meta: Vec<(String, FlagMeta)>,
    warnings: Vec<ConditionWarning>,
    problems: Vec<Problem>,
}

/// Compiles GrowthBook feature definitions, on several threads for large
/// payloads: each thread parses (for raw text), checks and compiles its
/// share, and frees its parse trees itself.
pub(super) fn compile_features(
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

pub(super) fn compile_share(share: &[(String, Json<'_>)], loc: &Locator<'_>) -> Compiled {
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

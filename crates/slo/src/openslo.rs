//! OpenSLO v1 validation, with the rules of the reference validator
//! (`oslo validate`, OpenSLO/oslo): RFC-1123 names, known kinds, `op`
//! forbidden on ratio objectives, the SLO's required parts and allowed
//! values, and unknown fields rejected.
//!
//! Every problem is reported, each as `file: document N: field: message`
//! naming the value, not just the first.

use serde_norway::Value;

use crate::duration::PromDuration;

/// One validation problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenSloProblem {
    /// Zero-based index of the document in the file.
    pub document: usize,
    /// The document's kind and name, e.g. `SLO 'web-availability'`.
    pub subject: String,
    /// The field path, e.g. `spec.objectives[0].op`.
    pub field: String,
    /// What is wrong, naming the value.
    pub message: String,
}

impl OpenSloProblem {
    /// The `file: document N: field: message` line.
    pub fn line(&self, file: &str) -> String {
        format!(
            "{file}: document {} ({}): {}: {}",
            self.document, self.subject, self.field, self.message
        )
    }
}

const KINDS: [&str; 7] = [
    "DataSource",
    "SLO",
    "SLI",
    "AlertPolicy",
    "AlertCondition",
    "AlertNotificationTarget",
    "Service",
];

fn rfc1123(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

fn show(v: &Value) -> String {
    match v {
        Value::String(s) => format!("'{s}'"),
        other => serde_norway::to_string(other)
            .map_or_else(|_| "?".into(), |s| format!("'{}'", s.trim())),
    }
}

struct Checker {
    doc: usize,
    subject: String,
    out: Vec<OpenSloProblem>,
}

impl Checker {
    fn err(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.out.push(OpenSloProblem {
            document: self.doc,
            subject: self.subject.clone(),
            field: field.into(),
            message: message.into(),
        });
    }

    fn only_fields(&mut self, v: &Value, path: &str, allowed: &[&str]) {
        if let Some(map) = v.as_mapping() {
            for key in map.keys() {
                let k = key.as_str().unwrap_or("?");
                if !allowed.contains(&k) {
                    let at = if path.is_empty() {
                        k.to_owned()
                    } else {
                        format!("{path}.{k}")
                    };
                    self.err(
                        at,
                        format!("unknown field (allowed: {})", allowed.join(", ")),
                    );
                }
            }
        }
    }

    fn name(&mut self, v: &Value, path: &str) {
        match v.get("name").and_then(Value::as_str) {
            None => self.err(format!("{path}.name"), "is required"),
            Some(n) if !rfc1123(n) => self.err(
                format!("{path}.name"),
                format!("value '{n}' must match '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$' (lowercase RFC-1123 label, at most 63 characters)"),
            ),
            Some(_) => {}
        }
    }

    fn slo(&mut self, spec: &Value) {
        self.only_fields(
            spec,
            "spec",
            &[
                "description",
                "service",
                "indicator",
                "indicatorRef",
                "timeWindow",
                "budgetingMethod",
                "objectives",
                "alertPolicies",
            ],
        );
        if spec
            .get("service")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            self.err("spec.service", "is required");
        }
        let indicator = spec.get("indicator");
        match (indicator, spec.get("indicatorRef")) {
            (Some(_), Some(_)) => self.err(
                "spec.indicator",
                "give either indicator or indicatorRef, not both",
            ),
            (None, None) => self.err(
                "spec.indicator",
                "one of indicator or indicatorRef is required",
            ),
            _ => {}
        }
        if let Some(ind) = indicator
            && let Some(meta) = ind.get("metadata")
        {
            self.name(meta, "spec.indicator.metadata");
        }
        let is_ratio = indicator
            .and_then(|i| i.get("spec"))
            .is_some_and(|s| s.get("ratioMetric").is_some());
        self.time_window(spec);
        let method = spec.get("budgetingMethod").and_then(Value::as_str);
        match method {
            Some("Occurrences" | "Timeslices" | "RatioTimeslices") => {}
            Some(m) => self.err(
                "spec.budgetingMethod",
                format!("value '{m}' must be one of Occurrences, Timeslices, RatioTimeslices"),
            ),
            None => self.err("spec.budgetingMethod", "is required"),
        }
        let Some(objectives) = spec
            .get("objectives")
            .and_then(Value::as_sequence)
            .filter(|o| !o.is_empty())
        else {
            self.err("spec.objectives", "at least one objective is required");
            return;
        };
        for (j, o) in objectives.iter().enumerate() {
            self.objective(j, o, method, is_ratio);
        }
    }

    /// `spec.timeWindow`: exactly one, with a duration, and a calendar unless rolling.
    fn time_window(&mut self, spec: &Value) {
        match spec.get("timeWindow").and_then(Value::as_sequence) {
            Some(w) if w.len() == 1 => {
                let tw = &w[0];
                self.only_fields(
                    tw,
                    "spec.timeWindow[0]",
                    &["duration", "isRolling", "calendar"],
                );
                match tw.get("duration").and_then(Value::as_str) {
                    None => self.err("spec.timeWindow[0].duration", "is required"),
                    Some(d) => {
                        // Bytes, not string slices: the text may hold any
                        // character, and a unit is one ASCII letter.
                        let b = d.as_bytes();
                        let ok = b.len() >= 2
                            && b[..b.len() - 1].iter().all(u8::is_ascii_digit)
                            && b"mhdwMQY".contains(&b[b.len() - 1]);
                        if !ok {
                            self.err(
                                "spec.timeWindow[0].duration",
                                format!(
                                    "value '{d}' must be a whole number and one of m h d w M Q Y"
                                ),
                            );
                        }
                    }
                }
                let rolling = tw
                    .get("isRolling")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                if !rolling && tw.get("calendar").is_none() {
                    self.err(
                        "spec.timeWindow[0].calendar",
                        "is required when isRolling is false",
                    );
                }
            }
            Some(w) => self.err(
                "spec.timeWindow",
                format!("exactly one time window is allowed, found {}", w.len()),
            ),
            None => self.err("spec.timeWindow", "is required"),
        }
    }

    /// One of `spec.objectives`: its fields, op, target and time slices.
    fn objective(&mut self, j: usize, o: &Value, method: Option<&str>, is_ratio: bool) {
        let at = |f: &str| format!("spec.objectives[{j}].{f}");
        self.only_fields(
            o,
            &format!("spec.objectives[{j}]"),
            &[
                "displayName",
                "op",
                "value",
                "target",
                "targetPercent",
                "timeSliceTarget",
                "timeSliceWindow",
                "indicator",
                "indicatorRef",
                "compositeWeight",
            ],
        );
        if let Some(op) = o.get("op") {
            if is_ratio {
                self.err(
                    at("op"),
                    format!(
                        "with value {}: property is forbidden for a ratioMetric indicator",
                        show(op)
                    ),
                );
            } else if !matches!(op.as_str(), Some("lte" | "gte" | "lt" | "gt")) {
                self.err(
                    at("op"),
                    format!("value {} must be one of lte, gte, lt, gt", show(op)),
                );
            }
        }
        match (
            o.get("target").and_then(Value::as_f64),
            o.get("targetPercent").and_then(Value::as_f64),
        ) {
            (Some(t), None) if !(0.0..1.0).contains(&t) => {
                self.err(at("target"), format!("value {t} must be within [0, 1)"))
            }
            (None, Some(t)) if !(0.0..100.0).contains(&t) => self.err(
                at("targetPercent"),
                format!("value {t} must be within [0, 100)"),
            ),
            (Some(_), Some(_)) => self.err(
                at("target"),
                "give either target or targetPercent, not both",
            ),
            (None, None) => self.err(at("target"), "one of target or targetPercent is required"),
            _ => {}
        }
        if method == Some("Timeslices") {
            match o.get("timeSliceTarget").and_then(Value::as_f64) {
                Some(t) if t > 0.0 && t <= 1.0 => {}
                Some(t) => self.err(
                    at("timeSliceTarget"),
                    format!("value {t} must be within (0, 1]"),
                ),
                None => self.err(
                    at("timeSliceTarget"),
                    "is required with budgetingMethod Timeslices",
                ),
            }
        }
        if matches!(method, Some("Timeslices" | "RatioTimeslices")) {
            let w = o.get("timeSliceWindow");
            let ok = match w {
                Some(Value::Number(n)) => n.as_f64().is_some_and(|v| v > 0.0),
                Some(Value::String(s)) => PromDuration::parse(s).is_ok(),
                _ => false,
            };
            if !ok {
                self.err(
                    at("timeSliceWindow"),
                    format!(
                        "value {} must be a duration like 1m (a bare number is minutes)",
                        w.map_or("missing".into(), show)
                    ),
                );
            }
        }
    }
}

/// Validates OpenSLO v1 YAML: one document, a list of documents, or several
/// `---`-separated documents. Returns every problem found (empty when valid).
///
/// # Errors
///
/// A message with line and column when the text is not YAML at all.
pub fn validate_openslo(text: &str) -> Result<Vec<OpenSloProblem>, String> {
    if let Err(e) =
        flightdeck_obs_core::locate::check_nesting(text, flightdeck_obs_core::locate::MAX_NESTING)
    {
        return Err(e.to_string());
    }
    let mut docs = Vec::new();
    for d in serde_norway::Deserializer::from_str(text) {
        let v: Value = serde::Deserialize::deserialize(d).map_err(|e| e.to_string())?;
        match v {
            Value::Sequence(items) => docs.extend(items),
            Value::Null => {}
            other => docs.push(other),
        }
    }
    let mut out = Vec::new();
    for (i, doc) in docs.iter().enumerate() {
        let kind = doc.get("kind").and_then(Value::as_str).unwrap_or("?");
        let name = doc
            .get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
            .unwrap_or("?");
        let mut c = Checker {
            doc: i,
            subject: format!("{kind} '{name}'"),
            out: Vec::new(),
        };
        match doc.get("apiVersion").and_then(Value::as_str) {
            Some("openslo/v1") => {}
            other => c.err(
                "apiVersion",
                format!(
                    "value {} is not supported; use openslo/v1",
                    other.map_or("missing".into(), |s| format!("'{s}'"))
                ),
            ),
        }
        if !KINDS.contains(&kind) {
            c.err(
                "kind",
                format!("value '{kind}' must be one of {}", KINDS.join(", ")),
            );
        }
        c.only_fields(doc, "", &["apiVersion", "kind", "metadata", "spec"]);
        match doc.get("metadata") {
            Some(meta) => {
                c.only_fields(
                    meta,
                    "metadata",
                    &["name", "displayName", "labels", "annotations"],
                );
                c.name(meta, "metadata");
            }
            None => c.err("metadata", "is required"),
        }
        if kind == "SLO" {
            match doc.get("spec") {
                Some(spec) => c.slo(spec),
                None => c.err("spec", "is required"),
            }
        }
        out.extend(c.out);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the fuzzer: a duration of one two-byte character made a
    /// string slice cut inside it.
    #[test]
    fn a_non_ascii_duration_is_a_problem_not_a_panic() {
        let text = "apiVersion: openslo/v1\nkind: SLO\nmetadata:\n  name: s\nspec:\n  service: w\n  indicatorRef: i\n  timeWindow:\n    - duration: \u{0648}\n      isRolling: true\n  budgetingMethod: Occurrences\n  objectives:\n    - target: 0.99\n";
        let problems = validate_openslo(text).unwrap();
        assert!(
            problems
                .iter()
                .any(|p| p.message.contains("must be a whole number")),
            "{problems:?}"
        );
    }

    #[test]
    fn names_are_rfc1123_labels() {
        assert!(rfc1123("web-availability"));
        assert!(rfc1123("123-abc"));
        for bad in ["example service", "Upper", "-x", "x-", "", &"a".repeat(64)] {
            assert!(!rfc1123(bad), "{bad:?}");
        }
    }
}

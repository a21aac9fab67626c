//! `golden.yaml`, the file beside the cases: comparison rules, tolerances
//! and Tracetest-style assertions run on every checked trace.
//!
//! ```yaml
//! latency_tolerance: 0.2        # share of a span's self time
//! latency_floor_ms: 5
//! quality_tolerance: 0.05
//! quality: [rag.relevance_score, "*quality*"]
//! volatile: ["my.request.*"]    # added to the defaults (ids, timestamps)
//! ignore_token_counts: false
//! attributes:
//!   gen_ai.response.model: {regex: "^gpt-4o-mini"}
//!   rag.retrieval.documents: {tolerance: 3}
//!   debug.note: ignore
//! specs:
//!   - name: the small model answers
//!     when: span[name="rag.generate"]   # only traces that generated
//!     selector: span[name="rag.generate"]
//!     assertions:
//!       - attr:gen_ai.request.model = "gpt-4o-mini"
//!       - attr:tracetest.span.duration < 2s
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use flightdeck_obs_core::locate::{MAX_NESTING, check_nesting, shown};
use regex::Regex;
use serde::Deserialize;
use serde_json::Value;

use crate::compare::{AttrRule, DiffKind, Difference, Rules, Tolerances};
use crate::error::GoldenError;
use crate::profile::ProfileCheck;
use crate::selector::{Assertion, Selector};
use crate::tree::Tree;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SpecFile {
    latency_tolerance: Option<f64>,
    latency_floor_ms: Option<f64>,
    quality_tolerance: Option<f64>,
    profile_alpha: Option<f64>,
    quality: Option<Vec<String>>,
    #[serde(default)]
    volatile: Vec<String>,
    #[serde(default)]
    ignore_token_counts: bool,
    compare_status_messages: Option<bool>,
    #[serde(default)]
    attributes: BTreeMap<String, serde_norway::Value>,
    #[serde(default)]
    specs: Vec<CheckFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckFile {
    selector: String,
    name: Option<String>,
    when: Option<String>,
    assertions: Vec<String>,
}

/// One named selector with its assertions.
#[derive(Debug, Clone)]
pub struct Check {
    /// The check's name (the selector when it has none).
    pub name: String,
    /// Which spans.
    pub selector: Selector,
    /// Run the check only on traces where this selector matches a span
    /// (like the `condition` Tracetest has proposed; without it an
    /// assertion on a trace the selector misses fails, as in Tracetest).
    pub when: Option<Selector>,
    /// What must hold on each.
    pub assertions: Vec<Assertion>,
}

/// What `golden.yaml` says: the rules, the profile check and the checks.
#[derive(Debug, Clone, Default)]
pub struct Spec {
    /// How captures compare with goldens.
    pub rules: Rules,
    /// How batches compare with profiles.
    pub profile: ProfileCheck,
    /// Assertions run on every checked trace.
    pub checks: Vec<Check>,
}

impl Spec {
    /// The spec of a golden directory: its `golden.yaml`, or the defaults
    /// (with `defaults`' tolerances) when there is none.
    ///
    /// # Errors
    ///
    /// As [`from_yaml`](Self::from_yaml), or [`GoldenError::Io`].
    pub fn load(dir: &Path, defaults: Tolerances) -> Result<Self, GoldenError> {
        let path = dir.join(crate::case::SPEC_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => {
                let file = path.display().to_string();
                let text = std::str::from_utf8(&bytes).map_err(|e| GoldenError::Parse {
                    file: file.clone(),
                    line: 1,
                    column: e.valid_up_to() + 1,
                    message: "not UTF-8".into(),
                })?;
                Self::from_yaml(text, &file, defaults)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self {
                rules: Rules::new().with_tolerances(defaults),
                profile: ProfileCheck {
                    floor_ms: defaults.latency_floor_ms,
                    ..ProfileCheck::default()
                },
                checks: Vec::new(),
            }),
            Err(e) => Err(GoldenError::io(path, e)),
        }
    }

    /// Parses a spec; values it leaves out come from `defaults`.
    ///
    /// # Errors
    ///
    /// [`GoldenError::Parse`] at `file:line:column` for bad YAML or an
    /// unknown key, [`GoldenError::Invalid`] naming the field for a bad
    /// value, [`GoldenError::Syntax`] for a bad selector or assertion.
    pub fn from_yaml(text: &str, file: &str, defaults: Tolerances) -> Result<Self, GoldenError> {
        if let Err(e) = check_nesting(text, MAX_NESTING) {
            return Err(GoldenError::Parse {
                file: file.to_owned(),
                line: e.line,
                column: e.column,
                message: format!("nested deeper than {} levels", e.limit),
            });
        }
        let f: SpecFile = if text.trim().is_empty() {
            serde_norway::from_str("{}")
        } else {
            serde_norway::from_str(text)
        }
        .map_err(|e| {
            let (line, column) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
            GoldenError::Parse {
                file: file.to_owned(),
                line,
                column,
                message: e
                    .to_string()
                    .split(" at line ")
                    .next()
                    .unwrap_or_default()
                    .to_owned(),
            }
        })?;
        let invalid = |field: String, message: String| GoldenError::Invalid {
            file: file.to_owned(),
            field,
            message,
        };
        let share = |name: &str, v: Option<f64>, default: f64, max: f64| match v {
            None => Ok(default),
            Some(x) if x.is_finite() && (0.0..=max).contains(&x) => Ok(x),
            Some(x) => Err(invalid(
                name.to_owned(),
                format!("{x} is outside 0 to {max}"),
            )),
        };
        let tolerances = Tolerances {
            latency: share(
                "latency_tolerance",
                f.latency_tolerance,
                defaults.latency,
                100.0,
            )?,
            latency_floor_ms: share(
                "latency_floor_ms",
                f.latency_floor_ms,
                defaults.latency_floor_ms,
                3.6e6,
            )?,
            quality: share(
                "quality_tolerance",
                f.quality_tolerance,
                defaults.quality,
                1.0,
            )?,
        };
        let mut rules = Rules::new().with_tolerances(tolerances);
        if let Some(q) = &f.quality {
            rules = rules.with_quality_only(&q.iter().map(String::as_str).collect::<Vec<_>>());
        }
        for v in &f.volatile {
            rules = rules.with_volatile(v);
        }
        if f.ignore_token_counts {
            rules = rules.ignore_token_counts();
        }
        if let Some(on) = f.compare_status_messages {
            rules = rules.compare_status_messages(on);
        }
        for (key, rule) in &f.attributes {
            let field = format!("attributes.{key}");
            let parsed = attr_rule(rule).map_err(|m| invalid(field, m))?;
            rules = rules.with_rule(key, parsed);
        }
        let mut checks = Vec::with_capacity(f.specs.len());
        for (i, c) in f.specs.into_iter().enumerate() {
            let selector = Selector::parse(&c.selector)
                .map_err(|e| locate(e, file, &format!("specs[{i}].selector")))?;
            let when = c
                .when
                .as_deref()
                .map(|w| {
                    Selector::parse(w).map_err(|e| locate(e, file, &format!("specs[{i}].when")))
                })
                .transpose()?;
            let assertions = c
                .assertions
                .iter()
                .enumerate()
                .map(|(k, a)| {
                    Assertion::parse(a)
                        .map_err(|e| locate(e, file, &format!("specs[{i}].assertions[{k}]")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            checks.push(Check {
                name: c.name.unwrap_or_else(|| c.selector.clone()),
                selector,
                when,
                assertions,
            });
        }
        let profile = ProfileCheck {
            alpha: share(
                "profile_alpha",
                f.profile_alpha,
                ProfileCheck::default().alpha,
                0.5,
            )?,
            floor_ms: tolerances.latency_floor_ms,
            ..ProfileCheck::default()
        };
        Ok(Self {
            rules,
            profile,
            checks,
        })
    }

    /// Runs every check on a trace; each failing assertion is an
    /// `attribute` difference at the span it failed on (or at the
    /// selector, when nothing matched).
    pub fn run(&self, tree: &Tree) -> Vec<Difference> {
        let mut out = Vec::new();
        for check in &self.checks {
            if check
                .when
                .as_ref()
                .is_some_and(|w| w.select(tree).is_empty())
            {
                continue;
            }
            let selection = check.selector.select(tree);
            for a in &check.assertions {
                let o = a.check(tree, &selection);
                if o.passed {
                    continue;
                }
                let path = o.span.map_or_else(
                    || check.selector.as_str().to_owned(),
                    |s| tree.spans()[s].path.clone(),
                );
                out.push(Difference {
                    kind: DiffKind::Attribute,
                    path: path.clone(),
                    expected: Value::from(a.as_str()),
                    actual: Value::from(o.observed.clone()),
                    message: format!(
                        "span {}: check {}: {} failed: {}",
                        shown(&path),
                        shown(&check.name),
                        a.as_str(),
                        o.observed
                    ),
                    fails: true,
                });
            }
        }
        out
    }
}

fn locate(e: GoldenError, file: &str, field: &str) -> GoldenError {
    GoldenError::Invalid {
        file: file.to_owned(),
        field: field.to_owned(),
        message: e.to_string(),
    }
}

fn attr_rule(v: &serde_norway::Value) -> Result<AttrRule, String> {
    use serde_norway::Value as Y;
    match v {
        Y::String(s) if s == "ignore" => Ok(AttrRule::Ignore),
        Y::Mapping(m) if m.len() == 1 => {
            let (k, val) = m.iter().next().expect("one entry");
            match (k.as_str(), val) {
                (Some("regex"), Y::String(re)) => Regex::new(re)
                    .map(AttrRule::Regex)
                    .map_err(|e| format!("regex {} does not compile: {e}", shown(re))),
                (Some("tolerance"), t) => match t.as_f64() {
                    Some(x) if x.is_finite() && x >= 0.0 => Ok(AttrRule::Tolerance(x)),
                    _ => Err("tolerance must be a number, 0 or more".into()),
                },
                _ => Err("expected ignore, {regex: \"…\"} or {tolerance: N}".into()),
            }
        }
        _ => Err("expected ignore, {regex: \"…\"} or {tolerance: N}".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_specs_name_the_field() {
        let d = Tolerances::default();
        let e = Spec::from_yaml("latency_tolerance: -1\n", "g.yaml", d)
            .unwrap_err()
            .to_string();
        assert_eq!(e, "g.yaml: latency_tolerance: -1 is outside 0 to 100");
        let e = Spec::from_yaml("attributes:\n  x: {regex: \"(\"}\n", "g.yaml", d)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("g.yaml: attributes.x: regex \"(\" does not compile"),
            "{e}"
        );
        let e = Spec::from_yaml(
            "specs:\n  - selector: 'span[x'\n    assertions: []\n",
            "g.yaml",
            d,
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("g.yaml: specs[0].selector: selector"), "{e}");
        let e = Spec::from_yaml("lantency_tolerance: 1\n", "g.yaml", d)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("g.yaml:1:1: unknown field `lantency_tolerance`"),
            "{e}"
        );
    }
}

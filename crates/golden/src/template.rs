//! Structure-only goldens for the common RAG shapes, so a new pipeline can
//! be checked for its shape before it has goldens of its own.
//!
//! A template looks at the request (the `rag.request` span, or a server span
//! carrying `flightdeck.request.operation` when the request scope is the
//! server span) and the sequence of its
//! direct children that are pipeline stages (the span names in
//! `flightdeck_obs_core::names::span`), in start order; other spans and
//! anything deeper (retrieval shards, say) are free.

use flightdeck_obs_core::names::{attr, span};
use regex::Regex;
use serde_json::Value;

use crate::compare::{DiffKind, Difference};
use crate::tree::{Tree, escape_segment};

/// A named shape.
#[derive(Debug, Clone)]
pub struct Template {
    /// The name used on the command line.
    pub name: &'static str,
    /// The shape, for people.
    pub shape: &'static str,
    /// The fullest form without repetition, in stage names: what a
    /// mismatch is aligned against to name missing and unexpected stages.
    canonical: &'static [&'static str],
    regex: Regex,
}

const STAGES: &[&str] = &[
    span::EMBED,
    span::RETRIEVE,
    span::RERANK,
    span::GENERATE,
    span::GUARDRAIL,
    span::TOOL_CALL,
];

fn short(stage: &str) -> &str {
    stage.strip_prefix("rag.").unwrap_or(stage)
}

/// Every template: `simple-rag`, `reranked-rag`, `guarded-rag`, `agent`.
pub fn templates() -> Vec<Template> {
    let t = |name, shape, canonical, re: &str| Template {
        name,
        shape,
        canonical,
        regex: Regex::new(re).expect("template patterns are valid constants"),
    };
    vec![
        t(
            "simple-rag",
            "embed → retrieve → generate",
            &[span::EMBED, span::RETRIEVE, span::GENERATE],
            "^embed retrieve generate$",
        ),
        t(
            "reranked-rag",
            "embed → retrieve → rerank → generate",
            &[span::EMBED, span::RETRIEVE, span::RERANK, span::GENERATE],
            "^embed retrieve rerank generate$",
        ),
        t(
            "guarded-rag",
            "guardrail(s) → embed → retrieve → [rerank] → generate → guardrail(s)",
            &[
                span::GUARDRAIL,
                span::EMBED,
                span::RETRIEVE,
                span::RERANK,
                span::GENERATE,
                span::GUARDRAIL,
            ],
            "^(guardrail )+embed retrieve (rerank )?generate( guardrail)+$",
        ),
        t(
            "agent",
            "[guardrail(s)] → [embed → retrieve → [rerank]] → generate → (tool_call+ → generate)+ → [guardrail(s)]",
            &[span::GENERATE, span::TOOL_CALL, span::GENERATE],
            "^(guardrail )*(embed retrieve (rerank )?)?generate( (tool_call )+generate)+( guardrail)*$",
        ),
    ]
}

/// The template called `name`.
pub fn template(name: &str) -> Option<Template> {
    templates().into_iter().find(|t| t.name == name)
}

impl Template {
    /// Checks a trace's shape; an empty list when it fits. A misfit is
    /// named stage by stage against the template's fullest plain form.
    pub fn check(&self, tree: &Tree) -> Vec<Difference> {
        let Some(first) = tree.spans().first() else {
            return Vec::new();
        };
        // A service's trace starts with its HTTP server span; the request
        // is either a rag.request span below it or, with one span per
        // request (`RequestScope::in_current_span`), the server span itself,
        // carrying the request's operation. Take the first in pre-order.
        let request = tree.spans().iter().position(|s| {
            s.name == span::REQUEST
                || s.attributes
                    .contains_key(attr::FLIGHTDECK_REQUEST_OPERATION)
        });
        let mut out = Vec::new();
        let Some(request) = request else {
            let root = first;
            out.push(Difference {
                kind: DiffKind::UnexpectedSpan,
                path: root.path.clone(),
                expected: Value::from(span::REQUEST),
                actual: Value::from(root.name.clone()),
                message: format!(
                    "span {}: the root is not {} and no span below it is (template {})",
                    flightdeck_obs_core::shown(&root.path),
                    span::REQUEST,
                    self.name
                ),
                fails: true,
            });
            return out;
        };
        let root = &tree.spans()[request];
        let stages: Vec<&str> = tree
            .children(request)
            .map(|i| tree.spans()[i].name.as_str())
            .filter(|n| STAGES.contains(n))
            .collect();
        let sentence = stages
            .iter()
            .map(|s| short(s))
            .collect::<Vec<_>>()
            .join(" ");
        if self.regex.is_match(&sentence) {
            return out;
        }
        let got = if stages.is_empty() {
            "no stages".to_owned()
        } else {
            sentence.replace(' ', " → ")
        };
        // Align with the canonical form (longest common subsequence).
        let (a, b) = (self.canonical, &stages[..]);
        let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
        for i in (0..a.len()).rev() {
            for j in (0..b.len()).rev() {
                lcs[i][j] = if a[i] == b[j] {
                    lcs[i + 1][j + 1] + 1
                } else {
                    lcs[i + 1][j].max(lcs[i][j + 1])
                };
            }
        }
        let (mut i, mut j) = (0, 0);
        let mut misfits: Vec<(DiffKind, &str)> = Vec::new();
        while i < a.len() || j < b.len() {
            if i < a.len() && j < b.len() && a[i] == b[j] {
                i += 1;
                j += 1;
            } else if j < b.len() && (i == a.len() || lcs[i][j + 1] >= lcs[i + 1][j]) {
                misfits.push((DiffKind::UnexpectedSpan, b[j]));
                j += 1;
            } else {
                misfits.push((DiffKind::MissingSpan, a[i]));
                i += 1;
            }
        }
        if misfits.is_empty() {
            // Same stages as the plain form but a repetition rule failed.
            misfits.push((
                DiffKind::UnexpectedSpan,
                stages.last().copied().unwrap_or(span::REQUEST),
            ));
        }
        for (kind, stage) in misfits {
            let path = format!("{}/{}", root.path, escape_segment(stage));
            let missing = kind == DiffKind::MissingSpan;
            out.push(Difference {
                kind,
                path: path.clone(),
                expected: if missing {
                    Value::from(stage)
                } else {
                    Value::Null
                },
                actual: if missing {
                    Value::Null
                } else {
                    Value::from(stage)
                },
                message: format!(
                    "span {}: {} for template {} ({}); the trace has {got}",
                    flightdeck_obs_core::shown(&path),
                    if missing { "missing" } else { "unexpected" },
                    self.name,
                    self.shape
                ),
                fails: true,
            });
        }
        out
    }
}

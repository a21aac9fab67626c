//! The regression runner: checks a stream of captured traces against a
//! store of golden cases, and reports as JSON, JUnit XML or text.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde::Serialize;
use serde_json::Value;

use crate::case::Case;
use crate::compare::{DiffKind, Difference, compare};
use crate::error::GoldenError;
use crate::profile::{Profile, check_profile};
use crate::spec::Spec;
use crate::tree::{CaseKey, RawTrace, Tree};

/// At most this many differences are kept per case (the rest are counted).
pub const MAX_DIFFERENCES_PER_CASE: usize = 200;

/// A case's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseStatus {
    /// Every capture agrees.
    Pass,
    /// A capture differs in a way that fails.
    Fail,
    /// No capture for this case.
    Missing,
}

/// One case's outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaseReport {
    /// The case name.
    pub name: String,
    /// The verdict.
    pub status: CaseStatus,
    /// Differences (failing and reported), in span order.
    pub differences: Vec<Difference>,
    /// How many captures were compared.
    pub captures: usize,
    /// Differences left out beyond [`MAX_DIFFERENCES_PER_CASE`].
    #[serde(skip_serializing_if = "is_zero")]
    pub more_differences: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// The whole run's outcome: the `--json` document.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Per case, by name.
    pub cases: Vec<CaseReport>,
    /// Cases that passed.
    pub passed: usize,
    /// Cases that failed.
    pub failed: usize,
    /// Cases with no capture.
    pub missing: usize,
    /// Captures with no golden case (listed, not failed).
    pub new: usize,
    /// Their names.
    pub new_cases: Vec<String>,
    /// Traces whose root had no key (not compared).
    pub unkeyed: usize,
}

impl Report {
    /// Whether every case passed.
    pub fn ok(&self) -> bool {
        self.failed == 0 && self.missing == 0
    }
}

#[derive(Default)]
struct State {
    diffs: Vec<Difference>,
    seen: HashSet<(DiffKind, String, String, String)>,
    more: usize,
    captures: usize,
    /// Per-capture latency differences, used when the batch is too small
    /// for the profile test.
    latency: Vec<Difference>,
    batch: BTreeMap<String, Vec<f64>>,
}

impl State {
    fn add(&mut self, d: Difference) {
        let key = (
            d.kind,
            d.path.clone(),
            d.expected.to_string(),
            d.actual.to_string(),
        );
        if !self.seen.insert(key) {
            return;
        }
        if self.diffs.len() >= MAX_DIFFERENCES_PER_CASE {
            self.more += 1;
        } else {
            self.diffs.push(d);
        }
    }
}

/// Checks captures against golden cases, one trace at a time.
#[derive(Debug)]
pub struct Checker<'a> {
    cases: &'a BTreeMap<String, Case>,
    spec: &'a Spec,
    key: CaseKey,
    states: BTreeMap<String, StateBox>,
    new: BTreeSet<String>,
    unkeyed: usize,
}

/// Keeps `State` out of the public Debug surface.
struct StateBox(State);

impl std::fmt::Debug for StateBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("captures", &self.0.captures)
            .finish_non_exhaustive()
    }
}

impl<'a> Checker<'a> {
    /// A checker of `cases` under `spec`, filing traces by `key`.
    pub fn new(cases: &'a BTreeMap<String, Case>, spec: &'a Spec, key: CaseKey) -> Self {
        Self {
            cases,
            spec,
            key,
            states: BTreeMap::new(),
            new: BTreeSet::new(),
            unkeyed: 0,
        }
    }

    /// Compares one captured trace with its case.
    ///
    /// # Errors
    ///
    /// [`GoldenError::Trace`] when the trace's spans do not form a tree.
    pub fn add(&mut self, trace: RawTrace) -> Result<(), GoldenError> {
        let Some(name) = trace.key(&self.key) else {
            self.unkeyed += 1;
            return Ok(());
        };
        let tree = Tree::from_trace(trace)?;
        let Some(case) = self.cases.get(&name) else {
            self.new.insert(name);
            return Ok(());
        };
        let state = &mut self
            .states
            .entry(name)
            .or_insert_with(|| StateBox(State::default()))
            .0;
        state.captures += 1;
        let profiled = case.profile.is_some();
        for d in compare(&case.tree, &tree, &self.spec.rules)
            .into_iter()
            .chain(self.spec.run(&tree))
        {
            if profiled && d.kind == DiffKind::Latency {
                state.latency.push(d);
            } else {
                state.add(d);
            }
        }
        if profiled {
            for s in tree.spans() {
                state
                    .batch
                    .entry(s.path.clone())
                    .or_default()
                    .push(s.self_ms);
            }
        }
        Ok(())
    }

    /// The report.
    pub fn finish(self) -> Report {
        let mut cases = Vec::with_capacity(self.cases.len());
        let (mut passed, mut failed, mut missing) = (0, 0, 0);
        let mut states = self.states;
        for (name, case) in self.cases {
            let Some(StateBox(mut state)) = states.remove(name) else {
                missing += 1;
                cases.push(CaseReport {
                    name: name.clone(),
                    status: CaseStatus::Missing,
                    differences: Vec::new(),
                    captures: 0,
                    more_differences: 0,
                });
                continue;
            };
            if let Some(profile) = &case.profile {
                let enough = state.batch.values().map(Vec::len).max().unwrap_or(0)
                    >= self.spec.profile.min_runs;
                if enough {
                    for d in check_profile(profile, &state.batch, &self.spec.profile) {
                        state.add(d);
                    }
                } else {
                    for d in std::mem::take(&mut state.latency) {
                        state.add(d);
                    }
                }
            }
            let fails = state.diffs.iter().any(|d| d.fails);
            if fails {
                failed += 1;
            } else {
                passed += 1;
            }
            cases.push(CaseReport {
                name: name.clone(),
                status: if fails {
                    CaseStatus::Fail
                } else {
                    CaseStatus::Pass
                },
                differences: state.diffs,
                captures: state.captures,
                more_differences: state.more,
            });
        }
        Report {
            cases,
            passed,
            failed,
            missing,
            new: self.new.len(),
            new_cases: self.new.into_iter().collect(),
            unkeyed: self.unkeyed,
        }
    }
}

/// One case being recorded: the first capture's tree, the captures so far,
/// and their self times by path.
type Recording = (Tree, usize, BTreeMap<String, Vec<f64>>);

/// Groups traces by key for recording: per key, the first capture's tree
/// and every capture's self times by path (up to `runs` captures).
#[derive(Debug)]
pub struct Recorder {
    key: CaseKey,
    runs: usize,
    cases: BTreeMap<String, Recording>,
    unkeyed: usize,
}

impl Recorder {
    /// A recorder filing by `key`, keeping up to `runs` captures per case.
    pub fn new(key: CaseKey, runs: usize) -> Self {
        Self {
            key,
            runs: runs.max(1),
            cases: BTreeMap::new(),
            unkeyed: 0,
        }
    }

    /// Adds a capture.
    ///
    /// # Errors
    ///
    /// [`GoldenError::Trace`] when its spans do not form a tree.
    pub fn add(&mut self, trace: RawTrace) -> Result<(), GoldenError> {
        let Some(name) = trace.key(&self.key) else {
            self.unkeyed += 1;
            return Ok(());
        };
        let tree = Tree::from_trace(trace)?;
        let runs = self.runs;
        let entry = self
            .cases
            .entry(name)
            .or_insert_with(|| (tree.clone(), 0, BTreeMap::new()));
        if entry.1 >= runs {
            return Ok(());
        }
        entry.1 += 1;
        if runs > 1 {
            for s in tree.spans() {
                entry.2.entry(s.path.clone()).or_default().push(s.self_ms);
            }
        }
        Ok(())
    }

    /// Traces with no key.
    pub fn unkeyed(&self) -> usize {
        self.unkeyed
    }

    /// The cases. With `runs` > 1, each carries a profile and its spans'
    /// self times are the medians of the runs; the second value lists
    /// cases that had fewer captures than asked for.
    pub fn finish(self) -> (Vec<Case>, Vec<(String, usize)>) {
        let mut short = Vec::new();
        let mut out = Vec::with_capacity(self.cases.len());
        for (name, (mut tree, n, by_path)) in self.cases {
            let mut case = Case::new(name.clone(), Tree::default());
            if self.runs > 1 {
                if n < self.runs {
                    short.push((name.clone(), n));
                }
                let profile = Profile::from_runs(u32::try_from(n).unwrap_or(u32::MAX), &by_path);
                for s in tree.spans_mut() {
                    if let Some(d) = profile.spans.get(&s.path) {
                        s.self_ms = d.p50_ms;
                    }
                }
                case.profile = Some(profile);
            }
            case.tree = tree;
            out.push(case);
        }
        (out, short)
    }
}

/// Escapes text for XML 1.0 (characters it cannot hold become U+FFFD).
fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

impl Report {
    /// JUnit XML: one testcase per case, a `<failure>` carrying the
    /// differences, `<skipped>` for captures with no golden.
    pub fn to_junit(&self, suite: &str) -> String {
        let tests = self.cases.len() + self.new;
        let failures = self.failed + self.missing;
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        out.push_str(&format!(
            "<testsuites name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"{}\">\n",
            xml(suite),
            self.new
        ));
        out.push_str(&format!(
            "  <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"{}\">\n",
            xml(suite),
            self.new
        ));
        for c in &self.cases {
            out.push_str(&format!(
                "    <testcase classname=\"{}\" name=\"{}\"",
                xml(suite),
                xml(&c.name)
            ));
            match c.status {
                CaseStatus::Pass => out.push_str("/>\n"),
                CaseStatus::Missing => out.push_str(
                    ">\n      <failure type=\"missing\" message=\"no capture of this case\"/>\n    </testcase>\n",
                ),
                CaseStatus::Fail => {
                    let failing: Vec<&Difference> = c.differences.iter().filter(|d| d.fails).collect();
                    let summary = failing.iter().map(|d| d.message.as_str()).collect::<Vec<_>>().join("; ");
                    out.push_str(&format!(
                        ">\n      <failure type=\"{}\" message=\"{}\">",
                        failing.first().map_or("golden", |d| d.kind.as_str()),
                        xml(&summary)
                    ));
                    for d in &c.differences {
                        out.push_str(&xml(&format!(
                            "\n{} {} {}: expected {}, actual {}{}",
                            if d.fails { "FAIL" } else { "note" },
                            d.kind.as_str(),
                            d.path,
                            compact(&d.expected),
                            compact(&d.actual),
                            format_args!(" — {}", d.message)
                        )));
                    }
                    out.push_str("\n      </failure>\n    </testcase>\n");
                }
            }
        }
        for n in &self.new_cases {
            out.push_str(&format!(
                "    <testcase classname=\"{}\" name=\"{}\">\n      <skipped message=\"captured, but there is no golden case (new)\"/>\n    </testcase>\n",
                xml(suite),
                xml(n)
            ));
        }
        out.push_str("  </testsuite>\n</testsuites>\n");
        out
    }
}

fn compact(v: &Value) -> String {
    let t = v.to_string();
    if t.len() > 200 {
        format!(
            "{}…",
            &t[..t
                .char_indices()
                .take_while(|(i, _)| *i < 200)
                .last()
                .map_or(0, |(i, c)| i + c.len_utf8())]
        )
    } else {
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_escapes_markup_and_control_characters() {
        assert_eq!(xml("a<b>&\"'\u{1b}"), "a&lt;b&gt;&amp;&quot;&apos;\u{fffd}");
    }
}

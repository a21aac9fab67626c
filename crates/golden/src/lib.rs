#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod case;
mod compare;
mod error;
mod profile;
mod runner;
mod selector;
mod settings;
mod source;
mod spec;
mod template;
mod tree;

pub use self::case::{Case, FORMAT_VERSION, SPEC_FILE, Store, file_name};
pub use self::compare::{
    AttrRule, DEFAULT_QUALITY, DEFAULT_VOLATILE, DiffKind, Difference, KeyPattern, Rules,
    TOKEN_COUNTS, Tolerances, compare,
};
pub use self::error::{GoldenError, TraceProblem};
pub use self::profile::{Distribution, MAX_SAMPLE, Profile, ProfileCheck, check_profile};
pub use self::runner::{
    CaseReport, CaseStatus, Checker, MAX_DIFFERENCES_PER_CASE, Recorder, Report,
};
pub use self::selector::{
    Assertion, AssertionOutcome, Op, Operand, SELECTED_SPANS_COUNT, Selectable, Selector, apply,
};
pub use self::settings::{GOLDEN_KEYS, GoldenSettings};
pub use self::source::{
    MAX_LINE_BYTES, TraceReader, capture, looks_like_otlp, read_otlp, read_otlp_value, sampled,
    traces_from_records,
};
pub use self::spec::{Check, Spec};
pub use self::template::{Template, template, templates};
pub use self::tree::{
    Attrs, CaseKey, Event, MAX_DEPTH, RawSpan, RawTrace, Span, Tree, attr_to_json, escape_segment,
};

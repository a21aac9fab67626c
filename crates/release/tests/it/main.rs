//! Conformance against Kayenta, Argo Rollouts and Flagger fixtures.

mod argo;
mod flagger;
mod k8s;
mod kayenta;

pub(crate) fn fixture(path: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/{path}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap_or_else(|e| panic!("{path}: {e}"))
}

//! `cargo xtask tidy`: the layer rules of docs/style.md §2 and the crate
//! hygiene of B.3, checked from `cargo metadata` and `cargo tree`.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};
use serde_json::Value;

use crate::{output_of, say};

const STATS: &str = "flightdeck-stats";
const OBS_CORE: &str = "flightdeck-obs-core";
const OBS_OTEL: &str = "flightdeck-obs-otel";
const EXPERIMENTS: &str = "flightdeck-experiments";
const SLO: &str = "flightdeck-slo";
const GOLDEN: &str = "flightdeck-golden";
const FLAGS: &str = "flightdeck-flags";
const RELEASE: &str = "flightdeck-release";
const FACADE: &str = "flightdeck";
const CLI: &str = "flightdeck-cli";
const TESTS: &str = "flightdeck-tests";
const XTASK: &str = "xtask";

/// docs/style.md §2: each workspace package and the workspace packages its
/// normal and build dependencies may name.
const LAYERS: &[(&str, &[&str])] = &[
    (STATS, &[]),
    (OBS_CORE, &[STATS]),
    (OBS_OTEL, &[OBS_CORE]),
    (EXPERIMENTS, &[STATS, OBS_CORE]),
    (SLO, &[STATS, OBS_CORE]),
    (GOLDEN, &[OBS_CORE, STATS]),
    (FLAGS, &[EXPERIMENTS, OBS_CORE]),
    (RELEASE, &[STATS, OBS_CORE, SLO, FLAGS, EXPERIMENTS, GOLDEN]),
    (
        FACADE,
        &[
            STATS,
            OBS_CORE,
            OBS_OTEL,
            EXPERIMENTS,
            SLO,
            GOLDEN,
            FLAGS,
            RELEASE,
        ],
    ),
    (CLI, &[FACADE]),
    (XTASK, &[RELEASE]),
    (
        TESTS,
        &[
            STATS,
            OBS_CORE,
            OBS_OTEL,
            EXPERIMENTS,
            SLO,
            GOLDEN,
            FLAGS,
            RELEASE,
            FACADE,
            CLI,
        ],
    ),
];

/// Rule 3: crates with no network or runtime dependencies, and the crate
/// name prefixes they must not pull in (directly or transitively).
const NO_RUNTIME: &[&str] = &[STATS, OBS_CORE];
const RUNTIME_CRATES: &[&str] = &[
    "tokio",
    "hyper",
    "tonic",
    "reqwest",
    "opentelemetry",
    "h2",
    "mio",
];

/// Packages whose dev-dependencies may name the facade (rule 1 otherwise
/// forbids depending on it).
const MAY_USE_FACADE: &[&str] = &[FACADE, CLI, TESTS];

#[derive(Debug)]
struct Package {
    name: String,
    manifest: std::path::PathBuf,
    /// (dependency name, kind: "normal" | "dev" | "build"), workspace path deps only.
    workspace_deps: Vec<(String, String)>,
    is_lib: bool,
}

fn packages(root: &Path) -> anyhow::Result<Vec<Package>> {
    let json = output_of(
        Command::new("cargo")
            .args(["metadata", "--format-version", "1", "--no-deps"])
            .current_dir(root),
    )?;
    let meta: Value = serde_json::from_str(&json).context("cargo metadata printed invalid JSON")?;
    let mut out = Vec::new();
    for p in meta["packages"]
        .as_array()
        .context("cargo metadata has no packages")?
    {
        let name = p["name"].as_str().unwrap_or_default().to_owned();
        let workspace_deps = p["dependencies"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|d| d["path"].is_string())
            .map(|d| {
                let kind = d["kind"].as_str().unwrap_or("normal").to_owned();
                (d["name"].as_str().unwrap_or_default().to_owned(), kind)
            })
            .collect();
        let is_lib = p["targets"].as_array().into_iter().flatten().any(|t| {
            t["kind"]
                .as_array()
                .is_some_and(|k| k.iter().any(|k| k == "lib"))
        });
        out.push(Package {
            name,
            manifest: p["manifest_path"].as_str().unwrap_or_default().into(),
            workspace_deps,
            is_lib,
        });
    }
    Ok(out)
}

/// Every problem found, one line each.
pub(crate) fn check(root: &Path) -> anyhow::Result<Vec<String>> {
    let mut problems = Vec::new();
    let pkgs = packages(root)?;
    for p in &pkgs {
        let Some((_, allowed)) = LAYERS.iter().find(|(n, _)| *n == p.name) else {
            problems.push(format!(
                "{}: not in the layer table; add it to LAYERS in xtask/src/tidy.rs and to docs/architecture.md",
                p.name
            ));
            continue;
        };
        for (dep, kind) in &p.workspace_deps {
            let ok = match kind.as_str() {
                "dev" => {
                    ![XTASK, TESTS].contains(&dep.as_str())
                        && (dep != FACADE || MAY_USE_FACADE.contains(&p.name.as_str()))
                }
                _ => allowed.contains(&dep.as_str()),
            };
            if !ok {
                problems.push(format!(
                    "{}: may not depend on {dep} ({kind}); allowed: {:?} (docs/style.md §2)",
                    p.name, allowed
                ));
            }
        }
        let uses_otel = p
            .workspace_deps
            .iter()
            .any(|(d, k)| d == OBS_OTEL && k != "dev");
        if uses_otel && ![FACADE, CLI, TESTS].contains(&p.name.as_str()) {
            problems.push(format!(
                "{}: only the facade, the cli and tests may depend on {OBS_OTEL} (rule 2)",
                p.name
            ));
        }
        problems.extend(hygiene(p));
    }
    for name in NO_RUNTIME {
        if pkgs.iter().any(|p| p.name == *name) {
            problems.extend(runtime_free(root, name)?);
        }
    }
    Ok(problems)
}

/// docs/style.md §3: `[lints] workspace = true`, a `//!` crate doc, a README
/// and a CHANGELOG for every published crate.
fn hygiene(p: &Package) -> Vec<String> {
    let mut problems = Vec::new();
    let dir = p.manifest.parent().unwrap_or(Path::new("."));
    let manifest = std::fs::read_to_string(&p.manifest).unwrap_or_default();
    if !manifest.contains("[lints]\nworkspace = true") {
        problems.push(format!(
            "{}: Cargo.toml lacks `[lints]\\nworkspace = true`",
            p.name
        ));
    }
    let publishable = !manifest.contains("publish = false");
    if publishable {
        for file in ["README.md", "CHANGELOG.md"] {
            if !dir.join(file).is_file() {
                problems.push(format!("{}: missing {file}", p.name));
            }
        }
    }
    if p.is_lib {
        let lib = std::fs::read_to_string(dir.join("src/lib.rs")).unwrap_or_default();
        if !lib.starts_with("//!") {
            problems.push(format!(
                "{}: src/lib.rs must open with //! crate docs",
                p.name
            ));
        }
    }
    problems
}

/// Rule 3, on the dependency tree cargo resolves for `name` alone.
fn runtime_free(root: &Path, name: &str) -> anyhow::Result<Vec<String>> {
    let tree = output_of(
        Command::new("cargo")
            .args([
                "tree", "-e", "normal", "--prefix", "none", "--format", "{p}", "-p", name,
            ])
            .current_dir(root),
    )?;
    let found: BTreeSet<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|dep| {
            RUNTIME_CRATES.iter().any(|r| {
                dep == r || dep.starts_with(&format!("{r}-")) || dep.starts_with(&format!("{r}_"))
            })
        })
        .collect();
    Ok(found
        .into_iter()
        .map(|dep| format!("{name}: must not depend on network/runtime crate {dep} (docs/style.md §2 rule 3); see `cargo tree -e normal -i {dep} -p {name}`"))
        .collect())
}

pub(crate) fn run(root: &Path) -> anyhow::Result<()> {
    let problems = check(root)?;
    if problems.is_empty() {
        say("xtask tidy: layer rules and crate hygiene hold");
        return Ok(());
    }
    for p in &problems {
        say(p);
    }
    bail!("xtask tidy found {} problem(s)", problems.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workspace_is_tidy() {
        let problems = check(&crate::project_root()).unwrap();
        assert!(problems.is_empty(), "{problems:#?}");
    }

    #[test]
    fn the_layer_table_only_points_downward() {
        let position = |n: &str| LAYERS.iter().position(|(p, _)| *p == n).unwrap();
        for (name, allowed) in LAYERS {
            for dep in *allowed {
                assert!(
                    position(dep) < position(name) || *name == XTASK || *name == TESTS,
                    "{name} -> {dep}"
                );
            }
        }
    }

    #[test]
    fn hygiene_flags_a_crate_without_lints() {
        let dir = std::env::temp_dir().join(format!("xtask-tidy-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("src")).unwrap();
        std::fs::write(dir.join("Cargo.toml"), "[package]\nname = \"x\"\n").unwrap();
        std::fs::write(dir.join("src/lib.rs"), "pub fn f() {}\n").unwrap();
        let p = Package {
            name: "x".into(),
            manifest: dir.join("Cargo.toml"),
            workspace_deps: vec![],
            is_lib: true,
        };
        let problems = hygiene(&p);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(problems.len(), 4, "{problems:#?}");
    }
}

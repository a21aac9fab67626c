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
const FACADE: &str = "flightdeck";
const CLI: &str = "flightdeck-cli";
const SERVICE: &str = "flightdeck-service";
const TESTS: &str = "flightdeck-tests";
#[cfg(test)]
const XTASK: &str = "xtask";

/// The layer table of `docs/architecture.md`, the one source of the layer
/// rules: each workspace package and the workspace packages its normal and
/// build dependencies may name.
type Layers = Vec<(String, Vec<String>)>;

fn read_layers(root: &Path) -> anyhow::Result<Layers> {
    let path = root.join("docs/architecture.md");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    parse_layers(&text).with_context(|| format!("{}: the layer table", path.display()))
}

/// Rows `| layer | dir | package | role | may depend on | status |` after
/// the header; "may depend on" lists directories (`stats, obs-core`) or
/// `none`.
fn parse_layers(text: &str) -> anyhow::Result<Layers> {
    let cells = |line: &str| -> Vec<String> {
        line.trim()
            .trim_matches('|')
            .split('|')
            .map(|c| c.trim().trim_matches('`').to_owned())
            .collect()
    };
    let mut rows = Vec::new();
    let mut in_table = false;
    for line in text.lines() {
        if line.starts_with("| layer | dir | package |") {
            in_table = true;
            continue;
        }
        if !in_table || line.starts_with("|---") {
            continue;
        }
        if !line.starts_with('|') {
            break;
        }
        let c = cells(line);
        if c.len() < 5 {
            bail!("a row with {} cells: {line}", c.len());
        }
        let dir = c[1].trim_start_matches("crates/").to_owned();
        rows.push((dir, c[2].clone(), c[4].clone()));
    }
    if rows.is_empty() {
        bail!("no rows under `| layer | dir | package |`");
    }
    let package_of = |dir: &str| {
        rows.iter()
            .find(|(d, _, _)| d == dir)
            .map(|(_, p, _)| p.clone())
    };
    rows.iter()
        .map(|(_, package, deps)| {
            let deps = if deps == "none" {
                Vec::new()
            } else {
                deps.split(',')
                    .map(|d| {
                        package_of(d.trim())
                            .with_context(|| format!("{package}: no row for {:?}", d.trim()))
                    })
                    .collect::<anyhow::Result<Vec<_>>>()?
            };
            Ok((package.clone(), deps))
        })
        .collect()
}

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
const MAY_USE_FACADE: &[&str] = &[FACADE, SERVICE, CLI, TESTS];

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
    let layers = read_layers(root)?;
    let pkgs = packages(root)?;
    for p in &pkgs {
        let Some((_, allowed)) = layers.iter().find(|(n, _)| *n == p.name) else {
            problems.push(format!(
                "{}: not in the layer table; add a row to the table in docs/architecture.md",
                p.name
            ));
            continue;
        };
        for (dep, kind) in &p.workspace_deps {
            let ok = match kind.as_str() {
                // Tests may use the crate itself and what it may use, and
                // the facade where listed; never a crate above it (its tests
                // would then build the layers it must not know about).
                "dev" => {
                    *dep == p.name
                        || below(&layers, &p.name).contains(dep)
                        || (dep == FACADE && MAY_USE_FACADE.contains(&p.name.as_str()))
                }
                _ => allowed.contains(dep),
            };
            if !ok {
                problems.push(format!(
                    "{}: may not depend on {dep} ({kind}); allowed: {:?} (docs/style.md §2)",
                    p.name, allowed
                ));
            }
        }
        problems.extend(single_declaration(p));
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
    problems.extend(msrv_problems(root)?);
    for name in NO_RUNTIME {
        if pkgs.iter().any(|p| p.name == *name) {
            problems.extend(runtime_free(root, name)?);
        }
    }
    Ok(problems)
}

/// Every workspace package `name` may reach through the layer table.
fn below(layers: &Layers, name: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack: Vec<String> = vec![name.to_owned()];
    while let Some(n) = stack.pop() {
        if let Some((_, allowed)) = layers.iter().find(|(p, _)| *p == n) {
            for a in allowed {
                if out.insert(a.clone()) {
                    stack.push(a.clone());
                }
            }
        }
    }
    out
}

/// docs/style.md §2: every dependency is declared once, in the root
/// `[workspace.dependencies]`; members name it with `workspace = true`.
fn single_declaration(p: &Package) -> Vec<String> {
    let manifest = std::fs::read_to_string(&p.manifest).unwrap_or_default();
    let mut section = String::new();
    let mut problems = Vec::new();
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            line.clone_into(&mut section);
            continue;
        }
        let in_deps = section.ends_with("dependencies]");
        let Some((name, value)) = line.split_once('=') else {
            continue;
        };
        if in_deps && !line.starts_with('#') && !value.contains("workspace = true") {
            problems.push(format!(
                "{}: {section} {} is declared here; declare it once in the root [workspace.dependencies] and use `{} = {{ workspace = true }}`",
                p.name,
                name.trim(),
                name.trim()
            ));
        }
    }
    problems
}

/// The workspace's `rust-version` against the `rust-version` of every
/// package the members build with (normal and build dependencies, and the
/// members' own dev-dependencies): the MSRV claim must be true.
fn msrv_problems(root: &Path) -> anyhow::Result<Vec<String>> {
    use std::collections::HashMap;
    let json = output_of(
        Command::new("cargo")
            .args(["metadata", "--format-version", "1", "--locked"])
            .current_dir(root),
    )?;
    let meta: Value = serde_json::from_str(&json).context("cargo metadata printed invalid JSON")?;
    // "1.89" and "1.89.0" are the same version.
    let version = |v: &str| -> Vec<u64> {
        let mut parts: Vec<u64> = v.split('.').map(|x| x.parse().unwrap_or(0)).collect();
        parts.resize(3, 0);
        parts
    };
    let packages: HashMap<&str, &Value> = meta["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| Some((p["id"].as_str()?, p)))
        .collect();
    let members: Vec<&str> = meta["workspace_members"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let claim = members
        .iter()
        .filter_map(|m| packages.get(m)?["rust_version"].as_str())
        .map(|v| (version(v), v.to_owned()))
        .max()
        .context("no workspace member declares rust-version")?;
    let nodes: HashMap<&str, &Value> = meta["resolve"]["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| Some((n["id"].as_str()?, n)))
        .collect();
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    let mut stack: Vec<&str> = members.clone();
    while let Some(id) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        let Some(node) = nodes.get(id) else { continue };
        let member = members.contains(&id);
        for dep in node["deps"].as_array().into_iter().flatten() {
            let built = member
                || dep["dep_kinds"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|k| k["kind"].is_null() || k["kind"] == "build");
            if let (true, Some(pkg)) = (built, dep["pkg"].as_str()) {
                stack.push(pkg);
            }
        }
    }
    let mut problems = Vec::new();
    for id in seen {
        let Some(p) = packages.get(id) else { continue };
        if let Some(rv) = p["rust_version"].as_str()
            && version(rv) > claim.0
        {
            problems.push(format!(
                "{} {} needs Rust {rv}, newer than the workspace's rust-version {}: raise it in Cargo.toml and clippy.toml",
                p["name"].as_str().unwrap_or("?"),
                p["version"].as_str().unwrap_or("?"),
                claim.1
            ));
        }
    }
    let clippy = std::fs::read_to_string(root.join("clippy.toml")).unwrap_or_default();
    if !clippy.contains(&format!("msrv = \"{}\"", claim.1)) {
        problems.push(format!(
            "clippy.toml: msrv must equal the workspace rust-version {}",
            claim.1
        ));
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
        // The README is the crate's rustdoc front page, so the two cannot
        // drift; a crate without a README opens with `//!` docs.
        let front_page = if dir.join("README.md").is_file() {
            lib.starts_with("#![doc = include_str!(\"../README.md\")]")
        } else {
            lib.starts_with("//!")
        };
        if !front_page {
            problems.push(format!(
                "{}: src/lib.rs must open with #![doc = include_str!(\"../README.md\")] (or //! docs when the crate has no README)",
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
        let layers = read_layers(&crate::project_root()).unwrap();
        let position = |n: &str| layers.iter().position(|(p, _)| p == n).unwrap();
        for (name, allowed) in &layers {
            for dep in allowed {
                assert!(
                    position(dep) < position(name) || name == XTASK || name == TESTS,
                    "{name} -> {dep}"
                );
            }
        }
        // The rows tidy knows by name are all there.
        for known in [
            STATS,
            OBS_CORE,
            OBS_OTEL,
            "flightdeck-experiments",
            "flightdeck-slo",
            "flightdeck-golden",
            "flightdeck-flags",
            "flightdeck-release",
            FACADE,
            CLI,
        ] {
            assert!(layers.iter().any(|(p, _)| p == known), "{known}");
        }
    }

    #[test]
    fn the_layer_table_parser_refuses_unknown_directories() {
        let table = "| layer | dir | package | role | may depend on | status |\n|---|\n| 0 | `crates/a` | `pa` | r | none | x |\n| 1 | `crates/b` | `pb` | r | a, zz | x |\n";
        let err = parse_layers(table).unwrap_err();
        assert!(format!("{err:#}").contains("\"zz\""), "{err:#}");
        let ok = parse_layers(&table.replace(", zz", "")).unwrap();
        assert_eq!(ok[1], ("pb".to_owned(), vec!["pa".to_owned()]));
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

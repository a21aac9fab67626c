//! `cargo xtask release [patch|minor|major|VERSION] [--execute]`: the
//! version bump, the changelog from the commits since the last tag, and
//! the tag, in cargo-release's manner: a dry run that prints the plan and
//! changes nothing unless `--execute`.

use std::path::Path;
use std::process::Command;

use anyhow::Context;

use crate::deploy::Flags;
use crate::{BadArgs, output_of, print, run_cmd, say};

/// `a.b.c` bumped by `level`, or `level` itself when it is a version.
pub(crate) fn next_version(current: &str, level: &str) -> anyhow::Result<String> {
    let parse = |v: &str| -> Option<(u64, u64, u64)> {
        let core = v.split(['-', '+']).next()?;
        let mut it = core.split('.').map(|p| p.parse::<u64>().ok());
        let t = (it.next()??, it.next()??, it.next()??);
        it.next().is_none().then_some(t)
    };
    let (ma, mi, pa) = parse(current).ok_or_else(|| {
        BadArgs(format!(
            "the workspace version {current:?} is not MAJOR.MINOR.PATCH"
        ))
    })?;
    let next = match level {
        "patch" => format!("{ma}.{mi}.{}", pa + 1),
        "minor" => format!("{ma}.{}.0", mi + 1),
        "major" => format!("{}.0.0", ma + 1),
        v => {
            let n = parse(v).ok_or_else(|| {
                BadArgs(format!(
                    "{v:?}: use patch, minor, major or a version MAJOR.MINOR.PATCH"
                ))
            })?;
            if n <= (ma, mi, pa) {
                return Err(
                    BadArgs(format!("{v} is not after the current version {current}")).into(),
                );
            }
            v.to_owned()
        }
    };
    Ok(next)
}

/// Commit subjects grouped by their `area:` prefix, as Markdown.
pub(crate) fn changelog(version: &str, date: &str, subjects: &[String]) -> String {
    let mut groups: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for s in subjects {
        let (area, text) = match s.split_once(": ") {
            Some((a, t)) if !a.contains(' ') || a.split(", ").all(|p| !p.contains(' ')) => {
                (a.to_owned(), t.to_owned())
            }
            _ => ("other".to_owned(), s.clone()),
        };
        let first = text.split(['\n']).next().unwrap_or("").to_owned();
        groups.entry(area).or_default().push(first);
    }
    let mut out = format!("## {version} ({date})\n");
    for (area, items) in groups {
        out.push_str(&format!("\n### {area}\n\n"));
        for i in items {
            out.push_str(&format!("- {i}\n"));
        }
    }
    out
}

/// Replaces the `[workspace.package]` version and the workspace crates'
/// `version = "…"` in `[workspace.dependencies]`.
pub(crate) fn bump_manifest(text: &str, from: &str, to: &str) -> String {
    let mut section = String::new();
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            section = t.to_owned();
        }
        let bumped = if section == "[workspace.package]"
            && t.starts_with("version")
            && t.contains(&format!("\"{from}\""))
        {
            line.replacen(&format!("\"{from}\""), &format!("\"{to}\""), 1)
        } else if section == "[workspace.dependencies]"
            && t.starts_with("flightdeck")
            && t.contains("path =")
        {
            line.replacen(
                &format!("version = \"{from}\""),
                &format!("version = \"{to}\""),
                1,
            )
        } else {
            line.to_owned()
        };
        out.push_str(&bumped);
        out.push('\n');
    }
    out
}

/// `cargo xtask release`.
pub(crate) fn run(root: &Path, args: &[String]) -> anyhow::Result<()> {
    let level: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let flags: Vec<String> = args
        .iter()
        .filter(|a| a.starts_with("--"))
        .cloned()
        .collect();
    let f = Flags::parse(&flags, &[], &["--execute"])?;
    let level = match level.as_slice() {
        [] => "patch",
        [l] => l.as_str(),
        more => return Err(BadArgs(format!("one level or version, not {more:?}")).into()),
    };
    let manifest_path = root.join("Cargo.toml");
    let manifest = std::fs::read_to_string(&manifest_path)?;
    let current = crate::deploy::workspace_version_of(&manifest)?;
    let next = next_version(&current, level)?;
    let tag = format!("v{next}");
    let git = |args: &[&str]| output_of(Command::new("git").current_dir(root).args(args));
    if git(&["rev-parse", "-q", "--verify", &format!("refs/tags/{tag}")]).is_ok() {
        return Err(BadArgs(format!("tag {tag} already exists")).into());
    }
    let last_tag = git(&["describe", "--tags", "--abbrev=0", "--match", "v*"])
        .ok()
        .map(|t| t.trim().to_owned());
    let range = last_tag
        .as_ref()
        .map_or_else(|| "HEAD".to_owned(), |t| format!("{t}..HEAD"));
    let log = git(&["log", "--no-merges", "--format=%s", &range])?;
    let subjects: Vec<String> = log.lines().map(str::to_owned).collect();
    // The day of `YYYY-MM-DD hh:mm:ss`, as deploy-history prints times.
    let date = crate::deploy::time_of(crate::deploy::now_ms())[..10].to_owned();
    let notes = changelog(&next, &date, &subjects);
    let dirty = git(&["status", "--porcelain", "--untracked-files=no"])?;
    print(&format!(
        "release plan: {current} -> {next}\n  commits since {}: {}\n  Cargo.toml: [workspace.package] and the workspace crates' versions\n  CHANGELOG.md: the release's notes on top (below)\n  git: commit \"release: {tag}\" and an annotated tag {tag} (not pushed)\n\n{notes}",
        last_tag.as_deref().unwrap_or("the first commit"),
        subjects.len()
    ));
    if !f.has("--execute") {
        say("xtask release: a dry run; nothing changed. Add --execute to do it.");
        return Ok(());
    }
    if !dirty.trim().is_empty() {
        return Err(BadArgs(format!(
            "the working tree has uncommitted changes; commit or stash them first:\n{dirty}"
        ))
        .into());
    }
    std::fs::write(&manifest_path, bump_manifest(&manifest, &current, &next))?;
    let changelog_path = root.join("CHANGELOG.md");
    let old = std::fs::read_to_string(&changelog_path).unwrap_or_else(|_| {
        "# Changelog\n\nReleases of the Flightdeck workspace, newest first (`cargo xtask release` writes them).\n\n".into()
    });
    let (head, rest) = old
        .split_once("\n## ")
        .map_or((old.as_str(), String::new()), |(h, r)| {
            (h, format!("## {r}"))
        });
    std::fs::write(
        &changelog_path,
        format!(
            "{}\n{notes}\n{rest}",
            head.trim_end_matches('\n').to_owned() + "\n"
        ),
    )?;
    run_cmd(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .current_dir(root)
            .args(["update", "--workspace", "--offline"]),
    )
    .context("cannot refresh Cargo.lock")?;
    run_cmd(Command::new("git").current_dir(root).args([
        "commit",
        "-q",
        "-am",
        &format!("release: {tag}"),
    ]))?;
    run_cmd(
        Command::new("git")
            .current_dir(root)
            .args(["tag", "-a", &tag, "-m", &notes]),
    )?;
    say(&format!(
        "xtask release: {tag} committed and tagged; push with `git push --follow-tags`"
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_bump_like_cargo_release() {
        assert_eq!(next_version("0.1.0", "patch").unwrap(), "0.1.1");
        assert_eq!(next_version("0.1.9", "minor").unwrap(), "0.2.0");
        assert_eq!(next_version("1.4.2", "major").unwrap(), "2.0.0");
        assert_eq!(next_version("1.4.2", "1.5.0").unwrap(), "1.5.0");
        assert!(
            next_version("1.4.2", "1.4.2")
                .unwrap_err()
                .to_string()
                .contains("not after")
        );
        assert!(
            next_version("1.4.2", "banana")
                .unwrap_err()
                .to_string()
                .contains("banana")
        );
    }

    #[test]
    fn the_manifest_bump_touches_only_our_versions() {
        let m = "[workspace.package]\nversion = \"0.1.0\"\n\n[workspace.dependencies]\nflightdeck-stats = { path = \"crates/stats\", version = \"0.1.0\" }\nserde = { version = \"0.1.0\" }\n";
        let b = bump_manifest(m, "0.1.0", "0.2.0");
        assert!(b.contains("version = \"0.2.0\"\n\n"));
        assert!(b.contains("flightdeck-stats = { path = \"crates/stats\", version = \"0.2.0\" }"));
        assert!(b.contains("serde = { version = \"0.1.0\" }"));
    }

    #[test]
    fn the_changelog_groups_by_area() {
        let notes = changelog(
            "0.2.0",
            "2026-12-06",
            &[
                "release: a judge".into(),
                "cli, service: b".into(),
                "Fix a typo".into(),
            ],
        );
        assert!(notes.starts_with("## 0.2.0 (2026-12-06)"));
        assert!(notes.contains("### release\n\n- a judge"));
        assert!(notes.contains("### cli, service\n\n- b"));
        assert!(notes.contains("### other\n\n- Fix a typo"));
    }
}

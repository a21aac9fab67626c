//! `cargo xtask rehearse-rollback [--scenario NAME | --all] [--non-interactive]
//! [--json FILE] [--notes FILE]`: breaks a canary in each of the seed's six
//! ways (plus a healthy control) in a fresh local production, lets the
//! pipeline notice and roll back, and measures it
//! ([`flightdeck_release::env::rehearsal`]). Writes a table, a Markdown
//! report with a timeline picture per scenario, the JSON results, and a
//! history line so detection times can be compared between runs.
//!
//! On a terminal (without `--non-interactive`) it walks the operator
//! through each scenario's playbook section in `docs/rollback-playbook.md`,
//! pauses before breaking anything, and asks for the lessons learned.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use flightdeck_release::env::process::write_atomic;
use flightdeck_release::env::rehearsal::{self, SCENARIOS, Scenario, ScenarioResult};
use serde_json::{Value, json};

use crate::deploy::{Flags, options, workspace};
use crate::{BadArgs, Finding, print, say};

/// The playbook section of a scenario (its `##`/`###` heading naming it,
/// up to the next heading of the same level).
fn playbook_section(root: &Path, name: &str) -> Option<String> {
    let text = std::fs::read_to_string(root.join("docs/rollback-playbook.md")).ok()?;
    let mut lines = text.lines();
    let head = lines.find(|l| l.starts_with('#') && l.contains(&format!("`{name}`")))?;
    let level = head.chars().take_while(|c| *c == '#').count();
    let mut out = vec![head.to_owned()];
    for l in lines {
        let hashes = l.chars().take_while(|c| *c == '#').count();
        if hashes > 0 && hashes <= level {
            break;
        }
        out.push(l.to_owned());
    }
    Some(out.join("\n"))
}

/// Lessons from `--notes FILE`: a JSON object of scenario → text, or plain
/// text that applies to every scenario.
fn read_notes(path: &Path) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| BadArgs(format!("--notes {}: {e}", path.display())))?;
    if text.trim_start().starts_with('{') {
        let v: Value = serde_json::from_str(&text).map_err(|e| {
            BadArgs(format!(
                "--notes {}:{}:{}: {e}",
                path.display(),
                e.line(),
                e.column()
            ))
        })?;
        if let Some(bad) = v
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k)
            .find(|k| rehearsal::scenario(k).is_err())
        {
            return Err(BadArgs(format!(
                "--notes {}: {bad:?} is not a scenario",
                path.display()
            ))
            .into());
        }
        Ok(v)
    } else {
        Ok(Value::String(text.trim().to_owned()))
    }
}

fn secs(v: Option<f64>) -> String {
    v.map_or_else(|| "—".to_owned(), |s| format!("{s:.1}"))
}

/// The playbook as a link from the report in `out` (relative inside the
/// checkout, absolute otherwise).
fn playbook_link(root: &Path, out: &Path) -> String {
    match out.strip_prefix(root) {
        Ok(rel) => format!(
            "{}docs/rollback-playbook.md",
            "../".repeat(rel.components().count())
        ),
        Err(_) => root.join("docs/rollback-playbook.md").display().to_string(),
    }
}

fn table(results: &[(ScenarioResult, String)], playbook: &str) -> String {
    let mut s = String::from(
        "| scenario | outcome | detect (s) | target (s) | rollback (s) | failed / requests | stable available | passed |\n|---|---|---|---|---|---|---|---|\n",
    );
    for (r, _) in results {
        s.push_str(&format!(
            "| [`{}`]({playbook}#{}) | {} | {} | {} | {} | {} / {} ({:.2} %) | {} | {} |\n",
            r.name,
            r.name,
            r.outcome,
            secs(r.detect_seconds),
            r.detect_target_seconds
                .map_or_else(|| "promote".to_owned(), |t| t.to_string()),
            r.rollback_seconds
                .map_or_else(|| "—".to_owned(), |s| format!("{s:.3}")),
            r.failed_requests,
            r.requests,
            100.0 * r.failed_share,
            if r.stable_available { "yes" } else { "NO" },
            if r.passed { "yes" } else { "**NO**" }
        ));
    }
    s
}

/// `cargo xtask rehearse-rollback`.
pub(crate) fn run(root: &Path, args: &[String]) -> anyhow::Result<()> {
    let f = Flags::parse(
        args,
        &[
            "--root",
            "--scenario",
            "--json",
            "--notes",
            "--binary",
            "--interval",
            "--time-scale",
            "--traffic-rps",
        ],
        &["--all", "--non-interactive"],
    )?;
    let chosen: Vec<Scenario> = match (f.value("--scenario"), f.has("--all")) {
        (Some(_), true) => {
            return Err(BadArgs("give --scenario NAME or --all, not both".into()).into());
        }
        (Some(name), false) => vec![rehearsal::scenario(name)?],
        (None, _) => SCENARIOS.to_vec(),
    };
    let interactive = !f.has("--non-interactive") && std::io::stdin().is_terminal();
    let notes = match f.value("--notes") {
        Some(p) => read_notes(Path::new(p))?,
        None => Value::Null,
    };
    let mut opts = options(&f)?;
    if f.value("--interval").is_none() {
        opts.interval = std::time::Duration::from_secs(1);
    }
    if f.value("--traffic-rps").is_none() {
        opts.traffic_rps = 60;
    }
    opts.actor = "rehearsal".into();
    // A workspace of its own: the rehearsal never touches the user's
    // staging or production.
    let base = workspace(root, &f);
    let ws = flightdeck_release::env::Workspace::new(base.root().join("rehearsal"));
    let binary = rehearsal_binary(root, &f, &base)?;
    let digest = flightdeck_release::env::artifacts::digest(&binary)?;
    let short = &digest[..10];
    let stable = ws
        .artifacts()
        .add(&binary, &format!("stable-{short}"), short, "rehearsal")?;
    let canary = ws
        .artifacts()
        .add(&binary, &format!("canary-{short}"), short, "rehearsal")?;
    let stable = ws.artifacts().get(&stable.version)?;
    let canary = ws.artifacts().get(&canary.version)?;
    let run_ms = crate::deploy::now_ms();
    let out = ws
        .root()
        .join("runs")
        .join(crate::deploy::time_of(run_ms).replace([' ', ':'], "-"));
    std::fs::create_dir_all(&out)?;
    let started = Instant::now();
    let mut results: Vec<(ScenarioResult, String)> = Vec::new();
    for sc in &chosen {
        if interactive {
            say(&format!(
                "\n=== scenario {} — noticed through {}",
                sc.name, sc.noticed_by
            ));
            if let Some(p) = playbook_section(root, sc.name) {
                say(&p);
            }
            say("Press Enter to break the canary this way (Ctrl-C stops the rehearsal)…");
            let mut l = String::new();
            std::io::stdin().lock().read_line(&mut l)?;
        }
        say(&format!("== rehearse-rollback: {}", sc.name));
        let t = Instant::now();
        let mut progress = |line: &str| say(&format!("   {line}"));
        let r = match rehearsal::run_scenario(&ws, &stable, &canary, sc, &opts, &mut progress) {
            Ok(r) => r,
            Err(e) => {
                let _ = ws.down(std::time::Duration::from_secs(5));
                return Err(anyhow::Error::from(e)
                    .context(format!("scenario {} could not be set up", sc.name)));
            }
        };
        say(&format!(
            "   {}: {} (detected in {} s, traffic back in {} s, {} of {} requests failed, stable available: {}) in {:.0}s",
            r.name,
            r.outcome,
            secs(r.detect_seconds),
            secs(r.rollback_seconds),
            r.failed_requests,
            r.requests,
            r.stable_available,
            t.elapsed().as_secs_f64()
        ));
        let svg = rehearsal::timeline_svg(&format!("{} — {}", r.name, r.outcome), &r.timeline);
        write_atomic(
            &out.join(format!("timeline-{}.svg", r.name)),
            svg.as_bytes(),
        )?;
        let lesson = lesson_for(&notes, sc, interactive)?;
        results.push((r, lesson));
    }
    // The results, the report, the history.
    let scenarios: Vec<Value> = results
        .iter()
        .map(|(r, lesson)| {
            let mut v = serde_json::to_value(r).unwrap_or(Value::Null);
            v["lessons"] = json!(lesson);
            v["playbook"] = json!(format!("docs/rollback-playbook.md#{}", r.name));
            v
        })
        .collect();
    let doc = json!({"run_ms": run_ms, "seconds": started.elapsed().as_secs_f64(), "scenarios": scenarios});
    let text = serde_json::to_string_pretty(&doc)?;
    write_atomic(&out.join("results.json"), text.as_bytes())?;
    if let Some(p) = f.value("--json") {
        write_atomic(Path::new(p), text.as_bytes())?;
    }
    let previous = append_history(&ws.root().join("history.jsonl"), run_ms, &results)?;
    let link = playbook_link(root, &out);
    let md = report_md(&results, previous.as_ref(), run_ms, &opts, &link);
    write_atomic(&out.join("report.md"), md.as_bytes())?;
    print(&table(&results, &link));
    say(&format!(
        "xtask rehearse-rollback: report in {}",
        out.join("report.md").display()
    ));
    let failed: Vec<&str> = results
        .iter()
        .filter(|(r, _)| !r.passed)
        .map(|(r, _)| r.name.as_str())
        .collect();
    if failed.is_empty() {
        say(&format!(
            "xtask rehearse-rollback: every target held ({:.0}s)",
            started.elapsed().as_secs_f64()
        ));
        Ok(())
    } else {
        say(&format!(
            "xtask rehearse-rollback: targets missed by {}",
            failed.join(", ")
        ));
        Err(Finding.into())
    }
}

/// The lesson recorded for a scenario: from `--notes` (an object by
/// scenario, or one text for all), or typed in on a terminal.
fn lesson_for(notes: &Value, sc: &Scenario, interactive: bool) -> anyhow::Result<String> {
    let mut lesson = match notes {
        Value::Object(m) => m
            .get(sc.name)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        Value::String(s) => s.clone(),
        _ => String::new(),
    };
    if interactive {
        let mut e = std::io::stderr();
        write!(
            e,
            "Lessons learned from {} (one line, empty to skip): ",
            sc.name
        )?;
        e.flush()?;
        let mut l = String::new();
        std::io::stdin().lock().read_line(&mut l)?;
        if !l.trim().is_empty() {
            lesson = l.trim().to_owned();
        }
    }
    Ok(lesson)
}

/// Appends this run's line to the history; answers the previous run's line.
fn append_history(
    history: &Path,
    run_ms: u64,
    results: &[(ScenarioResult, String)],
) -> anyhow::Result<Option<Value>> {
    let previous: Option<Value> = std::fs::read_to_string(history)
        .ok()
        .and_then(|t| t.lines().last().and_then(|l| serde_json::from_str(l).ok()));
    let line = json!({
        "run_ms": run_ms,
        "scenarios": results.iter().map(|(r, _)| json!({
            "name": r.name, "outcome": r.outcome, "detect_seconds": r.detect_seconds,
            "rollback_seconds": r.rollback_seconds, "failed_share": r.failed_share, "passed": r.passed,
        })).collect::<Vec<_>>(),
    });
    {
        let mut h = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(history)?;
        writeln!(h, "{line}")?;
        h.sync_all()?;
    }
    Ok(previous)
}

/// The run's report: the table, the comparison with the previous run, and
/// a section per scenario with its timeline and lessons.
fn report_md(
    results: &[(ScenarioResult, String)],
    previous: Option<&Value>,
    run_ms: u64,
    opts: &flightdeck_release::env::DeployOptions,
    link: &str,
) -> String {
    let mut md = format!(
        "# Rollback rehearsal — {}\n\nEach scenario ran in a fresh local production (stable behind HAProxy, scraped by Prometheus, {} requests/s of steady traffic); the fault went in through the canary's admin API the moment it first carried traffic (for `flag_regression`, on the flag-on path of one service under a guarded rollout), and the controller judged every {} s. Detection is from the fault to the rollback decision; rollback is from the decision to all traffic on stable. Targets: detection within the scenario's target, at most 5 % of requests failed, stable available throughout, `healthy` promoted.\n\n{}\n",
        crate::deploy::time_of(run_ms),
        opts.traffic_rps,
        opts.interval.as_secs_f64(),
        table(results, link)
    );
    if let Some(prev) = previous {
        md.push_str("\n## Compared with the previous run\n\n| scenario | detect now (s) | detect before (s) |\n|---|---|---|\n");
        for (r, _) in results {
            let before = prev["scenarios"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|s| s["name"] == r.name.as_str())
                .and_then(|s| s["detect_seconds"].as_f64());
            md.push_str(&format!(
                "| {} | {} | {} |\n",
                r.name,
                secs(r.detect_seconds),
                secs(before)
            ));
        }
    }
    for (r, lesson) in results {
        md.push_str(&format!(
            "\n## `{}`\n\nNoticed through {}; playbook: [docs/rollback-playbook.md#{}]({link}#{}).\n\n{}: {}\n\n![timeline](timeline-{}.svg)\n",
            r.name, r.noticed_by, r.name, r.name, r.outcome, r.reason, r.name
        ));
        if !lesson.is_empty() {
            md.push_str(&format!("\nLessons learned: {lesson}\n"));
        }
    }
    md
}

/// The binary rehearsed: `--binary`, else a fresh build into the artifacts.
fn rehearsal_binary(
    root: &Path,
    f: &Flags,
    base: &flightdeck_release::env::Workspace,
) -> anyhow::Result<PathBuf> {
    Ok(match f.value("--binary") {
        Some(b) => PathBuf::from(b),
        None => {
            let mut b = Vec::new();
            if let Some(r) = f.value("--root") {
                b.extend(["--root".to_owned(), r.to_owned()]);
            }
            let v = crate::deploy::build(root, &b)?;
            base.artifacts().get(&v)?.binary
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each scenario has its playbook section (anchor and heading), and
    /// every `cargo xtask` task the playbook names exists.
    #[test]
    fn the_playbook_covers_every_scenario_with_commands_that_exist() {
        let root = crate::project_root();
        let text = std::fs::read_to_string(root.join("docs/rollback-playbook.md")).unwrap();
        for sc in SCENARIOS {
            assert!(
                text.contains(&format!("<a id=\"{}\"></a>", sc.name)),
                "no anchor for {}",
                sc.name
            );
            let section = playbook_section(&root, sc.name).unwrap_or_default();
            assert!(
                section.contains(&format!("--scenario {}", sc.name)),
                "the {} section says how to rehearse it",
                sc.name
            );
        }
        let main = std::fs::read_to_string(root.join("xtask/src/main.rs")).unwrap();
        for (i, _) in text.match_indices("cargo xtask ") {
            let task: String = text[i + 12..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '-')
                .collect();
            assert!(
                main.contains(&format!("Some(\"{task}\")")),
                "the playbook names `cargo xtask {task}`, which does not exist"
            );
        }
    }
}

//! Reports: a plain-text table, Markdown a newcomer can read, and one
//! self-contained HTML page (no network) with SVG plots: a forest plot per
//! metric, cumulative lift over time, and users per arm over time with the
//! SRM verdict.

use std::fmt::Write as _;

use super::{Decision, Direction, Engine, ExperimentAnalysis, MetricKind, MetricResult, Role, pct};

fn decision_title(a: &ExperimentAnalysis) -> String {
    let key = |id: Option<usize>| {
        id.and_then(|id| {
            a.metrics
                .first()
                .and_then(|m| m.variations.iter().find(|v| v.variation_id == id))
                .map(|v| v.key.clone())
        })
        .unwrap_or_else(|| id.map_or_else(String::new, |i| i.to_string()))
    };
    match a.recommendation.decision {
        Decision::Ship => format!("ship `{}`", key(a.recommendation.variation_id)),
        Decision::KeepControl => "keep the control".into(),
        Decision::KeepRunning => "keep running".into(),
        Decision::Invalid => "invalid: do not decide".into(),
    }
}

fn p(x: f64) -> String {
    if x < 0.001 {
        format!("{x:.1e}")
    } else {
        format!("{x:.3}")
    }
}

fn describe(m: &MetricResult) -> String {
    format!(
        "{}, {}, {} is better",
        match m.role {
            Role::Goal => "goal",
            Role::Guardrail => "guardrail",
        },
        match m.kind {
            MetricKind::Binomial => "binomial",
            MetricKind::Mean => "mean",
        },
        match m.direction {
            Direction::Higher => "higher",
            Direction::Lower => "lower",
        }
    )
}

/// A plain-text table for the terminal.
pub fn render_text(a: &ExperimentAnalysis) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "experiment {}: {}",
        a.experiment,
        decision_title(a).replace('`', "")
    );
    for r in &a.recommendation.reasons {
        let _ = writeln!(out, "  - {r}");
    }
    let _ = writeln!(
        out,
        "SRM: {} (users {:?}, p = {})",
        if a.srm.mismatch { "MISMATCH" } else { "ok" },
        a.srm.observed,
        p(a.srm.p_value)
    );
    for m in &a.metrics {
        let _ = writeln!(out, "\n{} ({})", m.name, describe(m));
        let _ = writeln!(
            out,
            "  {:<14} {:>8} {:>12} {:>9} {:>20} {:>9} {:>9} {:>8}",
            "variation", "users", "mean", "change", "95% interval", "p", "adj. p", "win"
        );
        for v in &m.variations {
            let comp = m
                .comparisons
                .iter()
                .find(|c| c.variation_id == v.variation_id);
            match comp {
                None => {
                    let _ = writeln!(out, "  {:<14} {:>8} {:>12.4}", v.key, v.n, v.mean);
                }
                Some(c) => {
                    let f = &c.frequentist.relative;
                    let _ = writeln!(
                        out,
                        "  {:<14} {:>8} {:>12.4} {:>9} {:>20} {:>9} {:>9} {:>7.1}%",
                        v.key,
                        v.n,
                        v.mean,
                        pct(f.estimate),
                        format!("[{}, {}]", pct(f.ci_low), pct(f.ci_high)),
                        p(f.p_value),
                        c.adjusted_p_value.map_or_else(|| "-".into(), p),
                        c.bayesian.relative.chance_to_win * 100.0
                    );
                }
            }
        }
    }
    out
}

/// Markdown: the decision first, in plain words, then whether the data can
/// be trusted, the numbers, and how to read them.
pub fn render_markdown(a: &ExperimentAnalysis) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Experiment `{}`: {}\n",
        a.experiment,
        decision_title(a)
    );
    let lead = match a.recommendation.decision {
        Decision::Ship => "**Decision: ship it.**",
        Decision::KeepControl => "**Decision: keep the control.** The change made things worse.",
        Decision::KeepRunning => {
            "**Decision: keep the experiment running.** There is no clear answer yet."
        }
        Decision::Invalid => "**Decision: none. The data cannot be trusted.**",
    };
    let _ = writeln!(out, "{lead}\n");
    for r in &a.recommendation.reasons {
        let _ = writeln!(out, "- {r}");
    }
    let _ = writeln!(out, "\n## Can the data be trusted?\n");
    let _ = writeln!(out, "| check | result |\n|---|---|");
    let _ = writeln!(
        out,
        "| Traffic split (SRM) | {}: users per arm {:?}, expected {:?} (p = {}) |",
        if a.srm.mismatch { "**mismatch**" } else { "ok" },
        a.srm.observed,
        a.srm
            .expected
            .iter()
            .map(|e| e.round() as u64)
            .collect::<Vec<_>>(),
        p(a.srm.p_value)
    );
    if let Some(pw) = &a.power {
        let _ = writeln!(
            out,
            "| Power on `{}` | smallest detectable change now: {}; a {} change needs {} users per arm{} |",
            pw.metric,
            pw.mde_now.map_or_else(
                || "n/a".into(),
                |m| pct(m).trim_start_matches('+').to_owned()
            ),
            pct(pw.mde_target).trim_start_matches('+'),
            pw.users_needed_per_arm
                .map_or_else(|| "n/a".into(), |n| n.to_string()),
            pw.days_remaining
                .filter(|d| *d > 0.0)
                .map_or_else(String::new, |d| format!(" (about {d:.1} more days)"))
        );
    }
    let _ = writeln!(
        out,
        "| Method | {} engine, α = {}, {} correction across {} goal comparison(s) |",
        match a.engine {
            Engine::Frequentist => "frequentist",
            Engine::Bayesian => "Bayesian",
        },
        a.alpha,
        a.correction,
        a.metrics
            .iter()
            .filter(|m| m.role == Role::Goal)
            .map(|m| m.comparisons.len())
            .sum::<usize>()
    );
    let level = (1.0 - a.alpha) * 100.0;
    let _ = writeln!(out, "\n## Results\n");
    for m in &a.metrics {
        let _ = writeln!(out, "### `{}` ({})\n", m.name, describe(m));
        let _ = writeln!(
            out,
            "| variation | users | mean | change vs control | {level:.0} % interval | p-value | adjusted p | chance to win |\n|---|---|---|---|---|---|---|---|"
        );
        for v in &m.variations {
            match m
                .comparisons
                .iter()
                .find(|c| c.variation_id == v.variation_id)
            {
                None => {
                    let _ = writeln!(
                        out,
                        "| {} | {} | {:.4} | – | – | – | – | – |",
                        control_label(&v.key),
                        v.n,
                        v.mean
                    );
                }
                Some(c) => {
                    let f = &c.frequentist.relative;
                    let note = f.error.map_or_else(String::new, |e| format!(" ({e:?})"));
                    let _ = writeln!(
                        out,
                        "| {} | {} | {:.4} | {}{note} | {} to {} | {} | {} | {:.1} % |",
                        v.key,
                        v.n,
                        v.mean,
                        pct(f.estimate),
                        pct(f.ci_low),
                        pct(f.ci_high),
                        p(f.p_value),
                        c.adjusted_p_value.map_or_else(|| "–".into(), p),
                        c.bayesian.relative.chance_to_win * 100.0
                    );
                }
            }
        }
        let missing: u64 = m.variations.iter().map(|v| v.missing).sum();
        if missing > 0 {
            let _ = writeln!(
                out,
                "\n{missing} user(s) had no `{}` value; they count as 0.",
                m.name
            );
        }
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "## How to read this\n\n\
- **Change vs control** is how much the variation's average differs from the control's, as a share of the control's (+10 % means 10 % higher).\n\
- **Interval**: the range the true change most likely lies in ({level:.0} % of such intervals contain it). If it does not cross 0 %, the change is real at that level.\n\
- **p-value**: how surprising the data would be if the variation changed nothing. Small (below {}) means the change is unlikely to be luck.\n\
- **Adjusted p**: the p-value corrected for looking at several variations and metrics at once; decisions use it.\n\
- **Chance to win**: the Bayesian probability that the variation is better than the control (for lower-is-better metrics, that it is lower).\n\
- **SRM (sample ratio mismatch)**: the arms must get the share of users the experiment was configured for. If not, something in assignment or logging is broken, and no result is trusted.\n\
- **Guardrails** are metrics a change must not harm; a variation that harms one is never recommended, however good its goal metric.",
        a.alpha
    );
    out
}

fn control_label(key: &str) -> String {
    if key == "control" {
        key.to_owned()
    } else {
        format!("{key} (control)")
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const PALETTE: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b",
];

/// A forest plot: per treatment the relative change and its interval, a
/// zero line, and significance marked.
fn forest(m: &MetricResult, alpha: f64) -> String {
    let (w, row, left, right) = (640.0, 34.0, 150.0, 30.0);
    let h = 40.0 + row * m.comparisons.len() as f64;
    let mut lo: f64 = 0.0;
    let mut hi: f64 = 0.0;
    for c in &m.comparisons {
        lo = lo.min(c.frequentist.relative.ci_low);
        hi = hi.max(c.frequentist.relative.ci_high);
    }
    let pad = ((hi - lo) * 0.1).max(0.01);
    let (lo, hi) = (lo - pad, hi + pad);
    let x = |v: f64| left + (v - lo) / (hi - lo) * (w - left - right);
    let mut s = format!(
        r#"<svg class="forest" data-metric="{}" xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="change in {} per variation with its interval">"#,
        esc(&m.name),
        esc(&m.name)
    );
    let _ = write!(
        s,
        r##"<line class="zero" x1="{0:.1}" x2="{0:.1}" y1="10" y2="{1:.1}" stroke="#555" stroke-dasharray="4 3"/><text x="{0:.1}" y="{2:.1}" font-size="11" text-anchor="middle">0 %</text>"##,
        x(0.0),
        h - 22.0,
        h - 8.0
    );
    for (i, c) in m.comparisons.iter().enumerate() {
        let f = &c.frequentist.relative;
        let y = 24.0 + row * i as f64;
        let significant = f.error.is_none() && c.adjusted_p_value.unwrap_or(f.p_value) < alpha;
        let better = match m.direction {
            Direction::Higher => f.estimate > 0.0,
            Direction::Lower => f.estimate < 0.0,
        };
        // Green for a significant improvement, red for significant harm.
        let (colour, verdict) = match (significant, better) {
            (false, _) => ("#999", ""),
            (true, true) => ("#2ca02c", " better"),
            (true, false) => ("#d62728", " worse"),
        };
        let _ = write!(
            s,
            r#"<g class="ci{}{verdict}" data-variation="{}" data-estimate="{}" data-ci-low="{}" data-ci-high="{}" data-p="{}"><text x="8" y="{:.1}" font-size="12">{}</text><line x1="{:.1}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}" stroke="{colour}" stroke-width="3"/><circle cx="{:.1}" cy="{y:.1}" r="5" fill="{}" stroke="{colour}" stroke-width="2"/><text x="{:.1}" y="{:.1}" font-size="11" text-anchor="middle">{} [{}, {}]{}</text></g>"#,
            if significant { " significant" } else { "" },
            c.variation_id,
            f.estimate,
            f.ci_low,
            f.ci_high,
            c.adjusted_p_value.unwrap_or(f.p_value),
            y + 4.0,
            esc(&c.key),
            x(f.ci_low),
            x(f.ci_high),
            x(f.estimate),
            if significant { colour } else { "white" },
            x(f.estimate),
            y - 8.0,
            pct(f.estimate),
            pct(f.ci_low),
            pct(f.ci_high),
            if significant { " *" } else { "" }
        );
    }
    s.push_str("</svg>");
    s
}

/// A line chart of series over time; `fmt` labels the y axis.
fn lines_chart(
    class: &str,
    title: &str,
    at: &[u64],
    series: &[(String, Vec<Option<f64>>)],
    fmt: impl Fn(f64) -> String,
    zero_line: bool,
) -> String {
    let (w, h, left, right, top, bottom) = (640.0, 240.0, 60.0, 110.0, 28.0, 28.0);
    let values = series.iter().flat_map(|(_, v)| v.iter().flatten().copied());
    let (mut lo, mut hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    if !lo.is_finite() {
        (lo, hi) = (0.0, 1.0);
    }
    if zero_line {
        lo = lo.min(0.0);
        hi = hi.max(0.0);
    }
    if hi - lo < 1e-12 {
        hi = lo + 1.0;
    }
    let (t0, t1) = (
        at.first().copied().unwrap_or(0) as f64,
        at.last().copied().unwrap_or(1) as f64,
    );
    let span = (t1 - t0).max(1.0);
    let x = |t: u64| left + (t as f64 - t0) / span * (w - left - right);
    let y = |v: f64| top + (hi - v) / (hi - lo) * (h - top - bottom);
    let mut s = format!(
        r#"<svg class="{class}" xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="{}"><text x="{left}" y="16" font-size="13">{}</text>"#,
        esc(title),
        esc(title)
    );
    for v in [lo, hi] {
        let _ = write!(
            s,
            r##"<text x="{:.1}" y="{:.1}" font-size="10" text-anchor="end">{}</text>"##,
            left - 4.0,
            y(v) + 3.0,
            esc(&fmt(v))
        );
    }
    if zero_line {
        let _ = write!(
            s,
            r##"<line class="zero" x1="{left}" x2="{:.1}" y1="{1:.1}" y2="{1:.1}" stroke="#555" stroke-dasharray="4 3"/>"##,
            w - right,
            y(0.0)
        );
    }
    for (i, (name, vals)) in series.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        let points: Vec<String> = at
            .iter()
            .zip(vals)
            .filter_map(|(t, v)| v.map(|v| format!("{:.1},{:.1}", x(*t), y(v))))
            .collect();
        let last = vals.iter().rev().flatten().next().copied();
        let _ = write!(
            s,
            r#"<g class="series" data-name="{}" data-points="{}" data-last="{}"><polyline points="{}" fill="none" stroke="{colour}" stroke-width="2"/><text x="{:.1}" y="{:.1}" font-size="11" fill="{colour}">{} {}</text></g>"#,
            esc(name),
            points.len(),
            last.map_or_else(String::new, |v| v.to_string()),
            points.join(" "),
            w - right + 6.0,
            last.map_or(top + 12.0 * i as f64, y) + 4.0,
            esc(name),
            last.map_or_else(String::new, |v| esc(&fmt(v)))
        );
    }
    s.push_str("</svg>");
    s
}

/// One self-contained HTML page: the Markdown's content plus the plots.
pub fn render_html(a: &ExperimentAnalysis) -> String {
    let mut body = String::new();
    let verdict_class = match a.recommendation.decision {
        Decision::Ship => "ship",
        Decision::KeepControl => "keep-control",
        Decision::KeepRunning => "keep-running",
        Decision::Invalid => "invalid",
    };
    let _ = write!(
        body,
        r#"<h1>Experiment <code>{}</code></h1><div class="decision {verdict_class}" data-decision="{verdict_class}"><strong>Decision: {}</strong><ul>"#,
        esc(&a.experiment),
        esc(&decision_title(a).replace('`', ""))
    );
    for r in &a.recommendation.reasons {
        let _ = write!(body, "<li>{}</li>", esc(r));
    }
    body.push_str("</ul></div>");
    let names: std::collections::BTreeMap<usize, String> = a
        .srm
        .variation_ids
        .iter()
        .map(|&i| {
            let key = a
                .metrics
                .first()
                .and_then(|m| m.variations.iter().find(|v| v.variation_id == i))
                .map_or_else(|| i.to_string(), |v| v.key.clone());
            (i, key)
        })
        .collect();
    let _ = write!(
        body,
        r#"<h2>Can the data be trusted?</h2><p class="srm" data-mismatch="{}">Traffic split: <strong>{}</strong>, users per arm {} against expected {} (p = {}).</p>"#,
        a.srm.mismatch,
        if a.srm.mismatch {
            "SAMPLE RATIO MISMATCH"
        } else {
            "ok"
        },
        esc(&format!("{:?}", a.srm.observed)),
        esc(&format!(
            "{:?}",
            a.srm
                .expected
                .iter()
                .map(|e| e.round() as u64)
                .collect::<Vec<_>>()
        )),
        p(a.srm.p_value)
    );
    html_timeline(&mut body, a, &names);
    html_results(&mut body, a);
    html_how_to_read(&mut body, a);
    format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Experiment {}</title><style>
body{{font-family:system-ui,sans-serif;max-width:780px;margin:2em auto;padding:0 1em;color:#222}}
.decision{{padding:.8em 1em;border-radius:6px;margin:1em 0}}.ship{{background:#e6f4ea}}.keep-control{{background:#fdecea}}
.keep-running{{background:#fff8e1}}.invalid{{background:#fdecea;border:2px solid #d62728}}
table{{border-collapse:collapse;margin:.5em 0 1.5em}}td,th{{border-bottom:1px solid #ddd;padding:.25em .6em;text-align:right}}
td:first-child,th:first-child{{text-align:left}}svg{{display:block;margin:.5em 0}}code{{background:#f3f3f3;padding:0 .2em}}
</style></head><body>{body}</body></html>
"#,
        esc(&a.experiment)
    )
}

/// The users-per-arm and lift charts over time.
fn html_timeline(
    body: &mut String,
    a: &ExperimentAnalysis,
    names: &std::collections::BTreeMap<usize, String>,
) {
    if a.timeline.at_ms.is_empty() {
        return;
    }
    let series: Vec<(String, Vec<Option<f64>>)> = a
        .timeline
        .users
        .iter()
        .map(|(arm, v)| {
            (
                names.get(arm).cloned().unwrap_or_else(|| arm.to_string()),
                v.iter().map(|n| Some(*n as f64)).collect(),
            )
        })
        .collect();
    body.push_str(&lines_chart(
        "exposures",
        &format!(
            "Users per arm over time — SRM {}",
            if a.srm.mismatch { "MISMATCH" } else { "ok" }
        ),
        &a.timeline.at_ms,
        &series,
        |v| format!("{v:.0}"),
        false,
    ));
    if let Some(metric) = &a.timeline.metric {
        let series: Vec<(String, Vec<Option<f64>>)> = a
            .timeline
            .lift
            .iter()
            .map(|(arm, v)| {
                (
                    names.get(arm).cloned().unwrap_or_else(|| arm.to_string()),
                    v.clone(),
                )
            })
            .collect();
        body.push_str(&lines_chart(
            "lift",
            &format!("Cumulative change in {metric} against the control"),
            &a.timeline.at_ms,
            &series,
            pct,
            true,
        ));
    }
}

/// Per metric: the forest plot and the table of arms.
fn html_results(body: &mut String, a: &ExperimentAnalysis) {
    body.push_str("<h2>Results</h2>");
    for m in &a.metrics {
        let _ = write!(
            body,
            "<h3><code>{}</code> ({})</h3>",
            esc(&m.name),
            esc(&describe(m))
        );
        body.push_str(&forest(m, a.alpha));
        body.push_str("<table><tr><th>variation</th><th>users</th><th>mean</th><th>change</th><th>interval</th><th>p</th><th>adjusted p</th><th>chance to win</th></tr>");
        for v in &m.variations {
            match m
                .comparisons
                .iter()
                .find(|c| c.variation_id == v.variation_id)
            {
                None => {
                    let _ = write!(
                        body,
                        "<tr><td>{}</td><td>{}</td><td>{:.4}</td><td colspan=5></td></tr>",
                        esc(&control_label(&v.key)),
                        v.n,
                        v.mean
                    );
                }
                Some(c) => {
                    let f = &c.frequentist.relative;
                    let _ = write!(
                        body,
                        "<tr><td>{}</td><td>{}</td><td>{:.4}</td><td>{}</td><td>{} to {}</td><td>{}</td><td>{}</td><td>{:.1} %</td></tr>",
                        esc(&v.key),
                        v.n,
                        v.mean,
                        pct(f.estimate),
                        pct(f.ci_low),
                        pct(f.ci_high),
                        p(f.p_value),
                        c.adjusted_p_value.map_or_else(|| "–".into(), p),
                        c.bayesian.relative.chance_to_win * 100.0
                    );
                }
            }
        }
        body.push_str("</table>");
    }
}

/// The Markdown's "How to read this" list, as HTML.
fn html_how_to_read(body: &mut String, a: &ExperimentAnalysis) {
    let md = render_markdown(a);
    let how = md.split("## How to read this").nth(1).unwrap_or("");
    body.push_str("<h2>How to read this</h2><ul>");
    for line in how.lines().filter(|l| l.starts_with("- ")) {
        let item = esc(&line[2..]);
        // **x** → <strong>x</strong>
        let mut html = String::new();
        for (i, part) in item.split("**").enumerate() {
            if i % 2 == 1 {
                let _ = write!(html, "<strong>{part}</strong>");
            } else {
                html.push_str(part);
            }
        }
        let _ = write!(body, "<li>{html}</li>");
    }
    body.push_str("</ul>");
}

//! The rollback rehearsal's timeline picture, drawn by a real browser.

use flightdeck::release::env::rehearsal::{Series, Timeline, timeline_svg};

fn series(role: &str, f: impl Fn(f64) -> f64) -> Series {
    Series {
        role: role.into(),
        points: (0..=40).map(|s| (f64::from(s), f(f64::from(s)))).collect(),
    }
}

#[test]
fn the_rehearsal_timeline_renders_in_a_real_browser() {
    // An incident: the canary takes 5 % at 10 s, fails, the rollback is
    // decided at 22 s and traffic is back on stable at 22.4 s.
    let start = 1_000_000;
    let canary_share = |s: f64| if (10.0..22.4).contains(&s) { 5.0 } else { 0.0 };
    let t = Timeline {
        start_ms: start,
        end_ms: start + 40_000,
        fault_ms: Some(start + 10_000),
        detect_ms: Some(start + 22_000),
        rolled_back_ms: Some(start + 22_400),
        promoted_ms: None,
        legend: None,
        traffic: vec![
            series("stable", |s| 100.0 - canary_share(s)),
            series("canary", canary_share),
        ],
        errors: vec![
            series("stable", |_| 0.0),
            series(
                "canary",
                |s| if (10.0..22.4).contains(&s) { 20.0 } else { 0.0 },
            ),
        ],
        latency: vec![series("stable", |_| 40.0), series("canary", |_| 45.0)],
    };
    let svg = timeline_svg("error_spike <rolled_back>", &t);
    assert!(
        svg.contains("error_spike &lt;rolled_back&gt;"),
        "the title is escaped"
    );
    let dir = tempfile::tempdir().unwrap();
    let page = format!(
        r#"<!doctype html><html><body>{svg}<script>
const problems = [];
const panels = [...document.querySelectorAll("g.panel")];
if (panels.length !== 3) problems.push("panels " + panels.length);
for (const p of panels) {{
  const lines = [...p.querySelectorAll("polyline.series")].filter(l => l.getBBox().width > 500);
  if (lines.length !== 2) problems.push(p.getAttribute("class") + " lines " + lines.length);
  const x = k => p.querySelector("line.mark." + k).getBBox().x;
  if (!(x("fault") < x("detect") && x("detect") <= x("rollback"))) problems.push("marks out of order");
}}
// In the traffic panel, stable's line is near the top, the canary's near the bottom.
const [stable, canary] = [...panels[0].querySelectorAll("polyline.series")].map(l => l.getBBox());
if (!(stable.y < canary.y)) problems.push("stable above canary");
document.body.setAttribute("data-check", problems.length ? "bad " + problems.join(";") : "ok");
</script></body></html>"#
    );
    let dom = crate::browser_dom(dir.path(), "timeline.html", &page);
    assert!(
        dom.contains(r#"data-check="ok""#),
        "the browser's measurements: {dom:.3000}"
    );
}

//! `flightdeck slo`: Prometheus rules from SLO specs.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use flightdeck::slo::{
    AlertWindows, GenerateOptions, PromDuration, SloSpec, generate, promtool_tests,
    unreachable_alerts, validate_openslo,
};

use crate::files::write_atomic;

/// The `slo` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum SloCommand {
    /// Generate recording and alerting rules (Sloth-compatible) from a spec.
    Rules(RulesArgs),
    /// Check a spec; prints nothing and exits 0 when it is valid.
    Validate(ValidateArgs),
    /// Each SLO's SLI, budget remaining and burn rates, from a live Prometheus
    /// running the generated rules.
    Status(StatusArgs),
}

#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// The spec the rules were generated from.
    #[arg(long, value_name = "FILE")]
    spec: PathBuf,
    /// Prometheus base URL, e.g. http://127.0.0.1:9090 (plain HTTP).
    #[arg(long, value_name = "URL")]
    prometheus: String,
    /// The period the rules were generated for (as for `rules`).
    #[arg(long, value_name = "DURATION")]
    period: Option<String>,
    /// The AlertWindows file the rules were generated with (as for `rules`).
    #[arg(long, value_name = "FILE")]
    windows: Option<PathBuf>,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
    /// Seconds to wait for Prometheus: to connect, and for each whole query.
    #[arg(long, value_name = "SECONDS", default_value_t = 5.0, value_parser = positive_seconds)]
    timeout: f64,
}

/// A timeout in seconds: positive, finite, at most a day.
fn positive_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 86_400.0 => Ok(v),
        _ => Err(format!(
            "{} is not a number of seconds in (0, 86400]",
            crate::shown(s)
        )),
    }
}

#[derive(Debug, serde::Serialize)]
struct SloLive {
    slo: String,
    objective: f64,
    sli: Option<f64>,
    error_budget_remaining: Option<f64>,
    current_burn_rate: Option<f64>,
    burn_rates: std::collections::BTreeMap<String, Option<f64>>,
}

/// The first sample's value of an instant query, or `None` when empty or NaN.
fn query(agent: &ureq::Agent, base: &str, promql: &str) -> anyhow::Result<Option<f64>> {
    let url = format!("{}/api/v1/query", base.trim_end_matches('/'));
    let body = agent
        .get(&url)
        .query("query", promql)
        .call()
        .map_err(|e| match e {
            ureq::Error::Timeout(which) => anyhow::anyhow!(
                "--prometheus {base}: query {promql:?}: timed out ({which}); raise --timeout if Prometheus is slow"
            ),
            other => anyhow::anyhow!("--prometheus {base}: query {promql:?} failed: {other}"),
        })?
        .body_mut()
        .read_to_string()
        .with_context(|| format!("--prometheus {base}: unreadable answer"))?;
    let v: serde_json::Value = serde_json::from_str(&body)
        .with_context(|| format!("--prometheus {base}: not a Prometheus API answer"))?;
    if v["status"] != "success" {
        anyhow::bail!("--prometheus {base}: query {promql:?}: {}", v["error"]);
    }
    Ok(v["data"]["result"]
        .get(0)
        .and_then(|s| s["value"][1].as_str())
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|x| x.is_finite()))
}

fn status(a: &StatusArgs) -> anyhow::Result<()> {
    if !a.prometheus.starts_with("http://") {
        crate::bad_input!(
            "--prometheus {}: only plain http:// URLs are supported",
            crate::shown(&a.prometheus)
        );
    }
    let spec = load_spec(&a.spec)?;
    let options = options(a.period.as_deref(), a.windows.as_ref())?;
    let timeout = std::time::Duration::from_secs_f64(a.timeout);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(timeout))
        .timeout_global(Some(timeout))
        .build()
        .into();
    let rules = generate(&spec, &options)?;
    let mut out = Vec::new();
    for slo in &spec.slos {
        let id = format!("{}-{}", spec.service, slo.name);
        let sel = format!("{{sloth_id=\"{id}\"}}");
        // The windows come from the generated SLI group, period last.
        let windows: Vec<String> = rules
            .groups
            .iter()
            .find(|g| g.name == format!("sloth-slo-sli-recordings-{id}"))
            .map(|g| {
                g.rules
                    .iter()
                    .filter_map(|r| r.labels.get("sloth_window").cloned())
                    .collect()
            })
            .unwrap_or_default();
        let period = windows.last().cloned().unwrap_or_else(|| "30d".into());
        let mut burn_rates = std::collections::BTreeMap::new();
        for w in &windows[..windows.len().saturating_sub(1)] {
            let q = format!(
                "slo:sli_error:ratio_rate{w}{sel} / on(sloth_id) group_left slo:error_budget:ratio{sel}"
            );
            burn_rates.insert(w.clone(), query(&agent, &a.prometheus, &q)?);
        }
        out.push(SloLive {
            slo: slo.name.clone(),
            objective: slo.objective / 100.0,
            sli: query(
                &agent,
                &a.prometheus,
                &format!("1 - slo:sli_error:ratio_rate{period}{sel}"),
            )?,
            error_budget_remaining: query(
                &agent,
                &a.prometheus,
                &format!("slo:period_error_budget_remaining:ratio{sel}"),
            )?,
            current_burn_rate: query(
                &agent,
                &a.prometheus,
                &format!("slo:current_burn_rate:ratio{sel}"),
            )?,
            burn_rates,
        });
    }
    let mut stdout = std::io::stdout().lock();
    if a.json {
        serde_json::to_writer(&mut stdout, &serde_json::json!({ "slos": out }))?;
        writeln!(stdout)?;
        return Ok(());
    }
    let f = |v: Option<f64>, pct: bool| match v {
        Some(x) if pct => format!("{:.4}%", x * 100.0),
        Some(x) => format!("{x:.3}"),
        None => "no data".into(),
    };
    for s in &out {
        writeln!(stdout, "{} (objective {}%)", s.slo, s.objective * 100.0)?;
        writeln!(
            stdout,
            "  SLI {}   budget remaining {}   burn now {}",
            f(s.sli, true),
            f(s.error_budget_remaining, true),
            f(s.current_burn_rate, false)
        )?;
        let burns: Vec<String> = s
            .burn_rates
            .iter()
            .map(|(w, b)| format!("{w}={}", f(*b, false)))
            .collect();
        writeln!(stdout, "  burn rates: {}", burns.join("  "))?;
    }
    Ok(())
}

fn options(period: Option<&str>, windows: Option<&PathBuf>) -> anyhow::Result<GenerateOptions> {
    let mut options = GenerateOptions::new();
    if let Some(p) = period {
        let period =
            PromDuration::parse(p).map_err(|m| crate::BadInput::new(format!("--period: {m}")))?;
        options = options.with_period(period);
    }
    if let Some(w) = windows {
        let text = crate::files::read_input(w)?;
        options = options.with_windows(AlertWindows::from_yaml(&text, &w.display().to_string())?);
    }
    Ok(options)
}

#[derive(Debug, Args)]
pub(crate) struct RulesArgs {
    /// A Sloth prometheus/v1 spec or an OpenSLO v1alpha SLO (YAML).
    #[arg(long, value_name = "FILE")]
    spec: PathBuf,
    /// Write the rules here (atomically) instead of standard output.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// The SLO period (30d and 28d have built-in windows; others need --windows).
    #[arg(long, value_name = "DURATION")]
    period: Option<String>,
    /// A Sloth AlertWindows file for custom periods or windows.
    #[arg(long, value_name = "FILE")]
    windows: Option<PathBuf>,
    /// Also write a `promtool test rules` file proving each SLO's alerts fire
    /// under a fast burn and stay quiet at 0.5x (needs --out).
    #[arg(long, value_name = "FILE", requires = "out")]
    tests: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct ValidateArgs {
    /// The spec to check.
    file: PathBuf,
}

/// Whether any document in `text` declares `apiVersion: openslo/v1`.
fn is_openslo_v1(text: &str) -> bool {
    text.lines().any(|l| {
        let l = l.trim_start_matches(['-', ' ']).trim();
        l.strip_prefix("apiVersion:")
            .is_some_and(|v| v.trim().trim_matches(['"', '\'']) == "openslo/v1")
    })
}

fn load_spec(path: &std::path::Path) -> anyhow::Result<SloSpec> {
    let text = crate::files::read_input(path)?;
    Ok(SloSpec::from_yaml(&text, &path.display().to_string())?)
}

pub(crate) fn run(cmd: SloCommand) -> anyhow::Result<()> {
    match cmd {
        SloCommand::Validate(a) => {
            let text = crate::files::read_input(&a.file)?;
            if is_openslo_v1(&text) {
                let file = a.file.display().to_string();
                let problems = validate_openslo(&text)
                    .map_err(|e| crate::BadInput::new(format!("{file}: {e}")))?;
                if problems.is_empty() {
                    return Ok(());
                }
                let mut err = std::io::stderr().lock();
                for p in &problems {
                    writeln!(err, "{}", p.line(&file))?;
                }
                crate::bad_input!("{file}: {} problem(s)", problems.len());
            }
            SloSpec::from_yaml(&text, &a.file.display().to_string())?;
            Ok(())
        }
        SloCommand::Status(a) => status(&a),
        SloCommand::Rules(a) => {
            let spec = load_spec(&a.spec)?;
            let mut options = GenerateOptions::new();
            if let Some(p) = &a.period {
                let period = PromDuration::parse(p)
                    .map_err(|m| crate::BadInput::new(format!("--period: {m}")))?;
                options = options.with_period(period);
            }
            if let Some(w) = &a.windows {
                let text = crate::files::read_input(w)?;
                options =
                    options.with_windows(AlertWindows::from_yaml(&text, &w.display().to_string())?);
            }
            let yaml = generate(&spec, &options)?.to_yaml();
            for (slo, tier, ratio) in unreachable_alerts(&spec, &options)? {
                let mut err = std::io::stderr().lock();
                writeln!(
                    err,
                    "warning: {}: SLO {slo}: the {tier} alert needs an error ratio of {:.0}% and can never fire",
                    a.spec.display(),
                    ratio * 100.0
                )?;
            }
            match &a.out {
                Some(path) => {
                    write_atomic(path, yaml.as_bytes())?;
                    if let Some(tests) = &a.tests {
                        // promtool resolves rule_files relative to the test file; an
                        // absolute path works wherever the two files live.
                        let rules = std::fs::canonicalize(path)
                            .with_context(|| format!("cannot resolve {}", path.display()))?;
                        let text = promtool_tests(&spec, &options, &rules.display().to_string())?;
                        write_atomic(tests, text.as_bytes())?;
                    }
                    Ok(())
                }
                None => {
                    std::io::stdout().lock().write_all(yaml.as_bytes())?;
                    Ok(())
                }
            }
        }
    }
}

//! `flightdeck stats`: statistical tests on files of numbers.
//!
//! Output contract (other tools call this): with `--json`, exactly one JSON
//! object on stdout; without it, a readable table. Exit code 0 on success;
//! on bad input, non-zero and one line on stderr naming the problem.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};
use flightdeck::stats::{
    self, DEFAULT_SRM_ALPHA, Proportion, TTestKind, chi_square_independence, cohens_h,
    mann_whitney, normal_sample_size, proportions_ztest, sample_ratio_mismatch, ttest_sample_size,
    ttest_slices,
};
use serde::Serialize;

/// The `stats` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum StatsCommand {
    /// Two-sample t-test of B (treatment) against A (control); Welch unless --equal-var.
    Ttest(TtestArgs),
    /// Mann-Whitney U test with the Hodges-Lehmann shift estimate and interval (as R).
    Mannwhitney(MannWhitneyArgs),
    /// Chi-square test of independence on a table like "10,20;30,40".
    Chisq(ChisqArgs),
    /// Sample-ratio-mismatch check of observed arm sizes against configured weights.
    Srm(SrmArgs),
    /// Per-group sample size (two-sided, equal groups): for means with
    /// --effect-size (Cohen's d, t-test), or for two proportions with --baseline/--treatment.
    Power(PowerArgs),
    /// Two-proportion z-test of B against A, with the interval of the difference.
    Proportions(ProportionsArgs),
}

#[derive(Debug, Args)]
pub(crate) struct TtestArgs {
    /// Control sample: one number per line (blank lines and # comments skipped).
    #[arg(long, value_name = "FILE")]
    a: PathBuf,
    /// Treatment sample, same format.
    #[arg(long, value_name = "FILE")]
    b: PathBuf,
    /// Student's t-test (pooled variance) instead of Welch's.
    #[arg(long)]
    equal_var: bool,
    /// Significance level; the interval is at 1 - alpha.
    #[arg(long, default_value_t = 0.05)]
    alpha: f64,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct MannWhitneyArgs {
    /// Control sample file.
    #[arg(long, value_name = "FILE")]
    a: PathBuf,
    /// Treatment sample file.
    #[arg(long, value_name = "FILE")]
    b: PathBuf,
    /// Confidence level of the interval.
    #[arg(long, default_value_t = 0.95)]
    confidence: f64,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ChisqArgs {
    /// Rows separated by `;`, cells by `,`, e.g. "10,20;30,40".
    #[arg(long)]
    table: String,
    /// Yates' continuity correction (applies to 2x2 tables).
    #[arg(long)]
    yates: bool,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct SrmArgs {
    /// Observed arm sizes, e.g. "50500,49500".
    #[arg(long)]
    observed: String,
    /// Configured weights, e.g. "0.9,0.1" (equal when omitted; need not sum to 1).
    #[arg(long)]
    weights: Option<String>,
    /// Mismatch threshold on the p-value.
    #[arg(long, default_value_t = DEFAULT_SRM_ALPHA)]
    alpha: f64,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("effect").required(true).args(["effect_size", "baseline"]))]
pub(crate) struct PowerArgs {
    /// Standardized effect (Cohen's d) for a two-sample t-test.
    #[arg(long, conflicts_with_all = ["baseline", "treatment"])]
    effect_size: Option<f64>,
    /// Baseline conversion rate, e.g. 0.10 (with --treatment).
    #[arg(long, requires = "treatment")]
    baseline: Option<f64>,
    /// Treatment conversion rate to detect, e.g. 0.12 (with --baseline).
    #[arg(long, requires = "baseline")]
    treatment: Option<f64>,
    /// Significance level.
    #[arg(long, default_value_t = 0.05)]
    alpha: f64,
    /// Desired power.
    #[arg(long, default_value_t = 0.8)]
    power: f64,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ProportionsArgs {
    /// Control as SUCCESSES/TOTAL, e.g. 1000/10000.
    #[arg(long)]
    a: String,
    /// Treatment as SUCCESSES/TOTAL.
    #[arg(long)]
    b: String,
    /// Significance level; the interval is at 1 - alpha.
    #[arg(long, default_value_t = 0.05)]
    alpha: f64,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// Reads one number per line; blank lines and `#` comments are skipped.
pub(crate) fn read_numbers(path: &Path) -> anyhow::Result<Vec<f64>> {
    let text = crate::files::read_input(path)?;
    let mut out = Vec::with_capacity(text.len() / 8);
    for (i, line) in text.lines().enumerate() {
        let s = line.split('#').next().unwrap_or("").trim();
        if s.is_empty() {
            continue;
        }
        match s.parse::<f64>() {
            Ok(v) if v.is_finite() => out.push(v),
            _ => crate::bad_input!(
                "{}:{}: {} is not a finite number",
                path.display(),
                i + 1,
                crate::shown(s)
            ),
        }
    }
    Ok(out)
}

fn parse_list<T: std::str::FromStr>(what: &str, s: &str) -> anyhow::Result<Vec<T>> {
    s.split(',')
        .map(|p| {
            let p = p.trim();
            p.parse::<T>().map_err(|_| {
                crate::BadInput::new(format!(
                    "{what}: {} is not a valid number in {}",
                    crate::shown(p),
                    crate::shown(s)
                ))
                .into()
            })
        })
        .collect()
}

fn parse_fraction(what: &str, s: &str) -> anyhow::Result<Proportion> {
    let (x, n) = s.split_once('/').ok_or_else(|| {
        crate::BadInput::new(format!(
            "{what}: {} is not SUCCESSES/TOTAL, e.g. 120/1000",
            crate::shown(s)
        ))
    })?;
    let parse = |v: &str| {
        v.trim().parse::<u64>().map_err(|_| {
            crate::BadInput::new(format!(
                "{what}: {} in {} is not a whole number below 2^64",
                crate::shown(v),
                crate::shown(s)
            ))
        })
    };
    Proportion::new(parse(x)?, parse(n)?).with_context(|| format!("{what}: {s}"))
}

/// Prints `value` as one JSON object, or `table` rows as `label  value`.
fn emit(json: bool, value: &impl Serialize, table: &[(&str, String)]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer(&mut out, value)?;
        writeln!(out)?;
    } else {
        let width = table.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        for (k, v) in table {
            writeln!(out, "{k:<width$}  {v}")?;
        }
    }
    Ok(())
}

/// Six significant digits, in plain notation unless tiny or huge.
fn g(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".to_owned()
    } else if (1e-4..1e6).contains(&a) {
        let decimals = (5 - a.log10().floor() as i32).clamp(0, 10) as usize;
        format!("{v:.decimals$}")
    } else {
        format!("{v:.5e}")
    }
}

#[derive(Serialize)]
struct TtestOut {
    test: &'static str,
    statistic: f64,
    df: f64,
    p_value: f64,
    mean_a: f64,
    mean_b: f64,
    diff: f64,
    ci_low: f64,
    ci_high: f64,
    alpha: f64,
}

#[derive(Serialize)]
struct MannWhitneyOut {
    statistic: f64,
    p_value: f64,
    estimate: f64,
    ci_low: f64,
    ci_high: f64,
}

#[derive(Serialize)]
struct PowerOut {
    n_per_group: u64,
    n_per_group_exact: f64,
}

pub(crate) fn run(cmd: StatsCommand) -> anyhow::Result<()> {
    match cmd {
        StatsCommand::Ttest(a) => ttest(a),
        StatsCommand::Mannwhitney(a) => mannwhitney(a),
        StatsCommand::Chisq(a) => chisq(a),
        StatsCommand::Srm(a) => srm(a),
        StatsCommand::Power(a) => power(a),
        StatsCommand::Proportions(a) => proportions(a),
    }
}

fn ttest(a: TtestArgs) -> anyhow::Result<()> {
    let (xa, xb) = (read_numbers(&a.a)?, read_numbers(&a.b)?);
    let kind = if a.equal_var {
        TTestKind::Student
    } else {
        TTestKind::Welch
    };
    let r = ttest_slices(&xa, &xb, kind, a.alpha).map_err(|e| named(e, &a.a, &a.b))?;
    let out = TtestOut {
        test: if a.equal_var { "student" } else { "welch" },
        statistic: r.statistic,
        df: r.df,
        p_value: r.p_value,
        mean_a: r.mean_a,
        mean_b: r.mean_b,
        diff: r.diff,
        ci_low: r.ci_low,
        ci_high: r.ci_high,
        alpha: r.alpha,
    };
    let level = format!("{}% interval", (1.0 - a.alpha) * 100.0);
    emit(
        a.json,
        &out,
        &[
            ("test", out.test.to_owned()),
            ("mean a (control)", g(out.mean_a)),
            ("mean b (treatment)", g(out.mean_b)),
            ("diff (b - a)", g(out.diff)),
            (&level, format!("[{}, {}]", g(out.ci_low), g(out.ci_high))),
            ("t statistic", g(out.statistic)),
            ("df", g(out.df)),
            ("p-value (two-sided)", g(out.p_value)),
        ],
    )
}

fn mannwhitney(a: MannWhitneyArgs) -> anyhow::Result<()> {
    let (xa, xb) = (read_numbers(&a.a)?, read_numbers(&a.b)?);
    let r = mann_whitney(&xa, &xb, a.confidence).map_err(|e| named(e, &a.a, &a.b))?;
    let out = MannWhitneyOut {
        statistic: r.statistic,
        p_value: r.p_value,
        estimate: r.estimate,
        ci_low: r.ci_low,
        ci_high: r.ci_high,
    };
    let level = format!("{}% interval", a.confidence * 100.0);
    emit(
        a.json,
        &out,
        &[
            ("U (of b)", g(out.statistic)),
            ("p-value (two-sided)", g(out.p_value)),
            ("shift estimate (b - a)", g(out.estimate)),
            (&level, format!("[{}, {}]", g(out.ci_low), g(out.ci_high))),
        ],
    )
}

fn chisq(a: ChisqArgs) -> anyhow::Result<()> {
    let table: Vec<Vec<f64>> = a
        .table
        .split(';')
        .map(|row| parse_list::<f64>("--table", row))
        .collect::<anyhow::Result<_>>()?;
    let r = chi_square_independence(&table, a.yates)
        .map_err(|e| crate::BadInput::new(format!("--table: {e}")))?;
    emit(
        a.json,
        &r,
        &[
            ("chi-square", g(r.statistic)),
            ("df", g(r.df)),
            ("p-value", g(r.p_value)),
        ],
    )
}

fn srm(a: SrmArgs) -> anyhow::Result<()> {
    let observed = parse_list::<u64>("--observed", &a.observed)?;
    let weights = match &a.weights {
        Some(w) => parse_list::<f64>("--weights", w)?,
        None => vec![1.0; observed.len()],
    };
    let r = sample_ratio_mismatch(&observed, &weights, a.alpha)
        .map_err(|e| crate::BadInput::new(format!("--observed/--weights: {e}")))?;
    #[derive(Serialize)]
    struct Out {
        statistic: f64,
        df: f64,
        p_value: f64,
        mismatch: bool,
    }
    let out = Out {
        statistic: r.statistic,
        df: r.df,
        p_value: r.p_value,
        mismatch: r.mismatch,
    };
    emit(
        a.json,
        &out,
        &[
            ("chi-square", g(r.statistic)),
            ("df", g(r.df)),
            ("p-value", g(r.p_value)),
            ("mismatch", format!("{} (p < {})", r.mismatch, a.alpha)),
        ],
    )?;
    // A mismatch is a finding (exit 3), as for `experiments srm`.
    if r.mismatch {
        return Err(crate::Finding.into());
    }
    Ok(())
}

fn power(a: PowerArgs) -> anyhow::Result<()> {
    let (label, effect, n) = match (a.effect_size, a.baseline, a.treatment) {
        (Some(d), _, _) => {
            let n = ttest_sample_size(d, a.alpha, a.power).map_err(power_arg)?;
            ("effect size (Cohen's d, t-test)", d, n)
        }
        (None, Some(p1), Some(p2)) => {
            let h = cohens_h(p2, p1).context("--baseline/--treatment")?;
            let n = normal_sample_size(h, a.alpha, a.power).map_err(power_arg)?;
            ("effect size (Cohen's h, proportions)", h, n)
        }
        _ => crate::bad_input!("give --effect-size, or --baseline and --treatment"),
    };
    let out = PowerOut {
        n_per_group: n.n_per_group,
        n_per_group_exact: n.n_per_group_exact,
    };
    emit(
        a.json,
        &out,
        &[
            (label, g(effect)),
            ("n per group", n.n_per_group.to_string()),
            ("n per group (exact)", g(n.n_per_group_exact)),
        ],
    )
}

fn proportions(a: ProportionsArgs) -> anyhow::Result<()> {
    let (pa, pb) = (parse_fraction("--a", &a.a)?, parse_fraction("--b", &a.b)?);
    let r = proportions_ztest(pa, pb, a.alpha)
        .map_err(|e| crate::BadInput::new(format!("--a/--b: {e}")))?;
    let level = format!("{}% interval", (1.0 - a.alpha) * 100.0);
    emit(
        a.json,
        &r,
        &[
            ("rate a (control)", g(r.rate_a)),
            ("rate b (treatment)", g(r.rate_b)),
            ("diff (b - a)", g(r.diff)),
            (&level, format!("[{}, {}]", g(r.ci_low), g(r.ci_high))),
            ("z statistic", g(r.statistic)),
            ("p-value (two-sided)", g(r.p_value)),
        ],
    )
}

/// Names the flag a power-analysis error is about (`--power`, `--alpha`
/// or `--effect-size`).
fn power_arg(e: stats::StatsError) -> anyhow::Error {
    let flag = match &e {
        stats::StatsError::OutOfUnitInterval { name, .. } => match *name {
            "power" => "--power",
            "alpha" => "--alpha",
            _ => "--effect-size",
        },
        _ => "--effect-size",
    };
    crate::BadInput::new(format!("{flag}: {e}")).into()
}

/// Says which file the error is about ("sample a" is --a, "sample b" is --b).
fn named(e: stats::StatsError, a: &Path, b: &Path) -> anyhow::Error {
    let msg = e
        .to_string()
        .replace("sample a", &format!("--a {}", a.display()))
        .replace("sample b", &format!("--b {}", b.display()));
    crate::BadInput::new(msg).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_files_skip_blanks_and_comments_and_name_bad_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.txt");
        std::fs::write(&p, "# header\n1.5\n\n  2 # inline\n-3e2\n").unwrap();
        assert_eq!(read_numbers(&p).unwrap(), [1.5, 2.0, -300.0]);
        std::fs::write(&p, "1\nabc\n").unwrap();
        let err = format!("{:#}", read_numbers(&p).unwrap_err());
        assert!(
            err.ends_with("x.txt:2: \"abc\" is not a finite number"),
            "{err}"
        );
        std::fs::write(&p, "1\nnan\n").unwrap();
        assert!(format!("{:#}", read_numbers(&p).unwrap_err()).contains(":2:"));
    }

    #[test]
    fn numbers_print_readably_including_zero_and_extremes() {
        assert_eq!(g(0.0), "0");
        assert_eq!(g(0.0391679), "0.0391679");
        assert_eq!(g(25.0), "25.0000");
        assert_eq!(g(1.5e-300), "1.50000e-300");
        assert_eq!(g(-2.5e7), "-2.50000e7");
    }

    #[test]
    fn lists_and_fractions_parse_or_name_the_bad_part() {
        assert_eq!(
            parse_list::<u64>("--observed", "1, 2,3").unwrap(),
            [1, 2, 3]
        );
        assert!(
            parse_list::<u64>("--observed", "1,x")
                .unwrap_err()
                .to_string()
                .contains("\"x\"")
        );
        assert_eq!(
            parse_fraction("--a", "3/10").unwrap(),
            Proportion::new(3, 10).unwrap()
        );
        assert!(
            format!("{:#}", parse_fraction("--a", "30").unwrap_err()).contains("SUCCESSES/TOTAL")
        );
        assert!(format!("{:#}", parse_fraction("--a", "11/10").unwrap_err()).contains("11/10"));
    }
}

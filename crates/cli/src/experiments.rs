//! `flightdeck experiments`: assign a user, check a traffic split.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use flightdeck::experiments::{
    Context, FeatureSet, load_experiment_file, read_exposures, srm_from_exposures,
};
use flightdeck::stats::DEFAULT_SRM_ALPHA;
use serde::Serialize;

/// The `experiments` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum ExperimentsCommand {
    /// Which variation a context gets (GrowthBook's `run`).
    Assign(AssignArgs),
    /// Check exposure counts against the experiment's weights (SRM).
    Srm(SrmArgs),
}

#[derive(Debug, Args)]
pub(crate) struct AssignArgs {
    /// The experiment, in GrowthBook's JSON shape (`key`, `variations`, `weights`, …).
    #[arg(long, value_name = "FILE")]
    experiment: PathBuf,
    /// The context: `{"attributes": {...}, "url": ..., "forcedVariations": ...,
    /// "savedGroups": ..., "features": ...}`, or just the attributes object.
    #[arg(long, value_name = "JSON")]
    context: String,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct SrmArgs {
    /// Exposures as JSON Lines (as `JsonLinesExposureSink` writes them).
    #[arg(long, value_name = "FILE")]
    exposures: PathBuf,
    /// The experiment whose weights are expected.
    #[arg(long, value_name = "FILE")]
    experiment: PathBuf,
    /// Significance level for a mismatch.
    #[arg(long, default_value_t = DEFAULT_SRM_ALPHA)]
    alpha: f64,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct AssignOut<'a> {
    in_experiment: bool,
    variation_id: usize,
    key: &'a str,
    value: &'a serde_json::Value,
    hash_used: bool,
    bucket: Option<f64>,
}

/// Parses `--context`: GrowthBook's context shape (with `attributes`), or
/// just the attributes object.
pub(crate) fn parse_context(text: &str) -> anyhow::Result<(serde_json::Value, Context)> {
    let v: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| crate::BadInput::new(format!("--context: not valid JSON: {e}")))?;
    if !v.is_object() {
        crate::bad_input!(
            "--context: expected a JSON object, found {}",
            crate::shown(&v.to_string())
        );
    }
    if let Some(attrs) = v.get("attributes").filter(|a| !a.is_object()) {
        crate::bad_input!(
            "--context: \"attributes\" must be an object, found {}",
            crate::shown(&attrs.to_string())
        );
    }
    let ctx = if v.get("attributes").is_some() {
        Context::from_json(&v)
    } else {
        Context::new(v.clone())
    };
    Ok((v, ctx))
}

fn assign(a: &AssignArgs) -> anyhow::Result<()> {
    let exp = load_experiment_file(&a.experiment)?;
    let (v, ctx) = parse_context(&a.context)?;
    // Prerequisites and saved groups come with the context, as in the suite.
    let features = FeatureSet::from_json(
        v.get("features").unwrap_or(&serde_json::Value::Null),
        v.get("savedGroups"),
    );
    let r = exp.run_with(&ctx, &features, None);
    let out = AssignOut {
        in_experiment: r.in_experiment,
        variation_id: r.variation_id,
        key: r.key,
        value: r.value,
        hash_used: r.hash_used,
        bucket: r.bucket,
    };
    let mut stdout = std::io::stdout().lock();
    if a.json {
        serde_json::to_writer(&mut stdout, &out)?;
        writeln!(stdout)?;
    } else if r.in_experiment {
        writeln!(
            stdout,
            "{}: variation {} ({}) = {} [bucket {}]",
            exp.key(),
            r.variation_id,
            r.key,
            r.value,
            r.bucket.map_or("-".to_owned(), |b| b.to_string())
        )?;
    } else {
        writeln!(
            stdout,
            "{}: not in the experiment; serve variation 0 = {}",
            exp.key(),
            r.value
        )?;
    }
    Ok(())
}

fn srm(a: &SrmArgs) -> anyhow::Result<()> {
    if !(a.alpha > 0.0 && a.alpha < 1.0) {
        crate::bad_input!("--alpha {}: must be between 0 and 1", a.alpha);
    }
    let exp = load_experiment_file(&a.experiment)?;
    let exposures = read_exposures(&a.exposures)?;
    let check = srm_from_exposures(&exposures, &exp, a.alpha);
    let total: u64 = check.observed.iter().sum();
    if total == 0 && check.unknown_exposures == 0 {
        crate::bad_input!(
            "{}: no exposures of experiment {:?}",
            a.exposures.display(),
            exp.key()
        );
    }
    let mut stdout = std::io::stdout().lock();
    if a.json {
        serde_json::to_writer(&mut stdout, &check)?;
        writeln!(stdout)?;
    } else {
        let wsum: f64 = check.weights.iter().sum();
        for (i, (o, w)) in check.observed.iter().zip(&check.weights).enumerate() {
            writeln!(
                stdout,
                "variation {i}: {o} exposures ({:.2}%), expected {:.2}%",
                100.0 * *o as f64 / total as f64,
                100.0 * w / wsum
            )?;
        }
        if let Some(t) = &check.test {
            writeln!(
                stdout,
                "chi-square {:.4}, df {}, p = {:.6}",
                t.statistic, t.df, t.p_value
            )?;
        }
        if check.unknown_exposures > 0 {
            let ids: Vec<String> = check
                .unknown_variation_ids
                .iter()
                .map(ToString::to_string)
                .collect();
            writeln!(
                stdout,
                "{} exposures name variations experiment {:?} does not have (ids {})",
                check.unknown_exposures,
                exp.key(),
                ids.join(", ")
            )?;
        }
        for arm in &check.leaked_arms {
            writeln!(stdout, "variation {arm} has weight 0 but received traffic")?;
        }
        writeln!(
            stdout,
            "{}",
            if check.mismatch {
                "SAMPLE RATIO MISMATCH: do not trust this experiment's results"
            } else {
                "no sample ratio mismatch"
            }
        )?;
    }
    if check.mismatch {
        return Err(crate::Finding.into());
    }
    Ok(())
}

pub(crate) fn run(cmd: ExperimentsCommand) -> anyhow::Result<()> {
    match cmd {
        ExperimentsCommand::Assign(a) => assign(&a),
        ExperimentsCommand::Srm(a) => srm(&a),
    }
}

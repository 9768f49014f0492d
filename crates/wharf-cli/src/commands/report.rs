//! `wharf report`: a registered version's model card, one self-contained HTML file.

use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::json;
use wharf::card::registered_card;
use wharf::report::ReportOptions;
use wharf::{read_csv, CsvOptions, Dataset, FeatureKind, ModelRef, RegistryPort, Selector, Wharf, WharfError};

use crate::output::{Output, Spinner};

/// `wharf report`
#[derive(Debug, Args)]
#[command(after_help = "The card holds the model's summary (version, aliases, checksum, training data \
    fingerprint, the run that made it, library versions), its signature, parameters and, with --holdout, \
    metrics and plots: ROC, precision-recall, reliability, confusion matrix and threshold sweep for \
    classifiers; predicted against actual and residuals for regressors; permutation importance for \
    both. Boosted trees add their gain importance, and the training run's metric history its \
    learning curve. What cannot be drawn is a message in the card, not an error.\n\n\
    Examples:\n  \
    wharf report lead@champion --holdout holdout.csv --output lead-card.html\n  \
    wharf report lead@3 --output card.html")]
pub struct ReportArgs {
    /// The model: NAME (latest version), NAME@VERSION or NAME@ALIAS.
    #[arg(value_name = "NAME[@VERSION|@ALIAS]")]
    pub model: ModelRef,

    /// Labelled rows to evaluate on: a CSV file with a header row, the model's features and
    /// its target column. Rows the model was not trained on.
    #[arg(long, value_name = "FILE")]
    pub holdout: Option<PathBuf>,

    /// The holdout's label column, when it is not named as the model's target.
    #[arg(long, short = 't', value_name = "COL", requires = "holdout")]
    pub target: Option<String>,

    /// Binary classifiers: call the positive class at this probability or above (for the
    /// confusion matrix and the threshold-dependent metrics).
    #[arg(long, value_name = "P", requires = "holdout")]
    pub threshold: Option<f64>,

    /// How often each feature is shuffled for permutation importance.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub repeats: usize,

    /// Seed of those shuffles.
    #[arg(long, value_name = "N", default_value_t = 42)]
    pub seed: u64,

    /// Where to write the card (replaced atomically).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: PathBuf,
}

/// Runs `wharf report`.
pub fn run(args: ReportArgs, out: &Output) -> anyhow::Result<()> {
    let ctx = Wharf::load()?;
    let spinner = Spinner::new(out.quiet);
    let ModelRef { name, selector } = &args.model;
    let holdout = match &args.holdout {
        Some(path) => {
            spinner.stage(format!("reading {}", path.display()));
            Some(read_holdout(ctx.registry().as_ref(), name, selector, path, args.target.as_deref())?)
        }
        None => None,
    };
    spinner.stage("drawing");
    let options =
        ReportOptions { threshold: args.threshold, repeats: args.repeats, seed: args.seed, ..ReportOptions::default() };
    let card = registered_card(&ctx, name, selector, holdout.as_ref(), options)?;
    card.write(&args.output)?;
    drop(spinner);
    let info = ctx.registry().version_info(name, selector)?;
    if out.json {
        let plots: Vec<&str> =
            card.sections().iter().filter(|s| matches!(s, wharf::report::Section::Plot(_))).map(|s| s.id()).collect();
        return out.json(&json!({
            "name": name,
            "version": info.version.0,
            "output": args.output.display().to_string(),
            "plots": plots,
            "holdout_metrics": card.holdout_metrics(),
        }));
    }
    if out.quiet {
        return out.line(args.output.display().to_string());
    }
    out.line(format!("Wrote the card of {name} version {} to {}", info.version, args.output.display()))
}

/// The holdout file as a dataset whose target is `target` (default: the model's) and whose
/// features are the model's features, categorical ones read as text.
fn read_holdout(
    registry: &dyn RegistryPort,
    name: &str,
    selector: &Selector,
    path: &Path,
    target: Option<&str>,
) -> anyhow::Result<Dataset> {
    let signature = registry.version_info(name, selector)?.signature;
    let target = match (target, &signature.target) {
        (Some(t), _) => t.to_string(),
        (None, Some(t)) => t.clone(),
        (None, None) => anyhow::bail!("{name} has no target column: only supervised models have holdout metrics"),
    };
    let source = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|e| WharfError::io(path, e))?;
    let frame = read_csv(file, &source, &[], &[])?;
    if frame.column(&target).is_none() {
        return Err(WharfError::invalid(target.as_str(), format!("{source} has no target column '{target}'")).into());
    }
    let categorical: Vec<String> = signature
        .features
        .iter()
        .filter(|f| matches!(f.kind, FeatureKind::Categorical { .. }) && frame.column(&f.name).is_some())
        .map(|f| f.name.clone())
        .collect();
    // Read again with the model's categorical columns as text ("1", "2" are levels, not numbers).
    let frame = if categorical.is_empty() {
        frame
    } else {
        let file = std::fs::File::open(path).map_err(|e| WharfError::io(path, e))?;
        read_csv(file, &source, &categorical, &[])?
    };
    let drop = frame
        .columns()
        .iter()
        .map(|(c, _)| c.clone())
        .filter(|c| *c != target && signature.position(c).is_none())
        .collect();
    let options = CsvOptions { target: Some(target), drop, ..CsvOptions::default() };
    Ok(Dataset::from_frame(&source, frame, &options)?)
}

//! `wharf promote`: move an alias to a challenger only when it beats the champion on a
//! holdout file, by more than noise.

use std::path::PathBuf;

use clap::Args;
use wharf::promote::{promote, promote_from_shadow, ShadowGate, ShadowLabels};
use wharf::{read_csv, CsvOptions, Dataset, RegistryPort, Selector, Wharf};

use super::gate::{self, parse_at_alias, GateArgs};
use crate::output::{Output, Spinner};

/// `wharf promote`
#[derive(Debug, Args)]
#[command(after_help = "Both models score the same holdout rows; a paired bootstrap gives an interval of the \
    challenger's improvement in the metric. The alias moves only when the interval's lower bound is above \
    --margin; otherwise the command prints the numbers and exits with status 1. Every decision is a \
    tracking run and a lineage event.\n\n\
    With --from-shadow, the evidence is the shadow log of `wharf serve --shadow` instead: the \
    challenger must have scored --min-rows rows without an error, agreed with the champion on at least \
    --min-agreement of them and, when --labels are given, be better on the labelled rows by the same \
    bootstrap.\n\n\
    Examples:\n  \
    wharf promote lead --candidate @challenger --over @champion --metric roc_auc --holdout holdout.csv\n  \
    wharf promote lead --candidate @challenger --from-shadow wharf-shadow --labels outcomes.csv")]
pub struct PromoteArgs {
    /// The registered model.
    #[arg(value_name = "NAME", value_parser = parse_name)]
    pub name: String,

    /// The challenger: @ALIAS or a version number.
    #[arg(long, value_name = "@ALIAS|VERSION", default_value = "@challenger")]
    pub candidate: String,

    /// The alias to beat, which moves to the challenger when it wins.
    #[arg(long, value_name = "@ALIAS", default_value = "@champion", value_parser = parse_at_alias)]
    pub over: String,

    /// The metric to compare by [default: roc_auc for two classes, accuracy for more, rmse for regression].
    #[arg(long, value_name = "METRIC")]
    pub metric: Option<String>,

    /// A CSV file with a header row, the model's features and its target column: rows
    /// neither model was trained on.
    #[arg(long, value_name = "FILE", required_unless_present = "from_shadow", conflicts_with = "from_shadow")]
    pub holdout: Option<PathBuf>,

    /// Gate on what the challenger did in shadow of the champion instead (`wharf serve
    /// --shadow`): the shadow log's directory or one of its files.
    #[arg(long, value_name = "LOG")]
    pub from_shadow: Option<PathBuf>,

    /// With --from-shadow: outcomes that arrived since, a CSV file with columns request_id,
    /// the model's target and optionally row (the row within a multi-row request).
    #[arg(long, value_name = "FILE", requires = "from_shadow")]
    pub labels: Option<PathBuf>,

    /// With --from-shadow: the least share of rows on which both models predict the same.
    #[arg(long, value_name = "P", default_value_t = 0.9, requires = "from_shadow")]
    pub min_agreement: f64,

    /// With --from-shadow: the fewest logged rows to decide on.
    #[arg(long, value_name = "N", default_value_t = 100, requires = "from_shadow")]
    pub min_rows: usize,

    /// With --from-shadow: the most the challenger's p99 scoring latency may be, as a
    /// multiple of the champion's [default: reported, not gated].
    #[arg(long, value_name = "X", requires = "from_shadow")]
    pub max_latency_ratio: Option<f64>,

    /// Seed of the bootstrap.
    #[arg(long, value_name = "N", default_value_t = 42)]
    pub seed: u64,

    /// Margin, resamples and confidence.
    #[command(flatten)]
    pub gate: GateArgs,
}

fn parse_name(s: &str) -> Result<String, String> {
    wharf::ports::registry::validate_name(s).map(|()| s.to_string()).map_err(|e| e.to_string())
}

/// Runs `wharf promote`.
pub fn run(args: PromoteArgs, out: &Output) -> anyhow::Result<()> {
    let ctx = Wharf::load()?;
    let candidate = Selector::parse(args.candidate.trim_start_matches('@'))?;
    let spinner = Spinner::new(out.quiet);
    let gate = args.gate.gate(&args.over, args.metric.clone(), args.seed);
    let decision = match (&args.from_shadow, &args.holdout) {
        (Some(log), _) => {
            let labels = match &args.labels {
                Some(path) => {
                    spinner.stage(format!("reading {}", path.display()));
                    let target =
                        ctx.registry().version_info(&args.name, &candidate)?.signature.target.ok_or_else(|| {
                            anyhow::anyhow!("{} has no target column: labels cannot be matched", args.name)
                        })?;
                    Some(ShadowLabels::read_csv(path, &target)?)
                }
                None => None,
            };
            spinner.stage(format!("reading the shadow log {}", log.display()));
            let shadow = ShadowGate {
                over: gate.over,
                metric: gate.metric,
                margin: gate.margin,
                bootstrap: gate.bootstrap,
                min_agreement: args.min_agreement,
                min_rows: args.min_rows,
                max_latency_ratio: args.max_latency_ratio,
                ..ShadowGate::default()
            };
            promote_from_shadow(&ctx, &args.name, &candidate, log, labels.as_ref(), &shadow)?
        }
        (None, Some(path)) => {
            spinner.stage(format!("reading {}", path.display()));
            let holdout = read_holdout(ctx.registry().as_ref(), &args.name, &candidate, path)?;
            spinner.stage("scoring both models");
            promote(&ctx, &args.name, &candidate, &holdout, &gate)?
        }
        (None, None) => anyhow::bail!("give --holdout FILE or --from-shadow LOG"),
    };
    drop(spinner);
    if out.json {
        out.json(&gate::decision_json(&decision))?;
    } else {
        gate::print(out, &decision)?;
    }
    gate::exit_status(&decision)
}

/// The holdout file as a dataset whose target is the candidate model's and whose features
/// are the model's features (other columns, ids say, are left out).
fn read_holdout(
    registry: &dyn RegistryPort,
    name: &str,
    candidate: &Selector,
    path: &PathBuf,
) -> anyhow::Result<Dataset> {
    let signature = registry.version_info(name, candidate)?.signature;
    let target = signature
        .target
        .clone()
        .ok_or_else(|| anyhow::anyhow!("{name} has no target column: only supervised models can be gated"))?;
    let file = std::fs::File::open(path).map_err(|e| wharf::WharfError::io(path, e))?;
    let frame = read_csv(file, &path.display().to_string(), &[], &[])?;
    let drop = frame
        .columns()
        .iter()
        .map(|(c, _)| c.clone())
        .filter(|c| *c != target && signature.position(c).is_none())
        .collect();
    let options = CsvOptions { target: Some(target), drop, ..CsvOptions::default() };
    Ok(Dataset::from_frame(&path.display().to_string(), frame, &options)?)
}

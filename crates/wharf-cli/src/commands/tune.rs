//! `wharf tune`: search an estimator's hyper-parameters by cross-validation, track every
//! trial, register the refit winner, and optionally gate its promotion.

use std::path::PathBuf;
use std::sync::Mutex;

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{json, Map, Value};
use wharf::select::{Folds, Metric, ParamSpace, Search, SearchOptions, Trial};
use wharf::tune::{leaderboard, TuneJob};
use wharf::{Algorithm, CsvOptions, Dataset, Task, Trainer, Wharf};

use super::gate::{self, parse_at_alias, GateArgs};
use crate::output::{self, Output};

/// `wharf tune`
#[derive(Debug, Args)]
#[command(after_help = "The space is the estimator's declared one (see the guide's Tuning page) unless --space \
    names a TOML file. Trials are cross-validated on the training part (stratified folds for classifiers, \
    group folds with --group) in parallel on every core; each is a child run of the tuning run, whose \
    leaderboard.json artifact ranks them. The winner is refit on the whole training part, measured with the \
    default settings on the held-out rows, and registered.\n\n\
    Examples:\n  \
    wharf tune --input leads.csv --target converted --id lead_id --algorithm logistic --search grid --cv 5 --metric roc_auc\n  \
    wharf tune -i leads.csv -t converted --id lead_id -a random-forest --search halving --trials 27 --promote-if-better")]
pub struct TuneArgs {
    /// CSV file with a header row.
    #[arg(long, short = 'i', value_name = "FILE")]
    pub input: PathBuf,

    /// Column to predict.
    #[arg(long, short = 't', value_name = "COL")]
    pub target: String,

    /// Id column, kept out of the features (repeatable).
    #[arg(long = "id", value_name = "COL")]
    pub ids: Vec<String>,

    /// Registered model name [default: the input file's stem].
    #[arg(long, short = 'n', value_name = "NAME")]
    pub name: Option<String>,

    /// Estimator to tune.
    #[arg(long, short = 'a', default_value = "logistic", value_parser = ["logistic", "tree", "random-forest", "gbdt", "gbdt-regressor"])]
    pub algorithm: String,

    /// How candidates are chosen: every combination (grid), --trials seeded draws (random), or
    /// --trials draws raced on growing subsets, keeping the best third each round (halving).
    #[arg(long, value_name = "STRATEGY", default_value = "random", value_parser = ["grid", "random", "halving"])]
    pub search: String,

    /// Candidates for random and halving.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub trials: usize,

    /// Cross-validation folds.
    #[arg(long, value_name = "K", default_value_t = 5)]
    pub cv: usize,

    /// Keep each value of this column in one fold (group k-fold): rows of one customer or
    /// patient are never both trained on and tested on. The column is not a feature.
    #[arg(long, value_name = "COL")]
    pub group: Option<String>,

    /// The metric trials are ranked by (its mean over the folds) [default: roc_auc for two
    /// classes, accuracy for more].
    #[arg(long, value_name = "METRIC")]
    pub metric: Option<String>,

    /// A TOML file of parameters and their candidates, instead of the declared space.
    #[arg(long, value_name = "FILE")]
    pub space: Option<PathBuf>,

    /// Treat a column as categorical even if its values look numeric (repeatable).
    #[arg(long = "categorical", value_name = "COL")]
    pub categorical: Vec<String>,

    /// Leave a column out entirely (repeatable).
    #[arg(long = "drop", value_name = "COL")]
    pub drop: Vec<String>,

    /// Fraction of rows held out from the whole search, to measure the winner on; 0 for none.
    #[arg(long, value_name = "FRACTION", default_value_t = 0.2)]
    pub holdout: f64,

    /// Seed of the holdout split, the folds, the draws and the estimator.
    #[arg(long, value_name = "N", default_value_t = 42)]
    pub seed: u64,

    /// Point this alias at the winner unconditionally (repeatable).
    #[arg(long = "alias", value_name = "ALIAS")]
    pub aliases: Vec<String>,

    /// Move the --over alias to the winner only if it beats that alias's version on the
    /// held-out rows (exit status 1 when it does not).
    #[arg(long)]
    pub promote_if_better: bool,

    /// The alias --promote-if-better compares with and moves.
    #[arg(long, value_name = "@ALIAS", default_value = "@champion", value_parser = parse_at_alias)]
    pub over: String,

    /// Margin, resamples and confidence of --promote-if-better.
    #[command(flatten)]
    pub gate: GateArgs,
}

/// Runs `wharf tune`.
pub fn run(args: TuneArgs, out: &Output) -> anyhow::Result<()> {
    let algorithm: Algorithm = args.algorithm.parse()?;
    let ctx = Wharf::load()?;
    let name = match &args.name {
        Some(n) => n.clone(),
        None => super::train::default_name(&args.input)?,
    };
    if !(0.0..1.0).contains(&args.holdout) {
        anyhow::bail!("--holdout must be a fraction in [0, 1), got {}", args.holdout);
    }
    let mut ids = args.ids.clone();
    if let Some(g) = &args.group {
        if !ids.contains(g) {
            ids.push(g.clone());
        }
    }
    let options = CsvOptions {
        target: Some(args.target.clone()),
        ids,
        categorical: args.categorical.clone(),
        drop: args.drop.clone(),
        ..CsvOptions::default()
    };
    let data = Dataset::from_csv_path(&args.input, &options)?;
    let trainer = Trainer::new(algorithm).seed(args.seed);
    let space = match &args.space {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            ParamSpace::from_toml(&text).with_context(|| format!("in {}", path.display()))?
        }
        None => trainer.param_space(),
    };
    let n_classes = match &data.target {
        Some((_, c)) => (0..c.len()).map(|i| c.text_at(i)).collect::<std::collections::BTreeSet<_>>().len(),
        None => 0,
    };
    let metric = match &args.metric {
        Some(m) => m.clone(),
        None => Metric::default_for(Task::Classification, n_classes)?.name().to_string(),
    };
    let strategy = match args.search.as_str() {
        "grid" => Search::Grid,
        "halving" => Search::Halving { trials: args.trials, factor: 3 },
        _ => Search::Random { trials: args.trials },
    };
    let folds = match &args.group {
        Some(g) => Folds::group(args.cv, g.as_str()),
        None => Folds::stratified(args.cv),
    }
    .seed(args.seed);
    let promote = args.promote_if_better.then(|| args.gate.gate(&args.over, Some(metric.clone()), args.seed));
    let job = TuneJob {
        data,
        trainer,
        space: space.clone(),
        options: SearchOptions { strategy, folds, metric: metric.clone(), seed: args.seed },
        name: name.clone(),
        holdout: args.holdout,
        seed: args.seed,
        aliases: args.aliases.clone(),
        promote,
    };

    // Trials done, and the best mean so far; halving's total is not known in advance.
    let planned = match strategy {
        Search::Grid => space.grid().map(|g| g.len() as u64).ok(),
        Search::Random { trials } => space.sample(trials, args.seed).map(|s| s.len() as u64).ok(),
        _ => None,
    };
    let bar = progress_bar(out, planned);
    let greater =
        Metric::parse(&metric, Task::Classification, n_classes).map(|m| m.greater_is_better()).unwrap_or(true);
    let best: Mutex<Option<f64>> = Mutex::new(None);
    let on_trial = |trial: &Trial| {
        let mut best = best.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = trial.score().filter(|s| !s.is_nan()) {
            if best.is_none_or(|b| if greater { s > b } else { s < b }) {
                *best = Some(s);
            }
        }
        bar.inc(1);
        bar.set_message(match *best {
            Some(b) => format!("best {metric} {}", output::metric(b)),
            None => "no score yet".into(),
        });
    };
    let outcome = job.run(&ctx, &on_trial);
    bar.finish_and_clear();
    let outcome = outcome?;

    let board = leaderboard(&outcome.report);
    let best = outcome.report.best();
    if out.json {
        let metrics =
            |m: &wharf::Metrics| -> Map<String, Value> { m.iter().map(|(k, v)| (k.clone(), json!(v))).collect() };
        out.json(&json!({
            "name": name,
            "version": outcome.version.0,
            "algorithm": algorithm.as_str(),
            "metric": outcome.report.metric,
            "best": { "trial": best.number, "params": best.params, "cv_mean": best.score() },
            "trials": outcome.report.trials.len(),
            "leaderboard": board,
            "holdout": metrics(&outcome.holdout),
            "default_holdout": metrics(&outcome.default_holdout),
            "run_id": outcome.run_id,
            "rows_train": outcome.rows.0,
            "rows_test": outcome.rows.1,
            "decision": outcome.decision.as_ref().map(gate::decision_json),
        }))?;
    } else if out.quiet {
        out.line(format!("{name}@{}", outcome.version))?;
    } else {
        let mut table = output::table(["rank", "trial", "params", &format!("cv {metric}"), "± std", "rows"]);
        for e in board.iter().take(10) {
            let params: Vec<String> = e.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
            table.add_row(vec![
                e.rank.to_string(),
                e.trial.to_string(),
                params.join(" "),
                e.mean.map(output::metric).unwrap_or_else(|| "failed".into()),
                e.std.map(output::metric).unwrap_or_default(),
                e.rows.to_string(),
            ]);
        }
        out.table(&table)?;
        if board.len() > 10 {
            out.line(format!("({} more in the leaderboard.json artifact)", board.len() - 10))?;
        }
        let failed = outcome.report.trials.iter().filter(|t| t.score().is_none()).count();
        out.line(format!(
            "{} trials ({failed} failed); winner refit on {} rows and registered as {name} version {}",
            outcome.report.trials.len(),
            outcome.rows.0,
            outcome.version
        ))?;
        for alias in &args.aliases {
            out.line(format!("Alias {alias} -> version {}", outcome.version))?;
        }
        if outcome.rows.1 > 0 {
            let mut table = output::table(["holdout metric", "tuned", "defaults"]);
            for (k, v) in &outcome.holdout {
                let d = outcome.default_holdout.get(k).copied().unwrap_or(f64::NAN);
                table.add_row(vec![k.clone(), output::metric(*v), output::metric(d)]);
            }
            out.line(format!("On {} held-out rows no trial saw:", outcome.rows.1))?;
            out.table(&table)?;
        }
        out.line(format!("Tracking run {}", outcome.run_id))?;
    }
    match &outcome.decision {
        Some(d) => {
            gate::print(out, d)?;
            gate::exit_status(d)
        }
        None => Ok(()),
    }
}

/// A bar of trials done (a counter when the total is unknown), on stderr, hidden when quiet.
fn progress_bar(out: &Output, total: Option<u64>) -> ProgressBar {
    let target = if out.quiet || out.json { ProgressDrawTarget::hidden() } else { ProgressDrawTarget::stderr() };
    let bar = ProgressBar::with_draw_target(total, target);
    let template = match total {
        Some(_) => "{bar:30} {pos}/{len} trials, {msg} ({elapsed})",
        None => "{spinner} {pos} trials, {msg} ({elapsed})",
    };
    if let Ok(style) = ProgressStyle::default_bar().template(template) {
        bar.set_style(style);
    }
    bar.set_message("no score yet");
    bar
}

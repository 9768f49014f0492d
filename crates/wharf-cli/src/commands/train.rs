//! `wharf train`: CSV → dataset → trainer → the main job (evaluate, track, register, alias).

use std::path::Path;

use anyhow::{bail, Context};
use serde_json::{json, Map, Value};
use wharf::jobs::TrainJob;
use wharf::{Column, CsvOptions, Dataset, Trainer, Wharf, WharfError};

use crate::args::TrainArgs;
use crate::output::{self, Output, Spinner};

/// Runs `wharf train`.
pub fn run(args: TrainArgs, out: &Output) -> anyhow::Result<()> {
    let name = match &args.name {
        Some(name) => name.clone(),
        None => default_name(&args.input)?,
    };
    let ctx = Wharf::load()?;

    let spinner = Spinner::new(out.quiet);
    spinner.stage(format!("reading {}", args.input.display()));
    let options = CsvOptions {
        target: args.target.clone(),
        ids: args.ids.clone(),
        categorical: args.categorical.clone(),
        numeric: args.numeric.clone(),
        drop: args.drop.clone(),
    };
    let data = Dataset::from_csv_path(&args.input, &options)?;
    let id_like = id_like_columns(&data);
    if !out.quiet {
        for column in &id_like {
            spinner.suspend(|| {
                output::warning(&format!(
                    "column '{column}' has a different value in every row; if it identifies rows, pass --id {column}"
                ))
            });
        }
    }

    let mut trainer = Trainer::new(args.algorithm).seed(args.seed);
    if let Some(n) = args.trees {
        trainer = trainer.trees(n);
    }
    if let Some(depth) = args.max_depth {
        trainer = trainer.max_depth(Some(depth));
    }
    if let Some(max_features) = args.max_features {
        trainer = trainer.max_features(max_features);
    }
    if let Some(k) = args.k {
        trainer = trainer.clusters(k);
    }
    if args.algorithm.is_boosting() {
        trainer = args.boost.apply(trainer);
        let (bar, total) = (spinner.rounds_bar(), args.trees.unwrap_or(100));
        trainer = trainer.on_iteration(move |it| {
            let loss = match it.valid_loss {
                Some(v) => format!("validation loss {v:.4}"),
                None => format!("training loss {:.4}", it.train_loss),
            };
            output::Spinner::round(&bar, it.iteration, total, &loss);
        });
    }
    let promote = args.promote_if_better.then(|| args.gate.gate(&args.over, args.metric.clone(), args.seed));
    let job = TrainJob {
        data,
        trainer,
        name,
        holdout: args.holdout,
        seed: args.seed,
        aliases: args.aliases,
        promote,
        report: !args.no_report,
    };
    let mut stage = String::new();
    let outcome = job
        .run(&ctx, |s| {
            stage = s.to_string();
            spinner.stage(s);
        })
        .map_err(|e| explain(e, &stage))?;
    drop(spinner);

    let meta = outcome.model.metadata();
    let (rows_train, rows_test) = outcome.rows;
    if out.json {
        let metrics: Map<String, Value> = outcome.metrics.iter().map(|(k, v)| (k.clone(), Value::from(*v))).collect();
        return out
            .json(&json!({
                "name": job.name,
                "version": outcome.version.0,
                "algorithm": meta.algorithm,
                "task": outcome.model.task().to_string(),
                "aliases": job.aliases,
                "metrics": metrics,
                "run_id": outcome.run_id,
                "rows_train": rows_train,
                "rows_test": rows_test,
                "decision": outcome.decision.as_ref().map(super::gate::decision_json),
            }))
            .and_then(|()| gate_status(&outcome));
    }
    if out.quiet {
        out.line(format!("{}@{}", job.name, outcome.version))?;
        return gate_status(&outcome);
    }
    out.line(format!(
        "Registered {} version {} ({}, {})",
        job.name,
        outcome.version,
        meta.algorithm,
        outcome.model.task()
    ))?;
    for alias in &job.aliases {
        out.line(format!("Alias {alias} -> version {}", outcome.version))?;
    }
    if rows_test > 0 {
        out.line(format!("Trained on {rows_train} rows, evaluated on {rows_test} held-out rows"))?;
    } else {
        out.line(format!("Trained on {rows_train} rows (no holdout)"))?;
    }
    if !outcome.metrics.is_empty() {
        let mut table = output::table(["holdout metric", "value"]);
        for (k, v) in &outcome.metrics {
            table.add_row(vec![k.clone(), output::metric(*v)]);
        }
        out.table(&table)?;
    }
    out.line(format!("Tracking run {}", outcome.run_id))?;
    if let Some(d) = &outcome.decision {
        super::gate::print(out, d)?;
    }
    gate_status(&outcome)
}

/// Exit status 1 when --promote-if-better refused the new version.
fn gate_status(outcome: &wharf::jobs::TrainOutcome) -> anyhow::Result<()> {
    match &outcome.decision {
        Some(d) => super::gate::exit_status(d),
        None => Ok(()),
    }
}

/// Text feature columns holding a different value in every row (of at least 20): almost
/// certainly identifiers, which as features only fail on unseen values.
fn id_like_columns(data: &Dataset) -> Vec<String> {
    if data.n_rows() < 20 {
        return Vec::new();
    }
    data.features
        .columns()
        .iter()
        .filter(|(_, column)| match column {
            Column::Text(values) => {
                let distinct: std::collections::HashSet<_> = values.iter().collect();
                distinct.len() == values.len()
            }
            Column::Numeric(_) => false,
        })
        .map(|(name, _)| name.clone())
        .collect()
}

/// Says which stage of the job failed.
fn explain(err: WharfError, stage: &str) -> anyhow::Error {
    let stage = if stage.is_empty() { "starting" } else { stage };
    anyhow::Error::new(err).context(stage.to_string())
}

/// The input file's stem made into a valid model name: characters outside `A-Z a-z 0-9 . _ -`
/// become `_`, and the name starts at the first letter or digit.
pub(crate) fn default_name(input: &Path) -> anyhow::Result<String> {
    let stem = input.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let cleaned: String =
        stem.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect();
    let name: String = cleaned.trim_start_matches(|c: char| !c.is_ascii_alphanumeric()).chars().take(128).collect();
    if name.is_empty() {
        bail!("cannot make a model name from '{}': pass --name", input.display());
    }
    wharf::ports::registry::validate_name(&name).context("pass --name")?;
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::default_name;
    use std::path::Path;

    #[test]
    fn default_names_follow_the_model_name_rule() {
        assert_eq!(default_name(Path::new("data/leads.csv")).unwrap(), "leads");
        assert_eq!(default_name(Path::new("new leads (2).csv")).unwrap(), "new_leads__2_");
        assert_eq!(default_name(Path::new("_x.csv")).unwrap(), "x");
        assert_eq!(default_name(Path::new("données.v2.csv")).unwrap(), "donn_es.v2");
        assert!(default_name(Path::new("___.csv")).is_err());
    }
}

//! The tuning job: search a trainer's space by cross-validation on the training part, track
//! every trial as a child run of one parent run, refit the winner on the whole training
//! part, measure it (and the default settings) on rows no trial saw, register it, and
//! optionally gate its promotion.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::Serialize;
use serde_json::{json, Value};
use wharf_core::{LineageEvent, LineageEventType, Model, Result, RunHandle, RunStatus, Selector, Version, WharfError};
use wharf_ml::select::{search, Outcome, ParamSpace, SearchOptions, SearchReport, Trial};
use wharf_ml::{evaluate, Dataset, Metrics, Trainer};

use crate::jobs::{register, split_holdout};
use crate::promote::{log_json, promote, Decision, Gate};
use crate::Wharf;

/// What to tune and where to put the winner.
#[derive(Debug, Clone)]
pub struct TuneJob {
    /// The data (features, target, ids).
    pub data: Dataset,
    /// The trainer whose settings are searched; its own settings are the defaults the
    /// winner is measured against.
    pub trainer: Trainer,
    /// The space searched.
    pub space: ParamSpace,
    /// Strategy, folds, metric and seed.
    pub options: SearchOptions,
    /// The registered model name.
    pub name: String,
    /// Fraction of rows held out from the whole search (0 for none).
    pub holdout: f64,
    /// Seed of the holdout split.
    pub seed: u64,
    /// Aliases to point at the winner unconditionally.
    pub aliases: Vec<String>,
    /// Gate the winner's promotion over an alias, on the held-out rows.
    pub promote: Option<Gate>,
}

/// What a [`TuneJob`] produced.
#[derive(Debug, Clone)]
pub struct TuneOutcome {
    /// Every trial and the winner.
    pub report: SearchReport,
    /// The winner, refit on the whole training part.
    pub model: Model,
    /// Its registered version.
    pub version: Version,
    /// The winner's metrics on the held-out rows (empty without a holdout).
    pub holdout: Metrics,
    /// The default settings' metrics on the same rows, fitted on the same training part.
    pub default_holdout: Metrics,
    /// The parent tracking run.
    pub run_id: String,
    /// Rows searched on and held out.
    pub rows: (usize, usize),
    /// The gate's decision, when asked for.
    pub decision: Option<Decision>,
}

/// One leaderboard row, as printed with `--json` and stored as `leaderboard.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// 1 for the best.
    pub rank: usize,
    /// The trial's number.
    pub trial: usize,
    /// Its settings.
    pub params: BTreeMap<String, String>,
    /// Mean of the ranking metric over the folds (null when the trial failed).
    pub mean: Option<f64>,
    /// Its standard deviation.
    pub std: Option<f64>,
    /// Rows cross-validated on.
    pub rows: usize,
    /// Why the trial failed, if it did.
    pub error: Option<String>,
}

/// The last round's trials, best first.
pub fn leaderboard(report: &SearchReport) -> Vec<Entry> {
    report
        .leaderboard()
        .into_iter()
        .enumerate()
        .map(|(i, t)| {
            let (mean, std, error) = match &t.outcome {
                Outcome::Scored { cv, score } => (Some(*score), cv.std.get(&report.metric).copied(), None),
                Outcome::Failed { error } => (None, None, Some(error.clone())),
                _ => (None, None, None),
            };
            Entry { rank: i + 1, trial: t.number, params: t.params.clone(), mean, std, rows: t.rows, error }
        })
        .collect()
}

impl TuneJob {
    /// Runs the job. `on_trial` hears every trial as it ends (for a progress bar). Lineage
    /// gets a START event first and a COMPLETE or FAIL event at the end, tied by one run id;
    /// the tracked parent run is FAILED if anything goes wrong.
    pub fn run(&self, ctx: &Wharf, on_trial: &(dyn Fn(&Trial) + Sync)) -> Result<TuneOutcome> {
        wharf_core::ports::registry::validate_name(&self.name)?;
        let job = format!("tune-{}", self.name);
        let start = LineageEvent::new(job.clone()).event_type(LineageEventType::Start).input(self.data.name.clone());
        let lineage_run = start.run_id.clone();
        ctx.lineage().emit(&start)?;
        let result = self.run_inner(ctx, on_trial);
        let end = LineageEvent::new(job).run_id(lineage_run).input(self.data.name.clone());
        let end = match &result {
            Ok(outcome) => {
                let best = outcome.report.best();
                let mut e = end
                    .output(format!("registry:{}/{}", self.name, outcome.version))
                    .meta("tracking_run", outcome.run_id.clone())
                    .meta("metric", outcome.report.metric.clone())
                    .meta("trials", outcome.report.trials.len())
                    .meta("best_params", json!(best.params));
                if let Some(score) = best.score() {
                    e = e.meta("best_cv_score", score);
                }
                e
            }
            Err(err) => end.event_type(LineageEventType::Fail).meta("error", err.to_string()),
        };
        ctx.lineage().emit(&end)?;
        result
    }

    fn run_inner(&self, ctx: &Wharf, on_trial: &(dyn Fn(&Trial) + Sync)) -> Result<TuneOutcome> {
        if self.promote.is_some() && self.holdout <= 0.0 {
            return Err(WharfError::invalid("holdout", "gating a promotion needs held-out rows (a holdout above 0)"));
        }
        let (train, test) = split_holdout(&self.data, self.holdout, self.seed)?;
        let tracker = ctx.tracker().as_ref();
        let parent = RunHandle::start(tracker, Some(&format!("tune-{}", self.name)))?;
        let parent_id = parent.id().to_string();
        let mut params: BTreeMap<String, String> = BTreeMap::new();
        params.insert("algorithm".into(), self.trainer.algorithm().as_str().into());
        params.insert("search".into(), serde_json::to_string(&self.options.strategy).unwrap_or_default());
        params.insert("folds".into(), self.options.folds.k.to_string());
        params.insert("fold_strategy".into(), format!("{:?}", self.options.folds.strategy));
        params.insert("metric".into(), self.options.metric.clone());
        params.insert("search_seed".into(), self.options.seed.to_string());
        params.insert("holdout".into(), self.holdout.to_string());
        params.insert("split_seed".into(), self.seed.to_string());
        params.insert("data".into(), self.data.name.clone());
        params.insert("space".into(), serde_json::to_string(&self.space).unwrap_or_default());
        parent.log_params(params)?;
        parent.set_tag("wharf.model_name", &self.name)?;
        crate::jobs::log_inputs(&parent, &self.data.name, &train, test.as_ref())?;

        // Child runs are logged from the search's worker threads; the first tracking error
        // fails the job once the search is over.
        let tracking_error: Mutex<Option<WharfError>> = Mutex::new(None);
        let hear = |trial: &Trial| {
            if let Err(e) = track_trial(tracker, &parent_id, trial) {
                tracking_error.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(e);
            }
            on_trial(trial);
        };
        let report = search(&self.trainer, &train, &self.space, &self.options, &hear)?;
        if let Some(e) = tracking_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
            return Err(e);
        }

        let best = report.best();
        let winner = self.trainer.clone().with_params(&best.params)?;
        let model = winner.fit(&train)?;
        let (holdout, default_holdout) = match &test {
            Some(test) => (evaluate(&model, test)?, evaluate(&self.trainer.fit(&train)?, test)?),
            None => (Metrics::new(), Metrics::new()),
        };
        let board = leaderboard(&report);
        log_json(&parent, "leaderboard.json", &board)?;
        parent.log_params(best.params.iter().map(|(k, v)| (format!("best.{k}"), v.clone())))?;
        let mut metrics: Vec<(String, f64)> =
            vec![(format!("best_cv_{}", report.metric), best.score().unwrap_or(f64::NAN))];
        metrics.extend(holdout.iter().map(|(k, v)| (format!("holdout_{k}"), *v)));
        metrics.extend(default_holdout.iter().map(|(k, v)| (format!("default_holdout_{k}"), *v)));
        parent.log_metrics(metrics)?;
        let (model, version) = register(
            ctx,
            parent,
            model.with_metrics(holdout.clone()),
            (&self.data, &self.name, &self.aliases),
            &mut |_| {},
        )?;

        let decision = match (&self.promote, &test) {
            (Some(gate), Some(test)) => Some(promote(ctx, &self.name, &Selector::Version(version), test, gate)?),
            _ => None,
        };
        Ok(TuneOutcome {
            rows: (train.n_rows(), test.as_ref().map(Dataset::n_rows).unwrap_or(0)),
            report,
            model,
            version,
            holdout,
            default_holdout,
            run_id: parent_id,
            decision,
        })
    }
}

/// One trial as a child run: its params, the round and rows, each fold's metrics (step =
/// fold) and their mean and standard deviation; FAILED with the error when it failed.
fn track_trial(tracker: &dyn wharf_core::TrackerPort, parent: &str, trial: &Trial) -> Result<()> {
    let info = tracker.begin_child_run(parent, Some(&format!("trial-{}", trial.number)))?;
    let mut params = trial.params.clone();
    params.insert("trial".into(), trial.number.to_string());
    params.insert("round".into(), trial.round.to_string());
    params.insert("rows".into(), trial.rows.to_string());
    tracker.log_params(&info.id, &params)?;
    match &trial.outcome {
        Outcome::Scored { cv, .. } => {
            for (fold, metrics) in cv.folds.iter().enumerate() {
                let m: BTreeMap<String, f64> = metrics.iter().map(|(k, v)| (format!("cv_{k}"), *v)).collect();
                tracker.log_metrics(&info.id, &m, Some(fold as u64))?;
            }
            let mut summary: BTreeMap<String, f64> =
                cv.mean.iter().map(|(k, v)| (format!("cv_mean_{k}"), *v)).collect();
            summary.extend(cv.std.iter().map(|(k, v)| (format!("cv_std_{k}"), *v)));
            tracker.log_metrics(&info.id, &summary, None)?;
            tracker.end_run(&info.id, RunStatus::Finished)
        }
        Outcome::Failed { error } => {
            tracker.set_tags(&info.id, &BTreeMap::from([("error".to_string(), error.clone())]))?;
            tracker.end_run(&info.id, RunStatus::Failed)
        }
        _ => tracker.end_run(&info.id, RunStatus::Finished),
    }
}

/// The leaderboard as JSON values (for `--json` output).
pub fn leaderboard_json(report: &SearchReport) -> Value {
    serde_json::to_value(leaderboard(report)).unwrap_or(Value::Null)
}

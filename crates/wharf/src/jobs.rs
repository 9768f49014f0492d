//! Wharf's main job, shared by the CLI and the quickstart: train a model on a dataset,
//! evaluate it on a holdout, track the run, register the model, and emit lineage.

use std::collections::BTreeMap;

use wharf_core::{
    DatasetInput, LineageEvent, LineageEventType, Model, ModelFacts, Result, RunHandle, SchemaField, Selector, Task,
    Version, WharfError,
};
use wharf_ml::{evaluate, Dataset, Metrics, Trainer};

use crate::promote::{promote, Decision, Gate};
use crate::Wharf;

/// The model tag that remembers the training data's id columns (a JSON array of names), so
/// scoring a new file can carry them through without being told again.
///
/// A tag rather than a metadata field: older artifacts, and models trained without ids,
/// simply have none, and the artifact format does not change.
pub const ID_COLUMNS_TAG: &str = "wharf.id_columns";

/// The id columns `model` was trained with ([`ID_COLUMNS_TAG`]); none for a model trained
/// without ids, or whose tag is not a JSON array of names.
pub fn id_columns(model: &Model) -> Vec<String> {
    model
        .metadata()
        .tags
        .get(ID_COLUMNS_TAG)
        .and_then(|text| serde_json::from_str::<Vec<String>>(text).ok())
        .unwrap_or_default()
}

/// What to train and where to put it.
#[derive(Debug, Clone)]
pub struct TrainJob {
    /// The data (features, target, ids).
    pub data: Dataset,
    /// The estimator and its settings.
    pub trainer: Trainer,
    /// The registered model name.
    pub name: String,
    /// Fraction of rows held out for evaluation (0 for none; clustering uses none).
    pub holdout: f64,
    /// Seed of the holdout split.
    pub seed: u64,
    /// Aliases to point at the new version (`champion`, …), unconditionally.
    pub aliases: Vec<String>,
    /// Gate a promotion on the held-out rows: the gate's alias moves to the new version only
    /// when it is measurably better than the version the alias points at.
    pub promote: Option<Gate>,
    /// Write the new version's model card ([`crate::report`]): logged to the run as
    /// `card.html` and stored with the version in the registry. On by default.
    pub report: bool,
}

/// What a [`TrainJob`] produced.
#[derive(Debug, Clone)]
pub struct TrainOutcome {
    /// The trained model (with its holdout metrics in the metadata).
    pub model: Model,
    /// The registered version.
    pub version: Version,
    /// Holdout metrics (empty without a holdout).
    pub metrics: Metrics,
    /// The tracker's run id.
    pub run_id: String,
    /// Rows trained on and evaluated on.
    pub rows: (usize, usize),
    /// The promotion gate's decision, when one was asked for.
    pub decision: Option<Decision>,
}

impl TrainJob {
    /// A job with a 20% holdout and seed 42.
    pub fn new(data: Dataset, trainer: Trainer, name: impl Into<String>) -> Self {
        TrainJob {
            data,
            trainer,
            name: name.into(),
            holdout: 0.2,
            seed: 42,
            aliases: Vec::new(),
            promote: None,
            report: true,
        }
    }

    /// Runs the job. `progress` hears each stage's name as it starts. Lineage gets a START
    /// event first and a COMPLETE or FAIL event at the end; the tracked run is FAILED if
    /// anything goes wrong.
    pub fn run(&self, ctx: &Wharf, mut progress: impl FnMut(&str)) -> Result<TrainOutcome> {
        wharf_core::ports::registry::validate_name(&self.name)?;
        let input = self.data.name.clone();
        let start = LineageEvent::new(format!("train-{}", self.name))
            .event_type(LineageEventType::Start)
            .input(input.clone())
            .model(ModelFacts {
                name: self.name.clone(),
                version: None,
                sha256: None,
                algorithm: Some(self.trainer.algorithm().as_str().to_string()),
                metrics: Default::default(),
            });
        let run_id_lineage = start.run_id.clone();
        ctx.lineage().emit(&start)?;
        let result = self.run_inner(ctx, &mut progress);
        let end = LineageEvent::new(format!("train-{}", self.name)).run_id(run_id_lineage).input(input.clone());
        let end = match &result {
            Ok(outcome) => {
                let meta = outcome.model.metadata();
                let output = format!("registry:{}/{}", self.name, outcome.version);
                // The checksum is lineage's link to exact bytes; a registry that cannot say it
                // leaves it out rather than failing a job that already succeeded.
                let sha256 = ctx
                    .registry()
                    .version_info(&self.name, &Selector::Version(outcome.version))
                    .ok()
                    .map(|info| info.sha256);
                let mut e = end
                    .output(output.clone())
                    .schema(input.clone(), SchemaField::training_columns(&meta.signature))
                    .schema(output, SchemaField::from_signature(&meta.signature))
                    .model(ModelFacts {
                        name: self.name.clone(),
                        version: Some(outcome.version.0),
                        sha256,
                        algorithm: Some(meta.algorithm.clone()),
                        metrics: outcome.metrics.clone(),
                    })
                    .meta("model", self.name.clone())
                    .meta("version", outcome.version.0)
                    .meta("algorithm", meta.algorithm.clone())
                    .meta("tracking_run", outcome.run_id.clone())
                    .meta("data_fingerprint", meta.data_fingerprint.clone());
                for (k, v) in &outcome.metrics {
                    e = e.meta(format!("metric.{k}"), *v);
                }
                e
            }
            Err(err) => end.event_type(LineageEventType::Fail).meta("error", err.to_string()),
        };
        ctx.lineage().emit(&end)?;
        result
    }

    fn run_inner(&self, ctx: &Wharf, progress: &mut impl FnMut(&str)) -> Result<TrainOutcome> {
        let supervised = self.trainer.algorithm().task() != Task::Clustering;
        if self.promote.is_some() && !(supervised && self.holdout > 0.0) {
            return Err(WharfError::invalid(
                "holdout",
                "gating a promotion needs held-out rows (a supervised model and a holdout above 0)",
            ));
        }
        let fraction = if supervised { self.holdout } else { 0.0 };
        if fraction > 0.0 {
            progress("splitting");
        }
        let (train, test) = split_holdout(&self.data, fraction, self.seed)?;
        let run = RunHandle::start(ctx.tracker().as_ref(), Some(&format!("train-{}", self.name)))?;
        let run_id = run.id().to_string();
        let mut params: BTreeMap<String, String> = self.trainer.params();
        params.insert("holdout".into(), self.holdout.to_string());
        params.insert("split_seed".into(), self.seed.to_string());
        params.insert("data".into(), self.data.name.clone());
        let ids = id_column_names(&self.data);
        if !ids.is_empty() {
            params.insert("id_columns".into(), ids.join(","));
        }
        run.log_params(params)?;
        run.set_tag("wharf.model_name", &self.name)?;
        log_inputs(&run, &self.data.name, &train, test.as_ref())?;

        progress("training");
        // A booster's learning curve goes to the run with each round as its step.
        let mut curve_error = None;
        let model = self.trainer.fit_observed(&train, &mut |it| {
            if curve_error.is_some() {
                return;
            }
            let step = Some(it.iteration as u64);
            let mut logged = run.log_metric("train_loss", it.train_loss, step);
            if let (Ok(()), Some(v)) = (&logged, it.valid_loss) {
                logged = run.log_metric("validation_loss", v, step);
            }
            curve_error = logged.err();
        })?;
        if let Some(e) = curve_error {
            return Err(e);
        }
        let metrics = match &test {
            Some(test) => {
                progress("evaluating");
                evaluate(&model, test)?
            }
            None => Metrics::new(),
        };
        run.log_metrics(metrics.iter().map(|(k, v)| (format!("holdout_{k}"), *v)))?;
        let (model, version) = register_open(
            ctx,
            &run,
            model.with_metrics(metrics.clone()),
            (&self.data, &self.name, &self.aliases),
            progress,
        )?;
        if self.report {
            progress("reporting");
            crate::card::publish(ctx, &run, &self.name, version, test.as_ref())?;
        }
        run.finish()?;
        let decision = match (&self.promote, &test) {
            (Some(gate), Some(test)) => {
                progress("gating");
                Some(promote(ctx, &self.name, &Selector::Version(version), test, gate)?)
            }
            _ => None,
        };
        Ok(TrainOutcome {
            decision,
            rows: (train.n_rows(), test.as_ref().map(Dataset::n_rows).unwrap_or(0)),
            model,
            version,
            metrics,
            run_id,
        })
    }
}

/// The holdout split every job makes: `(train, Some(test))` for a fraction above 0, the
/// whole data and no test rows otherwise.
pub(crate) fn split_holdout(data: &Dataset, fraction: f64, seed: u64) -> Result<(Dataset, Option<Dataset>)> {
    if fraction > 0.0 {
        let (train, test) = data.split(fraction, seed)?;
        Ok((train, Some(test)))
    } else {
        Ok((data.clone(), None))
    }
}

fn id_column_names(data: &Dataset) -> Vec<String> {
    data.ids.columns().iter().map(|(name, _)| name.clone()).collect()
}

/// Records the data a job read as the run's dataset inputs: the rows it trained on
/// (`training`, with the fingerprint the model's metadata carries) and the held-out rows
/// (`evaluation`), so MLflow's UI lists them with the run. A tracker written before
/// `log_input` existed answers `Unsupported`, which the run's `wharf.inputs_unsupported` tag
/// notes instead of failing the job.
pub(crate) fn log_inputs(run: &RunHandle<'_>, source: &str, train: &Dataset, test: Option<&Dataset>) -> Result<()> {
    let name = std::path::Path::new(source).file_name().map(|n| n.to_string_lossy().into_owned());
    let name = name.unwrap_or_else(|| source.to_string());
    let parts = std::iter::once((train, "training")).chain(test.map(|t| (t, "evaluation")));
    for (data, context) in parts {
        let input = DatasetInput::new(&name, data.fingerprint(), source, context, data.features.n_rows() as u64);
        match run.log_input(&input) {
            Err(WharfError::Unsupported(_)) => return run.set_tag("wharf.inputs_unsupported", "true"),
            other => other?,
        }
    }
    Ok(())
}

/// The last step of every job that makes a model: tag it with its tracking run and the
/// data's id columns ([`ID_COLUMNS_TAG`]), log it to the run, register it, point the
/// aliases at the new version, and close the run. `progress` hears `tracking` and
/// `registering` as they start.
pub(crate) fn register(
    ctx: &Wharf,
    run: RunHandle,
    model: Model,
    job: (&Dataset, &str, &[String]),
    progress: &mut dyn FnMut(&str),
) -> Result<(Model, Version)> {
    let registered = register_open(ctx, &run, model, job, progress)?;
    run.finish()?;
    Ok(registered)
}

/// [`register`] leaving the run open, for a job that logs more to it (the model card) before
/// it finishes the run itself.
pub(crate) fn register_open(
    ctx: &Wharf,
    run: &RunHandle,
    model: Model,
    (data, name, aliases): (&Dataset, &str, &[String]),
    progress: &mut dyn FnMut(&str),
) -> Result<(Model, Version)> {
    let mut model = model.with_tag("tracking_run", run.id());
    let ids = id_column_names(data);
    if !ids.is_empty() {
        let tag = serde_json::to_string(&ids).map_err(|e| WharfError::invalid(ID_COLUMNS_TAG, e.to_string()))?;
        model = model.with_tag(ID_COLUMNS_TAG, tag);
    }
    progress("tracking");
    run.log_model(&model, name)?;
    progress("registering");
    let version = ctx.registry().register(&model, name)?;
    for alias in aliases {
        ctx.registry().set_alias(name, alias, &version)?;
    }
    run.set_tag("wharf.model_version", version)?;
    Ok((model, version))
}

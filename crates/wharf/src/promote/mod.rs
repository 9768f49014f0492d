//! The promotion gate: an alias (`champion`) moves to a challenger only when the challenger
//! is measurably better on the same held-out rows.
//!
//! Both models are scored through the one scoring path ([`wharf_core::score`]) on servers
//! from the container's factory, so the gate measures what serving would answer. The
//! evidence is a paired bootstrap interval of the metric's improvement
//! ([`select::compare`](wharf_ml::select::compare)); the alias moves only when its lower
//! bound is above the stated margin. Every decision, promoted or refused, is a tracked run
//! (its numbers as metrics, the whole decision as the `decision.json` artifact) and a
//! lineage event.
//!
//! A challenger served in shadow (`wharf serve --shadow`) can be gated on what it did in
//! production instead: [`promote_from_shadow`] reads the shadow log, and gates on agreement
//! with the champion, errors, latency and, once labels arrive, the same paired bootstrap.

use std::collections::BTreeMap;

use serde::Serialize;
use wharf_core::ports::registry::validate_alias;
use wharf_core::{
    LineageEvent, Model, OnError, Predictions, Records, Result, RunHandle, Selector, Task, Version, WharfError,
};
use wharf_ml::select::{compare, Bootstrap, Comparison, Metric, Outputs, Truth};
use wharf_ml::Dataset;

use crate::Wharf;

mod shadow;
pub use shadow::{promote_from_shadow, Quantiles, ShadowEvidence, ShadowGate, ShadowLabels};

/// What the gate compares by, and how sure it must be.
#[derive(Debug, Clone, PartialEq)]
pub struct Gate {
    /// The alias the challenger must beat, and that moves when it does (`champion`).
    pub over: String,
    /// The metric (`roc_auc`, `log_loss`, `rmse`, …); `None` for the task's default (ROC
    /// AUC for two classes, accuracy for more, RMSE for regression).
    pub metric: Option<String>,
    /// How much better, in the metric's units, the interval's lower bound must be. 0 by
    /// default: any improvement the interval is sure of, never a tie.
    pub margin: f64,
    /// The bootstrap's resamples, coverage and seed.
    pub bootstrap: Bootstrap,
}

impl Default for Gate {
    fn default() -> Self {
        Gate { over: "champion".into(), metric: None, margin: 0.0, bootstrap: Bootstrap::default() }
    }
}

/// What the gate decided, with its numbers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    /// The registered model.
    pub name: String,
    /// The challenger's version.
    pub candidate: Version,
    /// The alias it was compared against.
    pub alias: String,
    /// The version the alias pointed at (none: nothing to beat).
    pub champion: Option<Version>,
    /// The evidence (none when there was no champion).
    pub comparison: Option<Comparison>,
    /// The margin the lower bound had to clear.
    pub margin: f64,
    /// Whether the alias moved.
    pub promoted: bool,
    /// The decision in one sentence, with its numbers.
    pub reason: String,
    /// The tracking run that records it.
    pub run_id: String,
    /// The evidence's name: the holdout data, or the shadow log.
    pub holdout: String,
    /// What the shadow log showed, when the gate read one ([`promote_from_shadow`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shadow: Option<ShadowEvidence>,
}

/// Compares `candidate` (a version or alias of `name`) with the model at `gate.over` on
/// `holdout`, and moves the alias when the candidate clears the gate. A refusal is an
/// `Ok` decision with `promoted: false`: callers that must fail on it (the CLI exits
/// non-zero) decide so.
pub fn promote(ctx: &Wharf, name: &str, candidate: &Selector, holdout: &Dataset, gate: &Gate) -> Result<Decision> {
    wharf_core::ports::registry::validate_name(name)?;
    validate_alias(&gate.over)?;
    if !gate.margin.is_finite() || gate.margin < 0.0 {
        return Err(WharfError::invalid("margin", format!("must be a number ≥ 0, got {}", gate.margin)));
    }
    let registry = ctx.registry();
    let cand_version = registry.version_info(name, candidate)?.version;
    let cand_model = registry.load_selected(name, &Selector::Version(cand_version))?;
    let champion = match registry.version_info(name, &Selector::Alias(gate.over.clone())) {
        Ok(info) => Some(info.version),
        Err(WharfError::NotFound { .. }) => None,
        Err(e) => return Err(e),
    };
    let task = cand_model.task();
    let metric = match &gate.metric {
        Some(m) => Metric::parse(m, task, cand_model.classes().len())?,
        None => Metric::default_for(task, cand_model.classes().len())?,
    };

    let comparison = match champion {
        Some(v) => {
            let champ_model = registry.load_selected(name, &Selector::Version(v))?;
            if champ_model.task() != task || champ_model.classes() != cand_model.classes() {
                return Err(WharfError::invalid(
                    "candidate",
                    format!("version {cand_version} and {}@{} ({v}) do not predict the same thing", name, gate.over),
                ));
            }
            let truth = truth(&cand_model, holdout)?;
            let a = outputs(ctx, &cand_model, holdout)?;
            let b = outputs(ctx, &champ_model, holdout)?;
            Some(compare(&metric, &truth, &a, &b, &gate.bootstrap)?)
        }
        None => None,
    };
    let promoted = match &comparison {
        Some(c) => c.low > gate.margin,
        None => true,
    };
    let reason = match (&comparison, champion) {
        (Some(c), Some(v)) => format!(
            "{name} version {cand_version} vs {}@{} (version {v}) on {} rows: {metric} {:.4} vs {:.4}, improvement {:+.4}, \
             {:.0}% interval [{:+.4}, {:+.4}]; lower bound {} the margin {}",
            name,
            gate.over,
            c.rows,
            c.candidate,
            c.champion,
            c.improvement,
            c.bootstrap.confidence * 100.0,
            c.low,
            c.high,
            if promoted { "is above" } else { "is not above" },
            gate.margin
        ),
        _ => format!("{name}@{} does not exist: version {cand_version} has nothing to beat", gate.over),
    };

    let decision = Decision {
        name: name.to_string(),
        candidate: cand_version,
        alias: gate.over.clone(),
        champion,
        comparison,
        margin: gate.margin,
        promoted,
        reason,
        run_id: String::new(),
        holdout: holdout.name.clone(),
        shadow: None,
    };
    let mut params = BTreeMap::from([("holdout".to_string(), holdout.name.clone())]);
    params.insert("resamples".into(), gate.bootstrap.resamples.to_string());
    params.insert("confidence".into(), gate.bootstrap.confidence.to_string());
    params.insert("bootstrap_seed".into(), gate.bootstrap.seed.to_string());
    conclude(ctx, decision, &metric, params, Vec::new())
}

/// Records a decision and acts on it: a tracked run (`params` and the comparison's numbers,
/// plus `metrics`, and the whole decision as `decision.json`), the alias moved when it was
/// promoted, and a lineage event whose inputs are the evidence and both versions.
fn conclude(
    ctx: &Wharf,
    mut decision: Decision,
    metric: &Metric,
    mut params: BTreeMap<String, String>,
    mut metrics: Vec<(&'static str, f64)>,
) -> Result<Decision> {
    let name = decision.name.clone();
    let (cand_version, champion, promoted) = (decision.candidate, decision.champion, decision.promoted);
    let run = RunHandle::start(ctx.tracker().as_ref(), Some(&format!("promote-{name}")))?;
    let run_id = run.id().to_string();
    decision.run_id = run_id.clone();
    params.extend([
        ("model".to_string(), name.clone()),
        ("candidate_version".to_string(), cand_version.to_string()),
        ("alias".to_string(), decision.alias.clone()),
        ("champion_version".to_string(), champion.map(|v| v.to_string()).unwrap_or_else(|| "none".into())),
        ("metric".to_string(), metric.name().to_string()),
        ("margin".to_string(), decision.margin.to_string()),
    ]);
    run.log_params(params)?;
    if let Some(c) = &decision.comparison {
        metrics.extend([
            ("candidate_score", c.candidate),
            ("champion_score", c.champion),
            ("improvement", c.improvement),
            ("ci_low", c.low),
            ("ci_high", c.high),
            ("rows", c.rows as f64),
        ]);
    }
    if !metrics.is_empty() {
        run.log_metrics(metrics)?;
    }
    run.set_tag("wharf.model_name", &name)?;
    run.set_tag("wharf.decision", if promoted { "promoted" } else { "refused" })?;
    log_json(&run, "decision.json", &decision)?;

    if promoted {
        ctx.registry().set_alias(&name, &decision.alias, &cand_version)?;
    }
    let mut event = LineageEvent::new(format!("promote-{name}"))
        .input(decision.holdout.clone())
        .input(format!("registry:{name}/{cand_version}"))
        .meta("decision", if promoted { "promoted" } else { "refused" })
        .meta("reason", decision.reason.clone())
        .meta("tracking_run", run_id)
        .meta("metric", metric.name().to_string())
        .meta("margin", decision.margin);
    if let Some(v) = champion {
        event = event.input(format!("registry:{name}/{v}"));
    }
    if let Some(c) = &decision.comparison {
        event = event.meta("improvement", c.improvement).meta("ci_low", c.low).meta("ci_high", c.high);
    }
    if let Some(shadow) = &decision.shadow {
        event = event.meta("agreement", shadow.agreement).meta("shadow_rows", shadow.rows as f64);
    }
    if promoted {
        event = event.output(format!("registry:{name}@{}", decision.alias));
    }
    ctx.lineage().emit(&event)?;
    run.finish()?;
    Ok(decision)
}

/// Writes `value` as JSON to a scratch file and logs it as artifact `name` of `run`.
///
/// A tracker written before `log_artifact` existed answers `Unsupported`; the evidence is
/// also in the run's params and metrics, so that is noted in the run's
/// `wharf.artifact_unsupported` tag instead of failing a job that has done its work.
pub(crate) fn log_json(run: &RunHandle<'_>, name: &str, value: &impl Serialize) -> Result<()> {
    let text = serde_json::to_vec_pretty(value).map_err(|e| WharfError::invalid(name, e.to_string()))?;
    let path = std::env::temp_dir().join(format!("wharf-{}-{name}", run.id()));
    std::fs::write(&path, text).map_err(|e| WharfError::io(&path, e))?;
    let logged = run.log_artifact(&path, name);
    let _ = std::fs::remove_file(&path);
    match logged {
        Err(WharfError::Unsupported(_)) => run.set_tag("wharf.artifact_unsupported", name),
        other => other,
    }
}

/// The holdout's answers, as class indices in `model`'s class order or as values.
fn truth(model: &Model, holdout: &Dataset) -> Result<Truth> {
    let (name, column) = holdout
        .target
        .as_ref()
        .ok_or_else(|| WharfError::invalid(&holdout.name, "the holdout needs the target column"))?;
    match model.task() {
        Task::Classification => {
            let classes = model.classes();
            (0..column.len())
                .map(|i| {
                    let label = column.text_at(i);
                    classes.iter().position(|c| *c == label).map(|p| p as u32).ok_or_else(|| {
                        WharfError::invalid(format!("{name}[{i}]"), format!("class '{label}' was not seen in training"))
                    })
                })
                .collect::<Result<_>>()
                .map(Truth::Classes)
        }
        Task::Regression => match column {
            wharf_core::Column::Numeric(v) => Ok(Truth::Values(v.clone())),
            _ => Err(WharfError::invalid(name.as_str(), "a regression target must be numeric")),
        },
        other => Err(WharfError::Unsupported(format!("gating {other} models"))),
    }
}

/// `model`'s outputs on the holdout, through a server from the container's factory and the
/// one scoring path.
fn outputs(ctx: &Wharf, model: &Model, holdout: &Dataset) -> Result<Outputs> {
    let server = ctx.model_servers().serve(model.clone())?;
    let scored = wharf_core::score(server.as_ref(), &Records::Columns(holdout.features.clone()), OnError::Fail)?;
    match (model.task(), scored.probabilities, scored.predictions) {
        (Task::Classification, Some(p), _) => Ok(Outputs::Probabilities(p.values)),
        (Task::Classification, None, _) => Err(WharfError::Unsupported(format!(
            "the '{}' model server gives no probabilities to compare classifiers by",
            ctx.model_servers().backend()
        ))),
        (_, _, Predictions::Values(v)) => Ok(Outputs::Values(v)),
        (other, _, _) => Err(WharfError::Unsupported(format!("gating {other} models"))),
    }
}

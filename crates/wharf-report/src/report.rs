//! [`ModelReport`]: what the card holds, how it is built and checked, and where it is written.

use std::collections::BTreeMap;
use std::path::Path;

use wharf_core::fsutil::write_atomic;
use wharf_core::{FeatureKind, Model, Result, RunRecord, Task, VersionInfo, WharfError};
use wharf_ml::Dataset;

use crate::analysis;

/// Choices a report is built with.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportOptions {
    /// The decision threshold of a binary classifier's positive class (default 0.5). Only
    /// binary classifiers have one: giving it for another model is an error.
    pub threshold: Option<f64>,
    /// How often each feature is shuffled for permutation importance.
    pub repeats: usize,
    /// The seed of those shuffles.
    pub seed: u64,
    /// Bins of the reliability curve.
    pub bins: usize,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions { threshold: None, repeats: 5, seed: 42, bins: 10 }
    }
}

/// One drawn plot.
#[derive(Debug, Clone, PartialEq)]
pub struct Plot {
    /// Its id in the card (`data-plot`): `roc`, `pr`, `calibration`, `confusion`,
    /// `threshold`, `predicted-actual`, `residual-histogram`, `residuals-predicted`,
    /// `permutation-importance`, `gain-importance`, `learning-curve`.
    pub id: &'static str,
    /// Its heading.
    pub title: String,
    /// What it shows and how it was computed.
    pub caption: String,
    /// Data points drawn (curve vertices, markers, bars or cells; `data-points`).
    pub points: usize,
    /// The SVG.
    pub svg: String,
    /// Series names, in drawing order (their colours follow the palette).
    pub legend: Vec<String>,
}

/// A place in the card: a plot, or the reason it is not there.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Section {
    /// A drawn plot.
    Plot(Plot),
    /// A plot that could not be drawn, and why.
    Missing {
        /// The plot's id (`data-missing`).
        id: &'static str,
        /// Its heading.
        title: String,
        /// Why it is missing.
        message: String,
    },
}

impl Section {
    pub(crate) fn missing(id: &'static str, title: impl Into<String>, message: impl Into<String>) -> Section {
        Section::Missing { id, title: title.into(), message: message.into() }
    }

    /// The plot's id.
    pub fn id(&self) -> &'static str {
        match self {
            Section::Plot(p) => p.id,
            Section::Missing { id, .. } => id,
        }
    }
}

/// A model card, ready to render. Build it with [`ModelReport::builder`].
#[derive(Debug, Clone, PartialEq)]
pub struct ModelReport {
    pub(crate) title: String,
    pub(crate) summary: Vec<(String, String)>,
    pub(crate) signature: Vec<[String; 3]>,
    pub(crate) params: BTreeMap<String, String>,
    pub(crate) trained_metrics: BTreeMap<String, f64>,
    pub(crate) holdout_metrics: BTreeMap<String, f64>,
    pub(crate) holdout_note: Option<String>,
    pub(crate) confusion: Option<(Vec<String>, Vec<Vec<u64>>)>,
    pub(crate) sections: Vec<Section>,
}

/// Collects what a card is built from; [`build`](Self::build) computes it.
#[derive(Debug)]
#[must_use]
pub struct ReportBuilder<'a> {
    model: &'a Model,
    name: Option<String>,
    version: Option<VersionInfo>,
    sha256: Option<String>,
    holdout: Option<&'a Dataset>,
    run: Option<RunRecord>,
    no_run: Option<String>,
    options: ReportOptions,
}

impl ModelReport {
    /// Starts a report of `model`.
    pub fn builder(model: &Model) -> ReportBuilder<'_> {
        ReportBuilder {
            model,
            name: None,
            version: None,
            sha256: None,
            holdout: None,
            run: None,
            no_run: None,
            options: ReportOptions::default(),
        }
    }

    /// The card's sections (plots and missing plots), in order.
    pub fn sections(&self) -> &[Section] {
        &self.sections
    }

    /// The metrics measured on the holdout (empty without one).
    pub fn holdout_metrics(&self) -> &BTreeMap<String, f64> {
        &self.holdout_metrics
    }

    /// A classifier's confusion matrix on the holdout at the card's decision rule: rows are
    /// the true class, columns the predicted one, both in the model's class order.
    pub fn confusion_matrix(&self) -> Option<&[Vec<u64>]> {
        self.confusion.as_ref().map(|(_, cells)| cells.as_slice())
    }

    /// The card as one self-contained HTML document.
    pub fn render(&self) -> String {
        crate::html::render(self)
    }

    /// Writes the card to `path` atomically: readers see the old file or the new, never half.
    pub fn write(&self, path: impl AsRef<Path>) -> Result<()> {
        write_atomic(path.as_ref(), self.render().as_bytes())
    }
}

impl<'a> ReportBuilder<'a> {
    /// The registered name (when the model is not described by a registry entry).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The registry's entry for the model: name, version, aliases.
    pub fn version(mut self, info: VersionInfo) -> Self {
        self.version = Some(info);
        self
    }

    /// The checksum of the stored artifact.
    pub fn sha256(mut self, sha256: impl Into<String>) -> Self {
        self.sha256 = Some(sha256.into());
        self
    }

    /// Labelled rows to evaluate on: they must hold every feature and the target.
    pub fn holdout(mut self, data: &'a Dataset) -> Self {
        self.holdout = Some(data);
        self
    }

    /// The tracked run that trained the model (its metric history is the learning curve).
    pub fn run(mut self, run: RunRecord) -> Self {
        self.run = Some(run);
        self
    }

    /// Why the run could not be read (shown where the learning curve would be).
    pub fn run_unavailable(mut self, reason: impl Into<String>) -> Self {
        self.no_run = Some(reason.into());
        self
    }

    /// The options.
    pub fn options(mut self, options: ReportOptions) -> Self {
        self.options = options;
        self
    }

    /// A binary classifier's decision threshold.
    pub fn threshold(mut self, threshold: f64) -> Self {
        self.options.threshold = Some(threshold);
        self
    }

    /// Checks the inputs, evaluates the holdout and draws the plots.
    ///
    /// Errors: a threshold for a model that has none (a regressor, a multiclass classifier)
    /// or outside [0, 1] (`InvalidInput` at `threshold`); a holdout without one of the
    /// model's features or its target (`InvalidInput` naming the column).
    pub fn build(self) -> Result<ModelReport> {
        let model = self.model;
        let meta = model.metadata();
        let sig = model.signature();
        if let Some(t) = self.options.threshold {
            match (model.task(), model.classes().len()) {
                (Task::Classification, 2) if (0.0..=1.0).contains(&t) => {}
                (Task::Classification, 2) => {
                    return Err(WharfError::invalid("threshold", format!("{t} is not a probability in [0, 1]")))
                }
                (Task::Classification, _) => {
                    return Err(WharfError::invalid(
                        "threshold",
                        "a multiclass model decides by its most probable class; a threshold is for binary classifiers",
                    ))
                }
                (task, _) => {
                    return Err(WharfError::invalid(
                        "threshold",
                        format!("a {task} model has no decision threshold; it is a classification option"),
                    ))
                }
            }
        }
        if let Some(data) = self.holdout {
            check_holdout(model, data)?;
        }

        let name = self.version.as_ref().map(|v| v.name.clone()).or(self.name.clone());
        let mut summary = Vec::new();
        let mut push = |k: &str, v: String| summary.push((k.to_string(), v));
        push("model", name.clone().unwrap_or_else(|| "(not registered)".into()));
        if let Some(info) = &self.version {
            push("version", info.version.to_string());
            push("aliases", if info.aliases.is_empty() { "none".into() } else { info.aliases.join(", ") });
            push("registered", info.created_at.format("%Y-%m-%d %H:%M:%S UTC").to_string());
        }
        push("sha256", self.sha256.clone().unwrap_or_else(|| "unknown (not read from a registry)".into()));
        push("algorithm", meta.algorithm.clone());
        push("kind", model.kind_id().to_string());
        push("task", model.task().to_string());
        if !model.classes().is_empty() {
            push("classes", model.classes().join(", "));
        }
        push("trained", meta.created_at.format("%Y-%m-%d %H:%M:%S UTC").to_string());
        push("training data", meta.data_source.clone());
        push("data fingerprint", meta.data_fingerprint.clone());
        let run_id = meta.tags.get("tracking_run").cloned();
        push("run", run_id.clone().unwrap_or_else(|| "unknown (no tracking_run tag)".into()));
        for (lib, v) in &meta.library_versions {
            push(&format!("library {lib}"), v.clone());
        }

        let signature = sig
            .features
            .iter()
            .map(|f| match &f.kind {
                FeatureKind::Categorical { levels } => [f.name.clone(), "categorical".into(), levels.join(", ")],
                _ => [f.name.clone(), "numeric".into(), String::new()],
            })
            .chain(sig.target.iter().map(|t| [t.clone(), "target".into(), model.classes().join(", ")]))
            .collect();

        let mut sections = Vec::new();
        let (holdout_metrics, holdout_note, confusion) = match self.holdout {
            Some(data) => {
                let analysis = analysis::holdout(model, data, &self.options)?;
                sections.extend(analysis.sections);
                (analysis.metrics, None, analysis.confusion)
            }
            None => {
                let message = "no holdout was given, so there are no holdout metrics, curves or permutation \
                               importance (give labelled rows: `wharf report NAME --holdout FILE`)";
                for (id, title) in plot_ids(model) {
                    sections.push(crate::report::Section::missing(id, title, message));
                }
                (BTreeMap::new(), Some(message.to_string()), None)
            }
        };
        sections.push(analysis::gain(model)?);
        sections.push(match (&self.run, &self.no_run) {
            (Some(run), _) => analysis::learning_curve(run)?,
            (None, Some(reason)) => Section::missing("learning-curve", "Learning curve", reason.clone()),
            (None, None) => Section::missing("learning-curve", "Learning curve", "no run history was given"),
        });

        let version = self.version.as_ref().map(|v| format!(" version {}", v.version)).unwrap_or_default();
        Ok(ModelReport {
            title: format!("{}{version}", name.unwrap_or_else(|| meta.algorithm.clone())),
            summary,
            signature,
            params: meta.params.clone(),
            trained_metrics: meta.metrics.clone(),
            holdout_metrics,
            holdout_note,
            confusion,
            sections,
        })
    }
}

/// The holdout plots a model would get, for the messages a card without a holdout shows.
fn plot_ids(model: &Model) -> Vec<(&'static str, &'static str)> {
    let mut ids = match model.task() {
        Task::Classification => vec![
            ("roc", "ROC curve"),
            ("pr", "Precision–recall"),
            ("calibration", "Reliability curve"),
            ("confusion", "Confusion matrix"),
            ("threshold", "Threshold sweep"),
        ],
        Task::Regression => vec![
            ("predicted-actual", "Predicted against actual"),
            ("residual-histogram", "Residuals"),
            ("residuals-predicted", "Residuals against predicted"),
        ],
        _ => Vec::new(),
    };
    ids.push(("permutation-importance", "Permutation importance"));
    ids
}

/// Every feature and the target must be columns of the holdout.
fn check_holdout(model: &Model, data: &Dataset) -> Result<()> {
    if model.task() != Task::Classification && model.task() != Task::Regression {
        return Err(WharfError::invalid(
            "holdout",
            format!("a {} model has no labels to evaluate against", model.task()),
        ));
    }
    if data.n_rows() == 0 {
        return Err(WharfError::invalid(data.name.as_str(), "the holdout has no rows"));
    }
    for feature in model.signature().feature_names() {
        if data.features.column(feature).is_none() {
            return Err(WharfError::invalid(
                feature,
                format!("the holdout {} has no column '{feature}', which the model needs", data.name),
            ));
        }
    }
    let target = model.signature().target.clone().unwrap_or_else(|| "target".into());
    match &data.target {
        None => Err(WharfError::invalid(
            target.as_str(),
            format!("the holdout {} has no target column '{target}' to evaluate against", data.name),
        )),
        Some(_) => Ok(()),
    }
}

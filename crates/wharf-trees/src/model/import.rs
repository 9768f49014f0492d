//! XGBoost and LightGBM files → [`Model`]s with a signature derived from the file.
//!
//! Neither format stores class labels (a classifier's classes are `0`, `1`, … to the
//! library), and a model trained on a bare matrix has no feature names either (XGBoost then
//! says `f0`, `f1`, …, LightGBM `Column_0`, …). [`ImportOptions`] fills those gaps, or
//! overrides the file's names; a count that disagrees with the file is refused.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde_json::{Number, Value};
use wharf_core::{Feature, Model, ModelMetadata, Result, Row, Signature, Task, WharfError};

use super::kind::{Source, TreeEnsemble};
use crate::imported::{ImportedModel, SourceFormat, Task as TreeTask};
use crate::link::Link;
use crate::spec::EnsembleSpec;
use crate::{Ensemble, TreeError};

/// What the caller knows that the model file does not say.
///
/// ```no_run
/// use wharf_trees::model::{xgboost_with, ImportOptions};
///
/// let options = ImportOptions::new().classes(["no", "yes"]);
/// let model = xgboost_with("churn.json", &options)?;
/// assert_eq!(model.classes(), ["no", "yes"]);
/// # Ok::<(), wharf_core::WharfError>(())
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ImportOptions {
    /// Feature names, in the model's column order; replace the file's (or its `f0`, `f1`,
    /// …). Must be as many as the model reads.
    pub features: Option<Vec<String>>,
    /// Class labels of a classifier, in the order of the library's class indices (`0`, `1`,
    /// …): `classes[1]` is the positive class of a binary model. Default: `0`, `1`, ….
    pub classes: Option<Vec<String>>,
}

impl ImportOptions {
    /// No overrides: names from the file, classes `0`, `1`, ….
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the feature names.
    pub fn features<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.features = Some(names.into_iter().map(Into::into).collect());
        self
    }

    /// Sets the class labels.
    pub fn classes<S: Into<String>>(mut self, labels: impl IntoIterator<Item = S>) -> Self {
        self.classes = Some(labels.into_iter().map(Into::into).collect());
        self
    }
}

/// Imports an XGBoost JSON model (`booster.save_model("model.json")`).
pub fn xgboost(path: impl AsRef<Path>) -> Result<Model> {
    xgboost_with(path, &ImportOptions::default())
}

/// Imports an XGBoost JSON model with feature names or class labels of the caller's.
pub fn xgboost_with(path: impl AsRef<Path>, options: &ImportOptions) -> Result<Model> {
    import(path.as_ref(), options, SourceFormat::XGBoostJson)
}

/// Imports a LightGBM text model (`booster.save_model("model.txt")`).
pub fn lightgbm(path: impl AsRef<Path>) -> Result<Model> {
    lightgbm_with(path, &ImportOptions::default())
}

/// Imports a LightGBM text model with feature names or class labels of the caller's.
pub fn lightgbm_with(path: impl AsRef<Path>, options: &ImportOptions) -> Result<Model> {
    import(path.as_ref(), options, SourceFormat::LightGbmText)
}

fn import(path: &Path, options: &ImportOptions, format: SourceFormat) -> Result<Model> {
    super::register();
    let bytes = std::fs::read(path).map_err(|e| WharfError::io(path, e))?;
    let file = path.display().to_string();
    let imported = match format {
        SourceFormat::XGBoostJson => crate::xgboost::parse(&bytes),
        SourceFormat::LightGbmText => crate::lightgbm::parse(&bytes),
        other => return Err(WharfError::Unsupported(format!("importing a {other:?} model file"))),
    }
    .map_err(|e| file_error(&file, e))?;
    let source = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or(file);
    build(imported, options, &source)
}

/// A [`TreeError`] as the [`WharfError`] a user sees: the file, the format and the field (or
/// the line and column) in the path, what is wrong in the message.
pub(crate) fn file_error(file: &str, e: TreeError) -> WharfError {
    match e {
        TreeError::Malformed { format, at, message } => {
            WharfError::invalid(format!("{file} ({format}) at {at}"), message)
        }
        TreeError::Field { format, field, message } => {
            WharfError::invalid(format!("{file} ({format}) field `{field}`"), message)
        }
        TreeError::TooLarge { format, .. } => WharfError::invalid(format!("{file} ({format})"), e.to_string()),
        e @ TreeError::Unsupported { .. } => WharfError::Unsupported(format!("{file}: {e}")),
        e => WharfError::invalid(file, e.to_string()),
    }
}

/// The model of an imported ensemble, with the names and labels of `options`.
fn build(imported: ImportedModel, options: &ImportOptions, source_file: &str) -> Result<Model> {
    let ImportedModel { ensemble, feature_names, categorical_features, task, n_classes, objective, format, .. } =
        imported;
    let width = ensemble.n_features();
    let names = match &options.features {
        Some(names) => {
            if names.len() != width {
                return Err(WharfError::invalid(
                    "features",
                    format!("{} names given; the model file has {width} features", names.len()),
                ));
            }
            names.clone()
        }
        None => feature_names,
    };
    unique(&names, "features")?;
    let task = match task {
        TreeTask::Classification => Task::Classification,
        _ => Task::Regression,
    };
    let classes = match (task, &options.classes) {
        (Task::Classification, Some(labels)) => {
            if labels.len() != n_classes {
                return Err(WharfError::invalid(
                    "classes",
                    format!("{} labels given; the model ({objective}) has {n_classes} classes", labels.len()),
                ));
            }
            unique(labels, "classes")?;
            labels.clone()
        }
        (Task::Classification, None) => (0..n_classes).map(|c| c.to_string()).collect(),
        (_, Some(_)) => {
            return Err(WharfError::invalid(
                "classes",
                format!("the model is a regressor ({objective}); it has no classes"),
            ))
        }
        (_, None) => Vec::new(),
    };
    // XGBoost's `binary:logitraw` is a classifier whose output is the margin: its
    // probability is the logistic of that margin, as `binary:logistic` would give.
    let ensemble = if task == Task::Classification && ensemble.link() == Link::Identity {
        let spec = EnsembleSpec { link: Link::Sigmoid, ..ensemble.spec().clone() };
        Ensemble::new(spec).map_err(|e| WharfError::invalid("import", e.to_string()))?
    } else {
        ensemble
    };

    let (algorithm, library) = match format {
        SourceFormat::XGBoostJson => ("xgboost", "XGBoost"),
        _ => ("lightgbm", "LightGBM"),
    };
    let categorical: Vec<&str> =
        categorical_features.iter().filter_map(|c| names.get(*c)).map(String::as_str).collect();
    let mut params = BTreeMap::new();
    params.insert("objective".to_string(), objective.clone());
    params.insert("n_trees".to_string(), ensemble.n_trees().to_string());
    params.insert("n_outputs".to_string(), ensemble.n_groups().to_string());
    if !categorical.is_empty() {
        params.insert("categorical_features".to_string(), categorical.join(","));
    }
    // The facts a reader of `wharf models show` wants, which lists tags but not parameters.
    let mut tags = BTreeMap::new();
    tags.insert("imported".to_string(), library.to_string());
    tags.insert("objective".to_string(), objective.clone());
    if !categorical.is_empty() {
        tags.insert("categorical_features".to_string(), categorical.join(","));
    }
    let metadata = imported_metadata(
        &names,
        task,
        classes,
        algorithm,
        params,
        tags,
        format!("{library} model file {source_file}"),
    );
    let kind = TreeEnsemble::new(ensemble, Source { format, objective, categorical_features });
    Model::new(metadata, Arc::new(kind))
}

pub(crate) fn unique(names: &[String], what: &str) -> Result<()> {
    // A set: linear in the number of names (a model may have 100k features).
    let mut seen = std::collections::HashSet::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        if name.trim().is_empty() {
            return Err(WharfError::invalid(format!("{what}[{i}]"), "an empty name"));
        }
        if !seen.insert(name.as_str()) {
            return Err(WharfError::invalid(format!("{what}[{i}]"), format!("'{name}' appears twice")));
        }
    }
    Ok(())
}

/// A model of an ensemble Wharf trained itself: `metadata` describes it (its signature must
/// match the ensemble: see [`TreeEnsemble`]), `objective` names its loss, and
/// `categorical_features` are the columns its categorical splits read. A categorical column
/// may be a categorical feature of the signature: its text levels are then read as their
/// index among the signature's levels.
pub fn trained(
    metadata: ModelMetadata,
    ensemble: Ensemble,
    objective: &str,
    categorical_features: Vec<usize>,
) -> Result<Model> {
    super::register();
    let kind = TreeEnsemble::new(
        ensemble,
        Source { format: SourceFormat::Wharf, objective: objective.to_string(), categorical_features },
    );
    Model::new(metadata, Arc::new(kind))
}

/// The metadata of a model imported from another library's file: numeric features by `names`,
/// no training data Wharf saw, and a row of zeros as the sample input, a real input for
/// readiness probes (zero is a value of every numeric column and category code 0 of every
/// categorical one).
pub(crate) fn imported_metadata(
    names: &[String],
    task: Task,
    classes: Vec<String>,
    algorithm: &str,
    params: BTreeMap<String, String>,
    tags: BTreeMap<String, String>,
    data_source: String,
) -> ModelMetadata {
    let mut library_versions = wharf_core::library_versions();
    library_versions.insert("wharf-trees".into(), env!("CARGO_PKG_VERSION").into());
    let sample: Row = names.iter().map(|n| (n.clone(), Value::Number(Number::from(0)))).collect();
    ModelMetadata {
        signature: Signature {
            features: names.iter().map(|n| Feature::numeric(n.as_str())).collect(),
            target: None,
            task,
            classes,
        },
        algorithm: algorithm.into(),
        params,
        metrics: BTreeMap::new(),
        tags,
        created_at: chrono::Utc::now(),
        data_fingerprint: String::new(),
        data_source,
        library_versions,
        sample_input: vec![sample],
    }
}

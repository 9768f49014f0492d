//! The model: metadata (with its signature) + the kind that scores it.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use ndarray::Array2;
use serde::{Deserialize, Serialize};

use crate::kind::ModelKind;
use crate::records::{format_number, Records, Row};
use crate::signature::{Signature, Task};
use crate::{Result, WharfError};

/// Everything known about a model besides its parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelMetadata {
    /// Inputs, task and classes.
    pub signature: Signature,
    /// The algorithm: `logistic`, `linear`, `tree`, `random-forest` or `kmeans` for the
    /// built-in estimators; a kind of its own names its own.
    pub algorithm: String,
    /// Training parameters, as text.
    pub params: BTreeMap<String, String>,
    /// Evaluation metrics (holdout metrics when the trainer had a holdout).
    pub metrics: BTreeMap<String, f64>,
    /// Free-form tags.
    pub tags: BTreeMap<String, String>,
    /// When the model was fitted.
    pub created_at: DateTime<Utc>,
    /// SHA-256 of the training data (`wharf_ml::Dataset::fingerprint`).
    pub data_fingerprint: String,
    /// The training data's name.
    pub data_source: String,
    /// Versions of wharf and the learning libraries that produced the model.
    pub library_versions: BTreeMap<String, String>,
    /// A few training rows (features only): a real input that readiness probes and smoke
    /// tests can predict without the caller inventing one. Stored as JSON text because the
    /// artifact codec cannot carry self-describing JSON values.
    #[serde(with = "rows_as_json")]
    pub sample_input: Vec<Row>,
}

/// A trained model, ready to predict: metadata plus its kind's compiled scoring behaviour
/// (see [`crate::kind`]). Cheap to clone and to share behind an `Arc`.
#[derive(Debug, Clone)]
pub struct Model {
    metadata: ModelMetadata,
    kind: Arc<dyn ModelKind>,
}

/// Predictions for a batch, one per record.
#[derive(Debug, Clone, PartialEq)]
pub enum Predictions {
    /// Class labels: `classes[indices[i]]` for record `i`.
    Classes {
        /// The model's classes.
        classes: Vec<String>,
        /// Index into `classes` per record.
        indices: Vec<u32>,
    },
    /// Regression values.
    Values(Vec<f64>),
    /// Cluster indices.
    Clusters(Vec<u32>),
}

impl Predictions {
    /// Number of predictions.
    pub fn len(&self) -> usize {
        match self {
            Predictions::Classes { indices, .. } => indices.len(),
            Predictions::Values(v) => v.len(),
            Predictions::Clusters(v) => v.len(),
        }
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Prediction `i` as text (a class label, a number, a cluster index).
    pub fn display(&self, i: usize) -> String {
        match self {
            Predictions::Classes { classes, indices } => classes[indices[i] as usize].clone(),
            Predictions::Values(v) => format_number(v[i]),
            Predictions::Clusters(v) => v[i].to_string(),
        }
    }

    /// Prediction `i` as JSON (a string label, a number, an integer).
    pub fn to_json(&self, i: usize) -> serde_json::Value {
        match self {
            Predictions::Classes { classes, indices } => classes[indices[i] as usize].clone().into(),
            Predictions::Values(v) => serde_json::Number::from_f64(v[i]).map(Into::into).unwrap_or_default(),
            Predictions::Clusters(v) => v[i].into(),
        }
    }
}

/// Class probabilities: column `j` of `values` is `P(classes[j])`, rows sum to 1.
#[derive(Debug, Clone, PartialEq)]
pub struct Probabilities {
    /// The class each column refers to.
    pub classes: Vec<String>,
    /// `records × classes`.
    pub values: Array2<f64>,
}

impl Probabilities {
    /// The probability of `class` for record `row`.
    pub fn get(&self, row: usize, class: &str) -> Option<f64> {
        let j = self.classes.iter().position(|c| c == class)?;
        self.values.get((row, j)).copied()
    }

    /// The most probable class index of each row (ties go to the first class).
    pub fn argmax(&self) -> Vec<u32> {
        self.values
            .rows()
            .into_iter()
            .map(|row| {
                let mut best = 0;
                for (j, v) in row.iter().enumerate() {
                    if *v > row[best] {
                        best = j;
                    }
                }
                best as u32
            })
            .collect()
    }
}

impl Model {
    /// A model of `kind` with `metadata`, checked for consistency (the kind against the
    /// signature, and no duplicate feature names) as a loaded artifact would be.
    pub fn new(metadata: ModelMetadata, kind: Arc<dyn ModelKind>) -> Result<Model> {
        let id = kind.kind_id().to_string();
        Self::checked(metadata, kind).map_err(|e| WharfError::invalid("model", format!("kind '{id}': {e}")))
    }

    /// [`new`](Self::new) with the bare message, for the artifact loader.
    pub(crate) fn checked(metadata: ModelMetadata, kind: Arc<dyn ModelKind>) -> std::result::Result<Model, String> {
        let model = Model { metadata, kind };
        model.check()?;
        Ok(model)
    }

    /// The model's metadata.
    pub fn metadata(&self) -> &ModelMetadata {
        &self.metadata
    }

    /// The model's kind: its compiled scoring behaviour.
    pub fn kind(&self) -> &dyn ModelKind {
        self.kind.as_ref()
    }

    /// The kind id stored in the artifact (e.g. `wharf.estimator`).
    pub fn kind_id(&self) -> &str {
        self.kind.kind_id()
    }

    /// The signature records are checked against.
    pub fn signature(&self) -> &Signature {
        &self.metadata.signature
    }

    /// What it predicts.
    pub fn task(&self) -> Task {
        self.metadata.signature.task
    }

    /// Class labels (empty unless a classifier).
    pub fn classes(&self) -> &[String] {
        &self.metadata.signature.classes
    }

    /// Returns the model with `metrics` merged into its metadata.
    pub fn with_metrics(mut self, metrics: impl IntoIterator<Item = (String, f64)>) -> Self {
        self.metadata.metrics.extend(metrics);
        self
    }

    /// Returns the model with a tag set.
    pub fn with_tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.tags.insert(key.into(), value.into());
        self
    }

    /// A rough count of the basic steps (multiply-adds, tree levels) scoring one row takes:
    /// a size, not a time. A server uses it to score small requests on the spot and hand big
    /// ones to a worker pool.
    pub fn work_per_row(&self) -> usize {
        self.kind.work_per_row().max(1)
    }

    /// Checks `records` against the signature exactly as [`predict`](Self::predict) does,
    /// without scoring. For model servers that compute elsewhere (a proxy to a remote
    /// service) but must still refuse bad records locally, before any request is sent.
    pub fn validate(&self, records: &Records) -> Result<()> {
        self.kind.validate(&self.metadata.signature, records)
    }

    /// Predicts one value per record, after checking the records against the signature.
    pub fn predict(&self, records: &Records) -> Result<Predictions> {
        self.kind.predict(&self.metadata.signature, records)
    }

    /// Class probabilities per record; [`WharfError::Unsupported`] unless a classifier.
    pub fn predict_proba(&self, records: &Records) -> Result<Probabilities> {
        if self.task() != Task::Classification {
            return Err(WharfError::Unsupported(format!(
                "predict_proba on a {} model ({})",
                self.task(),
                self.metadata.algorithm
            )));
        }
        self.kind.predict_proba(&self.metadata.signature, records)
    }

    /// Checks the parts agree with each other. Called on every artifact load, so a payload
    /// that decodes but is inconsistent is refused instead of panicking later in predict.
    pub(crate) fn check(&self) -> std::result::Result<(), String> {
        let sig = &self.metadata.signature;
        for (i, feature) in sig.features.iter().enumerate() {
            if sig.features[..i].iter().any(|f| f.name == feature.name) {
                return Err(format!("duplicate feature '{}'", feature.name));
            }
        }
        self.kind.check(sig)
    }

    /// Saves the model as a `.wharf` artifact (atomically: a crash leaves the old file or
    /// none, never half of one).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let bytes = crate::artifact::encode(self)?;
        crate::fsutil::write_atomic(path.as_ref(), &bytes)
    }

    /// Loads a `.wharf` artifact, verifying header, checksum and consistency. The model's
    /// kind must be registered (see [`crate::kind`]).
    pub fn load(path: impl AsRef<Path>) -> Result<Model> {
        crate::artifact::read_file(path.as_ref())
    }
}

/// Two models are equal when their metadata, kind and kind payload are: exactly what a saved
/// artifact would hold.
impl PartialEq for Model {
    fn eq(&self, other: &Self) -> bool {
        self.metadata == other.metadata
            && self.kind.kind_id() == other.kind.kind_id()
            && (Arc::ptr_eq(&self.kind, &other.kind)
                || matches!((self.kind.encode(), other.kind.encode()), (Ok(a), Ok(b)) if a == b))
    }
}

/// Versions of the libraries that produce and read models, as far as the core knows: wharf
/// and the artifact format. Model crates add their own (`wharf_ml::library_versions`).
pub fn library_versions() -> BTreeMap<String, String> {
    [("wharf", env!("CARGO_PKG_VERSION").to_string()), ("artifact_format", crate::artifact::FORMAT_VERSION.to_string())]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
}

/// Serialises rows as one JSON string, so non-self-describing codecs can carry them.
mod rows_as_json {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::records::Row;

    pub(super) fn serialize<S: Serializer>(rows: &[Row], s: S) -> Result<S::Ok, S::Error> {
        let text = serde_json::to_string(rows).map_err(serde::ser::Error::custom)?;
        s.serialize_str(&text)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Row>, D::Error> {
        let text = String::deserialize(d)?;
        serde_json::from_str(&text).map_err(serde::de::Error::custom)
    }
}

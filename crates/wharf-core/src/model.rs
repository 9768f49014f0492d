//! The model: metadata (with its signature) + the kind that scores it. Saving and loading
//! live with the artifact format ([`crate::artifact`]), which builds on this type.

use std::sync::Arc;

use crate::kind::ModelKind;
use crate::metadata::ModelMetadata;
use crate::prediction::{Predictions, Probabilities};
use crate::records::Records;
use crate::signature::{Signature, Task};
use crate::{Result, WharfError};

/// A trained model, ready to predict: metadata plus its kind's compiled scoring behaviour
/// (see [`crate::kind`]). Cheap to clone and to share behind an `Arc`.
#[derive(Debug, Clone)]
pub struct Model {
    metadata: ModelMetadata,
    kind: Arc<dyn ModelKind>,
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
        // A set, so a model with 100k features checks in linear time.
        let mut seen = std::collections::HashSet::with_capacity(sig.features.len());
        for feature in &sig.features {
            if !seen.insert(feature.name.as_str()) {
                return Err(format!("duplicate feature '{}'", feature.name));
            }
        }
        self.kind.check(sig)
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

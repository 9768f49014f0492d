//! Which model scores a micro-batch: a fixed model, or whatever version a registry alias
//! points at when the batch starts.

use std::sync::Arc;

use wharf_core::{
    Model, ModelRef, Predictions, Probabilities, Records, RegistryExt, RegistryPort, Result, Selector, Task,
};

/// A model with the registry identity every output record reports.
#[derive(Debug, Clone)]
pub struct ScoringModel {
    /// The registered name.
    pub name: String,
    /// The registered version.
    pub version: u64,
    /// SHA-256 of the artifact, for lineage.
    pub sha256: Option<String>,
    /// The model itself.
    pub model: Model,
}

impl ScoringModel {
    /// A model known by `name` and `version`.
    pub fn new(name: impl Into<String>, version: u64, model: Model) -> Self {
        ScoringModel { name: name.into(), version, sha256: None, model }
    }

    /// Predictions, plus class probabilities for a classifier (the prediction is the most
    /// probable class, so the model runs once).
    pub fn score(&self, records: &Records) -> Result<(Predictions, Option<Probabilities>)> {
        if self.model.task() == Task::Classification {
            let proba = self.model.predict_proba(records)?;
            let predictions = Predictions::Classes { classes: proba.classes.clone(), indices: proba.argmax() };
            Ok((predictions, Some(proba)))
        } else {
            Ok((self.model.predict(records)?, None))
        }
    }
}

/// Hands the job the model for each micro-batch.
///
/// [`current`](Self::current) is called once at the start of every micro-batch, so a new
/// model version takes effect at a batch boundary and never inside a batch. An HTTP
/// scoring adapter would implement the same trait.
pub trait Scorer: Send {
    /// The model to score the next micro-batch with.
    fn current(&mut self) -> Result<Arc<ScoringModel>>;
}

/// Always the same model.
#[derive(Debug, Clone)]
pub struct FixedScorer(Arc<ScoringModel>);

impl FixedScorer {
    /// Scores with `model`.
    pub fn new(model: ScoringModel) -> Self {
        FixedScorer(Arc::new(model))
    }
}

impl Scorer for FixedScorer {
    fn current(&mut self) -> Result<Arc<ScoringModel>> {
        Ok(self.0.clone())
    }
}

/// Resolves a model reference (`activity@champion`) in a registry at every batch boundary
/// and loads the model again only when the version changed. Moving the alias while the
/// stream runs therefore switches the model from the next micro-batch on, and each output
/// record names the version that scored it.
pub struct RegistryScorer {
    registry: Arc<dyn RegistryPort>,
    reference: ModelRef,
    loaded: Option<Arc<ScoringModel>>,
}

impl std::fmt::Debug for RegistryScorer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryScorer").field("reference", &self.reference.to_string()).finish()
    }
}

impl RegistryScorer {
    /// Follows `reference` in `registry`.
    pub fn new(registry: Arc<dyn RegistryPort>, reference: ModelRef) -> Self {
        RegistryScorer { registry, reference, loaded: None }
    }
}

impl Scorer for RegistryScorer {
    fn current(&mut self) -> Result<Arc<ScoringModel>> {
        let info = self.registry.version_info(&self.reference.name, &self.reference.selector)?;
        if let Some(loaded) = &self.loaded {
            if loaded.version == info.version.0 {
                return Ok(loaded.clone());
            }
        }
        let model =
            self.registry.load_ref(&ModelRef { name: info.name.clone(), selector: Selector::Version(info.version) })?;
        let loaded =
            Arc::new(ScoringModel { name: info.name, version: info.version.0, sha256: Some(info.sha256), model });
        self.loaded = Some(loaded.clone());
        Ok(loaded)
    }
}

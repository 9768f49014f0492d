//! `ModelServerPort`: where predictions are computed.

use std::sync::Arc;

use crate::{Model, Predictions, Probabilities, Records, Result};

/// What a model server can do, so callers and the catalog need not probe by trial.
///
/// More capabilities will be added, so the struct is built with [`new`](Self::new) (new
/// fields start at their conservative value) and its fields are then set as needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerCapabilities {
    /// `predict_proba` is available for classifiers.
    pub predict_proba: bool,
    /// Predictions are computed in this process (no network hop).
    pub in_process: bool,
}

impl ServerCapabilities {
    /// Capabilities with `predict_proba` and `in_process` as given.
    pub const fn new(predict_proba: bool, in_process: bool) -> Self {
        ServerCapabilities { predict_proba, in_process }
    }
}

/// Serves predictions from one loaded model.
///
/// # Contract
///
/// - Before any [`load`](Self::load), `predict` and `predict_proba` fail with
///   [`WharfError::NoModelLoaded`](crate::WharfError::NoModelLoaded).
/// - `load` replaces the current model atomically: a concurrent `predict` sees either the
///   old model or the new one, never a mix, and never fails because of the swap.
/// - Records are checked against the loaded model's signature before scoring; a missing,
///   extra or mistyped field is a [`SchemaMismatch`](crate::WharfError::SchemaMismatch)
///   naming the field, never a panic.
/// - `predict` returns exactly one prediction per record, in order; `predict_proba` one row
///   per record whose columns follow the model's `classes` and sum to 1.
/// - `predict_proba` on a model without probabilities is
///   [`Unsupported`](crate::WharfError::Unsupported).
pub trait ModelServerPort: Send + Sync {
    /// A short name for reports (`local`, `bentoml`).
    fn name(&self) -> &str;
    /// Loads (or swaps in) a model.
    fn load(&self, model: Model) -> Result<()>;
    /// The loaded model, if any.
    fn model(&self) -> Option<Arc<Model>>;
    /// One prediction per record.
    fn predict(&self, records: &Records<'_>) -> Result<Predictions>;
    /// Class probabilities per record.
    fn predict_proba(&self, records: &Records<'_>) -> Result<Probabilities>;
    /// What this server supports.
    fn capabilities(&self) -> ServerCapabilities;
    /// True when the server can answer predictions now (a model is loaded and any backend
    /// is reachable).
    fn ready(&self) -> bool {
        self.model().is_some()
    }
}

/// Conveniences for every [`ModelServerPort`].
pub trait ModelServerExt: ModelServerPort {
    /// Loads a model and proves it works by predicting its own bundled sample input.
    fn load_checked(&self, model: Model) -> Result<()> {
        let sample = model.metadata().sample_input.clone();
        self.load(model)?;
        if !sample.is_empty() {
            self.predict(&Records::Rows(sample))?;
        }
        Ok(())
    }
}

impl<T: ModelServerPort + ?Sized> ModelServerExt for T {}

macro_rules! forward_model_server {
    ($($wrapper:ident),*) => {$(
        impl<T: ModelServerPort + ?Sized> ModelServerPort for $wrapper<T> {
            fn name(&self) -> &str { (**self).name() }
            fn load(&self, model: Model) -> Result<()> { (**self).load(model) }
            fn model(&self) -> Option<Arc<Model>> { (**self).model() }
            fn predict(&self, records: &Records) -> Result<Predictions> { (**self).predict(records) }
            fn predict_proba(&self, records: &Records) -> Result<Probabilities> { (**self).predict_proba(records) }
            fn capabilities(&self) -> ServerCapabilities { (**self).capabilities() }
            fn ready(&self) -> bool { (**self).ready() }
        }
    )*};
}
forward_model_server!(Arc, Box);

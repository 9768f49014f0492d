//! `LocalModelServer`: predicts in this process.

use std::sync::{Arc, RwLock};

use crate::ports::model_server::{ModelServerPort, ServerCapabilities};
use crate::{Model, Predictions, Probabilities, Records, Result, WharfError};

/// Holds one model and predicts in-process. The model sits behind an `Arc` swapped under a
/// short write lock, so `load` never waits for a long batch and a batch never sees a
/// half-swapped model: each predict clones the `Arc` and scores without holding the lock.
#[derive(Debug, Default)]
pub struct LocalModelServer {
    model: RwLock<Option<Arc<Model>>>,
}

impl LocalModelServer {
    /// An empty server.
    pub fn new() -> Self {
        Self::default()
    }

    /// A server with `model` loaded.
    pub fn with_model(model: Model) -> Self {
        LocalModelServer { model: RwLock::new(Some(Arc::new(model))) }
    }

    fn current(&self) -> Result<Arc<Model>> {
        // A poisoned lock only means another thread panicked while holding it; the Option
        // inside is always a whole value, so it is safe to keep using.
        let guard = self.model.read().unwrap_or_else(|e| e.into_inner());
        guard.clone().ok_or(WharfError::NoModelLoaded)
    }
}

impl ModelServerPort for LocalModelServer {
    fn name(&self) -> &str {
        "local"
    }

    fn load(&self, model: Model) -> Result<()> {
        let model = Arc::new(model);
        *self.model.write().unwrap_or_else(|e| e.into_inner()) = Some(model);
        Ok(())
    }

    fn model(&self) -> Option<Arc<Model>> {
        self.current().ok()
    }

    fn predict(&self, records: &Records) -> Result<Predictions> {
        self.current()?.predict(records)
    }

    fn predict_proba(&self, records: &Records) -> Result<Probabilities> {
        self.current()?.predict_proba(records)
    }

    fn capabilities(&self) -> ServerCapabilities {
        ServerCapabilities { predict_proba: true, in_process: true }
    }
}

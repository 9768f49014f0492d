//! Which model server scores a micro-batch: a fixed one, or one serving whatever version a
//! registry alias points at when the batch starts.
//!
//! The job never scores by itself: it hands each batch to [`wharf_core::score`] on the
//! server a [`ModelSource`] gives it, so the stream scores exactly as `wharf serve` and
//! `wharf score` do, on whichever backend the container's [`ModelServers`] factory makes.

use std::sync::Arc;

use wharf_core::{
    LocalModelServer, Model, ModelRef, ModelServerPort, ModelServers, Records, RegistryExt, RegistryPort, Result,
    Scored, Selector, WharfError,
};

use crate::OnError;

/// A model server with the registry identity every output record reports.
#[derive(Clone)]
pub struct ScoringModel {
    /// The registered name.
    pub name: String,
    /// The registered version.
    pub version: u64,
    /// SHA-256 of the artifact, for lineage.
    pub sha256: Option<String>,
    /// The model the server holds: its signature says which fields a record needs, its
    /// metadata goes to lineage.
    pub model: Arc<Model>,
    /// Where the records are scored (in process, or a proxy to a remote service).
    pub server: Arc<dyn ModelServerPort>,
}

impl std::fmt::Debug for ScoringModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScoringModel")
            .field("name", &self.name)
            .field("version", &self.version)
            .field("server", &self.server.name())
            .finish_non_exhaustive()
    }
}

impl ScoringModel {
    /// `model`, known by `name` and `version`, scored in this process.
    pub fn new(name: impl Into<String>, version: u64, model: Model) -> Self {
        let model = Arc::new(model);
        let server = Arc::new(LocalModelServer::with_model((*model).clone()));
        ScoringModel { name: name.into(), version, sha256: None, model, server }
    }

    /// The model `server` holds, known by `name` and `version`; a server without a model is
    /// [`WharfError::NoModelLoaded`].
    pub fn on(name: impl Into<String>, version: u64, server: Arc<dyn ModelServerPort>) -> Result<Self> {
        let model = server.model().ok_or(WharfError::NoModelLoaded)?;
        Ok(ScoringModel { name: name.into(), version, sha256: None, model, server })
    }

    /// Scores `records` through the one scoring path ([`wharf_core::score`]).
    pub fn score(&self, records: &Records, on_error: OnError) -> Result<Scored> {
        wharf_core::score(self.server.as_ref(), records, on_error)
    }
}

/// Hands the job the model server for each micro-batch.
///
/// [`current`](Self::current) is called once at the start of every micro-batch, so a new
/// model version takes effect at a batch boundary and never inside a batch.
pub trait ModelSource: Send {
    /// The server (and the version it serves) to score the next micro-batch with.
    fn current(&mut self) -> Result<Arc<ScoringModel>>;
}

/// Always the same model server.
#[derive(Debug, Clone)]
pub struct FixedModel(Arc<ScoringModel>);

impl FixedModel {
    /// Scores with `model`.
    pub fn new(model: ScoringModel) -> Self {
        FixedModel(Arc::new(model))
    }
}

impl ModelSource for FixedModel {
    fn current(&mut self) -> Result<Arc<ScoringModel>> {
        Ok(self.0.clone())
    }
}

/// Resolves a model reference (`activity@champion`) in a registry at every batch boundary
/// and, only when the version changed, loads it into a new server from the factory. Moving
/// the alias while the stream runs therefore switches the model from the next micro-batch
/// on, and each output record names the version that scored it.
pub struct RegistryModel {
    registry: Arc<dyn RegistryPort>,
    reference: ModelRef,
    servers: ModelServers,
    loaded: Option<Arc<ScoringModel>>,
}

impl std::fmt::Debug for RegistryModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryModel")
            .field("reference", &self.reference.to_string())
            .field("servers", &self.servers)
            .finish_non_exhaustive()
    }
}

impl RegistryModel {
    /// Follows `reference` in `registry`, serving each version on a server from `servers`
    /// (the container's factory, so `serving.backend` decides where records are scored).
    pub fn new(registry: Arc<dyn RegistryPort>, reference: ModelRef, servers: ModelServers) -> Self {
        RegistryModel { registry, reference, servers, loaded: None }
    }
}

impl ModelSource for RegistryModel {
    fn current(&mut self) -> Result<Arc<ScoringModel>> {
        let info = self.registry.version_info(&self.reference.name, &self.reference.selector)?;
        if let Some(loaded) = &self.loaded {
            if loaded.version == info.version.0 {
                return Ok(loaded.clone());
            }
        }
        let model =
            self.registry.load_ref(&ModelRef { name: info.name.clone(), selector: Selector::Version(info.version) })?;
        let mut loaded = ScoringModel::on(info.name, info.version.0, self.servers.serve(model)?)?;
        loaded.sha256 = Some(info.sha256);
        let loaded = Arc::new(loaded);
        self.loaded = Some(loaded.clone());
        Ok(loaded)
    }
}

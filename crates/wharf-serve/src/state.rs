//! The served models: one slot per `--model` reference, each holding the loaded version.
//!
//! A slot's current [`Loaded`] sits behind an `Arc` swapped under a short write lock. A
//! request clones the `Arc` once and uses that version to the end, so a reload never makes a
//! request fail or see the model of one version with the version number of another.

use std::sync::{Arc, RwLock};
use std::time::Instant;

use wharf_core::{
    score, Model, ModelRef, ModelServerPort, ModelServers, OnError, Predictions, Records, RegistryPort, Selector,
    Version, VersionInfo, WharfError,
};

/// One loaded, self-tested model version.
pub struct Loaded {
    /// The version number.
    pub version: Version,
    /// What the registry says about it (aliases, created-at).
    pub info: VersionInfo,
    /// The model's metadata and signature, kept here so the catalog needs no predict call.
    pub model: Arc<Model>,
    /// Where predictions are computed.
    pub server: Arc<dyn ModelServerPort>,
    /// Seconds it took to load and self-test.
    pub load_seconds: f64,
    /// This version's live drift window against its training profile, made on first use
    /// (`None` when it has no usable profile). It lives and goes with the version, so a
    /// reload starts the new version's window afresh.
    pub(crate) drift: std::sync::OnceLock<Option<crate::watch::Watched>>,
    /// The constant parts of this version's classifier answers, written on first use.
    pub(crate) answer_head: std::sync::OnceLock<crate::routes::AnswerHead>,
}

impl std::fmt::Debug for Loaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loaded").field("name", &self.info.name).field("version", &self.version).finish()
    }
}

/// One served reference (`lead@champion`).
#[derive(Debug)]
pub struct Slot {
    /// What was asked for; a reload resolves it again.
    pub selector: Selector,
    current: RwLock<Arc<Loaded>>,
}

impl Slot {
    fn new(selector: Selector, loaded: Loaded) -> Self {
        Slot { selector, current: RwLock::new(Arc::new(loaded)) }
    }

    /// The version serving now.
    pub fn current(&self) -> Arc<Loaded> {
        // A poisoned lock only means a panic elsewhere; the Arc inside is always whole.
        self.current.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Swaps in a new version.
    pub fn swap(&self, loaded: Loaded) -> Arc<Loaded> {
        std::mem::replace(&mut *self.current.write().unwrap_or_else(|e| e.into_inner()), Arc::new(loaded))
    }

    /// True when this slot answers `?version=want` (a number or an alias).
    fn answers(&self, want: &str) -> bool {
        let loaded = self.current();
        match Selector::parse(want) {
            Ok(Selector::Version(v)) => loaded.version == v,
            Ok(Selector::Latest) => self.selector == Selector::Latest,
            Ok(Selector::Alias(a)) => self.selector == Selector::Alias(a.clone()) || loaded.info.aliases.contains(&a),
            _ => false,
        }
    }
}

/// A model name and the versions served under it; the first is the default.
#[derive(Debug)]
pub struct ServedModel {
    /// Registered name.
    pub name: String,
    /// Served references, in the order given.
    pub slots: Vec<Slot>,
    /// The slot that shadows the default one (see [`ModelsBuilder::shadow`]).
    pub shadow: Option<usize>,
}

impl ServedModel {
    /// The slot answering `version` (the default slot when `None`).
    pub fn slot(&self, version: Option<&str>) -> Option<&Slot> {
        match version.map(str::trim).filter(|v| !v.is_empty()) {
            None => self.slots.first(),
            Some(v) => self.slots.iter().find(|s| s.answers(v)),
        }
    }
}

/// Proves a model works the way it will be served: its bundled sample input goes through
/// the one scoring path ([`wharf_core::score`]) and must come back with one finite answer per
/// row (and, for a classifier, finite probabilities). A model that cannot is refused at start
/// and reported not ready afterwards. Scoring as requests are scored means a remote server
/// is asked exactly what a request would ask it, once per check.
pub fn self_test(model: &Model, server: &dyn ModelServerPort) -> Result<(), WharfError> {
    let sample = &model.metadata().sample_input;
    if sample.is_empty() {
        return Err(WharfError::invalid("sample_input", "the model bundles no sample input to test itself with"));
    }
    let scored = score(server, &Records::Rows(sample.clone()), OnError::Fail)?;
    if scored.predictions.len() != sample.len() {
        return Err(WharfError::invalid(
            "sample_input",
            format!("{} rows gave {} predictions", sample.len(), scored.predictions.len()),
        ));
    }
    if let Predictions::Values(values) = &scored.predictions {
        if values.iter().any(|v| !v.is_finite()) {
            return Err(WharfError::invalid("sample_input", "a prediction is not a finite number"));
        }
    }
    if let Some(proba) = &scored.probabilities {
        if proba.values.iter().any(|p| !p.is_finite()) {
            return Err(WharfError::invalid("sample_input", "a probability is not a finite number"));
        }
    }
    Ok(())
}

/// Loads `name` at `selector` from the registry into a server of its own, made by `servers`
/// (the container's factory: in process, or a proxy to a remote service), and self-tests it.
/// The version is resolved once and loaded by number, so an alias moving meanwhile cannot
/// pair one version's number with another's model.
pub fn load_from_registry(
    registry: &dyn RegistryPort,
    servers: &ModelServers,
    name: &str,
    selector: &Selector,
) -> Result<Loaded, WharfError> {
    let started = Instant::now();
    let info = registry.version_info(name, selector)?;
    let model = registry.load_selected(name, &Selector::Version(info.version))?;
    let server = servers.serve(model.clone())?;
    let model = Arc::new(model);
    self_test(&model, server.as_ref())
        .map_err(|e| WharfError::invalid(format!("{name}@{selector}"), format!("self-test failed: {e}")))?;
    Ok(Loaded {
        version: info.version,
        info,
        model,
        server,
        load_seconds: started.elapsed().as_secs_f64(),
        drift: Default::default(),
        answer_head: Default::default(),
    })
}

/// Everything the handlers share.
pub struct Models {
    /// Served models in the order they were given.
    pub models: Vec<ServedModel>,
    /// Where reloads come from (none when models were handed in directly).
    pub registry: Option<Arc<dyn RegistryPort>>,
    /// Makes the server of every version loaded from the registry, at start and on reload.
    pub servers: ModelServers,
}

impl std::fmt::Debug for Models {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Models").field("models", &self.models).field("backend", &self.servers.backend()).finish()
    }
}

impl Models {
    /// The model called `name`.
    pub fn get(&self, name: &str) -> Option<&ServedModel> {
        self.models.iter().find(|m| m.name == name)
    }
}

/// Builds the set of served models.
#[derive(Default)]
pub struct ModelsBuilder {
    registry: Option<Arc<dyn RegistryPort>>,
    servers: ModelServers,
    refs: Vec<ModelRef>,
    shadows: Vec<ModelRef>,
    direct: Vec<(String, Selector, Loaded)>,
}

impl ModelsBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// The registry models are loaded (and reloaded) from.
    pub fn registry(mut self, registry: Arc<dyn RegistryPort>) -> Self {
        self.registry = Some(registry);
        self
    }

    /// The factory that makes one model server per loaded version (`Wharf::model_servers()`,
    /// which follows `serving.backend`). Without it, models are served in process
    /// ([`ModelServers::local`]).
    pub fn servers(mut self, servers: ModelServers) -> Self {
        self.servers = servers;
        self
    }

    /// Serves `reference` from the registry.
    pub fn model(mut self, reference: ModelRef) -> Self {
        self.refs.push(reference);
        self
    }

    /// Shadows the default version of `reference`'s model with `reference` (a challenger):
    /// every request the default version answers is also scored by the challenger, after
    /// the answer and off the request path, and both answers are written to the shadow log.
    /// The challenger is served as one more version of the model, so it reloads like the
    /// others. One shadow per model; the model must also be served by [`model`](Self::model).
    pub fn shadow(mut self, reference: ModelRef) -> Self {
        self.shadows.push(reference);
        self
    }

    /// Serves a model through a model server of the caller's choosing (a remote adapter, a
    /// decorator). It is self-tested like any other; a reload loads the registry's version
    /// into a server from [`servers`](Self::servers), like every other reload.
    pub fn model_server(
        mut self,
        info: VersionInfo,
        model: Model,
        server: Arc<dyn ModelServerPort>,
    ) -> Result<Self, WharfError> {
        let model = Arc::new(model);
        self_test(&model, server.as_ref())
            .map_err(|e| WharfError::invalid(info.name.clone(), format!("self-test failed: {e}")))?;
        let selector = Selector::Version(info.version);
        let name = info.name.clone();
        self.direct.push((
            name,
            selector,
            Loaded {
                version: info.version,
                info,
                model,
                server,
                load_seconds: 0.0,
                drift: Default::default(),
                answer_head: Default::default(),
            },
        ));
        Ok(self)
    }

    /// Loads and self-tests every model. Blocking: it reads the registry.
    ///
    /// Fails when a reference cannot be loaded, a model fails its self-test, the same
    /// version of a name is asked for twice, or a shadow has no default version to follow,
    /// is its own champion, or predicts something else than it.
    pub fn build(self) -> Result<Models, WharfError> {
        let mut loaded: Vec<(String, Selector, Loaded, bool)> =
            self.direct.into_iter().map(|(name, selector, slot)| (name, selector, slot, false)).collect();
        let served_refs = self.refs.iter().map(|r| (r, false));
        for (reference, shadow) in served_refs.chain(self.shadows.iter().map(|r| (r, true))) {
            let registry = self
                .registry
                .as_deref()
                .ok_or_else(|| WharfError::Wiring("models given by reference need a registry".into()))?;
            let slot = load_from_registry(registry, &self.servers, &reference.name, &reference.selector)?;
            loaded.push((reference.name.clone(), reference.selector.clone(), slot, shadow));
        }
        if loaded.is_empty() {
            return Err(WharfError::invalid("model", "nothing to serve: give at least one model"));
        }
        let mut models: Vec<ServedModel> = Vec::new();
        for (name, selector, slot, shadow) in loaded {
            let served = match models.iter_mut().position(|m| m.name == name) {
                Some(i) => &mut models[i],
                None if shadow => {
                    return Err(WharfError::invalid(
                        format!("{name}@{selector}"),
                        format!("a shadow follows a served version: serve '{name}' too (its first version answers)"),
                    ))
                }
                None => {
                    models.push(ServedModel { name: name.clone(), slots: Vec::new(), shadow: None });
                    let last = models.len() - 1;
                    &mut models[last]
                }
            };
            if shadow {
                check_shadow(served, &name, &selector, &slot)?;
                served.shadow = Some(served.slots.len());
            }
            if served.slots.iter().any(|s| s.current().version == slot.version) {
                return Err(WharfError::invalid(
                    format!("{name}@{selector}"),
                    format!("version {} of '{name}' is already served", slot.version),
                ));
            }
            served.slots.push(Slot::new(selector, slot));
        }
        Ok(Models { models, registry: self.registry, servers: self.servers })
    }
}

/// A challenger can shadow `served`'s default version: it is the model's only shadow and
/// predicts the same thing (task and classes), so both answers compare row by row.
fn check_shadow(served: &ServedModel, name: &str, selector: &Selector, challenger: &Loaded) -> Result<(), WharfError> {
    let at = format!("{name}@{selector}");
    if served.shadow.is_some() {
        return Err(WharfError::invalid(at, format!("'{name}' already has a shadow: one challenger per model")));
    }
    let champion = served.slots.first().map(Slot::current);
    let Some(champion) = champion else {
        return Err(WharfError::invalid(at, "nothing to shadow"));
    };
    if champion.version == challenger.version {
        return Err(WharfError::invalid(
            at,
            format!("version {} is the default version itself: a shadow must be another version", challenger.version),
        ));
    }
    let (a, b) = (&champion.model, &challenger.model);
    if a.task() != b.task() || a.classes() != b.classes() {
        return Err(WharfError::invalid(
            at,
            format!(
                "version {} does not predict what version {} predicts (task or classes differ)",
                challenger.version, champion.version
            ),
        ));
    }
    Ok(())
}

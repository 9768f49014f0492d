//! The container: one implementation per port, chosen in two passes.
//!
//! Pass one takes whatever the caller registered in code. Pass two fills each port still
//! empty from the configuration, using the [`AdapterCatalog`] of adapters compiled in. So a
//! caller's own adapter always wins, whatever order things were registered in (the Python
//! original lets a framework default win silently), and asking the configuration for an
//! adapter whose Cargo feature is missing fails here, at build time, with
//! [`WharfError::AdapterUnavailable`].

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use crate::adapters::file_lineage::FileLineage;
use crate::adapters::file_registry::FileRegistry;
use crate::adapters::file_tracker::FileTracker;
use crate::adapters::local_server::LocalModelServer;
use crate::adapters::noop::{NoOpLineage, NoOpTracker};
use crate::config::WharfConfig;
use crate::ports::lineage::LineagePort;
use crate::ports::model_server::ModelServerPort;
use crate::ports::registry::RegistryPort;
use crate::ports::tracker::TrackerPort;
use crate::{Model, Result, WharfError};

/// Builds a port implementation from the configuration.
pub type Factory<P> = Arc<dyn Fn(&WharfConfig) -> Result<Arc<P>> + Send + Sync>;

/// The four ports, to say which one an adapter serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Port {
    /// [`ModelServerPort`], configured under `[serving]`.
    ModelServer,
    /// [`TrackerPort`], configured under `[tracking]`.
    Tracker,
    /// [`RegistryPort`], configured under `[registry]`.
    Registry,
    /// [`LineagePort`], configured under `[lineage]`.
    Lineage,
}

impl Port {
    /// Every port, in report order.
    pub const ALL: [Port; 4] = [Port::ModelServer, Port::Tracker, Port::Registry, Port::Lineage];

    /// The configuration section selecting its backend (`tracking`).
    pub fn section(self) -> &'static str {
        match self {
            Port::ModelServer => "serving",
            Port::Tracker => "tracking",
            Port::Registry => "registry",
            Port::Lineage => "lineage",
        }
    }

    /// Its name in reports (`model_server`).
    pub fn name(self) -> &'static str {
        match self {
            Port::ModelServer => "model_server",
            Port::Tracker => "tracker",
            Port::Registry => "registry",
            Port::Lineage => "lineage",
        }
    }
}

/// An adapter's configuration table: where it sits and its defaults, so `wharf doctor` can
/// show the settings in force and not only the ones written down.
#[derive(Debug, Clone, Copy)]
pub struct ConfigTable {
    /// The dotted key of the table (`tracking.mlflow`).
    pub key: &'static str,
    /// The adapter's defaults, as a table.
    pub defaults: fn() -> toml::Table,
}

impl ConfigTable {
    /// The table at `key`, with `C::default()` as its defaults.
    pub fn new<C: serde::Serialize + Default>(key: &'static str) -> Self {
        fn defaults_of<C: serde::Serialize + Default>() -> toml::Table {
            toml::Table::try_from(C::default()).unwrap_or_default()
        }
        ConfigTable { key, defaults: defaults_of::<C> }
    }
}

/// One selectable backend of a port.
#[non_exhaustive]
pub struct AdapterEntry<P: ?Sized> {
    /// The name configuration uses (`mlflow`).
    pub backend: &'static str,
    /// The Cargo feature that compiles it in, if it is optional.
    pub feature: Option<&'static str>,
    /// How to build it; `None` when its feature is not compiled in.
    pub factory: Option<Factory<P>>,
}

impl<P: ?Sized> AdapterEntry<P> {
    /// A backend built by `factory`.
    pub fn new(backend: &'static str, factory: Factory<P>) -> Self {
        AdapterEntry { backend, feature: None, factory: Some(factory) }
    }
    /// Notes the Cargo feature that compiles it in (shown by `wharf doctor`).
    pub fn feature(mut self, feature: &'static str) -> Self {
        self.feature = Some(feature);
        self
    }
}

impl<P: ?Sized> Clone for AdapterEntry<P> {
    fn clone(&self) -> Self {
        AdapterEntry { backend: self.backend, feature: self.feature, factory: self.factory.clone() }
    }
}

/// Every backend each port can be configured with, available or not.
///
/// [`defaults`](Self::defaults) holds the built-in backends only. Optional adapters are
/// added by the crate that knows which are compiled in (the `wharf` facade's
/// `install_adapters`): each adapter crate registers its own entries and configuration
/// tables, and a missing feature leaves a [`not_compiled_in`](Self::not_compiled_in) entry,
/// so asking for it names the feature.
#[derive(Clone)]
pub struct AdapterCatalog {
    model_servers: Vec<AdapterEntry<dyn ModelServerPort>>,
    trackers: Vec<AdapterEntry<dyn TrackerPort>>,
    registries: Vec<AdapterEntry<dyn RegistryPort>>,
    lineages: Vec<AdapterEntry<dyn LineagePort>>,
    tables: Vec<ConfigTable>,
}

fn upsert<P: ?Sized>(entries: &mut Vec<AdapterEntry<P>>, mut entry: AdapterEntry<P>) {
    match entries.iter_mut().find(|e| e.backend == entry.backend) {
        Some(slot) => {
            // Replacing a placeholder keeps the feature it named.
            entry.feature = entry.feature.or(slot.feature);
            *slot = entry
        }
        None => entries.push(entry),
    }
}

fn unavailable<P: ?Sized>(backend: &'static str, feature: &'static str) -> AdapterEntry<P> {
    AdapterEntry { backend, feature: Some(feature), factory: None }
}

impl AdapterCatalog {
    /// The backends every build has, and no others: `local`, `file` and `noop`.
    pub fn defaults() -> Self {
        AdapterCatalog {
            model_servers: vec![AdapterEntry::new(
                "local",
                Arc::new(|_| Ok(Arc::new(LocalModelServer::new()) as Arc<dyn ModelServerPort>)),
            )],
            trackers: vec![
                AdapterEntry::new(
                    "file",
                    Arc::new(|c| Ok(Arc::new(FileTracker::new(&c.tracking.dir)) as Arc<dyn TrackerPort>)),
                ),
                AdapterEntry::new("noop", Arc::new(|_| Ok(Arc::new(NoOpTracker::new()) as Arc<dyn TrackerPort>))),
            ],
            registries: vec![AdapterEntry::new(
                "file",
                Arc::new(|c| Ok(Arc::new(FileRegistry::new(&c.registry.dir)) as Arc<dyn RegistryPort>)),
            )],
            lineages: vec![
                AdapterEntry::new(
                    "file",
                    Arc::new(|c| Ok(Arc::new(FileLineage::new(&c.lineage.path)) as Arc<dyn LineagePort>)),
                ),
                AdapterEntry::new("noop", Arc::new(|_| Ok(Arc::new(NoOpLineage::new()) as Arc<dyn LineagePort>))),
            ],
            tables: Vec::new(),
        }
    }

    /// Adds or replaces a model-server backend.
    pub fn model_server(&mut self, backend: &'static str, factory: Factory<dyn ModelServerPort>) -> &mut Self {
        self.add_model_server(AdapterEntry::new(backend, factory))
    }
    /// Adds or replaces a tracker backend.
    pub fn tracker(&mut self, backend: &'static str, factory: Factory<dyn TrackerPort>) -> &mut Self {
        self.add_tracker(AdapterEntry::new(backend, factory))
    }
    /// Adds or replaces a registry backend.
    pub fn registry(&mut self, backend: &'static str, factory: Factory<dyn RegistryPort>) -> &mut Self {
        self.add_registry(AdapterEntry::new(backend, factory))
    }
    /// Adds or replaces a lineage backend.
    pub fn lineage(&mut self, backend: &'static str, factory: Factory<dyn LineagePort>) -> &mut Self {
        self.add_lineage(AdapterEntry::new(backend, factory))
    }
    /// Adds or replaces a model-server entry.
    pub fn add_model_server(&mut self, entry: AdapterEntry<dyn ModelServerPort>) -> &mut Self {
        upsert(&mut self.model_servers, entry);
        self
    }
    /// Adds or replaces a tracker entry.
    pub fn add_tracker(&mut self, entry: AdapterEntry<dyn TrackerPort>) -> &mut Self {
        upsert(&mut self.trackers, entry);
        self
    }
    /// Adds or replaces a registry entry.
    pub fn add_registry(&mut self, entry: AdapterEntry<dyn RegistryPort>) -> &mut Self {
        upsert(&mut self.registries, entry);
        self
    }
    /// Adds or replaces a lineage entry.
    pub fn add_lineage(&mut self, entry: AdapterEntry<dyn LineagePort>) -> &mut Self {
        upsert(&mut self.lineages, entry);
        self
    }

    /// Records that `backend` of `port` exists but its Cargo `feature` is not compiled in:
    /// configuring it fails with [`WharfError::AdapterUnavailable`] naming the feature, and
    /// its table (`[tracking.mlflow]`) is accepted and left alone.
    pub fn not_compiled_in(&mut self, port: Port, backend: &'static str, feature: &'static str) -> &mut Self {
        match port {
            Port::ModelServer => upsert(&mut self.model_servers, unavailable(backend, feature)),
            Port::Tracker => upsert(&mut self.trackers, unavailable(backend, feature)),
            Port::Registry => upsert(&mut self.registries, unavailable(backend, feature)),
            Port::Lineage => upsert(&mut self.lineages, unavailable(backend, feature)),
        }
        self
    }

    /// Declares an adapter's configuration table and its defaults.
    pub fn config_table(&mut self, table: ConfigTable) -> &mut Self {
        self.tables.retain(|t| t.key != table.key);
        self.tables.push(table);
        self
    }

    /// The backend names of `port`, available or not.
    pub fn backends(&self, port: Port) -> Vec<&'static str> {
        fn names<P: ?Sized>(e: &[AdapterEntry<P>]) -> Vec<&'static str> {
            e.iter().map(|e| e.backend).collect()
        }
        match port {
            Port::ModelServer => names(&self.model_servers),
            Port::Tracker => names(&self.trackers),
            Port::Registry => names(&self.registries),
            Port::Lineage => names(&self.lineages),
        }
    }

    /// Checks that every adapter table in `config` belongs to a backend of its section's
    /// port (`[tracking.mlfow]` is a typo, not a table to keep quietly).
    pub fn check_tables(&self, config: &WharfConfig) -> Result<()> {
        for port in Port::ALL {
            let section = port.section();
            let tables = config.sections().into_iter().find(|(s, _)| *s == section).map(|(_, t)| t);
            let known = self.backends(port);
            for name in tables.into_iter().flat_map(|t| t.keys()) {
                let own = port == Port::ModelServer && crate::config::SERVING_TABLES.contains(&name.as_str());
                if !known.contains(&name.as_str()) && !own {
                    return Err(WharfError::config(
                        format!("{section}.{name}"),
                        format!("no adapter '{name}' serves [{section}] (known: {})", known.join(", ")),
                    ));
                }
            }
        }
        Ok(())
    }

    /// `config` with every declared adapter table filled in with its defaults (the values
    /// set win): the settings in force, for `wharf doctor`.
    pub fn effective_config(&self, config: &WharfConfig) -> Result<WharfConfig> {
        let mut out = config.clone();
        for table in &self.tables {
            let mut merged = (table.defaults)();
            if let Some(set) = config.adapter_table(table.key) {
                crate::config::merge(&mut merged, set.clone());
            }
            out.set_adapter(table.key, &merged)?;
        }
        Ok(out)
    }

    /// `(port, backend, feature, compiled in)` for every entry, for `wharf doctor`.
    pub fn entries(&self) -> Vec<(&'static str, &'static str, Option<&'static str>, bool)> {
        fn rows<P: ?Sized>(
            port: &'static str,
            e: &[AdapterEntry<P>],
        ) -> Vec<(&'static str, &'static str, Option<&'static str>, bool)> {
            e.iter().map(|e| (port, e.backend, e.feature, e.factory.is_some())).collect()
        }
        let mut out = rows("model_server", &self.model_servers);
        out.extend(rows("tracker", &self.trackers));
        out.extend(rows("registry", &self.registries));
        out.extend(rows("lineage", &self.lineages));
        out
    }
}

/// Makes one model server per loaded model, of the backend the configuration chose.
///
/// A model server holds one model, so a job that scores several models (a server with many
/// routes, a runner with many versions, a pipeline with isolated sessions) needs several
/// servers. Jobs ask this factory instead of naming `LocalModelServer`, so
/// `serving.backend = "bentoml"` moves every one of them at once.
#[derive(Clone)]
pub struct ModelServers {
    backend: String,
    make: Arc<dyn Fn() -> Result<Arc<dyn ModelServerPort>> + Send + Sync>,
}

impl fmt::Debug for ModelServers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModelServers").field("backend", &self.backend).finish_non_exhaustive()
    }
}

impl ModelServers {
    /// A factory named `backend` that calls `make` for each new server.
    pub fn new(
        backend: impl Into<String>,
        make: impl Fn() -> Result<Arc<dyn ModelServerPort>> + Send + Sync + 'static,
    ) -> Self {
        ModelServers { backend: backend.into(), make: Arc::new(make) }
    }

    /// In-process servers ([`LocalModelServer`]): the default, and what a library user who
    /// builds no container gets.
    pub fn local() -> Self {
        ModelServers::new("local", || Ok(Arc::new(LocalModelServer::new()) as Arc<dyn ModelServerPort>))
    }

    /// The backend name (`local`, `bentoml`).
    pub fn backend(&self) -> &str {
        &self.backend
    }

    /// A new, empty server.
    pub fn create(&self) -> Result<Arc<dyn ModelServerPort>> {
        (self.make)()
    }

    /// A new server with `model` loaded.
    pub fn serve(&self, model: Model) -> Result<Arc<dyn ModelServerPort>> {
        let server = self.create()?;
        server.load(model)?;
        Ok(server)
    }
}

impl Default for ModelServers {
    fn default() -> Self {
        ModelServers::local()
    }
}

/// Why a port got the implementation it has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// The caller registered it in code.
    Registered,
    /// The configuration key selected it.
    Configured {
        /// The key (`tracking.backend`).
        key: &'static str,
        /// Its value.
        value: String,
    },
}

/// One line of [`Container::report`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// `model_server`, `tracker`, `registry` or `lineage`.
    pub port: &'static str,
    /// The chosen implementation's `name()`.
    pub implementation: String,
    /// Why.
    pub reason: Reason,
}

/// What the container chose, per port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// One choice per port.
    pub choices: Vec<Choice>,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in &self.choices {
            let why = match &c.reason {
                Reason::Registered => "registered in code".to_string(),
                Reason::Configured { key, value } => format!("{key} = \"{value}\""),
            };
            writeln!(f, "{:<13} {:<12} {}", c.port, c.implementation, why)?;
        }
        Ok(())
    }
}

/// The assembled ports plus any shared services the caller added.
#[derive(Clone)]
pub struct Container {
    model_server: Arc<dyn ModelServerPort>,
    model_servers: ModelServers,
    tracker: Arc<dyn TrackerPort>,
    registry: Arc<dyn RegistryPort>,
    lineage: Arc<dyn LineagePort>,
    services: HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
    report: Report,
}

impl fmt::Debug for Container {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Container").field("report", &self.report).finish_non_exhaustive()
    }
}

impl Container {
    /// A builder with nothing registered.
    pub fn builder() -> ContainerBuilder {
        ContainerBuilder::default()
    }
    /// The model server.
    pub fn model_server(&self) -> &Arc<dyn ModelServerPort> {
        &self.model_server
    }
    /// The factory every scoring job gets its model servers from, one per loaded model.
    pub fn model_servers(&self) -> &ModelServers {
        &self.model_servers
    }
    /// The tracker.
    pub fn tracker(&self) -> &Arc<dyn TrackerPort> {
        &self.tracker
    }
    /// The registry.
    pub fn registry(&self) -> &Arc<dyn RegistryPort> {
        &self.registry
    }
    /// The lineage sink.
    pub fn lineage(&self) -> &Arc<dyn LineagePort> {
        &self.lineage
    }
    /// A shared service registered with [`ContainerBuilder::service`].
    pub fn service<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        self.services.get(&TypeId::of::<T>()).cloned().and_then(|s| s.downcast::<T>().ok())
    }
    /// What was chosen per port, and why.
    pub fn report(&self) -> &Report {
        &self.report
    }
}

/// Collects the caller's registrations, then [`build`](Self::build)s.
#[derive(Default)]
pub struct ContainerBuilder {
    model_server: Option<Arc<dyn ModelServerPort>>,
    model_servers: Option<ModelServers>,
    tracker: Option<Arc<dyn TrackerPort>>,
    registry: Option<Arc<dyn RegistryPort>>,
    lineage: Option<Arc<dyn LineagePort>>,
    services: HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
}

impl ContainerBuilder {
    /// Uses `server` whatever the configuration says.
    pub fn model_server(mut self, server: impl ModelServerPort + 'static) -> Self {
        self.model_server = Some(Arc::new(server));
        self
    }
    /// Makes every job's model servers with `factory`, whatever the configuration says.
    pub fn model_servers(mut self, factory: ModelServers) -> Self {
        self.model_servers = Some(factory);
        self
    }
    /// Uses `tracker` whatever the configuration says.
    pub fn tracker(mut self, tracker: impl TrackerPort + 'static) -> Self {
        self.tracker = Some(Arc::new(tracker));
        self
    }
    /// Uses `registry` whatever the configuration says.
    pub fn registry(mut self, registry: impl RegistryPort + 'static) -> Self {
        self.registry = Some(Arc::new(registry));
        self
    }
    /// Uses `lineage` whatever the configuration says.
    pub fn lineage(mut self, lineage: impl LineagePort + 'static) -> Self {
        self.lineage = Some(Arc::new(lineage));
        self
    }
    /// Adds a shared service, one per type; registering a type twice is a wiring error at
    /// build time rather than a silent replacement.
    pub fn service<T: Any + Send + Sync>(mut self, service: T) -> Self {
        let previous = self.services.insert(TypeId::of::<T>(), Arc::new(service));
        if previous.is_some() {
            self.services
                .insert(TypeId::of::<DuplicateService>(), Arc::new(DuplicateService(std::any::type_name::<T>())));
        }
        self
    }

    /// Pass two: fills every port not registered from `config` and `catalog`.
    pub fn build(self, config: &WharfConfig, catalog: &AdapterCatalog) -> Result<Container> {
        if let Some(dup) = self.services.get(&TypeId::of::<DuplicateService>()) {
            let name = dup.downcast_ref::<DuplicateService>().map(|d| d.0).unwrap_or("?");
            return Err(WharfError::Wiring(format!("service {name} registered twice")));
        }
        catalog.check_tables(config)?;
        let mut choices = Vec::new();
        let model_servers = match self.model_servers.clone() {
            Some(factory) => factory,
            None => server_factory(config, catalog)?,
        };
        let model_server = resolve(
            "model_server",
            self.model_server,
            "serving.backend",
            &config.serving.backend,
            &catalog.model_servers,
            config,
            |p| p.name().to_string(),
            &mut choices,
        )?;
        let tracker = resolve(
            "tracker",
            self.tracker,
            "tracking.backend",
            &config.tracking.backend,
            &catalog.trackers,
            config,
            |p| p.name().to_string(),
            &mut choices,
        )?;
        let registry = resolve(
            "registry",
            self.registry,
            "registry.backend",
            &config.registry.backend,
            &catalog.registries,
            config,
            |p| p.name().to_string(),
            &mut choices,
        )?;
        let lineage = resolve(
            "lineage",
            self.lineage,
            "lineage.backend",
            &config.lineage.backend,
            &catalog.lineages,
            config,
            |p| p.name().to_string(),
            &mut choices,
        )?;
        Ok(Container {
            model_server,
            model_servers,
            tracker,
            registry,
            lineage,
            services: self.services,
            report: Report { choices },
        })
    }
}

/// The configured backend's factory as a [`ModelServers`]; the same errors as building the
/// single server (an unknown backend, a feature not compiled in), raised at build time.
fn server_factory(config: &WharfConfig, catalog: &AdapterCatalog) -> Result<ModelServers> {
    let backend = config.serving.backend.as_str();
    let entry = find_entry("serving.backend", backend, &catalog.model_servers)?;
    let factory = entry.factory.clone().ok_or_else(|| unavailable_error(backend, entry))?;
    let config = config.clone();
    Ok(ModelServers::new(backend, move || factory(&config)))
}

fn find_entry<'a, P: ?Sized>(
    key: &'static str,
    backend: &str,
    entries: &'a [AdapterEntry<P>],
) -> Result<&'a AdapterEntry<P>> {
    entries.iter().find(|e| e.backend == backend).ok_or_else(|| {
        let known: Vec<&str> = entries.iter().map(|e| e.backend).collect();
        WharfError::config(key, format!("unknown backend '{backend}' (known: {})", known.join(", ")))
    })
}

fn unavailable_error<P: ?Sized>(backend: &str, entry: &AdapterEntry<P>) -> WharfError {
    WharfError::AdapterUnavailable {
        adapter: backend.to_string(),
        feature: entry.feature.unwrap_or(backend).to_string(),
    }
}

/// Marker stored when a service type is registered twice.
struct DuplicateService(&'static str);

#[allow(clippy::too_many_arguments)]
fn resolve<P: ?Sized>(
    port: &'static str,
    registered: Option<Arc<P>>,
    key: &'static str,
    backend: &str,
    entries: &[AdapterEntry<P>],
    config: &WharfConfig,
    name: impl Fn(&P) -> String,
    choices: &mut Vec<Choice>,
) -> Result<Arc<P>> {
    if let Some(chosen) = registered {
        choices.push(Choice { port, implementation: name(&chosen), reason: Reason::Registered });
        return Ok(chosen);
    }
    let entry = find_entry(key, backend, entries)?;
    let factory = entry.factory.as_ref().ok_or_else(|| unavailable_error(backend, entry))?;
    let chosen = factory(config)?;
    choices.push(Choice {
        port,
        implementation: name(&chosen),
        reason: Reason::Configured { key, value: backend.to_string() },
    });
    Ok(chosen)
}

//! # Wharf
//!
//! Carry a model from training code to production. Train on linfa or smartcore, track the
//! run, register the model, serve predictions and emit lineage through four ports —
//! [`ModelServerPort`], [`TrackerPort`], [`RegistryPort`], [`LineagePort`] — whose
//! implementations come from configuration. The defaults need no server; MLflow, BentoML and
//! OpenLineage adapters come with Cargo features, so moving from a laptop to a platform is a
//! configuration change, not a rewrite.
//!
//! ```no_run
//! use wharf::prelude::*;
//!
//! # fn main() -> wharf::Result<()> {
//! let ctx = Wharf::from_config(WharfConfig::load()?)?;
//! let data = wharf::datasets::lead_scoring();
//! let model = Trainer::logistic_regression().fit(&data)?;
//! let run = ctx.tracker().start_run(Some("baseline"))?;
//! run.log_params(Trainer::logistic_regression().params())?;
//! run.log_model(&model, "lead")?;
//! run.finish()?;
//! let v = ctx.registry().register(&model, "lead")?;
//! ctx.registry().set_alias("lead", "champion", &v)?;
//! let server = ctx.model_server();
//! server.load(ctx.registry().load("lead", "champion")?)?;
//! let proba = server.predict_proba(&Records::Rows(model.metadata().sample_input.clone()))?;
//! ctx.lineage().emit(&LineageEvent::new("train-lead").input("bundled:lead_scoring").output("registry:lead/1"))?;
//! # Ok(()) }
//! ```
//!
//! # Cargo features
//!
//! Each adapter is compiled in only with its feature, so a program links only the network
//! code it uses. Configuration then selects it; naming an adapter whose feature is off fails
//! when the context is built, with `WharfError::AdapterUnavailable` naming the feature.
//!
//! | feature | adds | selected by |
//! |---|---|---|
//! | `mlflow` | `mlflow::MlflowTracker`, `mlflow::MlflowRegistry` | `tracking.backend = "mlflow"`, `registry.backend = "mlflow"` |
//! | `openlineage` | `openlineage::OpenLineageEmitter` | `lineage.backend = "openlineage"` |
//! | `bentoml` | `bentoml::BentoMlModelServer` | `serving.backend = "bentoml"` |
//! | `serve` | `serve`: HTTP serving of registered models | `wharf serve`, or your own program |
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

use std::sync::Arc;

pub use wharf_core::*;

pub mod jobs;

/// The OpenLineage adapter (RunEvent model, emitter, spool replay).
#[cfg(feature = "openlineage")]
#[cfg_attr(docsrs, doc(cfg(feature = "openlineage")))]
pub use wharf_openlineage as openlineage;

/// The MLflow adapters: tracking and the model registry over MLflow's REST API.
#[cfg(feature = "mlflow")]
#[cfg_attr(docsrs, doc(cfg(feature = "mlflow")))]
pub use wharf_mlflow as mlflow;

/// The BentoML adapter: a model server that forwards predictions to a BentoML service.
#[cfg(feature = "bentoml")]
#[cfg_attr(docsrs, doc(cfg(feature = "bentoml")))]
pub use wharf_bentoml as bentoml;

/// HTTP serving of registered models (health, catalog, predict, score, OpenAPI, metrics).
#[cfg(feature = "serve")]
#[cfg_attr(docsrs, doc(cfg(feature = "serve")))]
pub use wharf_serve as serve;

/// The README's and the guide's Rust examples, compiled and run as doctests so they cannot
/// drift from the code.
///
/// One item per page of `docs/src/SUMMARY.md`, except the pages on crates this one does not
/// depend on (pipelines, the runner, batch and streaming scoring): those crates include them
/// the same way. A page whose blocks need an adapter is included only with that adapter's
/// feature; the tests run with `--all-features`.
#[cfg(doctest)]
pub mod guide {
    #[doc = include_str!("../../../README.md")]
    pub struct Readme;
    #[doc = include_str!("../../../docs/src/quickstart.md")]
    pub struct Quickstart;
    #[doc = include_str!("../../../docs/src/concepts.md")]
    pub struct Concepts;
    #[doc = include_str!("../../../docs/src/ports.md")]
    pub struct Ports;
    #[doc = include_str!("../../../docs/src/port-model-server.md")]
    pub struct PortModelServer;
    #[cfg(feature = "bentoml")]
    #[doc = include_str!("../../../docs/src/bentoml.md")]
    pub struct Bentoml;
    #[doc = include_str!("../../../docs/src/port-tracker.md")]
    pub struct PortTracker;
    #[cfg(feature = "mlflow")]
    #[doc = include_str!("../../../docs/src/mlflow.md")]
    pub struct Mlflow;
    #[doc = include_str!("../../../docs/src/port-registry.md")]
    pub struct PortRegistry;
    #[cfg(feature = "openlineage")]
    #[doc = include_str!("../../../docs/src/port-lineage.md")]
    pub struct PortLineage;
    #[cfg(feature = "openlineage")]
    #[doc = include_str!("../../../docs/src/lineage.md")]
    pub struct Lineage;
    #[cfg(feature = "serve")]
    #[doc = include_str!("../../../docs/src/serving.md")]
    pub struct Serving;
    #[doc = include_str!("../../../docs/src/scoring.md")]
    pub struct Scoring;
    #[doc = include_str!("../../../docs/src/examples.md")]
    pub struct Examples;
    #[doc = include_str!("../../../docs/src/python.md")]
    pub struct Python;
    #[doc = include_str!("../../../docs/src/security.md")]
    pub struct Security;
    #[doc = include_str!("../../../docs/src/performance.md")]
    pub struct Performance;
    #[doc = include_str!("../../../docs/src/migrating.md")]
    pub struct Migrating;
    #[doc = include_str!("../../../docs/src/cli.md")]
    pub struct Cli;
    #[doc = include_str!("../../../docs/src/configuration.md")]
    pub struct Configuration;
    #[doc = include_str!("../../../docs/src/contributing.md")]
    pub struct Contributing;
}

/// Everything a typical program needs, in one import.
pub mod prelude {
    pub use crate::jobs::{TrainJob, TrainOutcome};
    pub use crate::Wharf;
    pub use wharf_core::{
        datasets, evaluate, Algorithm, Dataset, LineageEvent, LineagePort, Model, ModelRef, ModelServerExt,
        ModelServerPort, Predictions, Probabilities, Records, RegistryExt, RegistryPort, Selector, TrackerExt,
        TrackerPort, Trainer, Version, WharfConfig, WharfError,
    };
}

/// The Cargo features of this crate and whether this build has them.
pub fn features() -> Vec<(&'static str, bool)> {
    vec![
        ("mlflow", cfg!(feature = "mlflow")),
        ("openlineage", cfg!(feature = "openlineage")),
        ("bentoml", cfg!(feature = "bentoml")),
        ("serve", cfg!(feature = "serve")),
    ]
}

/// Every adapter this build can configure: the defaults plus, one line per Cargo feature,
/// the optional adapters compiled in.
pub fn adapter_catalog() -> AdapterCatalog {
    #[allow(unused_mut)]
    let mut catalog = AdapterCatalog::defaults();
    // Features declared ahead of their adapters answer with a clear error rather than the
    // misleading "enable the feature" one. Each line is replaced by the real factory when
    // its adapter crate lands.
    #[cfg(feature = "mlflow")]
    {
        catalog.tracker(
            "mlflow",
            Arc::new(|c| {
                Ok(Arc::new(wharf_mlflow::MlflowTracker::from_config(&c.tracking.mlflow)?) as Arc<dyn TrackerPort>)
            }),
        );
        catalog.registry(
            "mlflow",
            Arc::new(|c| Ok(Arc::new(wharf_mlflow::MlflowRegistry::from_config(c)?) as Arc<dyn RegistryPort>)),
        );
    }
    #[cfg(feature = "openlineage")]
    catalog.lineage(
        "openlineage",
        Arc::new(|c| Ok(Arc::new(wharf_openlineage::OpenLineageEmitter::from_config(&c.lineage.openlineage)?))),
    );
    #[cfg(feature = "bentoml")]
    catalog.model_server(
        "bentoml",
        Arc::new(|c| {
            Ok(Arc::new(wharf_bentoml::BentoMlModelServer::from_config(&c.serving.bentoml)?)
                as Arc<dyn ModelServerPort>)
        }),
    );
    catalog
}

#[allow(dead_code)]
fn not_yet(adapter: &str) -> WharfError {
    WharfError::Unsupported(format!("the '{adapter}' adapter is declared but not part of this release yet"))
}

/// The application context: the configuration and the container built from it.
#[derive(Debug, Clone)]
pub struct Wharf {
    config: WharfConfig,
    container: Container,
}

impl Wharf {
    /// Builds the context from `config` with the adapters this build has.
    pub fn from_config(config: WharfConfig) -> Result<Wharf> {
        Wharf::builder().build(config)
    }

    /// Loads `wharf.toml` and `WHARF_*` from the current directory and environment, then
    /// builds the context.
    pub fn load() -> Result<Wharf> {
        Wharf::from_config(WharfConfig::load()?)
    }

    /// A builder for registering your own adapters; they win over the configuration.
    pub fn builder() -> WharfBuilder {
        WharfBuilder { container: Container::builder() }
    }

    /// The configuration in force.
    pub fn config(&self) -> &WharfConfig {
        &self.config
    }
    /// The container.
    pub fn container(&self) -> &Container {
        &self.container
    }
    /// The model server.
    pub fn model_server(&self) -> &Arc<dyn ModelServerPort> {
        self.container.model_server()
    }
    /// The factory every scoring job gets its model servers from (one per loaded model).
    pub fn model_servers(&self) -> &wharf_core::ModelServers {
        self.container.model_servers()
    }
    /// The tracker.
    pub fn tracker(&self) -> &Arc<dyn TrackerPort> {
        self.container.tracker()
    }
    /// The registry.
    pub fn registry(&self) -> &Arc<dyn RegistryPort> {
        self.container.registry()
    }
    /// The lineage sink.
    pub fn lineage(&self) -> &Arc<dyn LineagePort> {
        self.container.lineage()
    }
    /// What the container chose per port, and why.
    pub fn report(&self) -> &Report {
        self.container.report()
    }
}

/// Registers the caller's adapters before the configuration fills the rest.
pub struct WharfBuilder {
    container: ContainerBuilder,
}

impl WharfBuilder {
    /// Uses `server` as the model server.
    pub fn model_server(mut self, server: impl ModelServerPort + 'static) -> Self {
        self.container = self.container.model_server(server);
        self
    }
    /// Makes every job's model servers with `factory`.
    pub fn model_servers(mut self, factory: wharf_core::ModelServers) -> Self {
        self.container = self.container.model_servers(factory);
        self
    }
    /// Uses `tracker` as the tracker.
    pub fn tracker(mut self, tracker: impl TrackerPort + 'static) -> Self {
        self.container = self.container.tracker(tracker);
        self
    }
    /// Uses `registry` as the registry.
    pub fn registry(mut self, registry: impl RegistryPort + 'static) -> Self {
        self.container = self.container.registry(registry);
        self
    }
    /// Uses `lineage` as the lineage sink.
    pub fn lineage(mut self, lineage: impl LineagePort + 'static) -> Self {
        self.container = self.container.lineage(lineage);
        self
    }
    /// Adds a shared service.
    pub fn service<T: std::any::Any + Send + Sync>(mut self, service: T) -> Self {
        self.container = self.container.service(service);
        self
    }
    /// Builds the context: registered adapters first, then the configuration.
    pub fn build(self, config: WharfConfig) -> Result<Wharf> {
        let container = self.container.build(&config, &adapter_catalog())?;
        Ok(Wharf { config, container })
    }
}

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
// Named, so they win over the glob above (`library_versions` adds the learning libraries').
/// Wharf's built-in estimators, training, datasets and metrics (the `wharf-ml` crate).
pub use wharf_ml as ml;
pub use wharf_ml::{
    datasets, evaluate, library_versions, metrics, read_csv, Algorithm, ClassWeight, CsvOptions, Dataset,
    FittedEstimator, Iteration, MaxFeatures, Metrics, RegressionLoss, Trainer,
};
/// Model cards: one self-contained HTML file per model with its summary, signature,
/// metrics and plots (the `wharf-report` crate). [`card::registered_card`] builds one for a
/// registered version through the ports.
pub use wharf_report as report;
/// Tree ensembles imported from XGBoost and LightGBM (the `wharf-trees` crate).
pub use wharf_trees as trees;

pub mod import {
    //! Importing models fitted elsewhere, as ordinary [`Model`](crate::Model)s that save, register, serve and
    //! score like Wharf's own.
    //!
    //! - scikit-learn JSON exports: [`sklearn_logistic_json`], [`sklearn_forest_json`] (from
    //!   `wharf-ml`);
    //! - XGBoost JSON (`booster.save_model("model.json")`): [`xgboost`], [`xgboost_with`];
    //! - LightGBM text (`booster.save_model("model.txt")`): [`lightgbm`], [`lightgbm_with`];
    //! - ONNX (scikit-learn through skl2onnx: `to_onnx(model, X[:1])`): [`onnx`],
    //!   [`onnx_with`]. The graph is compiled onto Wharf's tree evaluator and linear kernel;
    //!   its feature columns are `f0`, `f1`, … unless [`ImportOptions`] names them, and its
    //!   classes are the file's labels (which [`ImportOptions`] may replace one for one).
    //!
    //! An XGBoost or LightGBM model's signature comes from the file: its feature names (or
    //! `f0`, `f1`, … / `Column_0`, …), their count, the task and the number of classes. Neither
    //! format stores class labels, so they are `0`, `1`, … unless [`ImportOptions`] gives them;
    //! it can also rename the features. A count that disagrees with the file is an
    //! [`InvalidInput`](crate::WharfError::InvalidInput) error at `features` or `classes`.
    //!
    //! ```no_run
    //! use wharf::import::{xgboost_with, ImportOptions};
    //!
    //! let model = xgboost_with("churn.json", &ImportOptions::new().classes(["stays", "churns"]))?;
    //! model.save("churn.wharf")?;
    //! # Ok::<(), wharf::WharfError>(())
    //! ```

    pub use wharf_ml::import::*;
    pub use wharf_trees::model::{lightgbm, lightgbm_with, onnx, onnx_with, xgboost, xgboost_with, ImportOptions};
}

/// Registers the decoders of every model kind this build knows (the built-in estimators of
/// `wharf-ml`, and the imported tree ensembles and ONNX pipelines of `wharf-trees`), so their
/// artifacts load.
/// Idempotent. Building a [`Wharf`] calls it, and so do the `wharf` command and the other
/// binaries; call it yourself before `Model::load` in a program that never builds one.
pub fn register_kinds() {
    wharf_ml::register();
    wharf_trees::register();
}

pub mod card;
pub mod jobs;
pub mod promote;
pub mod tune;
/// Model selection: cross-validation, hyper-parameter search, the promotion comparison.
pub use wharf_ml::select;

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

/// Everything a typical program needs, in one import.
pub mod prelude {
    pub use crate::jobs::{TrainJob, TrainOutcome};
    pub use crate::Wharf;
    pub use wharf_core::{
        LineageEvent, LineagePort, Model, ModelRef, ModelServerExt, ModelServerPort, Predictions, Probabilities,
        Records, RegistryExt, RegistryPort, Selector, TrackerExt, TrackerPort, Version, WharfConfig, WharfError,
    };
    pub use wharf_ml::{datasets, evaluate, Algorithm, Dataset, Trainer};
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

/// Declares every optional adapter once: its Cargo feature, its crate, and the backends it
/// adds per port. With the feature, the crate's own `install` registers its factories and
/// configuration tables; without it, each backend gets a placeholder that names the feature,
/// so `tracking.backend = "mlflow"` in a build without MLflow says which feature to enable.
macro_rules! optional_adapters {
    ($($feature:literal => $krate:ident { $($port:ident: $backend:literal),+ $(,)? }),* $(,)?) => {
        /// Adds every optional adapter to `catalog`: the ones compiled in, and a
        /// not-compiled-in entry naming the feature for the others. The one list of adapters:
        /// [`adapter_catalog`] and other binaries (the Ballista scheduler) use it.
        pub fn install_adapters(catalog: &mut AdapterCatalog) {
            $(
                #[cfg(feature = $feature)]
                $krate::install(catalog);
                #[cfg(not(feature = $feature))]
                { $(catalog.not_compiled_in(Port::$port, $backend, $feature);)+ }
            )*
        }
    };
}

optional_adapters! {
    "mlflow" => wharf_mlflow { Tracker: "mlflow", Registry: "mlflow" },
    "openlineage" => wharf_openlineage { Lineage: "openlineage" },
    "bentoml" => wharf_bentoml { ModelServer: "bentoml" },
}

/// Every adapter this build can configure: the built-in ones plus [`install_adapters`].
pub fn adapter_catalog() -> AdapterCatalog {
    let mut catalog = AdapterCatalog::defaults();
    install_adapters(&mut catalog);
    catalog
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
        register_kinds();
        let container = self.container.build(&config, &adapter_catalog())?;
        Ok(Wharf { config, container })
    }
}

//! Wharf's MLflow adapter: [`MlflowTracker`] (a `TrackerPort`) and [`MlflowRegistry`] (a
//! `RegistryPort`) over MLflow's REST API, through the blocking [`client::MlflowClient`].
//!
//! Select them with configuration alone (`[tracking] backend = "mlflow"`,
//! `[tracking.mlflow] uri = "http://127.0.0.1:5000"`, `[registry] backend = "mlflow"`) and the
//! `wharf` crate's `mlflow` feature. Verified against MLflow 3.17.2 with its default proxied
//! artifact store (`--serve-artifacts`).
//!
//! When the tracking server is unreachable the tracker spools its calls (unless
//! `strict = true`) through the core's spool-and-replay decorator, the same one lineage
//! uses; [`replay`] sends them later (`wharf runs sync`). See [`spool`].
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

use std::sync::Arc;

use wharf_core::{AdapterCatalog, AdapterEntry, ConfigTable, RegistryPort, TrackerPort};

pub mod client;
pub mod config;
mod error;
mod legacy_spool;
pub mod mlmodel;
pub mod registry;
mod source;
pub mod spool;
pub mod tracker;

pub use client::{Auth, MlflowClient, RetryPolicy, MAX_DOWNLOAD_BYTES};
pub use config::MlflowConfig;
pub use registry::{MlflowRegistry, INFO_TAG, MAX_MLMODEL_BYTES, SHA256_TAG};
pub use spool::{replay, replay_config, spooled_tracker, MlflowReplay, ReplayReport, SpooledMlflowTracker};
pub use tracker::{MlflowTracker, PARENT_RUN_ID_TAG};

/// The name configuration selects this adapter by (`tracking.backend = "mlflow"`).
pub const BACKEND: &str = "mlflow";
/// The `wharf` facade's Cargo feature that compiles this adapter in.
pub const FEATURE: &str = "mlflow";

/// Registers the MLflow tracker and registry, and their tables, in `catalog`.
pub fn install(catalog: &mut AdapterCatalog) {
    catalog.add_tracker(
        AdapterEntry::new(
            BACKEND,
            Arc::new(|c| Ok(Arc::new(spooled_tracker(&MlflowConfig::tracking(c)?)?) as Arc<dyn TrackerPort>)),
        )
        .feature(FEATURE),
    );
    catalog.add_registry(
        AdapterEntry::new(
            BACKEND,
            Arc::new(|c| Ok(Arc::new(MlflowRegistry::from_config(c)?) as Arc<dyn RegistryPort>)),
        )
        .feature(FEATURE),
    );
    catalog.config_table(ConfigTable::new::<MlflowConfig>(config::TRACKING_KEY));
    catalog.config_table(ConfigTable::new::<MlflowConfig>(config::REGISTRY_KEY));
}

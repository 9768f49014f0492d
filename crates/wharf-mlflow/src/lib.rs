//! Wharf's MLflow adapter: [`MlflowTracker`] (a `TrackerPort`) and [`MlflowRegistry`] (a
//! `RegistryPort`) over MLflow's REST API, through the blocking [`client::MlflowClient`].
//!
//! Select them with configuration alone (`[tracking] backend = "mlflow"`,
//! `[tracking.mlflow] uri = "http://127.0.0.1:5000"`, `[registry] backend = "mlflow"`) and the
//! `wharf` crate's `mlflow` feature. Verified against MLflow 3.17.2 with its default proxied
//! artifact store (`--serve-artifacts`).
//!
//! When the tracking server is unreachable the tracker spools runs to a local directory
//! (unless `strict = true`); [`replay`] sends them later (`wharf runs sync`).
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

pub mod client;
mod error;
pub mod mlmodel;
pub mod registry;
pub mod spool;
pub mod tracker;

pub use client::{Auth, MlflowClient, RetryPolicy};
pub use registry::MlflowRegistry;
pub use spool::{replay, replay_config, ReplayReport};
pub use tracker::{FailurePolicy, MlflowTracker, PARENT_RUN_ID_TAG};

//! # wharf-core
//!
//! The heart of Wharf: the four ports (`ModelServerPort`, `TrackerPort`, `RegistryPort`,
//! `LineagePort`), their server-free defaults, models with signatures and their safe
//! artifact format, training on linfa and smartcore, metrics, configuration and the
//! container. Users depend on the `wharf` facade, which re-exports all of this and adds the
//! adapters behind Cargo features.
//!
//! This crate does no networking and runs no async runtime; adapters that talk to servers
//! live in their own crates.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

pub mod adapters;
pub mod artifact;
pub mod config;
#[cfg(feature = "conformance")]
#[cfg_attr(docsrs, doc(cfg(feature = "conformance")))]
pub mod conformance;
pub mod container;
mod dataset;
mod error;
mod estimator;
pub mod fsutil;
pub mod import;
pub mod metrics;
mod model;
pub mod ports;
mod preprocess;
mod records;
pub mod retry;
pub mod scoring;
mod signature;
pub mod spool;

pub use adapters::file_lineage::FileLineage;
pub use adapters::file_registry::FileRegistry;
pub use adapters::file_tracker::FileTracker;
pub use adapters::local_server::LocalModelServer;
pub use adapters::noop::{NoOpLineage, NoOpTracker};
pub use config::WharfConfig;
pub use container::{
    AdapterCatalog, AdapterEntry, ConfigTable, Container, ContainerBuilder, ModelServers, Port, Report,
};
pub use dataset::{datasets, read_csv, CsvOptions, Dataset};
pub use error::{ArtifactError, Result, WharfError};
pub use metrics::{evaluate, Metrics};
pub use model::{library_versions, Algorithm, Model, ModelMetadata, Predictions, Probabilities, Trainer};
pub use ports::lineage::{
    LineageEvent, LineageEventType, LineagePort, ModelFacts, ParentRun, SchemaField, SourceLocation,
};
pub use ports::model_server::{ModelServerExt, ModelServerPort, ServerCapabilities};
pub use ports::registry::{ModelRef, RegisteredModel, RegistryExt, RegistryPort, Selector, Version, VersionInfo};
pub use ports::tracker::{MetricPoint, RunHandle, RunInfo, RunRecord, RunStatus, TrackerExt, TrackerPort};
pub use records::{format_number, json_type, Column, Frame, Records, Row};
pub use scoring::{score, OnError, Reject, Scored};
pub use signature::{Feature, FeatureKind, Signature, Task};

//! # wharf-core
//!
//! The heart of Wharf: the four ports (`ModelServerPort`, `TrackerPort`, `RegistryPort`,
//! `LineagePort`), their server-free defaults, records and signatures, models as metadata
//! plus a pluggable [`kind`] and their safe artifact format, the one scoring path,
//! configuration and the container. Users depend on the `wharf` facade, which re-exports all
//! of this, the `wharf-ml` estimators and training, and the adapters behind Cargo features.
//!
//! This crate does no networking, runs no async runtime and trains nothing: estimators,
//! training, preprocessing, datasets and metrics live in `wharf-ml`, adapters that talk to
//! servers in their own crates.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

pub mod adapters;
pub mod artifact;
pub mod bounded;
pub mod config;
#[cfg(feature = "conformance")]
#[cfg_attr(docsrs, doc(cfg(feature = "conformance")))]
pub mod conformance;
pub mod container;
pub mod drift;
mod error;
pub mod fsutil;
pub mod jsonl;
pub mod kind;
mod metadata;
mod model;
pub mod ports;
mod prediction;
pub mod predlog;
mod records;
pub mod redact;
pub mod retry;
pub mod scoring;
pub mod shadow;
mod signature;
pub mod spool;

pub use adapters::file_lineage::FileLineage;
pub use adapters::file_registry::FileRegistry;
pub use adapters::file_tracker::FileTracker;
pub use adapters::local_server::LocalModelServer;
pub use adapters::noop::{NoOpLineage, NoOpTracker};
pub use artifact::library_versions;
pub use config::WharfConfig;
pub use container::{
    AdapterCatalog, AdapterEntry, ConfigTable, Container, ContainerBuilder, ModelServers, Port, Report,
};
pub use error::{ArtifactError, Result, WharfError};
pub use kind::{KindDecoder, ModelKind};
pub use metadata::ModelMetadata;
pub use model::Model;
pub use ports::lineage::{
    LineageEvent, LineageEventType, LineageLog, LineagePort, ModelFacts, ParentRun, SchemaField, SourceLocation,
};
pub use ports::model_server::{ModelServerExt, ModelServerPort, ServerCapabilities};
pub use ports::registry::{
    ModelRef, RegisteredModel, RegistryExt, RegistryPort, Selector, Unreadable, Version, VersionInfo,
};
pub use ports::tracker::{
    DatasetInput, MetricPoint, RunHandle, RunInfo, RunQuery, RunRecord, RunStatus, TrackerExt, TrackerPort,
};
pub use prediction::{Predictions, Probabilities};
pub use records::{
    check_unique_columns, excerpt, format_number, json_type, Column, Frame, Records, Row, EXCERPT_CHARS,
};
pub use scoring::{score, OnError, Reject, Scored};
pub use signature::{Feature, FeatureKind, Signature, Task};

//! Wharf adapter: [`BentoMlModelServer`], a `ModelServerPort` that forwards predictions to a
//! running BentoML service, so models already served by BentoML sit behind Wharf's ports,
//! pipelines and HTTP API unchanged.
//!
//! # Configuration (`[serving.bentoml]`)
//!
//! `url` (required), `api` (`predict`), `proba_api` (`predict_proba`, empty for none),
//! `input_field` (`input_data`), `payload` (`matrix` or `records`), `timeout_ms`,
//! `max_batch`, `auth_header` (`Name: value`), `retries`, `breaker_failures`,
//! `breaker_cooldown_ms`.
//!
//! # Failure policy
//!
//! - Records are validated against the loaded model's signature before any request:
//!   [`SchemaMismatch`](wharf_core::WharfError::SchemaMismatch) as from a local model.
//! - BentoML 400/422 (pydantic `detail`) → [`InvalidInput`](wharf_core::WharfError::InvalidInput)
//!   quoting BentoML's message; every other error status, timeouts and unreachable services →
//!   [`Backend`](wharf_core::WharfError::Backend) naming the endpoint and status.
//! - Connection errors and 503 are retried `retries` times with a short jittered backoff
//!   (honouring `Retry-After`, within twice `timeout_ms` in all); timeouts,
//!   4xx and other 5xx are not (they would not change, or would pile up remote work).
//! - After `breaker_failures` consecutive connection failures (attempts, retries included)
//!   calls fail fast for `breaker_cooldown_ms` without touching the network; the next call
//!   after the cool-down tries again.
#![cfg_attr(docsrs, feature(doc_cfg))]

use std::sync::Arc;

use wharf_core::{AdapterCatalog, AdapterEntry, ConfigTable, ModelServerPort};

mod client;
pub mod config;
mod error;
mod payload;
mod server;

pub use config::{BentoMlConfig, BentoMlPayload};
pub use server::BentoMlModelServer;

/// The name configuration selects this adapter by (`serving.backend = "bentoml"`).
pub const BACKEND: &str = "bentoml";
/// The `wharf` facade's Cargo feature that compiles this adapter in.
pub const FEATURE: &str = "bentoml";

/// Registers the BentoML model server and its table in `catalog`.
pub fn install(catalog: &mut AdapterCatalog) {
    catalog.add_model_server(
        AdapterEntry::new(
            BACKEND,
            Arc::new(|c| {
                Ok(Arc::new(BentoMlModelServer::from_config(&BentoMlConfig::from_wharf(c)?)?)
                    as Arc<dyn ModelServerPort>)
            }),
        )
        .feature(FEATURE),
    );
    catalog.config_table(ConfigTable::new::<BentoMlConfig>(config::KEY));
}

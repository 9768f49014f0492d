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

mod client;
mod error;
mod payload;
mod server;

pub use server::BentoMlModelServer;

//! # wharf-pipeline
//!
//! Scoring pipelines over records: items flow through stages in batches, land in named
//! output buckets, and every failure follows a declared policy.
//!
//! ## The model
//!
//! - An [`Item`] is one piece of work: a stable `id`, a JSON `payload` that stages replace,
//!   and `meta` that stages add to.
//! - A [`RunContext`] goes with every run: a session id (generated when none is given, so
//!   never missing) and metadata every stage can read, such as the `model_id` to score with.
//! - A [`Pipeline`] is stages in order, then optionally a [`Router`]. A stage is a per-item
//!   function ([`Stage::map`], [`Stage::step`]) or a batch function ([`Stage::batch`],
//!   [`Stage::batch_each`]) that must return one result per item, in order: a wrong count is
//!   a batch failure, never a silent drop. The router sends each item to the first bucket
//!   whose predicate matches, else to `default`; each bucket may have stages of its own
//!   ([`PipelineBuilder::then_in`]).
//! - Each stage has a [`Policy`] for failures (an error, a panic, a timeout): `Halt`
//!   (default; the caller gets the completed batches), `Skip` (drop and count), `Mark`
//!   (keep, flagged), `Route(bucket)` (send with its error to a bucket), `Replace`, or
//!   `Retry` then one of those.
//! - A run cuts its input into batches ([`Batching`]: by size, weight or key) and processes
//!   them on worker threads, at most `max_in_flight` at a time: the input is read no faster
//!   than results are taken (backpressure). Results come back in input order, all at once
//!   ([`Pipeline::run`]) or as a stream ([`Pipeline::stream`]). Each run, batch and stage
//!   gets a `tracing` span, and each stage has counters ([`StageStats`]). A pipeline given a
//!   `LineagePort` ([`PipelineBuilder::lineage`]) reports each run's start and its end.
//!
//! ## Scoring
//!
//! [`scoring`] builds an ML scoring pipe on these parts: enrich (run's `model_id`,
//! [`FeatureCache`] lookup) → featurize (numeric fields sorted by name, written through to
//! the cache) → predict (the session's model: prediction, confidence, probabilities) →
//! route by confidence. The predict stage scores through `wharf_core::score`, the scoring
//! path every Wharf job shares. A [`Session`] owns its models, each in a model server of its
//! own from a [`ModelServers`](wharf_core::ModelServers) factory (the container's, with
//! [`Sessions::with_model_servers`]), so sessions scoring at once never see each other's
//! models.
//!
//! ```
//! use serde_json::json;
//! use wharf_pipeline::{Pipeline, Policy, Router, RunContext, Stage};
//!
//! let pipeline = Pipeline::builder("demo")
//!     .stage(Stage::map("double", |item, _| Ok(json!(item.payload.as_i64().unwrap_or(0) * 2))))
//!     .router(Router::new("size").route("big", |item, _| item.payload.as_i64() >= Some(10)))
//!     .output("big")
//!     .on_error("*", Policy::Skip)
//!     .build()?;
//! let out = pipeline.run([json!(1), json!(5), json!(7)], RunContext::new())?;
//! assert_eq!(out.payloads("big"), [&json!(10), &json!(14)]);
//! assert_eq!(out.payloads("default"), [&json!(2)]);
//! # Ok::<(), wharf_pipeline::PipelineError>(())
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

mod batching;
mod cache;
mod context;
mod definition;
pub mod demo;
mod engine;
mod error;
mod item;
mod output;
mod pipeline;
mod policy;
pub mod scoring;
mod session;
mod stage;
mod stream;

pub use batching::{Batching, KeyFn, WeightFn};
pub use cache::{CacheError, CacheSnapshot, FeatureCache};
pub use context::RunContext;
pub use definition::OutputOrder;
pub use error::{PipelineError, StageError, StageErrorKind};
pub use item::{Item, Meta};
pub use output::{RunOutput, RunStats, StageStats};
pub use pipeline::{Pipeline, PipelineBuilder, ANY_STAGE, DEFAULT_BUCKET};
pub use policy::{Policy, ReplaceFn};
pub use session::{Session, SessionError, SessionStats, Sessions, TrainRecord, TrainReport};
pub use stage::{BatchFn, Outcome, Predicate, Router, Stage, StepFn};
pub use stream::{RoutedItem, RunStream};

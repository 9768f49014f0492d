//! # wharf-pipeline
//!
//! Scoring pipelines: items, stages, routing, error policies, batching with backpressure, a feature cache and isolated sessions.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

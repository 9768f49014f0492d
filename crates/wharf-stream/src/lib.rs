//! # wharf-stream
//!
//! Streaming scoring: micro-batches from stdin or a growing file, checkpoints, event-time windows.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

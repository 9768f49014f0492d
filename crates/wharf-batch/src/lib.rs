//! # wharf-batch
//!
//! Batch scoring of CSV, Parquet and JSON-lines files, streamed in chunks.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

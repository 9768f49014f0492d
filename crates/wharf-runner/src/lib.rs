//! # wharf-runner
//!
//! The multi-model runner: many models and summary models over records, results stored per record (SQLite, PostgreSQL).
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

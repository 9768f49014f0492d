//! Wharf's OpenLineage adapter: every [`LineageEvent`](wharf_core::LineageEvent) becomes a
//! spec-valid OpenLineage 2-0-2 `RunEvent`, sent over HTTP to a receiver (Marquez, a
//! data catalog), appended to a JSON-lines file, or printed.
//!
//! - [`event`]: the RunEvent model (serde types).
//! - [`facets`]: the facets Wharf fills (dataset `schema` from the model signature,
//!   `dataSource`, job `jobType` / `sourceCodeLocation`, run `parent` / `errorMessage` /
//!   `processing_engine`, and Wharf's own `wharf_model`).
//! - [`mapping`]: `LineageEvent` → `RunEvent`, including dataset naming.
//! - [`OpenLineageEmitter`]: the `LineagePort`, its transports and its failure policy
//!   (spool and replay).
//!
//! Select it with `lineage.backend = "openlineage"` and the `openlineage` feature of `wharf`.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

pub mod emitter;
pub mod event;
pub mod facets;
pub mod mapping;
pub mod transport;

pub use emitter::{OpenLineageEmitter, ReplayReport};
pub use event::{EventType, RunEvent, PRODUCER, RUN_EVENT_SCHEMA_URL};
pub use transport::{Compression, HttpTransport, Transport};

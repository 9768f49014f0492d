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

use std::sync::Arc;

use wharf_core::{AdapterCatalog, AdapterEntry, ConfigTable, LineagePort};

pub mod config;
pub mod emitter;
pub mod event;
pub mod facets;
pub mod mapping;
pub mod transport;

pub use config::OpenLineageConfig;
pub use emitter::{OpenLineageEmitter, ReplayReport};
pub use event::{EventType, RunEvent, PRODUCER, RUN_EVENT_SCHEMA_URL};
pub use transport::{Compression, HttpTransport, Transport};

/// The name configuration selects this adapter by (`lineage.backend = "openlineage"`).
pub const BACKEND: &str = "openlineage";
/// The `wharf` facade's Cargo feature that compiles this adapter in.
pub const FEATURE: &str = "openlineage";

/// Registers the OpenLineage emitter and its table in `catalog`.
pub fn install(catalog: &mut AdapterCatalog) {
    catalog.add_lineage(
        AdapterEntry::new(
            BACKEND,
            Arc::new(|c| {
                Ok(Arc::new(OpenLineageEmitter::from_config(&OpenLineageConfig::from_wharf(c)?)?)
                    as Arc<dyn LineagePort>)
            }),
        )
        .feature(FEATURE),
    );
    catalog.config_table(ConfigTable::new::<OpenLineageConfig>(config::KEY));
}

//! The defaults: adapters that need no server.

pub mod file_lineage;
pub mod file_registry;
pub mod file_tracker;
pub mod local_server;
pub mod noop;

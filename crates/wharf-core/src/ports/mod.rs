//! The four ports. Each is a small object-safe trait whose contract is written on it;
//! conveniences live in `…Ext` traits so adapters implement only the essentials.

pub mod lineage;
pub mod model_server;
pub mod registry;
pub mod tracker;

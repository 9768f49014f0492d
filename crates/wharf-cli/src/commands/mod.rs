//! One module per subcommand.

pub mod doctor;
pub mod drift;
pub mod gate;
pub mod import;
pub mod lineage;
pub mod models;
pub mod promote;
pub mod report;
pub mod run_models;
pub mod runs;
pub mod score;
#[cfg(feature = "serve")]
pub mod serve;
#[cfg(feature = "datafusion")]
pub mod sql;
pub mod stream;
pub mod train;
pub mod tune;
#[cfg(feature = "serve")]
pub mod ui;
pub mod version;

/// How timestamps are shown to people.
pub const TIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S UTC";

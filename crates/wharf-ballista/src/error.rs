//! One error type for the scheduler, the executors and the client sessions.

use ballista_core::error::BallistaError;
use wharf_core::WharfError;
use wharf_datafusion::datafusion::error::DataFusionError;

/// What can go wrong starting or running a Wharf Ballista process or session.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Wharf configuration or the model registry it names.
    #[error("{0}")]
    Wharf(#[from] WharfError),
    /// Planning or running a query.
    #[error("{}", .0.strip_backtrace())]
    DataFusion(#[from] DataFusionError),
    /// Ballista itself (connecting, registering, serving).
    #[error("{0}")]
    Ballista(#[from] BallistaError),
    /// An address to listen on that cannot be used: malformed, or taken by another process.
    #[error("cannot listen on {address}: {message}")]
    Listen {
        /// The address.
        address: String,
        /// Why.
        message: String,
    },
    /// A setting that cannot work, named.
    #[error("{0}")]
    Config(String),
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

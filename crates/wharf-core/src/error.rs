//! The one public error type of Wharf.
//!
//! Every port, adapter and helper returns [`WharfError`]. Adapters keep their own private
//! error types and convert them into [`WharfError::Backend`], so a backend's detail travels
//! as the `source` without leaking the backend's types into callers' code.

use std::path::PathBuf;

/// Shorthand for results whose error is [`WharfError`].
pub type Result<T, E = WharfError> = std::result::Result<T, E>;

/// Everything that can go wrong in Wharf, by what the caller can do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WharfError {
    /// The thing asked for does not exist: a model name, version, alias or run.
    #[error("not found: {what}")]
    NotFound {
        /// What was looked for, in words (`model 'lead' version 7`).
        what: String,
    },

    /// A value is not acceptable. `path` points at it (`records[3].age`, `alias`).
    #[error("invalid input at {path}: {message}")]
    InvalidInput {
        /// Where the bad value is.
        path: String,
        /// What is wrong with it.
        message: String,
    },

    /// Records do not match the model's signature: a field is missing, extra or mistyped.
    #[error("schema mismatch at {path}: {message}")]
    SchemaMismatch {
        /// The failing field (`records[0].pages_viewed`).
        path: String,
        /// What was expected and what came.
        message: String,
    },

    /// The model cannot do what was asked (probabilities from a regressor, say).
    #[error("not supported: {0}")]
    Unsupported(String),

    /// `predict` was called on a model server before any model was loaded.
    #[error("no model loaded: call load(model) first")]
    NoModelLoaded,

    /// The configuration asks for an adapter whose Cargo feature is not compiled in.
    #[error("adapter '{adapter}' is not compiled in: enable the Cargo feature '{feature}' (of the `wharf` crate, or of the program that selects it)")]
    AdapterUnavailable {
        /// The adapter the configuration selected (`mlflow`).
        adapter: String,
        /// The Cargo feature that brings it in.
        feature: String,
    },

    /// An outside system (MLflow, BentoML, a database) failed or answered something unusable.
    #[error("{adapter} backend error: {message}")]
    Backend {
        /// The adapter that talked to the backend.
        adapter: String,
        /// A one-line summary.
        message: String,
        /// The adapter's own error, when there is one.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },

    /// A model artifact could not be read: it is damaged, foreign, too new or too large.
    #[error("model artifact {path}: {kind}")]
    Artifact {
        /// The file, or `<bytes>` when decoding from memory.
        path: String,
        /// What exactly is wrong.
        kind: ArtifactError,
    },

    /// The configuration is invalid: an unknown key, a bad value, unreadable file.
    #[error("configuration error at {key}: {message}")]
    Config {
        /// The dotted key (`tracking.backend`) or environment variable at fault.
        key: String,
        /// What is wrong with it.
        message: String,
    },

    /// The container could not be assembled (conflicting or missing registrations).
    #[error("wiring error: {0}")]
    Wiring(String),

    /// Training could not produce a model from the data given.
    #[error("training failed: {0}")]
    Training(String),

    /// A file-system operation failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}

/// Why an artifact was refused. Each case is a distinct, typed answer so callers (and the
/// CLI) can tell a damaged download from a file written by a newer Wharf.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ArtifactError {
    /// The file does not start with Wharf's magic bytes: it is not a Wharf model.
    #[error("not a Wharf model artifact (bad magic bytes)")]
    BadMagic,
    /// Written by a newer format than this build reads.
    #[error("format version {found} is not supported (this build reads up to {supported})")]
    UnsupportedVersion {
        /// The version in the header.
        found: u16,
        /// The newest version this build understands.
        supported: u16,
    },
    /// The payload codec in the header is unknown.
    #[error("unknown payload codec {0}")]
    UnknownCodec(u8),
    /// The file ends before the header or payload is complete.
    #[error("truncated: expected {expected} bytes, found {found}")]
    Truncated {
        /// Bytes the header announced.
        expected: u64,
        /// Bytes actually present.
        found: u64,
    },
    /// The header announces a payload larger than the configured limit.
    #[error("payload of {size} bytes exceeds the limit of {limit} bytes")]
    Oversized {
        /// Announced size.
        size: u64,
        /// The limit in force.
        limit: u64,
    },
    /// The payload's SHA-256 does not match the header: the bytes were altered.
    #[error("checksum mismatch: the payload was altered or damaged")]
    ChecksumMismatch,
    /// Bytes after the payload: the file was concatenated or damaged.
    #[error("{0} unexpected bytes after the payload")]
    TrailingBytes(u64),
    /// The checksum matched but the payload does not decode to a consistent model.
    #[error("payload does not decode: {0}")]
    Decode(String),
    /// The artifact holds a model kind with no registered decoder in this process.
    #[error("model kind '{kind}' is not registered: {hint}")]
    UnknownKind {
        /// The kind id stored in the artifact.
        kind: String,
        /// Which crate provides the kind and how to register it.
        hint: String,
    },
}

impl WharfError {
    /// A [`WharfError::NotFound`] for `what`.
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::NotFound { what: what.into() }
    }

    /// A [`WharfError::InvalidInput`] at `path`.
    pub fn invalid(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidInput { path: path.into(), message: message.into() }
    }

    /// A [`WharfError::SchemaMismatch`] at `path`.
    pub fn schema(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self::SchemaMismatch { path: path.into(), message: message.into() }
    }

    /// A [`WharfError::Config`] for `key`.
    pub fn config(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Config { key: key.into(), message: message.into() }
    }

    /// A [`WharfError::Io`] on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }

    /// A [`WharfError::Backend`] from `adapter` with an optional source error.
    pub fn backend(
        adapter: impl Into<String>,
        message: impl Into<String>,
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::Backend { adapter: adapter.into(), message: message.into(), source }
    }

    /// A [`WharfError::Artifact`] for `path`.
    pub fn artifact(path: impl Into<String>, kind: ArtifactError) -> Self {
        Self::Artifact { path: path.into(), kind }
    }
}

//! Errors: what a stage reports about an item or batch, and what a run reports to its caller.

use std::time::Duration;

use crate::output::RunOutput;

/// Why a stage failed on an item or a batch.
///
/// Handlers return it (any `WharfError` or text converts); the runtime also makes one when a
/// handler panics, times out, returns the wrong number of results or routes to an unknown
/// bucket. What happens next is the stage's [`Policy`](crate::Policy).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct StageError {
    kind: StageErrorKind,
    message: String,
}

/// The cause of a [`StageError`], for callers that react differently to each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StageErrorKind {
    /// The handler returned an error.
    Handler,
    /// The handler panicked; the panic was caught and turned into this error.
    Panicked,
    /// A batch call took longer than the stage's timeout.
    TimedOut,
    /// A batch call returned a different number of results than it was given items.
    WrongCount,
    /// An item was routed to a bucket the pipeline does not declare.
    UnknownBucket,
}

impl StageError {
    /// A handler's own error.
    pub fn new(message: impl Into<String>) -> Self {
        StageError { kind: StageErrorKind::Handler, message: message.into() }
    }

    pub(crate) fn with_kind(kind: StageErrorKind, message: impl Into<String>) -> Self {
        StageError { kind, message: message.into() }
    }

    pub(crate) fn timed_out(after: Duration) -> Self {
        Self::with_kind(StageErrorKind::TimedOut, format!("batch timed out after {} ms", after.as_millis()))
    }

    /// What caused it.
    pub fn kind(&self) -> StageErrorKind {
        self.kind
    }

    /// The message, without the stage name.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<String> for StageError {
    fn from(message: String) -> Self {
        StageError::new(message)
    }
}

impl From<&str> for StageError {
    fn from(message: &str) -> Self {
        StageError::new(message)
    }
}

impl From<wharf_core::WharfError> for StageError {
    fn from(e: wharf_core::WharfError) -> Self {
        StageError::new(e.to_string())
    }
}

/// What a pipeline build or run reports to its caller.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PipelineError {
    /// The pipeline definition is inconsistent (a policy for an unknown stage, a route to an
    /// undeclared bucket, a batch size of zero). Found when the pipeline is built, never
    /// half-way through a run.
    #[error("pipeline '{pipeline}' is not valid: {message}")]
    Definition {
        /// The pipeline's name.
        pipeline: String,
        /// What is wrong with it.
        message: String,
    },

    /// A stage whose policy is `halt` failed, so the run stopped.
    #[error("pipeline '{pipeline}' halted at stage '{stage}' ({}): {reason}", describe_target(*.item, *.batch))]
    Halted {
        /// The pipeline's name.
        pipeline: String,
        /// The stage that failed.
        stage: String,
        /// The item that failed, for a per-item failure.
        item: Option<u64>,
        /// The batch it was in (1 is the first batch).
        batch: u64,
        /// What went wrong.
        reason: StageError,
        /// Every batch that completed before the failing one, in order. Filled by
        /// [`Pipeline::run`](crate::Pipeline::run); empty from a stream, whose caller has
        /// already received those items.
        partial: Box<RunOutput>,
    },

    /// The run could not go on for a reason outside any stage: the input iterator panicked,
    /// or a thread could not be started.
    #[error("pipeline '{pipeline}' failed: {message}")]
    Runtime {
        /// The pipeline's name.
        pipeline: String,
        /// What went wrong.
        message: String,
    },
}

fn describe_target(item: Option<u64>, batch: u64) -> String {
    match item {
        Some(id) => format!("item {id} in batch {batch}"),
        None => format!("batch {batch}"),
    }
}

impl PipelineError {
    /// The partial output of a halted run, if this is one.
    pub fn partial(&self) -> Option<&RunOutput> {
        match self {
            PipelineError::Halted { partial, .. } => Some(partial),
            _ => None,
        }
    }
}

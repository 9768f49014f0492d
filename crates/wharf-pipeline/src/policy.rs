//! Error policies: what a stage does with an item (or a whole batch) that failed.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::error::StageError;
use crate::item::Item;

/// Builds a replacement for a failed item (see [`Policy::Replace`]).
pub type ReplaceFn = Arc<dyn Fn(Item, &StageError) -> Item + Send + Sync>;

/// What a stage does when it fails on an item, or on a batch (then for every item in it).
///
/// A pipeline looks a stage's policy up by the stage's name, then under `*`, and falls back
/// to [`Halt`](Policy::Halt): an unplanned failure stops the run rather than losing data.
#[derive(Clone, Default)]
pub enum Policy {
    /// Stop the run with an error naming the stage, the item or batch and the reason; the
    /// caller gets the batches that completed before it.
    #[default]
    Halt,
    /// Drop the item and count it in the stage's `skipped` counter.
    Skip,
    /// Keep the item with its payload unchanged, record `error`, `error_stage` and
    /// `skipped: true` in its metadata, and let it go on, so later stages and the caller can
    /// still see which items failed where.
    Mark,
    /// Send the item, with `error` and `error_stage` in its metadata, straight to the named
    /// output bucket; it passes no further stage.
    Route(String),
    /// Replace the item with what the function makes of it and the error, and go on.
    Replace(ReplaceFn),
    /// Call the stage again, up to `max_attempts` calls in all, waiting `backoff` between
    /// calls; if every call fails, apply `then`.
    Retry {
        /// Calls in all, the first included (at least 1).
        max_attempts: u32,
        /// Pause between calls.
        backoff: Duration,
        /// What to do once the attempts are used up (not itself a retry).
        then: Box<Policy>,
    },
}

impl Policy {
    /// [`Policy::Route`] to `bucket`.
    pub fn route(bucket: impl Into<String>) -> Self {
        Policy::Route(bucket.into())
    }

    /// [`Policy::Replace`] with `f`.
    pub fn replace(f: impl Fn(Item, &StageError) -> Item + Send + Sync + 'static) -> Self {
        Policy::Replace(Arc::new(f))
    }

    /// [`Policy::Retry`] with no pause between calls.
    pub fn retry(max_attempts: u32, then: Policy) -> Self {
        Policy::Retry { max_attempts, backoff: Duration::ZERO, then: Box::new(then) }
    }

    /// How many calls to make, and the policy for a failure after the last of them.
    pub(crate) fn attempts(&self) -> (u32, &Policy) {
        match self {
            Policy::Retry { max_attempts, then, .. } => ((*max_attempts).max(1), then),
            other => (1, other),
        }
    }

    /// The pause between retries.
    pub(crate) fn backoff(&self) -> Duration {
        match self {
            Policy::Retry { backoff, .. } => *backoff,
            _ => Duration::ZERO,
        }
    }
}

impl fmt::Debug for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Policy::Halt => f.write_str("Halt"),
            Policy::Skip => f.write_str("Skip"),
            Policy::Mark => f.write_str("Mark"),
            Policy::Route(bucket) => f.debug_tuple("Route").field(bucket).finish(),
            Policy::Replace(_) => f.write_str("Replace(..)"),
            Policy::Retry { max_attempts, backoff, then } => f
                .debug_struct("Retry")
                .field("max_attempts", max_attempts)
                .field("backoff", backoff)
                .field("then", then)
                .finish(),
        }
    }
}

//! Stages: per-item functions, batch functions and routers.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::context::RunContext;
use crate::error::StageError;
use crate::item::Item;

/// What a per-item step decides for its item.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Go on with this new payload (id and metadata kept).
    Emit(Value),
    /// Drop the item on purpose (a filter); counted in the stage's `skipped` counter with no
    /// error.
    Skip(String),
    /// Send the item, with this payload, straight to the named output bucket.
    Route(String, Value),
    /// Replace the item with one child per payload. Children get fresh ids, a copy of the
    /// parent's metadata and `parent_id`, so a fanned-out result can be traced back.
    Many(Vec<Value>),
}

/// A per-item handler.
pub type StepFn = Arc<dyn Fn(&Item, &RunContext) -> Result<Outcome, StageError> + Send + Sync>;
/// A batch handler: one result per item, in order, or an error for the whole batch.
pub type BatchFn =
    Arc<dyn Fn(&[Item], &RunContext) -> Result<Vec<Result<Value, StageError>>, StageError> + Send + Sync>;
/// A router predicate.
pub type Predicate = Arc<dyn Fn(&Item, &RunContext) -> bool + Send + Sync>;

#[derive(Clone)]
pub(crate) enum StageKind {
    Item(StepFn),
    Batch(BatchFn),
}

/// One step of a pipeline, with a name that policies, counters and spans refer to.
#[derive(Clone)]
pub struct Stage {
    pub(crate) name: Arc<str>,
    pub(crate) kind: StageKind,
    pub(crate) timeout: Option<Duration>,
}

impl Stage {
    /// A per-item stage whose handler returns the item's new payload. A handler error, or a
    /// panic, is a failure of that item alone.
    pub fn map<F>(name: impl Into<String>, f: F) -> Stage
    where
        F: Fn(&Item, &RunContext) -> Result<Value, StageError> + Send + Sync + 'static,
    {
        Self::step(name, move |item, ctx| f(item, ctx).map(Outcome::Emit))
    }

    /// A per-item stage with every choice open: emit, skip, route or fan out
    /// (see [`Outcome`]).
    pub fn step<F>(name: impl Into<String>, f: F) -> Stage
    where
        F: Fn(&Item, &RunContext) -> Result<Outcome, StageError> + Send + Sync + 'static,
    {
        Stage { name: name.into().into(), kind: StageKind::Item(Arc::new(f)), timeout: None }
    }

    /// A batch stage: the handler gets the batch's items and must return exactly one new
    /// payload per item, in order. Returning more or fewer is a failure of the whole batch,
    /// never a silent drop.
    pub fn batch<F>(name: impl Into<String>, f: F) -> Stage
    where
        F: Fn(&[Item], &RunContext) -> Result<Vec<Value>, StageError> + Send + Sync + 'static,
    {
        Self::batch_each(name, move |items, ctx| f(items, ctx).map(|values| values.into_iter().map(Ok).collect()))
    }

    /// A batch stage that can fail items one by one: the handler returns one result per item
    /// (an `Err` goes through the stage's policy for that item alone), or an error for the
    /// whole batch.
    pub fn batch_each<F>(name: impl Into<String>, f: F) -> Stage
    where
        F: Fn(&[Item], &RunContext) -> Result<Vec<Result<Value, StageError>>, StageError> + Send + Sync + 'static,
    {
        Stage { name: name.into().into(), kind: StageKind::Batch(Arc::new(f)), timeout: None }
    }

    /// Gives each batch call at most `limit`; a call that takes longer becomes a batch
    /// failure under the stage's policy. Rust cannot stop a running thread, so the late call
    /// finishes in the background and its result is thrown away. Applies to batch stages
    /// only (one extra thread per call); per-item stages ignore it.
    pub fn timeout(mut self, limit: Duration) -> Stage {
        self.timeout = Some(limit);
        self
    }

    /// The stage's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `item` or `batch`, as in spans and counters.
    pub fn kind(&self) -> &'static str {
        match self.kind {
            StageKind::Item(_) => "item",
            StageKind::Batch(_) => "batch",
        }
    }
}

impl fmt::Debug for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stage").field("name", &self.name).field("kind", &self.kind()).finish()
    }
}

/// Sends each item to the first bucket whose predicate it matches, in the order the routes
/// were added; an item that matches none goes to `default`. Order is kept within each
/// bucket.
#[derive(Clone)]
pub struct Router {
    pub(crate) name: Arc<str>,
    pub(crate) routes: Vec<(Arc<str>, Predicate)>,
}

impl Router {
    /// A router with no routes yet (everything goes to `default`).
    pub fn new(name: impl Into<String>) -> Router {
        Router { name: name.into().into(), routes: Vec::new() }
    }

    /// Adds a route: items matching `predicate` (and no earlier route) go to `bucket`.
    pub fn route<F>(mut self, bucket: impl Into<String>, predicate: F) -> Router
    where
        F: Fn(&Item, &RunContext) -> bool + Send + Sync + 'static,
    {
        self.routes.push((bucket.into().into(), Arc::new(predicate)));
        self
    }

    /// The router's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The buckets it can send to, in route order.
    pub fn buckets(&self) -> impl Iterator<Item = &str> {
        self.routes.iter().map(|(bucket, _)| &**bucket)
    }
}

impl fmt::Debug for Router {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Router")
            .field("name", &self.name)
            .field("buckets", &self.buckets().collect::<Vec<_>>())
            .finish()
    }
}

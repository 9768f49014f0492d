//! What a worker does with one batch: every stage in turn, the router, each bucket's stages,
//! and the error policies on the way.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::context::RunContext;
use crate::definition::{Definition, RouterRt, StageRt};
use crate::error::{StageError, StageErrorKind};
use crate::item::{reserve_ids, Item};
use crate::output::{bump, Counters, StageCounters};
use crate::policy::Policy;
use crate::stage::{BatchFn, Outcome, StageKind, StepFn};

/// Items leaving a batch, each with the bucket it landed in.
pub(crate) type Routed = Vec<(Arc<str>, Item)>;

/// Items grouped by the bucket a router chose, buckets in order of first use.
type Groups = Vec<(Arc<str>, Vec<Item>)>;

/// A failure under the `halt` policy: the run stops.
#[derive(Debug)]
pub(crate) struct Halt {
    pub stage: Arc<str>,
    pub item: Option<u64>,
    pub reason: StageError,
}

/// One batch's work, borrowing the run's shared state.
pub(crate) struct BatchRun<'a> {
    pub def: &'a Definition,
    pub ctx: &'a RunContext,
    pub counters: &'a Counters,
}

/// One stage at work on one batch: its name, counters, policy and context.
struct StageCall<'a> {
    name: &'a Arc<str>,
    counters: &'a StageCounters,
    /// The stage's whole policy (retries included).
    policy: &'a Policy,
    ctx: RunContext,
}

/// The items a stage passes on, or the halt it ran into.
type Passed = Result<Vec<Item>, Halt>;

impl BatchRun<'_> {
    /// Runs one batch through the pipeline. Ok carries every item that reached a bucket.
    pub fn process(&self, items: Vec<Item>) -> Result<Routed, Halt> {
        let mut out = Routed::with_capacity(items.len());
        let items = self.run_stages(&self.def.stages, items, &mut out)?;
        match &self.def.router {
            None => out.extend(items.into_iter().map(|item| (self.def.default_bucket.clone(), item))),
            Some(router) => {
                for (bucket, items) in self.route(router, items, &mut out)? {
                    let items = match self.def.tails.get(&bucket) {
                        Some(tail) => self.run_stages(tail, items, &mut out)?,
                        None => items,
                    };
                    out.extend(items.into_iter().map(|item| (bucket.clone(), item)));
                }
            }
        }
        Ok(out)
    }

    fn call<'s>(&'s self, name: &'s Arc<str>, index: usize, policy: &'s Policy) -> StageCall<'s> {
        StageCall { name, counters: self.counters.stage(index), policy, ctx: self.ctx.with_stage(name) }
    }

    fn run_stages(&self, stages: &[StageRt], mut items: Vec<Item>, out: &mut Routed) -> Result<Vec<Item>, Halt> {
        for stage in stages {
            // Once a stage leaves nothing, later stages have nothing to do: skipping them
            // saves empty calls (and empty batches reaching batch stages).
            if items.is_empty() {
                break;
            }
            let kind = match stage.kind {
                StageKind::Item(_) => "item",
                StageKind::Batch(_) => "batch",
            };
            let span = tracing::info_span!("pipeline.stage", pipeline = %self.def.name, stage = %stage.name, kind, items = items.len());
            let _entered = span.enter();
            let at = self.call(&stage.name, stage.index, &stage.policy);
            bump(&at.counters.items_in, items.len() as u64);
            items = match &stage.kind {
                StageKind::Item(f) => self.item_stage(&at, f, items, out)?,
                StageKind::Batch(f) => self.batch_stage(&at, f, stage.timeout, items, out)?,
            };
            bump(&at.counters.items_out, items.len() as u64);
        }
        Ok(items)
    }

    fn item_stage(&self, at: &StageCall<'_>, f: &StepFn, items: Vec<Item>, out: &mut Routed) -> Passed {
        let (counters, ctx) = (at.counters, &at.ctx);
        let mut next = Vec::with_capacity(items.len());
        for item in items {
            match with_retries(at.policy, counters, || guarded(|| f(&item, ctx))) {
                Ok(Outcome::Emit(payload)) => next.push(item.with_payload(payload)),
                Ok(Outcome::Skip(reason)) => {
                    bump(&counters.skipped, 1);
                    tracing::debug!(stage = %at.name, item = item.id, %reason, "item skipped by its handler");
                }
                Ok(Outcome::Route(bucket, payload)) => match self.def.outputs.get(bucket.as_str()) {
                    Some(bucket) => {
                        bump(&counters.routed, 1);
                        out.push((bucket.clone(), item.with_payload(payload)));
                    }
                    None => {
                        let error = StageError::with_kind(
                            StageErrorKind::UnknownBucket,
                            format!("routed to '{bucket}', which is not a declared output"),
                        );
                        self.fail(at, false, item, error, &mut next, out)?;
                    }
                },
                Ok(Outcome::Many(payloads)) => {
                    let first = reserve_ids(payloads.len() as u64);
                    for (payload, id) in payloads.into_iter().zip(first..) {
                        let mut child = Item { id, payload, meta: item.meta.clone() };
                        child.put_meta("parent_id", item.id);
                        next.push(child);
                    }
                }
                Err(error) => self.fail(at, false, item, error, &mut next, out)?,
            }
        }
        Ok(next)
    }

    fn batch_stage(
        &self,
        at: &StageCall<'_>,
        f: &BatchFn,
        timeout: Option<Duration>,
        items: Vec<Item>,
        out: &mut Routed,
    ) -> Passed {
        let mut next = Vec::with_capacity(items.len());
        match with_retries(at.policy, at.counters, || call_batch(f, timeout, &items, &at.ctx)) {
            Ok(results) => {
                for (item, result) in items.into_iter().zip(results) {
                    match result {
                        Ok(payload) => next.push(item.with_payload(payload)),
                        Err(error) => self.fail(at, false, item, error, &mut next, out)?,
                    }
                }
            }
            Err(error) => {
                for item in items {
                    self.fail(at, true, item, error.clone(), &mut next, out)?;
                }
            }
        }
        Ok(next)
    }

    /// Sends each item to the first bucket whose predicate it matches, else `default`;
    /// buckets come back in the order they were first used.
    fn route(&self, router: &RouterRt, items: Vec<Item>, out: &mut Routed) -> Result<Groups, Halt> {
        let span = tracing::info_span!("pipeline.stage", pipeline = %self.def.name, stage = %router.name, kind = "router", items = items.len());
        let _entered = span.enter();
        let at = self.call(&router.name, router.index, &router.policy);
        let (counters, ctx) = (at.counters, &at.ctx);
        bump(&counters.items_in, items.len() as u64);
        let mut groups = Groups::new();
        let mut routed = 0;
        for item in items {
            let chosen = with_retries(&router.policy, counters, || {
                guarded(|| Ok(router.routes.iter().find(|(_, matches)| matches(&item, ctx)).map(|(b, _)| b.clone())))
            });
            let (bucket, item) = match chosen {
                Ok(bucket) => (bucket.unwrap_or_else(|| self.def.default_bucket.clone()), item),
                Err(error) => {
                    // Under `mark` or `replace` the item goes on, to `default`.
                    let mut kept = Vec::new();
                    self.fail(&at, false, item, error, &mut kept, out)?;
                    match kept.pop() {
                        Some(item) => (self.def.default_bucket.clone(), item),
                        None => continue,
                    }
                }
            };
            routed += 1;
            match groups.iter_mut().find(|(b, _)| *b == bucket) {
                Some((_, group)) => group.push(item),
                None => groups.push((bucket, vec![item])),
            }
        }
        bump(&counters.items_out, routed);
        Ok(groups)
    }

    /// Applies the stage's policy to a failed item: the item goes on (`next`), goes to a
    /// bucket (`out`), is dropped, or the run halts.
    fn fail(
        &self,
        at: &StageCall<'_>,
        whole_batch: bool,
        mut item: Item,
        error: StageError,
        next: &mut Vec<Item>,
        out: &mut Routed,
    ) -> Result<(), Halt> {
        bump(&at.counters.failed, 1);
        tracing::warn!(pipeline = %self.def.name, stage = %at.name, item = item.id, error = %error, "item failed");
        // Retries are used up by now; what remains is the policy's last word.
        match at.policy.attempts().1 {
            Policy::Halt | Policy::Retry { .. } => {
                return Err(Halt { stage: at.name.clone(), item: (!whole_batch).then_some(item.id), reason: error })
            }
            Policy::Skip => bump(&at.counters.skipped, 1),
            Policy::Mark => {
                record_error(&mut item, at.name, &error);
                item.put_meta("skipped", true);
                next.push(item);
            }
            Policy::Route(bucket) => {
                record_error(&mut item, at.name, &error);
                bump(&at.counters.routed, 1);
                let bucket = self.def.outputs.get(bucket.as_str()).cloned().unwrap_or_else(|| bucket.as_str().into());
                out.push((bucket, item));
            }
            Policy::Replace(replace) => {
                let id = item.id;
                let replaced = guarded(|| Ok(replace(item, &error))).map_err(|reason| Halt {
                    stage: at.name.clone(),
                    item: Some(id),
                    reason,
                })?;
                next.push(replaced);
            }
        }
        Ok(())
    }
}

fn record_error(item: &mut Item, stage: &str, error: &StageError) {
    item.put_meta("error", error.message());
    item.put_meta("error_stage", stage);
}

/// Calls `call` up to the policy's number of attempts, counting each call and retry.
fn with_retries<T>(
    policy: &Policy,
    counters: &StageCounters,
    mut call: impl FnMut() -> Result<T, StageError>,
) -> Result<T, StageError> {
    let (attempts, _) = policy.attempts();
    let mut attempt = 1;
    loop {
        bump(&counters.calls, 1);
        match call() {
            Ok(value) => return Ok(value),
            Err(error) if attempt >= attempts => return Err(error),
            Err(error) => {
                tracing::debug!(attempt, %error, "retrying");
                bump(&counters.retries, 1);
                attempt += 1;
                let pause = policy.backoff();
                if !pause.is_zero() {
                    std::thread::sleep(pause);
                }
            }
        }
    }
}

/// Runs a handler, turning a panic into a [`StageError`] so one bad item cannot take the
/// run (or the worker thread) down.
pub(crate) fn guarded<T>(call: impl FnOnce() -> Result<T, StageError>) -> Result<T, StageError> {
    catch_unwind(AssertUnwindSafe(call)).unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-text panic payload".into());
        Err(StageError::with_kind(StageErrorKind::Panicked, format!("handler panicked: {message}")))
    })
}

type BatchResults = Vec<Result<Value, StageError>>;

/// One batch call: guarded, bounded in time when the stage has a timeout, and checked to
/// return exactly one result per item.
fn call_batch(
    f: &BatchFn,
    timeout: Option<Duration>,
    items: &[Item],
    ctx: &RunContext,
) -> Result<BatchResults, StageError> {
    let results = match timeout {
        None => guarded(|| f(items, ctx))?,
        Some(limit) => call_with_timeout(f.clone(), items.to_vec(), ctx.clone(), limit)?,
    };
    if results.len() != items.len() {
        return Err(StageError::with_kind(
            StageErrorKind::WrongCount,
            format!("returned {} results for {} items", results.len(), items.len()),
        ));
    }
    Ok(results)
}

/// Runs the call on a thread of its own and waits at most `limit`. A late call is left to
/// finish in the background (a thread cannot be stopped) and its result is dropped.
fn call_with_timeout(
    f: BatchFn,
    items: Vec<Item>,
    ctx: RunContext,
    limit: Duration,
) -> Result<BatchResults, StageError> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    let dispatch = tracing::dispatcher::get_default(|d| d.clone());
    let span = tracing::Span::current();
    std::thread::Builder::new()
        .name("wharf-pipeline-call".into())
        .spawn(move || {
            tracing::dispatcher::with_default(&dispatch, || {
                let _entered = span.enter();
                // The receiver is gone if the call timed out; nobody wants the result then.
                let _ = tx.send(guarded(|| f(&items, &ctx)));
            })
        })
        .map_err(|e| StageError::new(format!("could not start the batch call: {e}")))?;
    match rx.recv_timeout(limit) {
        Ok(result) => result,
        Err(crossbeam_channel::RecvTimeoutError::Timeout) => Err(StageError::timed_out(limit)),
        Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
            Err(StageError::new("the batch call ended without a result"))
        }
    }
}

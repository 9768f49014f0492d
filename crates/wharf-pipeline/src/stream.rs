//! A run in progress: the input thread, the workers, and the stream that hands results back
//! in order with bounded in-flight batches.

use std::collections::{BTreeMap, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crossbeam_channel::{bounded, unbounded, Receiver};
use wharf_core::{LineageEvent, LineageEventType};

use crate::context::RunContext;
use crate::definition::{Definition, OutputOrder};
use crate::engine::{BatchRun, Halt, Routed};
use crate::error::PipelineError;
use crate::item::Item;
use crate::output::{bump, Counters, RunOutput, RunStats};

/// One item out of a run, with the bucket it landed in.
#[derive(Debug, Clone, PartialEq)]
pub struct RoutedItem {
    /// The output bucket.
    pub bucket: Arc<str>,
    /// The item.
    pub item: Item,
}

/// What a worker or the input thread reports.
enum Done {
    Batch { seq: u64, result: Result<Routed, Halt> },
    InputFailed { seq: u64, message: String },
}

impl Done {
    fn seq(&self) -> u64 {
        match self {
            Done::Batch { seq, .. } | Done::InputFailed { seq, .. } => *seq,
        }
    }
}

/// A running pipeline, read as an iterator of [`RoutedItem`]s.
///
/// The input is read on a thread of the run and cut into batches; each batch takes one of
/// `max_in_flight` slots, which it gives back only when the stream hands its items over.
/// So a slow consumer slows the input down instead of letting results pile up in memory.
/// After a halt the stream yields the error and then ends. Dropping the stream stops the
/// run: no new batch starts, and the threads end once their current batch is done.
pub struct RunStream {
    def: Arc<Definition>,
    session_id: String,
    counters: Arc<Counters>,
    cancel: Arc<AtomicBool>,
    done_rx: Receiver<Done>,
    slots_rx: Receiver<()>,
    reorder: BTreeMap<u64, Done>,
    next_seq: u64,
    received: u64,
    ready: VecDeque<(Arc<str>, Item)>,
    finished: bool,
    /// Items handed over per bucket, for the lineage COMPLETE event.
    bucket_counts: BTreeMap<Arc<str>, u64>,
    /// The lineage run id; `None` once the run's closing event has been sent.
    lineage_run: Option<String>,
    _span: tracing::Span,
}

impl std::fmt::Debug for RunStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunStream").field("pipeline", &self.def.name).field("session_id", &self.session_id).finish()
    }
}

impl RunStream {
    pub(crate) fn start<I>(def: Arc<Definition>, input: I, ctx: RunContext) -> Result<RunStream, PipelineError>
    where
        I: Iterator<Item = Item> + Send + 'static,
    {
        let counters = Arc::new(Counters::new(def.slots.iter().cloned()));
        let span = tracing::info_span!(
            "pipeline.run",
            pipeline = %def.name,
            session_id = %ctx.session_id(),
            input_count = tracing::field::Empty,
            batches = tracing::field::Empty,
        );
        // Worker threads report to the caller's subscriber, even a thread-local one.
        let dispatch = tracing::dispatcher::get_default(|d| d.clone());
        let (work_tx, work_rx) = bounded::<(u64, Vec<Item>)>(def.max_in_flight);
        let (slots_tx, slots_rx) = bounded::<()>(def.max_in_flight);
        let (done_tx, done_rx) = unbounded::<Done>();
        let cancel = Arc::new(AtomicBool::new(false));
        let runtime_error = |e: std::io::Error| PipelineError::Runtime {
            pipeline: def.name.to_string(),
            message: format!("could not start a thread: {e}"),
        };

        for n in 0..def.workers.min(def.max_in_flight) {
            let (def, ctx, counters, cancel) = (def.clone(), ctx.clone(), counters.clone(), cancel.clone());
            let (work_rx, done_tx, dispatch, span) = (work_rx.clone(), done_tx.clone(), dispatch.clone(), span.clone());
            std::thread::Builder::new()
                .name(format!("wharf-pipeline-{n}"))
                .spawn(move || {
                    tracing::dispatcher::with_default(&dispatch, || {
                        let run = BatchRun { def: &def, ctx: &ctx, counters: &counters };
                        for (seq, items) in work_rx.iter() {
                            if cancel.load(Ordering::Relaxed) {
                                break;
                            }
                            let batch_span = tracing::info_span!(parent: &span, "pipeline.batch", pipeline = %def.name, batch_ref = seq + 1, batch_size = items.len());
                            let result = batch_span.in_scope(|| run.process(items));
                            drop(batch_span);
                            if done_tx.send(Done::Batch { seq, result }).is_err() {
                                break;
                            }
                        }
                    });
                    // The run span must be released before the stream can see the end of
                    // the run, so it closes when the stream is dropped.
                    drop(span);
                    drop(done_tx);
                })
                .map_err(runtime_error)?;
        }
        drop(work_rx);

        {
            let (def, counters, cancel, span) = (def.clone(), counters.clone(), cancel.clone(), span.clone());
            std::thread::Builder::new()
                .name("wharf-pipeline-input".into())
                .spawn(move || {
                    let mut seq = 0u64;
                    let mut count = 0u64;
                    let read = catch_unwind(AssertUnwindSafe(|| {
                        for batch in def.batching.batches(input) {
                            if cancel.load(Ordering::Relaxed) || slots_tx.send(()).is_err() {
                                break;
                            }
                            count += batch.len() as u64;
                            bump(&counters.items_in, batch.len() as u64);
                            bump(&counters.batches, 1);
                            if work_tx.send((seq, batch)).is_err() {
                                break;
                            }
                            seq += 1;
                        }
                    }));
                    span.record("input_count", count);
                    span.record("batches", seq);
                    if let Err(panic) = read {
                        let message = panic
                            .downcast_ref::<&str>()
                            .map(|s| s.to_string())
                            .or_else(|| panic.downcast_ref::<String>().cloned())
                            .unwrap_or_default();
                        let _ =
                            done_tx.send(Done::InputFailed { seq, message: format!("the input panicked: {message}") });
                    }
                    drop(span);
                    drop(done_tx);
                })
                .map_err(runtime_error)?;
        }

        let lineage_run = def.lineage.as_ref().map(|lineage| {
            let event = LineageEvent::new(def.name.to_string())
                .event_type(LineageEventType::Start)
                .meta("session_id", ctx.session_id());
            emit(&def, &**lineage, &event);
            event.run_id
        });
        Ok(RunStream {
            session_id: ctx.session_id().to_string(),
            def,
            counters,
            cancel,
            done_rx,
            slots_rx,
            reorder: BTreeMap::new(),
            next_seq: 0,
            received: 0,
            ready: VecDeque::new(),
            finished: false,
            bucket_counts: BTreeMap::new(),
            lineage_run,
            _span: span,
        })
    }

    /// Sends a lineage event for this run, if the pipeline reports lineage.
    fn report(&mut self, event_type: LineageEventType, detail: Option<String>) {
        let (Some(lineage), Some(run_id)) = (&self.def.lineage, &self.lineage_run) else {
            return;
        };
        let stats = self.counters.snapshot();
        let mut event = LineageEvent::new(self.def.name.to_string())
            .event_type(event_type)
            .run_id(run_id.clone())
            .meta("session_id", self.session_id.clone())
            .meta("items_in", stats.items_in)
            .meta("batches", stats.batches);
        for bucket in &self.def.outputs {
            let count = self.bucket_counts.get(bucket).copied().unwrap_or(0);
            event =
                event.output(format!("pipeline:{}/{bucket}", self.def.name)).meta(format!("bucket.{bucket}"), count);
        }
        if let Some(detail) = detail {
            event = event.meta("error", detail);
        }
        emit(&self.def, &**lineage, &event);
        self.lineage_run = None;
    }

    /// The run's session id.
    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// The counters so far (final once the stream has ended).
    pub fn stats(&self) -> RunStats {
        self.counters.snapshot()
    }

    /// Reads the whole stream into a [`RunOutput`] (what [`Pipeline::run`](crate::Pipeline::run)
    /// does). On a halt the error carries the items handed back before it.
    pub fn collect_output(mut self) -> Result<RunOutput, PipelineError> {
        let mut output = RunOutput {
            session_id: self.session_id.clone(),
            buckets: self.def.outputs.iter().map(|b| (b.to_string(), Vec::new())).collect(),
            stats: RunStats::default(),
        };
        let mut done: Vec<(u64, Routed)> = Vec::new();
        let mut failure = None;
        while let Some((seq, batch)) = self.next_batch() {
            match batch {
                Ok(routed) => done.push((seq, routed)),
                Err(error) => {
                    failure = Some(error);
                    break;
                }
            }
        }
        // Batches arrive in completion order under `AsCompleted`; file them by input order.
        done.sort_by_key(|(seq, _)| *seq);
        for (bucket, item) in done.into_iter().flat_map(|(_, routed)| routed) {
            output.buckets.entry(bucket.to_string()).or_default().push(item);
        }
        output.stats = self.stats();
        match failure {
            None => Ok(output),
            Some(mut error) => {
                if let PipelineError::Halted { partial, .. } = &mut error {
                    **partial = output;
                }
                Err(error)
            }
        }
    }

    /// The next whole batch, with its input position.
    fn next_batch(&mut self) -> Option<(u64, Result<Routed, PipelineError>)> {
        let preserve = self.def.order == OutputOrder::Preserve;
        loop {
            if self.finished {
                return None;
            }
            if let Some(done) = self.reorder.remove(&self.next_seq) {
                self.next_seq += 1;
                return Some(self.accept(done));
            }
            match self.done_rx.recv() {
                Ok(done) if preserve => {
                    self.reorder.insert(done.seq(), done);
                }
                Ok(done) => return Some(self.accept(done)),
                Err(_) => {
                    // Every thread has ended. Each dispatched batch should have come back;
                    // workers catch handler panics, so a gap means a thread died.
                    self.finished = true;
                    let dispatched = self.counters.snapshot().batches;
                    if self.received < dispatched {
                        let lost = dispatched - self.received;
                        self.report(LineageEventType::Fail, Some(format!("{lost} batches never came back")));
                        return Some((
                            self.next_seq,
                            Err(PipelineError::Runtime {
                                pipeline: self.def.name.to_string(),
                                message: format!(
                                    "{} of {dispatched} batches never came back",
                                    dispatched - self.received
                                ),
                            }),
                        ));
                    }
                    self.report(LineageEventType::Complete, None);
                    return None;
                }
            }
        }
    }

    fn accept(&mut self, done: Done) -> (u64, Result<Routed, PipelineError>) {
        self.received += 1;
        // Hand the batch's slot back, so the input thread may start another batch.
        let _ = self.slots_rx.try_recv();
        let seq = done.seq();
        let result = match done {
            Done::Batch { result: Ok(routed), .. } => Ok(routed),
            Done::Batch { result: Err(halt), .. } => {
                tracing::error!(pipeline = %self.def.name, stage = %halt.stage, error = %halt.reason, "run halted");
                Err(PipelineError::Halted {
                    pipeline: self.def.name.to_string(),
                    stage: halt.stage.to_string(),
                    item: halt.item,
                    batch: seq + 1,
                    reason: halt.reason,
                    partial: Box::default(),
                })
            }
            Done::InputFailed { message, .. } => {
                self.received -= 1;
                Err(PipelineError::Runtime { pipeline: self.def.name.to_string(), message })
            }
        };
        match &result {
            Ok(routed) => {
                for (bucket, _) in routed {
                    *self.bucket_counts.entry(bucket.clone()).or_default() += 1;
                }
            }
            Err(error) => {
                self.finished = true;
                self.cancel.store(true, Ordering::Relaxed);
                self.report(LineageEventType::Fail, Some(error.to_string()));
            }
        }
        (seq, result)
    }
}

/// Sends one lineage event; a failing sink is logged, not fatal (see
/// [`PipelineBuilder::lineage`](crate::PipelineBuilder::lineage)).
fn emit(def: &Definition, lineage: &dyn wharf_core::LineagePort, event: &LineageEvent) {
    if let Err(e) = lineage.emit(event) {
        tracing::warn!(pipeline = %def.name, sink = lineage.name(), error = %e, "lineage event not recorded");
    }
}

impl Iterator for RunStream {
    type Item = Result<RoutedItem, PipelineError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some((bucket, item)) = self.ready.pop_front() {
                return Some(Ok(RoutedItem { bucket, item }));
            }
            match self.next_batch()? {
                (_, Ok(routed)) => self.ready.extend(routed),
                (_, Err(error)) => return Some(Err(error)),
            }
        }
    }
}

impl Drop for RunStream {
    fn drop(&mut self) {
        self.cancel.store(true, Ordering::Relaxed);
        // Dropped before the end: the run was abandoned, not completed.
        self.report(LineageEventType::Abort, None);
    }
}

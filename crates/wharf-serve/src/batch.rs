//! Micro-batching: concurrent single-row `predict`/`predict_proba` requests to the same
//! model version are collected for a short while and scored in one call, then each request
//! gets its own row back.
//!
//! The first request of a batch starts a flusher task that waits `wait` (or until `max_rows`
//! rows are queued, whichever comes first) and scores everything queued for that version.
//! The flusher is its own task, so a client that disconnects cannot strand the others. If
//! the combined call fails (one bad row among good ones), every request is scored on its own
//! so each gets its own answer or its own error.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ndarray::{concatenate, Array2, Axis};
use tokio::sync::oneshot;
use wharf_core::{Probabilities, Records};

use crate::problem::Problem;
use crate::state::Loaded;
use crate::AppState;

/// Micro-batching settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MicroBatch {
    /// Most rows scored in one call (a full batch is flushed at once).
    pub max_rows: usize,
    /// How long the first request of a batch waits for others. Zero: one pass of the
    /// scheduler (the requests already being parsed join). tokio's timers tick in
    /// milliseconds, so a non-zero wait below 1 ms still waits about 1 ms.
    pub wait: Duration,
}

impl Default for MicroBatch {
    fn default() -> Self {
        MicroBatch { max_rows: 64, wait: Duration::ZERO }
    }
}

/// Batches up to this many rows run on the reactor thread when the model is in-process.
const INLINE_ROWS: usize = 16;

type Answer = Result<Probabilities, Problem>;

struct Item {
    records: Records,
    reply: oneshot::Sender<Answer>,
}

struct Pending {
    id: u64,
    loaded: Arc<Loaded>,
    items: Vec<Item>,
}

/// Queues of single-row requests, one per served version.
pub(crate) struct Batcher {
    settings: MicroBatch,
    /// Keyed by the address of the version's `Loaded` (held alive by the entry).
    queues: Mutex<HashMap<usize, Pending>>,
    next_id: std::sync::atomic::AtomicU64,
}

impl Batcher {
    pub(crate) fn new(settings: MicroBatch) -> Self {
        Batcher { settings, queues: Mutex::new(HashMap::new()), next_id: Default::default() }
    }
}

/// Class probabilities of one single-row request, scored together with whatever concurrent
/// requests to the same version arrive within the wait. Scores alone when batching is off.
pub(crate) async fn predict_proba(app: &AppState, loaded: Arc<Loaded>, records: Records) -> Answer {
    let Some(batcher) = app.batcher.as_ref() else {
        return loaded.server.predict_proba(&records).map_err(Problem::from);
    };
    batcher.submit(app, loaded, records).await
}

impl Batcher {
    async fn submit(&self, app: &AppState, loaded: Arc<Loaded>, records: Records) -> Answer {
        let (reply, answer) = oneshot::channel();
        let key = Arc::as_ptr(&loaded) as usize;
        let mut start_flusher = None;
        let mut full = None;
        {
            let mut queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
            let pending = queues.entry(key).or_insert_with(|| {
                let id = self.next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                start_flusher = Some(id);
                Pending { id, loaded: loaded.clone(), items: Vec::new() }
            });
            pending.items.push(Item { records, reply });
            if pending.items.len() >= self.settings.max_rows {
                full = queues.remove(&key);
            }
        }
        if let Some(batch) = full {
            tokio::spawn(run(batch, app.clone()));
        } else if let Some(id) = start_flusher {
            let app = app.clone();
            let wait = self.settings.wait;
            tokio::spawn(async move {
                if wait.is_zero() {
                    tokio::task::yield_now().await;
                } else {
                    tokio::time::sleep(wait).await;
                }
                let Some(this) = app.batcher.as_ref() else { return };
                let batch = {
                    let mut queues = this.queues.lock().unwrap_or_else(|e| e.into_inner());
                    match queues.get(&key) {
                        Some(p) if p.id == id => queues.remove(&key),
                        _ => None,
                    }
                };
                if let Some(batch) = batch {
                    run(batch, app.clone()).await;
                }
            });
        }
        answer.await.map_err(|_| Problem::internal("the micro-batch was dropped"))?
    }
}

/// Scores a batch (on the blocking pool) and answers every request in it.
async fn run(batch: Pending, app: AppState) {
    let Pending { loaded, items, .. } = batch;
    let model = loaded.info.name.clone();
    app.metrics.micro_batch(&model, items.len());
    let n = items.len();
    let loaded_in_process = loaded.server.capabilities().in_process;
    let work = move || {
        let answers = score(&loaded, items.iter().map(|i| &i.records).collect());
        for (item, answer) in items.into_iter().zip(answers) {
            // A requester that gave up has dropped its receiver; nothing to do.
            let _ = item.reply.send(answer);
        }
    };
    // A handful of rows scored in this process costs less than a trip to the blocking pool.
    if loaded_in_process && n <= INLINE_ROWS {
        work();
    } else if let Err(e) = tokio::task::spawn_blocking(work).await {
        tracing::error!(model = %model, error = %e, "micro-batch task failed");
    }
}

/// One answer per request, in order.
fn score(loaded: &Loaded, records: Vec<&Records>) -> Vec<Answer> {
    let alone = |r: &Records| loaded.server.predict_proba(r).map_err(Problem::from);
    if records.len() == 1 {
        return records.into_iter().map(alone).collect();
    }
    let Some(combined) = combine(&records) else {
        return records.into_iter().map(alone).collect();
    };
    match loaded.server.predict_proba(&combined) {
        Ok(all) if all.values.nrows() == records.len() => all
            .values
            .rows()
            .into_iter()
            .map(|row| {
                let values = Array2::from_shape_vec((1, row.len()), row.to_vec())
                    .map_err(|e| Problem::internal(format!("splitting a micro-batch: {e}")))?;
                Ok(Probabilities { classes: all.classes.clone(), values })
            })
            .collect(),
        // Someone's row is bad (or the answer is short): let each request fail or pass alone.
        _ => records.into_iter().map(alone).collect(),
    }
}

/// All requests' rows as one `Records`, when they share a form (all matrices of one width,
/// or all named rows).
fn combine(records: &[&Records]) -> Option<Records> {
    match records.first()? {
        Records::Matrix(_) => {
            let views = records
                .iter()
                .map(|r| match r {
                    Records::Matrix(m) => Some(m.view()),
                    _ => None,
                })
                .collect::<Option<Vec<_>>>()?;
            concatenate(Axis(0), &views).ok().map(Records::Matrix)
        }
        Records::Rows(_) => {
            let mut rows = Vec::new();
            for r in records {
                match r {
                    Records::Rows(part) => rows.extend(part.iter().cloned()),
                    _ => return None,
                }
            }
            Some(Records::Rows(rows))
        }
        // Columns, and any shape added later, are scored request by request.
        _ => None,
    }
}

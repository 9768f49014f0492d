//! Micro-batching: concurrent single-row `predict`/`predict_proba` requests to the same
//! model version are collected for a short while and scored in one call, then each request
//! gets its own row back.
//!
//! The first request of a batch starts a flusher task that waits `wait` (or until `max_rows`
//! rows are queued, whichever comes first) and scores everything queued for that version.
//! The flusher is its own task, so a client that disconnects cannot strand the others. If
//! Batches go through the one scoring path ([`wharf_core::score`]) under
//! [`OnError::Skip`]: a request whose row the model refuses gets its own error and the others
//! their rows, from one call. Only a failure no row explains (the server itself failing) makes
//! every request be scored on its own, so each still gets its own answer or its own error.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ndarray::{concatenate, Axis};
use tokio::sync::oneshot;
use wharf_core::{score, OnError, Predictions, Probabilities, Records, Scored};

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

type Answer = Result<Scored, Problem>;

struct Item {
    records: Records<'static>,
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

/// One single-row request scored together with whatever concurrent requests to the same
/// version arrive within the wait. Scores alone when batching is off.
pub(crate) async fn score_one(app: &AppState, loaded: Arc<Loaded>, records: Records<'static>) -> Answer {
    let Some(batcher) = app.batcher.as_ref() else {
        return alone(&loaded, &records);
    };
    batcher.submit(app, loaded, records).await
}

impl Batcher {
    async fn submit(&self, app: &AppState, loaded: Arc<Loaded>, records: Records<'static>) -> Answer {
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
    app.metrics.micro_batch(&model, loaded.version.0, items.len());
    let n = items.len();
    let loaded_in_process = loaded.server.capabilities().in_process;
    let work = move || {
        let answers = score_batch(&loaded, items.iter().map(|i| &i.records).collect());
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

/// One request scored on its own.
fn alone(loaded: &Loaded, records: &Records) -> Answer {
    score(loaded.server.as_ref(), records, OnError::Fail).map_err(Problem::from)
}

/// One answer per request, in order.
fn score_batch(loaded: &Loaded, records: Vec<&Records>) -> Vec<Answer> {
    let each_alone = |records: Vec<&Records>| records.into_iter().map(|r| alone(loaded, r)).collect();
    if records.len() == 1 {
        return each_alone(records);
    }
    let Some(combined) = combine(&records) else {
        return each_alone(records);
    };
    match score(loaded.server.as_ref(), &combined, OnError::Skip) {
        Ok(scored) if scored.len() + scored.rejects.len() == records.len() => split(scored),
        // The server failed for no row in particular (or answered short): let each request
        // fail or pass alone.
        _ => each_alone(records),
    }
}

/// Hands each request its own row of a batch (every request is one row), or its own reject.
fn split(scored: Scored) -> Vec<Answer> {
    let Scored { predictions, probabilities, kept, rejects } = scored;
    let n = kept.len() + rejects.len();
    let mut answers: Vec<Option<Answer>> = (0..n).map(|_| None).collect();
    for reject in rejects {
        if let Some(slot) = answers.get_mut(reject.index) {
            *slot = Some(Err(Problem::from(reject.error)));
        }
    }
    for (k, index) in kept.into_iter().enumerate() {
        let probabilities = probabilities.as_ref().map(|p| Probabilities {
            classes: p.classes.clone(),
            values: p.values.slice(ndarray::s![k..k + 1, ..]).to_owned(),
        });
        let scored = Scored { predictions: one(&predictions, k), probabilities, kept: vec![0], rejects: Vec::new() };
        if let Some(slot) = answers.get_mut(index) {
            *slot = Some(Ok(scored));
        }
    }
    answers
        .into_iter()
        .map(|a| a.unwrap_or_else(|| Err(Problem::internal("a micro-batched request got no answer"))))
        .collect()
}

/// Prediction `k` alone.
fn one(predictions: &Predictions, k: usize) -> Predictions {
    match predictions {
        Predictions::Classes { classes, indices } => {
            Predictions::Classes { classes: classes.clone(), indices: indices.get(k).copied().into_iter().collect() }
        }
        Predictions::Values(v) => Predictions::Values(v.get(k).copied().into_iter().collect()),
        Predictions::Clusters(v) => Predictions::Clusters(v.get(k).copied().into_iter().collect()),
    }
}

/// All requests' rows as one `Records`, when they share a form (all matrices of one width,
/// or all named rows).
fn combine(records: &[&Records]) -> Option<Records<'static>> {
    match records.first()? {
        Records::Matrix(_) => {
            let views = records
                .iter()
                .map(|r| match r {
                    Records::Matrix(m) => Some(m.view()),
                    _ => None,
                })
                .collect::<Option<Vec<_>>>()?;
            concatenate(Axis(0), &views).ok().map(|m| Records::Matrix(m.into()))
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

//! Champion/challenger in shadow: the champion answers every request; afterwards, off the
//! request path, the challenger scores the same records and both answers go to the shadow
//! log ([`wharf_core::shadow`]) for `wharf promote --from-shadow`.
//!
//! A request never waits for the challenger: its records are handed to one writer thread per
//! shadowed model through a bounded queue (in requests and in rows), and when the queue is
//! full the shadow copy is dropped and counted. The challenger is one of the model's served
//! slots, so reloads (admin or polled) move it as they move any version, and a client may
//! also address it directly (`?version=challenger`) without its answers being logged.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use wharf_core::jsonl::RotatingFile;
use wharf_core::shadow::{classes_of, ShadowRecord, ShadowSide, FILE_PREFIX};
use wharf_core::{score, OnError, Records, Scored};

use crate::state::{Loaded, Models};

/// Requests waiting for the challenger, at most.
const QUEUE_REQUESTS: usize = 1024;
/// Rows waiting for the challenger, at most: what bounds the queue's memory.
const QUEUE_ROWS: usize = 100_000;
/// A log file is closed and a new one started past this size.
const ROTATE_BYTES: u64 = 64 * 1024 * 1024;

/// Where and how the shadow log is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShadowLog {
    /// The directory of the `shadow-<model>-<start>.jsonl` files.
    pub dir: PathBuf,
    /// Size past which a file is closed and the next one started.
    pub rotate_bytes: u64,
}

impl Default for ShadowLog {
    fn default() -> Self {
        ShadowLog { dir: PathBuf::from("wharf-shadow"), rotate_bytes: ROTATE_BYTES }
    }
}

/// One champion's request, waiting for its challenger.
struct Job {
    request_id: String,
    time: chrono::DateTime<chrono::Utc>,
    champion: Arc<Loaded>,
    champion_us: u64,
    scored: Scored,
    challenger: Arc<Loaded>,
    records: Records<'static>,
}

/// The shadow of one served model.
pub(crate) struct Shadow {
    model: String,
    /// The served slot the challenger is.
    slot: usize,
    queue: Option<SyncSender<Job>>,
    queued_rows: Arc<AtomicUsize>,
    counts: Arc<Counts>,
    writer: Option<JoinHandle<()>>,
}

/// What happened to shadow copies, for `/metrics`.
#[derive(Debug, Default)]
struct Counts {
    logged: AtomicU64,
    dropped: AtomicU64,
    challenger_errors: AtomicU64,
}

/// Every shadowed model's shadow, by model name.
#[derive(Default)]
pub(crate) struct Shadows(BTreeMap<String, Shadow>);

impl Shadows {
    /// Starts a writer for each model with a shadow slot. The log directory is created and
    /// each model's first file opened here, so an unwritable directory fails the start,
    /// not requests.
    pub(crate) fn start(models: &Models, log: &ShadowLog) -> std::io::Result<Self> {
        let mut shadows = BTreeMap::new();
        for served in &models.models {
            if let Some(slot) = served.shadow {
                shadows.insert(served.name.clone(), Shadow::start(&served.name, slot, log)?);
            }
        }
        Ok(Shadows(shadows))
    }

    /// The shadow of `model`, when it has one.
    fn get(&self, model: &str) -> Option<&Shadow> {
        self.0.get(model)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The shadow counters in the Prometheus text format.
    pub(crate) fn render(&self, out: &mut String) {
        if self.0.is_empty() {
            return;
        }
        type Count = (&'static str, &'static str, fn(&Counts) -> &AtomicU64);
        let counters: [Count; 3] = [
            ("wharf_shadow_logged_total", "Requests the shadowed challenger scored and the log holds.", |c| &c.logged),
            ("wharf_shadow_dropped_total", "Shadow copies dropped: queue full or log unwritable.", |c| &c.dropped),
            ("wharf_shadow_challenger_errors_total", "Requests the challenger failed to score.", |c| {
                &c.challenger_errors
            }),
        ];
        for (name, help, get) in counters {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (model, shadow) in &self.0 {
                let _ = writeln!(out, "{name}{{model=\"{model}\"}} {}", get(&shadow.counts).load(Ordering::Relaxed));
            }
        }
    }
}

/// A shadowed request in flight: what its challenger needs once the champion has answered.
pub(crate) struct Pending<'a> {
    shadow: &'a Shadow,
    challenger: Arc<Loaded>,
    records: Records<'static>,
}

impl Shadows {
    /// When `champion` is a shadowed model's default version, a copy of `records` kept for
    /// its challenger; `None` (and no copy) otherwise. Every scoring route asks, so each
    /// protocol's requests to the champion are shadowed alike.
    pub(crate) fn pending(&self, models: &Models, champion: &Arc<Loaded>, records: &Records) -> Option<Pending<'_>> {
        let shadow = self.get(&champion.info.name)?;
        let challenger = shadow.challenger_for(models, champion)?;
        Some(Pending { shadow, challenger, records: records.clone().into_owned() })
    }
}

impl Pending<'_> {
    /// Hands the request, answered as `id`, to the challenger (or drops it, counted, when
    /// the queue is full).
    pub(crate) fn hand_over(self, id: String, champion: Arc<Loaded>, champion_us: u64, scored: Scored) {
        self.shadow.offer(id, champion, champion_us, scored, self.challenger, self.records);
    }
}

impl Shadow {
    fn start(model: &str, slot: usize, log: &ShadowLog) -> std::io::Result<Self> {
        let file = RotatingFile::open(&log.dir, &format!("{FILE_PREFIX}{model}"))
            .map_err(|e| std::io::Error::new(e.kind(), format!("shadow log {e}")))?;
        let (queue, jobs) = sync_channel(QUEUE_REQUESTS);
        let queued_rows = Arc::new(AtomicUsize::new(0));
        let counts = Arc::new(Counts::default());
        let writer = {
            let (rows, counts, rotate) = (queued_rows.clone(), counts.clone(), log.rotate_bytes);
            std::thread::Builder::new()
                .name(format!("wharf-shadow-{model}"))
                .spawn(move || write_loop(jobs, file, rotate, &rows, &counts))?
        };
        Ok(Shadow { model: model.to_string(), slot, queue: Some(queue), queued_rows, counts, writer: Some(writer) })
    }

    /// The challenger's current version, when `champion` is the version this shadow
    /// follows (the model's default slot): only the champion's answers are shadowed.
    fn challenger_for(&self, models: &Models, champion: &Arc<Loaded>) -> Option<Arc<Loaded>> {
        let served = models.get(&self.model)?;
        let default = served.slots.first()?.current();
        if !Arc::ptr_eq(&default, champion) {
            return None;
        }
        Some(served.slots.get(self.slot)?.current())
    }

    /// Hands a scored request to the challenger, or drops it (counted) when the queue is
    /// full. Never blocks.
    fn offer(
        &self,
        request_id: String,
        champion: Arc<Loaded>,
        champion_us: u64,
        scored: Scored,
        challenger: Arc<Loaded>,
        records: Records<'static>,
    ) {
        let rows = records.len();
        let Some(queue) = &self.queue else { return };
        if self.queued_rows.fetch_add(rows, Ordering::AcqRel) + rows > QUEUE_ROWS {
            self.queued_rows.fetch_sub(rows, Ordering::AcqRel);
            self.counts.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let job = Job { request_id, time: chrono::Utc::now(), champion, champion_us, scored, challenger, records };
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = queue.try_send(job) {
            self.queued_rows.fetch_sub(rows, Ordering::AcqRel);
            self.counts.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Drop for Shadow {
    /// Closes the queue and waits for the writer to log what is queued and flush, so a
    /// server that stops leaves a complete log.
    fn drop(&mut self) {
        self.queue.take();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

/// The writer thread: scores each queued request with the challenger and logs both sides,
/// flushing whenever the queue runs empty.
fn write_loop(jobs: Receiver<Job>, mut file: RotatingFile, rotate: u64, queued_rows: &AtomicUsize, counts: &Counts) {
    while let Ok(job) = jobs.recv() {
        let mut next = Some(job);
        while let Some(job) = next.take() {
            let rows = job.records.len();
            let record = challenge(job, counts);
            queued_rows.fetch_sub(rows, Ordering::AcqRel);
            match file.write(&record, rotate) {
                Ok(()) => {
                    counts.logged.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    counts.dropped.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(model = %record.model, "shadow log write failed: {e}");
                }
            }
            next = jobs.try_recv().ok();
        }
        if let Err(e) = file.flush() {
            tracing::warn!("shadow log flush failed: {e}");
        }
    }
    let _ = file.flush();
}

/// Scores the job's records with the challenger, through the one scoring path.
fn challenge(job: Job, counts: &Counts) -> ShadowRecord {
    let started = Instant::now();
    let result = score(job.challenger.server.as_ref(), &job.records, OnError::Fail);
    let us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    let challenger = match &result {
        Ok(scored) => ShadowSide::scored(job.challenger.version.0, us, scored),
        Err(e) => {
            counts.challenger_errors.fetch_add(1, Ordering::Relaxed);
            ShadowSide::failed(job.challenger.version.0, us, e)
        }
    };
    ShadowRecord {
        request_id: job.request_id,
        time: job.time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        model: job.champion.info.name.clone(),
        classes: classes_of(&job.scored),
        champion: ShadowSide::scored(job.champion.version.0, job.champion_us, &job.scored),
        challenger,
    }
}

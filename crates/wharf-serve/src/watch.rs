//! Production watch: the prediction log, live drift against the training profile, and the
//! labels that come back later.
//!
//! The request path does as little as it can. Drift is binned right there: a row becomes one
//! small bin index per feature (a binary search over at most 19 cut points), then the
//! version's window counts it under a short lock; no copy of the request is made for it. A
//! request the log samples keeps a copy of its records and, after the answer, hands them with
//! the answer to one writer thread through a bounded queue; when the queue is full the copy
//! is dropped and counted, so a request never waits on the log.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use serde_json::Value;
use wharf_core::drift::{DriftReport, DriftRule, Profile, Window, PROFILE_TAG};
use wharf_core::jsonl::RotatingFile;
use wharf_core::predlog::{self, FeedbackRecord, FEEDBACK_PREFIX, FILE_PREFIX};
use wharf_core::{Records, Scored, Task};

use crate::state::{Loaded, Models};

/// Watched requests waiting for the watcher, at most.
const QUEUE_REQUESTS: usize = 4096;
/// Watched rows waiting, at most: what bounds the queue's memory.
const QUEUE_ROWS: usize = 100_000;
/// Logged request ids remembered for feedback to join, at most.
const RECENT_REQUESTS: usize = 100_000;

/// The prediction log's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct PredictionLog {
    /// The directory of the `predictions-<model>-<start>.jsonl` files.
    pub dir: PathBuf,
    /// The fraction of requests logged, from 0 (off, the default) to 1 (every request).
    pub sample: f64,
    /// The models whose requests are logged; empty for every served model.
    pub models: Vec<String>,
    /// Size past which a file is closed and the next one started.
    pub rotate_bytes: u64,
}

impl Default for PredictionLog {
    fn default() -> Self {
        PredictionLog {
            dir: PathBuf::from("wharf-predictions"),
            sample: 0.0,
            models: Vec::new(),
            rotate_bytes: 64 << 20,
        }
    }
}

impl PredictionLog {
    /// Whether requests to `model` are logged at all.
    fn covers(&self, model: &str) -> bool {
        self.sample > 0.0 && (self.models.is_empty() || self.models.iter().any(|m| m == model))
    }
}

/// Live drift's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DriftWatch {
    /// Whether served versions with a reference profile are watched (default on: a
    /// request costs a copy of its records and a few bin lookups off the request path).
    pub enabled: bool,
    /// Rows in each version's rolling window.
    pub window: usize,
    /// When a feature is flagged.
    pub rule: DriftRule,
}

impl Default for DriftWatch {
    fn default() -> Self {
        DriftWatch { enabled: true, window: 10_000, rule: DriftRule::default() }
    }
}

/// One watched request, on its way to the watcher.
enum Job {
    Observe(Box<Observation>),
    Feedback(String, Vec<FeedbackRecord>),
}

struct Observation {
    loaded: Arc<Loaded>,
    records: Records<'static>,
    scored: Scored,
    request_id: String,
    time: chrono::DateTime<chrono::Utc>,
    latency_us: u64,
}

/// A model version: its name and number.
type VersionKey = (String, u64);

/// What the request path and the watcher share.
#[derive(Default)]
struct Shared {
    recent: Mutex<Recent>,
    live: Mutex<BTreeMap<VersionKey, Live>>,
    logged_rows: AtomicU64,
    dropped: AtomicU64,
    feedback_matched: AtomicU64,
    feedback_unmatched: AtomicU64,
}

/// The logged requests feedback can still join: id → model, version and first prediction.
#[derive(Default)]
struct Recent {
    order: VecDeque<String>,
    by_id: HashMap<String, (String, u64, Value)>,
}

impl Recent {
    fn insert(&mut self, id: String, entry: (String, u64, Value)) {
        if self.by_id.insert(id.clone(), entry).is_none() {
            self.order.push_back(id);
        }
        while self.order.len() > RECENT_REQUESTS {
            if let Some(old) = self.order.pop_front() {
                self.by_id.remove(&old);
            }
        }
    }
}

/// Live quality of a version, from the labels that matched its logged predictions.
#[derive(Debug, Default, Clone, Copy)]
struct Live {
    matched: u64,
    correct: u64,
    abs_error: f64,
    regression: bool,
}

/// A served version's drift: its profile (read without a lock to bin rows) and its window.
#[derive(Debug)]
pub(crate) struct Watched {
    profile: Arc<Profile>,
    window: Mutex<Window>,
}

/// The prediction log and live drift of a server.
pub(crate) struct Watch {
    log: PredictionLog,
    drift: DriftWatch,
    queue: Option<SyncSender<Job>>,
    queued_rows: Arc<AtomicUsize>,
    shared: Arc<Shared>,
    sampled: AtomicU64,
    writer: Option<JoinHandle<()>>,
}

impl Watch {
    /// Starts the watcher. With the log on, its directory is created and a first file opened
    /// per logged model here, so an unwritable directory fails the start, not requests.
    pub(crate) fn start(models: &Models, log: &PredictionLog, drift: DriftWatch) -> std::io::Result<Self> {
        if !(0.0..=1.0).contains(&log.sample) || log.sample.is_nan() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("prediction log sample {}: expected a fraction from 0 to 1", log.sample),
            ));
        }
        let mut files = BTreeMap::new();
        for served in &models.models {
            if log.covers(&served.name) {
                let file = RotatingFile::open(&log.dir, &format!("{FILE_PREFIX}{}", served.name))
                    .map_err(|e| std::io::Error::new(e.kind(), format!("prediction log {e}")))?;
                files.insert(served.name.clone(), (file, None::<RotatingFile>));
            }
        }
        let shared = Arc::new(Shared::default());
        let queued_rows = Arc::new(AtomicUsize::new(0));
        let (queue, writer) = if files.is_empty() {
            (None, None)
        } else {
            let (queue, jobs) = sync_channel(QUEUE_REQUESTS);
            let (shared, rows, log) = (shared.clone(), queued_rows.clone(), log.clone());
            let writer = std::thread::Builder::new()
                .name("wharf-watch".into())
                .spawn(move || watch_loop(jobs, files, &log, &shared, &rows))?;
            (Some(queue), Some(writer))
        };
        Ok(Watch { log: log.clone(), drift, queue, queued_rows, shared, sampled: AtomicU64::new(0), writer })
    }

    /// Whether the prediction log is on for any model.
    pub(crate) fn logs(&self) -> bool {
        self.log.sample > 0.0
    }

    /// The log's directory.
    pub(crate) fn log_dir(&self) -> &std::path::Path {
        &self.log.dir
    }

    /// What watching a request to `loaded` takes: its rows binned for the version's drift
    /// window (when drift is on and the version has a profile) and, when the log samples the
    /// request, a copy of its records. `None` when neither applies.
    pub(crate) fn begin(&self, loaded: &Arc<Loaded>, records: &Records) -> Option<Observed<'_>> {
        let watched = if self.drift.enabled { self.watched(loaded) } else { None };
        let bins = watched.and_then(|w| w.profile.bin_records(loaded.model.signature(), records, None).ok());
        let log = self.queue.is_some() && self.log.covers(&loaded.info.name) && self.sample();
        if bins.is_none() && !log {
            return None;
        }
        let records = log.then(|| records.clone().into_owned());
        Some(Observed { watch: self, loaded: loaded.clone(), bins, records })
    }

    /// Whether this request is in the log's sample.
    fn sample(&self) -> bool {
        predlog::sampled(self.sampled.fetch_add(1, Ordering::Relaxed), self.log.sample)
    }

    fn offer(&self, job: Job, rows: usize) {
        let Some(queue) = &self.queue else { return };
        if self.queued_rows.fetch_add(rows, Ordering::AcqRel) + rows > QUEUE_ROWS {
            self.queued_rows.fetch_sub(rows, Ordering::AcqRel);
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if queue.try_send(job).is_err() {
            self.queued_rows.fetch_sub(rows, Ordering::AcqRel);
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The drift of `loaded`'s version: `Err` with why there is none.
    pub(crate) fn drift(&self, loaded: &Loaded) -> Result<DriftReport, String> {
        let name = &loaded.info.name;
        if !self.drift.enabled {
            return Err("drift monitoring is off (serving.drift.enabled = false)".into());
        }
        if !loaded.model.metadata().tags.contains_key(PROFILE_TAG) {
            return Err(format!(
                "'{name}' version {} has no reference profile of its training data: models trained before \
                 Wharf kept one have none (retrain), and imported models get one with `wharf models import \
                 --reference SAMPLE.csv`",
                loaded.version
            ));
        }
        let watched = self
            .watched(loaded)
            .ok_or_else(|| format!("'{name}' version {}: its reference profile is unusable", loaded.version))?;
        let report = watched
            .window
            .lock()
            .map(|w| w.report(self.drift.rule))
            .map_err(|_| "drift window unavailable".to_string())?;
        Ok(report)
    }

    /// The version's profile and window, made on first use; `None` without a usable profile.
    fn watched<'l>(&self, loaded: &'l Loaded) -> Option<&'l Watched> {
        loaded
            .drift
            .get_or_init(|| match Profile::of_model(&loaded.model) {
                Ok(Some(profile)) => {
                    let profile = Arc::new(profile);
                    Some(Watched { window: Mutex::new(Window::new(profile.clone(), self.drift.window)), profile })
                }
                Ok(None) => None,
                Err(e) => {
                    tracing::warn!(model = %loaded.info.name, version = loaded.version.0, "reference profile unusable: {e}");
                    None
                }
            })
            .as_ref()
    }

    /// Joins labels to logged requests of `model`: how many of `labels` matched. Unmatched
    /// labels are logged too, marked so.
    pub(crate) fn feedback(&self, model: &str, labels: Vec<(String, Value)>) -> Result<(usize, usize), String> {
        if !self.log.covers(model) {
            return Err(format!(
                "the prediction log is off for '{model}': labels join logged requests (serve with --log-sample)"
            ));
        }
        let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let mut records = Vec::with_capacity(labels.len());
        let mut matched = 0;
        {
            let recent = self.shared.recent.lock().map_err(|_| "feedback unavailable".to_string())?;
            let mut live = self.shared.live.lock().map_err(|_| "feedback unavailable".to_string())?;
            for (id, label) in labels {
                let found = recent.by_id.get(&id).filter(|(m, _, _)| m == model);
                if let Some((m, version, predicted)) = found {
                    matched += 1;
                    let entry = live.entry((m.clone(), *version)).or_default();
                    entry.matched += 1;
                    match (predicted.as_f64(), label.as_f64()) {
                        (Some(p), Some(l)) if entry.regression || !predicted.is_string() => {
                            entry.regression = true;
                            entry.abs_error += (p - l).abs();
                        }
                        _ => entry.correct += u64::from(same_label(predicted, &label)),
                    }
                }
                records.push(FeedbackRecord {
                    request_id: id,
                    time: time.clone(),
                    model: model.into(),
                    label,
                    matched: found.is_some(),
                });
            }
        }
        let total = records.len();
        self.shared.feedback_matched.fetch_add(matched as u64, Ordering::Relaxed);
        self.shared.feedback_unmatched.fetch_add((total - matched) as u64, Ordering::Relaxed);
        self.offer(Job::Feedback(model.to_string(), records), total);
        Ok((total, matched))
    }

    /// The log, drift and feedback series in the Prometheus text format.
    pub(crate) fn render(&self, models: &Models, out: &mut String) {
        let s = &self.shared;
        let counters = [
            ("wharf_prediction_log_rows_total", "Rows written to the prediction log.", &s.logged_rows),
            ("wharf_watch_dropped_total", "Watched requests dropped: queue full or log unwritable.", &s.dropped),
            ("wharf_feedback_matched_total", "Labels that joined a logged request.", &s.feedback_matched),
            ("wharf_feedback_unmatched_total", "Labels whose request id the log does not hold.", &s.feedback_unmatched),
        ];
        for (name, help, value) in counters {
            let _ =
                writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}", value.load(Ordering::Relaxed));
        }
        let mut reports: Vec<(VersionKey, DriftReport)> = models
            .models
            .iter()
            .flat_map(|m| m.slots.iter().map(|slot| slot.current()))
            .filter_map(|loaded| {
                let watched = loaded.drift.get()?.as_ref()?;
                let report = watched.window.lock().ok()?.report(self.drift.rule);
                Some(((loaded.info.name.clone(), loaded.version.0), report))
            })
            .collect();
        reports.sort_by(|a, b| a.0.cmp(&b.0));
        if !reports.is_empty() {
            let _ = writeln!(out, "# HELP wharf_drift_psi Population stability index of a feature's live window against training.\n# TYPE wharf_drift_psi gauge");
            for ((model, version), r) in &reports {
                for v in r.features.iter().chain(r.prediction.as_ref()) {
                    let _ = writeln!(
                        out,
                        "wharf_drift_psi{{model=\"{model}\",version=\"{version}\",feature=\"{}\"}} {}",
                        escape(&v.name),
                        v.psi
                    );
                }
            }
            let _ = writeln!(
                out,
                "# HELP wharf_drift_window_rows Rows in the live drift window.\n# TYPE wharf_drift_window_rows gauge"
            );
            for ((model, version), r) in &reports {
                let _ = writeln!(
                    out,
                    "wharf_drift_window_rows{{model=\"{model}\",version=\"{version}\"}} {}",
                    r.window_rows
                );
            }
            let _ = writeln!(out, "# HELP wharf_drift_features_drifted Features whose PSI is at or above the threshold.\n# TYPE wharf_drift_features_drifted gauge");
            for ((model, version), r) in &reports {
                let _ = writeln!(
                    out,
                    "wharf_drift_features_drifted{{model=\"{model}\",version=\"{version}\"}} {}",
                    r.drifted.len()
                );
            }
        }
        let live: Vec<(VersionKey, Live)> = match s.live.lock() {
            Ok(l) => l.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            Err(_) => Vec::new(),
        };
        if !live.is_empty() {
            let _ = writeln!(
                out,
                "# HELP wharf_live_labelled Logged predictions a label has joined.\n# TYPE wharf_live_labelled gauge"
            );
            for ((model, version), l) in &live {
                let _ = writeln!(out, "wharf_live_labelled{{model=\"{model}\",version=\"{version}\"}} {}", l.matched);
            }
            let _ = writeln!(out, "# HELP wharf_live_accuracy Accuracy of a classifier's labelled predictions.\n# TYPE wharf_live_accuracy gauge");
            for ((model, version), l) in live.iter().filter(|(_, l)| !l.regression && l.matched > 0) {
                let _ = writeln!(
                    out,
                    "wharf_live_accuracy{{model=\"{model}\",version=\"{version}\"}} {}",
                    l.correct as f64 / l.matched as f64
                );
            }
            let _ = writeln!(out, "# HELP wharf_live_mae Mean absolute error of a regressor's labelled predictions.\n# TYPE wharf_live_mae gauge");
            for ((model, version), l) in live.iter().filter(|(_, l)| l.regression && l.matched > 0) {
                let _ = writeln!(
                    out,
                    "wharf_live_mae{{model=\"{model}\",version=\"{version}\"}} {}",
                    l.abs_error / l.matched as f64
                );
            }
        }
    }

    /// Live quality of each labelled version of `model`, for the drift answer.
    pub(crate) fn live(&self, model: &str, version: u64) -> Option<Value> {
        let live = self.shared.live.lock().ok()?;
        let l = live.get(&(model.to_string(), version))?;
        let mut v = serde_json::json!({ "labelled": l.matched });
        if l.matched > 0 {
            if l.regression {
                v["mae"] = serde_json::json!(l.abs_error / l.matched as f64);
            } else {
                v["accuracy"] = serde_json::json!(l.correct as f64 / l.matched as f64);
            }
        }
        Some(v)
    }
}

/// Whether a label names the same class as a prediction: equal strings, or equal numbers
/// however JSON spelled them (`1`, `1.0`, `"1"`).
fn same_label(predicted: &Value, label: &Value) -> bool {
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let (p, l) = (text(predicted), text(label));
    p == l || matches!((p.parse::<f64>(), l.parse::<f64>()), (Ok(a), Ok(b)) if a == b)
}

/// A Prometheus label value with `\`, `"` and newlines escaped.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// A watched request, kept from before scoring until the answer is written.
pub(crate) struct Observed<'a> {
    watch: &'a Watch,
    loaded: Arc<Loaded>,
    /// The rows' feature bins and a slot for the prediction's, when drift watches the version.
    bins: Option<Vec<u16>>,
    /// A copy of the records, when the log samples the request.
    records: Option<Records<'static>>,
}

impl Observed<'_> {
    /// Whether the request is logged, and so needs an id.
    pub(crate) fn logged(&self) -> bool {
        self.records.is_some()
    }

    /// Counts the rows in the drift window, with their predictions, and hands a logged request
    /// to the writer (or drops it, counted). Never blocks on the log.
    pub(crate) fn finish(self, request_id: Option<&str>, scored: &Scored, latency_us: u64) {
        if let (Some(mut bins), Some(watched)) = (self.bins, self.watch.watched(&self.loaded)) {
            let profile = &watched.profile;
            if profile.prediction.is_some() && scored.kept.len() * profile.width() == bins.len() {
                profile.bin_predictions(&scored.predictions, &mut bins);
            }
            if let Ok(mut window) = watched.window.lock() {
                window.observe(&bins);
            }
        }
        let Some(records) = self.records else { return };
        let rows = records.len();
        let job = Observation {
            loaded: self.loaded,
            records,
            // Rejected records are never logged; the rest of the answer is copied.
            scored: Scored {
                predictions: scored.predictions.clone(),
                probabilities: scored.probabilities.clone(),
                kept: scored.kept.clone(),
                rejects: Vec::new(),
            },
            request_id: request_id.unwrap_or_default().to_string(),
            time: chrono::Utc::now(),
            latency_us,
        };
        self.watch.offer(Job::Observe(Box::new(job)), rows);
    }
}

impl Drop for Watch {
    /// Closes the queue and waits for the watcher to write what is queued, so a server that
    /// stops leaves a complete log.
    fn drop(&mut self) {
        self.queue.take();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

/// The log files of one model: predictions, and feedback (opened at its first label).
type Files = BTreeMap<String, (RotatingFile, Option<RotatingFile>)>;

/// How often the writer drains the queue. Sleeping between drains, instead of blocking on
/// the queue, means a request that hands its copy over never has to wake a thread: at
/// thousands of logged requests a second, a wake-up each would cost the request path more
/// than the log itself.
const DRAIN_EVERY: std::time::Duration = std::time::Duration::from_millis(10);

/// The writer thread: every [`DRAIN_EVERY`], writes what the queue holds (sampled requests,
/// feedback) and flushes; once the queue is closed, writes what is left and stops.
fn watch_loop(jobs: Receiver<Job>, mut files: Files, log: &PredictionLog, shared: &Shared, queued: &AtomicUsize) {
    loop {
        let mut wrote = false;
        let closed = loop {
            match jobs.try_recv() {
                Ok(Job::Observe(o)) => {
                    queued.fetch_sub(o.records.len(), Ordering::AcqRel);
                    observe(*o, &mut files, log, shared);
                }
                Ok(Job::Feedback(model, records)) => {
                    queued.fetch_sub(records.len(), Ordering::AcqRel);
                    write_feedback(&mut files, log, &model, &records, shared);
                }
                Err(std::sync::mpsc::TryRecvError::Empty) => break false,
                Err(std::sync::mpsc::TryRecvError::Disconnected) => break true,
            }
            wrote = true;
        };
        if wrote || closed {
            for (model, (predictions, feedback)) in &mut files {
                for file in std::iter::once(predictions).chain(feedback.as_mut()) {
                    if let Err(e) = file.flush() {
                        tracing::warn!(model = %model, "prediction log flush failed: {e}");
                    }
                }
            }
        }
        if closed {
            return;
        }
        std::thread::sleep(DRAIN_EVERY);
    }
}

fn observe(o: Observation, files: &mut Files, log: &PredictionLog, shared: &Shared) {
    let model = &o.loaded.model;
    let name = &o.loaded.info.name;
    let Some((file, _)) = files.get_mut(name) else { return };
    let request = predlog::Request {
        id: &o.request_id,
        time: o.time,
        model: name,
        version: o.loaded.version.0,
        latency_us: o.latency_us,
    };
    let lines = predlog::records_of(&request, model.signature(), &o.records, &o.scored);
    let first = lines.first().map(|l| l.prediction.clone());
    for line in &lines {
        if let Err(e) = file.write(line, log.rotate_bytes) {
            shared.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(model = %name, "prediction log write failed: {e}");
            return;
        }
    }
    shared.logged_rows.fetch_add(lines.len() as u64, Ordering::Relaxed);
    if let (Some(first), Ok(mut recent)) = (first, shared.recent.lock()) {
        recent.insert(o.request_id, (name.clone(), o.loaded.version.0, first));
    }
    if model.task() == Task::Regression {
        if let Ok(mut live) = shared.live.lock() {
            live.entry((name.clone(), o.loaded.version.0)).or_default().regression = true;
        }
    }
}

fn write_feedback(files: &mut Files, log: &PredictionLog, model: &str, records: &[FeedbackRecord], shared: &Shared) {
    let Some((_, feedback)) = files.get_mut(model) else { return };
    if feedback.is_none() {
        match RotatingFile::open(&log.dir, &format!("{FEEDBACK_PREFIX}{model}")) {
            Ok(f) => *feedback = Some(f),
            Err(e) => {
                shared.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(model = %model, "feedback log: {e}");
                return;
            }
        }
    }
    let Some(file) = feedback else { return };
    for r in records {
        if let Err(e) = file.write(r, log.rotate_bytes) {
            shared.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(model = %model, "feedback log write failed: {e}");
            return;
        }
    }
}

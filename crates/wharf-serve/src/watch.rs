//! Production watch: the prediction log, live drift against the training profile, and the
//! labels that come back later.
//!
//! The request path does as little as it can: when a request is to be watched (drift is on
//! and its model has a profile, or the log samples it) it keeps a copy of the records and,
//! after the answer, hands them with the answer to one watcher thread through a bounded
//! queue. When the queue is full the copy is dropped and counted: a request never waits on
//! the log or on drift. The watcher bins the rows into the version's drift window
//! ([`wharf_core::drift::Window`]) and appends the sampled ones to the prediction log
//! ([`wharf_core::predlog`]).

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
    records: Records,
    scored: Scored,
    request_id: String,
    time: chrono::DateTime<chrono::Utc>,
    latency_us: u64,
    log: bool,
    drift: bool,
}

/// A model version: its name and number.
type VersionKey = (String, u64);
/// A version's drift window, or `None` when the version has no (usable) profile.
type Windows = HashMap<VersionKey, Option<Arc<Mutex<Window>>>>;

/// What the request path and the watcher share.
#[derive(Default)]
struct Shared {
    windows: Mutex<Windows>,
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
        let (queue, writer) = if files.is_empty() && !drift.enabled {
            (None, None)
        } else {
            let (queue, jobs) = sync_channel(QUEUE_REQUESTS);
            let (shared, rows, log, drift) = (shared.clone(), queued_rows.clone(), log.clone(), drift);
            let writer = std::thread::Builder::new()
                .name("wharf-watch".into())
                .spawn(move || watch_loop(jobs, files, &log, drift, &shared, &rows))?;
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

    /// When a request to `loaded` is watched, a copy of its records kept for the watcher.
    pub(crate) fn begin(&self, loaded: &Arc<Loaded>, records: &Records) -> Option<Observed<'_>> {
        self.queue.as_ref()?;
        let drift = self.drift.enabled && loaded.model.metadata().tags.contains_key(PROFILE_TAG);
        let log = self.log.covers(&loaded.info.name) && self.sample();
        (drift || log).then(|| Observed { watch: self, loaded: loaded.clone(), records: records.clone(), log, drift })
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
                 Wharf kept one, and imported models, have none (retrain to get one)",
                loaded.version
            ));
        }
        let window = self.window(loaded).map_err(|e| format!("'{name}' version {}: {e}", loaded.version))?;
        let report = match window {
            Some(w) => {
                w.lock().map(|w| w.report(self.drift.rule)).map_err(|_| "drift window unavailable".to_string())?
            }
            None => return Err(format!("'{name}' version {}: its reference profile is unusable", loaded.version)),
        };
        Ok(report)
    }

    /// The version's window, made on first use.
    fn window(&self, loaded: &Loaded) -> Result<Option<Arc<Mutex<Window>>>, String> {
        window_of(&self.shared, loaded, self.drift.window)
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
    pub(crate) fn render(&self, out: &mut String) {
        if self.queue.is_none() {
            return;
        }
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
        let windows: Vec<(VersionKey, Arc<Mutex<Window>>)> = match s.windows.lock() {
            Ok(w) => w.iter().filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v))).collect(),
            Err(_) => Vec::new(),
        };
        let mut reports: Vec<(VersionKey, DriftReport)> =
            windows.into_iter().filter_map(|(k, w)| w.lock().ok().map(|w| (k, w.report(self.drift.rule)))).collect();
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

/// A request kept for the watcher until the answer is written.
pub(crate) struct Observed<'a> {
    watch: &'a Watch,
    loaded: Arc<Loaded>,
    records: Records,
    log: bool,
    drift: bool,
}

impl Observed<'_> {
    /// Hands the request and its answer to the watcher (or drops it, counted). Never blocks.
    pub(crate) fn finish(self, request_id: &str, scored: &Scored, latency_us: u64) {
        let rows = self.records.len();
        let job = Observation {
            loaded: self.loaded,
            records: self.records,
            // Rejected records are never logged; the rest of the answer is copied.
            scored: Scored {
                predictions: scored.predictions.clone(),
                probabilities: scored.probabilities.clone(),
                kept: scored.kept.clone(),
                rejects: Vec::new(),
            },
            request_id: request_id.to_string(),
            time: chrono::Utc::now(),
            latency_us,
            log: self.log,
            drift: self.drift,
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

fn window_of(shared: &Shared, loaded: &Loaded, capacity: usize) -> Result<Option<Arc<Mutex<Window>>>, String> {
    let key = (loaded.info.name.clone(), loaded.version.0);
    let mut windows = shared.windows.lock().map_err(|_| "drift windows unavailable".to_string())?;
    if let Some(w) = windows.get(&key) {
        return Ok(w.clone());
    }
    let window = match Profile::of_model(&loaded.model) {
        Ok(Some(profile)) => Some(Arc::new(Mutex::new(Window::new(Arc::new(profile), capacity)))),
        Ok(None) => None,
        Err(e) => {
            tracing::warn!(model = %key.0, version = key.1, "reference profile unusable: {e}");
            None
        }
    };
    windows.insert(key, window.clone());
    Ok(window)
}

/// The log files of one model: predictions, and feedback (opened at its first label).
type Files = BTreeMap<String, (RotatingFile, Option<RotatingFile>)>;

/// The watcher thread: bins each request into its drift window, writes the sampled ones to
/// the log, and flushes whenever the queue runs empty.
fn watch_loop(
    jobs: Receiver<Job>,
    mut files: Files,
    log: &PredictionLog,
    drift: DriftWatch,
    shared: &Shared,
    queued: &AtomicUsize,
) {
    while let Ok(job) = jobs.recv() {
        let mut next = Some(job);
        while let Some(job) = next.take() {
            match job {
                Job::Observe(o) => {
                    queued.fetch_sub(o.records.len(), Ordering::AcqRel);
                    observe(*o, &mut files, log, drift, shared);
                }
                Job::Feedback(model, records) => {
                    queued.fetch_sub(records.len(), Ordering::AcqRel);
                    write_feedback(&mut files, log, &model, &records, shared);
                }
            }
            next = jobs.try_recv().ok();
        }
        for (model, (predictions, feedback)) in &mut files {
            for file in std::iter::once(predictions).chain(feedback.as_mut()) {
                if let Err(e) = file.flush() {
                    tracing::warn!(model = %model, "prediction log flush failed: {e}");
                }
            }
        }
    }
    for (predictions, feedback) in files.values_mut() {
        let _ = predictions.flush();
        if let Some(f) = feedback {
            let _ = f.flush();
        }
    }
}

fn observe(o: Observation, files: &mut Files, log: &PredictionLog, drift: DriftWatch, shared: &Shared) {
    let model = &o.loaded.model;
    if o.drift {
        if let Ok(Some(window)) = window_of(shared, &o.loaded, drift.window) {
            if let Ok(mut window) = window.lock() {
                match window.profile().bin_records(model.signature(), &o.records, Some(&o.scored.predictions)) {
                    Ok(bins) => window.observe(&bins),
                    Err(e) => tracing::debug!("drift: rows not binned: {e}"),
                }
            }
        }
    }
    if !o.log {
        return;
    }
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

//! The tracker side of the spool: any tracker backend that replays [`TrackerCall`]s
//! ([`ReplayTracker`]) gets failover as `SpoolLayer::new(path, strict).layer(backend)`, itself
//! a [`TrackerPort`]. [`TrackRuns`](super::TrackRuns) makes any `TrackerPort` such a backend;
//! an adapter that can do better (keep original timestamps, find a run an interrupted replay
//! already created) implements [`ReplayTracker`] itself, as the MLflow adapter does.
//!
//! ```
//! use wharf_core::spool::{SpoolLayer, TrackRuns};
//! use wharf_core::{FileTracker, TrackerExt, TrackerPort, WharfError};
//!
//! # fn main() -> wharf_core::Result<()> {
//! let dir = tempfile::tempdir().map_err(|e| WharfError::io(".", e))?;
//! let tracker = SpoolLayer::new(dir.path().join("spool.jsonl"), false)
//!     .layer(TrackRuns::new(FileTracker::new(dir.path().join("runs"))));
//! let run = tracker.start_run(Some("with-failover"))?;
//! run.log_metric("loss", 0.5, Some(1))?;
//! let id = run.id().to_string();
//! run.finish()?;
//! assert_eq!(tracker.get_run(&id)?.metrics.len(), 1);
//! # Ok(()) }
//! ```
//!
//! # Run ids
//!
//! Every `begin_run` is a [`TrackerCall::BeginRun`] carrying a fresh *local id*
//! (`spool-<uuid>`, see [`is_local_run_id`]). When the backend takes it, the backend
//! remembers which run it created ([`ReplayTracker::begun`]) and the caller gets the backend's
//! id, as without the spool. When the backend is down, the call is spooled and the caller gets
//! the local id; later calls naming it are spooled behind the begin. On replay the begin
//! creates the run and the calls naming the local id go to it. Calls still kept after the
//! begin went through are rewritten to name the backend's id ([`RunIds::keep`]), so a later
//! replay, in another process, needs no memory of this one. A run begun while the backend was
//! up and logged to while it is down is spooled under the backend's id and replayed as it is.
//!
//! A spooled begin is marked (`spooled: true`) so a backend that can makes its replay
//! idempotent: a replay interrupted half-way sends the begin again, and MLflow finds the run
//! it already created by its `wharf.spool_run_id` tag ([`SPOOL_RUN_ID_TAG`]).
//!
//! # Reads
//!
//! A run that exists only in the spool is read by folding its spooled calls into a
//! [`RunRecord`] ([`fold`]): every call carries its own time, so the record is exact, and
//! there is no second copy (a mirror tracker) to keep in step with the spool. A run the
//! backend has, with calls still spooled, is read from the backend with those calls folded
//! on top. Params and the end of a run that exists only in the spool are checked against the
//! same fold, so a changed param or a second end is refused at once, as the contract
//! requires. Metrics, tags and models are not (reading the spool at every metric point of a
//! long outage would cost more than the check is worth): the backend judges them on replay.
//!
//! # Models
//!
//! `log_model` saves the model beside the spool (`<spool>.models/<uuid>.wharf`, see
//! [`models_dir`]) and the call names that file; the file is removed once the backend took the
//! model ([`send_spooled_model`]), so a replay that finds it gone knows it was delivered.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ports::tracker::{
    check_params_unchanged, validate_artifact_name, MetricPoint, RunInfo, RunQuery, RunRecord, RunStatus, TrackerPort,
};
use crate::{DatasetInput, Model, Result, WharfError};

use super::{Replay, Spooled};

/// What starts every local run id.
pub const LOCAL_RUN_PREFIX: &str = "spool-";

/// Tag on a run created by replaying a spooled begin, naming its local id, so a replay
/// interrupted half-way and run again finds the run instead of creating it twice.
pub const SPOOL_RUN_ID_TAG: &str = "wharf.spool_run_id";

/// One [`TrackerPort`] call, as the spool keeps it: with its own time, so a replay can give
/// the backend the original timestamps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "snake_case")]
#[non_exhaustive]
pub enum TrackerCall {
    /// `begin_run`.
    BeginRun {
        /// The local id the run is known by until the backend names it.
        run_id: String,
        /// The name asked for (kept spooled begins always have one: the fallback is chosen
        /// when the call is spooled, so the replayed run keeps the name callers saw).
        name: Option<String>,
        /// Tags set at creation.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        tags: BTreeMap<String, String>,
        /// When the run started.
        start_time: DateTime<Utc>,
        /// Whether the call went through the spool (its replay may be a repeat).
        #[serde(default)]
        spooled: bool,
    },
    /// `log_params`.
    LogParams {
        /// The run (local or backend id).
        run_id: String,
        /// The params.
        params: BTreeMap<String, String>,
    },
    /// `log_metrics`.
    LogMetrics {
        /// The run (local or backend id).
        run_id: String,
        /// The values (NaN and infinities travel as strings, as MLflow's do).
        #[serde(with = "metric_values")]
        metrics: BTreeMap<String, f64>,
        /// The step, when one was given.
        #[serde(default)]
        step: Option<u64>,
        /// When they were logged.
        timestamp: DateTime<Utc>,
    },
    /// `set_tags`.
    SetTags {
        /// The run (local or backend id).
        run_id: String,
        /// The tags.
        tags: BTreeMap<String, String>,
    },
    /// `log_model`, with the model saved beside the spool.
    LogModel {
        /// The run (local or backend id).
        run_id: String,
        /// The artifact name.
        artifact: String,
        /// The saved model (removed once the backend took it).
        path: PathBuf,
    },
    /// `log_artifact`, with the file copied beside the spool.
    LogArtifact {
        /// The run (local or backend id).
        run_id: String,
        /// The artifact name.
        name: String,
        /// The copy (removed once the backend took it).
        path: PathBuf,
    },
    /// `log_input`.
    LogInput {
        /// The run (local or backend id).
        run_id: String,
        /// The dataset.
        input: DatasetInput,
    },
    /// `end_run`.
    EndRun {
        /// The run (local or backend id).
        run_id: String,
        /// How it ended.
        status: RunStatus,
        /// When it ended.
        end_time: DateTime<Utc>,
    },
}

impl TrackerCall {
    /// The run the call is about.
    pub fn run_id(&self) -> &str {
        match self {
            TrackerCall::BeginRun { run_id, .. }
            | TrackerCall::LogParams { run_id, .. }
            | TrackerCall::LogMetrics { run_id, .. }
            | TrackerCall::SetTags { run_id, .. }
            | TrackerCall::LogModel { run_id, .. }
            | TrackerCall::LogArtifact { run_id, .. }
            | TrackerCall::LogInput { run_id, .. }
            | TrackerCall::EndRun { run_id, .. } => run_id,
        }
    }

    fn run_id_mut(&mut self) -> &mut String {
        match self {
            TrackerCall::BeginRun { run_id, .. }
            | TrackerCall::LogParams { run_id, .. }
            | TrackerCall::LogMetrics { run_id, .. }
            | TrackerCall::SetTags { run_id, .. }
            | TrackerCall::LogModel { run_id, .. }
            | TrackerCall::LogArtifact { run_id, .. }
            | TrackerCall::LogInput { run_id, .. }
            | TrackerCall::EndRun { run_id, .. } => run_id,
        }
    }
}

/// A fresh local run id.
pub fn new_local_run_id() -> String {
    format!("{LOCAL_RUN_PREFIX}{}", uuid::Uuid::now_v7().simple())
}

/// Whether `id` is a local run id: the prefix, then only ASCII letters, digits and `-` (so a
/// local id read from a spool file is safe to put in a path or a backend's search filter).
pub fn is_local_run_id(id: &str) -> bool {
    id.strip_prefix(LOCAL_RUN_PREFIX)
        .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
}

/// The name of a spooled run begun without one: `run-` and the last 8 characters of its id
/// (the random ones: a v7 uuid starts with the time).
pub fn fallback_run_name(local_id: &str) -> String {
    let chars: Vec<char> = local_id.chars().collect();
    format!("run-{}", chars[chars.len().saturating_sub(8)..].iter().collect::<String>())
}

/// The directory spooled models are saved in, beside the spool file.
pub fn models_dir(spool: &Path) -> PathBuf {
    spool.with_extension("models")
}

/// The directory spooled artifact files are copied to, beside the spool.
pub fn artifacts_dir(spool: &Path) -> PathBuf {
    spool.with_extension("artifacts")
}

/// Sends the file a [`TrackerCall::LogArtifact`] names through `send`, then removes it. A
/// file already gone was delivered by an earlier replay, as for models.
pub fn send_spooled_artifact(path: &Path, send: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    if !path.exists() {
        tracing::debug!(artifact = %path.display(), "spooled artifact already delivered");
        return Ok(());
    }
    send(path)?;
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(WharfError::io(path, e)),
    }
}

/// Sends the model a [`TrackerCall::LogModel`] names through `send`, then removes its file.
/// A file already gone was delivered by an earlier replay (files are removed only then), so
/// that is a success.
pub fn send_spooled_model(path: &Path, send: impl FnOnce(&Model) -> Result<()>) -> Result<()> {
    if !path.exists() {
        tracing::debug!(model = %path.display(), "spooled model already delivered");
        return Ok(());
    }
    let model = Model::load(path)?;
    send(&model)?;
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(WharfError::io(path, e)),
    }
}

/// Which backend run each local id became, for one process. Both the generic
/// [`TrackRuns`](super::TrackRuns) and adapters' own [`ReplayTracker`]s keep one.
#[derive(Debug, Default)]
pub struct RunIds {
    begun: Mutex<HashMap<String, RunInfo>>,
}

impl RunIds {
    /// The backend's run for `local_id`, once its begin went through here.
    pub fn get(&self, local_id: &str) -> Option<RunInfo> {
        lock(&self.begun).get(local_id).cloned()
    }

    /// Records that `local_id` became the backend's run `info`.
    pub fn insert(&self, local_id: &str, info: RunInfo) {
        lock(&self.begun).insert(local_id.to_string(), info);
    }

    /// The id to send for `run_id`: the backend's when `run_id` is a local id begun here,
    /// otherwise `run_id` itself.
    pub fn resolve(&self, run_id: &str) -> String {
        match self.get(run_id) {
            Some(info) => info.id,
            None => run_id.to_string(),
        }
    }

    /// The form a call is kept in ([`Replay::to_keep`]): a begin is marked spooled and given
    /// its fallback name; a call naming a local id begun here names the backend's run.
    pub fn keep(&self, call: &TrackerCall) -> Option<TrackerCall> {
        let mut kept = call.clone();
        match &mut kept {
            TrackerCall::BeginRun { run_id, name, spooled, .. } => {
                if *spooled && name.is_some() {
                    return None;
                }
                *spooled = true;
                name.get_or_insert_with(|| fallback_run_name(run_id));
            }
            other => match self.get(other.run_id()) {
                Some(info) => *other.run_id_mut() = info.id,
                None => return None,
            },
        }
        Some(kept)
    }
}

/// A tracker backend behind the spool: it replays [`TrackerCall`]s ([`Replay`]), reads runs,
/// and says which run a begin it took created.
pub trait ReplayTracker: Replay<Call = TrackerCall> {
    /// The backend as a tracker: its name, and reads of the runs it has.
    fn tracker(&self) -> &dyn TrackerPort;

    /// The backend's run created from the begin with local id `local_id`, when that begin
    /// went through this backend (in this process).
    fn begun(&self, local_id: &str) -> Option<RunInfo>;
}

impl<P: ReplayTracker> Spooled<P> {
    /// Every run that exists only in the spool, folded from its calls, newest first (for
    /// listings: `wharf runs` shows them).
    pub fn spooled_runs(&self) -> Result<Vec<RunRecord>> {
        Ok(spooled_runs(&self.spooled_calls()?))
    }

    /// [`begin_run`](TrackerPort::begin_run) with `tags` set at creation (a backend's parent
    /// tag, say: MLflow nests a run under the one its `mlflow.parentRunId` names).
    pub fn begin_run_with_tags(&self, name: Option<&str>, tags: BTreeMap<String, String>) -> Result<RunInfo> {
        let local = new_local_run_id();
        let call = TrackerCall::BeginRun {
            run_id: local.clone(),
            name: name.map(str::to_string),
            tags,
            start_time: Utc::now(),
            spooled: false,
        };
        self.call(&call)?;
        Ok(self.inner().begun(&local).unwrap_or_else(|| RunInfo {
            name: name.map(str::to_string).unwrap_or_else(|| fallback_run_name(&local)),
            id: local,
        }))
    }

    /// The spooled run `run_id` as folded from the spool, when its begin is spooled and the
    /// backend has not taken it yet here.
    fn spool_only(&self, run_id: &str) -> Result<Option<RunRecord>> {
        if !is_local_run_id(run_id) || self.inner().begun(run_id).is_some() {
            return Ok(None);
        }
        Ok(fold(None, &self.spooled_calls()?, &[run_id]))
    }

    /// Refuses a call to a spool-only run that has ended, and applies `check` to its record.
    fn check_spooled(&self, run_id: &str, check: impl FnOnce(&RunRecord) -> Result<()>) -> Result<()> {
        match self.spool_only(run_id)? {
            Some(record) if record.status != RunStatus::Running => {
                Err(WharfError::invalid("run_id", format!("run '{run_id}' has ended ({})", record.status)))
            }
            Some(record) => check(&record),
            // Not (or no longer) in the spool: the backend decides.
            None => Ok(()),
        }
    }
}

impl<P: ReplayTracker> TrackerPort for Spooled<P> {
    fn name(&self) -> &str {
        self.inner().tracker().name()
    }

    fn begin_run(&self, name: Option<&str>) -> Result<RunInfo> {
        self.begin_run_with_tags(name, BTreeMap::new())
    }

    fn begin_child_run(&self, parent_run_id: &str, name: Option<&str>) -> Result<RunInfo> {
        let tags = BTreeMap::from([(crate::ports::tracker::PARENT_RUN_TAG.to_string(), parent_run_id.to_string())]);
        self.begin_run_with_tags(name, tags)
    }

    fn log_params(&self, run_id: &str, params: &BTreeMap<String, String>) -> Result<()> {
        self.check_spooled(run_id, |record| check_params_unchanged(&record.params, params))?;
        self.call(&TrackerCall::LogParams { run_id: run_id.to_string(), params: params.clone() })
    }

    fn log_metrics(&self, run_id: &str, metrics: &BTreeMap<String, f64>, step: Option<u64>) -> Result<()> {
        self.call(&TrackerCall::LogMetrics {
            run_id: run_id.to_string(),
            metrics: metrics.clone(),
            step,
            timestamp: Utc::now(),
        })
    }

    fn set_tags(&self, run_id: &str, tags: &BTreeMap<String, String>) -> Result<()> {
        self.call(&TrackerCall::SetTags { run_id: run_id.to_string(), tags: tags.clone() })
    }

    fn log_model(&self, run_id: &str, model: &Model, artifact: &str) -> Result<()> {
        crate::ports::registry::validate_name(artifact)
            .map_err(|_| WharfError::invalid("artifact", format!("'{artifact}' is not a valid artifact name")))?;
        let dir = models_dir(self.spool_path());
        let dir = std::path::absolute(&dir).map_err(|e| WharfError::io(&dir, e))?;
        let path = dir.join(format!("{}.wharf", uuid::Uuid::now_v7().simple()));
        model.save(&path)?;
        let call = TrackerCall::LogModel { run_id: run_id.to_string(), artifact: artifact.to_string(), path };
        let sent = self.call(&call);
        if sent.is_err() {
            // Neither delivered nor spooled: nothing will ever read the file.
            if let TrackerCall::LogModel { path, .. } = &call {
                let _ = std::fs::remove_file(path);
            }
        }
        sent
    }

    fn log_artifact(&self, run_id: &str, path: &Path, name: &str) -> Result<()> {
        validate_artifact_name(name)?;
        // A copy, so the caller may delete or rewrite its file while the call waits spooled.
        let dir = artifacts_dir(self.spool_path());
        let dir = std::path::absolute(&dir).map_err(|e| WharfError::io(&dir, e))?;
        std::fs::create_dir_all(&dir).map_err(|e| WharfError::io(&dir, e))?;
        let copy = dir.join(format!("{}-{name}", uuid::Uuid::now_v7().simple()));
        std::fs::copy(path, &copy).map_err(|e| WharfError::io(path, e))?;
        let call = TrackerCall::LogArtifact { run_id: run_id.to_string(), name: name.to_string(), path: copy };
        let sent = self.call(&call);
        if sent.is_err() {
            if let TrackerCall::LogArtifact { path, .. } = &call {
                let _ = std::fs::remove_file(path);
            }
        }
        sent
    }

    fn log_input(&self, run_id: &str, input: &DatasetInput) -> Result<()> {
        self.call(&TrackerCall::LogInput { run_id: run_id.to_string(), input: input.clone() })
    }

    fn end_run(&self, run_id: &str, status: RunStatus) -> Result<()> {
        if status == RunStatus::Running {
            return Err(WharfError::invalid("status", "a run cannot end as RUNNING"));
        }
        self.check_spooled(run_id, |_| Ok(()))?;
        self.call(&TrackerCall::EndRun { run_id: run_id.to_string(), status, end_time: Utc::now() })
    }

    /// The backend's runs and the runs that so far exist only in the spool, newest first: a
    /// run shows the moment it begins, server or no server. While the backend is away the
    /// spool's runs are all there is to list, so they are listed alone rather than the whole
    /// listing failing, as every other call of this tracker carries on without the server.
    fn search_runs(&self, query: &RunQuery) -> Result<Vec<RunRecord>> {
        let mut runs: Vec<RunRecord> = self.spooled_runs()?.into_iter().filter(|r| query.matches(r)).collect();
        match self.inner().tracker().search_runs(query) {
            Ok(found) => {
                let spooled: std::collections::HashSet<String> = runs.iter().map(|r| r.info.id.clone()).collect();
                runs.extend(found.into_iter().filter(|r| !spooled.contains(&r.info.id)));
            }
            Err(e @ WharfError::Backend { .. }) => {
                tracing::warn!(error = %e, "the tracker's backend is away: listing the spooled runs only");
            }
            Err(e) => return Err(e),
        }
        query.newest_first(&mut runs);
        Ok(runs)
    }

    fn get_run(&self, run_id: &str) -> Result<RunRecord> {
        if let Some(record) = self.spool_only(run_id)? {
            return Ok(record);
        }
        let remote = if is_local_run_id(run_id) {
            match self.inner().begun(run_id) {
                Some(info) => info.id,
                None => return Err(WharfError::not_found(format!("run '{run_id}'"))),
            }
        } else {
            run_id.to_string()
        };
        let base = self.inner().tracker().get_run(&remote)?;
        let mut record = fold(Some(base), &self.spooled_calls()?, &[run_id, &remote]).ok_or_else(|| {
            // Unreachable: a base record always folds to a record.
            WharfError::not_found(format!("run '{run_id}'"))
        })?;
        record.info.id = run_id.to_string();
        Ok(record)
    }

    fn enabled(&self) -> bool {
        self.inner().tracker().enabled()
    }
}

/// The record `calls` make of the run named by any of `ids`, on top of `base` (the backend's
/// record, when it has the run). Without `base`, the run's spooled begin starts the record;
/// no base and no begin: `None`.
pub fn fold(base: Option<RunRecord>, calls: &[TrackerCall], ids: &[&str]) -> Option<RunRecord> {
    let mut record = base;
    for call in calls.iter().filter(|c| ids.contains(&c.run_id())) {
        match (call, record.as_mut()) {
            (TrackerCall::BeginRun { run_id, name, tags, start_time, .. }, None) => {
                record = Some(RunRecord {
                    info: RunInfo {
                        id: run_id.clone(),
                        name: name.clone().unwrap_or_else(|| fallback_run_name(run_id)),
                    },
                    status: RunStatus::Running,
                    start_time: *start_time,
                    end_time: None,
                    params: BTreeMap::new(),
                    tags: tags.clone(),
                    metrics: Vec::new(),
                    artifacts: Vec::new(),
                    inputs: Vec::new(),
                });
            }
            (_, None) | (TrackerCall::BeginRun { .. }, Some(_)) => {}
            (TrackerCall::LogParams { params, .. }, Some(r)) => {
                r.params.extend(params.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
            (TrackerCall::LogMetrics { metrics, step, timestamp, .. }, Some(r)) => {
                r.metrics.extend(metrics.iter().map(|(k, v)| MetricPoint {
                    key: k.clone(),
                    value: *v,
                    step: step.unwrap_or(0),
                    timestamp: *timestamp,
                }));
            }
            (TrackerCall::SetTags { tags, .. }, Some(r)) => {
                r.tags.extend(tags.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
            (TrackerCall::LogModel { artifact: name, .. } | TrackerCall::LogArtifact { name, .. }, Some(r)) => {
                if !r.artifacts.contains(name) {
                    r.artifacts.push(name.clone());
                }
            }
            (TrackerCall::LogInput { input, .. }, Some(r)) => {
                if !r.inputs.iter().any(|i| i.digest == input.digest && i.context == input.context) {
                    r.inputs.push(input.clone());
                }
            }
            (TrackerCall::EndRun { status, end_time, .. }, Some(r)) => {
                r.status = *status;
                r.end_time = Some(*end_time);
            }
        }
    }
    record
}

/// Every run whose begin is among `calls`, folded, newest first.
pub fn spooled_runs(calls: &[TrackerCall]) -> Vec<RunRecord> {
    let mut runs: Vec<RunRecord> = calls
        .iter()
        .filter_map(|c| match c {
            TrackerCall::BeginRun { run_id, .. } => Some(run_id.as_str()),
            _ => None,
        })
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .filter_map(|id| fold(None, calls, &[id]))
        .collect();
    runs.sort_by_key(|r| std::cmp::Reverse(r.start_time));
    runs
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every update is a plain insert: a poisoned map is still consistent.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// JSON has no NaN: non-finite metric values travel as strings (`"NaN"`, `"inf"`, `"-inf"`).
mod metric_values {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    #[serde(untagged)]
    enum Value {
        Number(f64),
        Text(String),
    }

    pub fn serialize<S: Serializer>(metrics: &BTreeMap<String, f64>, s: S) -> Result<S::Ok, S::Error> {
        let values: BTreeMap<&str, Value> = metrics
            .iter()
            .map(|(k, v)| (k.as_str(), if v.is_finite() { Value::Number(*v) } else { Value::Text(v.to_string()) }))
            .collect();
        values.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, f64>, D::Error> {
        let values = BTreeMap::<String, Value>::deserialize(d)?;
        values
            .into_iter()
            .map(|(k, v)| match v {
                Value::Number(n) => Ok((k, n)),
                Value::Text(t) => match t.parse::<f64>() {
                    Ok(n) => Ok((k, n)),
                    Err(_) => Err(serde::de::Error::custom(format!("metric '{k}': '{t}' is not a number"))),
                },
            })
            .collect()
    }
}

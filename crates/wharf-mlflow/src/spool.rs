//! The MLflow tracker's failover: the core's spool-and-replay decorator
//! ([`wharf_core::spool`], the one lineage uses too) around [`MlflowTracker`], through
//! [`MlflowReplay`], which says how a spooled [`TrackerCall`] is sent to MLflow.
//!
//! What MLflow adds to the generic replay:
//!
//! - **Original times.** A replayed run starts, logs its metric points and ends at the times
//!   the job did (MLflow's API takes them); steps and statuses are kept too.
//! - **Idempotence.** A replayed begin creates the run with the `wharf.spool_run_id` tag
//!   naming its local id, and looks for that tag first, so a replay interrupted half-way and
//!   run again finds the run instead of creating a second one; a call naming a local id this
//!   process has not seen begun is resolved by the same tag. Params are re-sent with the same
//!   values (accepted), MLflow ignores metric points it already has, and a model whose file
//!   is gone from the spool was already delivered.
//! - **Batching.** The tracker buffers params, metrics and tags; what it holds when the
//!   server goes away is handed to the spool ([`Replay::take_unsent`]), ahead of the call
//!   that failed.
//!
//! # On disk
//!
//! The spool is the JSON-lines file [`SPOOL_FILE`] inside `[tracking.mlflow] spool_dir`, one
//! call per line, with spooled models in `spool.models/` beside it. Before, `spool_dir` held
//! one file-tracker directory per run; the setting keeps its name and default, such runs
//! still show in [`spooled_runs`], and [`replay_config`] converts them to spooled calls
//! first (into the configured experiment), so nothing spooled by an older version is lost.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use wharf_core::spool::tracker::{is_local_run_id, send_spooled_artifact, send_spooled_model};
use wharf_core::spool::{read_calls, Replay, ReplayTracker, RunIds, SpoolLayer, Spooled, TrackerCall};
use wharf_core::{Result, RunInfo, RunRecord, TrackerPort, WharfError};

use crate::client::KeyValue;
use crate::config::MlflowConfig;
use crate::error::is_unavailable;
use crate::tracker::{MlflowTracker, PARENT_RUN_ID_TAG, REPLAYED_FROM_TAG};

/// The spool file's name inside `spool_dir`.
pub const SPOOL_FILE: &str = "spool.jsonl";

/// How long calls go straight to the spool after MLflow proved unavailable, before the
/// server is tried again: each try can cost the client's retries and timeout, which a
/// training loop logging every step must not pay at every step.
pub const PROBE_EVERY: Duration = Duration::from_secs(30);

/// The MLflow tracker behind the spool: what `tracking.backend = "mlflow"` builds.
pub type SpooledMlflowTracker = Spooled<MlflowReplay>;

/// [`MlflowTracker`] as a [`ReplayTracker`]: sends spooled [`TrackerCall`]s with their
/// original times, and finds runs an earlier replay created.
#[derive(Debug)]
pub struct MlflowReplay {
    tracker: MlflowTracker,
    ids: RunIds,
}

impl MlflowReplay {
    /// `tracker`, replaying.
    pub fn new(tracker: MlflowTracker) -> Self {
        MlflowReplay { tracker, ids: RunIds::default() }
    }

    /// The wrapped tracker.
    pub fn mlflow(&self) -> &MlflowTracker {
        &self.tracker
    }

    /// The MLflow run id for `run_id`: itself, or the run a local id became (remembered, or
    /// found by its `wharf.spool_run_id` tag).
    fn resolve(&self, run_id: &str) -> Result<String> {
        if !is_local_run_id(run_id) {
            return Ok(run_id.to_string());
        }
        if let Some(info) = self.ids.get(run_id) {
            return Ok(info.id);
        }
        match self.tracker.find_tagged(REPLAYED_FROM_TAG, run_id)? {
            Some(run) => {
                let info = self.tracker.adopt(run);
                self.ids.insert(run_id, info.clone());
                Ok(info.id)
            }
            None => Err(WharfError::not_found(format!("run '{run_id}' (not in MLflow yet)"))),
        }
    }

    fn begin(
        &self,
        local: &str,
        name: Option<&str>,
        tags: &BTreeMap<String, String>,
        start: i64,
        spooled: bool,
    ) -> Result<()> {
        if self.ids.get(local).is_some() {
            return Ok(());
        }
        let mut kept = Vec::with_capacity(tags.len() + 1);
        for (k, v) in tags {
            // A parent begun in the spool is named by its local id until MLflow names it.
            let v = if k == PARENT_RUN_ID_TAG { self.resolve(v)? } else { v.clone() };
            kept.push(KeyValue::new(k.clone(), v));
        }
        let mut tags = kept;
        let info = if spooled {
            // Only a spooled begin can be a repeat, and only it carries the tag: runs begun
            // live look as they always did.
            if !is_local_run_id(local) {
                return Err(WharfError::invalid("run_id", format!("'{local}' is not a local run id")));
            }
            match self.tracker.find_tagged(REPLAYED_FROM_TAG, local)? {
                Some(run) => self.tracker.adopt(run),
                None => {
                    tags.push(KeyValue::new(REPLAYED_FROM_TAG, local));
                    self.tracker.begin_at(name, tags, start)?
                }
            }
        } else {
            // Begun live, by this process: its source is this process's.
            self.tracker.begin_at(name, crate::source::with_source(tags), start)?
        };
        self.ids.insert(local, info);
        Ok(())
    }
}

impl MlflowReplay {
    fn apply(&self, call: &TrackerCall, replaying: bool) -> Result<()> {
        match call {
            TrackerCall::BeginRun { run_id, name, tags, start_time, spooled } => {
                self.begin(run_id, name.as_deref(), tags, start_time.timestamp_millis(), *spooled)
            }
            TrackerCall::LogParams { run_id, params } => {
                self.tracker.log_params_to(&self.resolve(run_id)?, params, replaying)
            }
            TrackerCall::LogMetrics { run_id, metrics, step, timestamp } => self.tracker.log_metrics_at(
                &self.resolve(run_id)?,
                metrics,
                *step,
                timestamp.timestamp_millis(),
                replaying,
            ),
            TrackerCall::SetTags { run_id, tags } => self.tracker.set_tags_on(&self.resolve(run_id)?, tags, replaying),
            TrackerCall::LogModel { run_id, artifact, path } => {
                let id = self.resolve(run_id)?;
                send_spooled_model(path, |model| self.tracker.log_model_to(&id, model, artifact, replaying))
            }
            TrackerCall::LogArtifact { run_id, name, path } => {
                let id = self.resolve(run_id)?;
                send_spooled_artifact(path, |file| self.tracker.log_artifact_to(&id, file, name, replaying))
            }
            TrackerCall::LogInput { run_id, input } => {
                self.tracker.log_input_to(&self.resolve(run_id)?, input, replaying)
            }
            TrackerCall::EndRun { run_id, status, end_time } => {
                self.tracker.end_at(&self.resolve(run_id)?, *status, end_time.timestamp_millis(), replaying)
            }
            other => Err(WharfError::Unsupported(format!("sending {other:?} to MLflow"))),
        }
    }
}

impl Replay for MlflowReplay {
    type Call = TrackerCall;

    fn send(&self, call: &TrackerCall) -> Result<()> {
        self.apply(call, false)
    }

    /// From the spool, calls may go to a run that has ended: a replay interrupted after the
    /// end and run again sends the run's calls once more.
    fn resend(&self, call: &TrackerCall) -> Result<()> {
        self.apply(call, true)
    }

    fn is_unavailable(&self, err: &WharfError) -> bool {
        is_unavailable(err)
    }

    fn flush(&self) -> Result<()> {
        self.tracker.flush_all()
    }

    fn take_unsent(&self) -> Vec<TrackerCall> {
        self.tracker.take_unsent()
    }

    fn to_keep(&self, call: &TrackerCall) -> Option<TrackerCall> {
        self.ids.keep(call)
    }
}

impl ReplayTracker for MlflowReplay {
    fn tracker(&self) -> &dyn TrackerPort {
        &self.tracker
    }

    fn begun(&self, local_id: &str) -> Option<RunInfo> {
        self.ids.get(local_id)
    }
}

/// Starts a run nested under `parent_run_id` through the spool (MLflow's `mlflow.parentRunId`
/// tag, as [`MlflowTracker::begin_child_run`]). The parent may be a run begun in the spool:
/// the replay names it by its MLflow id.
pub fn begin_child_run(tracker: &SpooledMlflowTracker, parent_run_id: &str, name: Option<&str>) -> Result<RunInfo> {
    tracker.begin_run_with_tags(name, BTreeMap::from([(PARENT_RUN_ID_TAG.to_string(), parent_run_id.to_string())]))
}

/// The spool file `[tracking.mlflow]` names: [`SPOOL_FILE`] inside `spool_dir`.
pub fn spool_path(config: &MlflowConfig) -> PathBuf {
    config.spool_dir.join(SPOOL_FILE)
}

/// The tracker `[tracking.mlflow]` describes: [`MlflowTracker`] behind the spool, strict or
/// not as `strict` says, probing an unavailable server every [`PROBE_EVERY`].
pub fn spooled_tracker(config: &MlflowConfig) -> Result<SpooledMlflowTracker> {
    let tracker = MlflowTracker::from_config(config)?;
    Ok(SpoolLayer::new(spool_path(config), config.strict).probe_every(PROBE_EVERY).layer(MlflowReplay::new(tracker)))
}

/// What a replay did, run by run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplayReport {
    /// `(spooled run id, MLflow run id)` of each run whose spooled calls were all sent: a
    /// local id for a run MLflow never saw, the MLflow id for one spooled mid-run.
    pub replayed: Vec<(String, String)>,
    /// Spooled runs not ended in the spool, left for later (their process may still be
    /// logging to them).
    pub running: Vec<String>,
    /// `(spooled run id, error)` of each run with calls MLflow did not take (kept).
    pub failed: Vec<(String, String)>,
}

/// Replays the spool named by `[tracking.mlflow]` (`spool_dir`) into its server. Works in
/// strict mode too.
pub fn replay_config(config: &MlflowConfig) -> Result<ReplayReport> {
    let spooled = spooled_tracker(config)?;
    crate::legacy_spool::import(&config.spool_dir, spooled.spool_path())?;
    replay(&spooled)
}

/// Sends every spooled call of the runs ended in the spool to MLflow, oldest first; runs not
/// ended there stay spooled (a process may still be logging to them).
pub fn replay(spooled: &SpooledMlflowTracker) -> Result<ReplayReport> {
    let before = spooled.spooled_calls()?;
    let mut order: Vec<String> = Vec::new();
    let mut ended = BTreeSet::new();
    for call in &before {
        let id = call.run_id().to_string();
        if let TrackerCall::EndRun { .. } = call {
            ended.insert(id.clone());
        }
        if !order.contains(&id) {
            order.push(id);
        }
    }
    let core = spooled.replay_only(|call| ended.contains(call.run_id()))?;
    let after: BTreeSet<String> = spooled.spooled_calls()?.iter().map(|c| c.run_id().to_string()).collect();
    let mut report = ReplayReport::default();
    for id in order {
        if !ended.contains(&id) {
            report.running.push(id);
            continue;
        }
        let mlflow_id = if is_local_run_id(&id) { spooled.inner().begun(&id).map(|i| i.id) } else { Some(id.clone()) };
        let kept = after.contains(&id) || mlflow_id.as_ref().is_some_and(|m| after.contains(m));
        match mlflow_id {
            Some(mlflow_id) if !kept => report.replayed.push((id, mlflow_id)),
            _ => {
                let error = core.last_error.clone().unwrap_or_else(|| "MLflow did not take every call".into());
                report.failed.push((id, error));
            }
        }
    }
    Ok(report)
}

/// The runs that exist only in the spool under `spool_dir` (newest first), for `wharf runs`
/// listings.
pub fn spooled_runs(spool_dir: &Path) -> Result<Vec<RunRecord>> {
    let calls: Vec<TrackerCall> = read_calls(&spool_dir.join(SPOOL_FILE))?;
    let mut runs = wharf_core::spool::tracker::spooled_runs(&calls);
    // Runs an older version spooled, until a sync converts them.
    runs.extend(crate::legacy_spool::runs(spool_dir)?);
    runs.sort_by_key(|r| std::cmp::Reverse(r.start_time));
    Ok(runs)
}

/// Tags of a replayed run that are Wharf's bookkeeping, not the user's.
pub fn is_bookkeeping_tag(key: &str) -> bool {
    key == REPLAYED_FROM_TAG
}

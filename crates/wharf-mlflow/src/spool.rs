//! Replaying the spool: runs the tracker kept locally while MLflow was unreachable are sent
//! to MLflow, with their original timestamps, steps, statuses and models, then removed from
//! the spool.
//!
//! Replaying is safe to repeat: a run MLflow already has from an interrupted replay is found
//! again by its `wharf.spool_run_id` tag rather than created twice, params are re-sent with
//! the same values (accepted), and MLflow ignores metric points it already has. Runs still
//! RUNNING in the spool (their process may still be logging) are left alone.

use std::path::{Path, PathBuf};

use crate::config::MlflowConfig;
use chrono::Utc;
use wharf_core::ports::tracker::{RunRecord, RunStatus};
use wharf_core::{FileTracker, Model, Result, WharfError};

use crate::client::{KeyValue, Metric, MlflowClient, MlflowRunStatus};
use crate::mlmodel::{self, MLMODEL_FILE, MODEL_FILE};
use crate::tracker::{MlflowTracker, REPLAYED_FROM_TAG, SPOOL_EXPERIMENT_TAG, SPOOL_RESUME_TAG};

/// What a replay did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// `(spool run id, MLflow run id)` of each run sent and removed from the spool.
    pub replayed: Vec<(String, String)>,
    /// Spool runs still RUNNING, left for later.
    pub running: Vec<String>,
    /// `(spool run id, error)` of each run that could not be sent (kept in the spool).
    pub failed: Vec<(String, String)>,
}

/// Replays the spool named by `[tracking.mlflow]` (`spool_dir`) into its server.
pub fn replay_config(config: &MlflowConfig) -> Result<ReplayReport> {
    let tracker = MlflowTracker::from_config(config)?;
    replay(tracker.client(), &config.spool_dir, &config.experiment)
}

/// Sends every ended run in the file-tracker directory `spool_dir` to the server behind
/// `client`, into the experiment each run was meant for (`default_experiment` when the run
/// does not say). Each sent run is removed from the spool; a failed one stays for next time.
pub fn replay(client: &MlflowClient, spool_dir: &Path, default_experiment: &str) -> Result<ReplayReport> {
    let spool = FileTracker::new(spool_dir);
    let mut report = ReplayReport::default();
    for record in spool.list_runs()? {
        let spool_id = record.info.id.clone();
        if record.status == RunStatus::Running {
            report.running.push(spool_id);
            continue;
        }
        match replay_run(client, spool_dir, &record, default_experiment) {
            Ok(mlflow_id) => {
                let dir = run_dir(spool_dir, &spool_id);
                std::fs::remove_dir_all(&dir).map_err(|e| WharfError::io(&dir, e))?;
                report.replayed.push((spool_id, mlflow_id));
            }
            Err(e) => report.failed.push((spool_id, e.to_string())),
        }
    }
    Ok(report)
}

fn run_dir(spool_dir: &Path, id: &str) -> PathBuf {
    spool_dir.join(id)
}

fn replay_run(client: &MlflowClient, spool_dir: &Path, record: &RunRecord, default_experiment: &str) -> Result<String> {
    let spool_id = &record.info.id;
    let experiment = record.tags.get(SPOOL_EXPERIMENT_TAG).map(String::as_str).unwrap_or(default_experiment);
    let experiment_id = client.get_or_create_experiment(experiment)?.experiment_id;
    // A run MLflow already knows: the one this spool run continues, or an earlier replay's.
    let existing = match record.tags.get(SPOOL_RESUME_TAG) {
        Some(id) => match client.get_run(id) {
            Ok(run) => Some(run),
            Err(WharfError::NotFound { .. }) => None,
            Err(e) => return Err(e),
        },
        None => None,
    };
    let existing = match existing {
        Some(run) => Some(run),
        None => {
            let filter = format!("tags.\"{REPLAYED_FROM_TAG}\" = '{spool_id}'");
            client.search_runs(&[&experiment_id], &filter)?.into_iter().next()
        }
    };
    let run = match existing {
        Some(run) => run,
        None => client.create_run(
            &experiment_id,
            Some(&record.info.name),
            record.start_time.timestamp_millis(),
            &[KeyValue::new(REPLAYED_FROM_TAG, spool_id.clone())],
        )?,
    };
    let run_id = run.info.run_id.clone();
    let tags: Vec<KeyValue> = record
        .tags
        .iter()
        .filter(|(k, _)| k.as_str() != SPOOL_EXPERIMENT_TAG && k.as_str() != SPOOL_RESUME_TAG)
        .map(|(k, v)| KeyValue::new(k.clone(), v.clone()))
        .collect();
    let params: Vec<KeyValue> = record.params.iter().map(|(k, v)| KeyValue::new(k.clone(), v.clone())).collect();
    let metrics: Vec<Metric> = record
        .metrics
        .iter()
        .map(|m| Metric {
            key: m.key.clone(),
            value: m.value,
            timestamp: m.timestamp.timestamp_millis(),
            step: i64::try_from(m.step).unwrap_or(i64::MAX),
        })
        .collect();
    client.log_batch(&run_id, &metrics, &params, &tags)?;
    for name in &record.artifacts {
        let path = run_dir(spool_dir, spool_id).join("artifacts").join(format!("{name}.wharf"));
        let model = Model::load(&path)?;
        let logged = mlmodel::encode(&model, name, &run_id)?;
        client.upload_artifact(&run.info.artifact_uri, &format!("{name}/{MODEL_FILE}"), logged.artifact)?;
        client.upload_artifact(&run.info.artifact_uri, &format!("{name}/{MLMODEL_FILE}"), logged.mlmodel)?;
    }
    let status = match record.status {
        RunStatus::Finished => MlflowRunStatus::Finished,
        RunStatus::Killed => MlflowRunStatus::Killed,
        _ => MlflowRunStatus::Failed,
    };
    let end = record.end_time.unwrap_or_else(Utc::now).timestamp_millis();
    client.update_run(&run_id, status, Some(end))?;
    Ok(run_id)
}

/// The spooled runs (newest first), for `wharf runs` listings.
pub fn spooled_runs(spool_dir: &Path) -> Result<Vec<RunRecord>> {
    FileTracker::new(spool_dir).list_runs()
}

/// Tags of a spooled run that are Wharf's bookkeeping, not the user's.
pub fn is_bookkeeping_tag(key: &str) -> bool {
    [SPOOL_EXPERIMENT_TAG, SPOOL_RESUME_TAG].contains(&key)
}

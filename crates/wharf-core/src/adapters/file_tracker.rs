//! `FileTracker`: runs written to a local directory, readable back.
//!
//! Layout, one directory per run:
//!
//! ```text
//! <root>/<run-id>/run.json         id, name, status, times, params, tags, artifacts
//! <root>/<run-id>/metrics.jsonl    one metric point per line, appended
//! <root>/<run-id>/artifacts/<name>.wharf   a model (log_model)
//! <root>/<run-id>/artifacts/<name>         a file (log_artifact)
//! ```
//!
//! `run.json` is replaced atomically under a per-run file lock, so concurrent loggers from
//! several threads or processes never lose each other's params.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::Utc;

use crate::fsutil::{append_line, write_atomic, FileLock};
use crate::ports::tracker::{
    check_params_unchanged, validate_artifact_name, MetricPoint, RunInfo, RunQuery, RunRecord, RunStatus, TrackerPort,
};
use crate::{Model, Result, WharfError};

/// Tracks runs as files under a directory (default `./wharf-runs`).
#[derive(Debug, Clone)]
pub struct FileTracker {
    root: PathBuf,
}

/// The part of a run kept in `run.json` (metrics live in their own append-only file).
#[derive(serde::Serialize, serde::Deserialize)]
struct RunFile {
    #[serde(flatten)]
    record: RunRecord,
}

impl FileTracker {
    /// A tracker writing under `root` (created on the first run).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        FileTracker { root: root.into() }
    }

    /// The directory runs are written to.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn run_dir(&self, run_id: &str) -> Result<PathBuf> {
        // Run ids are generated here, but they also arrive from callers: refuse anything that
        // could step outside the root.
        if run_id.is_empty() || !run_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(WharfError::invalid("run_id", format!("'{run_id}' is not a run id")));
        }
        Ok(self.root.join(run_id))
    }

    fn read_record(&self, dir: &Path, run_id: &str) -> Result<RunRecord> {
        let path = dir.join("run.json");
        let text = std::fs::read_to_string(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => WharfError::not_found(format!("run '{run_id}'")),
            _ => WharfError::io(&path, e),
        })?;
        let file: RunFile = serde_json::from_str(&text)
            .map_err(|e| WharfError::invalid(path.display().to_string(), format!("unreadable run file: {e}")))?;
        Ok(file.record)
    }

    fn write_record(&self, dir: &Path, record: &RunRecord) -> Result<()> {
        let mut record = record.clone();
        record.metrics.clear();
        let text =
            serde_json::to_vec_pretty(&RunFile { record }).map_err(|e| WharfError::invalid("run", e.to_string()))?;
        write_atomic(&dir.join("run.json"), &text)
    }

    /// Applies `change` to a running run under its lock.
    fn update(&self, run_id: &str, change: impl FnOnce(&mut RunRecord) -> Result<()>) -> Result<()> {
        let dir = self.run_dir(run_id)?;
        let _lock = FileLock::acquire(&dir.join(".lock"))?;
        let mut record = self.read_record(&dir, run_id)?;
        if record.status != RunStatus::Running {
            return Err(WharfError::invalid("run_id", format!("run '{run_id}' has ended ({})", record.status)));
        }
        change(&mut record)?;
        self.write_record(&dir, &record)
    }

    /// Every run, newest first.
    pub fn list_runs(&self) -> Result<Vec<RunRecord>> {
        let entries = match std::fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(WharfError::io(&self.root, e)),
        };
        let mut runs = Vec::new();
        for entry in entries.flatten() {
            let id = entry.file_name().to_string_lossy().into_owned();
            if entry.path().join("run.json").is_file() {
                runs.push(self.get_run(&id)?);
            }
        }
        runs.sort_by_key(|r| std::cmp::Reverse(r.start_time));
        Ok(runs)
    }
}

impl TrackerPort for FileTracker {
    fn name(&self) -> &str {
        "file"
    }

    fn begin_run(&self, name: Option<&str>) -> Result<RunInfo> {
        let id = uuid::Uuid::now_v7().simple().to_string();
        let info = RunInfo { name: name.map(str::to_string).unwrap_or_else(|| format!("run-{}", &id[..8])), id };
        let record = RunRecord {
            info: info.clone(),
            status: RunStatus::Running,
            start_time: Utc::now(),
            end_time: None,
            params: BTreeMap::new(),
            tags: BTreeMap::new(),
            metrics: Vec::new(),
            artifacts: Vec::new(),
            inputs: Vec::new(),
        };
        let dir = self.run_dir(&info.id)?;
        self.write_record(&dir, &record)?;
        Ok(info)
    }

    fn log_params(&self, run_id: &str, params: &BTreeMap<String, String>) -> Result<()> {
        self.update(run_id, |record| {
            check_params_unchanged(&record.params, params)?;
            record.params.extend(params.iter().map(|(k, v)| (k.clone(), v.clone())));
            Ok(())
        })
    }

    fn log_metrics(&self, run_id: &str, metrics: &BTreeMap<String, f64>, step: Option<u64>) -> Result<()> {
        let dir = self.run_dir(run_id)?;
        let record = self.read_record(&dir, run_id)?;
        if record.status != RunStatus::Running {
            return Err(WharfError::invalid("run_id", format!("run '{run_id}' has ended")));
        }
        let timestamp = Utc::now();
        let mut lines = String::new();
        for (key, value) in metrics {
            let point = MetricPoint { key: key.clone(), value: *value, step: step.unwrap_or(0), timestamp };
            // JSON has no NaN: non-finite values travel as strings, as MLflow does.
            let mut json = serde_json::to_value(&point).map_err(|e| WharfError::invalid("metric", e.to_string()))?;
            if !value.is_finite() {
                json["value"] = serde_json::Value::String(value.to_string());
            }
            if !lines.is_empty() {
                lines.push('\n');
            }
            lines.push_str(&json.to_string());
        }
        if lines.is_empty() {
            return Ok(());
        }
        append_line(&dir.join("metrics.jsonl"), &lines)
    }

    fn set_tags(&self, run_id: &str, tags: &BTreeMap<String, String>) -> Result<()> {
        self.update(run_id, |record| {
            record.tags.extend(tags.iter().map(|(k, v)| (k.clone(), v.clone())));
            Ok(())
        })
    }

    fn log_input(&self, run_id: &str, input: &crate::DatasetInput) -> Result<()> {
        self.update(run_id, |record| {
            // The same dataset for the same purpose is one input, however often it is logged.
            if !record.inputs.iter().any(|i| i.digest == input.digest && i.context == input.context) {
                record.inputs.push(input.clone());
            }
            Ok(())
        })
    }

    fn log_model(&self, run_id: &str, model: &Model, artifact: &str) -> Result<()> {
        crate::ports::registry::validate_name(artifact)
            .map_err(|_| WharfError::invalid("artifact", format!("'{artifact}' is not a valid artifact name")))?;
        let dir = self.run_dir(run_id)?;
        model.save(dir.join("artifacts").join(format!("{artifact}.wharf")))?;
        self.update(run_id, |record| {
            if !record.artifacts.iter().any(|a| a == artifact) {
                record.artifacts.push(artifact.to_string());
            }
            Ok(())
        })
    }

    fn log_artifact(&self, run_id: &str, path: &Path, name: &str) -> Result<()> {
        validate_artifact_name(name)?;
        let dir = self.run_dir(run_id)?;
        let bytes = std::fs::read(path).map_err(|e| WharfError::io(path, e))?;
        // Checked before the copy, so an ended run gets no new files.
        if self.read_record(&dir, run_id)?.status != RunStatus::Running {
            return Err(WharfError::invalid("run_id", format!("run '{run_id}' has ended")));
        }
        let artifacts = dir.join("artifacts");
        std::fs::create_dir_all(&artifacts).map_err(|e| WharfError::io(&artifacts, e))?;
        write_atomic(&artifacts.join(name), &bytes)?;
        self.update(run_id, |record| {
            if !record.artifacts.iter().any(|a| a == name) {
                record.artifacts.push(name.to_string());
            }
            Ok(())
        })
    }

    fn end_run(&self, run_id: &str, status: RunStatus) -> Result<()> {
        if status == RunStatus::Running {
            return Err(WharfError::invalid("status", "a run cannot end as RUNNING"));
        }
        self.update(run_id, |record| {
            record.status = status;
            record.end_time = Some(Utc::now());
            Ok(())
        })
    }

    fn search_runs(&self, query: &RunQuery) -> Result<Vec<RunRecord>> {
        let entries = match std::fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(WharfError::io(&self.root, e)),
        };
        // `run.json` first (small) to filter and order; metric histories only for the runs
        // kept, so a limit of 50 over 10,000 runs reads 50 metric files.
        let mut heads = Vec::new();
        for entry in entries.flatten() {
            let id = entry.file_name().to_string_lossy().into_owned();
            let Ok(dir) = self.run_dir(&id) else { continue };
            match self.read_record(&dir, &id) {
                Ok(record) if query.matches(&record) => heads.push(record),
                Ok(_) => {}
                Err(WharfError::NotFound { .. }) => {}
                Err(e) => tracing::warn!(run = %id, error = %e, "left an unreadable run out of the listing"),
            }
        }
        query.newest_first(&mut heads);
        let mut runs = Vec::with_capacity(heads.len());
        for head in heads {
            match self.get_run(&head.info.id) {
                Ok(run) => runs.push(run),
                Err(e) => tracing::warn!(run = %head.info.id, error = %e, "left an unreadable run out of the listing"),
            }
        }
        Ok(runs)
    }

    fn get_run(&self, run_id: &str) -> Result<RunRecord> {
        let dir = self.run_dir(run_id)?;
        let mut record = self.read_record(&dir, run_id)?;
        let path = dir.join("metrics.jsonl");
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.is_empty()) {
                    let mut json: serde_json::Value = serde_json::from_str(line)
                        .map_err(|e| WharfError::invalid(format!("{}:{}", path.display(), i + 1), e.to_string()))?;
                    if let Some(s) = json["value"].as_str() {
                        let v: f64 = s.parse().unwrap_or(f64::NAN);
                        json["value"] = serde_json::Value::from(0.0);
                        let mut point: MetricPoint = serde_json::from_value(json)
                            .map_err(|e| WharfError::invalid(path.display().to_string(), e.to_string()))?;
                        point.value = v;
                        record.metrics.push(point);
                    } else {
                        record.metrics.push(
                            serde_json::from_value(json)
                                .map_err(|e| WharfError::invalid(path.display().to_string(), e.to_string()))?,
                        );
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(WharfError::io(&path, e)),
        }
        Ok(record)
    }
}

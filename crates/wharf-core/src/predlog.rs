//! The prediction log: what each scored row held and what the model answered, with the
//! labels that arrive later.
//!
//! `wharf serve` writes it (a sample of requests, off the request path), and `wharf score`
//! and `wharf stream` can write the same lines, so one reader serves `wharf drift --log` and
//! any tool that reads JSON lines. One line per row: the request id, the row's index in its
//! request, the time, the model and version, the row's features by name, the prediction, the
//! class probabilities, and the scoring latency of the request. Feedback
//! (`POST /models/{name}/feedback`) goes to `feedback-*.jsonl` beside it, one line per label,
//! saying whether the request id was found among the logged ones.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{jsonl, FeatureKind, Records, Row, Scored, Signature, WharfError};

/// Files of prediction rows are named `predictions-<model>-<start>.jsonl`.
pub const FILE_PREFIX: &str = "predictions-";
/// Files of feedback are named `feedback-<model>-<start>.jsonl`.
pub const FEEDBACK_PREFIX: &str = "feedback-";

/// One scored row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PredictionRecord {
    /// The request's id (`X-Request-Id`, or one made and echoed back); a batch job's run.
    pub request_id: String,
    /// The row's position in its request.
    pub row: usize,
    /// When it was scored (RFC 3339, UTC).
    pub time: String,
    /// The model's registered name.
    pub model: String,
    /// The version that scored.
    pub version: u64,
    /// The row's features by name (categories as their level).
    pub features: Row,
    /// The prediction: a class label or a number.
    pub prediction: Value,
    /// Class probabilities by class, for a classifier that has them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probabilities: Option<Map<String, Value>>,
    /// Scoring time of the whole request, in microseconds.
    pub latency_us: u64,
}

/// A label that arrived after its prediction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedbackRecord {
    /// The request it labels.
    pub request_id: String,
    /// When the label arrived (RFC 3339, UTC).
    pub time: String,
    /// The model it was sent for.
    pub model: String,
    /// The true outcome: a class label or a number.
    pub label: Value,
    /// Whether the request id was among the requests the log holds.
    pub matched: bool,
}

/// Who scored a request, when and how fast: what every one of its log lines shares.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// The request's id.
    pub id: &'a str,
    /// When it was scored.
    pub time: chrono::DateTime<chrono::Utc>,
    /// The model's registered name.
    pub model: &'a str,
    /// The version that scored.
    pub version: u64,
    /// Scoring time of the whole request, in microseconds.
    pub latency_us: u64,
}

/// The log lines of one scored request: row `i` of `records` with `scored`'s answer for it.
/// Rows `scored` set aside (rejected) are not logged.
pub fn records_of(
    request: &Request<'_>,
    signature: &Signature,
    records: &Records,
    scored: &Scored,
) -> Vec<PredictionRecord> {
    let Request { id: request_id, time, model, version, latency_us } = *request;
    let time = time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    scored
        .kept
        .iter()
        .enumerate()
        .map(|(k, &row)| PredictionRecord {
            request_id: request_id.to_string(),
            row,
            time: time.clone(),
            model: model.to_string(),
            version,
            features: row_of(signature, records, row),
            prediction: scored.predictions.to_json(k),
            probabilities: scored.probabilities.as_ref().map(|p| {
                p.classes
                    .iter()
                    .zip(p.values.row(k))
                    .map(|(c, v)| (c.clone(), serde_json::Number::from_f64(*v).map_or(Value::Null, Value::Number)))
                    .collect()
            }),
            latency_us,
        })
        .collect()
}

/// Row `i` of `records` as named values: a matrix's category cells become their level.
pub fn row_of(signature: &Signature, records: &Records, i: usize) -> Row {
    match records {
        Records::Rows(rows) => rows.get(i).cloned().unwrap_or_default(),
        Records::Columns(frame) => {
            let mut row = frame.row(i);
            row.retain(|name, _| signature.position(name).is_some());
            row
        }
        Records::Matrix(m) => signature
            .features
            .iter()
            .enumerate()
            .map(|(j, f)| {
                let x = m.get((i, j)).copied().unwrap_or(f64::NAN);
                let value = match &f.kind {
                    FeatureKind::Categorical { levels } if x.is_finite() && x >= 0.0 => {
                        levels.get(x as usize).map_or(Value::Null, |l| Value::String(l.clone()))
                    }
                    FeatureKind::Categorical { .. } => Value::Null,
                    _ => serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number),
                };
                (f.name.clone(), value)
            })
            .collect(),
    }
}

/// The prediction log files at `path`: the file, or a directory's `predictions-*.jsonl`.
pub fn files(path: &Path) -> Result<Vec<PathBuf>, WharfError> {
    jsonl::files(path, FILE_PREFIX, "a prediction log was written to")
}

/// Calls `each` with every prediction row of the log at `path`, in order, one line in
/// memory at a time.
pub fn for_each_record(
    path: &Path,
    each: impl FnMut(PredictionRecord) -> Result<(), WharfError>,
) -> Result<(), WharfError> {
    jsonl::for_each(&files(path)?, "prediction log record", each)
}

/// Whether item `n` of a stream is in a sample of `fraction`: a deterministic spread
/// (SplitMix64 of `n`), so 10% is one item in ten on average with no random-number state,
/// and the same items are picked on every run.
pub fn sampled(n: u64, fraction: f64) -> bool {
    if fraction >= 1.0 {
        return true;
    }
    let mut z = n.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    ((z >> 11) as f64 / (1u64 << 53) as f64) < fraction
}

/// A prediction log written in the scoring job's own threads: what `wharf score` and
/// `wharf stream` use (`wharf serve` writes from a thread of its own, off the request path).
pub struct PredictionLogWriter {
    file: std::sync::Mutex<jsonl::RotatingFile>,
    fraction: f64,
    rotate_bytes: u64,
    model: String,
    version: std::sync::atomic::AtomicU64,
    job: String,
}

impl std::fmt::Debug for PredictionLogWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PredictionLogWriter")
            .field("model", &self.model)
            .field("fraction", &self.fraction)
            .finish_non_exhaustive()
    }
}

/// Two writers are equal when they log the same job of the same model version at the same
/// rate (what options that hold one compare by), whatever their files' state.
impl PartialEq for PredictionLogWriter {
    fn eq(&self, other: &Self) -> bool {
        (&self.model, &self.job, self.fraction.to_bits()) == (&other.model, &other.job, other.fraction.to_bits())
    }
}

impl Eq for PredictionLogWriter {}

impl PredictionLogWriter {
    /// Opens `dir`'s next `predictions-<model>-<start>.jsonl`; a directory that cannot be
    /// written fails here, before any row is scored.
    /// `job` names the run in the log: a batch job's rows share it as their request id.
    pub fn open(dir: &Path, fraction: f64, model: &str, version: u64, job: &str) -> Result<Self, WharfError> {
        if !(0.0..=1.0).contains(&fraction) {
            return Err(WharfError::invalid("log_sample", format!("{fraction}: expected a fraction from 0 to 1")));
        }
        let file = jsonl::RotatingFile::open(dir, &format!("{FILE_PREFIX}{model}"))
            .map_err(|e| WharfError::io(dir, std::io::Error::new(e.kind(), format!("prediction log {e}"))))?;
        Ok(PredictionLogWriter {
            file: std::sync::Mutex::new(file),
            fraction,
            rotate_bytes: 64 << 20,
            model: model.to_string(),
            version: std::sync::atomic::AtomicU64::new(version),
            job: job.to_string(),
        })
    }

    /// The job's name, given at [`open`](Self::open).
    pub fn job(&self) -> &str {
        &self.job
    }

    /// The version whose rows are logged from now on: a stream's model can be reloaded
    /// between batches.
    pub fn set_version(&self, version: u64) {
        self.version.store(version, std::sync::atomic::Ordering::Relaxed);
    }

    /// Logs the sampled rows of a scored batch. `key(i)` gives row `i`'s request id and row
    /// number, and the number the sample is drawn by (a file's row number, a record's
    /// sequence number).
    pub fn log(
        &self,
        signature: &Signature,
        records: &Records,
        scored: &Scored,
        latency_us: u64,
        key: &dyn Fn(usize) -> (String, usize, u64),
    ) -> Result<usize, WharfError> {
        let version = self.version.load(std::sync::atomic::Ordering::Relaxed);
        let request = Request { id: "", time: chrono::Utc::now(), model: &self.model, version, latency_us };
        let mut lines = records_of(&request, signature, records, scored);
        lines.retain_mut(|line| {
            let (id, row, n) = key(line.row);
            line.request_id = id;
            line.row = row;
            sampled(n, self.fraction)
        });
        let mut file = self.file.lock().map_err(|_| WharfError::invalid("prediction log", "a writer panicked"))?;
        for line in &lines {
            file.write(line, self.rotate_bytes).map_err(|e| WharfError::io(Path::new("prediction log"), e))?;
        }
        Ok(lines.len())
    }

    /// Flushes what is buffered.
    pub fn flush(&self) -> Result<(), WharfError> {
        let mut file = self.file.lock().map_err(|_| WharfError::invalid("prediction log", "a writer panicked"))?;
        file.flush().map_err(|e| WharfError::io(Path::new("prediction log"), e))
    }
}

impl Drop for PredictionLogWriter {
    fn drop(&mut self) {
        if let Ok(mut file) = self.file.lock() {
            let _ = file.flush();
        }
    }
}

//! A batch scoring job: one input file in, one scored file (and maybe a reject file) out,
//! recorded in lineage.
//!
//! The file streams through a pipeline of three stages, so memory stays flat however large
//! the file:
//!
//! 1. a reader thread splits the file into raw chunks (sequential: it is one file);
//! 2. a rayon pool decodes and scores chunks in parallel, on every core;
//! 3. this thread writes scored chunks strictly in input order.
//!
//! The reader may run at most `2 × threads` chunks ahead of the writer, which bounds memory
//! to a handful of chunks whichever stage is slowest.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rayon::iter::{ParallelBridge, ParallelIterator};
use wharf_core::scoring::has_probabilities;
use wharf_core::{
    LineageEvent, LineageEventType, LineagePort, Model, ModelFacts, ModelServerPort, Result, SchemaField, Task,
    VersionInfo, WharfError,
};

use crate::atomic::AtomicFile;
use crate::format::{create_writer, open_reader, Format, OutputLayout, ReadSpec, RecordReader, RecordWriter};
use crate::score::{score_chunk_logged, OnError};

/// Rows per chunk unless told otherwise: large enough that per-chunk overhead vanishes,
/// small enough that a few chunks in flight stay within a few tens of megabytes.
pub const DEFAULT_CHUNK_ROWS: usize = 16 * 1024;

/// What to score and how.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ScoreOptions {
    /// The file to score.
    pub input: PathBuf,
    /// Where to write the scores (replaced atomically when the job succeeds).
    pub output: PathBuf,
    /// The input's format; `None` to take it from the extension.
    pub input_format: Option<Format>,
    /// The output's format; `None` to take it from the extension.
    pub output_format: Option<Format>,
    /// Input columns copied to the output in front of the scores; a missing one fails the
    /// job before any row is scored.
    pub id_columns: Vec<String>,
    /// Input columns copied to the output when the input has them and left out when it does
    /// not: the model's own id columns (recorded at training), which a file to score may or
    /// may not carry. They come first, then the [`id_columns`](Self::id_columns) not among
    /// them.
    pub optional_ids: Vec<String>,
    /// Stop at the first bad row, or skip bad rows to the reject file.
    pub on_error: OnError,
    /// Where skipped rows go (JSON lines); `None` for `<output>.rejects.jsonl`. Only written
    /// with [`OnError::Skip`], always then (empty when no row was rejected), so a reject file
    /// is never left over from an earlier run.
    pub reject_path: Option<PathBuf>,
    /// Rows per chunk.
    pub chunk_rows: usize,
    /// Scoring threads; 0 for one per core.
    pub threads: usize,
    /// Append `model` and `model_version` columns to every row.
    pub model_columns: bool,
    /// The job name lineage reports; `None` for `score-<model name>`.
    pub job_name: Option<String>,
    /// Where a sample of the scored rows is logged, with their features and answers (the
    /// prediction log `wharf serve` writes too); `None`: nowhere.
    pub prediction_log: Option<std::sync::Arc<wharf_core::predlog::PredictionLogWriter>>,
}

impl ScoreOptions {
    /// Options to score `input` into `output` with the defaults: formats from the
    /// extensions, no id columns, fail on the first bad row, [`DEFAULT_CHUNK_ROWS`], every
    /// core, model columns on.
    pub fn new(input: impl Into<PathBuf>, output: impl Into<PathBuf>) -> Self {
        ScoreOptions {
            input: input.into(),
            output: output.into(),
            input_format: None,
            output_format: None,
            id_columns: Vec::new(),
            optional_ids: Vec::new(),
            on_error: OnError::Fail,
            reject_path: None,
            chunk_rows: DEFAULT_CHUNK_ROWS,
            threads: 0,
            model_columns: true,
            job_name: None,
            prediction_log: None,
        }
    }

    /// Logs a sample of the scored rows to `log`.
    pub fn prediction_log(mut self, log: std::sync::Arc<wharf_core::predlog::PredictionLogWriter>) -> Self {
        self.prediction_log = Some(log);
        self
    }

    /// Sets the id columns.
    pub fn ids<S: Into<String>>(mut self, ids: impl IntoIterator<Item = S>) -> Self {
        self.id_columns = ids.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the id columns copied when the input has them (see
    /// [`optional_ids`](Self::optional_ids)).
    pub fn optional_ids<S: Into<String>>(mut self, ids: impl IntoIterator<Item = S>) -> Self {
        self.optional_ids = ids.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the bad-row policy.
    pub fn on_error(mut self, on_error: OnError) -> Self {
        self.on_error = on_error;
        self
    }

    /// Sets the reject file (used with [`OnError::Skip`]).
    pub fn reject_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.reject_path = Some(path.into());
        self
    }

    /// Sets the rows per chunk (at least 1).
    pub fn chunk_rows(mut self, rows: usize) -> Self {
        self.chunk_rows = rows.max(1);
        self
    }

    /// Sets the number of scoring threads (0: one per core).
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = threads;
        self
    }

    /// Whether to append the `model` and `model_version` columns.
    pub fn model_columns(mut self, on: bool) -> Self {
        self.model_columns = on;
        self
    }

    /// The reject file this job writes, if any.
    pub fn reject_file(&self) -> Option<PathBuf> {
        if self.on_error != OnError::Skip {
            return None;
        }
        Some(self.reject_path.clone().unwrap_or_else(|| {
            let mut name = self.output.as_os_str().to_owned();
            name.push(".rejects.jsonl");
            PathBuf::from(name)
        }))
    }
}

/// How far a job has got, reported after each chunk is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Progress {
    /// Rows read so far (scored + rejected).
    pub rows_read: u64,
    /// Rows scored and written.
    pub rows_scored: u64,
    /// Rows rejected.
    pub rows_rejected: u64,
    /// Bytes of the input consumed (estimated for Parquet).
    pub bytes_read: u64,
    /// Size of the input in bytes.
    pub total_bytes: u64,
    /// Rows in the input, when the format says up front (Parquet).
    pub total_rows: Option<u64>,
}

/// What a finished job did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScoreSummary {
    /// Rows read (scored + rejected).
    pub rows_read: u64,
    /// Rows scored and written to the output.
    pub rows_scored: u64,
    /// Rows written to the reject file.
    pub rows_rejected: u64,
    /// The output's columns, in order.
    pub columns: Vec<String>,
    /// The input's format.
    pub input_format: Format,
    /// The output's format.
    pub output_format: Format,
    /// The reject file written (with [`OnError::Skip`]).
    pub reject_file: Option<PathBuf>,
    /// The lineage run id shared by the job's START and COMPLETE events.
    pub run_id: String,
    /// Wall time of the job.
    pub elapsed: Duration,
}

/// The lineage facts of a registered model version: name, version, artifact checksum,
/// algorithm and metrics, as the registry reports them.
pub fn registered_facts(info: &VersionInfo) -> ModelFacts {
    ModelFacts {
        name: info.name.clone(),
        version: Some(info.version.0),
        sha256: Some(info.sha256.clone()),
        algorithm: Some(info.algorithm.clone()),
        metrics: info.metrics.clone(),
    }
}

/// The lineage facts for a model that is not (or not yet) registered: its name and
/// algorithm, no version.
pub fn unregistered_facts(model: &Model, name: &str) -> ModelFacts {
    ModelFacts {
        name: name.to_string(),
        version: None,
        sha256: None,
        algorithm: Some(model.metadata().algorithm.clone()),
        metrics: model.metadata().metrics.clone(),
    }
}

/// Scores `options.input` into `options.output` through `server`, a model server with the
/// model loaded (from the container's [`ModelServers`](wharf_core::ModelServers) factory, so
/// `serving.backend` decides where the predictions are computed; records are still checked
/// against the model's signature here, before any of them leaves the process).
///
/// `facts` names the model in lineage and in the `model`/`model_version` columns (see
/// [`registered_facts`] and [`unregistered_facts`]). The job emits START, then COMPLETE (or FAIL with the
/// error) to `lineage`, reading the input file and the model version, writing the output
/// (and the reject file). `progress` is called on this thread after each chunk is written.
///
/// Fails before any row is scored when the input lacks a feature or id column, or (Parquet)
/// declares a feature column of the wrong type; the error names the file and the column. A
/// failed job leaves no output behind.
pub fn score_file(
    server: &dyn ModelServerPort,
    facts: &ModelFacts,
    options: &ScoreOptions,
    lineage: &dyn LineagePort,
    progress: &mut dyn FnMut(&Progress),
) -> Result<ScoreSummary> {
    let started = Instant::now();
    let model = server.model().ok_or(WharfError::NoModelLoaded)?;
    let input_format = match options.input_format {
        Some(f) => f,
        None => Format::from_path(&options.input)?,
    };
    let output_format = match options.output_format {
        Some(f) => f,
        None => Format::from_path(&options.output)?,
    };
    let reject_file = options.reject_file();
    if same_file(&options.input, &options.output) {
        return Err(WharfError::invalid(options.output.display().to_string(), "the output would overwrite the input"));
    }
    if let Some(rejects) = &reject_file {
        if rejects == &options.output || same_file(rejects, &options.input) {
            return Err(WharfError::invalid(
                rejects.display().to_string(),
                "the reject file must be a file of its own",
            ));
        }
    }

    // Batch scoring is a job in lineage terms: START now, COMPLETE or FAIL at the end.
    let job = options.job_name.clone().unwrap_or_else(|| format!("score-{}", facts.name));
    let input_ds = format!("file:{}", options.input.display());
    let mut inputs = vec![input_ds.clone()];
    inputs.extend(facts.version.map(|v| format!("registry:{}/{v}", facts.name)));
    let mut start = LineageEvent::new(job.clone()).event_type(LineageEventType::Start).model(facts.clone());
    start.inputs = inputs.clone();
    let run_id = start.run_id.clone();
    if lineage.enabled() {
        lineage.emit(&start)?;
    }
    let mut end = LineageEvent::new(job).run_id(run_id.clone()).model(facts.clone());
    end.inputs = inputs;

    let result = run(server, facts, options, input_format, output_format, reject_file.as_deref(), progress);
    let end = match &result {
        Ok((counts, layout)) => {
            let output_ds = format!("file:{}", options.output.display());
            let mut end = end
                .output(output_ds.clone())
                .schema(input_ds, SchemaField::from_signature(model.signature()))
                .schema(output_ds, output_schema(layout))
                .meta("rows", counts.scored)
                .meta("rows_read", counts.read)
                .meta("rows_rejected", counts.rejected)
                .meta("input_format", input_format.name())
                .meta("output_format", output_format.name());
            if let Some(rejects) = &reject_file {
                end = end.output(format!("file:{}", rejects.display()));
            }
            end
        }
        Err(e) => end.event_type(LineageEventType::Fail).meta("error", e.to_string()),
    };
    if lineage.enabled() {
        lineage.emit(&end)?;
    }
    let (counts, layout) = result?;
    Ok(ScoreSummary {
        rows_read: counts.read,
        rows_scored: counts.scored,
        rows_rejected: counts.rejected,
        columns: layout.columns(),
        input_format,
        output_format,
        reject_file,
        run_id,
        elapsed: started.elapsed(),
    })
}

/// The output's columns as lineage reports them.
fn output_schema(layout: &OutputLayout) -> Vec<SchemaField> {
    let field = |name: &str, field_type: &str| SchemaField {
        name: name.to_string(),
        field_type: field_type.to_string(),
        description: None,
    };
    let prediction = match layout.task {
        Task::Classification => "STRING",
        Task::Regression => "DOUBLE",
        Task::Clustering => "BIGINT",
        _ => "STRING",
    };
    let mut fields: Vec<SchemaField> = layout.ids.iter().map(|(n, _)| field(n, "STRING")).collect();
    fields.push(field("prediction", prediction));
    fields.extend(layout.classes.iter().map(|c| field(&wharf_core::scoring::prob_column(c), "DOUBLE")));
    if layout.model.is_some() {
        fields.push(field("model", "STRING"));
        fields.push(field("model_version", "BIGINT"));
    }
    fields
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

#[derive(Debug, Default)]
struct Counts {
    read: u64,
    scored: u64,
    rejected: u64,
}

fn run(
    server: &dyn ModelServerPort,
    facts: &ModelFacts,
    options: &ScoreOptions,
    input_format: Format,
    output_format: Format,
    reject_file: Option<&Path>,
    progress: &mut dyn FnMut(&Progress),
) -> Result<(Counts, OutputLayout)> {
    let model = server.model().ok_or(WharfError::NoModelLoaded)?;
    let model = model.as_ref();
    let source = options.input.display().to_string();
    let spec = ReadSpec::for_model(model.signature(), &options.id_columns);
    let mut reader = open_reader(&options.input, input_format, &spec, options.chunk_rows)?;
    let mut ids: Vec<String> = Vec::new();
    for id in options.optional_ids.iter().chain(&options.id_columns) {
        let wanted = options.id_columns.contains(id) || reader.schema().get(id).is_some();
        if wanted && !ids.contains(id) {
            ids.push(id.clone());
        }
    }
    if ids != options.id_columns {
        // The file has some of the optional ids: open it again asking for them too (opening
        // reads only a header, a footer or a first line).
        reader = open_reader(
            &options.input,
            input_format,
            &ReadSpec::for_model(model.signature(), &ids),
            options.chunk_rows,
        )?;
    }
    let model_columns = options.model_columns.then(|| (facts.name.clone(), facts.version));
    let classes = if has_probabilities(server, model) { model.classes() } else { &[] };
    let layout = OutputLayout::new(&ids, reader.schema(), model.task(), classes, model_columns)?;
    let mut writer = create_writer(&options.output, output_format, &layout)?;
    let mut rejects = reject_file.map(AtomicFile::create).transpose()?;
    let total_bytes = std::fs::metadata(&options.input).map(|m| m.len()).unwrap_or(0);
    let sink = Sink { source: &source, on_error: options.on_error, writer: writer.as_mut(), rejects: rejects.as_mut() };
    let counts = pipeline(server, reader, options, sink, total_bytes, progress)?;
    writer.finish()?;
    if let Some(rejects) = rejects {
        rejects.commit()?;
    }
    Ok((counts, layout))
}

/// Where scored chunks go, in order.
struct Sink<'a> {
    source: &'a str,
    on_error: OnError,
    writer: &'a mut dyn RecordWriter,
    rejects: Option<&'a mut AtomicFile>,
}

/// Lets the reader run at most `window` chunks ahead of the writer, and stops it when the
/// job fails.
struct Gate {
    state: Mutex<(u64, bool)>,
    changed: Condvar,
    window: u64,
}

impl Gate {
    /// Waits until chunk `seq` may be read; false when the job was cancelled.
    fn wait_for(&self, seq: u64) -> bool {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        while !state.1 && seq >= state.0 + self.window {
            state = self.changed.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
        !state.1
    }

    fn written(&self, chunks: u64) {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).0 = chunks;
        self.changed.notify_all();
    }

    fn cancel(&self) {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).1 = true;
        self.changed.notify_all();
    }

    fn cancelled(&self) -> bool {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).1
    }
}

/// Runs the reader → parallel scoring → ordered writer pipeline.
fn pipeline(
    server: &dyn ModelServerPort,
    mut reader: Box<dyn RecordReader>,
    options: &ScoreOptions,
    mut sink: Sink<'_>,
    total_bytes: u64,
    progress: &mut dyn FnMut(&Progress),
) -> Result<Counts> {
    let (on_error, log, threads) = (options.on_error, options.prediction_log.as_deref(), options.threads);
    let threads =
        if threads == 0 { std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) } else { threads };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("wharf-score-{i}"))
        .build()
        .map_err(|e| WharfError::backend("rayon", "cannot start the scoring threads", Some(Box::new(e))))?;
    let gate = Gate { state: Mutex::new((0, false)), changed: Condvar::new(), window: 2 * threads as u64 };
    let total_rows = reader.total_rows();
    let (raw_tx, raw_rx) = mpsc::sync_channel(threads);
    let (out_tx, out_rx) = mpsc::channel();
    let gate = &gate;
    std::thread::scope(|s| {
        s.spawn(move || {
            let mut seq = 0u64;
            while gate.wait_for(seq) {
                let item = match reader.next_raw() {
                    Ok(Some(raw)) => Ok(raw),
                    Ok(None) => break,
                    Err(e) => Err(e),
                };
                let stop = item.is_err();
                if raw_tx.send((seq, item)).is_err() || stop {
                    break;
                }
                seq += 1;
            }
        });
        s.spawn(move || {
            pool.install(|| {
                raw_rx.into_iter().par_bridge().for_each_with(out_tx, |tx, (seq, raw)| {
                    if gate.cancelled() {
                        return;
                    }
                    let scored = raw.and_then(|raw| score_chunk_logged(server, raw.decode(), on_error, log));
                    let _ = tx.send((seq, scored));
                })
            })
        });
        let mut counts = Counts::default();
        let mut pending = BTreeMap::new();
        let mut next = 0u64;
        let result = (|| {
            for (seq, scored) in out_rx {
                pending.insert(seq, scored);
                while let Some(scored) = pending.remove(&next) {
                    let chunk = scored?;
                    if sink.on_error == OnError::Fail {
                        // A row that does not parse at all (no column to blame) says the file
                        // itself is damaged: report that before a bad value elsewhere.
                        let whole_row = chunk.rejects.iter().find(|r| r.column.is_none());
                        if let Some(bad) = whole_row.or(chunk.rejects.first()) {
                            return Err(bad.to_error(sink.source));
                        }
                    }
                    if let Some(file) = sink.rejects.as_deref_mut() {
                        for bad in &chunk.rejects {
                            let mut line = bad.to_json().to_string();
                            line.push('\n');
                            file.write_all(line.as_bytes()).map_err(|e| WharfError::io(file.target(), e))?;
                        }
                    }
                    sink.writer.write_chunk(&chunk)?;
                    counts.scored += chunk.len() as u64;
                    counts.rejected += chunk.rejects.len() as u64;
                    counts.read += (chunk.len() + chunk.rejects.len()) as u64;
                    next += 1;
                    gate.written(next);
                    progress(&Progress {
                        rows_read: counts.read,
                        rows_scored: counts.scored,
                        rows_rejected: counts.rejected,
                        bytes_read: chunk.end_byte,
                        total_bytes,
                        total_rows,
                    });
                }
            }
            Ok(())
        })();
        if result.is_err() {
            gate.cancel();
        }
        result.map(|()| counts)
    })
}

//! The activity demo: real-time model scoring of a sensor stream, end to end on Wharf, in
//! one command:
//!
//! ```text
//! cargo run --release -p wharf-stream --example activity
//! ```
//!
//! 1. generate a seeded, realistic sensor data set (users with a phone and a watch going
//!    through six activities; accelerometer x, y, z with noise, late readings and nulls);
//! 2. prepare it: drop nulls, 10-minute moving averages per user and
//!    device, one Parquet file;
//! 3. train a random forest on the activity label (User, Device and Model one-hot encoded)
//!    and a k-means clustering, track both runs and register both models;
//! 4. batch-score the Parquet file with both models;
//! 5. stream-score a replay of the raw stream with `activity@champion`, computing the same
//!    moving averages on the fly, with a checkpoint;
//! 6. print per-activity precision and recall, and the cluster table per user.
//!
//! Everything is written under `./wharf-activity/` (registry, runs, lineage, data). The
//! program exits non-zero if the models are no better than a poor guess.

mod prepare;
mod sensors;
mod table;

use std::collections::BTreeMap;
use std::error::Error;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use wharf_batch::format::{ColumnKind, ParquetReader, ReadSpec, RecordReader};
use wharf_batch::{score_file, ScoreOptions};
use wharf_core::fsutil::write_atomic;
use wharf_core::{
    Column, FileLineage, FileRegistry, FileTracker, Frame, LineageEvent, LineageEventType, LineagePort, Model,
    ModelFacts, ModelRef, ModelServers, RegistryPort, RunHandle, TrackerExt,
};
use wharf_ml::metrics::{accuracy, precision_recall_f1};
use wharf_ml::{CsvOptions, Dataset, Trainer};
use wharf_stream::{FileCheckpoint, FileSink, FileSource, OnError, RegistryModel, StreamJob, StreamOptions};

type Outcome<T> = Result<T, Box<dyn Error>>;

/// Accuracy below this means something is broken (a sixth, 0.17, is a blind guess).
const MIN_ACCURACY: f64 = 0.6;

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Where the demo keeps everything.
struct Workspace {
    dir: PathBuf,
    registry: Arc<FileRegistry>,
    tracker: FileTracker,
    lineage: Arc<dyn LineagePort>,
}

impl Workspace {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

fn run() -> Outcome<bool> {
    let began = Instant::now();
    let dir = PathBuf::from("wharf-activity");
    fs::create_dir_all(&dir)?;
    let ws = Workspace {
        registry: Arc::new(FileRegistry::new(dir.join("registry"))),
        tracker: FileTracker::new(dir.join("runs")),
        lineage: Arc::new(FileLineage::new(dir.join("lineage.jsonl"))),
        dir,
    };

    // 1. The raw data, as CSV (the training input) and as JSON lines (the stream to replay).
    let plan = sensors::Plan::default();
    let raw = sensors::generate(plan);
    let (raw_csv, raw_jsonl) = (ws.path("raw.csv"), ws.path("raw.jsonl"));
    write_atomic(&raw_csv, &sensors::to_csv(&raw)?)?;
    write_atomic(&raw_jsonl, &sensors::to_jsonl(&raw)?)?;
    println!(
        "1. generated {} readings: {} users x phone and watch x {} activities -> {}",
        raw.len(),
        plan.users,
        sensors::ACTIVITIES.len(),
        raw_csv.display()
    );

    // 2. Prepare: load the CSV, drop nulls, 10-minute moving averages, Parquet.
    let parquet = ws.path("prepared.parquet");
    let prepared = lineage_job(&ws, "prepare-activity", &[dataset(&raw_csv)], || {
        let loaded = sensors::from_csv(&fs::read_to_string(&raw_csv)?)?;
        if !loaded.malformed.is_empty() {
            return Err(format!("{} malformed rows in {}", loaded.malformed.len(), raw_csv.display()).into());
        }
        let prepared = prepare::prepare(loaded.records)?;
        table::write_parquet(&prepared.frame, &parquet)?;
        Ok((prepared, vec![dataset(&parquet)]))
    })?;
    println!(
        "2. prepared {} rows ({} dropped for nulls, {} late) with 10-minute moving averages -> {}",
        prepared.frame.n_rows(),
        prepared.dropped_null,
        prepared.dropped_late,
        parquet.display()
    );

    // 3. Train on the Parquet file: a random forest on the label, k-means on the averages.
    let table = read_parquet(&parquet)?;
    let forest = train_forest(&ws, &parquet, &table)?;
    let clusters = train_clusters(&ws, &parquet, &table)?;

    // 4. Batch-score the Parquet file with both.
    let scored = ws.path("scored.parquet");
    let clustered = ws.path("clusters.parquet");
    batch_score(&ws, &forest, &parquet, &scored, &["User", "Device", "gt"])?;
    batch_score(&ws, &clusters, &parquet, &clustered, &["User"])?;
    let batch_rows = read_columns(&scored, &["gt", "prediction"])?;
    let batch_accuracy = labelled_accuracy(&batch_rows);
    println!(
        "4. batch-scored {} rows -> {} (accuracy {batch_accuracy:.3}), {}",
        batch_rows.len(),
        scored.display(),
        clustered.display()
    );

    // 5. Stream-score a replay of the raw stream.
    let streamed = ws.path("stream-scores.jsonl");
    let stream_rows = stream_score(&ws, &forest, &raw_jsonl, &streamed)?;

    // 6. Report.
    let stream_accuracy = print_precision_recall(&stream_rows, &forest.classes);
    print_cluster_table(&read_columns(&clustered, &["User", "prediction"])?);
    println!("\nEverything is in {}/ ({:.1} s).", ws.dir.display(), began.elapsed().as_secs_f64());
    let ok = batch_accuracy >= MIN_ACCURACY && stream_accuracy >= MIN_ACCURACY;
    if !ok {
        eprintln!("error: accuracy below {MIN_ACCURACY} (batch {batch_accuracy:.3}, stream {stream_accuracy:.3})");
    }
    Ok(ok)
}

fn dataset(path: &Path) -> String {
    format!("file:{}", path.display())
}

/// Runs `work` as a lineage job: START, then COMPLETE with the outputs `work` names, or
/// FAIL with its error.
fn lineage_job<T>(
    ws: &Workspace,
    name: &str,
    inputs: &[String],
    work: impl FnOnce() -> Outcome<(T, Vec<String>)>,
) -> Outcome<T> {
    let start =
        inputs.iter().fold(LineageEvent::new(name).event_type(LineageEventType::Start), |e, i| e.input(i.clone()));
    ws.lineage.emit(&start)?;
    let result = work();
    let end = inputs.iter().fold(LineageEvent::new(name).run_id(start.run_id.clone()), |e, i| e.input(i.clone()));
    let end = match &result {
        Ok((_, outputs)) => outputs.iter().fold(end, |e, o| e.output(o.clone())),
        Err(err) => end.event_type(LineageEventType::Fail).meta("error", err.to_string()),
    };
    ws.lineage.emit(&end)?;
    result.map(|(value, _)| value)
}

/// The columns of the prepared file and how to read them.
const TEXT: [&str; 4] = ["User", "Device", "Model", "gt"];
const NUMBERS: [&str; 7] = ["x", "y", "z", "x_avg", "y_avg", "z_avg", "Creation_Time"];

/// Reads the prepared Parquet file back into a table, through wharf-batch's reader.
fn read_parquet(path: &Path) -> Outcome<Frame> {
    let features = TEXT
        .iter()
        .map(|c| (c.to_string(), ColumnKind::Text))
        .chain(NUMBERS.iter().map(|c| (c.to_string(), ColumnKind::Number)))
        .collect();
    let spec = ReadSpec { features, ids: Vec::new() };
    let mut reader = ParquetReader::new(fs::File::open(path)?, &path.display().to_string(), &spec, 100_000)?;
    let mut columns: Vec<(String, Column)> = Vec::new();
    while let Some(chunk) = reader.next_chunk()? {
        if let Some(bad) = chunk.rejects.first() {
            return Err(bad.to_error(&path.display().to_string()).into());
        }
        for (name, column) in chunk.frame.columns() {
            match (columns.iter_mut().find(|(n, _)| n == name), column) {
                (Some((_, Column::Text(all))), Column::Text(part)) => all.extend(part.iter().cloned()),
                (Some((_, Column::Numeric(all))), Column::Numeric(part)) => all.extend(part.iter().copied()),
                (None, _) => columns.push((name.clone(), column.clone())),
                _ => return Err(format!("column {name} changed type between row groups").into()),
            }
        }
    }
    Ok(Frame::from_columns(columns)?)
}

/// Reads some columns of a Parquet file as JSON values, row by row.
fn read_columns(path: &Path, names: &[&str]) -> Outcome<Vec<Vec<Value>>> {
    let spec = ReadSpec { features: Vec::new(), ids: names.iter().map(|s| s.to_string()).collect() };
    let mut reader = ParquetReader::new(fs::File::open(path)?, &path.display().to_string(), &spec, 100_000)?;
    let mut rows = Vec::new();
    while let Some(chunk) = reader.next_chunk()? {
        let n = chunk.positions.len();
        for i in 0..n {
            rows.push(chunk.ids.iter().map(|(_, values)| values.get(i).cloned().unwrap_or(Value::Null)).collect());
        }
    }
    Ok(rows)
}

/// A registered model and what the report needs of it.
struct Registered {
    name: String,
    version: u64,
    model: Model,
    classes: Vec<String>,
    /// The tracked run that produced it.
    run_id: String,
}

/// The hyperparameter grid: number of trees × depth. Four trials keep the demo quick while
/// still showing a search.
const GRID: [(usize, usize); 4] = [(15, 8), (15, 14), (30, 8), (30, 14)];

/// The random forest: categorical User, Device and Model (one-hot encoded by Wharf's
/// preprocessing), raw and averaged x, y, z. A grid search picks the trees and depth on a
/// validation split, each trial tracked as a run; the best is evaluated on a held-out test
/// split, its crosstab logged with its run, and it is registered.
fn train_forest(ws: &Workspace, parquet: &Path, table: &Frame) -> Outcome<Registered> {
    let options = CsvOptions { target: Some("gt".into()), drop: vec!["Creation_Time".into()], ..Default::default() };
    let data = Dataset::from_frame(&dataset(parquet), table.clone(), &options)?;
    let (rest, test) = data.split(0.25, 7)?;
    let (fit, validation) = rest.split(0.25, 8)?;
    let forest = |trees: usize, depth: usize| Trainer::random_forest().trees(trees).max_depth(Some(depth)).seed(7);
    let mut best: Option<(f64, usize, usize)> = None;
    for (trees, depth) in GRID {
        let trainer = forest(trees, depth);
        let model = trainer.fit(&fit)?;
        let score = wharf_ml::evaluate(&model, &validation)?.get("accuracy").copied().unwrap_or(0.0);
        let run = ws.tracker.start_run(Some("activity-forest-trial"))?;
        run.log_params(trainer.params())?;
        run.log_metric("validation_accuracy", score, None)?;
        run.finish()?;
        if best.is_none_or(|(b, _, _)| score > b) {
            best = Some((score, trees, depth));
        }
    }
    let Some((_, trees, depth)) = best else { return Err("the grid is empty".into()) };
    let trainer = forest(trees, depth);
    let model = trainer.fit(&rest)?;
    let metrics = wharf_ml::evaluate(&model, &test)?;
    let model = model.with_metrics(metrics.clone());
    // The cross-tabulation of label against prediction, kept with the run so its errors can
    // be read later, class by class.
    let crosstab = serde_json::to_string(&crosstab(&model, &test)?)?;
    let registered = track_and_register(ws, parquet, model, "activity", &trainer, |run| {
        run.log_metrics(metrics.clone())?;
        Ok(run.set_tag("crosstab", &crosstab)?)
    })?;
    println!(
        "3. random forest (grid of {}, best: {trees} trees, depth {depth}) on {} rows: test accuracy {:.3} -> {}@{} (alias champion, run {})",
        GRID.len(),
        rest.n_rows(),
        metrics.get("accuracy").copied().unwrap_or(f64::NAN),
        registered.name,
        registered.version,
        registered.run_id
    );
    Ok(registered)
}

/// Label → prediction → count on the holdout.
fn crosstab(model: &Model, test: &Dataset) -> Outcome<BTreeMap<String, BTreeMap<String, usize>>> {
    let predictions = model.predict(&wharf_core::Records::Columns(test.features.clone()))?;
    let Some((_, truth)) = &test.target else { return Err("the holdout has no label".into()) };
    let mut table: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for i in 0..predictions.len() {
        *table.entry(truth.text_at(i)).or_default().entry(predictions.display(i)).or_default() += 1;
    }
    Ok(table)
}

/// k-means with one cluster per activity, on the moving averages only.
fn train_clusters(ws: &Workspace, parquet: &Path, table: &Frame) -> Outcome<Registered> {
    let k = sensors::ACTIVITIES.len();
    let drop = TEXT.iter().chain(&["x", "y", "z", "Creation_Time"]).map(|c| c.to_string()).collect();
    let data = Dataset::from_frame(&dataset(parquet), table.clone(), &CsvOptions { drop, ..Default::default() })?;
    let trainer = Trainer::kmeans(k).seed(7);
    let model = trainer.fit(&data)?;
    let registered = track_and_register(ws, parquet, model, "activity-clusters", &trainer, |_| Ok(()))?;
    println!(
        "   k-means (k = {k}) on x_avg, y_avg, z_avg -> {}@{} (alias champion)",
        registered.name, registered.version
    );
    Ok(registered)
}

/// Tracks the run that made `model` (its parameters, what `log` adds, the model itself),
/// then registers it.
fn track_and_register(
    ws: &Workspace,
    parquet: &Path,
    model: Model,
    name: &str,
    trainer: &Trainer,
    log: impl FnOnce(&RunHandle<'_>) -> Outcome<()>,
) -> Outcome<Registered> {
    let run = ws.tracker.start_run(Some(name))?;
    run.log_params(trainer.params())?;
    log(&run)?;
    run.log_model(&model, name)?;
    let run_id = run.id().to_string();
    run.finish()?;
    register(ws, parquet, model, name, run_id)
}

/// Registers `model` as the next version of `name`, points `champion` at it, and records
/// the training job in lineage.
fn register(ws: &Workspace, parquet: &Path, model: Model, name: &str, run_id: String) -> Outcome<Registered> {
    let version = lineage_job(ws, &format!("train-{name}"), &[dataset(parquet)], || {
        let version = ws.registry.register(&model, name)?;
        ws.registry.set_alias(name, "champion", &version)?;
        Ok((version, vec![format!("registry:{name}/{}", version.0)]))
    })?;
    let classes = model.classes().to_vec();
    Ok(Registered { name: name.to_string(), version: version.0, model, classes, run_id })
}

/// Scores a whole file with wharf-batch (which records its own lineage).
fn batch_score(ws: &Workspace, model: &Registered, input: &Path, output: &Path, ids: &[&str]) -> Outcome<()> {
    let info =
        ws.registry.version_info(&model.name, &wharf_core::Selector::Version(wharf_core::Version(model.version)))?;
    let facts = ModelFacts {
        name: model.name.clone(),
        version: Some(model.version),
        sha256: Some(info.sha256),
        algorithm: Some(info.algorithm),
        metrics: info.metrics,
    };
    let options = ScoreOptions::new(input, output).ids(ids.iter().copied());
    let server = wharf_core::ModelServers::local().serve(model.model.clone())?;
    score_file(server.as_ref(), &facts, &options, ws.lineage.as_ref(), &mut |_| {})?;
    Ok(())
}

/// Replays the raw stream through a streaming job and returns `(gt, prediction)` rows.
fn stream_score(ws: &Workspace, model: &Registered, input: &Path, output: &Path) -> Outcome<Vec<Vec<Value>>> {
    // A fresh replay each time the demo runs: forget the previous run's output.
    let checkpoint = FileCheckpoint::beside(output);
    for stale in [output, checkpoint.path()] {
        if stale.exists() {
            fs::remove_file(stale)?;
        }
    }
    let reference = ModelRef { name: model.name.clone(), selector: wharf_core::Selector::Alias("champion".into()) };
    let options = StreamOptions {
        batch_size: 256,
        max_latency: Duration::from_millis(200),
        ids: vec!["User".into(), "Device".into(), "gt".into(), "Creation_Time".into()],
        window: Some(prepare::window_spec()),
        emit_features: true,
        // A replay of recorded sensor data: count a record the model refuses and go on.
        on_error: OnError::Skip,
        ..Default::default()
    };
    let report = StreamJob::new(
        FileSource::open(input, false)?,
        FileSink::open(output)?,
        RegistryModel::new(ws.registry.clone() as Arc<dyn RegistryPort>, reference, ModelServers::local()),
    )
    .checkpoints(checkpoint)
    .lineage(ws.lineage.clone())
    .options(options)
    .run()?;
    let c = report.counts;
    println!(
        "5. streamed {} raw readings in {} micro-batches: {} scored, {} dropped for nulls, {} late -> {}",
        c.records_in,
        c.batches,
        c.records_out,
        c.dropped_null,
        c.dropped_late,
        output.display()
    );
    let mut rows = Vec::new();
    for line in fs::read_to_string(output)?.lines() {
        let record: Value = serde_json::from_str(line)?;
        rows.push(vec![record["gt"].clone(), record["prediction"].clone()]);
    }
    Ok(rows)
}

/// Accuracy over the rows that have a label.
fn labelled_accuracy(rows: &[Vec<Value>]) -> f64 {
    let (truth, predicted) = label_indices(rows, &sensors::ACTIVITIES.map(String::from));
    accuracy(&truth, &predicted)
}

/// `(gt, prediction)` rows as class indices, skipping unlabelled rows.
fn label_indices(rows: &[Vec<Value>], classes: &[String]) -> (Vec<u32>, Vec<u32>) {
    let index = |v: &Value| v.as_str().and_then(|s| classes.iter().position(|c| c == s)).map(|i| i as u32);
    rows.iter().filter_map(|row| Some((index(row.first()?)?, index(row.get(1)?)?))).unzip()
}

/// Per-activity precision and recall of the streamed predictions; returns the accuracy.
fn print_precision_recall(rows: &[Vec<Value>], classes: &[String]) -> f64 {
    let (truth, predicted) = label_indices(rows, classes);
    println!("\nStreamed predictions against the labels ({} labelled readings):", truth.len());
    println!("  {:<11} {:>9} {:>9} {:>8}", "activity", "precision", "recall", "support");
    for (i, class) in classes.iter().enumerate() {
        let (precision, recall, _) = precision_recall_f1(&truth, &predicted, i as u32);
        let support = truth.iter().filter(|t| **t == i as u32).count();
        println!("  {class:<11} {precision:>9.3} {recall:>9.3} {support:>8}");
    }
    let acc = accuracy(&truth, &predicted);
    println!("  {:<11} {acc:>9.3}", "accuracy");
    acc
}

/// How many of each user's readings fall in each cluster.
fn print_cluster_table(rows: &[Vec<Value>]) {
    let mut table: BTreeMap<String, BTreeMap<i64, usize>> = BTreeMap::new();
    let mut clusters = std::collections::BTreeSet::new();
    for row in rows {
        let (Some(user), Some(cluster)) = (row.first().and_then(Value::as_str), row.get(1).and_then(Value::as_i64))
        else {
            continue;
        };
        clusters.insert(cluster);
        *table.entry(user.to_string()).or_default().entry(cluster).or_default() += 1;
    }
    println!("\nReadings per cluster and user (batch-scored k-means):");
    let header: String = clusters.iter().map(|c| format!("{:>6}", format!("c{c}"))).collect();
    println!("  {:<6}{header}", "user");
    for (user, counts) in &table {
        let cells: String = clusters.iter().map(|c| format!("{:>6}", counts.get(c).copied().unwrap_or(0))).collect();
        println!("  {user:<6}{cells}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wharf_core::TrackerPort;

    fn workspace(dir: &Path) -> Workspace {
        Workspace {
            registry: Arc::new(FileRegistry::new(dir.join("registry"))),
            tracker: FileTracker::new(dir.join("runs")),
            lineage: Arc::new(FileLineage::new(dir.join("lineage.jsonl"))),
            dir: dir.to_path_buf(),
        }
    }

    #[test]
    fn the_tuned_forest_beats_the_floor_and_its_crosstab_and_trials_are_tracked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ws = workspace(dir.path());
        let plan = sensors::Plan { users: 3, ..sensors::Plan::default() };
        let prepared = prepare::prepare(sensors::generate(plan)).expect("prepare");
        let forest = train_forest(&ws, &ws.path("prepared.parquet"), &prepared.frame).expect("train");
        let accuracy = forest.model.metadata().metrics.get("accuracy").copied().unwrap_or(0.0);
        assert!(accuracy >= 0.7, "held-out accuracy {accuracy}");

        let run = ws.tracker.get_run(&forest.run_id).expect("run");
        let crosstab: BTreeMap<String, BTreeMap<String, usize>> =
            serde_json::from_str(run.tags.get("crosstab").expect("crosstab tag")).expect("crosstab json");
        let total: usize = crosstab.values().flat_map(|row| row.values()).sum();
        let test_rows = (prepared.frame.n_rows() as f64 * 0.25).round() as usize;
        assert_eq!(total, test_rows, "one count per held-out row");
        let diagonal: usize = crosstab.iter().map(|(label, row)| row.get(label).copied().unwrap_or(0)).sum();
        assert!((diagonal as f64 / total as f64 - accuracy).abs() < 1e-9, "the crosstab agrees with the accuracy");

        // Every trial of the grid is a tracked run with its parameters and metric; the best
        // is registered and holds the alias.
        let trials: Vec<_> = ws
            .tracker
            .list_runs()
            .expect("runs")
            .into_iter()
            .filter(|r| r.info.name == "activity-forest-trial")
            .collect();
        assert_eq!(trials.len(), GRID.len());
        let info =
            ws.registry.version_info("activity", &wharf_core::Selector::Alias("champion".into())).expect("alias");
        assert_eq!(info.version.0, forest.version);
    }

    #[test]
    fn the_replayed_stream_scores_every_complete_reading_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ws = workspace(dir.path());
        let raw = sensors::generate(sensors::Plan { users: 2, ..sensors::Plan::default() });
        let complete = raw.iter().filter(|r| r.x.is_some() && r.y.is_some() && r.z.is_some()).count();
        let input = ws.path("raw.jsonl");
        write_atomic(&input, &sensors::to_jsonl(&raw).expect("jsonl")).expect("write");
        let prepared = prepare::prepare(raw).expect("prepare");
        let forest = train_forest(&ws, &ws.path("prepared.parquet"), &prepared.frame).expect("train");
        let output = ws.path("scores.jsonl");
        let rows = stream_score(&ws, &forest, &input, &output).expect("stream");
        assert_eq!(rows.len(), complete - prepared.dropped_late, "complete readings less the late ones");
        let labelled = rows.iter().filter(|row| !row[0].is_null()).count();
        assert_eq!(labelled, prepared.frame.n_rows(), "the labelled ones are the prepared rows");

        // Training and serving agree: each labelled streamed reading has exactly the moving
        // averages its prepared row was trained on.
        let frame = &prepared.frame;
        let column = |name: &str| match frame.column(name) {
            Some(Column::Numeric(v)) => v.clone(),
            _ => panic!("numeric column {name}"),
        };
        let (times, x_avg, z_avg) = (column("Creation_Time"), column("x_avg"), column("z_avg"));
        let (users, devices) = (frame.column("User").expect("User"), frame.column("Device").expect("Device"));
        let mut prepared_rows = BTreeMap::new();
        for i in 0..frame.n_rows() {
            prepared_rows.insert((users.text_at(i), devices.text_at(i), times[i] as i64), (x_avg[i], z_avg[i]));
        }
        let mut compared = 0;
        for line in fs::read_to_string(&output).expect("output").lines() {
            let record: Value = serde_json::from_str(line).expect("line");
            if record["gt"].is_null() {
                continue;
            }
            let key = (
                record["User"].as_str().unwrap_or_default().to_string(),
                record["Device"].as_str().unwrap_or_default().to_string(),
                record["Creation_Time"].as_i64().unwrap_or_default(),
            );
            let (x, z) = prepared_rows.get(&key).copied().expect("a prepared row for each labelled reading");
            let close = |a: f64, v: &Value| (a - v.as_f64().unwrap_or(f64::NAN)).abs() < 1e-9;
            assert!(close(x, &record["x_avg"]) && close(z, &record["z_avg"]), "{record}");
            compared += 1;
        }
        assert_eq!(compared, frame.n_rows());
        assert!(labelled_accuracy(&rows) >= MIN_ACCURACY);
    }
}

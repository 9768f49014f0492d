//! Behaviour of a streaming job: dropped records, windowed means, unseen categories, model
//! round trips, micro-batches and switching models by alias.

mod common;

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use wharf_core::{Column, FileLineage, FileRegistry, Frame, Model, ModelRef, ModelServers, RegistryPort, Version};
use wharf_ml::{CsvOptions, Dataset, Trainer};
use wharf_stream::{
    FileCheckpoint, FileSink, FileSource, FixedModel, OnError, ReaderSource, RegistryModel, ScoringModel, StopReason,
    StreamJob, StreamOptions, WindowSpec, WriterSink,
};

use common::MINUTE;

fn scorer() -> FixedModel {
    FixedModel::new(ScoringModel::new("phases", 1, common::model()))
}

/// Runs a job over `input` (all at once, as a closed stream) and returns its output lines.
fn run_lines(input: &str, options: StreamOptions) -> (wharf_stream::StreamReport, Vec<Value>) {
    let sink = SharedBuf::default();
    let source = ReaderSource::spawn("test", std::io::Cursor::new(input.as_bytes().to_vec()));
    let report =
        StreamJob::new(source, WriterSink::new("buf", sink.clone()), scorer()).options(options).run().expect("run");
    (report, sink.lines())
}

/// A writer the test can read after the job consumed its sink.
#[derive(Clone, Default)]
struct SharedBuf(Arc<std::sync::Mutex<Vec<u8>>>);

impl Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().map_err(|_| std::io::Error::other("poisoned"))?.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl SharedBuf {
    fn lines(&self) -> Vec<Value> {
        let bytes = self.0.lock().expect("lock").clone();
        String::from_utf8(bytes).expect("utf8").lines().map(|l| serde_json::from_str(l).expect("json line")).collect()
    }
}

fn record(user: &str, device: &str, minute: i64, x: Option<f64>) -> String {
    let x = x.map_or("null".to_string(), |x| x.to_string());
    format!("{{\"user\":\"{user}\",\"device\":\"{device}\",\"ts\":{},\"x\":{x}}}\n", minute * MINUTE)
}

#[test]
fn rows_with_nulls_or_bad_json_are_counted_and_dropped() {
    let mut input = String::new();
    input += &record("u1", "phone", 0, Some(1.0));
    input += &record("u1", "phone", 1, None); // null x: a required (window) field
    input += "{\"user\":\"u1\",\"ts\":120000,\"x\":2.0}\n"; // no device: a key field
    input += "[1,2,3]\n"; // not an object
    input += "{\"user\":\n"; // not JSON
    input += &record("u1", "phone", 3, Some(3.0));
    let options = StreamOptions { require: vec!["user".into()], ..common::options(10) };
    let (report, lines) = run_lines(&input, options);
    let c = report.counts;
    assert_eq!((c.records_in, c.records_out, c.dropped_null, c.rejected), (6, 2, 2, 2));
    assert_eq!(lines.iter().map(|l| l["ts"].as_i64().unwrap_or(-1)).collect::<Vec<_>>(), vec![0, 3 * MINUTE]);
    assert!(report.rejects[0].contains("expected a JSON object, found an array"), "{:?}", report.rejects);
    assert!(report.rejects[1].contains("invalid JSON"), "{:?}", report.rejects);
}

#[test]
fn stream_window_means_match_hand_computation() {
    // Two entities, a 10-minute window, 2 minutes of lateness (see `common::window`).
    let events = [
        ("u1", "phone", 0, 2.0),
        ("u1", "watch", 0, 100.0),
        ("u1", "phone", 5, 4.0),
        ("u1", "phone", 10, 6.0),
        ("u1", "phone", 9, 8.0), // a minute late: within the allowance
        ("u1", "phone", 14, 10.0),
        ("u1", "watch", 11, 50.0), // 3 minutes behind 14: late, dropped
        ("u1", "watch", 13, 200.0),
    ];
    let input: String = events.iter().map(|(u, d, m, x)| record(u, d, *m, Some(*x))).collect();
    let options = StreamOptions { emit_features: true, ..common::options(3) };
    let (report, lines) = run_lines(&input, options);
    let got: Vec<(String, i64, f64)> = lines
        .iter()
        .map(|l| {
            let device = l["device"].as_str().unwrap_or_default().to_string();
            (device, l["ts"].as_i64().unwrap_or(-1) / MINUTE, l["x_avg"].as_f64().unwrap_or(f64::NAN))
        })
        .collect();
    // By hand: phone@0 {2}; watch@0 {100}; phone@5 {2,4}; phone@10 {2,4,6} (0 is in [0,10]);
    // phone@9 {2,4,8} (the event at 10 is after it); phone@14 {4,8,6,10} (window [4,14]);
    // watch@11 is late (watermark 14 - 2 = 12); watch@13 {200} (100 at 0 is outside [3,13]).
    let want = vec![
        ("phone".to_string(), 0, 2.0),
        ("watch".to_string(), 0, 100.0),
        ("phone".to_string(), 5, 3.0),
        ("phone".to_string(), 10, 4.0),
        ("phone".to_string(), 9, 14.0 / 3.0),
        ("phone".to_string(), 14, 7.0),
        ("watch".to_string(), 13, 200.0),
    ];
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert!(g.0 == w.0 && g.1 == w.1 && (g.2 - w.2).abs() < 1e-12, "got {g:?}, want {w:?}");
    }
    assert_eq!(report.counts.dropped_late, 1);
    assert_eq!(report.counts.batches, 3, "8 records in batches of 3");
}

#[test]
fn an_unseen_category_is_rejected_by_name_and_the_rest_scored() {
    let mut input = String::new();
    input += &record("u1", "phone", 0, Some(1.0));
    input += &record("u1", "tablet", 1, Some(6.0)); // a device the model never saw
    input += &record("u1", "watch", 2, Some(6.0));
    let (report, lines) = run_lines(&input, common::options(10));
    assert_eq!(report.counts.records_out, 2);
    assert_eq!(report.counts.rejected, 1);
    assert!(
        report.rejects[0].contains("device") && report.rejects[0].contains("unknown level 'tablet'"),
        "{:?}",
        report.rejects
    );
    assert_eq!(lines[0]["prediction"], "rest");
    assert_eq!(lines[1]["prediction"], "active");
    // The levels learned at fit time are stored with the model.
    let model = common::model();
    let dir = tempfile::tempdir().expect("tempdir");
    model.save(dir.path().join("m.wharf")).expect("save");
    let loaded = Model::load(dir.path().join("m.wharf")).expect("load");
    let device = loaded.signature().features.iter().find(|f| f.name == "device").expect("device feature");
    assert_eq!(format!("{:?}", device.kind), format!("{:?}", model.signature().features[0].kind));

    let strict = StreamOptions { on_error: OnError::Fail, ..common::options(10) };
    let err = StreamJob::new(
        ReaderSource::spawn("test", std::io::Cursor::new(input.into_bytes())),
        WriterSink::new("sink", std::io::sink()),
        scorer(),
    )
    .options(strict)
    .run()
    .expect_err("fails on the unseen level");
    assert!(err.to_string().contains("test@") && err.to_string().contains("tablet"), "{err}");
}

#[test]
fn kmeans_with_the_same_seed_gives_the_same_clusters_after_a_round_trip() {
    let mut rng = common::Lcg::new(5);
    let centres = [(0.0, 0.0), (10.0, 0.0), (0.0, 10.0)];
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for i in 0..300 {
        let (ca, cb) = centres[i % 3];
        a.push(ca + rng.next_f64());
        b.push(cb + rng.next_f64());
    }
    let frame = Frame::from_columns(vec![("x_avg".into(), Column::Numeric(a)), ("b".into(), Column::Numeric(b))])
        .expect("frame");
    let data = Dataset::from_frame("fixture:blobs", frame, &CsvOptions::default()).expect("data");
    let first = Trainer::kmeans(3).seed(9).fit(&data).expect("fit");
    let second = Trainer::kmeans(3).seed(9).fit(&data).expect("fit");
    let records = wharf_core::Records::Columns(data.features.clone());
    let clusters = first.predict(&records).expect("predict");
    assert_eq!(clusters, second.predict(&records).expect("predict"));
    let dir = tempfile::tempdir().expect("tempdir");
    first.save(dir.path().join("k.wharf")).expect("save");
    let loaded = Model::load(dir.path().join("k.wharf")).expect("load");
    assert_eq!(clusters, loaded.predict(&records).expect("predict"), "the centres are persisted");
    let mut distinct: Vec<String> = (0..clusters.len()).map(|i| clusters.display(i)).collect();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 3);
}

/// Appends `text` to `path` and flushes it.
fn append(path: &Path, text: &str) {
    let mut file = OpenOptions::new().create(true).append(true).open(path).expect("open");
    file.write_all(text.as_bytes()).expect("append");
}

fn wait_for_lines(path: &Path, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let count = fs::read_to_string(path).map(|t| t.lines().count()).unwrap_or(0);
        if count >= n {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {n} output lines (have {count})");
        thread::sleep(Duration::from_millis(5));
    }
}

/// A job following a growing file on a thread, stopped by its flag.
struct Followed {
    _dir: tempfile::TempDir,
    input: std::path::PathBuf,
    output: std::path::PathBuf,
    stop: Arc<AtomicBool>,
    handle: thread::JoinHandle<wharf_core::Result<wharf_stream::StreamReport>>,
}

impl Followed {
    fn start(options: StreamOptions, scorer: impl wharf_stream::ModelSource + 'static) -> Followed {
        let dir = tempfile::tempdir().expect("tempdir");
        let (input, output) = (dir.path().join("in.jsonl"), dir.path().join("out.jsonl"));
        fs::write(&input, "").expect("create");
        let stop = Arc::new(AtomicBool::new(false));
        let job = StreamJob::new(
            FileSource::open(&input, true).expect("source"),
            FileSink::open(&output).expect("sink"),
            scorer,
        )
        .checkpoints(FileCheckpoint::beside(&output))
        .options(options)
        .stop_flag(stop.clone());
        let handle = thread::spawn(move || job.run());
        Followed { _dir: dir, input, output, stop, handle }
    }

    /// Appends `text` and waits until the output has `lines` lines.
    fn feed(&self, text: &str, lines: usize) {
        append(&self.input, text);
        wait_for_lines(&self.output, lines);
    }

    fn stop(self) -> (wharf_stream::StreamReport, Vec<Value>) {
        self.stop.store(true, Ordering::SeqCst);
        let report = self.handle.join().expect("join").expect("run");
        let lines = fs::read_to_string(&self.output)
            .expect("output")
            .lines()
            .map(|l| serde_json::from_str(l).expect("line"))
            .collect();
        (report, lines)
    }
}

#[test]
fn three_drops_make_three_micro_batches_each_record_once() {
    // Batches close on size here (the latency bound is an hour), so the count is exact.
    let options = StreamOptions { max_latency: Duration::from_secs(3600), ..common::options(4) };
    let job = Followed::start(options, scorer());
    for drop in 0..3 {
        let text: String = (0..4).map(|i| record("u1", "phone", drop * 4 + i, Some(1.0))).collect();
        job.feed(&text, (drop as usize + 1) * 4);
    }
    let (report, lines) = job.stop();
    assert_eq!(report.stop, StopReason::Stopped);
    assert_eq!(report.counts.batches, 3);
    let mut keys: Vec<&str> = lines.iter().map(|l| l["key"].as_str().unwrap_or_default()).collect();
    keys.sort();
    keys.dedup();
    assert_eq!((lines.len(), keys.len()), (12, 12));
}

#[test]
fn a_batch_is_written_when_its_latency_bound_passes_before_it_fills() {
    let options = StreamOptions { max_latency: Duration::from_millis(30), ..common::options(1000) };
    let job = Followed::start(options, scorer());
    // A batch of 1000 would never fill: only the latency bound can write this record.
    job.feed(&record("u1", "phone", 0, Some(1.0)), 1);
    assert_eq!(job.stop().0.counts.records_out, 1);
}

fn two_versions(registry: &FileRegistry) {
    // Version 1 says "active" for a high x_avg, version 2 the opposite.
    let v1 = registry.register(&common::phase_model(false), "phases").expect("register");
    registry.register(&common::phase_model(true), "phases").expect("register");
    registry.set_alias("phases", "champion", &v1).expect("alias");
}

#[test]
fn moving_the_alias_switches_the_model_at_a_batch_boundary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = Arc::new(FileRegistry::new(dir.path().join("registry")));
    two_versions(&registry);
    let reference: ModelRef = "phases@champion".parse().expect("ref");
    let options = StreamOptions { max_latency: Duration::from_secs(3600), ..common::options(4) };
    let job = Followed::start(options, RegistryModel::new(registry.clone(), reference, ModelServers::local()));
    let eight = |from: i64| -> String { (from..from + 8).map(|m| record("u1", "phone", m, Some(6.0))).collect() };
    job.feed(&eight(0), 8);
    registry.set_alias("phases", "champion", &Version(2)).expect("move alias");
    job.feed(&eight(8), 16);
    let (report, lines) = job.stop();
    assert_eq!(report.model_versions, vec![1, 2]);
    let versions: Vec<u64> = lines.iter().map(|l| l["model_version"].as_u64().unwrap_or(0)).collect();
    assert_eq!(versions, [vec![1; 8], vec![2; 8]].concat());
    assert!(lines[..8].iter().all(|l| l["prediction"] == "active" && l["model"] == "phases"));
    assert!(lines[8..].iter().all(|l| l["prediction"] == "rest"));
}

#[test]
fn lineage_reports_start_and_complete_with_datasets_or_fail_with_the_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lineage_path = dir.path().join("lineage.jsonl");
    let lineage = Arc::new(FileLineage::new(&lineage_path));
    let (input, output) = (dir.path().join("in.jsonl"), dir.path().join("out.jsonl"));
    fs::write(&input, record("u1", "phone", 0, Some(1.0)) + &record("u1", "phone", 1, Some(2.0))).expect("input");
    let report = StreamJob::new(
        FileSource::open(&input, false).expect("source"),
        FileSink::open(&output).expect("sink"),
        scorer(),
    )
    .lineage(lineage.clone())
    .options(common::options(10))
    .run()
    .expect("run");
    let events: Vec<Value> = fs::read_to_string(&lineage_path)
        .expect("lineage")
        .lines()
        .map(|l| serde_json::from_str(l).expect("event"))
        .collect();
    assert_eq!(events.len(), 2);
    let (start, complete) = (&events[0], &events[1]);
    assert_eq!((start["event_type"].as_str(), complete["event_type"].as_str()), (Some("START"), Some("COMPLETE")));
    assert_eq!(start["run_id"], complete["run_id"]);
    assert_eq!(complete["run_id"], json!(report.run_id));
    let input_ds = format!("file:{}", input.display());
    assert_eq!(start["inputs"], json!([input_ds, "registry:phases/1"]));
    assert_eq!(complete["outputs"], json!([format!("file:{}", output.display())]));
    assert_eq!(complete["metadata"]["records_out"], 2);
    assert_eq!(complete["model"]["version"], 1);

    fs::write(&input, "{oops\n").expect("input");
    let failed = StreamJob::new(
        FileSource::open(&input, false).expect("source"),
        FileSink::open(&output).expect("sink"),
        scorer(),
    )
    .lineage(lineage)
    .options(StreamOptions { on_error: OnError::Fail, ..common::options(10) })
    .run();
    assert!(failed.is_err());
    let last: Value =
        serde_json::from_str(fs::read_to_string(&lineage_path).expect("lineage").lines().last().expect("event"))
            .expect("event");
    assert_eq!(last["event_type"], "FAIL");
    assert!(last["metadata"]["error"].as_str().unwrap_or_default().contains("invalid JSON"), "{last}");
}

#[test]
fn a_checkpoint_of_another_input_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b, output) = (dir.path().join("a.jsonl"), dir.path().join("b.jsonl"), dir.path().join("out.jsonl"));
    fs::write(&a, record("u1", "phone", 0, Some(1.0))).expect("a");
    fs::write(&b, record("u1", "phone", 0, Some(1.0))).expect("b");
    let run = |input: &Path| {
        StreamJob::new(
            FileSource::open(input, false).expect("source"),
            FileSink::open(&output).expect("sink"),
            scorer(),
        )
        .checkpoints(FileCheckpoint::beside(&output))
        .options(common::options(10))
        .run()
    };
    run(&a).expect("first run");
    let err = run(&b).expect_err("another input");
    assert!(err.to_string().contains("the checkpoint belongs to"), "{err}");
    // The same input again resumes at its end and adds nothing.
    let before = fs::read(&output).expect("output");
    let again = run(&a).expect("resume");
    assert_eq!(again.resumed_from, Some(fs::metadata(&a).expect("a").len()));
    assert_eq!(fs::read(&output).expect("output"), before);
}

#[test]
fn window_options_are_checked() {
    assert!(WindowSpec::new(&["u"], "t", &["x"], 0, 0).is_err());
    assert!(WindowSpec::new(&["u"], "t", &["x"], 10, -1).is_err());
    assert!(WindowSpec::new(&["u"], "t", &[], 10, 0).is_err());
    let clash = StreamOptions { ids: vec!["prediction".into()], ..common::options(10) };
    let err =
        StreamJob::new(ReaderSource::spawn("t", std::io::empty()), WriterSink::new("s", std::io::sink()), scorer())
            .options(clash)
            .run()
            .expect_err("clash");
    assert!(err.to_string().contains("ids.prediction"), "{err}");
}

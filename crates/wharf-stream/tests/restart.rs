//! Acceptance: a streaming job killed with SIGKILL and restarted, again and again while its
//! input file grows, writes exactly the output of a run that was never interrupted; and a
//! SIGTERM stops it cleanly on a final checkpoint.
//!
//! The job runs in a real child process: this test binary started again with
//! `WHARF_STREAM_TEST_WORKER` set, which makes `main` run the streaming job instead of the
//! tests. That is why this target has its own `main` (`harness = false`).

mod common;

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use wharf_core::{FileLineage, Model};
use wharf_stream::{
    stop_on_signals, FileCheckpoint, FileSink, FileSource, FixedModel, ScoringModel, StreamJob, StreamOptions,
};

const WORKER: &str = "WHARF_STREAM_TEST_WORKER";
const LINES: usize = 3000;

fn main() -> ExitCode {
    if std::env::var_os(WORKER).is_some() {
        return worker();
    }
    let filters: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let tests: [(&str, fn()); 2] = [
        ("sigkill_and_restart_equals_an_uninterrupted_run", sigkill_and_restart_equals_an_uninterrupted_run),
        ("sigterm_stops_on_a_final_checkpoint_and_resumes", sigterm_stops_on_a_final_checkpoint_and_resumes),
    ];
    let mut failed = 0;
    let mut ran = 0;
    for (name, test) in tests {
        if !filters.is_empty() && !filters.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        ran += 1;
        match std::panic::catch_unwind(test) {
            Ok(()) => println!("test {name} ... ok"),
            Err(_) => {
                println!("test {name} ... FAILED");
                failed += 1;
            }
        }
    }
    println!("\ntest result: {}. {} passed; {failed} failed", if failed == 0 { "ok" } else { "FAILED" }, ran - failed);
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The child: follows the input file, scores into the output with a file checkpoint and
/// file lineage, until idle (when `IDLE_MS` is set) or a signal.
fn worker() -> ExitCode {
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("worker needs {name}"));
    // A fresh process that trains nothing: register the built-in kind before loading.
    wharf_ml::register();
    let model = Model::load(var("MODEL")).expect("model");
    let idle = std::env::var("IDLE_MS").ok().map(|ms| Duration::from_millis(ms.parse().expect("IDLE_MS")));
    let job = StreamJob::new(
        FileSource::open(var("INPUT"), true).expect("input"),
        FileSink::open(var("OUTPUT")).expect("output"),
        FixedModel::new(ScoringModel::new("phases", 1, model)),
    )
    .checkpoints(FileCheckpoint::new(var("CHECKPOINT")))
    .lineage(Arc::new(FileLineage::new(var("LINEAGE"))))
    .options(StreamOptions { idle_timeout: idle, ..common::options(16) })
    .stop_flag(stop_on_signals().expect("signals"));
    match job.run() {
        Ok(report) => {
            println!("stopped: {:?}", report.stop);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("worker failed: {e}");
            ExitCode::FAILURE
        }
    }
}

struct Paths {
    _dir: tempfile::TempDir,
    input: PathBuf,
    output: PathBuf,
    checkpoint: PathBuf,
    model: PathBuf,
    lineage: PathBuf,
}

fn paths() -> Paths {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = |name: &str| dir.path().join(name);
    let paths = Paths {
        input: p("events.jsonl"),
        output: p("scores.jsonl"),
        checkpoint: p("scores.checkpoint.json"),
        model: p("phases.wharf"),
        lineage: p("lineage.jsonl"),
        _dir: dir,
    };
    common::model().save(&paths.model).expect("save model");
    paths
}

fn spawn(paths: &Paths, idle_ms: Option<u64>) -> Child {
    let mut cmd = Command::new(std::env::current_exe().expect("current exe"));
    cmd.env(WORKER, "1")
        .env("INPUT", &paths.input)
        .env("OUTPUT", &paths.output)
        .env("CHECKPOINT", &paths.checkpoint)
        .env("MODEL", &paths.model)
        .env("LINEAGE", &paths.lineage)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if let Some(ms) = idle_ms {
        cmd.env("IDLE_MS", ms.to_string());
    }
    cmd.spawn().expect("spawn worker")
}

/// `(input_offset, output_len)` of the checkpoint on disk, if there is one yet.
fn committed(path: &Path) -> Option<(u64, u64)> {
    let cp: Value = serde_json::from_slice(&fs::read(path).ok()?).ok()?;
    Some((cp["input_offset"].as_u64()?, cp["output_len"].as_u64()?))
}

/// True when the output holds bytes the checkpoint does not cover yet.
fn written_past_checkpoint(paths: &Paths) -> bool {
    let on_disk = fs::metadata(&paths.output).map(|m| m.len()).unwrap_or(0);
    committed(&paths.checkpoint).is_some_and(|(_, output_len)| on_disk > output_len)
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(2));
    }
}

fn finish(mut child: Child) -> String {
    let status = child.wait().expect("wait");
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        std::io::Read::read_to_string(&mut stdout, &mut out).expect("stdout");
    }
    assert!(status.success(), "worker failed: {status}, {out}");
    out
}

/// The output of one uninterrupted run over the complete input, in this process.
fn reference(paths: &Paths) -> Vec<u8> {
    let out = paths.output.with_file_name("reference.jsonl");
    let model = Model::load(&paths.model).expect("model");
    let report = StreamJob::new(
        FileSource::open(&paths.input, false).expect("input"),
        FileSink::open(&out).expect("output"),
        FixedModel::new(ScoringModel::new("phases", 1, model)),
    )
    .options(common::options(64))
    .run()
    .expect("reference run");
    assert_eq!(report.counts.records_in, LINES as u64);
    fs::read(out).expect("reference output")
}

/// Checks the restarted output against the reference, record for record and byte for byte.
fn assert_same_output(paths: &Paths) {
    let got = fs::read(&paths.output).expect("output");
    let want = reference(paths);
    let keys: Vec<String> = String::from_utf8_lossy(&got)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("output line")["key"].as_str().expect("key").to_string())
        .collect();
    let mut unique = keys.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), keys.len(), "no record is written twice");
    let want_lines = String::from_utf8_lossy(&want).lines().count();
    assert_eq!(keys.len(), want_lines, "no record is lost");
    // 3000 records less the nulls, the late ones and the one that is not JSON.
    assert!(want_lines > 2800 && want_lines < LINES, "{want_lines} results");
    assert!(got == want, "the restarted output differs from an uninterrupted run");
}

fn lineage_events(path: &Path) -> Vec<Value> {
    fs::read_to_string(path).expect("lineage").lines().map(|l| serde_json::from_str(l).expect("lineage line")).collect()
}

fn sigkill_and_restart_equals_an_uninterrupted_run() {
    let paths = paths();
    let text: Vec<u8> = common::stream_lines(LINES).join("\n").into_bytes();
    let total = text.len() as u64 + 1;
    fs::write(&paths.input, b"").expect("create input");

    // The producer appends in chunks that cut lines in the middle, like a real writer.
    let producer = {
        let input = paths.input.clone();
        let mut text = text.clone();
        text.push(b'\n');
        thread::spawn(move || {
            let mut file = OpenOptions::new().append(true).open(input).expect("open input");
            for chunk in text.chunks(1733) {
                file.write_all(chunk).expect("append");
                file.flush().expect("flush");
                thread::sleep(Duration::from_millis(15));
            }
        })
    };

    let mut kills = 0;
    let mut torn = 0;
    let mut last = 0;
    while kills < 6 {
        let mut child = spawn(&paths, None);
        wait_until("progress after a restart", || {
            committed(&paths.checkpoint).is_some_and(|(offset, _)| offset > last || offset == total)
        });
        if kills % 2 == 0 {
            // Aim at the dangerous moment: a batch is on disk but not yet checkpointed.
            let deadline = Instant::now() + Duration::from_secs(3);
            while Instant::now() < deadline && !written_past_checkpoint(&paths) {}
        } else {
            thread::sleep(Duration::from_millis(kills * 7 % 23));
        }
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        kills += 1;
        let (offset, _) = committed(&paths.checkpoint).expect("checkpoint");
        if written_past_checkpoint(&paths) {
            torn += 1; // killed after writing a batch and before checkpointing it
        }
        last = offset;
        if offset == total {
            break;
        }
    }
    producer.join().expect("producer");
    let report = finish(spawn(&paths, Some(500)));
    assert!(report.contains("Idle"), "{report}");
    println!("  {kills} kills, {torn} of them between a write and its checkpoint");
    assert!(kills >= 2, "the job must have been killed mid-stream");
    assert!(torn >= 1, "at least one kill must leave output the checkpoint does not cover");
    assert_same_output(&paths);

    // Every run started in lineage; only the last one completed, naming its output.
    let events = lineage_events(&paths.lineage);
    let starts = events.iter().filter(|e| e["event_type"] == "START").count();
    let completes: Vec<&Value> = events.iter().filter(|e| e["event_type"] == "COMPLETE").collect();
    assert_eq!(starts, kills as usize + 1);
    assert_eq!(completes.len(), 1);
    let output = format!("file:{}", paths.output.display());
    assert_eq!(completes[0]["outputs"], serde_json::json!([output]));
    assert_eq!(completes[0]["metadata"]["records_in"], LINES);
}

fn sigterm_stops_on_a_final_checkpoint_and_resumes() {
    let paths = paths();
    let mut text = common::stream_lines(LINES).join("\n");
    text.push('\n');
    fs::write(&paths.input, &text).expect("input");

    // Followed with no idle timeout, the job would run forever: only the signal stops it.
    let child = spawn(&paths, None);
    wait_until("a first checkpoint", || committed(&paths.checkpoint).is_some_and(|(offset, _)| offset > 0));
    let status = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().expect("kill -TERM");
    assert!(status.success());
    let out = finish(child);
    assert!(out.contains("Stopped"), "{out}");
    let (offset, output_len) = committed(&paths.checkpoint).expect("checkpoint");
    assert_eq!(
        fs::metadata(&paths.output).expect("output").len(),
        output_len,
        "the final checkpoint covers all output"
    );
    let events = lineage_events(&paths.lineage);
    let last = events.last().expect("events");
    assert_eq!(last["event_type"], "COMPLETE");
    assert_eq!(last["metadata"]["stop"], "stopped");
    assert_eq!(last["metadata"]["input_offset"], offset);

    finish(spawn(&paths, Some(300)));
    assert_same_output(&paths);
    let events = lineage_events(&paths.lineage);
    let resumed = events.last().expect("events");
    assert_eq!(resumed["metadata"]["resumed_from"], offset);
    assert_eq!(resumed["metadata"]["stop"], "idle");
}

//! Writes are transactional: a writer killed (SIGKILL) half-way through a batch leaves every
//! earlier batch whole and nothing of the one it was writing — never a record with part of
//! its results, never part of a batch.
//!
//! The writer is this test binary itself, started again with `kill_child_writer` (ignored in
//! normal runs) and the store to write to in the environment.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use wharf_runner::{open_store, FieldSpec, ModelSpec, Record, ResultStore, Runner, Status, SummarySpec};

const STORE_ENV: &str = "WHARF_RUNNER_KILL_STORE";
const TABLE_ENV: &str = "WHARF_RUNNER_KILL_TABLE";
const BATCH: usize = 1_000;
/// Results per record: three models and a summary.
const RESULTS_PER_RECORD: usize = 4;

fn open(url: &str, table: Option<&str>) -> Box<dyn ResultStore> {
    match table {
        #[cfg(feature = "postgres")]
        Some(table) => Box::new(wharf_runner::PostgresResultStore::connect_table(url, table).expect("connect")),
        _ => open_store(url).expect("open the store"),
    }
}

/// Three models with bulky outputs (so writing a batch takes a while) and a summary.
fn runner() -> Runner {
    let model = |name: &str| {
        ModelSpec::from_fn(name, "1", |row| {
            let x = row["x"].as_i64().ok_or("x")?;
            Ok(json!({ "c": x, "blob": "w".repeat(2_000) }))
        })
        .field("x", FieldSpec::int())
        .input(wharf_runner::InputSource::Shared)
        .status(Status::Active)
    };
    let summary = SummarySpec::new("best", "1", [("m1", "1"), ("m2", "1"), ("m3", "1")], |input| {
        Ok(json!({ "n": input.dependencies().count() }))
    })
    .status(Status::Active);
    Runner::new(vec![model("m1"), model("m2"), model("m3")], vec![summary]).expect("specs")
}

#[test]
#[ignore = "the writer half of the kill tests; they start it themselves"]
fn kill_child_writer() {
    let Ok(url) = std::env::var(STORE_ENV) else { return };
    let table = std::env::var(TABLE_ENV).ok();
    let store = open(&url, table.as_deref());
    let runner = runner();
    let template: Vec<Record> =
        (0..BATCH).map(|i| Record::new(i.to_string(), json!({"x": i}).as_object().cloned().unwrap())).collect();
    let scored = runner.run(&template, None).expect("run");
    // Ids unique to this writer, so several attempts can share a store.
    let pid = std::process::id();
    for b in 0.. {
        let batch: Vec<_> = scored
            .iter()
            .map(|r| wharf_runner::RecordResult { id: format!("p{pid}b{b:05}-{}", r.id), ..r.clone() })
            .collect();
        println!("start {b}");
        let start = Instant::now();
        store.put_batch(&batch).expect("put_batch");
        println!("committed {b} {}", start.elapsed().as_micros());
    }
}

/// Starts the writer, lets it commit two batches, kills it during the third and checks the
/// store; tries again (killing sooner) if the kill came after that batch's commit.
fn kill_mid_batch(url: &str, table: Option<&str>) {
    for attempt in 0..4 {
        let mut cmd = Command::new(std::env::current_exe().expect("test binary"));
        cmd.args(["--exact", "kill_child_writer", "--ignored", "--nocapture", "--test-threads=1"])
            .env(STORE_ENV, url)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(table) = table {
            cmd.env(TABLE_ENV, table);
        }
        let mut child = cmd.spawn().expect("start the writer");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut took = Duration::ZERO;
        let mut killed_in = None;
        for line in lines.by_ref() {
            let line = line.expect("read the writer's output");
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["committed", _, micros] => took = took.max(Duration::from_micros(micros.parse().unwrap_or(0))),
                ["start", b] if *b != "0" && *b != "1" => {
                    // Half-way through the typical write of a batch, with a different point
                    // on each attempt.
                    std::thread::sleep(took / (2 + attempt));
                    child.kill().expect("SIGKILL the writer");
                    killed_in = Some(b.to_string());
                    break;
                }
                _ => {}
            }
        }
        let rest: Vec<String> = lines.map_while(Result::ok).collect();
        let _ = child.wait();
        let killed_in = killed_in.expect("the writer stopped before its third batch");
        check_whole_batches(url, table);
        if !rest.iter().any(|l| l.starts_with(&format!("committed {killed_in} "))) {
            // Killed before that batch's commit: the case under test, and it held.
            eprintln!(
                "killed the writer {:?} into batch {killed_in} (a batch write takes {took:?})",
                took / (2 + attempt)
            );
            return;
        }
        eprintln!("the kill came after batch {killed_in} committed; trying again sooner");
    }
    panic!("could not kill the writer before a commit in 4 attempts");
}

/// Every stored record has all its results, and every batch is all there or not at all.
fn check_whole_batches(url: &str, table: Option<&str>) {
    let store = open(url, table);
    let ids = store.ids(None, usize::MAX).expect("ids");
    assert!(ids.len() >= 2 * BATCH, "the two batches committed before the kill are stored ({} ids)", ids.len());
    let mut per_batch = std::collections::BTreeMap::<String, usize>::new();
    for id in &ids {
        let batch = id.split('-').next().expect("batch prefix").to_string();
        *per_batch.entry(batch).or_default() += 1;
    }
    for (batch, n) in &per_batch {
        assert_eq!(*n % BATCH, 0, "batch {batch} is whole or absent, found {n} of its records");
    }
    for id in ids.iter().step_by(97) {
        let current = store.current(id).expect("current").expect("a stored id has a result");
        assert_eq!(current.results.len(), RESULTS_PER_RECORD, "record {id} has every result");
    }
    let count = store.count().expect("count");
    assert_eq!(count.results as usize, count.records as usize, "each record once");
    assert_eq!(count.results as usize % BATCH, 0);
}

#[test]
fn sqlite_killed_writer_leaves_whole_batches() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("results.db");
    let url = format!("sqlite://{}", path.display());
    kill_mid_batch(&url, None);
    let conn = rusqlite::Connection::open(&path).expect("open");
    let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).expect("integrity check");
    assert_eq!(check, "ok");
}

#[cfg(feature = "postgres")]
#[test]
fn postgres_killed_writer_leaves_whole_batches() {
    let Some(url) = common::postgres_url() else { return };
    let table = common::unique_table("kill");
    kill_mid_batch(&url, Some(&table));
    common::drop_table(&url, &table);
}

//! The scale-out proof: `wharf stream --source redis://… --sink redis://…` worker processes
//! in one consumer group, against a real Redis on loopback.
//!
//! Two workers score a stream of 3,000 records while it is being produced; one is killed
//! with SIGKILL while it holds unacknowledged entries. Every record id must appear in the
//! output exactly once, both workers must have contributed, and the dead worker's pending
//! entries must have been reclaimed. Variants restart the killed worker, and restart the
//! Redis server itself (append-only persistence on) in the middle of the stream.
//!
//! The server comes from `cargo xtask test` (`WHARF_TEST_REDIS_URL`; the broker-restart
//! variant starts its own from `WHARF_TEST_REDIS_SERVER`). Without them the tests say
//! `skipped:`, unless `WHARF_TEST_REQUIRE_BACKENDS=1`.
#![cfg(feature = "redis")]

mod common;

use std::process::Child;
use std::thread;
use std::time::{Duration, Instant};

use common::{assert_exactly_once as exactly_once, backend, finish_worker as finish, iris_record, Sandbox, Scored};
use redis::Commands;
use serde_json::Value;

/// Records in each stream.
const RECORDS: usize = 3000;
/// How long a test may wait for its workers before it fails rather than hangs.
const DEADLINE: Duration = common::WORKER_DEADLINE;

/// Creates the group the workers join (as they would), so the test can watch it from the
/// start.
fn group(con: &mut redis::Connection, stream: &str) {
    let created: redis::RedisResult<()> = con.xgroup_create_mkstream(stream, "scorers", "0");
    created.expect("create the consumer group");
}

fn connect(url: &str) -> redis::Connection {
    let client = redis::Client::open(url).expect("redis url");
    let started = Instant::now();
    loop {
        match client.get_connection_with_timeout(Duration::from_secs(2)) {
            Ok(con) => return con,
            Err(e) if started.elapsed() < Duration::from_secs(30) => {
                let _ = e;
                thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("{url}: {e}"),
        }
    }
}

/// Appends records `from..to` to `stream`, `chunk` at a time with `pause` between chunks,
/// so workers see the stream arrive rather than find it complete.
fn produce(url: &str, stream: &str, from: usize, to: usize, chunk: usize, pause: Duration) {
    let mut con = connect(url);
    let mut i = from;
    while i < to {
        let end = (i + chunk).min(to);
        let mut pipe = redis::pipe();
        for id in i..end {
            pipe.xadd(stream, "*", &[("record", iris_record(id))]).ignore();
        }
        pipe.query::<()>(&mut con).expect("produce");
        i = end;
        thread::sleep(pause);
    }
}

/// Starts a worker: `consumer` in group `scorers`, reading `input`, writing `output`.
fn worker(s: &Sandbox, base: &str, input: &str, output: &str, consumer: &str) -> Child {
    let source = format!("{base}/{input}?group=scorers&consumer={consumer}&min_idle_ms=1000");
    s.stream_worker(&source, &format!("{base}/{output}"), "3s")
}

/// The number of entries `consumer` holds unacknowledged.
fn pending_of(con: &mut redis::Connection, stream: &str, consumer: &str) -> usize {
    let reply: redis::streams::StreamPendingCountReply =
        con.xpending_consumer_count(stream, "scorers", "-", "+", 10_000, consumer).expect("xpending");
    reply.ids.len()
}

/// Waits until `consumer` has written results and holds unacknowledged entries (it is
/// mid-batch), then SIGKILLs it. Returns how many it held: the entries a survivor must
/// reclaim. Workers read batches larger than what arrives within their latency window, so
/// they hold entries most of the time and the count seldom changes between look and kill.
fn kill_mid_batch(child: &mut Child, con: &mut redis::Connection, (input, out): (&str, &str), consumer: &str) -> usize {
    let started = Instant::now();
    while !output(con, out).iter().any(|r| r.worker == consumer) {
        assert!(started.elapsed() < DEADLINE, "{consumer} never wrote a result");
        thread::sleep(Duration::from_millis(20));
    }
    while pending_of(con, input, consumer) == 0 {
        assert!(started.elapsed() < DEADLINE, "{consumer} never held pending entries");
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{consumer} exited ({status}) before it was caught holding pending entries");
        }
        thread::sleep(Duration::from_millis(5));
    }
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    pending_of(con, input, consumer)
}

fn output(con: &mut redis::Connection, stream: &str) -> Vec<Scored> {
    let reply: redis::streams::StreamRangeReply = con.xrange_all(stream).expect("xrange");
    reply
        .ids
        .iter()
        .map(|entry| {
            let record: String = entry.get("record").expect("record field");
            let record: Value = serde_json::from_str(&record).expect("record JSON");
            assert!(record["prediction"].is_string(), "no prediction in {record}");
            Scored {
                id: record["id"].as_u64().expect("id"),
                worker: entry.get("worker").expect("worker field"),
                attempt: entry.get::<String>("attempt").and_then(|a| a.parse().ok()).expect("attempt field"),
            }
        })
        .collect()
}

/// The start both kill tests share: a consumer group, workers w1 and w2 in it, the producer
/// running, and w1 killed mid-batch. Answers the connection, w2, the producer and how many
/// entries w1 held when it died.
fn two_workers_then_kill_w1(
    s: &Sandbox,
    url: &str,
    (input, out): (&str, &str),
) -> (redis::Connection, Child, thread::JoinHandle<()>, usize) {
    let mut con = connect(url);
    group(&mut con, input);
    let mut w1 = worker(s, url, input, out, "w1");
    let w2 = worker(s, url, input, out, "w2");
    let producer = {
        let (url, input) = (url.to_string(), input.to_string());
        thread::spawn(move || produce(&url, &input, 0, RECORDS, 60, Duration::from_millis(40)))
    };
    let held = kill_mid_batch(&mut w1, &mut con, (input, out), "w1");
    (con, w2, producer, held)
}

#[test]
fn a_killed_worker_s_records_are_reclaimed_and_scored_exactly_once() {
    let Some(url) = backend("WHARF_TEST_REDIS_URL") else { return };
    let s = Sandbox::with_iris();
    let (input, out) = common::stream_names("kill");
    let (mut con, w2, producer, held) = two_workers_then_kill_w1(&s, &url, (&input, &out));
    assert!(held > 0, "w1 died holding no entries; nothing to reclaim");
    producer.join().expect("producer");
    let summary = finish(w2, "w2");

    let results = output(&mut con, &out);
    let per_worker = exactly_once(&results, RECORDS);
    assert!(per_worker.get("w1").copied().unwrap_or(0) > 0, "w1 contributed nothing: {per_worker:?}");
    assert!(per_worker.get("w2").copied().unwrap_or(0) > 0, "w2 contributed nothing: {per_worker:?}");
    let reclaimed = results.iter().filter(|r| r.worker == "w2" && r.attempt > 1).count();
    assert!(reclaimed > 0, "w2 wrote no redelivered record");
    assert!(summary["reclaimed"].as_u64().unwrap_or(0) >= held as u64, "w1 held {held}; w2 reported {summary}");
    assert_eq!(pending_of(&mut con, &input, "w1"), 0, "w1's entries are still pending");
}

#[test]
fn a_restarted_worker_takes_back_its_own_pending_records() {
    let Some(url) = backend("WHARF_TEST_REDIS_URL") else { return };
    let s = Sandbox::with_iris();
    let (input, out) = common::stream_names("restart");
    let (mut con, w2, producer, held) = two_workers_then_kill_w1(&s, &url, (&input, &out));
    assert!(held > 0, "w1 died holding no entries");
    let w1_again = worker(&s, &url, &input, &out, "w1");
    producer.join().expect("producer");
    let first = finish(w1_again, "w1 (restarted)");
    let second = finish(w2, "w2");

    let results = output(&mut con, &out);
    let per_worker = exactly_once(&results, RECORDS);
    assert!(per_worker.len() == 2, "both workers should have written: {per_worker:?}");
    let reclaimed = first["reclaimed"].as_u64().unwrap_or(0) + second["reclaimed"].as_u64().unwrap_or(0);
    assert!(reclaimed >= held as u64, "w1 held {held} at its death; {reclaimed} were taken back");
    assert!(results.iter().any(|r| r.attempt > 1), "no record was written on a second delivery");
}

/// A Redis server this test owns, with the append-only file on, so a restart keeps the
/// streams.
fn redis_server(bin: &str) -> common::OwnedServer {
    common::OwnedServer::start(
        bin,
        |port, dir| {
            let args =
                ["--bind", "127.0.0.1", "--port", &port.to_string(), "--save", "", "--appendonly", "yes", "--dir"];
            args.iter().map(Into::into).chain([dir.as_os_str().to_owned()]).collect()
        },
        |port| drop(connect(&format!("redis://127.0.0.1:{port}"))),
    )
}

#[test]
fn workers_ride_through_a_broker_restart_with_persistence() {
    let Some(bin) = backend("WHARF_TEST_REDIS_SERVER") else { return };
    let s = Sandbox::with_iris();
    let mut server = redis_server(&bin);
    let url = format!("redis://127.0.0.1:{}", server.port);
    let (input, out) = common::stream_names("broker");
    let w1 = worker(&s, &url, &input, &out, "w1");
    let w2 = worker(&s, &url, &input, &out, "w2");
    produce(&url, &input, 0, RECORDS / 2, 60, Duration::from_millis(20));
    server.down();
    assert!(server.dir().read_dir().map(|d| d.count()).unwrap_or(0) > 0, "no append-only file written");
    thread::sleep(Duration::from_millis(500));
    server.up();
    produce(&url, &input, RECORDS / 2, RECORDS, 60, Duration::from_millis(20));
    let first = finish(w1, "w1");
    let second = finish(w2, "w2");

    let mut con = connect(&url);
    let results = output(&mut con, &out);
    let per_worker = exactly_once(&results, RECORDS);
    assert!(per_worker.len() == 2, "both workers should have written: {per_worker:?}\n{first}\n{second}");
}

#[test]
fn broker_urls_that_cannot_work_are_refused_with_the_bad_part_named() {
    let s = Sandbox::with_iris();
    let stream = |extra: &[&str]| {
        let mut args = vec!["stream", "--model", "iris@champion"];
        args.extend_from_slice(extra);
        s.error(&args)
    };
    let err = stream(&["--source", "pulsar://h:6650/rows"]);
    assert!(err.contains("--source pulsar://h:6650/rows: unknown scheme; use redis://…, nats://…, kafka://…"), "{err}");
    let err = stream(&["--source", "redis://127.0.0.1:1/rows?consumer=w1"]);
    assert!(err.contains("redis://127.0.0.1:1/rows (group)"), "{err}");
    let err = stream(&["--source", "redis://127.0.0.1:1/rows?group=g&consumer=w1&colour=red"]);
    assert!(err.contains("unknown parameter `colour`"), "{err}");
    let err = stream(&["--source", "redis://127.0.0.1:1/rows?group=g&consumer=w1", "--output", "out.jsonl"]);
    assert!(err.contains("cannot write to --output"), "{err}");
    if cfg!(feature = "kafka") {
        // Nothing listens on port 1: the Kafka source gives up after its connect timeout.
        let err = stream(&["--source", "kafka://127.0.0.1:1/rows?group=g&consumer=w1"]);
        assert!(err.contains("kafka://127.0.0.1:1/rows") && err.contains("reaching the brokers"), "{err}");
    }
    let err = stream(&["--source", "kafka://127.0.0.1:1/rows?group=g&consumer=w1", "--sink", "redis://h/out"]);
    assert!(err.contains("use the same broker as --source (kafka://…)"), "{err}");
    // Nothing listens on port 1: the error names the stream, after the retries.
    let err = stream(&["--source", "redis://u:hunter2@127.0.0.1:1/rows?group=g&consumer=w1"]);
    assert!(err.contains("redis://127.0.0.1:1/rows") && !err.contains("hunter2"), "{err}");
}

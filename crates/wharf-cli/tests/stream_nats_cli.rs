//! The scale-out proof for NATS JetStream: `wharf stream --source nats://… --sink nats://…`
//! worker processes on one durable pull consumer, against a real nats-server on loopback.
//!
//! Two workers score a stream of 3,000 records while it is being produced; one is killed
//! with SIGKILL while it holds unacknowledged deliveries. Every record id must appear in the
//! output stream exactly once, both workers must have contributed, and the dead worker's
//! deliveries must have been redelivered to the survivor. Variants restart the killed
//! worker, and restart the nats-server itself (file storage) in the middle of the stream.
//!
//! The server comes from `cargo xtask test` (`WHARF_TEST_NATS_URL`; the broker-restart
//! variant starts its own from `WHARF_TEST_NATS_SERVER`). Without them the tests say
//! `skipped:`, unless `WHARF_TEST_REQUIRE_BACKENDS=1`.
//!
//! The `#[ignore]`d `throughput_of_one_and_two_worker_processes` is the benchmark: run it with
//! `cargo test --release -p wharf-cli --features nats --test stream_nats_cli -- --ignored --nocapture`.
#![cfg(feature = "nats")]

mod common;

use std::collections::HashSet;
use std::process::{Child, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer};
use common::{assert_exactly_once, backend, finish_worker, iris_record, Sandbox, Scored, WORKER_DEADLINE};
use futures_util::StreamExt;
use serde_json::Value;

/// Records in each stream.
const RECORDS: usize = 3000;
/// The durable consumer the workers share.
const GROUP: &str = "scorers";

/// A JetStream client of the test's own, as a producer or a downstream reader would have.
struct Client {
    runtime: tokio::runtime::Runtime,
    js: jetstream::Context,
}

impl Client {
    /// Connects, retrying for 30 s (a server that is still starting).
    fn connect(url: &str) -> Client {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let address = url.strip_prefix("nats://").unwrap_or(url).to_string();
        let started = Instant::now();
        let client = loop {
            match runtime.block_on(async_nats::connect(address.clone())) {
                Ok(client) => break client,
                Err(e) if started.elapsed() < Duration::from_secs(30) => {
                    let _ = e;
                    thread::sleep(Duration::from_millis(100));
                }
                Err(e) => panic!("{url}: {e}"),
            }
        };
        let js = {
            let _entered = runtime.enter();
            jetstream::new(client)
        };
        Client { runtime, js }
    }

    /// Creates the input stream (subject = its name, file storage) as the workers would, so
    /// records can be published before they start; waits until JetStream answers.
    fn stream(&self, name: &str) {
        let config = jetstream::stream::Config {
            name: name.to_string(),
            subjects: vec![name.to_string()],
            storage: jetstream::stream::StorageType::File,
            ..Default::default()
        };
        let started = Instant::now();
        while let Err(e) = self.runtime.block_on(self.js.get_or_create_stream(config.clone())) {
            assert!(started.elapsed() < Duration::from_secs(30), "create stream {name}: {e}");
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Publishes records `from..to` to `subject`, `chunk` at a time with `pause` between
    /// chunks, so workers see the stream arrive rather than find it complete.
    fn produce(&self, subject: &str, from: usize, to: usize, chunk: usize, pause: Duration) {
        let mut i = from;
        while i < to {
            let end = (i + chunk).min(to);
            self.runtime.block_on(async {
                let mut acks = Vec::new();
                for id in i..end {
                    acks.push(self.js.publish(subject.to_string(), iris_record(id).into()).await.expect("publish"));
                }
                for ack in acks {
                    ack.await.expect("publish ack");
                }
            });
            i = end;
            thread::sleep(pause);
        }
    }

    /// Deliveries of the durable consumer not acknowledged yet.
    fn ack_pending(&self, stream: &str) -> usize {
        self.runtime.block_on(async {
            let handle = self.js.get_stream(stream).await.expect("stream");
            let mut durable: consumer::PullConsumer = handle.get_consumer(GROUP).await.expect("consumer");
            durable.info().await.expect("consumer info").num_ack_pending
        })
    }

    /// A reader of `stream` from its start, with no acknowledgements.
    fn reader(&self, stream: &str) -> consumer::PullConsumer {
        self.runtime.block_on(async {
            let handle = self.js.get_stream(stream).await.expect("output stream");
            let config = consumer::pull::Config { ack_policy: consumer::AckPolicy::None, ..Default::default() };
            handle.create_consumer(config).await.expect("reader")
        })
    }

    /// The messages `reader` has not yet returned, waiting at most `wait` for the first.
    fn next(&self, reader: &consumer::PullConsumer, wait: Duration) -> Vec<Scored> {
        self.runtime.block_on(async {
            let mut batch = reader.fetch().max_messages(1000).expires(wait).messages().await.expect("fetch the output");
            let mut out = Vec::new();
            // Bounded by the test, not by the server's end-of-request status (which a 2.9
            // server can send late, see the adapter's fetch).
            let deadline = tokio::time::Instant::now() + wait + Duration::from_millis(200);
            while let Ok(Some(message)) = tokio::time::timeout_at(deadline, batch.next()).await {
                let message = message.expect("output message");
                let header =
                    |name: &str| message.headers.as_ref().and_then(|h| h.get(name)).map(|v| v.as_str().to_string());
                let record: Value = serde_json::from_slice(&message.payload).expect("result JSON");
                assert!(record["prediction"].is_string(), "no prediction in {record}");
                assert_eq!(header("Nats-Msg-Id"), record["key"].as_str().map(str::to_string), "message id = key");
                out.push(Scored {
                    id: record["id"].as_u64().expect("id"),
                    worker: header("Wharf-Worker").expect("Wharf-Worker header"),
                    attempt: header("Wharf-Attempt").and_then(|a| a.parse().ok()).expect("Wharf-Attempt header"),
                });
            }
            out
        })
    }

    /// Every result in the output stream.
    fn output(&self, stream: &str) -> Vec<Scored> {
        let total = self.runtime.block_on(async {
            let mut handle = self.js.get_stream(stream).await.expect("output stream");
            handle.info().await.expect("info").state.messages as usize
        });
        let reader = self.reader(stream);
        let mut out = Vec::with_capacity(total);
        let started = Instant::now();
        while out.len() < total {
            assert!(started.elapsed() < WORKER_DEADLINE, "read {} of {total} results", out.len());
            out.extend(self.next(&reader, Duration::from_secs(1)));
        }
        out
    }
}

/// Starts a worker: `worker` on the durable consumer, reading `input`, writing `output`.
/// A second's ack_wait lets a survivor get a dead worker's deliveries back quickly.
fn worker(s: &Sandbox, base: &str, (input, output): (&str, &str), name: &str, idle: &str) -> Child {
    let source = format!("{base}/{input}?group={GROUP}&consumer={name}&ack_wait_ms=1000");
    s.stream_worker(&source, &format!("{base}/{output}"), idle)
}

/// Waits until `victim` has written results (it has joined and contributed) and the
/// consumer has deliveries out (workers hold read but unacknowledged records most of the
/// time), then SIGKILLs it. Returns the consumer's unacknowledged deliveries at the kill.
fn kill_mid_batch(child: &mut Child, client: &Client, (input, output): (&str, &str), victim: &str) -> usize {
    let started = Instant::now();
    // The output stream exists once a sink opened it.
    let reader = loop {
        let exists = client.runtime.block_on(client.js.get_stream(output)).is_ok();
        if exists {
            break client.reader(output);
        }
        assert!(started.elapsed() < WORKER_DEADLINE, "no worker created the output stream");
        thread::sleep(Duration::from_millis(20));
    };
    let mut writers = HashSet::new();
    while !writers.contains(victim) {
        assert!(started.elapsed() < WORKER_DEADLINE, "{victim} never wrote a result");
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{victim} exited ({status}) before it wrote a result");
        }
        writers.extend(client.next(&reader, Duration::from_millis(50)).into_iter().map(|r| r.worker));
    }
    // Past the acknowledgements of the batch just written, into the next one: a kill then
    // finds deliveries whose results are not stored yet (an earlier kill can land between a
    // batch's publish and its acknowledgements, and its records come back as duplicates).
    thread::sleep(Duration::from_millis(100));
    while client.ack_pending(input) == 0 {
        assert!(started.elapsed() < WORKER_DEADLINE, "no deliveries were ever held");
        thread::sleep(Duration::from_millis(5));
    }
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    client.ack_pending(input)
}

fn producer(url: &str, input: &str) -> thread::JoinHandle<()> {
    let (url, input) = (url.to_string(), input.to_string());
    thread::spawn(move || Client::connect(&url).produce(&input, 0, RECORDS, 60, Duration::from_millis(40)))
}

/// The start both kill tests share: a stream, workers w1 and w2 on it, the producer running,
/// and w1 killed mid-batch. Answers the client, w2, the producer and how many deliveries w1
/// held when it died.
fn two_workers_then_kill_w1(
    s: &Sandbox,
    url: &str,
    (input, out): (&str, &str),
) -> (Client, Child, thread::JoinHandle<()>, usize) {
    let client = Client::connect(url);
    client.stream(input);
    let mut w1 = worker(s, url, (input, out), "w1", "3s");
    let w2 = worker(s, url, (input, out), "w2", "3s");
    let producing = producer(url, input);
    let held = kill_mid_batch(&mut w1, &client, (input, out), "w1");
    (client, w2, producing, held)
}

#[test]
fn a_killed_worker_s_deliveries_are_redelivered_and_scored_exactly_once() {
    let Some(url) = backend("WHARF_TEST_NATS_URL") else { return };
    let s = Sandbox::with_iris();
    let (input, out) = common::stream_names("kill");
    let (client, w2, producing, held) = two_workers_then_kill_w1(&s, &url, (&input, &out));
    assert!(held > 0, "w1 died with no deliveries out; nothing to redeliver");
    producing.join().expect("producer");
    let summary = finish_worker(w2, "w2");

    let results = client.output(&out);
    let per_worker = assert_exactly_once(&results, RECORDS);
    assert!(per_worker.get("w1").copied().unwrap_or(0) > 0, "w1 contributed nothing: {per_worker:?}");
    assert!(per_worker.get("w2").copied().unwrap_or(0) > 0, "w2 contributed nothing: {per_worker:?}");
    // w2 got w1's deliveries back; it wrote their results, or found them already stored
    // (w1 died after publishing a batch but before acknowledging it) and dropped its own.
    assert!(summary["reclaimed"].as_u64().unwrap_or(0) > 0, "w2 reported no redeliveries: {summary}");
    let redelivered = results.iter().filter(|r| r.worker == "w2" && r.attempt > 1).count();
    let dropped = summary["duplicates"].as_u64().unwrap_or(0);
    assert!(redelivered > 0 || dropped > 0, "w2 neither wrote nor dropped a redelivered record: {summary}");
    assert_eq!(client.ack_pending(&input), 0, "deliveries are still unacknowledged");
}

#[test]
fn a_restarted_worker_finishes_the_stream_cleanly() {
    let Some(url) = backend("WHARF_TEST_NATS_URL") else { return };
    let s = Sandbox::with_iris();
    let (input, out) = common::stream_names("restart");
    let (client, w2, producing, held) = two_workers_then_kill_w1(&s, &url, (&input, &out));
    assert!(held > 0, "w1 died with no deliveries out");
    let w1_again = worker(&s, &url, (&input, &out), "w1", "3s");
    producing.join().expect("producer");
    let first = finish_worker(w1_again, "w1 (restarted)");
    let second = finish_worker(w2, "w2");

    let results = client.output(&out);
    let per_worker = assert_exactly_once(&results, RECORDS);
    assert!(per_worker.len() == 2, "both workers should have written: {per_worker:?}\n{first}\n{second}");
    assert!(first["records_out"].as_u64().unwrap_or(0) > 0, "the restarted w1 scored nothing: {first}");
    let sum = |field: &str| first[field].as_u64().unwrap_or(0) + second[field].as_u64().unwrap_or(0);
    assert!(sum("reclaimed") > 0, "{held} deliveries were out at w1's death; none came back: {first} {second}");
    let rewritten = results.iter().any(|r| r.attempt > 1);
    assert!(rewritten || sum("duplicates") > 0, "no redelivered record was written or dropped: {first} {second}");
    assert_eq!(client.ack_pending(&input), 0);
}

/// A nats-server this test owns (JetStream, file storage), so a restart keeps the streams.
fn nats_server(bin: &str) -> common::OwnedServer {
    common::OwnedServer::start(
        bin,
        |port, dir| {
            let args = ["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"];
            args.iter().map(Into::into).chain([dir.as_os_str().to_owned()]).collect()
        },
        |port| {
            let client = Client::connect(&format!("nats://127.0.0.1:{port}"));
            let started = Instant::now();
            // JetStream is up once it answers, even if the answer is "no such stream".
            loop {
                match client.runtime.block_on(client.js.get_stream("wharf-readiness-probe")) {
                    Ok(_) => break,
                    Err(e) if matches!(e.kind(), jetstream::context::GetStreamErrorKind::JetStream(_)) => break,
                    Err(e) => assert!(started.elapsed() < Duration::from_secs(30), "JetStream never came up: {e}"),
                }
                thread::sleep(Duration::from_millis(50));
            }
        },
    )
}

#[test]
fn workers_ride_through_a_broker_restart_with_file_storage() {
    let Some(bin) = backend("WHARF_TEST_NATS_SERVER") else { return };
    let s = Sandbox::with_iris();
    let mut server = nats_server(&bin);
    let url = format!("nats://127.0.0.1:{}", server.port);
    let (input, out) = common::stream_names("broker");
    let client = Client::connect(&url);
    client.stream(&input);
    // A longer idle timeout: a fetch in flight when the server goes away only ends on the
    // client's own timeout, and that must not look like the end of the stream.
    let w1 = worker(&s, &url, (&input, &out), "w1", "15s");
    let w2 = worker(&s, &url, (&input, &out), "w2", "15s");
    client.produce(&input, 0, RECORDS / 2, 60, Duration::from_millis(20));
    drop(client);
    server.down();
    let stored = walk(server.dir());
    assert!(stored > 0, "no file storage written");
    thread::sleep(Duration::from_millis(500));
    server.up();
    let client = Client::connect(&url);
    client.produce(&input, RECORDS / 2, RECORDS, 60, Duration::from_millis(20));
    let first = finish_worker(w1, "w1");
    let second = finish_worker(w2, "w2");

    let results = client.output(&out);
    let per_worker = assert_exactly_once(&results, RECORDS);
    assert!(per_worker.len() == 2, "both workers should have written: {per_worker:?}\n{first}\n{second}");
    assert_eq!(client.ack_pending(&input), 0);
}

/// Files under `dir`, recursively.
fn walk(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries.filter_map(Result::ok).map(|e| if e.path().is_dir() { walk(&e.path()) } else { 1 }).sum()
        })
        .unwrap_or(0)
}

#[test]
fn nats_urls_that_cannot_work_are_refused_with_the_bad_part_named() {
    let s = Sandbox::with_iris();
    let stream = |extra: &[&str]| {
        let mut args = vec!["stream", "--model", "iris@champion"];
        args.extend_from_slice(extra);
        s.error(&args)
    };
    let err = stream(&["--source", "nats://127.0.0.1:1/rows?consumer=w1"]);
    assert!(err.contains("nats://127.0.0.1:1/rows (group)"), "{err}");
    let err = stream(&["--source", "nats://127.0.0.1:1/rows?group=g&consumer=w1&colour=red"]);
    assert!(err.contains("unknown parameter `colour`"), "{err}");
    let err = stream(&["--source", "nats://127.0.0.1:1/a.b?group=g&consumer=w1"]);
    assert!(err.contains("not a JetStream stream name"), "{err}");
    let err = stream(&["--source", "nats://127.0.0.1:1/rows?group=g&consumer=w1", "--sink", "redis://h/out"]);
    assert!(err.contains("use the same broker as --source"), "{err}");
    // Nothing listens on port 1: the error names the stream and hides the password.
    let err = stream(&["--source", "nats://u:hunter2@127.0.0.1:1/rows?group=g&consumer=w1"]);
    assert!(err.contains("nats://127.0.0.1:1/rows") && !err.contains("hunter2"), "{err}");
}

/// The benchmark: records per second through `wharf stream` worker processes on one durable
/// consumer, from the moment they start until every result is stored (a decision tree on
/// iris, 500-record batches). Run it with
/// `cargo test --release -p wharf-cli --features nats --test stream_nats_cli -- --ignored --nocapture`.
#[test]
#[ignore = "a benchmark: run with --release -- --ignored --nocapture"]
fn throughput_of_one_and_two_worker_processes() {
    let Some(url) = backend("WHARF_TEST_NATS_URL") else { return };
    const N: usize = 20_000;
    let s = Sandbox::with_iris();
    for workers in [1usize, 2] {
        let (input, out) = common::stream_names("bench");
        let client = Client::connect(&url);
        client.stream(&input);
        client.produce(&input, 0, N, 1000, Duration::ZERO);
        let started = Instant::now();
        let children: Vec<Child> = (0..workers)
            .map(|w| {
                let source = format!("{url}/{input}?group={GROUP}&consumer=w{w}");
                s.command(&[
                    "--json",
                    "stream",
                    "--model",
                    "iris@champion",
                    "--source",
                    &source,
                    "--sink",
                    &format!("{url}/{out}"),
                    "--id",
                    "id",
                    "--batch-size",
                    "500",
                    "--max-latency-ms",
                    "100",
                    "--idle-timeout",
                    "2s",
                ])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start wharf stream")
            })
            .collect();
        let stored = || {
            client
                .runtime
                .block_on(async { client.js.get_stream(&out).await.map(|s| s.cached_info().state.messages) })
                .unwrap_or(0) as usize
        };
        while stored() < N {
            assert!(started.elapsed() < Duration::from_secs(600), "only {} of {N} results after 10 minutes", stored());
            thread::sleep(Duration::from_millis(20));
        }
        let elapsed = started.elapsed();
        for (w, child) in children.into_iter().enumerate() {
            finish_worker(child, &format!("w{w}"));
        }
        assert_eq!(assert_exactly_once(&client.output(&out), N).len(), workers);
        println!(
            "nats, {workers} wharf stream process(es): {N} records in {:.2}s = {:.0} records/s",
            elapsed.as_secs_f64(),
            N as f64 / elapsed.as_secs_f64()
        );
    }
}

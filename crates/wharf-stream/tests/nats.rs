//! The NATS JetStream adapter against a real nats-server on loopback (`WHARF_TEST_NATS_URL`,
//! set by `cargo xtask test`): a job over a durable pull consumer, redelivery after
//! `ack_wait` with the attempt counted, dead letters, results de-duplicated by
//! `Nats-Msg-Id`, and the unpaired (at-least-once) path. Skipped with a `skipped:` line when
//! the variable is unset, unless `WHARF_TEST_REQUIRE_BACKENDS=1`.
//!
//! The `#[ignore]`d `throughput_with_one_and_two_workers` is the benchmark: run it with
//! `cargo test --release -p wharf-stream --features nats --test nats -- --ignored --nocapture`.
#![cfg(feature = "nats")]

mod common;

use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer};
use async_nats::HeaderMap;
use common::{broker_options as options, iris, iris_scorer as scorer, unique};
use futures_util::StreamExt;
use wharf_stream::nats::{NatsSink, NatsSource, NatsStreamUrl};
use wharf_stream::{Polled, StreamJob, StreamReport, StreamSink, StreamSource};

fn server() -> Option<String> {
    common::broker("WHARF_TEST_NATS_URL")
}

fn url(base: &str, stream: &str, query: &str) -> NatsStreamUrl {
    NatsStreamUrl::parse(&format!("{base}/{stream}{query}")).expect("url")
}

/// A plain JetStream client for producing and inspecting streams, as a producer or a
/// downstream reader would.
struct Client {
    runtime: tokio::runtime::Runtime,
    js: jetstream::Context,
}

/// One stored message: its headers and payload.
struct Stored {
    headers: HeaderMap,
    payload: String,
}

impl Stored {
    fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).map(|v| v.as_str().to_string())
    }
}

impl Client {
    fn connect(base: &str) -> Client {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let address = base.strip_prefix("nats://").unwrap_or(base).to_string();
        let client = runtime.block_on(async_nats::connect(address)).expect("connect");
        let js = {
            let _entered = runtime.enter();
            jetstream::new(client)
        };
        Client { runtime, js }
    }

    /// Creates the stream `name` (subject = name) the way the adapter does, so records can
    /// be published before any worker starts.
    fn stream(&self, name: &str) {
        let config = jetstream::stream::Config {
            name: name.to_string(),
            subjects: vec![name.to_string()],
            storage: jetstream::stream::StorageType::File,
            ..Default::default()
        };
        self.runtime.block_on(self.js.get_or_create_stream(config)).expect("create stream");
    }

    fn produce(&self, subject: &str, records: impl IntoIterator<Item = String>) {
        self.runtime.block_on(async {
            let mut acks = Vec::new();
            for record in records {
                acks.push(self.js.publish(subject.to_string(), record.into()).await.expect("publish"));
            }
            for ack in acks {
                ack.await.expect("publish ack");
            }
        });
    }

    /// Every message in `stream`, in order (through a throwaway consumer).
    fn read(&self, stream: &str) -> Vec<Stored> {
        self.runtime.block_on(async {
            let mut handle = self.js.get_stream(stream).await.expect("stream");
            let total = handle.info().await.expect("info").state.messages as usize;
            let reader = handle
                .create_consumer(consumer::pull::Config { ack_policy: consumer::AckPolicy::None, ..Default::default() })
                .await
                .expect("reader");
            let mut out = Vec::with_capacity(total);
            while out.len() < total {
                let mut batch =
                    reader.fetch().max_messages(1000).expires(Duration::from_secs(1)).messages().await.expect("fetch");
                while let Some(message) = batch.next().await {
                    let message = message.expect("message");
                    out.push(Stored {
                        headers: message.headers.clone().unwrap_or_default(),
                        payload: String::from_utf8_lossy(&message.payload).into_owned(),
                    });
                }
            }
            out
        })
    }

    fn count(&self, stream: &str) -> usize {
        self.runtime.block_on(async {
            let mut handle = self.js.get_stream(stream).await.expect("stream");
            handle.info().await.expect("info").state.messages as usize
        })
    }

    /// Deliveries of the durable consumer `group` not acknowledged yet.
    fn ack_pending(&self, stream: &str, group: &str) -> usize {
        self.runtime.block_on(async {
            let handle = self.js.get_stream(stream).await.expect("stream");
            let mut consumer: consumer::PullConsumer = handle.get_consumer(group).await.expect("consumer");
            consumer.info().await.expect("consumer info").num_ack_pending
        })
    }

    fn delete(&self, streams: &[&str]) {
        for stream in streams {
            let _ = self.runtime.block_on(self.js.delete_stream(stream));
        }
    }
}

/// One worker: a job over the durable consumer `g`, its sink paired with its source.
fn work(base: &str, input: &str, output: &str, worker: &str, batch_size: usize) -> StreamReport {
    let source = NatsSource::open(&url(base, input, &format!("?group=g&consumer={worker}"))).expect("source");
    let sink = NatsSink::open(&url(base, output, ""), worker)
        .and_then(|s| s.acknowledging(source.acknowledgement()))
        .expect("sink");
    StreamJob::new(source, sink, scorer()).options(options(batch_size)).run().expect("job")
}

fn poll_one(source: &mut NatsSource, wait: Duration) -> Vec<wharf_stream::Delivery> {
    match source.poll(10, wait).expect("poll") {
        Polled::Records(records) => records,
        other => panic!("expected a record, got {other:?}"),
    }
}

#[test]
fn a_job_scores_a_durable_consumer_into_a_stream_and_dead_letters_what_is_empty() {
    let Some(base) = server() else { return };
    let (input, output) = (unique("job-in"), unique("job-out"));
    let client = Client::connect(&base);
    client.stream(&input);
    client.produce(&input, (0..100).map(iris));
    client.produce(&input, [String::new(), "not json".to_string()]);

    let source = NatsSource::open(&url(&base, &input, "?group=g&consumer=solo")).expect("source");
    let stats = source.stats();
    let sink = NatsSink::open(&url(&base, &output, ""), "solo")
        .and_then(|s| s.acknowledging(source.acknowledgement()))
        .expect("sink");
    assert!(sink.exactly_once());
    let report = StreamJob::new(source, sink, scorer()).options(options(32)).run().expect("job");

    assert_eq!((report.counts.records_in, report.counts.records_out, report.counts.rejected), (101, 100, 1));
    let out = client.read(&output);
    assert_eq!(out.len(), 100);
    assert!(out[0].payload.starts_with(r#"{"id":0,"prediction":"#), "{}", out[0].payload);
    assert_eq!(out[0].header("Wharf-Worker").as_deref(), Some("solo"));
    assert_eq!(out[0].header("Wharf-Attempt").as_deref(), Some("1"));
    let key = out[0].header("Nats-Msg-Id").expect("message id");
    assert_eq!(key, format!("{input}@1"), "the key names the input stream and sequence");
    assert_eq!(out[0].header("Wharf-Key"), Some(key));
    assert_eq!(client.ack_pending(&input, "g"), 0, "every message acknowledged");

    let dead = client.read(&format!("{input}-dead"));
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].header("Wharf-Reason").as_deref(), Some("the message is empty"));
    assert_eq!(dead[0].header("Wharf-Stream").as_deref(), Some(input.as_str()));
    assert_eq!(dead[0].header("Wharf-Sequence").as_deref(), Some("101"));
    assert_eq!(stats.dead_lettered(), 1);
    client.delete(&[&input, &output, &format!("{input}-dead")]);
}

#[test]
fn an_unacknowledged_delivery_goes_to_another_worker_after_ack_wait() {
    let Some(base) = server() else { return };
    let input = unique("redeliver");
    let client = Client::connect(&base);
    // A worker that takes the record and never acknowledges it (it died on it).
    let mut ghost = NatsSource::open(&url(&base, &input, "?group=g&consumer=ghost&ack_wait_ms=300")).expect("ghost");
    assert_eq!(ghost.ack_wait(), Duration::from_millis(300));
    client.produce(&input, [iris(7)]);
    let first = poll_one(&mut ghost, Duration::from_secs(5));
    assert_eq!((first.len(), first[0].attempt), (1, 1));

    // Another worker on the same durable consumer: nothing until ack_wait has passed, then
    // the same record, second attempt. Leaving ack_wait out takes the consumer's own.
    let mut next = NatsSource::open(&url(&base, &input, "?group=g&consumer=next")).expect("source");
    assert_eq!(next.ack_wait(), Duration::from_millis(300));
    let started = Instant::now();
    let second = loop {
        match next.poll(10, Duration::from_millis(200)).expect("poll") {
            Polled::Records(records) => break records,
            _ => assert!(started.elapsed() < Duration::from_secs(30), "never redelivered"),
        }
    };
    assert_eq!(second.len(), 1);
    assert_eq!((second[0].key.as_str(), second[0].attempt), (first[0].key.as_str(), 2));
    assert_eq!(second[0].payload, iris(7).into_bytes());
    assert_eq!((next.stats().reclaimed(), ghost.stats().reclaimed()), (1, 0));
    next.commit(&second).expect("ack");
    assert_eq!(client.ack_pending(&input, "g"), 0);
    // An acknowledgement of the stale first delivery changes nothing and is no error.
    ghost.commit(&first).expect("late ack");

    // ack_wait is the consumer's: a worker asking for another value is refused.
    let err = NatsSource::open(&url(&base, &input, "?group=g&consumer=x&ack_wait_ms=999")).expect_err("mismatch");
    assert!(err.to_string().contains("ack_wait 300 ms, not 999 ms"), "{err}");
    client.delete(&[&input]);
}

#[test]
fn a_message_delivered_too_often_goes_to_the_dead_letter_stream() {
    let Some(base) = server() else { return };
    let input = unique("poison");
    let dlq = unique("poison-dlq");
    let client = Client::connect(&base);
    let query = format!("?group=g&consumer=ghost&ack_wait_ms=200&max_attempts=1&dead_letter={dlq}");
    let mut ghost = NatsSource::open(&url(&base, &input, &query)).expect("ghost");
    client.produce(&input, [iris(7)]);
    poll_one(&mut ghost, Duration::from_secs(5));

    let mut next = NatsSource::open(&url(&base, &input, &query.replace("ghost", "next"))).expect("source");
    let started = Instant::now();
    while next.stats().dead_lettered() == 0 {
        assert!(started.elapsed() < Duration::from_secs(30), "never dead-lettered");
        assert_eq!(next.poll(10, Duration::from_millis(200)).expect("poll"), Polled::Idle);
    }
    assert_eq!(next.stats().dead_lettered(), 1);
    assert_eq!(client.ack_pending(&input, "g"), 0, "the poison message is terminated");
    let dead = client.read(&dlq);
    assert_eq!(dead.len(), 1);
    let reason = dead[0].header("Wharf-Reason").expect("reason");
    assert!(reason.contains("delivered 2 times (max_attempts 1)"), "{reason}");
    assert_eq!(dead[0].payload, iris(7));
    assert_eq!(dead[0].header("Wharf-Consumer").as_deref(), Some("next"));
    assert_eq!(dead[0].header("Wharf-Attempts").as_deref(), Some("2"));
    // Terminated, it is never delivered again.
    assert_eq!(next.poll(10, Duration::from_millis(500)).expect("poll"), Polled::Idle);
    client.delete(&[&input, &dlq]);
}

#[test]
fn a_record_committed_by_two_workers_is_stored_once() {
    let Some(base) = server() else { return };
    let (input, output) = (unique("race-in"), unique("race-out"));
    let client = Client::connect(&base);
    let query = "?group=g&consumer=slow&ack_wait_ms=200";
    let mut slow = NatsSource::open(&url(&base, &input, query)).expect("slow");
    client.produce(&input, [iris(1)]);
    let first = poll_one(&mut slow, Duration::from_secs(5));
    // `fast` gets the record again once ack_wait passes, while `slow` is still scoring it.
    let mut fast = NatsSource::open(&url(&base, &input, &query.replace("slow", "fast"))).expect("fast");
    let started = Instant::now();
    let second = loop {
        if let Polled::Records(records) = fast.poll(1, Duration::from_millis(200)).expect("poll") {
            break records;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "never redelivered");
    };

    let sink = |source: &NatsSource, who: &str| {
        NatsSink::open(&url(&base, &output, ""), who).and_then(|s| s.acknowledging(source.acknowledgement()))
    };
    let (mut slow_sink, mut fast_sink) = (sink(&slow, "slow").expect("sink"), sink(&fast, "fast").expect("sink"));
    common::a_record_committed_twice_is_written_once((&mut slow_sink, &first), (&mut fast_sink, &second), || {
        client.count(&output)
    });

    let out = client.read(&output);
    assert_eq!(out[0].header("Wharf-Worker").as_deref(), Some("fast"));
    assert_eq!(out[0].header("Wharf-Attempt").as_deref(), Some("2"));
    assert_eq!((slow.stats().duplicates(), fast.stats().duplicates()), (1, 0));
    assert_eq!(client.ack_pending(&input, "g"), 0);
    client.delete(&[&input, &output]);
}

#[test]
fn an_unpaired_sink_writes_and_the_source_acknowledges_after() {
    let Some(base) = server() else { return };
    let (input, output) = (unique("unpaired-in"), unique("unpaired-out"));
    let client = Client::connect(&base);
    let mut source = NatsSource::open(&url(&base, &input, "?group=g&consumer=c")).expect("source");
    client.produce(&input, [iris(3)]);
    let batch = poll_one(&mut source, Duration::from_secs(5));
    let mut sink = NatsSink::open(&url(&base, &output, ""), "c").expect("sink");
    assert!(!sink.exactly_once());
    let line = common::result_line(3, "x", &batch[0].key);
    assert!(!sink.write_acked(line.as_bytes(), &batch).expect("write"), "an unpaired sink does not acknowledge");
    assert_eq!(client.ack_pending(&input, "g"), 1);
    source.commit(&batch).expect("ack");
    assert_eq!(client.ack_pending(&input, "g"), 0);
    // Even unpaired, a result written twice is stored once.
    sink.write(line.as_bytes()).expect("write again");
    assert_eq!(client.count(&output), 1);
    client.delete(&[&input, &output]);
}

#[test]
fn urls_that_cannot_work_are_refused_by_name() {
    let Some(base) = server() else { return };
    let err = NatsSource::open(&url(&base, "rows", "?group=g")).expect_err("no consumer").to_string();
    assert!(err.contains("rows") && err.contains("consumer="), "{err}");

    // A duplicate window no longer than ack_wait could store a redelivered result twice.
    let (input, output) = (unique("window-in"), unique("window-out"));
    let source = NatsSource::open(&url(&base, &input, "?group=g&consumer=c&ack_wait_ms=3000")).expect("source");
    let sink = NatsSink::open(&url(&base, &output, "?duplicate_window_ms=2000"), "c").expect("sink");
    assert_eq!(sink.duplicate_window(), Duration::from_secs(2));
    let err = sink.acknowledging(source.acknowledgement()).expect_err("window too short").to_string();
    assert!(err.contains("must be longer than the source's ack_wait (3000 ms)"), "{err}");
    // The stream exists now with its window; asking for another one is refused.
    let err = NatsSink::open(&url(&base, &output, "?duplicate_window_ms=9000"), "c").expect_err("mismatch");
    assert!(err.to_string().contains("duplicate window of 2000 ms"), "{err}");
    Client::connect(&base).delete(&[&input, &output]);

    // Nothing listens on port 1: the error names the server and hides the password.
    let err = NatsSource::open(&url("nats://u:hunter2@127.0.0.1:1", "rows", "?group=g&consumer=c"))
        .expect_err("no server")
        .to_string();
    assert!(err.contains("nats://127.0.0.1:1/rows") && !err.contains("hunter2"), "{err}");
}

/// The benchmark: records per second through one durable consumer, scored by a decision
/// tree, results published with their message ids and then acknowledged, with one and with
/// two workers (threads with their own connections, as separate processes would have).
#[test]
#[ignore = "a benchmark: run with --release -- --ignored --nocapture"]
fn throughput_with_one_and_two_workers() {
    let Some(base) = server() else { return };
    const N: usize = 100_000;
    let client = Client::connect(&base);
    for workers in [1usize, 2] {
        let (input, output) = (unique("bench-in"), unique("bench-out"));
        client.stream(&input);
        for chunk in (0..N).collect::<Vec<_>>().chunks(1000) {
            client.produce(&input, chunk.iter().map(|&i| iris(i)));
        }
        let started = Instant::now();
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let (base, input, output) = (base.clone(), input.clone(), output.clone());
                std::thread::spawn(move || work(&base, &input, &output, &format!("w{w}"), 500))
            })
            .collect();
        let scored: u64 = handles.into_iter().map(|h| h.join().expect("worker").counts.records_out).sum();
        // Each worker waits out its idle timeout after the stream is drained.
        let elapsed = started.elapsed().saturating_sub(options(1).idle_timeout.unwrap_or_default());
        assert_eq!(scored, N as u64);
        assert_eq!(client.count(&output), N);
        println!(
            "nats durable consumer, {workers} worker(s): {N} records in {:.2}s = {:.0} records/s",
            elapsed.as_secs_f64(),
            N as f64 / elapsed.as_secs_f64()
        );
        client.delete(&[&input, &output]);
    }
}

//! The Redis Streams adapter against a real Redis on loopback (`WHARF_TEST_REDIS_URL`, set
//! by `cargo xtask test`): a job over a consumer group, dead letters, de-duplicated
//! commits, and the unpaired (at-least-once) path. Skipped with a `skipped:` line when the
//! variable is unset, unless `WHARF_TEST_REQUIRE_BACKENDS=1`.
//!
//! The `#[ignore]`d `throughput_with_one_and_two_workers` is the benchmark: run it with
//! `cargo test --release -p wharf-stream --features redis --test redis -- --ignored --nocapture`.
#![cfg(feature = "redis")]

mod common;

use std::time::{Duration, Instant};

use common::{broker_options as options, iris, iris_scorer as scorer, unique};
use redis::Commands;
use wharf_stream::redis::{RedisSink, RedisSource, RedisStreamUrl};
use wharf_stream::{Polled, StreamJob, StreamReport, StreamSink, StreamSource};

fn server() -> Option<String> {
    common::broker("WHARF_TEST_REDIS_URL")
}

fn connection(url: &str) -> redis::Connection {
    redis::Client::open(url).and_then(|c| c.get_connection()).expect("connect")
}

fn url(base: &str, stream: &str, query: &str) -> RedisStreamUrl {
    RedisStreamUrl::parse(&format!("{base}/{stream}{query}")).expect("url")
}

fn produce(con: &mut redis::Connection, stream: &str, records: impl IntoIterator<Item = String>) {
    let mut pipe = redis::pipe();
    for record in records {
        pipe.xadd(stream, "*", &[("record", record)]).ignore();
    }
    pipe.query::<()>(con).expect("produce");
}

/// One worker: a job over the group, its sink paired with its source.
fn work(base: &str, input: &str, output: &str, consumer: &str, batch_size: usize) -> StreamReport {
    let source = RedisSource::open(&url(base, input, &format!("?group=g&consumer={consumer}"))).expect("source");
    let sink = RedisSink::open(&url(base, output, ""), consumer)
        .and_then(|s| s.acknowledging(source.acknowledgement()))
        .expect("sink");
    StreamJob::new(source, sink, scorer()).options(options(batch_size)).run().expect("job")
}

fn pending(con: &mut redis::Connection, stream: &str) -> usize {
    let reply: redis::streams::StreamPendingReply = con.xpending(stream, "g").expect("xpending");
    reply.count()
}

#[test]
fn a_job_scores_a_consumer_group_into_a_stream_and_dead_letters_what_has_no_record() {
    let Some(base) = server() else { return };
    let (input, output) = (unique("job-in"), unique("job-out"));
    let mut con = connection(&base);
    produce(&mut con, &input, (0..100).map(iris));
    let _: String = con.xadd(&input, "*", &[("something", "else")]).expect("xadd");
    produce(&mut con, &input, ["not json".to_string()]);

    let source = RedisSource::open(&url(&base, &input, "?group=g&consumer=solo")).expect("source");
    let stats = source.stats();
    let sink = RedisSink::open(&url(&base, &output, ""), "solo")
        .and_then(|s| s.acknowledging(source.acknowledgement()))
        .expect("sink");
    assert!(sink.exactly_once());
    let report = StreamJob::new(source, sink, scorer()).options(options(32)).run().expect("job");

    assert_eq!((report.counts.records_in, report.counts.records_out, report.counts.rejected), (101, 100, 1));
    let out: redis::streams::StreamRangeReply = con.xrange_all(&output).expect("xrange");
    assert_eq!(out.ids.len(), 100);
    let first = &out.ids[0];
    let record: String = first.get("record").expect("record");
    assert!(record.starts_with(r#"{"id":0,"prediction":"#), "{record}");
    assert_eq!(first.get::<String>("worker").as_deref(), Some("solo"));
    assert!(first.get::<String>("key").is_some_and(|k| k.starts_with(&format!("{input}@"))));
    assert_eq!(pending(&mut con, &input), 0, "every entry acknowledged");

    let dead: redis::streams::StreamRangeReply = con.xrange_all(format!("{input}:dead")).expect("dead letters");
    assert_eq!(dead.ids.len(), 1);
    assert_eq!(dead.ids[0].get::<String>("reason").as_deref(), Some("the entry has no `record` field"));
    assert_eq!(dead.ids[0].get::<String>("stream").as_deref(), Some(input.as_str()));
    assert_eq!(stats.dead_lettered(), 1);
}

#[test]
fn an_entry_delivered_too_often_goes_to_the_dead_letter_stream() {
    let Some(base) = server() else { return };
    let input = unique("poison");
    let mut con = connection(&base);
    // A consumer that takes the entry and never acknowledges it (it died on it).
    let mut ghost = RedisSource::open(&url(&base, &input, "?group=g&consumer=ghost")).expect("ghost");
    produce(&mut con, &input, [iris(7)]);
    assert!(matches!(ghost.poll(10, Duration::from_millis(100)).expect("poll"), Polled::Records(r) if r.len() == 1));
    std::thread::sleep(Duration::from_millis(20));

    let query = "?group=g&consumer=next&min_idle_ms=10&max_attempts=1&dead_letter=poison-dlq";
    let mut next = RedisSource::open(&url(&base, &input, query)).expect("source");
    assert_eq!(next.poll(10, Duration::from_millis(50)).expect("poll"), Polled::Idle);
    assert_eq!(next.stats().dead_lettered(), 1);
    assert_eq!(pending(&mut con, &input), 0);
    let dead: redis::streams::StreamRangeReply = con.xrange_all("poison-dlq").expect("dead letters");
    let last = dead.ids.last().expect("a dead letter");
    let reason: String = last.get("reason").expect("reason");
    assert!(reason.contains("delivered 2 times (max_attempts 1)"), "{reason}");
    assert_eq!(last.get::<String>("record"), Some(iris(7)));
    assert_eq!(last.get::<String>("consumer").as_deref(), Some("next"));
    let _: () = con.del("poison-dlq").expect("del");
}

#[test]
fn a_record_committed_by_two_consumers_is_written_once() {
    let Some(base) = server() else { return };
    let (input, output) = (unique("race-in"), unique("race-out"));
    let mut con = connection(&base);
    let mut slow = RedisSource::open(&url(&base, &input, "?group=g&consumer=slow")).expect("slow");
    produce(&mut con, &input, [iris(1)]);
    let Polled::Records(first) = slow.poll(1, Duration::from_millis(100)).expect("poll") else { panic!("no record") };
    std::thread::sleep(Duration::from_millis(20));
    // `fast` reclaims the entry while `slow` is still scoring it.
    let mut fast = RedisSource::open(&url(&base, &input, "?group=g&consumer=fast&min_idle_ms=10")).expect("fast");
    let Polled::Records(second) = fast.poll(1, Duration::from_millis(100)).expect("poll") else { panic!("no claim") };
    assert_eq!(second[0].attempt, 2);

    let sink = |source: &RedisSource, who: &str| {
        RedisSink::open(&url(&base, &output, ""), who).and_then(|s| s.acknowledging(source.acknowledgement()))
    };
    let (mut slow_sink, mut fast_sink) = (sink(&slow, "slow").expect("sink"), sink(&fast, "fast").expect("sink"));
    common::a_record_committed_twice_is_written_once((&mut slow_sink, &first), (&mut fast_sink, &second), || {
        connection(&base).xlen(&output).expect("xlen")
    });

    let out: redis::streams::StreamRangeReply = con.xrange_all(&output).expect("xrange");
    assert_eq!(out.ids[0].get::<String>("worker").as_deref(), Some("fast"));
    assert_eq!(out.ids[0].get::<String>("attempt").as_deref(), Some("2"));
    assert_eq!((slow.stats().duplicates(), fast.stats().duplicates()), (1, 0));
}

#[test]
fn an_unpaired_sink_writes_and_the_source_acknowledges_after() {
    let Some(base) = server() else { return };
    let (input, output) = (unique("unpaired-in"), unique("unpaired-out"));
    let mut con = connection(&base);
    let mut source = RedisSource::open(&url(&base, &input, "?group=g&consumer=c")).expect("source");
    // Another database of the same server cannot take part in the commit script.
    let other_db = RedisSink::open(&url(&base, &output, "?db=1"), "c").expect("sink");
    let err = other_db.acknowledging(source.acknowledgement()).expect_err("another database").to_string();
    assert!(err.contains("another server or database"), "{err}");

    produce(&mut con, &input, [iris(3)]);
    let Polled::Records(batch) = source.poll(5, Duration::from_millis(100)).expect("poll") else { panic!("none") };
    let mut sink = RedisSink::open(&url(&base, &output, ""), "c").expect("sink");
    assert!(!sink.exactly_once());
    let line = format!("{{\"id\":3,\"prediction\":\"x\",\"key\":\"{}\"}}\n", batch[0].key);
    assert!(!sink.write_acked(line.as_bytes(), &batch).expect("write"), "an unpaired sink does not acknowledge");
    assert_eq!(pending(&mut con, &input), 1);
    source.commit(&batch).expect("ack");
    assert_eq!(pending(&mut con, &input), 0);
    let written: usize = con.xlen(&output).expect("xlen");
    assert_eq!(written, 1);
}

#[test]
fn a_source_without_group_or_consumer_is_refused_by_name() {
    let Some(base) = server() else { return };
    let err = RedisSource::open(&url(&base, "rows", "?group=g")).expect_err("no consumer").to_string();
    assert!(err.contains("rows") && err.contains("consumer="), "{err}");
}

/// The benchmark: records per second through one consumer group, scored by a decision
/// tree and committed atomically, with one and with two workers (threads with their own
/// connections, as separate processes would have).
#[test]
#[ignore = "a benchmark: run with --release -- --ignored --nocapture"]
fn throughput_with_one_and_two_workers() {
    let Some(base) = server() else { return };
    const N: usize = 100_000;
    for workers in [1usize, 2] {
        let (input, output) = (unique("bench-in"), unique("bench-out"));
        let mut con = connection(&base);
        for chunk in (0..N).collect::<Vec<_>>().chunks(1000) {
            produce(&mut con, &input, chunk.iter().map(|&i| iris(i)));
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
        let written: usize = con.xlen(&output).expect("xlen");
        assert_eq!(written, N);
        println!(
            "redis consumer group, {workers} worker(s): {N} records in {:.2}s = {:.0} records/s",
            elapsed.as_secs_f64(),
            N as f64 / elapsed.as_secs_f64()
        );
        let _: () = con.del(&[&input, &output]).expect("clean up");
    }
}

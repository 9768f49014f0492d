//! Apache Kafka: a consumer group as a [`StreamSource`] and a topic as a [`StreamSink`]
//! (feature `kafka`, on librdkafka through the `rdkafka` crate).
//!
//! **Tested against a Kafka-compatible broker, not against Apache Kafka.** No Kafka broker
//! installs on the machines Wharf's test suite runs on (no Debian package, no JVM
//! artifacts), so `cargo xtask test` only compiles, lints and unit-tests this adapter (URL
//! parsing, commit offsets, a clear error for an unreachable cluster). Its integration tests
//! (`tests/kafka.rs`: a job over a consumer group, a worker leaving without committing, two
//! workers splitting the partitions) run when `WHARF_TEST_KAFKA_URL` names a broker; they
//! pass against tansu 0.6, a Kafka-compatible broker written in Rust. The Redis Streams and
//! NATS JetStream adapters carry the same port and are tested end to end in every run.
//!
//! Scale-out is Kafka's own: every worker joins the same consumer group, Kafka assigns each
//! partition to one of them, and when a worker dies its partitions are reassigned to the
//! others, which resume from the group's committed offsets. So the number of partitions is
//! the ceiling on useful workers.
//!
//! # The URL
//!
//! ```text
//! kafka://HOST[:PORT][,HOST[:PORT]…]/TOPIC[?group=G&consumer=C&session_timeout_ms=MS&dead_letter=TOPIC]
//! ```
//!
//! `group` and `consumer` are required for a source and ignored by a sink (`consumer`
//! becomes the client id). A new group starts at the earliest offset. Each message's value
//! is one record, a JSON object.
//!
//! # At least once
//!
//! The source commits a batch's offsets only after the sink has written its results
//! ([`StreamSource::commit`]), so a worker that dies re-delivers, through whichever worker
//! takes its partitions, everything after its last commit. The sink is an idempotent
//! producer (`enable.idempotence`, `acks=all`) whose message key is the input record's
//! key (`TOPIC/PARTITION@OFFSET`), so a consumer of the results — or a compacted topic —
//! can drop the repeats. Exactly once would need Kafka transactions
//! (`send_offsets_to_transaction` from [`StreamSink::write_acked`], with a
//! `transactional.id` per worker); the port allows it, but it is not built, because it could
//! not be tested here.
//!
//! Kafka keeps no per-message delivery count, so `Delivery::attempt` is always 1 and
//! records are not dead-lettered for being delivered too often; a message without a value
//! goes to the dead-letter topic (`<TOPIC>.dead` unless `dead_letter` says otherwise). Its
//! offset is committed with the next batch of its partition, never ahead of records read
//! before it, so a restart may dead-letter it again (the entry's `key` names the message).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, DefaultConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use wharf_core::{Result, WharfError};

use crate::broker::{group_and_consumer, lines, query_pairs, result_key};
use crate::sink::StreamSink;
use crate::source::{BrokerStats, Delivery, Polled, StreamSource};

/// The adapter's name in errors.
const ADAPTER: &str = "kafka";
/// How long opening a source or sink waits for the cluster to answer: a wrong address fails
/// at start-up, not at the first batch.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a batch's writes may take to be acknowledged by the cluster (librdkafka retries
/// within it, so a leader election does not fail the job).
const FLUSH_TIMEOUT: Duration = Duration::from_secs(60);
/// The default consumer session timeout: how long a silent worker keeps its partitions.
pub const DEFAULT_SESSION_TIMEOUT: Duration = Duration::from_secs(10);

/// A parsed `kafka://` topic URL (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaTopicUrl {
    /// The bootstrap servers, `host:port` separated by commas.
    pub brokers: String,
    /// The topic.
    pub topic: String,
    /// The consumer group (sources).
    pub group: Option<String>,
    /// This worker's name within the group (sources); the client id.
    pub consumer: Option<String>,
    /// How long a silent consumer keeps its partitions before they are reassigned.
    pub session_timeout: Duration,
    /// Where messages that cannot be scored at all (no value) go.
    pub dead_letter: String,
}

impl KafkaTopicUrl {
    /// Parses `url`; an error names the part that is wrong.
    pub fn parse(url: &str) -> Result<KafkaTopicUrl> {
        let bad = |part: &str, message: String| WharfError::invalid(format!("{url} ({part})"), message);
        let rest = url
            .strip_prefix("kafka://")
            .ok_or_else(|| bad("scheme", "a Kafka topic URL starts with kafka://".into()))?;
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority, topic) = rest.split_once('/').unwrap_or((rest, ""));
        if topic.is_empty() {
            return Err(bad("topic", "name the topic after the brokers: kafka://HOST:PORT/TOPIC".into()));
        }
        if authority.contains('@') {
            return Err(bad(
                "credentials",
                "credentials in the URL are not supported; this build speaks plaintext Kafka only".into(),
            ));
        }
        let mut brokers = Vec::new();
        for host in authority.split(',') {
            if host.is_empty() {
                return Err(bad("brokers", "a broker is missing: kafka://HOST:PORT[,HOST:PORT…]/TOPIC".into()));
            }
            brokers.push(if host.contains(':') { host.to_string() } else { format!("{host}:9092") });
        }
        let mut parsed = KafkaTopicUrl {
            brokers: brokers.join(","),
            topic: topic.to_string(),
            group: None,
            consumer: None,
            session_timeout: DEFAULT_SESSION_TIMEOUT,
            dead_letter: format!("{topic}.dead"),
        };
        for (key, value) in query_pairs(query, bad)? {
            match key {
                "group" => parsed.group = Some(value.to_string()),
                "consumer" => parsed.consumer = Some(value.to_string()),
                "session_timeout_ms" => {
                    let ms = value
                        .parse::<u64>()
                        .map_err(|_| bad(key, format!("`{key}={value}` is not a number of milliseconds")))?;
                    parsed.session_timeout = Duration::from_millis(ms.max(1));
                }
                "dead_letter" => parsed.dead_letter = value.to_string(),
                other => {
                    return Err(bad(
                        other,
                        format!(
                            "unknown parameter `{other}` (known: group, consumer, session_timeout_ms, dead_letter)"
                        ),
                    ))
                }
            }
        }
        Ok(parsed)
    }

    /// The topic's name for lineage and errors: `kafka://brokers/topic`.
    pub fn name(&self) -> String {
        format!("kafka://{}/{}", self.brokers, self.topic)
    }
}

fn backend(url: &KafkaTopicUrl, what: &str, e: KafkaError) -> WharfError {
    WharfError::backend(ADAPTER, format!("{}: {what} failed", url.name()), Some(e.into()))
}

/// Asks the cluster for the topic's metadata, so a wrong address or a missing topic fails
/// when the worker starts.
fn check_topic(client: &rdkafka::client::Client<impl ClientContext>, url: &KafkaTopicUrl) -> Result<()> {
    let metadata = client
        .fetch_metadata(Some(&url.topic), CONNECT_TIMEOUT)
        .map_err(|e| backend(url, &format!("reaching the brokers within {}s", CONNECT_TIMEOUT.as_secs()), e))?;
    match metadata.topics().iter().find(|t| t.name() == url.topic) {
        Some(topic) if topic.error().is_none() => Ok(()),
        _ => Err(WharfError::invalid(url.name(), format!("the cluster has no topic `{}`", url.topic))),
    }
}

/// Creates the topic named in `url` with `partitions` partitions (replication factor 1, for
/// a test or a single-broker cluster), unless it exists; answers whether it created it.
///
/// The source and sink never create topics themselves: on a real cluster the partition
/// count is the ceiling on parallel workers and the replication factor is the durability,
/// decisions that belong to whoever runs the cluster.
pub fn create_topic(url: &KafkaTopicUrl, partitions: i32) -> Result<bool> {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &url.brokers)
        .create()
        .map_err(|e| backend(url, "creating the admin client", e))?;
    let topic = NewTopic::new(&url.topic, partitions.max(1), TopicReplication::Fixed(1));
    let options = AdminOptions::new().operation_timeout(Some(CONNECT_TIMEOUT)).request_timeout(Some(CONNECT_TIMEOUT));
    let results =
        block_on(admin.create_topics([&topic], &options)).map_err(|e| backend(url, "creating the topic", e))?;
    match results.into_iter().next() {
        Some(Ok(_)) => Ok(true),
        Some(Err((_, RDKafkaErrorCode::TopicAlreadyExists))) => Ok(false),
        Some(Err((_, code))) => Err(backend(url, "creating the topic", KafkaError::AdminOp(code))),
        None => Err(WharfError::backend(
            ADAPTER,
            format!("{}: the cluster did not answer the topic creation", url.name()),
            None,
        )),
    }
}

/// Runs a future to completion on this thread. The admin client's futures are completed
/// by librdkafka's own polling thread, so no async runtime is needed — only a waker that
/// unparks this thread.
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    use std::task::{Context, Poll, Wake, Waker};
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(value) => return value,
            Poll::Pending => std::thread::park(),
        }
    }
}

/// A consumer in a Kafka consumer group, as a [`StreamSource`] (see the [module docs](self)).
pub struct KafkaSource {
    url: KafkaTopicUrl,
    consumer: BaseConsumer<DefaultConsumerContext>,
    /// Writes messages without a value to the dead-letter topic.
    dead: KafkaSink,
    stats: Arc<BrokerStats>,
}

impl std::fmt::Debug for KafkaSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSource").field("url", &self.url).finish()
    }
}

impl KafkaSource {
    /// Joins the group named in `url` and subscribes to its topic; fails if the brokers do
    /// not answer or the topic does not exist.
    pub fn open(url: &KafkaTopicUrl) -> Result<KafkaSource> {
        let (group, client_id) = group_and_consumer(
            &url.name(),
            "Kafka",
            "kafka://HOST:PORT/TOPIC?group=G&consumer=C",
            &url.group,
            &url.consumer,
        )?;
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &url.brokers)
            .set("group.id", &group)
            .set("client.id", &client_id)
            // Offsets are committed by `commit`, after the results are written.
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", url.session_timeout.as_millis().to_string())
            // Results written by a transactional producer upstream are read only once
            // committed.
            .set("isolation.level", "read_committed")
            .create()
            .map_err(|e| backend(url, "creating the consumer", e))?;
        check_topic(consumer.client(), url)?;
        consumer.subscribe(&[&url.topic]).map_err(|e| backend(url, "subscribing", e))?;
        let mut dead_url = url.clone();
        dead_url.topic = url.dead_letter.clone();
        let dead = KafkaSink::connect(&dead_url, client_id)?;
        Ok(KafkaSource { url: url.clone(), consumer, dead, stats: Arc::new(BrokerStats::default()) })
    }

    /// The partitions of the topic this worker owns now (empty until the group has
    /// assigned it some, which happens during [`poll`](StreamSource::poll)).
    pub fn assigned_partitions(&self) -> Result<Vec<i32>> {
        let list = self.consumer.assignment().map_err(|e| backend(&self.url, "reading the assignment", e))?;
        Ok(list.elements().iter().map(|e| e.partition()).collect())
    }

    /// Counts of dead-lettered records, readable while and after the job runs.
    pub fn stats(&self) -> Arc<BrokerStats> {
        self.stats.clone()
    }
}

/// The acknowledgement token of a message: `PARTITION:OFFSET`.
fn token(partition: i32, offset: i64) -> String {
    format!("{partition}:{offset}")
}

/// The offsets to commit for `deliveries`: per partition, one past the highest offset
/// delivered (Kafka's committed offset is the next message to read).
fn commit_offsets(deliveries: &[Delivery]) -> Result<BTreeMap<i32, i64>> {
    let mut next: BTreeMap<i32, i64> = BTreeMap::new();
    for d in deliveries {
        let parsed = d.token.as_deref().and_then(|t| {
            let (partition, offset) = t.split_once(':')?;
            Some((partition.parse::<i32>().ok()?, offset.parse::<i64>().ok()?))
        });
        let (partition, offset) = parsed.ok_or_else(|| {
            WharfError::invalid(d.key.clone(), "the record has no Kafka PARTITION:OFFSET token to commit")
        })?;
        let entry = next.entry(partition).or_insert(offset + 1);
        *entry = (*entry).max(offset + 1);
    }
    Ok(next)
}

impl StreamSource for KafkaSource {
    fn name(&self) -> String {
        self.url.name()
    }

    fn seek(&mut self, _position: u64) -> Result<()> {
        // The group's committed offsets are the checkpoint.
        Ok(())
    }

    fn poll(&mut self, max: usize, wait: Duration) -> Result<Polled> {
        let max = max.max(1);
        let deadline = Instant::now() + wait;
        let mut out = Vec::new();
        // Dead letters are written as result lines keyed by their message, so a repeat is
        // recognisable: their offsets are not committed here, since records read before them
        // may not be written yet. A later commit on the partition covers them; if none comes,
        // a restart dead-letters them again.
        let mut dead = Vec::new();
        while out.len() + dead.len() < max {
            // Wait for the first message; after that take only what has already arrived.
            let timeout = if out.is_empty() && dead.is_empty() {
                deadline.saturating_duration_since(Instant::now())
            } else {
                Duration::ZERO
            };
            let Some(polled) = self.consumer.poll(timeout) else { break };
            let message = polled.map_err(|e| backend(&self.url, "reading messages", e))?;
            let (partition, offset) = (message.partition(), message.offset());
            let key = format!("{}/{partition}@{offset}", self.url.topic);
            match message.payload() {
                Some(payload) => out.push(Delivery {
                    payload: payload.to_vec(),
                    offset: 0,
                    end: 0,
                    key,
                    attempt: 1,
                    token: Some(token(partition, offset)),
                }),
                None => dead.push(serde_json::json!({"key": key, "reason": "the message has no value"}).to_string()),
            }
        }
        if !dead.is_empty() {
            self.dead.write((dead.join("\n") + "\n").as_bytes())?;
            self.stats.add_dead_lettered(dead.len() as u64);
        }
        Ok(if out.is_empty() { Polled::Idle } else { Polled::Records(out) })
    }

    fn commit(&mut self, deliveries: &[Delivery]) -> Result<()> {
        let offsets = commit_offsets(deliveries)?;
        if offsets.is_empty() {
            return Ok(());
        }
        let mut list = TopicPartitionList::new();
        for (partition, next) in offsets {
            list.add_partition_offset(&self.url.topic, partition, Offset::Offset(next))
                .map_err(|e| backend(&self.url, "building the offset list", e))?;
        }
        match self.consumer.commit(&list, CommitMode::Sync) {
            Ok(()) => Ok(()),
            // The partitions moved to another worker during a rebalance: it re-reads them
            // from the last commit and writes their results again (at least once).
            Err(KafkaError::ConsumerCommit(
                RDKafkaErrorCode::RebalanceInProgress
                | RDKafkaErrorCode::IllegalGeneration
                | RDKafkaErrorCode::UnknownMemberId,
            )) => {
                self.stats.add_duplicates(deliveries.len() as u64);
                Ok(())
            }
            Err(e) => Err(backend(&self.url, "committing offsets", e)),
        }
    }
}

/// Collects delivery failures reported by librdkafka's callback, so a batch's write can
/// fail with the broker's reason instead of losing results silently.
#[derive(Default)]
struct Deliveries {
    failed: Mutex<Vec<String>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            if let Ok(mut failed) = self.failed.lock() {
                failed.push(e.to_string());
            }
        }
    }
}

/// A Kafka topic as a [`StreamSink`]: each result line is one message whose key is the input
/// record's `key` (see the [module docs](self)).
pub struct KafkaSink {
    url: KafkaTopicUrl,
    producer: BaseProducer<Deliveries>,
    len: u64,
}

impl std::fmt::Debug for KafkaSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSink").field("url", &self.url).finish()
    }
}

impl KafkaSink {
    /// Writes to the topic named in `url`, as `worker`; fails if the brokers do not answer
    /// or the topic does not exist.
    pub fn open(url: &KafkaTopicUrl, worker: impl Into<String>) -> Result<KafkaSink> {
        let sink = KafkaSink::connect(url, worker.into())?;
        check_topic(sink.producer.client(), url)?;
        Ok(sink)
    }

    /// The producer, without checking the topic (the dead-letter topic may be created by
    /// the cluster on first write).
    fn connect(url: &KafkaTopicUrl, worker: String) -> Result<KafkaSink> {
        let producer = ClientConfig::new()
            .set("bootstrap.servers", &url.brokers)
            .set("client.id", worker)
            // No duplicates from librdkafka's own retries, and writes that survive a
            // leader change.
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .create_with_context(Deliveries::default())
            .map_err(|e| backend(url, "creating the producer", e))?;
        Ok(KafkaSink { url: url.clone(), producer, len: 0 })
    }
}

impl StreamSink for KafkaSink {
    fn name(&self) -> String {
        self.url.name()
    }

    fn recover(&mut self, committed: u64) -> Result<()> {
        self.len = committed;
        Ok(())
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        for line in lines(bytes) {
            let key = result_key(line);
            // No key, no partition affinity: an empty key would send every line to one
            // partition.
            let mut record = BaseRecord::to(&self.url.topic).payload(line);
            if let Some(key) = &key {
                record = record.key(key.as_str());
            }
            // A full local queue drains as the cluster acknowledges; anything else is a
            // real failure.
            loop {
                match self.producer.send(record) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        record = back;
                        self.producer.poll(Duration::from_millis(100));
                    }
                    Err((e, _)) => return Err(backend(&self.url, "queueing a result", e)),
                }
            }
        }
        self.producer
            .flush(FLUSH_TIMEOUT)
            .map_err(|e| backend(&self.url, &format!("writing results within {}s", FLUSH_TIMEOUT.as_secs()), e))?;
        let failed = match self.producer.context().failed.lock() {
            Ok(mut failed) => std::mem::take(&mut *failed),
            Err(_) => vec!["the delivery report was lost (a callback panicked)".into()],
        };
        if let Some(first) = failed.first() {
            return Err(WharfError::backend(
                ADAPTER,
                format!("{}: {} results were not written; the first error: {first}", self.url.name(), failed.len()),
                None,
            ));
        }
        self.len += bytes.len() as u64;
        Ok(())
    }

    fn len(&self) -> u64 {
        self.len
    }

    fn exactly_once(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_names_brokers_topic_and_group() {
        let url = KafkaTopicUrl::parse("kafka://k1:19092,k2/rows?group=scorers&consumer=w1&session_timeout_ms=6000")
            .expect("parse");
        assert_eq!(url.brokers, "k1:19092,k2:9092");
        assert_eq!(url.topic, "rows");
        assert_eq!((url.group.as_deref(), url.consumer.as_deref()), (Some("scorers"), Some("w1")));
        assert_eq!(url.session_timeout, Duration::from_millis(6000));
        assert_eq!(url.dead_letter, "rows.dead");
        assert_eq!(url.name(), "kafka://k1:19092,k2:9092/rows");
    }

    #[test]
    fn a_bad_url_names_the_bad_part() {
        let cases = [
            ("http://h/t", "(scheme)"),
            ("kafka://h:1", "(topic)"),
            ("kafka://h,/t", "(brokers)"),
            ("kafka://u:pw@h/t", "(credentials)"),
            ("kafka://h/t?grp=g", "unknown parameter `grp`"),
            ("kafka://h/t?session_timeout_ms=soon", "is not a number of milliseconds"),
            ("kafka://h/t?group", "`group` needs a value"),
        ];
        for (url, expected) in cases {
            let err = KafkaTopicUrl::parse(url).expect_err(url).to_string();
            assert!(err.contains(expected), "{url}: {err}");
        }
    }

    fn delivery(token: Option<&str>) -> Delivery {
        Delivery {
            payload: Vec::new(),
            offset: 0,
            end: 0,
            key: "rows/0@0".into(),
            attempt: 1,
            token: token.map(str::to_string),
        }
    }

    #[test]
    fn commits_one_past_the_highest_offset_per_partition() {
        let batch = [delivery(Some("0:7")), delivery(Some("1:3")), delivery(Some("0:5")), delivery(Some("1:4"))];
        let offsets = commit_offsets(&batch).expect("offsets");
        assert_eq!(offsets.into_iter().collect::<Vec<_>>(), vec![(0, 8), (1, 5)]);
        let err = commit_offsets(&[delivery(None)]).expect_err("no token").to_string();
        assert!(err.contains("PARTITION:OFFSET"), "{err}");
        assert!(commit_offsets(&[delivery(Some("x:1"))]).is_err());
    }

    #[test]
    fn an_unreachable_cluster_fails_at_open_naming_it() {
        // A port nothing listens on: the metadata request times out.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        drop(listener);
        let url = KafkaTopicUrl::parse(&format!("kafka://127.0.0.1:{port}/rows?group=g&consumer=w1")).expect("parse");
        let started = Instant::now();
        let err = KafkaSource::open(&url).expect_err("no broker").to_string();
        assert!(err.contains(&format!("kafka://127.0.0.1:{port}/rows")), "{err}");
        assert!(err.contains("reaching the brokers"), "{err}");
        assert!(started.elapsed() < CONNECT_TIMEOUT * 3, "open waited {:?}", started.elapsed());
        let err = KafkaSink::open(&url, "w1").expect_err("no broker").to_string();
        assert!(err.contains("reaching the brokers"), "{err}");
    }
}

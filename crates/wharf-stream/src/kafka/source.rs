//! [`KafkaSource`]: a member of a consumer group, committing after the sink wrote.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, DefaultConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use wharf_core::{Result, WharfError};

use crate::broker::group_and_consumer;
use crate::sink::StreamSink;
use crate::source::{BrokerStats, Delivery, Polled, StreamSource};

use super::link::{backend, check_topic};
use super::sink::KafkaSink;
use super::url::KafkaTopicUrl;

/// A consumer in a Kafka consumer group, as a [`StreamSource`] (see the [module docs](super)).
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
            // A member learns of a rebalance from a heartbeat's answer, so this bounds how long
            // a joining or leaving worker waits for the others to rejoin.
            .set("heartbeat.interval.ms", url.heartbeat().as_millis().to_string())
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
pub(super) fn token(partition: i32, offset: i64) -> String {
    format!("{partition}:{offset}")
}

/// The offsets to commit for `deliveries`: per partition, one past the highest offset
/// delivered (Kafka's committed offset is the next message to read).
pub(super) fn commit_offsets(deliveries: &[Delivery]) -> Result<BTreeMap<i32, i64>> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}

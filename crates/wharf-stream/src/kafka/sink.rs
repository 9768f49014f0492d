//! [`KafkaSink`]: an idempotent producer keyed by the input record.

use std::sync::Mutex;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientContext;
use wharf_core::{Result, WharfError};

use crate::broker::{lines, result_key};
use crate::sink::StreamSink;

use super::link::{backend, check_topic};
use super::url::KafkaTopicUrl;
use super::{ADAPTER, FLUSH_TIMEOUT};

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
/// record's `key` (see the [module docs](super)).
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
    pub(super) fn connect(url: &KafkaTopicUrl, worker: String) -> Result<KafkaSink> {
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

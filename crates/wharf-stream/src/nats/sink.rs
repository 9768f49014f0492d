//! [`NatsSink`]: results published with `Nats-Msg-Id`, then their inputs acknowledged.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::message::PublishMessage as Publish;
use wharf_core::{Result, WharfError};

use crate::broker::{lines, result_key, tokens};
use crate::sink::StreamSink;
use crate::source::{BrokerStats, Delivery};

use super::link::Link;
use super::url::NatsStreamUrl;

/// The source a [`NatsSink`] acknowledges for, from [`NatsSource::acknowledgement`](super::NatsSource::acknowledgement): its
/// connection (acknowledgements go where the deliveries came from) and its counters.
#[derive(Clone)]
pub struct NatsAck {
    pub(super) link: Arc<Link>,
    pub(super) stream: String,
    pub(super) group: String,
    pub(super) ack_wait: Duration,
    pub(super) stats: Arc<BrokerStats>,
}

impl std::fmt::Debug for NatsAck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsAck").field("stream", &self.stream).field("group", &self.group).finish()
    }
}

/// A JetStream stream as a [`StreamSink`]: each result is one message on the stream's
/// subject, its payload the result (one JSON object), with the headers `Nats-Msg-Id` and
/// `Wharf-Key` (the input record's idempotency key), `Wharf-Worker` (the worker that scored
/// it) and, when paired with its source, `Wharf-Attempt`.
pub struct NatsSink {
    url: NatsStreamUrl,
    link: Link,
    worker: String,
    duplicate_window: Duration,
    ack: Option<NatsAck>,
    len: u64,
}

impl std::fmt::Debug for NatsSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsSink")
            .field("url", &self.url)
            .field("duplicate_window", &self.duplicate_window)
            .field("paired", &self.ack.is_some())
            .finish()
    }
}

impl NatsSink {
    /// Publishes to the stream named in `url`, creating it (with the URL's duplicate
    /// window) if missing; `worker` is written into every result. The connection is made
    /// now, so a wrong server fails before any record is read.
    pub fn open(url: &NatsStreamUrl, worker: impl Into<String>) -> Result<NatsSink> {
        let worker = worker.into();
        let link = Link::open(url, &format!("sink-{worker}"))?;
        let info = link.ensure_stream(&url.stream, &url.subject, url.duplicate_window)?;
        Ok(NatsSink {
            url: url.clone(),
            link,
            worker,
            duplicate_window: info.config.duplicate_window,
            ack: None,
            len: 0,
        })
    }

    /// The output stream's de-duplication window.
    pub fn duplicate_window(&self) -> Duration {
        self.duplicate_window
    }

    /// Publishes results, then acknowledges the source's deliveries (see the
    /// [module docs](super)). Refused when the output's duplicate window is not longer than
    /// the source's `ack_wait`: a redelivered record's second result could then come after
    /// the window and be stored twice.
    pub fn acknowledging(mut self, ack: NatsAck) -> Result<NatsSink> {
        if self.duplicate_window <= ack.ack_wait {
            return Err(WharfError::invalid(
                self.url.name(),
                format!(
                    "the duplicate window ({} ms) must be longer than the source's ack_wait ({} ms), or a \
                     redelivered record's result could be stored twice",
                    self.duplicate_window.as_millis(),
                    ack.ack_wait.as_millis()
                ),
            ));
        }
        self.ack = Some(ack);
        Ok(self)
    }

    /// One result message.
    fn message(&self, key: &str, line: &[u8], attempt: Option<u32>) -> (String, Publish) {
        let mut message = Publish::build()
            .payload(line.to_vec().into())
            .message_id(key)
            .header("Wharf-Key", key)
            .header("Wharf-Worker", self.worker.as_str());
        if let Some(attempt) = attempt {
            message = message.header("Wharf-Attempt", attempt.to_string().as_str());
        }
        (self.url.subject.clone(), message)
    }
}

impl StreamSink for NatsSink {
    fn name(&self) -> String {
        self.url.name()
    }

    fn recover(&mut self, committed: u64) -> Result<()> {
        // Nothing to cut back: a result published twice is stored once.
        self.len = committed;
        Ok(())
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        let messages: Vec<(String, Publish)> = lines(bytes)
            .map(|line| {
                let key = result_key(line).ok_or_else(|| {
                    WharfError::invalid(self.url.name(), "a result line has no `key` to de-duplicate it by")
                })?;
                Ok(self.message(&key, line, None))
            })
            .collect::<Result<_>>()?;
        if !messages.is_empty() {
            self.link.publish_all("publishing results", &messages)?;
        }
        self.len += bytes.len() as u64;
        Ok(())
    }

    fn len(&self) -> u64 {
        self.len
    }

    fn exactly_once(&self) -> bool {
        // Exactly once within the duplicate window; see the module docs.
        self.ack.is_some()
    }

    fn write_acked(&mut self, bytes: &[u8], deliveries: &[Delivery]) -> Result<bool> {
        let Some(ack) = self.ack.clone() else {
            self.write(bytes)?;
            return Ok(false);
        };
        let attempts: HashMap<&str, u32> = deliveries.iter().map(|d| (d.key.as_str(), d.attempt)).collect();
        let mut messages = Vec::new();
        for line in lines(bytes) {
            let key = result_key(line).ok_or_else(|| {
                WharfError::invalid(self.url.name(), "a result line has no `key`; cannot match it to its input message")
            })?;
            let attempt = attempts.get(key.as_str()).copied();
            messages.push(self.message(&key, line, attempt));
        }
        let tokens = tokens(deliveries, &format!("{} consumer {}", ack.stream, ack.group), "JetStream reply subject")?;
        let duplicates =
            if messages.is_empty() { 0 } else { self.link.publish_all("publishing results", &messages)? };
        // Only once every result is stored: a crash before this line redelivers the inputs,
        // and their results are then dropped as duplicates.
        ack.link.acknowledge("acknowledging messages", &tokens, "+ACK")?;
        ack.stats.add_duplicates(duplicates);
        self.len += bytes.len() as u64;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_lines_are_matched_by_key() {
        assert_eq!(result_key(br#"{"id":1,"prediction":"a","key":"rows@7"}"#), Some("rows@7".into()));
        assert_eq!(result_key(b"not json"), None);
        assert_eq!(lines(b"a\n\nb\n").count(), 2);
    }
}

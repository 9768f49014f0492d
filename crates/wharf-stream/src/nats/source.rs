//! [`NatsSource`]: a worker pulling from a durable consumer, with dead letters.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy, PullConsumer};
use async_nats::jetstream::message::PublishMessage as Publish;
use async_nats::jetstream::{self, ErrorCode};
use futures_util::StreamExt;
use wharf_core::{Result, WharfError};

use crate::broker::{group_and_consumer, tokens};
use crate::source::{BrokerStats, Delivery, Polled, StreamSource};

use super::link::{Failure, Link};
use super::sink::NatsAck;
use super::url::NatsStreamUrl;
use super::{ADAPTER, DEFAULT_ACK_WAIT, FETCH_GRACE, MAX_ACK_PENDING};

/// A worker pulling from a durable JetStream consumer, as a [`StreamSource`].
///
/// Each [`poll`](StreamSource::poll) fetches up to `max` messages, waiting at most `wait`
/// for the first; redeliveries (a dead or slow worker's messages, after `ack_wait`) come
/// through the same fetch with their delivery count. Positions mean nothing to a broker:
/// the acknowledgement is the checkpoint, so [`seek`](StreamSource::seek) does nothing.
pub struct NatsSource {
    url: NatsStreamUrl,
    group: String,
    consumer_name: String,
    link: Arc<Link>,
    consumer: PullConsumer,
    ack_wait: Duration,
    dead_letter_ready: bool,
    stats: Arc<BrokerStats>,
}

impl std::fmt::Debug for NatsSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsSource").field("url", &self.url).field("ack_wait", &self.ack_wait).finish()
    }
}

impl NatsSource {
    /// Binds to the durable consumer named by `group`, creating the stream and the consumer
    /// (at the start of the stream) if needed.
    pub fn open(url: &NatsStreamUrl) -> Result<NatsSource> {
        let (group, consumer_name) = group_and_consumer(
            &url.name(),
            "NATS",
            "nats://HOST:PORT/STREAM?group=G&consumer=C",
            &url.group,
            &url.consumer,
        )?;
        let link = Link::open(url, &format!("source-{consumer_name}"))?;
        link.ensure_stream(&url.stream, &url.subject, None)?;
        let config = pull::Config {
            durable_name: Some(group.clone()),
            deliver_policy: DeliverPolicy::All,
            ack_policy: AckPolicy::Explicit,
            ack_wait: url.ack_wait.unwrap_or(DEFAULT_ACK_WAIT),
            // No limit: the adapter dead-letters after max_attempts itself (see the module docs).
            max_deliver: -1,
            max_ack_pending: MAX_ACK_PENDING,
            ..Default::default()
        };
        let consumer = link.run(&format!("joining the consumer {group}"), || {
            let (js, config, stream, group) = (link.js.clone(), config.clone(), url.stream.clone(), group.clone());
            async move {
                match js.get_consumer_from_stream::<pull::Config, _, _>(&group, &stream).await {
                    Ok(consumer) => return Ok(consumer),
                    Err(e) => match e.kind() {
                        jetstream::stream::ConsumerErrorKind::JetStream(api)
                            if api.error_code() == ErrorCode::CONSUMER_NOT_FOUND => {}
                        jetstream::stream::ConsumerErrorKind::JetStream(api) => return Err(Failure::api(api)),
                        jetstream::stream::ConsumerErrorKind::TimedOut
                        | jetstream::stream::ConsumerErrorKind::Request => return Err(Failure::transient(e)),
                        _ => return Err(Failure::permanent(e)),
                    },
                }
                match js.create_consumer_on_stream(config, &stream).await {
                    Ok(consumer) => Ok(consumer),
                    Err(e) => match e.kind() {
                        // Another worker created it first with other settings: retrying
                        // finds and uses it.
                        jetstream::stream::ConsumerErrorKind::JetStream(api)
                            if api.error_code() == ErrorCode::CONSUMER_ALREADY_EXISTS
                                || api.error_code() == ErrorCode::CONSUMER_NAME_EXIST =>
                        {
                            Err(Failure::transient(e))
                        }
                        jetstream::stream::ConsumerErrorKind::JetStream(api) => Err(Failure::api(api)),
                        jetstream::stream::ConsumerErrorKind::TimedOut
                        | jetstream::stream::ConsumerErrorKind::Request => Err(Failure::transient(e)),
                        _ => Err(Failure::permanent(e)),
                    },
                }
            }
        })?;
        let info = consumer.cached_info();
        let ack_wait = info.config.ack_wait;
        if info.config.ack_policy != AckPolicy::Explicit {
            return Err(WharfError::invalid(
                format!("{} (group)", url.name()),
                format!("the consumer {group} exists without explicit acknowledgements; use another group name"),
            ));
        }
        if let Some(wanted) = url.ack_wait.filter(|w| *w != ack_wait) {
            return Err(WharfError::invalid(
                format!("{} (ack_wait_ms)", url.name()),
                format!(
                    "the consumer {group} exists with ack_wait {} ms, not {} ms; it is the consumer's setting, \
                     shared by every worker: use the same value or leave it out",
                    ack_wait.as_millis(),
                    wanted.as_millis()
                ),
            ));
        }
        Ok(NatsSource {
            url: url.clone(),
            group,
            consumer_name,
            link: Arc::new(link),
            consumer,
            ack_wait,
            dead_letter_ready: false,
            stats: Arc::new(BrokerStats::default()),
        })
    }

    /// Counts of redelivered, dead-lettered and de-duplicated records, readable while and
    /// after the job runs.
    pub fn stats(&self) -> Arc<BrokerStats> {
        self.stats.clone()
    }

    /// The consumer's `ack_wait` (its own setting when it already existed).
    pub fn ack_wait(&self) -> Duration {
        self.ack_wait
    }

    /// What a [`NatsSink`](super::NatsSink) needs to acknowledge this source's deliveries once their results
    /// are published.
    pub fn acknowledgement(&self) -> NatsAck {
        NatsAck {
            link: self.link.clone(),
            stream: self.url.stream.clone(),
            group: self.group.clone(),
            ack_wait: self.ack_wait,
            stats: self.stats.clone(),
        }
    }

    fn where_(&self) -> String {
        format!("{} consumer {} worker {}", self.url.name(), self.group, self.consumer_name)
    }

    /// Up to `max` messages, waiting at most about `wait` for the first. With an expiry and
    /// no-wait, the server answers as soon as it has at least one message.
    fn fetch(&self, max: usize, wait: Duration) -> Result<Vec<jetstream::Message>> {
        self.link.run("fetching messages", || {
            let consumer = self.consumer.clone();
            async move {
                let mut request = consumer.fetch().max_messages(max);
                if wait >= Duration::from_millis(10) {
                    request = request.expires(wait);
                }
                let mut batch = request.messages().await.map_err(Failure::transient)?;
                // The server ends a pull request with a status once it expires, but a 2.9
                // server may reap an expired request only on its next event, and the client
                // then waits seconds for it. The request is over at `wait` either way (a
                // message that still reached it would be delivered again after ack_wait).
                let deadline = tokio::time::Instant::now() + wait + FETCH_GRACE;
                let mut messages = Vec::new();
                loop {
                    match tokio::time::timeout_at(deadline, batch.next()).await {
                        Ok(Some(Ok(message))) => messages.push(message),
                        Ok(Some(Err(e))) if messages.is_empty() => return Err(Failure::transient(e)),
                        // A status after some messages (the request ended early): keep them.
                        Ok(Some(Err(_))) | Ok(None) | Err(_) => break,
                    }
                }
                Ok(messages)
            }
        })
    }

    /// Turns messages into deliveries; empty ones, or ones delivered too often, go to the
    /// dead-letter stream instead.
    fn deliver(&mut self, messages: Vec<jetstream::Message>) -> Result<Vec<Delivery>> {
        let mut out = Vec::with_capacity(messages.len());
        let mut dead: Vec<DeadLetter> = Vec::new();
        for message in messages {
            let Some(token) = message.reply.as_ref().map(|r| r.to_string()) else {
                continue; // Not a JetStream delivery; nothing to acknowledge.
            };
            let (sequence, delivered) = match message.info() {
                Ok(info) => (info.stream_sequence, info.delivered),
                Err(e) => {
                    return Err(WharfError::backend(
                        ADAPTER,
                        format!("{}: a delivery's reply subject is not understood: {token}", self.where_()),
                        Some(e),
                    ))
                }
            };
            let attempt = u32::try_from(delivered.max(1)).unwrap_or(u32::MAX);
            let key = format!("{}@{sequence}", self.url.stream);
            let payload = message.payload.to_vec();
            if payload.iter().all(u8::is_ascii_whitespace) {
                dead.push(DeadLetter { token, key, sequence, payload, attempt, reason: "the message is empty".into() });
            } else if attempt > self.url.max_attempts {
                let reason = format!(
                    "delivered {attempt} times (max_attempts {}) without being acknowledged",
                    self.url.max_attempts
                );
                dead.push(DeadLetter { token, key, sequence, payload, attempt, reason });
            } else {
                out.push(Delivery { key, payload, offset: sequence, end: sequence, attempt, token: Some(token) });
            }
        }
        self.stats.add_reclaimed(out.iter().filter(|d| d.attempt > 1).count() as u64);
        self.dead_letter(dead)?;
        Ok(out)
    }

    /// Publishes dead letters (de-duplicated by key), then terminates their deliveries.
    fn dead_letter(&mut self, dead: Vec<DeadLetter>) -> Result<()> {
        if dead.is_empty() {
            return Ok(());
        }
        if !self.dead_letter_ready {
            self.link.ensure_stream(&self.url.dead_letter, &self.url.dead_letter, None)?;
            self.dead_letter_ready = true;
        }
        let messages: Vec<(String, Publish)> = dead
            .iter()
            .map(|d| {
                let message = Publish::build()
                    .payload(d.payload.clone().into())
                    .message_id(&d.key)
                    .header("Wharf-Stream", self.url.stream.as_str())
                    .header("Wharf-Sequence", d.sequence.to_string().as_str())
                    .header("Wharf-Attempts", d.attempt.to_string().as_str())
                    .header("Wharf-Consumer", self.consumer_name.as_str())
                    .header("Wharf-Reason", d.reason.as_str());
                (self.url.dead_letter.clone(), message)
            })
            .collect();
        self.link.publish_all("dead-lettering messages", &messages)?;
        let tokens: Vec<String> = dead.into_iter().map(|d| d.token).collect();
        self.link.acknowledge("terminating dead-lettered messages", &tokens, "+TERM")?;
        self.stats.add_dead_lettered(tokens.len() as u64);
        Ok(())
    }
}

/// A message on its way to the dead-letter stream.
struct DeadLetter {
    token: String,
    key: String,
    sequence: u64,
    payload: Vec<u8>,
    attempt: u32,
    reason: String,
}

impl StreamSource for NatsSource {
    fn name(&self) -> String {
        self.url.name()
    }

    fn seek(&mut self, _position: u64) -> Result<()> {
        Ok(())
    }

    fn poll(&mut self, max: usize, wait: Duration) -> Result<Polled> {
        let started = Instant::now();
        loop {
            let messages = self.fetch(max.max(1), wait.saturating_sub(started.elapsed()))?;
            if messages.is_empty() {
                return Ok(Polled::Idle);
            }
            let records = self.deliver(messages)?;
            if !records.is_empty() {
                return Ok(Polled::Records(records));
            }
            // Everything fetched went to the dead-letter stream: look again within `wait`.
            if started.elapsed() >= wait {
                return Ok(Polled::Idle);
            }
        }
    }

    fn commit(&mut self, deliveries: &[Delivery]) -> Result<()> {
        let tokens = tokens(deliveries, &self.where_(), "JetStream reply subject")?;
        self.link.acknowledge("acknowledging messages", &tokens, "+ACK")
    }
}

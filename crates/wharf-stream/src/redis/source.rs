//! [`RedisSource`]: a consumer in a consumer group, with reclaiming and dead letters.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::streams::{StreamAutoClaimOptions, StreamId, StreamPendingCountReply, StreamReadOptions, StreamReadReply};
use redis::{Commands, Value};
use wharf_core::Result;

use crate::broker::{group_and_consumer, tokens};
use crate::source::{BrokerStats, Delivery, Polled, StreamSource};

use super::link::Link;
use super::sink::RedisAck;
use super::url::RedisStreamUrl;

/// A consumer in a Redis consumer group, as a [`StreamSource`].
///
/// Each [`poll`](StreamSource::poll) first hands out this consumer's own pending entries
/// (left by an earlier process with the same consumer name), then, at most every half
/// `min_idle`, entries of any consumer that have been pending longer than `min_idle`
/// (`XAUTOCLAIM`), then new entries (`XREADGROUP … >`). Positions mean nothing to a broker:
/// the acknowledgement is the checkpoint, so [`seek`](StreamSource::seek) does nothing.
pub struct RedisSource {
    url: RedisStreamUrl,
    group: String,
    consumer: String,
    link: Link,
    /// Where reading back this consumer's own pending entries continues (`None` once
    /// they are all handed out): each read returns entries after this id, so none is
    /// handed out twice.
    own_cursor: Option<String>,
    /// The `XAUTOCLAIM` cursor.
    cursor: String,
    last_reclaim: Option<Instant>,
    stats: Arc<BrokerStats>,
}

impl std::fmt::Debug for RedisSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSource").field("url", &self.url).finish()
    }
}

impl RedisSource {
    /// Joins the group named in `url` as its consumer, creating the group (at the start of
    /// the stream) if needed.
    pub fn open(url: &RedisStreamUrl) -> Result<RedisSource> {
        let (group, consumer) = group_and_consumer(
            &url.name(),
            "Redis",
            "redis://HOST:PORT/STREAM?group=G&consumer=C",
            &url.group,
            &url.consumer,
        )?;
        let mut link = Link::open(url)?;
        link.on_connect = Some((url.stream.clone(), group.clone()));
        link.run("joining the consumer group", |_| Ok(()))?;
        Ok(RedisSource {
            url: url.clone(),
            group,
            consumer,
            link,
            own_cursor: Some("0".into()),
            cursor: "0-0".into(),
            last_reclaim: None,
            stats: Arc::new(BrokerStats::default()),
        })
    }

    /// Counts of reclaimed, dead-lettered and de-duplicated records, readable while and
    /// after the job runs.
    pub fn stats(&self) -> Arc<BrokerStats> {
        self.stats.clone()
    }

    /// What a [`RedisSink`](super::RedisSink) needs to acknowledge this source's entries atomically with its
    /// writes.
    pub fn acknowledgement(&self) -> RedisAck {
        RedisAck {
            host: self.url.host.clone(),
            db: self.url.db,
            stream: self.url.stream.clone(),
            group: self.group.clone(),
            stats: self.stats.clone(),
        }
    }

    fn where_(&self) -> String {
        format!("{} group {} consumer {}", self.url.name(), self.group, self.consumer)
    }

    /// This consumer's own pending entries after `after`.
    fn read_own(&mut self, after: &str, max: usize) -> Result<Vec<StreamId>> {
        let options = StreamReadOptions::default().group(&self.group, &self.consumer).count(max);
        let stream = self.url.stream.clone();
        let reply: Option<StreamReadReply> = self
            .link
            .run("reading this consumer's pending entries", |c| c.xread_options(&[&stream], &[after], &options))?;
        Ok(entries(reply))
    }

    fn read_new(&mut self, max: usize, wait: Duration) -> Result<Vec<StreamId>> {
        // BLOCK 0 would wait forever.
        let block = usize::try_from(wait.as_millis()).unwrap_or(usize::MAX).max(1);
        let options = StreamReadOptions::default().group(&self.group, &self.consumer).count(max).block(block);
        let stream = self.url.stream.clone();
        let reply: Option<StreamReadReply> =
            self.link.run("reading new entries", |c| c.xread_options(&[&stream], &[">"], &options))?;
        Ok(entries(reply))
    }

    /// Entries of any consumer pending longer than `min_idle`, now this consumer's.
    fn reclaim(&mut self, max: usize) -> Result<Vec<StreamId>> {
        let min_idle = u64::try_from(self.url.min_idle.as_millis()).unwrap_or(u64::MAX);
        let (stream, group, consumer, cursor) =
            (self.url.stream.clone(), self.group.clone(), self.consumer.clone(), self.cursor.clone());
        let reply: redis::streams::StreamAutoClaimReply = self.link.run("reclaiming idle entries", |c| {
            c.xautoclaim_options(
                &stream,
                &group,
                &consumer,
                min_idle,
                &cursor,
                StreamAutoClaimOptions::default().count(max),
            )
        })?;
        self.cursor = reply.next_stream_id;
        Ok(reply.claimed)
    }

    /// How many times each entry (now this consumer's) has been delivered.
    fn attempts(&mut self, ids: &[String]) -> Result<HashMap<String, u32>> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let (stream, group, consumer) = (self.url.stream.clone(), self.group.clone(), self.consumer.clone());
        let replies: Vec<StreamPendingCountReply> = self.link.run("reading delivery counts", |c| {
            let mut pipe = redis::pipe();
            for id in ids {
                pipe.xpending_consumer_count(&stream, &group, id, id, 1, &consumer);
            }
            pipe.query(c)
        })?;
        Ok(replies
            .into_iter()
            .flat_map(|r| r.ids)
            .map(|p| (p.id, u32::try_from(p.times_delivered).unwrap_or(u32::MAX)))
            .collect())
    }

    /// Turns entries into deliveries; entries without a record, or delivered too often, go
    /// to the dead-letter stream instead.
    fn deliver(&mut self, entries: Vec<StreamId>, redelivered: bool) -> Result<Vec<Delivery>> {
        let attempts = if redelivered {
            self.attempts(&entries.iter().map(|e| e.id.clone()).collect::<Vec<_>>())?
        } else {
            HashMap::new()
        };
        let mut out = Vec::with_capacity(entries.len());
        let mut dead: Vec<(String, Vec<u8>, u32, String)> = Vec::new();
        for entry in entries {
            let attempt = attempts.get(&entry.id).copied().unwrap_or(1).max(1);
            let record = match entry.map.get("record") {
                Some(Value::BulkString(bytes)) => Some(bytes.clone()),
                Some(Value::SimpleString(text)) => Some(text.clone().into_bytes()),
                _ => None,
            };
            match record {
                None if entry.map.is_empty() => {
                    // Deleted from the stream (XDEL, trimming) while pending: nothing to score.
                    dead.push((entry.id, Vec::new(), attempt, "the entry was deleted while pending".into()));
                }
                None => dead.push((entry.id, Vec::new(), attempt, "the entry has no `record` field".into())),
                Some(payload) if attempt > self.url.max_attempts => dead.push((
                    entry.id,
                    payload,
                    attempt,
                    format!(
                        "delivered {attempt} times (max_attempts {}) without being acknowledged",
                        self.url.max_attempts
                    ),
                )),
                Some(payload) => out.push(Delivery {
                    key: format!("{}@{}", self.url.stream, entry.id),
                    payload,
                    offset: 0,
                    end: 0,
                    attempt,
                    token: Some(entry.id),
                }),
            }
        }
        if redelivered {
            self.stats.add_reclaimed(out.len() as u64);
        }
        self.dead_letter(&dead)?;
        Ok(out)
    }

    /// Moves entries to the dead-letter stream and acknowledges them, in one transaction.
    fn dead_letter(&mut self, dead: &[(String, Vec<u8>, u32, String)]) -> Result<()> {
        if dead.is_empty() {
            return Ok(());
        }
        let (stream, group, consumer, target) =
            (self.url.stream.clone(), self.group.clone(), self.consumer.clone(), self.url.dead_letter.clone());
        self.link.run("dead-lettering entries", |c| {
            let mut pipe = redis::pipe();
            pipe.atomic();
            for (id, record, attempts, reason) in dead {
                pipe.cmd("XADD")
                    .arg(&target)
                    .arg("*")
                    .arg("stream")
                    .arg(&stream)
                    .arg("id")
                    .arg(id)
                    .arg("record")
                    .arg(record.as_slice())
                    .arg("attempts")
                    .arg(*attempts)
                    .arg("consumer")
                    .arg(&consumer)
                    .arg("reason")
                    .arg(reason)
                    .ignore();
                pipe.xack(&stream, &group, &[id]).ignore();
            }
            pipe.query::<()>(c)
        })?;
        self.stats.add_dead_lettered(dead.len() as u64);
        Ok(())
    }
}

fn entries(reply: Option<StreamReadReply>) -> Vec<StreamId> {
    reply.map(|r| r.keys.into_iter().flat_map(|k| k.ids).collect()).unwrap_or_default()
}

impl StreamSource for RedisSource {
    fn name(&self) -> String {
        self.url.name()
    }

    fn seek(&mut self, _position: u64) -> Result<()> {
        Ok(())
    }

    fn poll(&mut self, max: usize, wait: Duration) -> Result<Polled> {
        let max = max.max(1);
        while let Some(after) = self.own_cursor.clone() {
            let own = self.read_own(&after, max)?;
            self.own_cursor = own.last().map(|e| e.id.clone());
            if own.is_empty() {
                break;
            }
            // Entries left by an earlier life of this consumer: all of them are redeliveries.
            let records = self.deliver(own, true)?;
            if !records.is_empty() {
                return Ok(Polled::Records(records));
            }
        }
        if self.last_reclaim.is_none_or(|t| t.elapsed() >= self.url.min_idle / 2) {
            self.last_reclaim = Some(Instant::now());
            let claimed = self.reclaim(max)?;
            if !claimed.is_empty() {
                let records = self.deliver(claimed, true)?;
                if !records.is_empty() {
                    return Ok(Polled::Records(records));
                }
            }
        }
        let fresh = self.read_new(max, wait)?;
        let records = self.deliver(fresh, false)?;
        Ok(if records.is_empty() { Polled::Idle } else { Polled::Records(records) })
    }

    fn commit(&mut self, deliveries: &[Delivery]) -> Result<()> {
        let ids = tokens(deliveries, &self.where_(), "Redis entry id")?;
        if ids.is_empty() {
            return Ok(());
        }
        let (stream, group) = (self.url.stream.clone(), self.group.clone());
        self.link.run("acknowledging entries", |c| c.xack::<_, _, _, usize>(&stream, &group, &ids))?;
        Ok(())
    }
}

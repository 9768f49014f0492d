//! [`RedisSink`]: results appended to a stream, acknowledged with their inputs in one script.

use std::collections::HashMap;
use std::sync::Arc;

use wharf_core::{Result, WharfError};

use crate::broker::{lines, result_key, tokens};
use crate::sink::StreamSink;
use crate::source::{BrokerStats, Delivery};

use super::link::Link;
use super::url::RedisStreamUrl;

/// The consumer group a [`RedisSink`] acknowledges, from [`RedisSource::acknowledgement`](super::RedisSource::acknowledgement).
#[derive(Debug, Clone)]
pub struct RedisAck {
    pub(super) host: String,
    pub(super) db: i64,
    pub(super) stream: String,
    pub(super) group: String,
    pub(super) stats: Arc<BrokerStats>,
}

/// The commit: for each input entry, acknowledge it and, only if that acknowledged it (no
/// other consumer committed it first) and it has a result, append the result. Run by
/// `EVAL`, so the whole batch is atomic, and idempotent, so it can be retried after a lost
/// connection.
const COMMIT_SCRIPT: &str = r#"
local group, worker, n = ARGV[1], ARGV[2], tonumber(ARGV[3])
local written, duplicates = 0, 0
for i = 0, n - 1 do
  local base = 4 + i * 4
  if redis.call('XACK', KEYS[1], group, ARGV[base]) == 1 then
    if ARGV[base + 2] ~= '' then
      redis.call('XADD', KEYS[2], '*', 'key', ARGV[base + 1], 'record', ARGV[base + 2], 'worker', worker, 'attempt', ARGV[base + 3])
      written = written + 1
    end
  else
    duplicates = duplicates + 1
  end
end
return {written, duplicates}
"#;

/// A Redis stream as a [`StreamSink`]: each result is one entry with the fields `key` (the
/// input record's idempotency key), `record` (the result, one JSON object), `worker` (the
/// consumer that scored it) and, when paired with its source, `attempt`.
pub struct RedisSink {
    url: RedisStreamUrl,
    link: Link,
    worker: String,
    ack: Option<RedisAck>,
    len: u64,
}

impl std::fmt::Debug for RedisSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSink").field("url", &self.url).field("paired", &self.ack.is_some()).finish()
    }
}

impl RedisSink {
    /// Appends to the stream named in `url`; `worker` is written into every entry. The
    /// connection is checked now, so a wrong server fails before any record is read.
    pub fn open(url: &RedisStreamUrl, worker: impl Into<String>) -> Result<RedisSink> {
        let mut link = Link::open(url)?;
        link.run("connecting", |c| redis::cmd("PING").query::<()>(c))?;
        Ok(RedisSink { url: url.clone(), link, worker: worker.into(), ack: None, len: 0 })
    }

    /// Writes results and acknowledges the source's entries in one atomic step (see the
    /// [module docs](super)). The source must be on the same server and database.
    pub fn acknowledging(mut self, ack: RedisAck) -> Result<RedisSink> {
        if ack.host != self.url.host || ack.db != self.url.db {
            return Err(WharfError::invalid(
                self.url.name(),
                format!(
                    "cannot acknowledge entries of redis://{}/{} atomically from another server or database",
                    ack.host, ack.stream
                ),
            ));
        }
        self.ack = Some(ack);
        Ok(self)
    }
}

impl StreamSink for RedisSink {
    fn name(&self) -> String {
        self.url.name()
    }

    fn recover(&mut self, committed: u64) -> Result<()> {
        // Nothing to cut back: paired with its source, a result exists only with its
        // acknowledgement.
        self.len = committed;
        Ok(())
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        let lines: Vec<&[u8]> = lines(bytes).collect();
        if lines.is_empty() {
            return Ok(());
        }
        let (stream, worker) = (self.url.stream.clone(), self.worker.clone());
        self.link.run("writing results", |c| {
            let mut pipe = redis::pipe();
            pipe.atomic();
            for line in &lines {
                let key = result_key(line).unwrap_or_default();
                pipe.xadd(&stream, "*", &[("key", key.as_bytes()), ("record", line), ("worker", worker.as_bytes())])
                    .ignore();
            }
            pipe.query::<()>(c)
        })?;
        self.len += bytes.len() as u64;
        Ok(())
    }

    fn len(&self) -> u64 {
        self.len
    }

    fn exactly_once(&self) -> bool {
        self.ack.is_some()
    }

    fn write_acked(&mut self, bytes: &[u8], deliveries: &[Delivery]) -> Result<bool> {
        let Some(ack) = self.ack.clone() else {
            self.write(bytes)?;
            return Ok(false);
        };
        let mut results: HashMap<String, &[u8]> = HashMap::new();
        for line in lines(bytes) {
            let key = result_key(line).ok_or_else(|| {
                WharfError::invalid(self.url.name(), "a result line has no `key`; cannot match it to its input entry")
            })?;
            results.insert(key, line);
        }
        let ids = tokens(deliveries, &format!("{} group {}", ack.stream, ack.group), "Redis entry id")?;
        let mut script = redis::cmd("EVAL");
        script.arg(COMMIT_SCRIPT).arg(2).arg(&ack.stream).arg(&self.url.stream);
        script.arg(&ack.group).arg(&self.worker).arg(deliveries.len());
        for (delivery, id) in deliveries.iter().zip(&ids) {
            let record: &[u8] = results.get(&delivery.key).copied().unwrap_or(b"");
            script.arg(id).arg(&delivery.key).arg(record).arg(delivery.attempt);
        }
        let (written, duplicates): (u64, u64) = self.link.run("committing results", |c| script.query(c))?;
        ack.stats.add_duplicates(duplicates);
        let _ = written;
        self.len += bytes.len() as u64;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_lines_are_matched_by_key() {
        assert_eq!(result_key(br#"{"id":1,"prediction":"a","key":"rows@1-0"}"#), Some("rows@1-0".into()));
        assert_eq!(result_key(b"not json"), None);
    }
}

//! Redis Streams: a consumer group as a [`StreamSource`] and a stream as a [`StreamSink`]
//! (feature `redis`).
//!
//! Scale-out is Redis's own: every worker is a consumer in the same group, on any machine
//! that reaches the server, and Redis hands each entry to one of them. An entry stays in the
//! group's pending entries list until it is acknowledged, so a worker that dies loses
//! nothing: a live worker takes its pending entries over (`XAUTOCLAIM`) once they have been
//! idle for `min_idle_ms`.
//!
//! # The URL
//!
//! ```text
//! redis://[USER[:PASSWORD]@]HOST[:PORT]/STREAM[?group=G&consumer=C&db=N&min_idle_ms=MS&max_attempts=N&dead_letter=STREAM]
//! ```
//!
//! `group` and `consumer` are required for a source and ignored by a sink. A new group
//! starts at the beginning of the stream. Each input entry carries its record, one JSON
//! object, in the field `record` (`XADD in * record '{"id":1,…}'`).
//!
//! # Effectively once
//!
//! A [`RedisSink`] on the same server as its source (see [`RedisSink::acknowledging`])
//! writes each result and acknowledges its input entry in one server-side script, which
//! Redis runs atomically: after a crash either both happened or neither did, and the entry
//! is scored again by whoever reclaims it. The script writes a result only if its `XACK`
//! acknowledged something, so when a slow worker and the one that reclaimed its entry both
//! finish, only the first result is written. A sink on another server writes first and the
//! source acknowledges after (at least once; every result carries its input `key`).
//!
//! # Dead letters
//!
//! An entry delivered more than `max_attempts` times (it kept killing or stalling its
//! workers), or one without a `record` field, is moved to the dead-letter stream
//! (`<STREAM>:dead` unless `dead_letter` says otherwise) with the fields `stream`, `id`,
//! `record`, `attempts`, `consumer` and `reason`, and acknowledged, in one transaction.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::streams::{StreamAutoClaimOptions, StreamId, StreamPendingCountReply, StreamReadOptions, StreamReadReply};
use redis::{Commands, Connection, RedisResult, Value};
use wharf_core::{Result, WharfError};

use crate::broker::{group_and_consumer, lines, query_pairs, redact, result_key, tokens};
use crate::sink::StreamSink;
use crate::source::{BrokerStats, Delivery, Polled, StreamSource};

/// The adapter's name in errors.
const ADAPTER: &str = "redis";
/// The default for `min_idle_ms`: how long an entry stays unacknowledged before another
/// consumer may take it over. Longer than a micro-batch takes, or live workers steal from
/// each other (harmless, since commits are de-duplicated, but wasted work).
pub const DEFAULT_MIN_IDLE: Duration = Duration::from_millis(5000);
/// The default for `max_attempts`.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;
/// How long a lost connection is retried before the job fails: long enough for a broker
/// restart.
const RECONNECT_FOR: Duration = Duration::from_secs(30);

/// A parsed `redis://` stream URL (see the [module docs](self)).
#[derive(Clone, PartialEq, Eq)]
pub struct RedisStreamUrl {
    /// `host:port`, for names and for comparing servers.
    pub host: String,
    /// The database number.
    pub db: i64,
    /// The stream's key.
    pub stream: String,
    /// The consumer group (sources).
    pub group: Option<String>,
    /// This worker's consumer name (sources), unique within the group.
    pub consumer: Option<String>,
    /// How long an entry is pending before another consumer may reclaim it.
    pub min_idle: Duration,
    /// Deliveries after which an entry goes to the dead-letter stream.
    pub max_attempts: u32,
    /// The dead-letter stream.
    pub dead_letter: String,
    /// `redis://[user:password@]host:port/db`, as the client connects.
    connect: String,
}

impl std::fmt::Debug for RedisStreamUrl {
    // The connection string may hold a password: never print it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStreamUrl")
            .field("url", &self.name())
            .field("group", &self.group)
            .field("consumer", &self.consumer)
            .finish()
    }
}

impl RedisStreamUrl {
    /// Parses `url`; an error names the part that is wrong.
    pub fn parse(url: &str) -> Result<RedisStreamUrl> {
        let bad = |part: &str, message: String| WharfError::invalid(format!("{} ({part})", redact(url)), message);
        let rest = url
            .strip_prefix("redis://")
            .ok_or_else(|| bad("scheme", "a Redis stream URL starts with redis://".into()))?;
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority, stream) = rest.split_once('/').unwrap_or((rest, ""));
        if stream.is_empty() {
            return Err(bad("stream", "name the stream after the server: redis://HOST:PORT/STREAM".into()));
        }
        let (userinfo, host) = match authority.rsplit_once('@') {
            Some((user, host)) => (Some(user), host),
            None => (None, authority),
        };
        if host.is_empty() {
            return Err(bad("host", "the server is missing: redis://HOST:PORT/STREAM".into()));
        }
        let host = if host.contains(':') { host.to_string() } else { format!("{host}:6379") };
        let mut parsed = RedisStreamUrl {
            host,
            db: 0,
            stream: stream.to_string(),
            group: None,
            consumer: None,
            min_idle: DEFAULT_MIN_IDLE,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            dead_letter: format!("{stream}:dead"),
            connect: String::new(),
        };
        for (key, value) in query_pairs(query, bad)? {
            let number =
                |what: &str| value.parse::<u64>().map_err(|_| bad(key, format!("`{key}={value}` is not {what}")));
            match key {
                "group" => parsed.group = Some(value.to_string()),
                "consumer" => parsed.consumer = Some(value.to_string()),
                "db" => parsed.db = i64::try_from(number("a database number")?).unwrap_or(i64::MAX),
                "min_idle_ms" => parsed.min_idle = Duration::from_millis(number("a number of milliseconds")?.max(1)),
                "max_attempts" => {
                    parsed.max_attempts = u32::try_from(number("a count")?.max(1)).unwrap_or(u32::MAX);
                }
                "dead_letter" => parsed.dead_letter = value.to_string(),
                other => {
                    return Err(bad(
                        other,
                        format!(
                            "unknown parameter `{other}` (known: group, consumer, db, min_idle_ms, max_attempts, \
                             dead_letter)"
                        ),
                    ))
                }
            }
        }
        let auth = userinfo.map(|u| format!("{u}@")).unwrap_or_default();
        parsed.connect = format!("redis://{auth}{}/{}", parsed.host, parsed.db);
        Ok(parsed)
    }

    /// The stream's name without credentials: `redis://host:port/stream` (with `?db=N` when
    /// not 0), used in lineage and errors.
    pub fn name(&self) -> String {
        let db = if self.db == 0 { String::new() } else { format!("?db={}", self.db) };
        format!("redis://{}/{}{db}", self.host, self.stream)
    }
}

/// A connection that comes back after the server restarts: transient failures are retried
/// on a new connection for [`RECONNECT_FOR`]. Every command sent through it must therefore be
/// safe to repeat (reads, acknowledgements, and the de-duplicating commit script).
struct Link {
    client: redis::Client,
    con: Option<Connection>,
    name: String,
    /// Commands to run on every new connection (creating the consumer group).
    on_connect: Option<(String, String)>,
    /// Whether a connection ever succeeded: only then is a failure worth retrying (a
    /// wrong address at start-up fails at once).
    connected_once: bool,
}

impl Link {
    fn open(url: &RedisStreamUrl) -> Result<Link> {
        let client = redis::Client::open(url.connect.as_str())
            .map_err(|e| WharfError::backend(ADAPTER, format!("{}: bad connection URL", url.name()), Some(e.into())))?;
        Ok(Link { client, con: None, name: url.name(), on_connect: None, connected_once: false })
    }

    fn connect(&mut self) -> RedisResult<&mut Connection> {
        if self.con.is_none() {
            let con = self.client.get_connection_with_timeout(Duration::from_secs(5))?;
            // Longer than any BLOCK this adapter sends, so a silent server is noticed.
            con.set_read_timeout(Some(Duration::from_secs(10)))?;
            con.set_write_timeout(Some(Duration::from_secs(10)))?;
            self.con = Some(con);
            if let Some((stream, group)) = self.on_connect.clone() {
                if let Some(con) = self.con.as_mut() {
                    ensure_group(con, &stream, &group)?;
                }
            }
        }
        self.con.as_mut().ok_or_else(|| redis::RedisError::from((redis::ErrorKind::Io, "not connected")))
    }

    /// Runs `f`, reconnecting and retrying while the failure is transient.
    fn run<T>(&mut self, what: &str, mut f: impl FnMut(&mut Connection) -> RedisResult<T>) -> Result<T> {
        let started = Instant::now();
        let mut pause = Duration::from_millis(50);
        loop {
            let result = self.connect().and_then(&mut f);
            match result {
                Ok(value) => {
                    self.connected_once = true;
                    return Ok(value);
                }
                Err(e) if retry(&e, self.connected_once, started.elapsed()) => {
                    // A reply cut short leaves the connection mid-stream: start a new one.
                    self.con = None;
                    if !interrupted(&e) {
                        std::thread::sleep(pause);
                        pause = (pause * 2).min(Duration::from_secs(1));
                    }
                }
                Err(e) => {
                    self.con = None;
                    return Err(WharfError::backend(ADAPTER, format!("{}: {what} failed", self.name), Some(e.into())));
                }
            }
        }
    }
}

/// Whether [`Link::run`] tries again after `e`, `elapsed` into a command. A transient
/// failure is retried for [`RECONNECT_FOR`] once a connection has succeeded (before that, a
/// refused connection means a wrong address, reported at once). A system call interrupted
/// by a signal (EINTR; the job's SIGINT/SIGTERM handler, a profiler) says nothing about the
/// server, so it is retried even before the first connection.
fn retry(e: &redis::RedisError, connected_once: bool, elapsed: Duration) -> bool {
    elapsed < RECONNECT_FOR && (interrupted(e) || (connected_once && transient(e)))
}

/// The kind of the I/O error behind `e`, if any. The client keeps it as the source of its
/// error, behind an `Arc`.
fn io_kind(e: &redis::RedisError) -> Option<std::io::ErrorKind> {
    let source = std::error::Error::source(e)?;
    let inner: &(dyn std::error::Error + 'static) =
        match source.downcast_ref::<Arc<dyn std::error::Error + Send + Sync>>() {
            Some(shared) => &**shared,
            None => source,
        };
    inner.downcast_ref::<std::io::Error>().map(std::io::Error::kind)
}

/// A system call cut short by a signal (EINTR).
fn interrupted(e: &redis::RedisError) -> bool {
    io_kind(e) == Some(std::io::ErrorKind::Interrupted)
}

/// Failures a reconnect can cure: the connection broke or a call on it was interrupted, or
/// the server is restarting (`LOADING` while it replays its append-only file).
fn transient(e: &redis::RedisError) -> bool {
    interrupted(e)
        || e.is_io_error()
        || e.is_connection_refusal()
        || e.is_connection_dropped()
        || e.is_timeout()
        || matches!(e.code(), Some("LOADING" | "TRYAGAIN" | "MASTERDOWN"))
}

/// Creates the consumer group at the start of the stream (and the stream), unless it
/// exists.
fn ensure_group(con: &mut Connection, stream: &str, group: &str) -> RedisResult<()> {
    match con.xgroup_create_mkstream::<_, _, _, ()>(stream, group, "0") {
        Ok(()) => Ok(()),
        Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
        Err(e) => Err(e),
    }
}

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

    /// What a [`RedisSink`] needs to acknowledge this source's entries atomically with its
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

/// The consumer group a [`RedisSink`] acknowledges, from [`RedisSource::acknowledgement`].
#[derive(Debug, Clone)]
pub struct RedisAck {
    host: String,
    db: i64,
    stream: String,
    group: String,
    stats: Arc<BrokerStats>,
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
    /// [module docs](self)). The source must be on the same server and database.
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
    fn a_url_names_server_stream_and_group() {
        let url = RedisStreamUrl::parse(
            "redis://user:secret@10.0.0.5:7000/rows?group=scorers&consumer=w1&db=2&min_idle_ms=1500&max_attempts=3",
        )
        .expect("parse");
        assert_eq!(url.host, "10.0.0.5:7000");
        assert_eq!((url.stream.as_str(), url.db), ("rows", 2));
        assert_eq!((url.group.as_deref(), url.consumer.as_deref()), (Some("scorers"), Some("w1")));
        assert_eq!((url.min_idle, url.max_attempts), (Duration::from_millis(1500), 3));
        assert_eq!(url.dead_letter, "rows:dead");
        assert_eq!(url.name(), "redis://10.0.0.5:7000/rows?db=2");
        assert!(!format!("{url:?}").contains("secret"), "{url:?}");
        assert_eq!(RedisStreamUrl::parse("redis://localhost/out").expect("parse").host, "localhost:6379");
    }

    #[test]
    fn a_bad_url_names_the_bad_part_and_hides_the_password() {
        let cases = [
            ("http://h/s", "(scheme)"),
            ("redis://h:1", "(stream)"),
            ("redis:///s", "(host)"),
            ("redis://h/s?grup=g", "unknown parameter `grup`"),
            ("redis://h/s?max_attempts=many", "`max_attempts=many` is not a count"),
            ("redis://h/s?group", "`group` needs a value"),
        ];
        for (url, expected) in cases {
            let err = RedisStreamUrl::parse(url).expect_err(url).to_string();
            assert!(err.contains(expected), "{url}: {err}");
        }
        let err = RedisStreamUrl::parse("redis://u:pw@h/s?x=1").expect_err("unknown").to_string();
        assert!(!err.contains("pw"), "{err}");
    }

    #[test]
    fn an_interrupted_system_call_is_retried_even_before_the_first_connection() {
        let eintr = redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::Interrupted));
        assert_eq!(io_kind(&eintr), Some(std::io::ErrorKind::Interrupted));
        assert!(interrupted(&eintr) && transient(&eintr));
        assert!(retry(&eintr, false, Duration::ZERO), "EINTR at start-up is not a wrong address");
        assert!(retry(&eintr, true, Duration::from_secs(1)));
        assert!(!retry(&eintr, true, RECONNECT_FOR), "retries are bounded");

        let refused = redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(!interrupted(&refused) && transient(&refused));
        assert!(!retry(&refused, false, Duration::ZERO), "a refused first connection fails at once");
        assert!(retry(&refused, true, Duration::ZERO), "a refused reconnection is a restarting server");
        let typed = redis::RedisError::from((redis::ErrorKind::Client, "bad"));
        assert!(!retry(&typed, true, Duration::ZERO));
    }

    #[test]
    fn result_lines_are_matched_by_key() {
        assert_eq!(result_key(br#"{"id":1,"prediction":"a","key":"rows@1-0"}"#), Some("rows@1-0".into()));
        assert_eq!(result_key(b"not json"), None);
    }
}

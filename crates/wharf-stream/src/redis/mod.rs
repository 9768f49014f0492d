//! Redis Streams: a consumer group as a [`StreamSource`](crate::StreamSource) and a stream as a
//! [`StreamSink`](crate::StreamSink)
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
//!
//! The adapter is split by concern: [`RedisStreamUrl`] (`url`), the reconnecting
//! connection (`link`), [`RedisSource`] (`source`) and [`RedisSink`] with its commit script
//! (`sink`).

mod link;
mod sink;
mod source;
mod url;

use std::time::Duration;

pub use sink::{RedisAck, RedisSink};
pub use source::RedisSource;
pub use url::RedisStreamUrl;

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

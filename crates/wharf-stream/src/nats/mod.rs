//! NATS JetStream: a durable pull consumer as a [`StreamSource`] and a stream as a
//! [`StreamSink`] (feature `nats`).
//!
//! Scale-out is JetStream's own: every worker pulls from the same durable consumer (the
//! `group`), on any machine that reaches the server or cluster, and JetStream hands each
//! message to one of them. A message stays pending until it is acknowledged; one that is not
//! acknowledged within `ack_wait` (its worker died, or stalls) is delivered again, to
//! whichever worker pulls next, with its delivery count raised. Nothing is lost when a
//! worker dies, and the redelivered messages show in [`BrokerStats::reclaimed`].
//!
//! # The URL
//!
//! ```text
//! nats://[USER:PASSWORD@|TOKEN@]HOST[:PORT]/STREAM[?group=G&consumer=C&subject=S&ack_wait_ms=MS&max_attempts=N&dead_letter=STREAM&duplicate_window_ms=MS]
//! ```
//!
//! The parameters mean what they mean in a `redis://` URL, so moving a deployment from one
//! broker to the other changes the scheme and little else:
//!
//! - `group` names the JetStream **durable pull consumer** every worker shares (the role of a
//!   Redis consumer group) and `consumer` names this worker (written into its results and
//!   dead letters). Both are required for a source and ignored by a sink.
//! - `subject` is the subject the stream captures, the stream's own name by default: records
//!   are published there (`nats pub rows '{"id":1,…}'`), one JSON object per message.
//! - `ack_wait_ms` is how long a delivery may stay unacknowledged before JetStream delivers it
//!   again ([`DEFAULT_ACK_WAIT`]). It is a setting of the durable consumer, fixed by the
//!   worker that creates it; a worker that asks for another value is refused rather than
//!   silently ignored.
//! - `duplicate_window_ms` is the output stream's de-duplication window
//!   ([`DEFAULT_DUPLICATE_WINDOW`]), fixed by whoever creates that stream.
//!
//! Missing streams and the consumer are created (file storage; the consumer starts at the
//! beginning of the stream), and creating what already exists with the same settings is a
//! no-op, so any number of workers may start at once. A password or token never appears in
//! names, errors or `Debug` output.
//!
//! # Exactly once, within the duplicate window
//!
//! JetStream has no transaction spanning a publish and an acknowledgement, so a
//! [`NatsSink`] paired with its source ([`NatsSink::acknowledging`]) does it in two steps:
//! it publishes every result of a micro-batch with the header `Nats-Msg-Id: <key>` (the
//! input's `<STREAM>@<sequence>`, the same across redeliveries), waits for all the publish
//! acknowledgements, and only then acknowledges the input messages (each acknowledgement
//! confirmed by the server). A crash in between leaves the inputs unacknowledged: they are
//! delivered again, scored again, and the output stream drops the second result as a
//! duplicate of the first. The same happens when a slow worker and the one that got its
//! redelivery both publish. This holds while the second publish of a key comes within the
//! output stream's `duplicate_window` of the first: with the defaults (window 2 minutes,
//! `ack_wait` 5 seconds) that is any redelivery a live worker picks up, but a record whose
//! first result was published and whose every worker then stayed down longer than the
//! window is written again. [`StreamSink::exactly_once`] therefore answers true for a paired
//! sink, in that sense, and pairing is refused when the window is not longer than the
//! source's `ack_wait`. The results whose publish JetStream reported as a duplicate are
//! counted in [`BrokerStats::duplicates`].
//!
//! # Dead letters
//!
//! A message delivered more than `max_attempts` times (it kept killing or stalling its
//! workers), or an empty one, is published to the dead-letter stream (`<STREAM>-dead`
//! unless `dead_letter` says otherwise; `-` rather than Redis's `:`, because a stream's name
//! becomes a directory name in the server's file storage) and then terminated (`+TERM`, so
//! JetStream never delivers it again). The dead letter's payload is the record; its headers
//! `Wharf-Stream`, `Wharf-Sequence`, `Wharf-Attempts`, `Wharf-Consumer` and `Wharf-Reason`
//! say where it came from and why. The consumer itself has no `max_deliver` limit: with one,
//! JetStream would stop delivering the message without telling any worker, and it would
//! never reach the dead-letter stream.
//!
//! # A broker restart
//!
//! The client reconnects by itself; a request that fails meanwhile (a fetch, a publish, an
//! acknowledgement) is retried with a growing pause for up to 30 seconds before the job
//! fails with an error naming the server and stream. Every request is safe to repeat:
//! fetching only hands out what is not acknowledged, publishes are de-duplicated, and an
//! acknowledgement of an acknowledged message changes nothing.
//!
//! The adapter is split by concern: [`NatsStreamUrl`] (`url`), the connection and its
//! retries (`link`), [`NatsSource`] (`source`) and [`NatsSink`] (`sink`).

mod link;
mod sink;
mod source;
mod url;

use std::time::Duration;

use async_nats::jetstream::ErrorCode;

// For the links in the docs above.
#[cfg(doc)]
use crate::{BrokerStats, StreamSink, StreamSource};

pub use sink::{NatsAck, NatsSink};
pub use source::NatsSource;
pub use url::NatsStreamUrl;

/// The adapter's name in errors.
const ADAPTER: &str = "nats";
/// The default for `ack_wait_ms`: how long a delivery stays unacknowledged before JetStream
/// delivers it again. Longer than a micro-batch takes, or live workers redo each other's
/// work (harmless, since results are de-duplicated, but wasted); the same as Redis's
/// `min_idle_ms` default.
pub const DEFAULT_ACK_WAIT: Duration = Duration::from_millis(5000);
/// The default for `duplicate_window_ms`: JetStream's own default, 2 minutes.
pub const DEFAULT_DUPLICATE_WINDOW: Duration = Duration::from_secs(120);
/// The default for `max_attempts`.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;
/// How long a failing request is retried before the job fails: long enough for a broker
/// restart.
const RECONNECT_FOR: Duration = Duration::from_secs(30);
/// How long after its expiry a pull request is still waited for: the server's answer in
/// flight.
const FETCH_GRACE: Duration = Duration::from_millis(200);
/// Deliveries the durable consumer lets be unacknowledged at once, over all workers
/// (JetStream 2.9's default is 1,000: two workers with 500-record batches and a dead one's
/// 500 would already stall until `ack_wait`).
const MAX_ACK_PENDING: i64 = 20_000;
/// JetStream's "temporarily unavailable" (a restarting server recovering its streams).
const TEMPORARILY_UNAVAILABLE: ErrorCode = ErrorCode(10008);

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

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy, PullConsumer};
use async_nats::jetstream::message::PublishMessage as Publish;
use async_nats::jetstream::stream::{Config as StreamConfig, StorageType};
use async_nats::jetstream::{self, ErrorCode};
use futures_util::StreamExt;
use wharf_core::{Result, WharfError};

use crate::broker::{group_and_consumer, lines, query_pairs, redact, result_key, tokens};
use crate::sink::StreamSink;
use crate::source::{BrokerStats, Delivery, Polled, StreamSource};

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

/// How the client proves who it is.
#[derive(Clone, PartialEq, Eq)]
enum Auth {
    None,
    UserPassword(String, String),
    Token(String),
}

/// A parsed `nats://` stream URL (see the [module docs](self)).
#[derive(Clone, PartialEq, Eq)]
pub struct NatsStreamUrl {
    /// `host:port`, for names and for connecting.
    pub host: String,
    /// The JetStream stream's name.
    pub stream: String,
    /// The subject the stream captures (its name by default).
    pub subject: String,
    /// The durable pull consumer the workers share (sources).
    pub group: Option<String>,
    /// This worker's name (sources), written into its results and dead letters.
    pub consumer: Option<String>,
    /// How long a delivery may stay unacknowledged; `None` keeps the durable consumer's
    /// setting, or [`DEFAULT_ACK_WAIT`] when this worker creates it.
    pub ack_wait: Option<Duration>,
    /// Deliveries after which a message goes to the dead-letter stream.
    pub max_attempts: u32,
    /// The dead-letter stream (its subject is its name).
    pub dead_letter: String,
    /// The de-duplication window of a stream this URL creates; `None` keeps an existing
    /// stream's, or [`DEFAULT_DUPLICATE_WINDOW`].
    pub duplicate_window: Option<Duration>,
    auth: Auth,
}

impl std::fmt::Debug for NatsStreamUrl {
    // The credentials are never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsStreamUrl")
            .field("url", &self.name())
            .field("subject", &self.subject)
            .field("group", &self.group)
            .field("consumer", &self.consumer)
            .finish()
    }
}

/// Whether `name` can be a JetStream stream or consumer name (and so a subject token).
fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c.is_control() || ".*>/\\".contains(c))
}

impl NatsStreamUrl {
    /// Parses `url`; an error names the part that is wrong.
    pub fn parse(url: &str) -> Result<NatsStreamUrl> {
        let bad = |part: &str, message: String| WharfError::invalid(format!("{} ({part})", redact(url)), message);
        let rest =
            url.strip_prefix("nats://").ok_or_else(|| bad("scheme", "a NATS stream URL starts with nats://".into()))?;
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority, stream) = rest.split_once('/').unwrap_or((rest, ""));
        if stream.is_empty() {
            return Err(bad("stream", "name the stream after the server: nats://HOST:PORT/STREAM".into()));
        }
        if !valid_name(stream) {
            return Err(bad(
                "stream",
                format!("`{stream}` is not a JetStream stream name (no spaces, `.`, `*`, `>`, `/` or `\\`)"),
            ));
        }
        let (userinfo, host) = match authority.rsplit_once('@') {
            Some((user, host)) => (Some(user), host),
            None => (None, authority),
        };
        if host.is_empty() {
            return Err(bad("host", "the server is missing: nats://HOST:PORT/STREAM".into()));
        }
        let host = if host.contains(':') { host.to_string() } else { format!("{host}:4222") };
        let auth = match userinfo {
            None => Auth::None,
            Some(info) => match info.split_once(':') {
                Some((user, password)) => Auth::UserPassword(user.to_string(), password.to_string()),
                None => Auth::Token(info.to_string()),
            },
        };
        let mut parsed = NatsStreamUrl {
            host,
            stream: stream.to_string(),
            subject: stream.to_string(),
            group: None,
            consumer: None,
            ack_wait: None,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            dead_letter: format!("{stream}-dead"),
            duplicate_window: None,
            auth,
        };
        for (key, value) in query_pairs(query, bad)? {
            let number =
                |what: &str| value.parse::<u64>().map_err(|_| bad(key, format!("`{key}={value}` is not {what}")));
            let name = |what: &str| {
                if valid_name(value) {
                    Ok(value.to_string())
                } else {
                    Err(bad(key, format!("`{value}` is not a {what} name (no spaces, `.`, `*`, `>`, `/` or `\\`)")))
                }
            };
            match key {
                "group" => parsed.group = Some(name("JetStream consumer")?),
                "consumer" => parsed.consumer = Some(value.to_string()),
                "subject" => {
                    if value.contains(char::is_whitespace) || value.starts_with('.') || value.ends_with('.') {
                        return Err(bad(key, format!("`{value}` is not a NATS subject")));
                    }
                    parsed.subject = value.to_string();
                }
                "ack_wait_ms" => {
                    parsed.ack_wait = Some(Duration::from_millis(number("a number of milliseconds")?.max(1)));
                }
                "max_attempts" => {
                    parsed.max_attempts = u32::try_from(number("a count")?.max(1)).unwrap_or(u32::MAX);
                }
                "dead_letter" => parsed.dead_letter = name("JetStream stream")?,
                "duplicate_window_ms" => {
                    parsed.duplicate_window = Some(Duration::from_millis(number("a number of milliseconds")?.max(1)));
                }
                other => {
                    return Err(bad(
                        other,
                        format!(
                            "unknown parameter `{other}` (known: group, consumer, subject, ack_wait_ms, max_attempts, \
                             dead_letter, duplicate_window_ms)"
                        ),
                    ))
                }
            }
        }
        Ok(parsed)
    }

    /// The stream's name without credentials, `nats://host:port/stream`, used in lineage and
    /// errors.
    pub fn name(&self) -> String {
        format!("nats://{}/{}", self.host, self.stream)
    }
}

/// Why a request failed, and whether retrying it may help.
struct Failure {
    transient: bool,
    source: async_nats::Error,
}

impl Failure {
    /// A failure of the connection or of a request in flight: worth retrying while the
    /// server restarts (a timeout, no responders while JetStream is down, a broken pipe).
    fn transient(e: impl Into<async_nats::Error>) -> Failure {
        Failure { transient: true, source: e.into() }
    }
    /// An answer no retry can change (a bad name, a refused configuration).
    fn permanent(e: impl Into<async_nats::Error>) -> Failure {
        Failure { transient: false, source: e.into() }
    }
    /// An error answered by the JetStream API: permanent unless JetStream said it is
    /// temporarily unavailable.
    fn api(e: jetstream::Error) -> Failure {
        let transient = e.error_code() == TEMPORARILY_UNAVAILABLE;
        Failure { transient, source: Box::new(e) }
    }
}

/// One connection to a NATS server, with the runtime its client lives on.
///
/// The client is asynchronous and the streaming ports are not: each request is run to
/// completion with `block_on`. The runtime has one worker thread of its own, so the
/// client's connection task keeps answering the server's pings and reconnecting while the
/// job is busy scoring between two requests.
struct Link {
    runtime: tokio::runtime::Runtime,
    client: async_nats::Client,
    js: jetstream::Context,
    name: String,
}

impl Link {
    /// Connects now, so a wrong address or credentials fail at start-up (with no retry).
    fn open(url: &NatsStreamUrl, role: &str) -> Result<Link> {
        let name = url.name();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("wharf-nats")
            .enable_all()
            .build()
            .map_err(|e| {
                WharfError::backend(ADAPTER, format!("{name}: cannot start the client runtime"), Some(e.into()))
            })?;
        let mut options = async_nats::ConnectOptions::new()
            .name(format!("wharf-{role}"))
            .connection_timeout(Duration::from_secs(5))
            .request_timeout(Some(Duration::from_secs(10)));
        options = match &url.auth {
            Auth::None => options,
            Auth::UserPassword(user, password) => options.user_and_password(user.clone(), password.clone()),
            Auth::Token(token) => options.token(token.clone()),
        };
        let client = runtime
            .block_on(options.connect(url.host.as_str()))
            .map_err(|e| WharfError::backend(ADAPTER, format!("{name}: cannot connect"), Some(e.into())))?;
        // The JetStream context spawns its acknowledgement task on the current runtime.
        let js = {
            let _entered = runtime.enter();
            jetstream::new(client.clone())
        };
        Ok(Link { runtime, client, js, name })
    }

    /// Runs the request `f` makes, retrying transient failures with a growing pause for
    /// [`RECONNECT_FOR`]. Every request sent through here must be safe to repeat.
    fn run<T, F, Fut>(&self, what: &str, mut f: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = std::result::Result<T, Failure>>,
    {
        let started = Instant::now();
        let mut pause = Duration::from_millis(50);
        // Inside the runtime's context: building a request may already need its timers.
        let _entered = self.runtime.enter();
        loop {
            match self.runtime.block_on(f()) {
                Ok(value) => return Ok(value),
                Err(failure) if failure.transient && started.elapsed() < RECONNECT_FOR => {
                    // Sleep on the runtime, not the thread, so the client keeps reconnecting.
                    self.runtime.block_on(async { tokio::time::sleep(pause).await });
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
                Err(failure) => {
                    return Err(WharfError::backend(
                        ADAPTER,
                        format!("{}: {what} failed", self.name),
                        Some(failure.source),
                    ))
                }
            }
        }
    }

    /// The stream `name` capturing `subject`, created (file storage) if missing. Creating a
    /// stream that exists with the same settings succeeds, so workers may race here.
    fn ensure_stream(&self, name: &str, subject: &str, window: Option<Duration>) -> Result<jetstream::stream::Info> {
        let config = StreamConfig {
            name: name.to_string(),
            subjects: vec![subject.to_string()],
            storage: StorageType::File,
            duplicate_window: window.unwrap_or(DEFAULT_DUPLICATE_WINDOW),
            ..Default::default()
        };
        let info = self.run(&format!("opening the stream {name}"), || {
            let (js, config) = (self.js.clone(), config.clone());
            async move {
                match js.get_stream(&config.name).await {
                    Ok(stream) => return Ok(stream.cached_info().clone()),
                    Err(e) => match e.kind() {
                        jetstream::context::GetStreamErrorKind::JetStream(api)
                            if api.error_code() == ErrorCode::STREAM_NOT_FOUND => {}
                        jetstream::context::GetStreamErrorKind::JetStream(api) => return Err(Failure::api(api)),
                        jetstream::context::GetStreamErrorKind::Request => return Err(Failure::transient(e)),
                        _ => return Err(Failure::permanent(e)),
                    },
                }
                match js.create_stream(config.clone()).await {
                    Ok(stream) => Ok(stream.cached_info().clone()),
                    Err(e) => match e.kind() {
                        // Another worker created it first: use theirs.
                        jetstream::context::CreateStreamErrorKind::JetStream(api)
                            if api.error_code() == ErrorCode::STREAM_NAME_EXIST =>
                        {
                            Err(Failure::transient(e))
                        }
                        jetstream::context::CreateStreamErrorKind::JetStream(api) => Err(Failure::api(api)),
                        jetstream::context::CreateStreamErrorKind::TimedOut
                        | jetstream::context::CreateStreamErrorKind::JetStreamUnavailable
                        | jetstream::context::CreateStreamErrorKind::Response => Err(Failure::transient(e)),
                        _ => Err(Failure::permanent(e)),
                    },
                }
            }
        })?;
        if let Some(wanted) = window {
            if info.config.duplicate_window != wanted {
                return Err(WharfError::invalid(
                    format!("nats://{}/{name}", self.name_host()),
                    format!(
                        "the stream exists with a duplicate window of {} ms, not the {} ms asked for; use the same \
                         duplicate_window_ms, or leave it out",
                        info.config.duplicate_window.as_millis(),
                        wanted.as_millis()
                    ),
                ));
            }
        }
        Ok(info)
    }

    fn name_host(&self) -> &str {
        self.name.strip_prefix("nats://").and_then(|r| r.split('/').next()).unwrap_or(&self.name)
    }

    /// Acknowledges (`+ACK`) or terminates (`+TERM`) deliveries by their reply subjects,
    /// each confirmed by the server, all in flight at once.
    fn acknowledge(&self, what: &str, tokens: &[String], kind: &'static str) -> Result<()> {
        if tokens.is_empty() {
            return Ok(());
        }
        self.run(what, || {
            let client = self.client.clone();
            async move {
                let requests = tokens.iter().map(|token| client.request(token.clone(), kind.into()));
                for reply in futures_util::future::join_all(requests).await {
                    reply.map_err(Failure::transient)?;
                }
                Ok(())
            }
        })
    }

    /// Publishes `messages` (subject, message) all at once and waits for every publish
    /// acknowledgement; a failed one is published again (the `Nats-Msg-Id` makes that
    /// safe). Answers how many JetStream reported as duplicates.
    fn publish_all(&self, what: &str, messages: &[(String, Publish)]) -> Result<u64> {
        // Per message: `None` until JetStream acknowledged it, then whether it was a duplicate.
        let acked: std::cell::RefCell<Vec<Option<bool>>> = std::cell::RefCell::new(vec![None; messages.len()]);
        self.run(what, || {
            let (js, acked) = (self.js.clone(), &acked);
            let todo: Vec<usize> = (0..messages.len()).filter(|&i| acked.borrow()[i].is_none()).collect();
            async move {
                let mut in_flight = Vec::with_capacity(todo.len());
                let mut failed = None;
                for &i in &todo {
                    let (subject, message) = &messages[i];
                    match js.send_publish(subject.clone(), message.clone()).await {
                        Ok(ack) => in_flight.push(async move { (i, ack.await) }),
                        Err(e) => {
                            failed = Some(e);
                            break;
                        }
                    }
                }
                for (i, reply) in futures_util::future::join_all(in_flight).await {
                    match reply {
                        Ok(ack) => acked.borrow_mut()[i] = Some(ack.duplicate),
                        Err(e) => failed = failed.or(Some(e)),
                    }
                }
                failed.map_or(Ok(()), |e| Err(publish_failure(e)))
            }
        })?;
        let duplicates = acked.borrow().iter().filter(|d| **d == Some(true)).count();
        Ok(duplicates as u64)
    }
}

/// A publish that failed: a too-large message is permanent; anything else (a timeout, no
/// stream answering while the server restarts) is worth retrying.
fn publish_failure(e: jetstream::context::PublishError) -> Failure {
    match e.kind() {
        jetstream::context::PublishErrorKind::MaxPayloadExceeded => Failure::permanent(e),
        _ => Failure::transient(e),
    }
}

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

    /// What a [`NatsSink`] needs to acknowledge this source's deliveries once their results
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

/// The source a [`NatsSink`] acknowledges for, from [`NatsSource::acknowledgement`]: its
/// connection (acknowledgements go where the deliveries came from) and its counters.
#[derive(Clone)]
pub struct NatsAck {
    link: Arc<Link>,
    stream: String,
    group: String,
    ack_wait: Duration,
    stats: Arc<BrokerStats>,
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
    /// [module docs](self)). Refused when the output's duplicate window is not longer than
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
    fn a_url_names_server_stream_consumer_and_worker() {
        let url = NatsStreamUrl::parse(
            "nats://user:secret@10.0.0.5:4333/ROWS?group=scorers&consumer=w1&subject=rows.in&ack_wait_ms=1500\
             &max_attempts=3&duplicate_window_ms=60000",
        )
        .expect("parse");
        assert_eq!(url.host, "10.0.0.5:4333");
        assert_eq!((url.stream.as_str(), url.subject.as_str()), ("ROWS", "rows.in"));
        assert_eq!((url.group.as_deref(), url.consumer.as_deref()), (Some("scorers"), Some("w1")));
        assert_eq!((url.ack_wait, url.max_attempts), (Some(Duration::from_millis(1500)), 3));
        assert_eq!(url.duplicate_window, Some(Duration::from_secs(60)));
        assert_eq!(url.dead_letter, "ROWS-dead");
        assert_eq!(url.name(), "nats://10.0.0.5:4333/ROWS");
        assert!(url.auth == Auth::UserPassword("user".into(), "secret".into()));
        assert!(!format!("{url:?}").contains("secret"), "{url:?}");

        let plain = NatsStreamUrl::parse("nats://localhost/out").expect("parse");
        assert_eq!((plain.host.as_str(), plain.subject.as_str()), ("localhost:4222", "out"));
        assert_eq!((plain.ack_wait, plain.duplicate_window), (None, None));
        assert!(NatsStreamUrl::parse("nats://s3cr3t@h/s").expect("token").auth == Auth::Token("s3cr3t".into()));
    }

    #[test]
    fn a_bad_url_names_the_bad_part_and_hides_the_credentials() {
        let cases = [
            ("redis://h/s", "(scheme)"),
            ("nats://h:1", "(stream)"),
            ("nats:///s", "(host)"),
            ("nats://h/a.b", "not a JetStream stream name"),
            ("nats://h/s?grup=g", "unknown parameter `grup`"),
            ("nats://h/s?max_attempts=many", "`max_attempts=many` is not a count"),
            ("nats://h/s?group", "`group` needs a value"),
            ("nats://h/s?group=a.b", "(group)"),
            ("nats://h/s?ack_wait_ms=soon", "(ack_wait_ms)"),
            ("nats://h/s?subject=a b", "not a NATS subject"),
        ];
        for (url, expected) in cases {
            let err = NatsStreamUrl::parse(url).expect_err(url).to_string();
            assert!(err.contains(expected), "{url}: {err}");
        }
        for url in ["nats://u:pw@h/s?x=1", "nats://tok3n@h/s?x=1"] {
            let err = NatsStreamUrl::parse(url).expect_err("unknown").to_string();
            assert!(!err.contains("pw") && !err.contains("tok3n"), "{err}");
        }
    }

    #[test]
    fn result_lines_are_matched_by_key() {
        assert_eq!(result_key(br#"{"id":1,"prediction":"a","key":"rows@7"}"#), Some("rows@7".into()));
        assert_eq!(result_key(b"not json"), None);
        assert_eq!(lines(b"a\n\nb\n").count(), 2);
    }
}

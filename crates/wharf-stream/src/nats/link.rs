//! A connection to a NATS server, its runtime, and the retries that outlast a restart.

use std::future::Future;
use std::time::Duration;

use async_nats::jetstream::message::PublishMessage as Publish;
use async_nats::jetstream::stream::{Config as StreamConfig, StorageType};
use async_nats::jetstream::{self, ErrorCode};
use wharf_core::{Result, WharfError};

use super::url::{Auth, NatsStreamUrl};
use wharf_core::retry::{Call, Failure as RetryFailure};

use super::{ADAPTER, DEFAULT_DUPLICATE_WINDOW, RECONNECT_FOR, TEMPORARILY_UNAVAILABLE};

/// Why a request failed, and whether retrying it may help.
pub(super) struct Failure {
    transient: bool,
    source: async_nats::Error,
}

impl Failure {
    /// A failure of the connection or of a request in flight: worth retrying while the
    /// server restarts (a timeout, no responders while JetStream is down, a broken pipe).
    pub(super) fn transient(e: impl Into<async_nats::Error>) -> Failure {
        Failure { transient: true, source: e.into() }
    }
    /// An answer no retry can change (a bad name, a refused configuration).
    pub(super) fn permanent(e: impl Into<async_nats::Error>) -> Failure {
        Failure { transient: false, source: e.into() }
    }
    /// An error answered by the JetStream API: permanent unless JetStream said it is
    /// temporarily unavailable.
    pub(super) fn api(e: jetstream::Error) -> Failure {
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
pub(super) struct Link {
    runtime: tokio::runtime::Runtime,
    client: async_nats::Client,
    pub(super) js: jetstream::Context,
    name: String,
}

impl Link {
    /// Connects now, so a wrong address or credentials fail at start-up (with no retry).
    pub(super) fn open(url: &NatsStreamUrl, role: &str) -> Result<Link> {
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
    pub(super) fn run<T, F, Fut>(&self, what: &str, mut f: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = std::result::Result<T, Failure>>,
    {
        let mut delays = crate::broker::reconnect_policy(RECONNECT_FOR).delays();
        // Inside the runtime's context: building a request may already need its timers.
        let _entered = self.runtime.enter();
        loop {
            match self.runtime.block_on(f()) {
                Ok(value) => return Ok(value),
                Err(failure) if failure.transient => {
                    let pause = delays.next_for(Call::Idempotent, RetryFailure::MaybeSent { retry_after: None });
                    let Some(pause) = pause else {
                        return Err(WharfError::backend(
                            ADAPTER,
                            format!("{}: {what} failed", self.name),
                            Some(failure.source),
                        ));
                    };
                    // Sleep on the runtime, not the thread, so the client keeps reconnecting.
                    self.runtime.block_on(async { tokio::time::sleep(pause).await });
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
    pub(super) fn ensure_stream(
        &self,
        name: &str,
        subject: &str,
        window: Option<Duration>,
    ) -> Result<jetstream::stream::Info> {
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

    pub(super) fn name_host(&self) -> &str {
        self.name.strip_prefix("nats://").and_then(|r| r.split('/').next()).unwrap_or(&self.name)
    }

    /// Acknowledges (`+ACK`) or terminates (`+TERM`) deliveries by their reply subjects,
    /// each confirmed by the server, all in flight at once.
    pub(super) fn acknowledge(&self, what: &str, tokens: &[String], kind: &'static str) -> Result<()> {
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
    pub(super) fn publish_all(&self, what: &str, messages: &[(String, Publish)]) -> Result<u64> {
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
pub(super) fn publish_failure(e: jetstream::context::PublishError) -> Failure {
    match e.kind() {
        jetstream::context::PublishErrorKind::MaxPayloadExceeded => Failure::permanent(e),
        _ => Failure::transient(e),
    }
}

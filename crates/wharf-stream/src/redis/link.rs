//! A connection to the Redis server that comes back after a restart.

use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::{Commands, Connection, RedisResult};
use wharf_core::retry::{Call, Failure};
use wharf_core::{Result, WharfError};

use super::url::RedisStreamUrl;
use super::{ADAPTER, RECONNECT_FOR};

/// A connection that comes back after the server restarts: transient failures are retried
/// on a new connection for [`RECONNECT_FOR`]. Every command sent through it must therefore be
/// safe to repeat (reads, acknowledgements, and the de-duplicating commit script).
pub(super) struct Link {
    client: redis::Client,
    con: Option<Connection>,
    name: String,
    /// Commands to run on every new connection (creating the consumer group).
    pub(super) on_connect: Option<(String, String)>,
    /// Whether a connection ever succeeded: only then is a failure worth retrying (a
    /// wrong address at start-up fails at once).
    connected_once: bool,
}

impl Link {
    pub(super) fn open(url: &RedisStreamUrl) -> Result<Link> {
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
    pub(super) fn run<T>(&mut self, what: &str, mut f: impl FnMut(&mut Connection) -> RedisResult<T>) -> Result<T> {
        let started = Instant::now();
        let mut delays = crate::broker::reconnect_policy(RECONNECT_FOR).delays();
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
                        match delays.next_for(Call::Idempotent, Failure::MaybeSent { retry_after: None }) {
                            Some(pause) => std::thread::sleep(pause),
                            None => return Err(self.failed(what, e)),
                        }
                    }
                }
                Err(e) => {
                    self.con = None;
                    return Err(self.failed(what, e));
                }
            }
        }
    }

    fn failed(&self, what: &str, e: redis::RedisError) -> WharfError {
        WharfError::backend(ADAPTER, format!("{}: {what} failed", self.name), Some(e.into()))
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
pub(super) fn ensure_group(con: &mut Connection, stream: &str, group: &str) -> RedisResult<()> {
    match con.xgroup_create_mkstream::<_, _, _, ()>(stream, group, "0") {
        Ok(()) => Ok(()),
        Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}

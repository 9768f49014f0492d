//! The accept loop: every connection gets a header-read timeout, an idle timeout and a place
//! under a cap, which `axum::serve` does not give.
//!
//! A connection is *idle* while no request is in flight on it: before its first request's
//! headers have arrived (bounded by the header-read timeout) and between keep-alive requests
//! (bounded by the idle timeout). An idle connection costs the server a file descriptor and
//! nothing else, so it is what gives way: at the cap, a new connection closes the
//! longest-open idle one. That keeps `/livez` and `/readyz` answering while thousands of
//! silent sockets are open; only when every connection is busy is the new one refused
//! (closed at once, so it never waits in the kernel's queue). The cap is lowered at start to
//! fit the open-file limit, so `accept` never runs out of descriptors.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::Router;

/// What every connection runs: the application's service (see `crate::service_for`).
type App = crate::front::Front<Router>;
use hyper::body::Incoming;
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, Notify};
use tower::ServiceExt;

/// Descriptors kept free for what is not a connection: model files, the registry, logs.
const RESERVED_FDS: usize = 128;

/// Most connections closed at once to make room, before new ones are refused instead: an
/// evicted connection leaves within a scheduler tick, so this only bounds a burst.
const EVICTING_AT_ONCE: usize = 64;

/// The connection settings of [`crate::ServeOptions`].
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    pub header_read: Duration,
    pub idle: Duration,
    pub max_connections: usize,
}

/// One open connection, as the accept loop and its own task see it.
struct Conn {
    in_flight: AtomicUsize,
    served: AtomicU64,
    /// Milliseconds since the registry's epoch when the connection last became idle.
    idle_since_ms: AtomicU64,
    evicting: AtomicBool,
    /// Woken when the connection is asked to leave (eviction at the cap).
    wake: Notify,
}

impl Conn {
    /// When the connection, idle now, must be closed; `None` while a request is in flight.
    fn deadline(&self, epoch: Instant, limits: &Limits) -> Option<Instant> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let limit = if self.served.load(Ordering::Acquire) == 0 { limits.header_read } else { limits.idle };
        Some(epoch + Duration::from_millis(self.idle_since_ms.load(Ordering::Acquire)) + limit)
    }
}

/// The open connections, oldest first.
struct Registry {
    epoch: Instant,
    open: Mutex<BTreeMap<u64, Arc<Conn>>>,
    evicting: AtomicUsize,
    cap: usize,
}

impl Registry {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// A place for connection `id`, making room by closing an idle connection at the cap;
    /// `None` when every connection is busy.
    fn admit(&self, id: u64) -> Option<Arc<Conn>> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if open.len().saturating_sub(self.evicting.load(Ordering::Acquire)) >= self.cap && !self.evict_one(&open) {
            return None;
        }
        let conn = Arc::new(Conn {
            in_flight: AtomicUsize::new(0),
            served: AtomicU64::new(0),
            idle_since_ms: AtomicU64::new(self.now_ms()),
            evicting: AtomicBool::new(false),
            wake: Notify::new(),
        });
        open.insert(id, conn.clone());
        Some(conn)
    }

    /// Asks the longest-open idle connection to leave; false when none can.
    fn evict_one(&self, open: &BTreeMap<u64, Arc<Conn>>) -> bool {
        if self.evicting.load(Ordering::Acquire) >= EVICTING_AT_ONCE {
            return false;
        }
        let victim =
            open.values().find(|c| c.in_flight.load(Ordering::Acquire) == 0 && !c.evicting.load(Ordering::Acquire));
        match victim {
            Some(conn) => {
                conn.evicting.store(true, Ordering::Release);
                self.evicting.fetch_add(1, Ordering::AcqRel);
                conn.wake.notify_one();
                true
            }
            None => false,
        }
    }

    fn leave(&self, id: u64) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(conn) = open.remove(&id) {
            if conn.evicting.load(Ordering::Acquire) {
                self.evicting.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }
}

/// Counts a request in flight on its connection; on drop the connection is idle again.
struct InFlight {
    conn: Arc<Conn>,
    registry: Arc<Registry>,
}

impl InFlight {
    fn enter(conn: &Arc<Conn>, registry: &Arc<Registry>) -> Self {
        conn.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight { conn: conn.clone(), registry: registry.clone() }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        // The idle clock is set before the count drops, so the connection's task never sees
        // it idle with a stale start.
        // The connection's task is not woken: its timer re-reads this clock when it fires
        // (a wake-up and a timer re-armed per request cost more than the check).
        self.conn.served.fetch_add(1, Ordering::AcqRel);
        self.conn.idle_since_ms.store(self.registry.now_ms(), Ordering::Release);
        self.conn.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The largest connection cap the open-file limit allows, and whether `wanted` was lowered.
pub(crate) fn fitting_cap(wanted: usize) -> (usize, bool) {
    let room = open_file_limit().map(|limit| limit.saturating_sub(RESERVED_FDS).max(1));
    match room {
        Some(room) if room < wanted => (room, true),
        _ => (wanted.max(1), false),
    }
}

#[cfg(unix)]
fn open_file_limit() -> Option<usize> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit only writes the struct it is given, which lives for the call.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
    (ok && limit.rlim_cur != libc::RLIM_INFINITY).then(|| usize::try_from(limit.rlim_cur).unwrap_or(usize::MAX))
}

#[cfg(not(unix))]
fn open_file_limit() -> Option<usize> {
    None
}

/// Serves `router` on `listener` until `shutdown` completes, then stops accepting, lets
/// in-flight requests finish, and returns once every connection has closed.
pub(crate) async fn serve(
    listener: TcpListener,
    router: App,
    limits: Limits,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (cap, lowered) = fitting_cap(limits.max_connections);
    if lowered {
        tracing::warn!(
            wanted = limits.max_connections,
            cap,
            "serving.max_connections lowered to fit the open-file limit (raise it with ulimit -n)"
        );
    }
    let registry = Arc::new(Registry {
        epoch: Instant::now(),
        open: Mutex::new(BTreeMap::new()),
        evicting: AtomicUsize::new(0),
        cap,
    });
    let (stop, stopped) = watch::channel(false);
    // Every connection task holds a sender; the receiver ends when the last one is gone.
    let (alive, mut all_closed) = mpsc::channel::<()>(1);
    tokio::pin!(shutdown);
    let mut next_id = 0u64;
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    accept_failed(&registry, &e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let id = next_id;
        next_id += 1;
        let Some(conn) = registry.admit(id) else {
            tracing::debug!("connection refused: every connection is busy");
            continue;
        };
        // Answers are small and written whole: do not hold them back for Nagle.
        let _ = stream.set_nodelay(true);
        let task = Task {
            id,
            conn,
            registry: registry.clone(),
            router: router.clone(),
            limits: limits.clone(),
            stop: stopped.clone(),
            _alive: alive.clone(),
        };
        tokio::spawn(task.run(stream, tls.clone()));
    }
    drop(listener);
    let _ = stop.send(true);
    drop(alive);
    let _ = all_closed.recv().await;
    Ok(())
}

/// An `accept` that failed: out of descriptors, close an idle connection; then pause
/// briefly, so a persistent error does not spin.
async fn accept_failed(registry: &Registry, error: &std::io::Error) {
    #[cfg(unix)]
    let out_of_descriptors = matches!(error.raw_os_error(), Some(libc::EMFILE | libc::ENFILE));
    #[cfg(not(unix))]
    let out_of_descriptors = false;
    if out_of_descriptors {
        let open = registry.open.lock().unwrap_or_else(PoisonError::into_inner);
        registry.evict_one(&open);
    }
    tracing::debug!(%error, "accept failed");
    tokio::time::sleep(Duration::from_millis(10)).await;
}

/// One connection's task.
struct Task {
    id: u64,
    conn: Arc<Conn>,
    registry: Arc<Registry>,
    router: App,
    limits: Limits,
    stop: watch::Receiver<bool>,
    _alive: mpsc::Sender<()>,
}

impl Task {
    async fn run(mut self, stream: TcpStream, tls: Option<tokio_rustls::TlsAcceptor>) {
        match tls {
            None => self.drive(stream).await,
            Some(acceptor) => {
                // The handshake counts against the header-read timeout, and gives way to
                // eviction like any idle connection.
                let handshake = tokio::time::timeout(self.limits.header_read, acceptor.accept(stream));
                tokio::select! {
                    done = handshake => match done {
                        Ok(Ok(stream)) => self.drive(stream).await,
                        Ok(Err(error)) => tracing::debug!(%error, "TLS handshake failed"),
                        Err(_) => tracing::debug!("TLS handshake timed out"),
                    },
                    () = self.conn.wake.notified() => {}
                    _ = self.stop.changed() => {}
                }
            }
        }
        self.registry.leave(self.id);
    }

    async fn drive<I>(&mut self, io: I)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (conn, registry, router) = (self.conn.clone(), self.registry.clone(), self.router.clone());
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let in_flight = InFlight::enter(&conn, &registry);
            let call = router.clone().oneshot(request.map(Body::new));
            async move {
                let response = call.await;
                drop(in_flight);
                response
            }
        });
        let builder = Builder::new(TokioExecutor::new());
        let connection = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
        tokio::pin!(connection);
        let mut closing = false;
        loop {
            // While a request is in flight, look again one idle period later.
            let deadline = if closing {
                None
            } else {
                Some(
                    self.conn
                        .deadline(self.registry.epoch, &self.limits)
                        .unwrap_or_else(|| Instant::now() + self.limits.idle),
                )
            };
            tokio::select! {
                _ = connection.as_mut() => return,
                () = sleep_until(deadline) => {
                    // Still idle past its deadline (a request may have started meanwhile):
                    // nothing is in flight, so closing loses nothing.
                    if self.conn.deadline(self.registry.epoch, &self.limits).is_some_and(|d| d <= Instant::now()) {
                        return;
                    }
                }
                () = self.conn.wake.notified() => {
                    if self.conn.evicting.load(Ordering::Acquire) && !closing {
                        if self.conn.in_flight.load(Ordering::Acquire) == 0 {
                            return;
                        }
                        connection.as_mut().graceful_shutdown();
                        closing = true;
                    }
                }
                _ = self.stop.changed(), if !closing => {
                    connection.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => std::future::pending().await,
    }
}

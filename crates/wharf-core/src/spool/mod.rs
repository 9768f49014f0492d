//! Spool and replay: a decorator that keeps the calls a backend could not take, in order, and
//! sends them again later, so an outage of a tracking or lineage server never stops a job.
//!
//! Built in the tower `Layer`/`Service` spirit: the backend implements [`Replay`] (one
//! serializable call, and how to send it), [`SpoolLayer`] wraps it into [`Spooled`], which
//! adds the failure policy and owns the spool file. Adapters write no spool code of their own.
//! The same decorator serves both ports: [`lineage`] makes `Spooled` a
//! [`LineagePort`](crate::LineagePort), [`tracker`] makes it a
//! [`TrackerPort`](crate::TrackerPort) (with the run-id bookkeeping a tracker needs).
//!
//! # Policy
//!
//! - A call that fails because the backend is unavailable ([`Replay::is_unavailable`]: no
//!   answer, 5xx) is appended to the spool, and the call succeeds, with one warning per
//!   decorator (later ones at debug level). With `strict` the error is returned instead.
//! - Any other failure (the backend refused the call, a local I/O error) is returned: it
//!   would fail again on replay.
//! - Order is kept: while the spool holds earlier calls, a new call first replays them; if
//!   the backend is still unavailable, the new call joins the spool behind them instead of
//!   overtaking.
//! - With [`SpoolLayer::probe_every`], a backend found unavailable is not tried again before
//!   that pause has passed: calls meanwhile join the spool at once, so a training loop
//!   logging thousands of points during an outage does not wait for a timeout at every one.
//! - [`Spooled::replay`] (a CLI's `replay`/`sync` command) sends the spool explicitly.
//!
//! A backend that batches (it answers a call before delivering it) says so through
//! [`Replay::flush`] and [`Replay::take_unsent`], so what it held when the server went away
//! is spooled, not lost. A backend whose calls name things an earlier call created (a
//! tracker's run ids) rewrites the calls it keeps with [`Replay::to_keep`].
//!
//! # The file
//!
//! One JSON line per call, each appended under an exclusive lock and flushed to disk
//! ([`append_line`]), so concurrent writers never interleave and a crash loses at most the
//! line being written. A replay first renames the spool aside, so calls appended meanwhile
//! are not lost; a leftover from an interrupted replay is picked up by the next one (its calls
//! are sent again, so a backend should take a call twice without harm).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::fsutil::append_line;
use crate::{Result, WharfError};

pub mod lineage;
mod track_runs;
pub mod tracker;

pub use lineage::EmitLineage;
pub use track_runs::TrackRuns;
pub use tracker::{ReplayTracker, RunIds, TrackerCall};

/// A backend whose calls can be kept and sent again.
pub trait Replay: Send + Sync {
    /// One call, as the spool stores it (a JSON line).
    type Call: Serialize + DeserializeOwned + Send + Sync;

    /// Makes `call` now.
    fn send(&self, call: &Self::Call) -> Result<()>;

    /// Whether `err` (from [`send`](Self::send)) means the backend is unavailable, so the
    /// call may go through later: spool it. Anything else is the caller's error.
    fn is_unavailable(&self, err: &WharfError) -> bool;

    /// Whether a call that failed with `err` is spooled rather than returned (when not
    /// strict). By default exactly the unavailable ones; a backend may also keep calls it
    /// refused, for a replay once the refusal is fixed (a wrong credential, say).
    fn is_spoolable(&self, err: &WharfError) -> bool {
        self.is_unavailable(err)
    }

    /// Sends `call` again from the spool. By default as [`send`](Self::send); a backend may
    /// be more lenient here, since a replay interrupted and run again repeats calls it
    /// already took (MLflow accepts logging to a run such a replay already ended).
    fn resend(&self, call: &Self::Call) -> Result<()> {
        self.send(call)
    }

    /// Delivers what the backend accepted but still holds (a batching backend's buffer).
    /// Called at the end of every replay that sent something, so a replay never ends with
    /// calls that live only in memory. By default there is nothing to deliver.
    fn flush(&self) -> Result<()> {
        Ok(())
    }

    /// Takes out what the backend accepted earlier but could not deliver, as calls, after a
    /// failure: the decorator spools them ahead of the failed call. By default none.
    fn take_unsent(&self) -> Vec<Self::Call> {
        Vec::new()
    }

    /// The form in which `call` is kept in the spool, when it differs: a call naming
    /// something an earlier, already delivered call created names it as the backend knows it
    /// (a tracker's local run id becomes the server's). `None`: kept as it is.
    fn to_keep(&self, call: &Self::Call) -> Option<Self::Call> {
        let _ = call;
        None
    }
}

/// What a replay did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplayReport {
    /// Calls the backend took (and that left the spool).
    pub sent: usize,
    /// Calls still in the spool (refused, unreadable, or not tried once the backend proved
    /// unavailable).
    pub remaining: usize,
    /// Whether the replay stopped because the backend proved unavailable.
    pub unavailable: bool,
    /// The last error that kept a call in the spool.
    pub last_error: Option<String>,
}

/// Wraps backends into [`Spooled`] with one spool file and policy.
#[derive(Debug, Clone)]
pub struct SpoolLayer {
    path: PathBuf,
    strict: bool,
    probe_every: Duration,
}

impl SpoolLayer {
    /// Spools to the JSON-lines file `path`; with `strict`, unavailability is an error
    /// instead (nothing is spooled, and an explicit replay still works).
    pub fn new(path: impl Into<PathBuf>, strict: bool) -> Self {
        SpoolLayer { path: path.into(), strict, probe_every: Duration::ZERO }
    }

    /// After the backend proved unavailable, spool calls without trying it until `pause`
    /// has passed (by default no pause: every call tries). Not in strict mode, where every
    /// call tries.
    pub fn probe_every(mut self, pause: Duration) -> Self {
        self.probe_every = pause;
        self
    }

    /// `inner` behind this spool.
    pub fn layer<P: Replay>(&self, inner: P) -> Spooled<P> {
        Spooled {
            inner,
            path: self.path.clone(),
            strict: self.strict,
            probe_every: self.probe_every,
            down_since: Mutex::new(None),
            warned: AtomicBool::new(false),
        }
    }
}

/// A backend behind a spool: see the [module documentation](self) for the policy.
pub struct Spooled<P> {
    inner: P,
    path: PathBuf,
    strict: bool,
    probe_every: Duration,
    /// When the backend last proved unavailable (cleared when it takes a call).
    down_since: Mutex<Option<Instant>>,
    warned: AtomicBool,
}

impl<P: std::fmt::Debug> std::fmt::Debug for Spooled<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spooled")
            .field("inner", &self.inner)
            .field("spool", &self.path)
            .field("strict", &self.strict)
            .field("probe_every", &self.probe_every)
            .finish()
    }
}

impl<P: Replay> Spooled<P> {
    /// The wrapped backend.
    pub fn inner(&self) -> &P {
        &self.inner
    }

    /// The spool file.
    pub fn spool_path(&self) -> &Path {
        &self.path
    }

    /// Whether unavailability is returned rather than spooled.
    pub fn is_strict(&self) -> bool {
        self.strict
    }

    /// Makes `call` under the policy: sent, spooled, or failed.
    pub fn call(&self, call: &P::Call) -> Result<()> {
        if !self.strict && self.path.exists() && self.pausing() {
            return self.append(call, &"the backend was unavailable moments ago");
        }
        if self.path.exists() {
            // Earlier calls first, so the backend sees them in the order they were made.
            let report = self.replay()?;
            if report.unavailable {
                if self.strict {
                    return Err(WharfError::backend(
                        "spool",
                        format!("{} earlier call(s) still wait in {}", report.remaining, self.path.display()),
                        None,
                    ));
                }
                return self.append(call, &"earlier calls are still spooled");
            }
        }
        match self.inner.send(call) {
            Ok(()) => {
                self.set_down(false);
                Ok(())
            }
            Err(e) if !self.strict && self.inner.is_spoolable(&e) => {
                self.set_down(self.inner.is_unavailable(&e));
                self.keep_unsent()?;
                self.append(call, &e)
            }
            Err(e) => Err(e),
        }
    }

    /// Whether the backend proved unavailable less than the pause ago.
    fn pausing(&self) -> bool {
        let since = *self.down_since.lock().unwrap_or_else(|p| p.into_inner());
        since.is_some_and(|t| t.elapsed() < self.probe_every)
    }

    fn set_down(&self, down: bool) {
        *self.down_since.lock().unwrap_or_else(|p| p.into_inner()) = down.then(Instant::now);
    }

    /// Sends every spooled call, oldest first. Sent calls leave the spool; the rest stay for
    /// the next replay. Stops trying (keeping the rest) as soon as the backend proves
    /// unavailable; a call it refuses stays, and the others are still tried. A new call waits
    /// behind the spool only while the backend is unavailable, so one refused call cannot
    /// hold back every later one.
    pub fn replay(&self) -> Result<ReplayReport> {
        self.replay_only(|_| true)
    }

    /// [`replay`](Self::replay), sending only the calls `select` picks; the others stay in
    /// the spool, in order (a tracker's sync leaves the runs another process may still be
    /// logging to).
    pub fn replay_only(&self, select: impl Fn(&P::Call) -> bool) -> Result<ReplayReport> {
        let taken = self.replaying_path();
        if !taken.exists() {
            match std::fs::rename(&self.path, &taken) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ReplayReport::default()),
                Err(e) => return Err(WharfError::io(&self.path, e)),
            }
        }
        let text = std::fs::read_to_string(&taken).map_err(|e| WharfError::io(&taken, e))?;
        let mut report = ReplayReport::default();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let call = match serde_json::from_str::<P::Call>(line) {
                Ok(call) => call,
                Err(e) => {
                    tracing::warn!(error = %e, "replay: unreadable spool line kept");
                    append_line(&self.path, line)?;
                    report.remaining += 1;
                    continue;
                }
            };
            if !report.unavailable && select(&call) {
                match self.inner.resend(&call) {
                    Ok(()) => {
                        report.sent += 1;
                        continue;
                    }
                    Err(e @ WharfError::Io { .. }) => return Err(e),
                    Err(e) => {
                        report.unavailable = self.inner.is_unavailable(&e);
                        tracing::warn!(error = %e, spool = %self.path.display(), "replay: call not taken, kept in the spool");
                        report.last_error = Some(e.to_string());
                        if report.unavailable {
                            // What the backend holds will not go through either: keep it
                            // ahead of this call. (After a refusal it still can.)
                            report.remaining += self.keep_unsent()?;
                        }
                    }
                }
            }
            match self.inner.to_keep(&call) {
                Some(rewritten) => append_line(&self.path, &encode(&rewritten)?)?,
                None => append_line(&self.path, line)?,
            }
            report.remaining += 1;
        }
        if report.sent > 0 {
            if let Err(e) = self.inner.flush() {
                report.unavailable |= self.inner.is_unavailable(&e);
                report.last_error = Some(e.to_string());
                report.remaining += self.keep_unsent()?;
            }
        }
        std::fs::remove_file(&taken).map_err(|e| WharfError::io(&taken, e))?;
        if report.unavailable {
            self.set_down(true);
        } else if report.sent > 0 {
            self.set_down(false);
        }
        Ok(report)
    }

    /// Where a replay moves the spool while it sends it.
    fn replaying_path(&self) -> PathBuf {
        replaying_path(&self.path)
    }

    /// The spooled calls, oldest first: those of a replay under way, then the spool's.
    /// Unreadable lines are skipped (they stay in the file).
    pub fn spooled_calls(&self) -> Result<Vec<P::Call>> {
        read_calls(&self.path)
    }

    /// Spools what the backend holds undelivered; how many calls that was.
    fn keep_unsent(&self) -> Result<usize> {
        let unsent = self.inner.take_unsent();
        for call in &unsent {
            let kept = self.inner.to_keep(call);
            append_line(&self.path, &encode(kept.as_ref().unwrap_or(call))?)?;
        }
        Ok(unsent.len())
    }

    fn append(&self, call: &P::Call, why: &dyn std::fmt::Display) -> Result<()> {
        let kept = self.inner.to_keep(call);
        append_line(&self.path, &encode(kept.as_ref().unwrap_or(call))?)?;
        if !self.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                error = %why,
                spool = %self.path.display(),
                "backend unavailable: call spooled for a later replay (further ones log at debug)"
            );
        } else {
            tracing::debug!(error = %why, "call spooled");
        }
        Ok(())
    }
}

fn encode<C: Serialize>(call: &C) -> Result<String> {
    serde_json::to_string(call)
        .map_err(|e| WharfError::backend("spool", format!("cannot encode a call for the spool: {e}"), None))
}

fn replaying_path(spool: &Path) -> PathBuf {
    spool.with_extension("replaying")
}

/// The calls kept in the spool file `spool`, oldest first: those of a replay under way, then
/// the spool's. Unreadable lines are skipped (they stay in the file). For readers that hold
/// no decorator (a listing command).
pub fn read_calls<C: DeserializeOwned>(spool: &Path) -> Result<Vec<C>> {
    let mut calls = Vec::new();
    for path in [replaying_path(spool), spool.to_path_buf()] {
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(WharfError::io(&path, e)),
        };
        calls.extend(text.lines().filter_map(|l| serde_json::from_str(l).ok()));
    }
    Ok(calls)
}

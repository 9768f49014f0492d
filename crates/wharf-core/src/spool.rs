//! Spool and replay: a decorator that keeps the calls a backend could not take, in order, and
//! sends them again later, so an outage of a tracking or lineage server never stops a job.
//!
//! Built in the tower `Layer`/`Service` spirit: the backend implements [`Replay`] (one
//! serializable call, and how to send it), [`SpoolLayer`] wraps it into [`Spooled`], which
//! adds the failure policy and owns the spool file. Adapters write no spool code of their own.
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
//! - [`Spooled::replay`] (a CLI's `replay`/`sync` command) sends the spool explicitly.
//!
//! # The file
//!
//! One JSON line per call, each appended under an exclusive lock and flushed to disk
//! ([`append_line`]), so concurrent writers never interleave and a crash loses at most the
//! line being written. A replay first renames the spool aside, so calls appended meanwhile
//! are not lost; a leftover from an interrupted replay is picked up by the next one.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::fsutil::append_line;
use crate::ports::lineage::{LineageEvent, LineagePort};
use crate::{Result, WharfError};

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
}

/// Wraps backends into [`Spooled`] with one spool file and policy.
#[derive(Debug, Clone)]
pub struct SpoolLayer {
    path: PathBuf,
    strict: bool,
}

impl SpoolLayer {
    /// Spools to the JSON-lines file `path`; with `strict`, unavailability is an error
    /// instead (nothing is spooled, and an explicit replay still works).
    pub fn new(path: impl Into<PathBuf>, strict: bool) -> Self {
        SpoolLayer { path: path.into(), strict }
    }

    /// `inner` behind this spool.
    pub fn layer<P: Replay>(&self, inner: P) -> Spooled<P> {
        Spooled { inner, path: self.path.clone(), strict: self.strict, warned: AtomicBool::new(false) }
    }
}

/// A backend behind a spool: see the [module documentation](self) for the policy.
pub struct Spooled<P> {
    inner: P,
    path: PathBuf,
    strict: bool,
    warned: AtomicBool,
}

impl<P: std::fmt::Debug> std::fmt::Debug for Spooled<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spooled")
            .field("inner", &self.inner)
            .field("spool", &self.path)
            .field("strict", &self.strict)
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
            Ok(()) => Ok(()),
            Err(e) if !self.strict && self.inner.is_spoolable(&e) => self.append(call, &e),
            Err(e) => Err(e),
        }
    }

    /// Sends every spooled call, oldest first. Sent calls leave the spool; the rest stay for
    /// the next replay. Stops trying (keeping the rest) as soon as the backend proves
    /// unavailable; a call it refuses stays, and the others are still tried. A new call waits
    /// behind the spool only while the backend is unavailable, so one refused call cannot
    /// hold back every later one.
    pub fn replay(&self) -> Result<ReplayReport> {
        let taken = self.path.with_extension("replaying");
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
            if !report.unavailable {
                match serde_json::from_str::<P::Call>(line) {
                    Ok(call) => match self.inner.send(&call) {
                        Ok(()) => {
                            report.sent += 1;
                            continue;
                        }
                        Err(e @ WharfError::Io { .. }) => return Err(e),
                        Err(e) => {
                            report.unavailable = self.inner.is_unavailable(&e);
                            tracing::warn!(error = %e, spool = %self.path.display(), "replay: call not taken, kept in the spool");
                        }
                    },
                    Err(e) => tracing::warn!(error = %e, "replay: unreadable spool line kept"),
                }
            }
            append_line(&self.path, line)?;
            report.remaining += 1;
        }
        std::fs::remove_file(&taken).map_err(|e| WharfError::io(&taken, e))?;
        Ok(report)
    }

    fn append(&self, call: &P::Call, why: &dyn std::fmt::Display) -> Result<()> {
        let line = serde_json::to_string(call)
            .map_err(|e| WharfError::backend("spool", format!("cannot encode a call for the spool: {e}"), None))?;
        append_line(&self.path, &line)?;
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

/// Any [`LineagePort`] as a [`Replay`] backend of [`LineageEvent`]s, so
/// `SpoolLayer::new(path, false).layer(EmitLineage(port))` is itself a lineage port with
/// failover. Unavailable means a [`WharfError::Backend`] error.
#[derive(Debug)]
pub struct EmitLineage<L>(pub L);

impl<L: LineagePort> Replay for EmitLineage<L> {
    type Call = LineageEvent;
    fn send(&self, call: &LineageEvent) -> Result<()> {
        self.0.emit(call)
    }
    fn is_unavailable(&self, err: &WharfError) -> bool {
        matches!(err, WharfError::Backend { .. })
    }
}

impl<P: Replay<Call = LineageEvent>> LineagePort for Spooled<P> {
    fn name(&self) -> &str {
        "spooled"
    }
    fn emit(&self, event: &LineageEvent) -> Result<()> {
        self.call(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FileLineage;
    use std::sync::atomic::AtomicBool;

    /// A real file sink that can be switched off, standing for a server going down.
    struct Switchable {
        sink: FileLineage,
        up: AtomicBool,
        refuse: &'static str,
    }

    impl LineagePort for Switchable {
        fn name(&self) -> &str {
            "switchable"
        }
        fn emit(&self, event: &LineageEvent) -> Result<()> {
            if event.name == self.refuse {
                return Err(WharfError::invalid("job", "refused"));
            }
            if !self.up.load(Ordering::SeqCst) {
                return Err(WharfError::backend("switchable", "down", None));
            }
            self.sink.emit(event)
        }
    }

    fn jobs(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str::<LineageEvent>(l).expect("event").name)
            .collect()
    }

    fn setup(strict: bool) -> (tempfile::TempDir, Spooled<EmitLineage<Switchable>>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = Switchable {
            sink: FileLineage::new(dir.path().join("sink.jsonl")),
            up: AtomicBool::new(false),
            refuse: "bad",
        };
        let spooled = SpoolLayer::new(dir.path().join("spool.jsonl"), strict).layer(EmitLineage(port));
        (dir, spooled)
    }

    #[test]
    fn calls_during_an_outage_are_spooled_and_replayed_in_order_on_the_next_call() {
        let (dir, spooled) = setup(false);
        spooled.emit(&LineageEvent::new("a")).expect("spooled, not failed");
        spooled.emit(&LineageEvent::new("b")).expect("spooled behind a");
        assert_eq!(jobs(spooled.spool_path()), ["a", "b"]);
        assert!(jobs(&dir.path().join("sink.jsonl")).is_empty());

        spooled.inner().0.up.store(true, Ordering::SeqCst);
        spooled.emit(&LineageEvent::new("c")).expect("sent");
        assert_eq!(jobs(&dir.path().join("sink.jsonl")), ["a", "b", "c"], "the spool goes first, in order");
        assert!(!spooled.spool_path().exists() || jobs(spooled.spool_path()).is_empty());
        assert_eq!(spooled.replay().expect("empty"), ReplayReport::default());
    }

    #[test]
    fn refused_calls_are_errors_and_strict_mode_does_not_spool() {
        let (_dir, spooled) = setup(false);
        spooled.inner().0.up.store(true, Ordering::SeqCst);
        assert!(matches!(spooled.emit(&LineageEvent::new("bad")), Err(WharfError::InvalidInput { .. })));
        assert!(!spooled.spool_path().exists(), "a refused call is not spooled");

        let (_dir, strict) = setup(true);
        assert!(matches!(strict.emit(&LineageEvent::new("a")), Err(WharfError::Backend { .. })));
        assert!(!strict.spool_path().exists());
    }

    #[test]
    fn an_explicit_replay_keeps_what_is_still_refused() {
        let (dir, spooled) = setup(false);
        spooled.emit(&LineageEvent::new("a")).expect("spooled");
        std::fs::write(
            spooled.spool_path(),
            format!(
                "{}\n{}\nnot json\n",
                serde_json::to_string(&LineageEvent::new("a")).unwrap(),
                serde_json::to_string(&LineageEvent::new("bad")).unwrap()
            ),
        )
        .unwrap();
        assert_eq!(spooled.replay().expect("down").remaining, 3, "nothing sent while down");
        spooled.inner().0.up.store(true, Ordering::SeqCst);
        let report = spooled.replay().expect("up");
        assert_eq!((report.sent, report.remaining), (1, 2), "the refused and the unreadable lines stay");
        assert_eq!(jobs(&dir.path().join("sink.jsonl")), ["a"]);
    }
}

//! The lineage side of the spool: any [`LineagePort`] gets failover as
//! `SpoolLayer::new(path, strict).layer(EmitLineage(port))`, itself a lineage port. One call
//! is one event; nothing to remember between calls.

use crate::ports::lineage::{LineageEvent, LineagePort};
use crate::{Result, WharfError};

use super::{Replay, Spooled};

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
    use crate::spool::{ReplayReport, SpoolLayer};
    use crate::FileLineage;
    use std::path::Path;
    use std::sync::atomic::{AtomicBool, Ordering};

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

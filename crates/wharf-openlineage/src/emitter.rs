//! `OpenLineageEmitter`: the [`LineagePort`] that speaks OpenLineage.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::config::OpenLineageConfig;
use wharf_core::fsutil::append_line;
use wharf_core::{LineageEvent, LineagePort, Result, WharfError};

use crate::event::RunEvent;
use crate::mapping::to_run_event;
use crate::transport::{json_line, print_line, SendError, Transport, ADAPTER};

/// Emits every [`LineageEvent`] as an OpenLineage 2-0-2 RunEvent through a [`Transport`].
///
/// # Failure policy
///
/// Lineage must not take production down with it: when the receiver cannot be reached or
/// refuses an event, the event is appended to the spool file (`spool_path`) and `emit`
/// succeeds, with one warning logged per emitter (later failures log at debug level);
/// [`replay`](Self::replay) (the `wharf lineage replay` command) sends the spool later.
/// With `strict = true` the failure is returned instead. Either way no event is dropped
/// silently, as the [`LineagePort`] contract requires. A spool that cannot be written is
/// always an error.
pub struct OpenLineageEmitter {
    namespace: String,
    transport: Transport,
    strict: bool,
    spool: PathBuf,
    warned: AtomicBool,
}

impl std::fmt::Debug for OpenLineageEmitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenLineageEmitter")
            .field("namespace", &self.namespace)
            .field("transport", &self.transport)
            .field("strict", &self.strict)
            .field("spool", &self.spool)
            .finish()
    }
}

/// What [`OpenLineageEmitter::replay`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// Events the receiver took.
    pub sent: usize,
    /// Events still in the spool (refused, unreadable, or not tried once the receiver
    /// proved unreachable).
    pub remaining: usize,
}

impl OpenLineageEmitter {
    /// The emitter `config` (`[lineage.openlineage]`) describes. Invalid settings are
    /// [`WharfError::Config`] errors naming the key, raised here so a container fails when
    /// it is built, not at the first event.
    pub fn from_config(config: &OpenLineageConfig) -> Result<OpenLineageEmitter> {
        let namespace = config.namespace.trim();
        if namespace.is_empty() {
            return Err(WharfError::config("lineage.openlineage.namespace", "must not be empty"));
        }
        Ok(OpenLineageEmitter {
            namespace: namespace.to_string(),
            transport: Transport::from_config(config)?,
            strict: config.strict,
            spool: config.spool_path.clone(),
            warned: AtomicBool::new(false),
        })
    }

    /// The namespace jobs are reported in.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The transport in use.
    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// The spool file of undelivered events.
    pub fn spool_path(&self) -> &Path {
        &self.spool
    }

    /// The RunEvent `event` maps to (what [`emit`](LineagePort::emit) sends).
    pub fn to_run_event(&self, event: &LineageEvent) -> Result<RunEvent> {
        to_run_event(event, &self.namespace)
    }

    /// Sends `event` through the transport, with no spooling: the error is the caller's.
    pub fn send(&self, event: &RunEvent) -> Result<()> {
        self.deliver(event).map_err(|e| match e {
            Delivery::Http(e) => backend_error(e),
            Delivery::Local(e) => e,
        })
    }

    fn deliver(&self, event: &RunEvent) -> std::result::Result<(), Delivery> {
        match &self.transport {
            Transport::Http(http) => http.send(event).map_err(Delivery::Http),
            Transport::File(path) => {
                append_line(path, &json_line(event).map_err(Delivery::Local)?).map_err(Delivery::Local)
            }
            Transport::Console => print_line(&json_line(event).map_err(Delivery::Local)?).map_err(Delivery::Local),
        }
    }

    /// Sends every spooled event, oldest first. Delivered events leave the spool; the rest
    /// stay for the next replay. Stops trying (keeping the rest) as soon as the receiver
    /// proves unreachable.
    pub fn replay(&self) -> Result<ReplayReport> {
        // Take the spool aside first so emitters appending meanwhile are not lost; a
        // leftover from an interrupted replay is picked up again.
        let taken = self.spool.with_extension("replaying");
        if !taken.exists() {
            match std::fs::rename(&self.spool, &taken) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ReplayReport::default()),
                Err(e) => return Err(WharfError::io(&self.spool, e)),
            }
        }
        let text = std::fs::read_to_string(&taken).map_err(|e| WharfError::io(&taken, e))?;
        let mut report = ReplayReport::default();
        let mut give_up = false;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            if !give_up {
                match serde_json::from_str::<RunEvent>(line) {
                    Ok(event) => match self.deliver(&event) {
                        Ok(()) => {
                            report.sent += 1;
                            continue;
                        }
                        Err(Delivery::Http(e)) => {
                            give_up = e.is_transient();
                            tracing::warn!(error = %e, "openlineage replay: event not delivered, kept in the spool");
                        }
                        Err(Delivery::Local(e)) => return Err(e),
                    },
                    Err(e) => tracing::warn!(error = %e, "openlineage replay: unreadable spool line kept"),
                }
            }
            append_line(&self.spool, line)?;
            report.remaining += 1;
        }
        std::fs::remove_file(&taken).map_err(|e| WharfError::io(&taken, e))?;
        Ok(report)
    }

    fn spool_event(&self, event: &RunEvent, error: &SendError) -> Result<()> {
        append_line(&self.spool, &json_line(event)?)?;
        if !self.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                %error,
                spool = %self.spool.display(),
                "openlineage: event not delivered; spooled for `wharf lineage replay` (further failures log at debug)"
            );
        } else {
            tracing::debug!(%error, "openlineage: event spooled");
        }
        Ok(())
    }
}

/// Why a delivery failed: the receiver (spoolable) or something local (always an error).
enum Delivery {
    Http(SendError),
    Local(WharfError),
}

fn backend_error(e: SendError) -> WharfError {
    WharfError::backend(ADAPTER, e.to_string(), Some(Box::new(e)))
}

impl LineagePort for OpenLineageEmitter {
    fn name(&self) -> &str {
        ADAPTER
    }

    fn emit(&self, event: &LineageEvent) -> Result<()> {
        let run_event = self.to_run_event(event)?;
        match self.deliver(&run_event) {
            Ok(()) => Ok(()),
            Err(Delivery::Local(e)) => Err(e),
            Err(Delivery::Http(e)) if self.strict => Err(backend_error(e)),
            Err(Delivery::Http(e)) => self.spool_event(&run_event, &e),
        }
    }
}

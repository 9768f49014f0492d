//! `OpenLineageEmitter`: the [`LineagePort`] that speaks OpenLineage.

use std::path::Path;

use crate::config::OpenLineageConfig;
use wharf_core::fsutil::append_line;
use wharf_core::spool::{Replay, SpoolLayer, Spooled};
use wharf_core::{LineageEvent, LineagePort, Result, WharfError};

use crate::event::RunEvent;
use crate::mapping::to_run_event;
use crate::transport::{json_line, print_line, SendError, Transport, ADAPTER};

/// Emits every [`LineageEvent`] as an OpenLineage 2-0-2 RunEvent through a [`Transport`].
///
/// # Failure policy
///
/// Lineage must not take production down with it: when the receiver cannot be reached,
/// fails or refuses an event, the event is appended to the spool file (`spool_path`) and
/// `emit` succeeds, with one warning logged per emitter (later failures log at debug
/// level); the next event, or [`replay`](Self::replay) (the `wharf lineage replay`
/// command), sends the spool first, in order. With `strict = true` the failure is returned
/// instead. No event is dropped silently, as the [`LineagePort`] contract requires.
/// The policy is the core's [`Spooled`] decorator; this type only says how to send.
pub struct OpenLineageEmitter {
    spooled: Spooled<Sender>,
}

/// The spool's view of the emitter: one RunEvent per call, sent through the transport.
struct Sender {
    namespace: String,
    transport: Transport,
}

impl std::fmt::Debug for OpenLineageEmitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sender = self.spooled.inner();
        f.debug_struct("OpenLineageEmitter")
            .field("namespace", &sender.namespace)
            .field("transport", &sender.transport)
            .field("strict", &self.spooled.is_strict())
            .field("spool", &self.spooled.spool_path())
            .finish()
    }
}

/// What [`OpenLineageEmitter::replay`] did.
pub use wharf_core::spool::ReplayReport;

impl OpenLineageEmitter {
    /// The emitter `config` (`[lineage.openlineage]`) describes. Invalid settings are
    /// [`WharfError::Config`] errors naming the key, raised here so a container fails when
    /// it is built, not at the first event.
    pub fn from_config(config: &OpenLineageConfig) -> Result<OpenLineageEmitter> {
        let namespace = config.namespace.trim();
        if namespace.is_empty() {
            return Err(WharfError::config("lineage.openlineage.namespace", "must not be empty"));
        }
        let sender = Sender { namespace: namespace.to_string(), transport: Transport::from_config(config)? };
        Ok(OpenLineageEmitter { spooled: SpoolLayer::new(&config.spool_path, config.strict).layer(sender) })
    }

    /// The namespace jobs are reported in.
    pub fn namespace(&self) -> &str {
        &self.spooled.inner().namespace
    }

    /// The transport in use.
    pub fn transport(&self) -> &Transport {
        &self.spooled.inner().transport
    }

    /// The spool file of undelivered events.
    pub fn spool_path(&self) -> &Path {
        self.spooled.spool_path()
    }

    /// The RunEvent `event` maps to (what [`emit`](LineagePort::emit) sends).
    pub fn to_run_event(&self, event: &LineageEvent) -> Result<RunEvent> {
        to_run_event(event, self.namespace())
    }

    /// Sends `event` through the transport, with no spooling: the error is the caller's.
    pub fn send(&self, event: &RunEvent) -> Result<()> {
        self.spooled.inner().send(event)
    }

    /// Sends every spooled event, oldest first. Delivered events leave the spool; the rest
    /// stay for the next replay. Stops trying (keeping the rest) as soon as the receiver
    /// proves unreachable.
    pub fn replay(&self) -> Result<ReplayReport> {
        self.spooled.replay()
    }
}

impl Replay for Sender {
    type Call = RunEvent;

    fn send(&self, event: &RunEvent) -> Result<()> {
        match &self.transport {
            Transport::Http(http) => http.send(event).map_err(backend_error),
            Transport::File(path) => append_line(path, &json_line(event)?),
            Transport::Console => print_line(&json_line(event)?),
        }
    }

    /// The receiver was unreachable or kept failing: the event may go through later.
    fn is_unavailable(&self, err: &WharfError) -> bool {
        send_error(err).is_some_and(SendError::is_transient)
    }

    /// Everything the receiver did not take is kept, refusals too: a refused event is
    /// usually a receiver misconfigured (a wrong key), and replays once that is fixed.
    fn is_spoolable(&self, err: &WharfError) -> bool {
        send_error(err).is_some()
    }
}

fn send_error(err: &WharfError) -> Option<&SendError> {
    match err {
        WharfError::Backend { source: Some(source), .. } => source.downcast_ref::<SendError>(),
        _ => None,
    }
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
        self.spooled.call(&run_event)
    }
}

//! # wharf-ballista
//!
//! Wharf's SQL scoring functions (`wharf_predict`, `wharf_predict_proba`, from
//! [`wharf_datafusion`]) on an [Apache DataFusion Ballista](https://datafusion.apache.org/ballista/)
//! cluster: the same query that `wharf sql` runs on one machine, spread over the executors of a
//! cluster, one task per file partition.
//!
//! Ballista's stock `ballista-scheduler` and `ballista-executor` binaries cannot run these
//! functions, because a query crosses three processes and each must know them:
//!
//! 1. the **client** plans the SQL into a logical plan, so it resolves `wharf_predict` (and
//!    checks the model, the arity and the argument types) before anything is sent;
//! 2. the **scheduler** decodes that logical plan against its own session, so the functions
//!    must be registered in the session its builder makes ([`session_state`]), and it plans
//!    again, with the model;
//! 3. each **executor** decodes the physical plan of its tasks against its function registry
//!    ([`function_registry`]) and scores the batches.
//!
//! This crate builds each of those from one model registry (a shared directory, or MLflow with
//! the `mlflow` feature), and the `wharf-ballista` binary runs the scheduler
//! (`wharf-ballista scheduler`) and the executors (`wharf-ballista executor`) with them.
//! Every process loads a model through the registry the first time a query names it and
//! keeps it for the life of the process.
//!
//! **Model versions on a cluster.** Each process resolves a reference on its own, the first
//! time it sees it, and then keeps that version. An alias moved while the cluster runs is
//! therefore seen by a process started afterwards but not by one that already loaded it. Name
//! an exact version (`'lead@3'`) in queries sent to a long-lived cluster, or restart it after
//! moving an alias. (A type change is caught: an executor whose model would return another
//! type than the plan fails the task rather than score into it.)
//!
//! For tests and embedders, [`standalone`] starts an in-process scheduler and executor: the
//! plan still crosses the serialization boundary between them, as on a real cluster.
//!
//! ```no_run
//! # async fn example(registry: std::sync::Arc<dyn wharf_core::RegistryPort>) -> wharf_ballista::Result<()> {
//! // A client of a running cluster (`wharf-ballista scheduler` on port 50050).
//! let (ctx, _udfs) = wharf_ballista::remote("df://127.0.0.1:50050", registry).await?;
//! ctx.register_parquet("leads", "/data/leads/", Default::default()).await?;
//! let batches = ctx
//!     .sql("SELECT lead_id, wharf_predict('lead@3', source, industry, pages_viewed, minutes_on_site, \
//!           emails_opened, company_size, days_since_signup) AS label FROM leads")
//!     .await?
//!     .collect()
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! The crate re-exports the Ballista crates and [`wharf_datafusion`] (with the `datafusion` it
//! is built with) at the versions it uses: Ballista and DataFusion types only mix within one
//! major version, so use these rather than your own.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

use std::sync::Arc;

use ballista::prelude::SessionContextExt;
use ballista_core::extension::SessionConfigExt;
use ballista_core::registry::BallistaFunctionRegistry;
use ballista_core::utils::default_session_builder;
use datafusion::execution::{SessionState, SessionStateBuilder};
use datafusion::prelude::{SessionConfig, SessionContext};
use wharf_core::{Container, LocalModelServer, NoOpLineage, NoOpTracker, RegistryPort, WharfConfig, WharfError};
use wharf_datafusion::datafusion;
use wharf_datafusion::WharfUdfs;

pub use ballista;
pub use ballista_core;
pub use ballista_executor;
pub use ballista_scheduler;
pub use wharf_datafusion;

mod error;
pub mod executor;
pub mod scheduler;

pub use error::{Error, Result};
pub use executor::ExecutorOptions;
pub use scheduler::SchedulerOptions;

/// The model registry `config` names (`registry.backend`, `registry.dir`, …), as `wharf` builds
/// it: the shared directory of the `file` backend, or MLflow with this crate's `mlflow` feature.
///
/// Only the registry is built: the scheduler and executors track no runs and emit no lineage,
/// so a `tracking` or `lineage` backend this binary was not built with is not an error here.
pub fn registry_from_config(config: &WharfConfig) -> std::result::Result<Arc<dyn RegistryPort>, WharfError> {
    // The facade's one list of adapters, so this binary knows the same backends `wharf` does.
    let catalog = wharf::adapter_catalog();
    let container = Container::builder()
        .tracker(NoOpTracker::new())
        .lineage(NoOpLineage::new())
        .model_server(LocalModelServer::new())
        .build(config, &catalog)?;
    Ok(Arc::clone(container.registry()))
}

/// The session Ballista's scheduler would build for `config`, with Wharf's functions
/// registered: what the scheduler's session builder returns for every client session, so the
/// logical plans clients send resolve `wharf_predict` there.
pub fn session_state(udfs: &WharfUdfs, config: SessionConfig) -> datafusion::common::Result<SessionState> {
    let mut state = default_session_builder(config)?;
    udfs.register_with(&mut state)?;
    Ok(state)
}

/// Ballista's default function registry (DataFusion's built-in functions) plus Wharf's: what an
/// executor decodes the physical plans of its tasks against.
pub fn function_registry(udfs: &WharfUdfs) -> BallistaFunctionRegistry {
    let mut registry = BallistaFunctionRegistry::default();
    for udf in udfs.udfs() {
        registry.scalar_functions.insert(udf.name().to_string(), Arc::new(udf));
    }
    registry
}

/// A session state with DataFusion's defaults, Ballista's configuration and Wharf's
/// functions. The in-process cluster of [`standalone`] takes its scheduler's session and its
/// executor's function registry from it.
fn client_state(udfs: &WharfUdfs, config: SessionConfig) -> datafusion::common::Result<SessionState> {
    let mut state =
        SessionStateBuilder::new().with_default_features().with_config(config.upgrade_for_ballista()).build();
    udfs.register_with(&mut state)?;
    Ok(state)
}

/// Registers Wharf's functions on a client context, so SQL naming them plans on the client,
/// and lets file paths be tables. Needed after Ballista made the context: turning a session
/// state into a Ballista client one replaces its scalar functions with Ballista's list.
fn with_udfs(ctx: SessionContext, udfs: &WharfUdfs) -> SessionContext {
    for udf in udfs.udfs() {
        ctx.register_udf(udf);
    }
    ctx.enable_url_table()
}

/// An in-process Ballista cluster (one scheduler and one executor, on a free loopback port)
/// whose processes all resolve models through `registry`, and a session on it with Wharf's
/// functions. Queries are planned, serialized to the scheduler, planned again, split into
/// tasks and serialized to the executor, as on a real cluster.
///
/// The cluster lives as long as the current tokio runtime. Returns the functions' handle too
/// (see [`WharfUdfs::refresh`]); every part of the in-process cluster shares its cache.
pub async fn standalone(registry: Arc<dyn RegistryPort>) -> Result<(SessionContext, WharfUdfs)> {
    standalone_with_config(registry, SessionConfig::new()).await
}

/// [`standalone`] with a session configuration: `with_target_partitions(n)` to split a scan
/// into more tasks, `with_ballista_standalone_parallelism(n)` for the executor's task slots.
pub async fn standalone_with_config(
    registry: Arc<dyn RegistryPort>,
    config: SessionConfig,
) -> Result<(SessionContext, WharfUdfs)> {
    let udfs = WharfUdfs::new(registry);
    let state = client_state(&udfs, config)?;
    let ctx = SessionContext::standalone_with_state(state).await?;
    Ok((with_udfs(ctx, &udfs), udfs))
}

/// A session on the Ballista cluster whose scheduler is at `url` (`df://HOST:PORT`), with
/// Wharf's functions resolving models through `registry` for planning.
///
/// The client plans each query itself, so it needs the same models as the cluster: point it
/// at the registry the scheduler and executors use. A model that is unknown (or a call of the
/// wrong shape) fails here, at plan time, naming the model; one the client knows but the
/// scheduler does not fails when the scheduler plans the job, with the scheduler's message.
pub async fn remote(url: &str, registry: Arc<dyn RegistryPort>) -> Result<(SessionContext, WharfUdfs)> {
    remote_with_config(url, registry, SessionConfig::new()).await
}

/// [`remote`] with a session configuration (sent with each query to the scheduler).
pub async fn remote_with_config(
    url: &str,
    registry: Arc<dyn RegistryPort>,
    config: SessionConfig,
) -> Result<(SessionContext, WharfUdfs)> {
    reachable(url).await?;
    let udfs = WharfUdfs::new(registry);
    let state = client_state(&udfs, config)?;
    let ctx = SessionContext::remote_with_state(url, state).await?;
    Ok((with_udfs(ctx, &udfs), udfs))
}

/// Fails, naming the scheduler, unless something accepts connections at `url`'s host and
/// port. Ballista connects only when the first query runs, and its error then is a transport
/// error several layers deep; this says plainly what is wrong, when the session is made.
async fn reachable(url: &str) -> Result<()> {
    let parsed = url::Url::parse(url).map_err(|e| Error::Config(format!("'{url}' is not a scheduler URL: {e}")))?;
    let host = parsed
        .host_str()
        .ok_or_else(|| Error::Config(format!("'{url}' names no host (use df://HOST:PORT)")))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    // Ballista's own default when the URL has no port.
    let port = parsed.port().unwrap_or(50050);
    match tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect((host.as_str(), port))).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(Error::Config(format!("cannot reach the scheduler at {host}:{port}: {e}"))),
        Err(_) => Err(Error::Config(format!(
            "cannot reach the scheduler at {host}:{port}: no answer in {} s",
            CONNECT_TIMEOUT.as_secs()
        ))),
    }
}

/// How long [`remote`] waits for the scheduler to accept a connection.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

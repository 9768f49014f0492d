//! # wharf-ui
//!
//! `wharf ui`: a small web app to look at what Wharf recorded — runs and their metric
//! histories, registered models with their cards, and the lineage graph — on whatever ports
//! the configuration selects. It reads only through [`TrackerPort`], [`RegistryPort`] and
//! [`LineagePort`], so it shows the same on the file defaults as on MLflow.
//!
//! Pages are rendered on the server: HTML with inline CSS and SVG charts drawn by
//! `wharf-report`'s plotting code, no JavaScript and nothing fetched, so it works offline.
//! Every page has a JSON twin (`?format=json`) for scripts. Charts follow the card's
//! convention: each is a `<figure data-plot="ID" data-points="N">`.
//!
//! ```no_run
//! # async fn demo() -> wharf_core::Result<()> {
//! use std::sync::Arc;
//! use wharf_core::{FileLineage, FileRegistry, FileTracker};
//! use wharf_ui::{Ui, UiOptions};
//! let ui = Ui::new(
//!     Arc::new(FileTracker::new("wharf-runs")),
//!     Arc::new(FileRegistry::new("wharf-registry")),
//!     Arc::new(FileLineage::new("wharf-lineage.jsonl")),
//! );
//! wharf_ui::serve(ui, UiOptions::default()).await?;
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod auth;
mod charts;
mod error;
mod html;
mod lineage;
mod models;
mod runs;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use wharf_core::{LineagePort, RegistryPort, Result, TrackerPort, WharfError};

pub use error::UiError;

/// The address `wharf ui` listens on unless told otherwise: loopback only.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8090";

/// The ports the UI reads.
#[derive(Clone)]
pub struct Ui {
    tracker: Arc<dyn TrackerPort>,
    registry: Arc<dyn RegistryPort>,
    lineage: Arc<dyn LineagePort>,
}

impl std::fmt::Debug for Ui {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ui")
            .field("tracker", &self.tracker.name())
            .field("registry", &self.registry.name())
            .field("lineage", &self.lineage.name())
            .finish()
    }
}

impl Ui {
    /// A UI over these ports.
    pub fn new(tracker: Arc<dyn TrackerPort>, registry: Arc<dyn RegistryPort>, lineage: Arc<dyn LineagePort>) -> Self {
        Ui { tracker, registry, lineage }
    }

    /// Runs `read` on a blocking thread: ports do file or network I/O, which must not stall
    /// the server's event loop (listing 10,000 runs reads 10,000 files).
    async fn read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&Ui) -> std::result::Result<T, UiError> + Send + 'static,
    ) -> std::result::Result<T, UiError> {
        let ui = self.clone();
        tokio::task::spawn_blocking(move || read(&ui))
            .await
            .map_err(|e| UiError::Internal(format!("a page's read stopped: {e}")))?
    }
}

/// How `wharf ui` listens.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct UiOptions {
    /// `host:port`; [`DEFAULT_ADDR`] by default.
    pub addr: String,
    /// A bearer token every request must present (header, or once as `?token=` in a
    /// browser, which then keeps it in a cookie). Required on any interface but loopback.
    pub token: Option<String>,
}

impl Default for UiOptions {
    fn default() -> Self {
        UiOptions { addr: DEFAULT_ADDR.to_string(), token: None }
    }
}

impl UiOptions {
    /// Listens on `addr`.
    pub fn addr(mut self, addr: impl Into<String>) -> Self {
        self.addr = addr.into();
        self
    }
    /// Requires `token`.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }
}

/// The app's routes, for embedding or for tests (`tower::ServiceExt::oneshot`). No token is
/// checked here: [`serve`] adds that.
pub fn router(ui: Ui) -> Router {
    Router::new()
        .route("/", get(runs::index))
        .route("/runs", get(runs::list))
        .route("/runs/{id}", get(runs::detail))
        .route("/compare", get(runs::compare))
        .route("/models", get(models::list))
        .route("/models/{name}", get(models::detail))
        .route("/models/{name}/{version}/card", get(models::card))
        .route("/lineage", get(lineage::graph))
        .route("/lineage/node", get(lineage::node))
        .fallback(error::not_found)
        .layer(axum::middleware::map_response(error::as_page))
        .layer(axum::middleware::from_fn(error::json_errors))
        .with_state(ui)
}

/// Checks where the UI may listen: loopback is open; any other interface needs a token, so
/// runs and models are never exposed to a network by accident.
///
/// # Errors
/// An address that does not parse, or a non-loopback one without a token.
pub fn check_bind(options: &UiOptions) -> Result<SocketAddr> {
    let addr: SocketAddr = options
        .addr
        .parse()
        .map_err(|e| WharfError::invalid("addr", format!("'{}' is not host:port ({e})", options.addr)))?;
    let has_token = options.token.as_deref().is_some_and(|t| !t.trim().is_empty());
    if !addr.ip().is_loopback() && !has_token {
        return Err(WharfError::invalid(
            "addr",
            format!(
                "{addr} is not a loopback address: set a token (WHARF_UI_TOKEN, or serving.admin_token) \
                 before exposing runs and models to a network"
            ),
        ));
    }
    Ok(addr)
}

/// Serves the UI on `options.addr` until the process is stopped.
///
/// # Errors
/// See [`check_bind`]; also an address that cannot be bound.
pub async fn serve(ui: Ui, options: UiOptions) -> Result<()> {
    let addr = check_bind(&options)?;
    let mut app = router(ui);
    if let Some(token) = options.token.as_deref().filter(|t| !t.trim().is_empty()) {
        let tokens = auth::Token::new(token);
        app = app.layer(axum::middleware::from_fn(move |req: Request, next: Next| {
            let tokens = tokens.clone();
            async move { tokens.check(req, next).await }
        }));
    }
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| WharfError::io(addr.to_string(), e))?;
    let local = listener.local_addr().map_err(|e| WharfError::io(addr.to_string(), e))?;
    tracing::info!(addr = %local, "wharf ui listening");
    eprintln!("wharf ui: http://{local}/");
    axum::serve(listener, app).with_graceful_shutdown(stopped()).await.map_err(|e| WharfError::io(local.to_string(), e))
}

/// Resolves on Ctrl-C, or SIGTERM (what a service manager or container runtime sends).
async fn stopped() {
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(term) => term,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// [`serve`] on a runtime of its own, for a program that has none (the `wharf` command).
///
/// # Errors
/// As [`serve`]; also a runtime that cannot start.
pub fn run(ui: Ui, options: UiOptions) -> Result<()> {
    check_bind(&options)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| WharfError::io("tokio runtime", e))?;
    runtime.block_on(serve(ui, options))
}

/// A response to a request, HTML or its JSON twin.
pub(crate) type Page = std::result::Result<Response, UiError>;

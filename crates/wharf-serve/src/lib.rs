//! # wharf-serve
//!
//! Serves any number of registered models over HTTP, each by name and version or alias:
//! health probes that predict each model's bundled sample input for real, a catalog with JSON
//! Schemas generated from each signature, predict / predict_proba / score endpoints that
//! answer every client mistake with a 4xx `application/problem+json` naming the field, an
//! OpenAPI 3.1 document with an offline Swagger UI, Prometheus metrics, and atomic reloads.
//!
//! It is built to face clients it cannot trust: every connection has a header-read and an
//! idle timeout and a place under a cap (idle ones make room), scoring past a concurrency
//! limit is answered 503 rather than queued, large `records` bodies are read without a JSON
//! tree, and bearer tokens (two scopes) and TLS with optional client certificates are a
//! setting away ([`ServeOptions`]).
//!
//! Each served version is scored by a model server of its own, made by a
//! [`wharf_core::ModelServers`] factory ([`ModelsBuilder::servers`]; in process by default,
//! `Wharf::model_servers()` follows `serving.backend`), and every endpoint scores through the
//! one scoring path, [`wharf_core::score`]. Ports are synchronous, so predictions that may
//! take a while run on tokio's blocking pool and never stall the reactor.
//!
//! ```no_run
//! use std::sync::Arc;
//! use wharf_core::{FileRegistry, ModelRef};
//! use wharf_serve::{ModelsBuilder, ServeOptions};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let models = ModelsBuilder::new()
//!     .registry(Arc::new(FileRegistry::new("wharf-registry")))
//!     .model("lead@champion".parse::<ModelRef>()?)
//!     .build()?;
//! let server = wharf_serve::spawn(models, ServeOptions::default(), "127.0.0.1:0")?;
//! println!("serving on http://{}", server.addr());
//! server.shutdown();
//! # Ok(()) }
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::{get, post, MethodRouter};
use axum::Router;
use tower::Layer;

mod auth;
mod batch;
mod connections;
mod deadline;
mod follow;
mod front;
mod input;
mod limits;
pub mod metrics;
mod number;
pub mod problem;
mod process;
mod protocol;
mod query;
mod records_body;
mod request_metrics;
mod routes;
pub mod schema;
mod sent;
mod shadow;
pub mod state;
mod tls;
mod token_file;
mod watch;
pub mod watch_config;

pub use batch::MicroBatch;
pub use metrics::Metrics;
pub use problem::Problem;
pub use shadow::ShadowLog;
pub use state::{Loaded, Models, ModelsBuilder, ServedModel};
pub use tls::TlsFiles;
pub use watch::{DriftWatch, PredictionLog};

/// Server settings (the `[serving]` section of the configuration).
#[derive(Clone)]
pub struct ServeOptions {
    /// Largest request body in bytes; larger ones are answered 413.
    pub body_limit: usize,
    /// How long a request may take before it is answered 408.
    pub request_timeout: Duration,
    /// Bearer token of the admin endpoints; `None` disables them. It may also score.
    pub admin_token: Option<String>,
    /// Bearer tokens (or `X-API-Key` values) of the catalog and scoring endpoints; empty
    /// (the default) leaves them open.
    pub scoring_tokens: Vec<String>,
    /// How often to look for moved aliases in the registry and reload; `None`: only on
    /// `POST /admin/models/{name}/reload`.
    pub reload_interval: Option<Duration>,
    /// Micro-batching of concurrent single-row predict requests; `None` (the default): off.
    pub micro_batch: Option<MicroBatch>,
    /// Longest a new connection may take to send its first request's headers.
    pub header_read_timeout: Duration,
    /// Longest a keep-alive connection may sit with no request in flight.
    pub idle_timeout: Duration,
    /// Most connections open at once (lowered at start to fit the open-file limit).
    pub max_connections: usize,
    /// Most predict/score requests in progress at once; more are answered 503.
    pub max_concurrent_scoring: usize,
    /// HTTPS from PEM files (and mTLS with a client CA); `None` (the default): plain HTTP.
    pub tls: Option<TlsFiles>,
    /// Where shadowed challengers' answers are logged ([`ModelsBuilder::shadow`]).
    pub shadow_log: ShadowLog,
    /// The model (`NAME` or `NAME@VERSION|@ALIAS`) MLflow's `POST /invocations` scores when
    /// the request names none in `X-Wharf-Model`; `None`: the only model served.
    pub default_model: Option<String>,
    /// The prediction log (off unless its sample is above 0).
    pub prediction_log: PredictionLog,
    /// Live drift against each version's training profile.
    pub drift: DriftWatch,
}

impl std::fmt::Debug for ServeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The admin token is a secret: never print it.
        f.debug_struct("ServeOptions")
            .field("body_limit", &self.body_limit)
            .field("request_timeout", &self.request_timeout)
            .field("admin_token", &self.admin_token.as_ref().map(|_| "***"))
            .field("scoring_tokens", &format_args!("{} configured", self.scoring_tokens.len()))
            .field("reload_interval", &self.reload_interval)
            .field("micro_batch", &self.micro_batch)
            .field("header_read_timeout", &self.header_read_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("max_connections", &self.max_connections)
            .field("max_concurrent_scoring", &self.max_concurrent_scoring)
            .field("tls", &self.tls)
            .field("shadow_log", &self.shadow_log)
            .field("default_model", &self.default_model)
            .field("prediction_log", &self.prediction_log)
            .field("drift", &self.drift)
            .finish()
    }
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            body_limit: 16 * 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            admin_token: None,
            scoring_tokens: Vec::new(),
            reload_interval: None,
            micro_batch: None,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 10_000,
            max_concurrent_scoring: 64,
            tls: None,
            shadow_log: ShadowLog::default(),
            default_model: None,
            prediction_log: PredictionLog::default(),
            drift: DriftWatch::default(),
        }
    }
}

impl ServeOptions {
    /// The options a configuration's `[serving]` section asks for, with the token files
    /// (`admin_token_file`, `scoring_tokens_file`) read: what `wharf serve` starts with.
    ///
    /// # Errors
    /// A token file that cannot be read, is empty or larger than 1 MiB, or an admin token
    /// given both inline and as a file (which one wins would be a guess).
    pub fn load(config: &wharf_core::config::ServingConfig) -> Result<Self, wharf_core::WharfError> {
        let mut options = Self::from_config(config);
        if let Some(path) = &config.admin_token_file {
            const KEY: &str = "serving.admin_token_file";
            if options.admin_token.is_some() {
                return Err(wharf_core::WharfError::config(
                    KEY,
                    "set serving.admin_token or serving.admin_token_file, not both",
                ));
            }
            let mut tokens = token_file::read(KEY, path)?;
            if tokens.len() > 1 {
                return Err(wharf_core::WharfError::config(
                    KEY,
                    format!("{} holds {} tokens; the admin scope takes one", path.display(), tokens.len()),
                ));
            }
            options.admin_token = tokens.pop();
        }
        if let Some(path) = &config.scoring_tokens_file {
            options.scoring_tokens.extend(token_file::read("serving.scoring_tokens_file", path)?);
        }
        options.prediction_log = watch_config::prediction_log(config)?;
        options.drift = watch_config::drift(config)?;
        Ok(options)
    }

    /// The options a configuration's `[serving]` section asks for, token files not read
    /// (see [`ServeOptions::load`]).
    pub fn from_config(config: &wharf_core::config::ServingConfig) -> Self {
        ServeOptions {
            body_limit: usize::try_from(config.body_limit_bytes).unwrap_or(usize::MAX),
            request_timeout: Duration::from_millis(config.request_timeout_ms.max(1)),
            admin_token: config.admin_token.clone().filter(|t| !t.is_empty()),
            scoring_tokens: config.scoring_tokens.iter().filter(|t| !t.is_empty()).cloned().collect(),
            reload_interval: Some(config.reload_interval_ms).filter(|ms| *ms > 0).map(Duration::from_millis),
            micro_batch: (config.micro_batch_max_rows > 0).then(|| MicroBatch {
                max_rows: usize::try_from(config.micro_batch_max_rows).unwrap_or(usize::MAX),
                wait: Duration::from_micros(config.micro_batch_wait_us),
            }),
            header_read_timeout: Duration::from_millis(config.header_read_timeout_ms.max(1)),
            idle_timeout: Duration::from_millis(config.idle_timeout_ms.max(1)),
            max_connections: usize::try_from(config.max_connections.max(1)).unwrap_or(usize::MAX),
            max_concurrent_scoring: usize::try_from(config.max_concurrent_scoring.max(1)).unwrap_or(usize::MAX),
            // Any TLS key asks for TLS; one missing is an error at start, not plain HTTP.
            tls: (config.tls_cert.is_some() || config.tls_key.is_some() || config.tls_client_ca.is_some()).then(|| {
                TlsFiles {
                    cert: config.tls_cert.clone().unwrap_or_default(),
                    key: config.tls_key.clone().unwrap_or_default(),
                    client_ca: config.tls_client_ca.clone(),
                }
            }),
            shadow_log: ShadowLog { dir: config.shadow_log.clone(), ..ShadowLog::default() },
            default_model: config.default_model.clone().filter(|m| !m.is_empty()),
            prediction_log: PredictionLog::default(),
            drift: DriftWatch::default(),
        }
    }
}

/// What the handlers share.
pub struct App {
    /// The served models.
    pub models: Models,
    /// Settings.
    pub options: ServeOptions,
    /// Metrics exposed at `/metrics`.
    pub metrics: Metrics,
    started: Instant,
    swagger: Arc<utoipa_swagger_ui::Config<'static>>,
    reload_lock: tokio::sync::Mutex<()>,
    batcher: Option<batch::Batcher>,
    /// Permits for scoring requests in progress (`max_concurrent_scoring`).
    scoring: Arc<tokio::sync::Semaphore>,
    admin_tokens: auth::Tokens,
    scoring_tokens: auth::Tokens,
    shadows: shadow::Shadows,
    watch: watch::Watch,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App").field("models", &self.models).field("options", &self.options).finish_non_exhaustive()
    }
}

/// Shared handle the handlers receive.
pub type AppState = Arc<App>;

/// Adds `path` and `path/`, so both spellings answer directly (no redirect).
fn both<S: Clone + Send + Sync + 'static>(router: Router<S>, path: &str, handler: MethodRouter<S>) -> Router<S> {
    router.route(path, handler.clone()).route(&format!("{path}/"), handler)
}

/// The application's router, for embedding in a larger axum app. (The registry poller of
/// `reload_interval` runs only under [`serve`].)
///
/// # Errors
/// The shadow log directory cannot be created or written, when a model has a shadow.
pub fn router(models: Models, options: ServeOptions) -> std::io::Result<Router> {
    Ok(Router::new().fallback_service(service_for(state(models, options)?)))
}

fn state(models: Models, options: ServeOptions) -> std::io::Result<AppState> {
    let shadows = shadow::Shadows::start(&models, &options.shadow_log)?;
    let watch = watch::Watch::start(&models, &options.prediction_log, options.drift)?;
    let metrics = Metrics::default();
    for served in &models.models {
        for slot in &served.slots {
            let loaded = slot.current();
            metrics.model_loaded(&served.name, loaded.version.0, loaded.load_seconds);
        }
    }
    Ok(Arc::new(App {
        models,
        metrics,
        started: Instant::now(),
        swagger: Arc::new(utoipa_swagger_ui::Config::from("/openapi.json")),
        reload_lock: tokio::sync::Mutex::new(()),
        batcher: options.micro_batch.map(batch::Batcher::new),
        scoring: Arc::new(tokio::sync::Semaphore::new(
            options.max_concurrent_scoring.clamp(1, tokio::sync::Semaphore::MAX_PERMITS),
        )),
        admin_tokens: auth::Tokens::new(&options.admin_token),
        scoring_tokens: auth::Tokens::new(&options.scoring_tokens),
        shadows,
        watch,
        options,
    }))
}

/// The application as one service: the front layer around the router. [`serve`] runs it as
/// it is; [`router`] wraps it in a `Router` for embedding, which costs a request one more
/// routing step and boxed future.
fn service_for(app: AppState) -> front::Front<Router> {
    let mut r = Router::new();
    r = both(r, "/livez", get(routes::health::livez));
    r = both(r, "/health/live", get(routes::health::livez));
    r = both(r, "/readyz", get(routes::health::readyz));
    r = both(r, "/healthz", get(routes::health::healthz));
    r = both(r, "/health", get(routes::health::healthz));
    r = both(r, "/health/uptime", get(routes::health::uptime));
    r = both(r, "/models/{name}/readyz", get(routes::health::model_readyz));
    r = protocol::v2::health_routes(r);
    let mut catalog = Router::new();
    catalog = both(catalog, "/models", get(routes::catalog::list_models));
    catalog = both(catalog, "/models/{name}", get(routes::catalog::model_info));
    catalog = both(catalog, "/models/{name}/predict_schema", get(routes::catalog::predict_schema));
    catalog = both(catalog, "/models/{name}/score_schema", get(routes::catalog::score_schema));
    catalog = both(catalog, "/models/{name}/drift", get(routes::watch::drift));
    catalog = protocol::v2::catalog_routes(catalog);
    let mut scoring = Router::new();
    scoring = both(scoring, "/models/{name}/predict", post(routes::predict::post_predict));
    scoring = both(scoring, "/models/{name}/predict_proba", post(routes::predict::post_predict_proba));
    scoring = both(scoring, "/models/{name}/score", post(routes::predict::post_score));
    scoring = both(scoring, "/models/{name}/feedback", post(routes::watch::feedback));
    scoring = protocol::mlflow::scoring_routes(protocol::v2::scoring_routes(scoring));
    // The concurrency limit is the handlers' first extractor (`limits::ScoringPermit`).
    // Authentication outermost, so an unauthenticated request never takes a permit; and only
    // when tokens are configured: with auth off a request pays for no extra layer.
    if !app.scoring_tokens.is_empty() {
        let require = || axum::middleware::from_fn_with_state(app.clone(), auth::require_scoring);
        scoring = scoring.route_layer(require());
        catalog = catalog.route_layer(require());
    }
    r = r.merge(catalog).merge(scoring);
    r = both(r, "/admin/models/{name}/reload", post(routes::admin::admin_reload));
    r = r
        .route("/metrics", get(routes::health::metrics))
        .route("/openapi.json", get(routes::docs::openapi))
        .route("/docs", get(routes::docs::docs_redirect))
        .route("/docs/", get(routes::docs::docs_index))
        .route("/docs/{*tail}", get(routes::docs::docs_asset));
    let r: Router = r
        .fallback(|| async { Problem::not_found("no such endpoint") })
        .method_not_allowed_fallback(|| async {
            Problem::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "Method not allowed",
                "this endpoint takes another method",
            )
        })
        .with_state(app.clone());
    // The front layer (which also sets the body limit) wraps the router once, as one
    // service, rather than through `Router::layer`, which wraps every route in each layer (a
    // boxed service and a mapped future per layer and request).
    front::FrontLayer::new(app).layer(r)
}

/// Serves until `shutdown` completes, then lets in-flight requests finish.
pub async fn serve(
    models: Models,
    options: ServeOptions,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_state(state(models, options)?, listener, shutdown).await
}

async fn serve_state(
    app: AppState,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let options = &app.options;
    if let Ok(addr) = listener.local_addr() {
        let names: Vec<&str> = app.models.models.iter().map(|m| m.name.as_str()).collect();
        tracing::info!(%addr, models = ?names, "wharf serve listening");
        for warning in auth::exposure_warnings(addr, options.scoring_tokens.is_empty(), options.tls.is_some()) {
            tracing::warn!("{}", "!".repeat(72));
            tracing::warn!("{warning}");
            tracing::warn!("{}", "!".repeat(72));
        }
        if !app.shadows.is_empty() {
            tracing::info!(dir = %options.shadow_log.dir.display(), "shadow log");
        }
        if app.watch.logs() {
            tracing::info!(dir = %app.watch.log_dir().display(), sample = options.prediction_log.sample, "prediction log");
        }
    }
    let tls = options.tls.as_ref().map(tls::acceptor).transpose()?;
    let poller =
        app.options.reload_interval.map(|every| tokio::spawn(routes::admin::poll_registry(app.clone(), every)));
    let limits = connections::Limits {
        header_read: app.options.header_read_timeout,
        idle: app.options.idle_timeout,
        max_connections: app.options.max_connections,
    };
    let result = connections::serve(listener, service_for(app), limits, tls, shutdown).await;
    if let Some(poller) = poller {
        poller.abort();
    }
    result
}

/// Completes on Ctrl-C or SIGTERM, for [`serve`]'s graceful shutdown.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

/// A server running on its own runtime thread (tests, embedding in synchronous programs).
#[derive(Debug)]
pub struct RunningServer {
    addr: SocketAddr,
    scheme: &'static str,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

impl RunningServer {
    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://addr`, or `https://addr` with TLS.
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// Stops accepting, waits for in-flight requests, and joins the thread.
    pub fn shutdown(mut self) -> std::io::Result<()> {
        self.stop_and_join()
    }

    fn stop_and_join(&mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(std::io::Error::other("server thread panicked")),
            None => Ok(()),
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        let _ = self.stop_and_join();
    }
}

/// Binds `addr` (port 0 picks a free port) and serves on a new thread with its own runtime.
pub fn spawn(models: Models, options: ServeOptions, addr: &str) -> std::io::Result<RunningServer> {
    // TLS files are checked here too, so a bad one is the caller's error, not the thread's.
    if let Some(files) = &options.tls {
        tls::acceptor(files)?;
    }
    let scheme = if options.tls.is_some() { "https" } else { "http" };
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    // Built here, so a shadow log that cannot be written is the caller's error too.
    let app = state(models, options)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::Builder::new().name("wharf-serve".into()).spawn(move || {
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener)?;
            serve_state(app, listener, async {
                let _ = stopped.await;
            })
            .await
        })
    })?;
    Ok(RunningServer { addr, scheme, stop: Some(stop), thread: Some(thread) })
}

/// Binds `addr` and serves until Ctrl-C or SIGTERM, then lets in-flight requests finish.
/// Blocking: it runs its own runtime (what `wharf serve` calls).
pub fn run(models: Models, options: ServeOptions, addr: &str) -> std::io::Result<()> {
    let app = state(models, options)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        serve_state(app, listener, shutdown_signal()).await
    })
}

/// Installs a `tracing` subscriber writing to stderr: JSON lines when `json`, else text.
/// The filter comes from `WHARF_LOG` (default `info`). A second call does nothing.
pub fn init_tracing(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("WHARF_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only for a person at a terminal; a log collector gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    // A log line that cannot be written (stderr piped to a reader that has gone) is lost,
    // never a reason to stop: tracing's own report of the failure goes to the same closed
    // stderr with `eprintln!`, which panics.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .log_internal_errors(false);
    let _ = if json { builder.json().try_init() } else { builder.try_init() };
}

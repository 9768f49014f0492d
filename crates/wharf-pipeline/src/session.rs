//! Sessions: each owns its models, so concurrent runs for different sessions never share one.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use serde::Serialize;
use wharf_core::{Model, ModelServerExt, ModelServerPort, ModelServers, WharfError};
use wharf_ml::{Dataset, Trainer};

/// Why a session could not serve a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// No open session has this id (it was never opened, or was closed).
    #[error("session '{session}' is unavailable")]
    Unavailable {
        /// The session id asked for.
        session: String,
    },
    /// The session holds no model with this id; another session's model is never used in
    /// its place.
    #[error("model '{model}' not found in session '{session}'")]
    ModelNotFound {
        /// The session asked.
        session: String,
        /// The model id asked for.
        model: String,
    },
    /// No model id was given to score with.
    #[error("no model_id provided")]
    NoModelId,
}

/// What training in a session reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrainReport {
    /// The new model's id, unique across sessions.
    pub model_id: String,
    /// Class labels (empty unless a classifier).
    pub classes: Vec<String>,
    /// Number of input features.
    pub n_features: usize,
    /// Accuracy on the training data, rounded to 4 places (classifiers only).
    pub accuracy: Option<f64>,
    /// The session that holds the model.
    pub worker_id: String,
    /// Training rows.
    pub n_samples: usize,
}

/// One entry of a session's training history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrainRecord {
    /// The model trained.
    pub model_id: String,
    /// Training rows.
    pub n_samples: usize,
    /// Training accuracy (classifiers only).
    pub accuracy: Option<f64>,
    /// When it finished (RFC 3339).
    pub timestamp: String,
    /// The session.
    pub worker_id: String,
}

/// A session's state at a glance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionStats {
    /// The session id.
    pub worker_id: String,
    /// How many models the session holds.
    pub models_stored: usize,
    /// Their ids, sorted.
    pub model_ids: Vec<String>,
    /// Records scored through this session.
    pub prediction_count: u64,
    /// Every training run in this session, oldest first.
    pub training_history: Vec<TrainRecord>,
}

/// A session: its own models, each in a model server of its own, and its own counters.
///
/// The isolation is by ownership, not by process: a session's models live in servers only
/// that session holds, and a lookup by model id searches only that session. Two sessions
/// can score on many threads at once; neither can reach the other's models.
pub struct Session {
    id: String,
    factory: ModelServers,
    servers: RwLock<BTreeMap<String, Arc<dyn ModelServerPort>>>,
    prediction_count: AtomicU64,
    history: Mutex<Vec<TrainRecord>>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("id", &self.id).field("models", &self.model_ids()).finish()
    }
}

impl Session {
    /// A session whose models are served in-process ([`ModelServers::local`]).
    pub fn new(id: impl Into<String>) -> Self {
        Self::with_model_servers(id, ModelServers::local())
    }

    /// A session whose models are served by servers `factory` makes (the container's
    /// [`ModelServers`], so `serving.backend` decides); each model gets a server of its own.
    pub fn with_model_servers(id: impl Into<String>, factory: ModelServers) -> Self {
        Session {
            id: id.into(),
            factory,
            servers: RwLock::new(BTreeMap::new()),
            prediction_count: AtomicU64::new(0),
            history: Mutex::new(Vec::new()),
        }
    }

    /// The session id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Trains a model on `data` and keeps it in this session. An empty or one-class data set
    /// is an error from the trainer; nothing is stored then.
    pub fn train(&self, trainer: &Trainer, data: &Dataset) -> Result<TrainReport, WharfError> {
        let model = trainer.fit(data)?;
        let accuracy = match model.task() {
            wharf_core::Task::Classification => {
                wharf_ml::evaluate(&model, data)?.get("accuracy").map(|a| (a * 10_000.0).round() / 10_000.0)
            }
            _ => None,
        };
        let classes = model.classes().to_vec();
        let n_features = model.signature().features.len();
        let model_id = self.add_model(model)?;
        let report = TrainReport {
            model_id: model_id.clone(),
            classes,
            n_features,
            accuracy,
            worker_id: self.id.clone(),
            n_samples: data.n_rows(),
        };
        self.history.lock().unwrap_or_else(|e| e.into_inner()).push(TrainRecord {
            model_id,
            n_samples: report.n_samples,
            accuracy,
            timestamp: chrono::Utc::now().to_rfc3339(),
            worker_id: self.id.clone(),
        });
        Ok(report)
    }

    /// Keeps an already trained model in this session under a fresh id (returned). The
    /// model is loaded with a check that it predicts its own sample input.
    pub fn add_model(&self, model: Model) -> Result<String, WharfError> {
        let model_id = uuid::Uuid::now_v7().to_string();
        let server = self.factory.create()?;
        server.load_checked(model.with_tag("model_id", model_id.clone()))?;
        self.servers.write().unwrap_or_else(|e| e.into_inner()).insert(model_id.clone(), server);
        Ok(model_id)
    }

    /// Drops a model; later requests for it get [`SessionError::ModelNotFound`].
    pub fn remove_model(&self, model_id: &str) -> bool {
        self.servers.write().unwrap_or_else(|e| e.into_inner()).remove(model_id).is_some()
    }

    /// The server holding `model_id` in this session, and only this session.
    pub fn server(&self, model_id: &str) -> Result<Arc<dyn ModelServerPort>, SessionError> {
        let servers = self.servers.read().unwrap_or_else(|e| e.into_inner());
        servers
            .get(model_id)
            .cloned()
            .ok_or_else(|| SessionError::ModelNotFound { session: self.id.clone(), model: model_id.to_string() })
    }

    /// The ids of the models this session holds, sorted.
    pub fn model_ids(&self) -> Vec<String> {
        self.servers.read().unwrap_or_else(|e| e.into_inner()).keys().cloned().collect()
    }

    /// Counts `n` records scored through this session.
    pub fn record_predictions(&self, n: u64) {
        self.prediction_count.fetch_add(n, Ordering::Relaxed);
    }

    /// The session's stats.
    pub fn stats(&self) -> SessionStats {
        let model_ids = self.model_ids();
        SessionStats {
            worker_id: self.id.clone(),
            models_stored: model_ids.len(),
            model_ids,
            prediction_count: self.prediction_count.load(Ordering::Relaxed),
            training_history: self.history.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        }
    }
}

/// The open sessions of a process, by id. Pipelines look the run's session up here by the
/// run context's session id.
pub struct Sessions {
    factory: ModelServers,
    open: RwLock<HashMap<String, Arc<Session>>>,
}

impl Default for Sessions {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions").field("open", &self.ids()).finish()
    }
}

impl Sessions {
    /// No sessions yet; new ones serve models in-process.
    pub fn new() -> Self {
        Self::with_model_servers(ModelServers::local())
    }

    /// No sessions yet; new ones serve models with servers `factory` makes (the container's
    /// [`ModelServers`]).
    pub fn with_model_servers(factory: ModelServers) -> Self {
        Sessions { factory, open: RwLock::new(HashMap::new()) }
    }

    /// The session `id`, opened now if it is not open yet.
    pub fn open(&self, id: impl Into<String>) -> Arc<Session> {
        let id = id.into();
        let mut open = self.open.write().unwrap_or_else(|e| e.into_inner());
        open.entry(id.clone())
            .or_insert_with(|| Arc::new(Session::with_model_servers(id, self.factory.clone())))
            .clone()
    }

    /// The open session `id`, or [`SessionError::Unavailable`].
    pub fn get(&self, id: &str) -> Result<Arc<Session>, SessionError> {
        let open = self.open.read().unwrap_or_else(|e| e.into_inner());
        open.get(id).cloned().ok_or_else(|| SessionError::Unavailable { session: id.to_string() })
    }

    /// Closes a session: its models go with it, and later runs for it get
    /// [`SessionError::Unavailable`] per item.
    pub fn close(&self, id: &str) -> bool {
        self.open.write().unwrap_or_else(|e| e.into_inner()).remove(id).is_some()
    }

    /// The open session ids, sorted.
    pub fn ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.open.read().unwrap_or_else(|e| e.into_inner()).keys().cloned().collect();
        ids.sort();
        ids
    }
}

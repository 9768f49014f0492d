//! The run context: what every stage of one run can read.

use std::sync::Arc;

use serde_json::Value;

use crate::item::Meta;

/// The context of one pipeline run, passed to every stage call.
///
/// It always carries a non-empty session id: one is generated when none is given, so a run
/// without one still has a session of its own rather than none. The session id is how
/// stages find state that belongs to the run's session, such as its models. Cloning is
/// cheap: the fields are shared.
#[derive(Debug, Clone)]
pub struct RunContext {
    session_id: Arc<str>,
    metadata: Arc<Meta>,
    stage: Option<Arc<str>>,
}

impl Default for RunContext {
    fn default() -> Self {
        Self::new()
    }
}

impl RunContext {
    /// A context with a generated session id (`session-<uuid v7>`) and no metadata.
    pub fn new() -> Self {
        RunContext { session_id: generate_session_id().into(), metadata: Arc::new(Meta::new()), stage: None }
    }

    /// Uses `id` as the session id. A blank id is replaced by a generated one, so a context
    /// never runs without a session.
    pub fn session(mut self, id: impl Into<String>) -> Self {
        let id = id.into();
        self.session_id = if id.trim().is_empty() { generate_session_id() } else { id }.into();
        self
    }

    /// Sets one metadata field (`model_id`, a run label) that every stage can read.
    pub fn meta(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        Arc::make_mut(&mut self.metadata).insert(key.into(), value.into());
        self
    }

    /// Merges `metadata` into the context's metadata; fields in `metadata` win.
    pub fn put_metadata(mut self, metadata: Meta) -> Self {
        Arc::make_mut(&mut self.metadata).extend(metadata);
        self
    }

    /// The session this run belongs to. Never empty.
    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// All run metadata.
    pub fn metadata(&self) -> &Meta {
        &self.metadata
    }

    /// One metadata field.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.metadata.get(key)
    }

    /// The stage being run, when called from inside a stage.
    pub fn stage(&self) -> Option<&str> {
        self.stage.as_deref()
    }

    /// The same context, naming the stage being run.
    pub fn with_stage(&self, stage: &Arc<str>) -> RunContext {
        RunContext { stage: Some(stage.clone()), ..self.clone() }
    }
}

fn generate_session_id() -> String {
    format!("session-{}", uuid::Uuid::now_v7())
}

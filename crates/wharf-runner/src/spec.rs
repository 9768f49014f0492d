//! What the runner runs: a model with a name, a version, a status, the input fields it
//! declares and the scorer that computes its result.

use std::fmt;
use std::sync::Arc;

use serde_json::{Map, Value};
use wharf_core::{FeatureKind, Model, ModelServerPort, Row, WharfError};

use crate::fields::{FieldProblem, FieldSpec, InputSource};
use crate::ident::{DepRef, Status};
use crate::model_scorer::ModelScorer;
use crate::results::{ModelResult, RunError};
use crate::scorer::{BoxError, FnScorer, Scorer};

/// A model the runner applies to every record: name, version, status, declared input fields
/// and the scorer that computes its result.
///
/// The pair `(name, version)` identifies the model's result: `results[name][version]`. Two
/// versions of one name are two models whose results are both kept, so a new version can be
/// compared with the one it replaces on the same records.
#[derive(Clone)]
pub struct ModelSpec {
    /// The model's name (the first key of its result).
    pub name: String,
    /// The model's version (the second key of its result). Free text, such as `0.0.1`;
    /// a registered Wharf model uses its registry version number.
    pub version: String,
    /// Draft or active; stored with every result.
    pub status: Status,
    /// Declared input fields, in declaration order. Each is checked on every record before
    /// the model runs; fields not declared pass through unchecked.
    pub fields: Vec<(String, FieldSpec)>,
    /// Where the model's input is in the record's data.
    pub input: InputSource,
    /// What computes the result.
    pub model: Arc<dyn Scorer>,
}

impl fmt::Debug for ModelSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModelSpec")
            .field("name", &self.name)
            .field("version", &self.version)
            .field("status", &self.status)
            .field("fields", &self.fields)
            .field("input", &self.input)
            .field("model", &self.model.describe())
            .finish()
    }
}

impl ModelSpec {
    /// A draft model with no declared fields, reading its own slice.
    pub fn new(name: impl Into<String>, version: impl Into<String>, model: impl Scorer + 'static) -> Self {
        ModelSpec {
            name: name.into(),
            version: version.into(),
            status: Status::Draft,
            fields: Vec::new(),
            input: InputSource::Slice,
            model: Arc::new(model),
        }
    }

    /// A model computed by a Rust function of its input.
    pub fn from_fn<F>(name: impl Into<String>, version: impl Into<String>, f: F) -> Self
    where
        F: Fn(&Row) -> Result<Value, BoxError> + Send + Sync + 'static,
    {
        Self::new(name, version, FnScorer(f))
    }

    /// A trained Wharf model. Its fields come from its signature: a numeric feature is an
    /// optional `float` (the model imputes a missing one), a categorical feature an optional
    /// `str` limited to its training levels. Its result is `{"prediction": …}`, plus
    /// `prob_<class>` per class for a classifier.
    pub fn from_model(name: impl Into<String>, version: impl Into<String>, model: Model) -> Self {
        Self::from_scorer(name, version, ModelScorer::new(model))
    }

    /// A trained Wharf model loaded on `server` (one from a
    /// [`ModelServers`](wharf_core::ModelServers) factory, such as the container's, so
    /// `serving.backend` decides where it scores); otherwise as [`from_model`](Self::from_model).
    /// Fails when the server has no model loaded.
    pub fn from_server(
        name: impl Into<String>,
        version: impl Into<String>,
        server: Arc<dyn ModelServerPort>,
    ) -> Result<Self, WharfError> {
        Ok(Self::from_scorer(name, version, ModelScorer::with_server(server)?))
    }

    fn from_scorer(name: impl Into<String>, version: impl Into<String>, scorer: ModelScorer) -> Self {
        let fields = scorer
            .model()
            .signature()
            .features
            .iter()
            .map(|f| {
                let spec = match &f.kind {
                    FeatureKind::Numeric => FieldSpec::float().optional(),
                    FeatureKind::Categorical { levels } => FieldSpec::str().optional().levels(levels.clone()),
                    // A feature type added later: passed as text; the model checks it.
                    _ => FieldSpec::str().optional(),
                };
                (f.name.clone(), spec)
            })
            .collect();
        let mut spec = Self::new(name, version, scorer);
        spec.fields = fields;
        spec
    }

    /// Sets the status.
    pub fn status(mut self, status: Status) -> Self {
        self.status = status;
        self
    }

    /// Declares (or redeclares) an input field.
    pub fn field(mut self, name: impl Into<String>, spec: FieldSpec) -> Self {
        let name = name.into();
        match self.fields.iter_mut().find(|(n, _)| *n == name) {
            Some((_, slot)) => *slot = spec,
            None => self.fields.push((name, spec)),
        }
        self
    }

    /// Sets where the input is read from.
    pub fn input(mut self, input: InputSource) -> Self {
        self.input = input;
        self
    }

    /// `name@version`, as errors and listings name the model.
    pub fn key(&self) -> DepRef {
        DepRef::new(&self.name, &self.version)
    }

    /// The declared field called `name`.
    pub fn field_spec(&self, name: &str) -> Option<&FieldSpec> {
        self.fields.iter().find(|(n, _)| n == name).map(|(_, s)| s)
    }

    /// Checks `input` against the declared fields. A missing required field wins over other
    /// problems (it is the likelier cause); every failing field is named.
    pub fn validate(&self, input: &Row) -> Result<(), RunError> {
        let mut missing = Vec::new();
        let mut invalid = Vec::new();
        for (name, spec) in &self.fields {
            match spec.check(input.get(name)) {
                Ok(()) => {}
                Err(FieldProblem::Missing) => missing.push(name.as_str()),
                Err(FieldProblem::Invalid(why)) => invalid.push((name.as_str(), format!("field '{name}': {why}"))),
            }
        }
        if let Some(first) = missing.first() {
            let names: Vec<String> = missing.iter().map(|n| format!("'{n}'")).collect();
            let noun = if missing.len() == 1 { "field" } else { "fields" };
            return Err(RunError::missing_field(
                first,
                format!("expected input {noun} {} not found", names.join(", ")),
            ));
        }
        if let Some((first, _)) = invalid.first() {
            let messages: Vec<&str> = invalid.iter().map(|(_, m)| m.as_str()).collect();
            return Err(RunError::invalid_field(first, messages.join("; ")));
        }
        Ok(())
    }

    /// Runs this model alone on one input: checks the fields, and
    /// only if they pass calls the model. Errors become the result's error, never a panic.
    pub fn execute(&self, input: &Row) -> ModelResult {
        match self.validate(input) {
            Err(e) => ModelResult::error(self.status, e),
            Ok(()) => {
                crate::checked::score_checked(self.model.as_ref(), self.status, &[input]).pop().unwrap_or_else(|| {
                    ModelResult::error(self.status, RunError::invalid_output("the model returned no result"))
                })
            }
        }
    }

    /// A smoke test that needs no sample data: runs the model on a synthetic input built
    /// from the declared field types (int 1, float 1.2, str `"lorem ipsum"`, bool true,
    /// moved into declared ranges and levels) and returns its output, or the error it gave.
    pub fn self_test(&self) -> Result<Map<String, Value>, RunError> {
        let input: Row = self.fields.iter().map(|(name, spec)| (name.clone(), spec.synthetic())).collect();
        self.execute(&input).into_result()
    }
}

//! What the runner runs: models and summary models, each with a name, a version, a status
//! and (for models) the input fields it declares.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use wharf_core::{json_type, FeatureKind, Model, ModelServerPort, Row, WharfError};

use crate::model_scorer::ModelScorer;
use crate::results::{ModelResult, Results, RunError};

/// The error a model or summary function may fail with. Any error converts into it with `?`,
/// and so does a plain message: `Err("negative balance".into())`.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A summary model's function: it sees every result computed so far for the record and
/// returns its own result, a JSON object.
pub type SummaryFn = Arc<dyn Fn(&SummaryInput<'_>) -> Result<Value, BoxError> + Send + Sync>;

/// Where a model is in its life. Draft models are being tested (mlsm: "a model tested from
/// `develop` must have `status='draft'`") and are skipped unless the run includes drafts.
///
/// Written `draft` or `active`; `production` is accepted as another name for `active`, the
/// word the issue tracker uses. The default is `draft`, as in mlsm, so a model reaches
/// production results only when someone says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Being tested; skipped unless drafts are included.
    #[default]
    Draft,
    /// In production.
    #[serde(alias = "production")]
    Active,
}

impl Status {
    /// `draft` or `active`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Draft => "draft",
            Status::Active => "active",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = WharfError;
    fn from_str(s: &str) -> Result<Self, WharfError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "draft" => Ok(Status::Draft),
            "active" | "production" => Ok(Status::Active),
            _ => Err(WharfError::invalid("status", format!("'{s}' is not a status (draft, active or production)"))),
        }
    }
}

/// The JSON type a declared input field must have. mlsm only checked that a field is
/// present; the runner checks its type too, so `"12"` never reaches a model expecting 12.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    /// A whole number (`3`, or `3.0`, which JSON writers often produce for integers).
    #[serde(alias = "integer")]
    Int,
    /// Any number.
    #[serde(alias = "number", alias = "double")]
    Float,
    /// A string.
    #[serde(alias = "string", alias = "text")]
    Str,
    /// `true` or `false`.
    #[serde(alias = "boolean")]
    Bool,
}

impl FieldType {
    /// `int`, `float`, `str` or `bool`.
    pub fn as_str(self) -> &'static str {
        match self {
            FieldType::Int => "int",
            FieldType::Float => "float",
            FieldType::Str => "str",
            FieldType::Bool => "bool",
        }
    }
}

impl fmt::Display for FieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One declared input field: its type, whether it must be there, and the values allowed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldSpec {
    /// The JSON type the value must have.
    #[serde(rename = "type")]
    pub ty: FieldType,
    /// When true (the default), the field must be present and not `null`. When false, an
    /// absent or `null` field passes and the model decides what it means (a Wharf model
    /// imputes a missing number with its training mean).
    #[serde(default = "yes")]
    pub required: bool,
    /// Smallest allowed number (inclusive), for `int` and `float`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Largest allowed number (inclusive), for `int` and `float`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// The allowed strings, for `str`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub levels: Option<Vec<String>>,
}

fn yes() -> bool {
    true
}

impl FieldSpec {
    /// A required field of type `ty`, any value of that type allowed.
    pub fn new(ty: FieldType) -> Self {
        FieldSpec { ty, required: true, min: None, max: None, levels: None }
    }
    /// A required whole number.
    pub fn int() -> Self {
        Self::new(FieldType::Int)
    }
    /// A required number.
    pub fn float() -> Self {
        Self::new(FieldType::Float)
    }
    /// A required string.
    pub fn str() -> Self {
        Self::new(FieldType::Str)
    }
    /// A required boolean.
    pub fn bool() -> Self {
        Self::new(FieldType::Bool)
    }
    /// Lets the field be absent or `null`.
    pub fn optional(mut self) -> Self {
        self.required = false;
        self
    }
    /// Allows only numbers in `min..=max`.
    pub fn range(mut self, min: f64, max: f64) -> Self {
        self.min = Some(min);
        self.max = Some(max);
        self
    }
    /// Allows only these strings.
    pub fn levels<I, S>(mut self, levels: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.levels = Some(levels.into_iter().map(Into::into).collect());
        self
    }

    /// Checks one value (`None` when the field is absent). The error is a sentence about
    /// the value, without the field's name, which the caller adds.
    pub fn check(&self, value: Option<&Value>) -> Result<(), FieldProblem> {
        let value = match value {
            None | Some(Value::Null) if self.required => return Err(FieldProblem::Missing),
            None | Some(Value::Null) => return Ok(()),
            Some(v) => v,
        };
        let wrong = || FieldProblem::Invalid(format!("expected {}, found {}", self.ty, json_type(value)));
        match self.ty {
            FieldType::Int | FieldType::Float => {
                let x = value.as_f64().ok_or_else(wrong)?;
                if self.ty == FieldType::Int && x.fract() != 0.0 {
                    return Err(FieldProblem::Invalid(format!("expected int, found {value}")));
                }
                if let Some(min) = self.min.filter(|min| x < *min) {
                    return Err(FieldProblem::Invalid(format!("{value} is below the minimum {min}")));
                }
                if let Some(max) = self.max.filter(|max| x > *max) {
                    return Err(FieldProblem::Invalid(format!("{value} is above the maximum {max}")));
                }
            }
            FieldType::Str => {
                let s = value.as_str().ok_or_else(wrong)?;
                if let Some(levels) = self.levels.as_ref().filter(|l| !l.iter().any(|l| l == s)) {
                    return Err(FieldProblem::Invalid(format!("'{s}' is not one of {}", levels.join(", "))));
                }
            }
            FieldType::Bool => {
                value.as_bool().ok_or_else(wrong)?;
            }
        }
        Ok(())
    }

    /// The value mlsm's self-test fed a field of this type (int 1, float 1.2, str
    /// `"lorem ipsum"`, bool true), moved into the declared range or levels if it is outside.
    pub fn synthetic(&self) -> Value {
        match self.ty {
            FieldType::Int => {
                let x = self.clamp(1.0);
                Value::from(x.ceil() as i64)
            }
            FieldType::Float => serde_json::Number::from_f64(self.clamp(1.2)).map(Value::Number).unwrap_or(Value::Null),
            FieldType::Str => match self.levels.as_ref().and_then(|l| l.first()) {
                Some(level) => Value::String(level.clone()),
                None => Value::String("lorem ipsum".into()),
            },
            FieldType::Bool => Value::Bool(true),
        }
    }

    fn clamp(&self, x: f64) -> f64 {
        let x = self.min.map_or(x, |min| x.max(min));
        self.max.map_or(x, |max| x.min(max))
    }
}

/// Why one field failed its check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldProblem {
    /// A required field is absent or `null`.
    Missing,
    /// The value has the wrong type, or is outside the range or levels.
    Invalid(String),
}

/// Where a model finds its input in a record's `data`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InputSource {
    /// `data[name][version]`: each model (and each version of it) has its own slice, as in
    /// mlsm. The default.
    #[default]
    Slice,
    /// The whole `data` object, shared by every model reading it: for models that take the
    /// same features (two versions of one registered model, say).
    Shared,
}

/// Computes a model's results for a batch of inputs.
///
/// The runner hands a scorer only inputs that passed the model's field checks, as many as
/// it has at hand at once, so a model that is faster on a batch (a Wharf [`Model`] scoring a
/// matrix) gets one. Implementations return exactly one result per input, in order; each
/// success must be a JSON object (anything else is recorded as an invalid output). A
/// scorer may panic: the runner catches it and records the panic as that model's error.
pub trait Scorer: Send + Sync {
    /// One result per input, in order.
    fn score_batch(&self, inputs: &[&Row]) -> Vec<Result<Value, BoxError>>;
    /// What the scorer is, for listings (`function`, `lead@3 (logistic)`).
    fn describe(&self) -> String {
        "function".to_string()
    }
}

/// A plain function as a [`Scorer`]: called once per input.
pub struct FnScorer<F>(pub F);

impl<F> Scorer for FnScorer<F>
where
    F: Fn(&Row) -> Result<Value, BoxError> + Send + Sync,
{
    fn score_batch(&self, inputs: &[&Row]) -> Vec<Result<Value, BoxError>> {
        inputs.iter().map(|row| (self.0)(row)).collect()
    }
}

/// A model the runner applies to every record: name, version, status, declared input fields
/// and the scorer that computes its result.
///
/// The pair `(name, version)` identifies the model's result: `results[name][version]`. Two
/// versions of one name are two models whose results are both kept (mlsm kept only the
/// last one).
#[derive(Clone)]
pub struct ModelSpec {
    /// The model's name (the first key of its result).
    pub name: String,
    /// The model's version (the second key of its result). Free text, like mlsm's `0.0.1`;
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

    /// A model computed by a Rust function of its input (mlsm's `fcn`).
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

    /// Runs this model alone on one input (mlsm's `Model.execute`): checks the fields, and
    /// only if they pass calls the model. Errors become the result's error, never a panic.
    pub fn execute(&self, input: &Row) -> ModelResult {
        match self.validate(input) {
            Err(e) => ModelResult::error(self.status, e),
            Ok(()) => crate::runner::score_checked(self, &[input]).pop().unwrap_or_else(|| {
                ModelResult::error(self.status, RunError::invalid_output("the model returned no result"))
            }),
        }
    }

    /// mlsm's `Model.test()`: runs the model on a synthetic input built from the declared
    /// field types (int 1, float 1.2, str `"lorem ipsum"`, bool true, moved into declared
    /// ranges and levels) and returns its output, or the error it gave.
    pub fn self_test(&self) -> Result<Map<String, Value>, RunError> {
        let input: Row = self.fields.iter().map(|(name, spec)| (name.clone(), spec.synthetic())).collect();
        self.execute(&input).into_result()
    }
}

/// A model's identity in results: `(name, version)`, written `name@version`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DepRef {
    /// Model name.
    pub name: String,
    /// Model version.
    pub version: String,
}

impl DepRef {
    /// `name@version`.
    pub fn new(name: impl Into<String>, version: impl Into<String>) -> Self {
        DepRef { name: name.into(), version: version.into() }
    }
}

impl fmt::Display for DepRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.name, self.version)
    }
}

impl FromStr for DepRef {
    type Err = WharfError;
    /// Parses `name@version`; the version is everything after the last `@`.
    fn from_str(s: &str) -> Result<Self, WharfError> {
        match s.rsplit_once('@') {
            Some((name, version)) if !name.trim().is_empty() && !version.trim().is_empty() => {
                Ok(DepRef::new(name.trim(), version.trim()))
            }
            _ => Err(WharfError::invalid("depends_on", format!("'{s}' is not name@version"))),
        }
    }
}

impl<N: Into<String>, V: Into<String>> From<(N, V)> for DepRef {
    fn from((name, version): (N, V)) -> Self {
        DepRef::new(name, version)
    }
}

/// What a summary function sees: the record's results so far (every model's, and the
/// summaries' declared before it) and its declared dependencies, all of which succeeded.
pub struct SummaryInput<'a> {
    pub(crate) results: &'a Results,
    pub(crate) depends_on: &'a [DepRef],
}

impl<'a> SummaryInput<'a> {
    /// Every result of the record so far, errors included.
    pub fn results(&self) -> &'a Results {
        self.results
    }

    /// The output of `name@version`, when it succeeded.
    pub fn value(&self, name: &str, version: &str) -> Option<&'a Map<String, Value>> {
        self.results.get(name, version).and_then(|r| r.value())
    }

    /// The declared dependencies with their outputs, in declaration order. The runner calls
    /// the function only when every dependency succeeded, so none is left out.
    pub fn dependencies(&self) -> impl Iterator<Item = (&'a DepRef, &'a Map<String, Value>)> + 'a {
        let results = self.results;
        self.depends_on
            .iter()
            .filter_map(move |d| results.get(&d.name, &d.version).and_then(|r| r.value()).map(|v| (d, v)))
    }
}

/// A summary model: runs after every model of the record, on their results (to pick the
/// winning score, say). Its own result is stored like a model's, under
/// `results[name][version]`.
#[derive(Clone)]
pub struct SummarySpec {
    /// Name (the first key of its result).
    pub name: String,
    /// Version (the second key of its result).
    pub version: String,
    /// Draft or active; a draft summary is skipped unless drafts are included.
    pub status: Status,
    /// The results it needs. If one has no result the summary's result is a
    /// `dependency_missing` error; if one failed, a `dependency_failed` error. Either way
    /// the function is not called, and the other records and models carry on.
    pub depends_on: Vec<DepRef>,
    /// The function.
    pub function: SummaryFn,
}

impl fmt::Debug for SummarySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SummarySpec")
            .field("name", &self.name)
            .field("version", &self.version)
            .field("status", &self.status)
            .field("depends_on", &self.depends_on)
            .finish_non_exhaustive()
    }
}

impl SummarySpec {
    /// A draft summary computed by `f`.
    pub fn new<I, D, F>(name: impl Into<String>, version: impl Into<String>, depends_on: I, f: F) -> Self
    where
        I: IntoIterator<Item = D>,
        D: Into<DepRef>,
        F: Fn(&SummaryInput<'_>) -> Result<Value, BoxError> + Send + Sync + 'static,
    {
        SummarySpec {
            name: name.into(),
            version: version.into(),
            status: Status::Draft,
            depends_on: depends_on.into_iter().map(Into::into).collect(),
            function: Arc::new(f),
        }
    }

    /// A draft summary computed by a [`Builtin`](crate::Builtin) over `field` of each
    /// dependency's output.
    pub fn builtin<I, D>(
        name: impl Into<String>,
        version: impl Into<String>,
        depends_on: I,
        kind: crate::Builtin,
        field: impl Into<String>,
    ) -> Self
    where
        I: IntoIterator<Item = D>,
        D: Into<DepRef>,
    {
        SummarySpec {
            name: name.into(),
            version: version.into(),
            status: Status::Draft,
            depends_on: depends_on.into_iter().map(Into::into).collect(),
            function: kind.function(field),
        }
    }

    /// Sets the status.
    pub fn status(mut self, status: Status) -> Self {
        self.status = status;
        self
    }

    /// `name@version`.
    pub fn key(&self) -> DepRef {
        DepRef::new(&self.name, &self.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dependency_references_split_at_the_last_at() {
        let dep: DepRef = "team@lead@0.0.1".parse().unwrap();
        assert_eq!((dep.name.as_str(), dep.version.as_str()), ("team@lead", "0.0.1"));
        assert!("lead".parse::<DepRef>().is_err());
        assert!("lead@".parse::<DepRef>().is_err());
        assert!("@1".parse::<DepRef>().is_err());
    }

    #[test]
    fn statuses_and_field_types_read_their_aliases() {
        let status: Status = serde_json::from_value(json!("production")).unwrap();
        assert_eq!(status, Status::Active);
        assert_eq!(serde_json::to_value(status).unwrap(), json!("active"), "written back as active");
        let ty: FieldType = serde_json::from_value(json!("integer")).unwrap();
        assert_eq!(ty, FieldType::Int);
        let typo = serde_json::from_value::<FieldSpec>(json!({"type": "int", "mni": 0}));
        assert!(typo.unwrap_err().to_string().contains("mni"), "a misspelt check is refused, not ignored");
    }

    #[test]
    fn optional_fields_accept_absent_and_null_but_not_wrong_types() {
        let spec = FieldSpec::bool().optional();
        assert_eq!(spec.check(None), Ok(()));
        assert_eq!(spec.check(Some(&Value::Null)), Ok(()));
        assert_eq!(spec.check(Some(&json!(1))), Err(FieldProblem::Invalid("expected bool, found a number".into())));
        let levels = FieldSpec::str().levels(["a", "b"]);
        assert_eq!(levels.check(Some(&json!("c"))), Err(FieldProblem::Invalid("'c' is not one of a, b".into())));
    }
}

//! Summary models: functions that run after every model of a record, on their results.

use std::fmt;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::ident::{DepRef, Status};
use crate::results::Results;
use crate::scorer::BoxError;

/// A summary model's function: it sees every result computed so far for the record and
/// returns its own result, a JSON object.
pub type SummaryFn = Arc<dyn Fn(&SummaryInput<'_>) -> Result<Value, BoxError> + Send + Sync>;

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

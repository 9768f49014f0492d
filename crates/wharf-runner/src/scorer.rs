//! What computes a model's results: the [`Scorer`] trait, and its error type.

use serde_json::Value;
use wharf_core::Row;

#[cfg(doc)]
use wharf_core::Model;

/// The error a model or summary function may fail with. Any error converts into it with `?`,
/// and so does a plain message: `Err("negative balance".into())`.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

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

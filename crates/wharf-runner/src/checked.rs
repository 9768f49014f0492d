//! Calling a scorer or a summary so that whatever it does (a wrong number of results, a
//! panic, a non-object) becomes a result's error and never escapes the run.

use std::panic::{self, AssertUnwindSafe};

use serde_json::Value;
use wharf_core::{json_type, Row};

use crate::ident::Status;
use crate::results::{ModelResult, RunError};
use crate::scorer::{BoxError, Scorer};

/// Scores inputs that passed the field checks. If the batch call panics or answers the
/// wrong number of results, each input is scored alone, so the fault stays with the records
/// that cause it.
pub(crate) fn score_checked(scorer: &dyn Scorer, status: Status, inputs: &[&Row]) -> Vec<ModelResult> {
    if inputs.is_empty() {
        return Vec::new();
    }
    let batch = panic::catch_unwind(AssertUnwindSafe(|| scorer.score_batch(inputs)));
    let outputs = match batch {
        Ok(outputs) if outputs.len() == inputs.len() => outputs,
        Ok(outputs) if inputs.len() == 1 => {
            let message = format!("the model returned {} results for 1 input", outputs.len());
            return vec![ModelResult::error(status, RunError::invalid_output(message))];
        }
        Err(payload) if inputs.len() == 1 => {
            return vec![ModelResult::error(status, RunError::failed(panic_message(payload)))];
        }
        _ => {
            return inputs.iter().flat_map(|input| score_checked(scorer, status, std::slice::from_ref(input))).collect()
        }
    };
    outputs.into_iter().map(|o| to_result(status, o)).collect()
}

pub(crate) fn to_result(status: Status, output: Result<Value, BoxError>) -> ModelResult {
    match output {
        Ok(Value::Object(value)) => ModelResult::ok(status, value),
        Ok(other) => ModelResult::error(
            status,
            RunError::invalid_output(format!("the function returned {}, expected an object", json_type(&other))),
        ),
        Err(e) => ModelResult::error(status, RunError::failed(e.to_string())),
    }
}

pub(crate) fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown cause".into());
    format!("panicked: {text}")
}

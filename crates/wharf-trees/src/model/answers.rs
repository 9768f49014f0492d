//! A tree-backed kind's raw scores as the answers of [`ModelKind`](wharf_core::ModelKind):
//! class indices by the largest probability, values, or the probability matrix. The imported
//! ensembles and the ONNX pipelines differ only in how they score, not in these rules.

use ndarray::Array2;
use wharf_core::{Predictions, Probabilities, Result, Signature, Task, WharfError};

/// Classes (the argmax of `probabilities`) for a classifier, `values` for anything else.
pub(crate) fn predictions(
    signature: &Signature,
    probabilities: impl FnOnce() -> Result<Array2<f64>>,
    values: impl FnOnce() -> Result<Vec<f64>>,
) -> Result<Predictions> {
    match signature.task {
        Task::Classification => {
            let indices = Probabilities { classes: Vec::new(), values: probabilities()? }.argmax();
            Ok(Predictions::Classes { classes: signature.classes.clone(), indices })
        }
        _ => Ok(Predictions::Values(values()?)),
    }
}

/// The probability matrix of a classifier; any other task is refused, naming `what` it is.
pub(crate) fn class_probabilities(
    signature: &Signature,
    what: &str,
    probabilities: impl FnOnce() -> Result<Array2<f64>>,
) -> Result<Probabilities> {
    if signature.task != Task::Classification {
        return Err(WharfError::Unsupported(format!("predict_proba on a {} {what}", signature.task)));
    }
    Ok(Probabilities { classes: signature.classes.clone(), values: probabilities()? })
}

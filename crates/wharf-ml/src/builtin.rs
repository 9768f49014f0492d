//! The built-in estimators as a model kind (`wharf.estimator`): fitted preprocessing, a fitted
//! estimator, and the compiled kernel derived from them on first use.

use std::any::Any;
use std::sync::Arc;

use ndarray::Array2;
use serde::{Deserialize, Serialize};
use wharf_core::kind::{self, KindDecoder, ModelKind, BUILTIN_ESTIMATOR_KIND};
use wharf_core::{ModelMetadata, Predictions, Probabilities, Records, Result, Signature, Task, WharfError};

use crate::estimator::kernel::Compiled;
use crate::estimator::{Estimator, RawOutput};
use crate::preprocess::Preprocessor;

/// One of Wharf's built-in estimators with its preprocessing: the kind every model that
/// [`Trainer`](crate::Trainer) fits or [`import`](crate::import) reads holds.
#[derive(Debug, Clone, PartialEq)]
pub struct FittedEstimator {
    pub(crate) preprocessor: Preprocessor,
    pub(crate) estimator: Estimator,
    /// The scoring kernel derived from the two above on first use (never saved).
    pub(crate) kernel: Compiled,
}

/// The payload: exactly the bytes that followed the metadata in a format-1 artifact, so
/// format-1 files decode with the same decoder.
#[derive(Serialize)]
struct PayloadRef<'a>(&'a Preprocessor, &'a Estimator);
#[derive(Deserialize)]
struct Payload(Preprocessor, Estimator);

/// Registers the built-in estimators' decoder, so their artifacts load. Idempotent and cheap:
/// [`Trainer::fit`](crate::Trainer::fit), the importers and the `wharf` facade call it; call
/// it yourself before [`Model::load`](wharf_core::Model::load) when you use `wharf-core` and
/// `wharf-ml` without the facade.
pub fn register() {
    kind::register(KindDecoder { id: BUILTIN_ESTIMATOR_KIND, provider: "wharf-ml", decode });
    // The gradient booster's models are tree ensembles.
    wharf_trees::register();
}

fn decode(_: &ModelMetadata, bytes: &[u8]) -> std::result::Result<Arc<dyn ModelKind>, String> {
    let Payload(preprocessor, estimator) = kind::decode_payload(bytes)?;
    Ok(Arc::new(FittedEstimator::new(preprocessor, estimator)))
}

impl FittedEstimator {
    pub(crate) fn new(preprocessor: Preprocessor, estimator: Estimator) -> Self {
        FittedEstimator { preprocessor, estimator, kernel: Compiled::default() }
    }

    fn design(&self, signature: &Signature, records: &Records) -> Result<Array2<f64>> {
        self.preprocessor.transform(signature, records)
    }

    /// Class probabilities straight from a numeric matrix through the compiled kernel,
    /// without building a design matrix; `None` when the records or the model need the
    /// general path (which also words any error).
    fn fast_probabilities(&self, signature: &Signature, records: &Records) -> Option<Array2<f64>> {
        let Records::Matrix(m) = records else { return None };
        let width = signature.features.len();
        if m.ncols() != width || m.nrows() == 0 || signature.task != Task::Classification {
            return None;
        }
        let values = self.kernel.get(&self.preprocessor, &self.estimator).probabilities(m.view())?;
        let n_classes = values.len() / m.nrows();
        Array2::from_shape_vec((m.nrows(), n_classes), values).ok()
    }
}

impl ModelKind for FittedEstimator {
    fn kind_id(&self) -> &str {
        BUILTIN_ESTIMATOR_KIND
    }

    fn validate(&self, signature: &Signature, records: &Records) -> Result<()> {
        self.design(signature, records).map(|_| ())
    }

    fn predict(&self, signature: &Signature, records: &Records) -> Result<Predictions> {
        if let Some(values) = self.fast_probabilities(signature, records) {
            let indices = Probabilities { classes: Vec::new(), values }.argmax();
            return Ok(Predictions::Classes { classes: signature.classes.clone(), indices });
        }
        let x = self.design(signature, records)?;
        Ok(match self.estimator.run(x.view(), signature.classes.len()) {
            RawOutput::Probabilities(p) => Predictions::Classes {
                classes: signature.classes.clone(),
                indices: Probabilities { classes: Vec::new(), values: p }.argmax(),
            },
            RawOutput::Values(v) => Predictions::Values(v),
            RawOutput::Clusters(c) => Predictions::Clusters(c),
        })
    }

    fn predict_proba(&self, signature: &Signature, records: &Records) -> Result<Probabilities> {
        let classes = signature.classes.clone();
        if let Some(values) = self.fast_probabilities(signature, records) {
            return Ok(Probabilities { classes, values });
        }
        let x = self.design(signature, records)?;
        match self.estimator.run(x.view(), classes.len()) {
            RawOutput::Probabilities(values) => Ok(Probabilities { classes, values }),
            _ => Err(WharfError::Unsupported("predict_proba".into())),
        }
    }

    fn encode(&self) -> Result<Vec<u8>> {
        kind::encode_payload(&PayloadRef(&self.preprocessor, &self.estimator))
    }

    fn check(&self, sig: &Signature) -> std::result::Result<(), String> {
        self.preprocessor.check(sig)?;
        let width = Preprocessor::width(sig);
        let n_classes = sig.classes.len();
        match (sig.task, &self.estimator) {
            (Task::Classification, Estimator::LogisticBinary { .. })
            | (Task::Classification, Estimator::LogisticMulti { .. })
            | (Task::Classification, Estimator::Tree(_))
            | (Task::Classification, Estimator::Forest { .. }) => {
                if n_classes < 2 {
                    return Err("a classifier needs at least two classes".into());
                }
            }
            (Task::Regression, Estimator::Linear { .. }) | (Task::Clustering, Estimator::KMeans { .. }) => {}
            _ => return Err("estimator does not match the task".into()),
        }
        self.estimator.check(width, n_classes)
    }

    fn work_per_row(&self) -> usize {
        self.estimator.work_per_row()
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

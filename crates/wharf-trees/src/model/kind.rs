//! The model kind `wharf.tree-ensemble`: a compiled [`Ensemble`] behind
//! [`wharf_core::kind::ModelKind`], and the decoder that reads it back from an artifact.

use std::any::Any;
use std::sync::Arc;

use ndarray::Array2;
use serde::{Deserialize, Serialize};
use wharf_core::kind::{self, KindDecoder, ModelKind};
use wharf_core::{
    FeatureKind, ModelMetadata, Predictions, Probabilities, Records, Result, Signature, Task, WharfError,
};

use crate::ensemble::Ensemble;
use crate::imported::SourceFormat;
use crate::link::Link;
use crate::spec::{EnsembleSpec, Node};
use crate::TreeError;

/// The kind id stored in artifacts of imported tree ensembles. Never changes.
pub const KIND_ID: &str = wharf_core::kind::TREE_ENSEMBLE_KIND;

/// The payload's layout version: bumped when [`Body`] changes, so an artifact written
/// by a newer layout is refused with a message instead of misread.
const PAYLOAD_VERSION: u32 = 1;

/// Registers the decoder of [`KIND_ID`] (and, with the feature `onnx`, of
/// `wharf.onnx-pipeline`), so artifacts of imported models load.
/// Idempotent and cheap: the importers and the `wharf` facade (`wharf::register_kinds`) call
/// it; call it yourself before [`Model::load`](wharf_core::Model::load) when you use
/// `wharf-core` and this crate without the facade.
pub fn register() {
    kind::register(KindDecoder { id: KIND_ID, provider: "wharf-trees", decode });
    #[cfg(feature = "onnx")]
    super::onnx::register();
}

/// Where the ensemble came from: facts that describe it but do not change its scores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Source {
    pub(crate) format: SourceFormat,
    /// The objective as the file names it.
    pub(crate) objective: String,
    /// Columns the model reads as category codes.
    pub(crate) categorical_features: Vec<usize>,
}

#[derive(Serialize)]
struct BodyRef<'a> {
    spec: &'a EnsembleSpec,
    source: &'a Source,
}

#[derive(Deserialize)]
struct Body {
    spec: EnsembleSpec,
    source: Source,
}

/// The payload is `(version, body)`, the body encoded on its own, so a payload of another
/// layout is refused by its version with a clear message rather than misread.
fn decode(_: &ModelMetadata, bytes: &[u8]) -> std::result::Result<Arc<dyn ModelKind>, String> {
    let (version, body): (u32, Vec<u8>) = kind::decode_payload(bytes)?;
    if version != PAYLOAD_VERSION {
        return Err(format!(
            "tree-ensemble payload version {version} is not supported (this build reads {PAYLOAD_VERSION})"
        ));
    }
    let Body { spec, source } = kind::decode_payload(&body)?;
    let ensemble = Ensemble::new(spec).map_err(|e| format!("tree ensemble: {e}"))?;
    Ok(Arc::new(TreeEnsemble::new(ensemble, source)))
}

/// An imported tree ensemble as a model kind: scores records through the compiled
/// [`Ensemble`], with the scoring rules of the library it came from.
///
/// A binary classifier's ensemble has one output, `P(classes[1])`; its probabilities are
/// `1 - p` and `p`. A multiclass ensemble has one output per class, in the order of the
/// signature's classes. A regressor's one output is the value.
#[derive(Debug)]
pub struct TreeEnsemble {
    ensemble: Ensemble,
    source: Source,
    /// Tree levels walked per row (the sum of the trees' depths), for `work_per_row`.
    levels: usize,
}

impl TreeEnsemble {
    pub(crate) fn new(ensemble: Ensemble, source: Source) -> Self {
        let levels = ensemble.spec().trees.iter().map(|t| depth(&t.nodes)).sum::<usize>();
        TreeEnsemble { ensemble, source, levels }
    }

    /// The compiled ensemble.
    pub fn ensemble(&self) -> &Ensemble {
        &self.ensemble
    }

    /// The file format the ensemble was imported from.
    pub fn format(&self) -> SourceFormat {
        self.source.format
    }

    /// The objective as the source file names it (`binary:logistic`, `multiclass`, …).
    pub fn objective(&self) -> &str {
        &self.source.objective
    }

    /// The columns the model reads as category codes (integers), by position.
    pub fn categorical_features(&self) -> &[usize] {
        &self.source.categorical_features
    }

    /// The ensemble's outputs for `records`: `n_groups` per record.
    fn outputs(&self, signature: &Signature, records: &Records) -> Result<(usize, Vec<f64>)> {
        let x = super::input::rows(signature, records)?;
        let width = self.ensemble.n_features();
        let n = records.len();
        let mut out = vec![0.0; n * self.ensemble.n_groups()];
        self.ensemble.predict(&x, width, &mut out).map_err(scoring_error)?;
        Ok((n, out))
    }

    fn probabilities(&self, signature: &Signature, records: &Records) -> Result<Array2<f64>> {
        let (n, out) = self.outputs(signature, records)?;
        probability_matrix(self.ensemble.n_groups(), n, out)
    }
}

/// A classifier's outputs (`groups` per row, after the link) as one probability row per
/// record: a single group is the positive class's probability.
fn probability_matrix(groups: usize, n: usize, out: Vec<f64>) -> Result<Array2<f64>> {
    if groups == 1 {
        Ok(Array2::from_shape_fn((n, 2), |(i, j)| if j == 1 { out[i] } else { 1.0 - out[i] }))
    } else {
        Array2::from_shape_vec((n, groups), out).map_err(|e| scoring_error(TreeError::Shape(e.to_string())))
    }
}

/// The predictions a model of this kind built on `ensemble` gives for rows whose raw margins
/// (`n_groups` per row, before the link) are `margins`, by the same rules as
/// [`ModelKind::predict`]: a booster ends its fit holding every training row's margins, and
/// its training profile is then made without scoring the rows again.
pub fn predictions_from_margins(
    signature: &Signature,
    ensemble: &crate::Ensemble,
    mut margins: Vec<f64>,
) -> Result<Predictions> {
    ensemble.apply_link(&mut margins);
    let (groups, n) = (ensemble.n_groups(), margins.len() / ensemble.n_groups().max(1));
    // Only one of the two answers is taken, and it takes the margins whole.
    let margins = std::cell::Cell::new(margins);
    super::answers::predictions(signature, || probability_matrix(groups, n, margins.take()), || Ok(margins.take()))
}

fn scoring_error(e: TreeError) -> WharfError {
    WharfError::invalid("records", e.to_string())
}

/// The depth of a validated tree (every node reached once from the root).
fn depth(nodes: &[Node]) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(0usize, 1usize)];
    while let Some((i, d)) = stack.pop() {
        deepest = deepest.max(d);
        if let Some(Node::Internal { left, right, .. }) = nodes.get(i) {
            stack.push((*left as usize, d + 1));
            stack.push((*right as usize, d + 1));
        }
    }
    deepest
}

impl ModelKind for TreeEnsemble {
    fn kind_id(&self) -> &str {
        KIND_ID
    }

    fn validate(&self, signature: &Signature, records: &Records) -> Result<()> {
        super::input::rows(signature, records).map(|_| ())
    }

    fn predict(&self, signature: &Signature, records: &Records) -> Result<Predictions> {
        super::answers::predictions(
            signature,
            || self.probabilities(signature, records),
            || Ok(self.outputs(signature, records)?.1),
        )
    }

    fn predict_proba(&self, signature: &Signature, records: &Records) -> Result<Probabilities> {
        super::answers::class_probabilities(signature, "tree ensemble", || self.probabilities(signature, records))
    }

    fn encode(&self) -> Result<Vec<u8>> {
        let body = kind::encode_payload(&BodyRef { spec: self.ensemble.spec(), source: &self.source })?;
        kind::encode_payload(&(PAYLOAD_VERSION, body))
    }

    fn check(&self, sig: &Signature) -> std::result::Result<(), String> {
        let width = self.ensemble.n_features();
        if sig.features.len() != width {
            return Err(format!("the signature has {} features; the ensemble reads {width}", sig.features.len()));
        }
        // A categorical feature (text levels, read as their index) must be one the
        // ensemble's categorical splits read.
        if let Some((_, f)) = sig
            .features
            .iter()
            .enumerate()
            .find(|(i, f)| !matches!(f.kind, FeatureKind::Numeric) && !self.source.categorical_features.contains(i))
        {
            return Err(format!(
                "feature '{}' must be numeric: a tree ensemble reads numbers (category codes too)",
                f.name
            ));
        }
        if let Some(c) = self.source.categorical_features.iter().find(|c| **c >= width) {
            return Err(format!("categorical feature {c} is not below the {width} features"));
        }
        let groups = self.ensemble.n_groups();
        let link = self.ensemble.link();
        match sig.task {
            Task::Classification => {
                let classes = if groups == 1 { 2 } else { groups };
                if sig.classes.len() != classes {
                    return Err(format!(
                        "the signature has {} classes; the ensemble's {groups} outputs give {classes}",
                        sig.classes.len()
                    ));
                }
                if !matches!(link, Link::Sigmoid | Link::ScaledSigmoid(_) | Link::Softmax) {
                    return Err(format!("a classifier's link must give probabilities, not {link:?}"));
                }
            }
            Task::Regression => {
                if groups != 1 || !sig.classes.is_empty() {
                    return Err(format!("a regressor has one output and no classes (found {groups} outputs)"));
                }
            }
            other => return Err(format!("a tree ensemble cannot be a {other} model")),
        }
        Ok(())
    }

    fn work_per_row(&self) -> usize {
        self.levels.max(1)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

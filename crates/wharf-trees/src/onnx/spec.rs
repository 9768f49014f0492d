//! [`PipelineSpec`]: what an ONNX graph compiles to, in plain checkable data. A model
//! artifact stores this (never the protobuf), and loading compiles it again through
//! [`PipelineSpec::validate`] and [`Ensemble::new`](crate::Ensemble::new).

use serde::{Deserialize, Serialize};

use crate::error::TreeError;
use crate::spec::{EnsembleSpec, MAX_FEATURES, MAX_GROUPS};

const F: &str = "onnx";

/// A row-wise transform before the model (`Scaler`, `Imputer`, `Normalizer`), in `f32` as
/// ONNX Runtime computes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Stage {
    /// `Scaler`: `(x - offset) * scale`, per column (or one value for all).
    Scaler {
        /// One value, or one per column.
        offset: Vec<f32>,
        /// One value, or one per column.
        scale: Vec<f32>,
    },
    /// `Imputer`: a value equal to `replaced` (or NaN when `replaced` is NaN) becomes the
    /// column's imputed value.
    Imputer {
        /// One value, or one per column.
        values: Vec<f32>,
        /// The value that means missing.
        replaced: f32,
    },
    /// `Normalizer`: the row divided by its norm.
    Normalizer(Norm),
}

/// A `Normalizer`'s norm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Norm {
    /// Largest value.
    Max,
    /// Sum of absolute values.
    L1,
    /// Euclidean norm.
    L2,
}

/// A model operator's `post_transform`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Transform {
    /// The scores as they are.
    None,
    /// `1 / (1 + e^-s)` per score.
    Logistic,
    /// Softmax over a row's scores.
    Softmax,
    /// Softmax over a row's non-zero scores; zeros stay zero.
    SoftmaxZero,
}

/// How a two-class tree classifier with one scored class gives its two probabilities, as
/// ONNX Runtime does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Binary {
    /// One score per class (multiclass, or both classes weighted).
    PerClass,
    /// All weights non-negative (a forest's averaged probabilities): `[1 - s, s]`.
    Complement,
    /// Signed weights (boosted margins): `[T(-s), T(s)]` for the transform `T`.
    Signed,
}

/// The model operator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Head {
    /// `LinearClassifier` / `LinearRegressor`: `scores = W x + b`.
    Linear {
        /// Row-major `outputs × width`.
        coefficients: Vec<f32>,
        /// One per output.
        intercepts: Vec<f32>,
        /// Applied to the scores.
        transform: Transform,
    },
    /// `TreeEnsembleClassifier` / `TreeEnsembleRegressor` on the tree evaluator: one group
    /// per class (per target for a regressor).
    Trees {
        /// The trees, with ONNX's scoring rules and zero base scores.
        ensemble: EnsembleSpec,
        /// Added to the summed (or averaged) scores, as ONNX Runtime does after the trees.
        base_values: Vec<f32>,
        /// Applied to the scores.
        transform: Transform,
        /// The two-class form.
        binary: Binary,
    },
}

/// A transform of the model's scores after the model operator (`Normalizer`, `Softmax`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Post {
    /// `Normalizer` on the probabilities (skl2onnx renormalises a softmax with L1).
    Normalizer(Norm),
    /// `Softmax` over the last axis.
    Softmax,
}

/// An ONNX graph compiled to stages, one model operator and post-transforms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineSpec {
    /// The graph input's name.
    pub input: String,
    /// Width of an input row.
    pub width: usize,
    /// Row transforms before the model, in order.
    pub stages: Vec<Stage>,
    /// The model operator.
    pub head: Head,
    /// Transforms of the model's scores, in order.
    pub post: Vec<Post>,
    /// Class labels of a classifier (the order of its probabilities); empty for a
    /// regressor.
    pub classes: Vec<String>,
}

impl PipelineSpec {
    /// Values per output row: the classes, or 1.
    pub fn n_outputs(&self) -> usize {
        self.classes.len().max(1)
    }

    /// True for a classifier.
    pub fn is_classifier(&self) -> bool {
        !self.classes.is_empty()
    }

    /// Checks every length and count the compiled pipeline relies on.
    pub fn validate(&self) -> Result<(), TreeError> {
        let w = self.width;
        if w == 0 || w > MAX_FEATURES {
            return Err(TreeError::field(F, "input", format!("{w} features is not between 1 and {MAX_FEATURES}")));
        }
        if self.classes.len() == 1 || self.classes.len() > MAX_GROUPS {
            return Err(TreeError::field(
                F,
                "classes",
                format!("{} classes is not between 2 and {MAX_GROUPS}", self.classes.len()),
            ));
        }
        for (i, stage) in self.stages.iter().enumerate() {
            let per_column = |what: &str, v: &[f32]| {
                if v.len() != 1 && v.len() != w {
                    return Err(TreeError::field(
                        F,
                        format!("stages[{i}].{what}"),
                        format!("{} values for {w} columns (needs 1 or {w})", v.len()),
                    ));
                }
                if v.iter().any(|x| !x.is_finite()) {
                    return Err(TreeError::field(F, format!("stages[{i}].{what}"), "not all finite numbers"));
                }
                Ok(())
            };
            match stage {
                Stage::Scaler { offset, scale } => {
                    per_column("offset", offset)?;
                    per_column("scale", scale)?;
                }
                Stage::Imputer { values, .. } => per_column("values", values)?,
                Stage::Normalizer(_) => {}
            }
        }
        let outputs = self.n_outputs();
        match &self.head {
            Head::Linear { coefficients, intercepts, transform } => {
                if intercepts.len() != outputs || coefficients.len() != outputs * w {
                    return Err(TreeError::field(
                        F,
                        "coefficients",
                        format!(
                            "{} coefficients and {} intercepts for {outputs} outputs of {w} features",
                            coefficients.len(),
                            intercepts.len()
                        ),
                    ));
                }
                if coefficients.iter().chain(intercepts).any(|x| !x.is_finite()) {
                    return Err(TreeError::field(F, "coefficients", "not all finite numbers"));
                }
                if !self.is_classifier() && *transform != Transform::None {
                    return Err(TreeError::field(F, "post_transform", "a regressor's must be NONE"));
                }
            }
            Head::Trees { ensemble, base_values, transform, binary } => {
                ensemble.validate()?;
                if ensemble.semantics != crate::Semantics::Onnx {
                    return Err(TreeError::field(F, "ensemble.semantics", "must be ONNX's"));
                }
                if ensemble.n_features != w {
                    return Err(TreeError::field(
                        F,
                        "ensemble.n_features",
                        format!("{} is not the input's {w} features", ensemble.n_features),
                    ));
                }
                if ensemble.n_groups() != outputs {
                    return Err(TreeError::field(
                        F,
                        "ensemble.base_score",
                        format!("{} groups for {outputs} outputs", ensemble.n_groups()),
                    ));
                }
                if base_values.len() > outputs || base_values.iter().any(|b| !b.is_finite()) {
                    return Err(TreeError::field(F, "base_values", format!("needs at most {outputs} finite values")));
                }
                match binary {
                    Binary::PerClass => {}
                    Binary::Complement | Binary::Signed if outputs == 2 => {}
                    _ => return Err(TreeError::field(F, "binary", "only a two-class classifier has a binary form")),
                }
                if !self.is_classifier() && *transform != Transform::None {
                    return Err(TreeError::field(F, "post_transform", "a regressor's must be NONE"));
                }
            }
        }
        if !self.is_classifier() && !self.post.is_empty() {
            return Err(TreeError::field(F, "post", "a regressor's scores are not transformed"));
        }
        Ok(())
    }
}

//! [`PipelineSpec`]: what an ONNX graph compiles to, in plain checkable data. A model
//! artifact stores this (never the protobuf), and loading compiles it again through
//! [`PipelineSpec::validate`] and [`Ensemble::new`](crate::Ensemble::new).

use serde::{Deserialize, Serialize};

use crate::error::TreeError;
use crate::spec::{EnsembleSpec, MAX_FEATURES, MAX_GROUPS};

const F: &str = "onnx";

/// Most values a row holds while its stages run (the input, every stage's outputs).
pub const MAX_SLOTS: usize = 1 << 20;
/// Most categories of one `OneHotEncoder` column.
pub const MAX_CATEGORIES: usize = 100_000;

/// One step before the model: reads some of the row's values (`input`, indices into the
/// values so far: the input columns first, then each stage's outputs in order) and appends
/// its outputs. Runs in `f32` with ONNX Runtime's formulas.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stage {
    /// The values it reads.
    pub input: Vec<u32>,
    /// What it computes.
    pub op: StageOp,
}

/// What a [`Stage`] computes; every op but `OneHot` has one output per input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum StageOp {
    /// `Scaler`: `(x - offset) * scale`, per value (or one value for all).
    Scaler {
        /// One value, or one per input.
        offset: Vec<f32>,
        /// One value, or one per input.
        scale: Vec<f32>,
    },
    /// `Imputer`: a value equal to `replaced` (or NaN when `replaced` is NaN) becomes the
    /// imputed value.
    Imputer {
        /// One value, or one per input.
        values: Vec<f32>,
        /// The value that means missing.
        replaced: f32,
    },
    /// `Normalizer`: the inputs divided by their norm.
    Normalizer(Norm),
    /// `Cast` to an integer type: toward zero.
    Truncate,
    /// `LabelEncoder` on numbers (scikit-learn's `OrdinalEncoder`): a value equal to
    /// `keys[i]` becomes `values[i]`, any other value (NaN too) `default`.
    Lookup {
        /// Distinct, not NaN.
        keys: Vec<f32>,
        /// One per key.
        values: Vec<f32>,
        /// For a value that is no key.
        default: f32,
    },
    /// `Clip`: a value below `min` becomes `min`, above `max` becomes `max`; NaN stays NaN,
    /// as in ONNX Runtime.
    Clip {
        /// The lower bound.
        min: f32,
        /// The upper bound, at least `min`.
        max: f32,
    },
    /// `OneHotEncoder` (`cats_int64s`): per input, one output per category, `1` where the
    /// value's integer part is that category; an unknown category gives zeros.
    OneHot {
        /// The categories, in output order.
        categories: Vec<i64>,
    },
}

impl Stage {
    /// How many values the stage appends.
    pub fn n_outputs(&self) -> usize {
        match &self.op {
            StageOp::OneHot { categories } => self.input.len() * categories.len(),
            _ => self.input.len(),
        }
    }
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
    /// Steps before the model, in order.
    pub stages: Vec<Stage>,
    /// The values the model reads, in its column order (indices as for [`Stage::input`]).
    pub features: Vec<u32>,
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

    /// Width of the row the model operator reads.
    pub fn model_width(&self) -> usize {
        self.features.len()
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
        let mut slots = w;
        for (i, stage) in self.stages.iter().enumerate() {
            let n = stage.input.len();
            if n == 0 {
                return Err(TreeError::field(F, format!("stages[{i}].input"), "reads no value"));
            }
            if let Some(bad) = stage.input.iter().find(|s| **s as usize >= slots) {
                return Err(TreeError::field(
                    F,
                    format!("stages[{i}].input"),
                    format!("value {bad} is not one of the {slots} computed before it"),
                ));
            }
            let per_input = |what: &str, v: &[f32]| {
                if v.len() != 1 && v.len() != n {
                    return Err(TreeError::field(
                        F,
                        format!("stages[{i}].{what}"),
                        format!("{} values for {n} inputs (needs 1 or {n})", v.len()),
                    ));
                }
                if v.iter().any(|x| !x.is_finite()) {
                    return Err(TreeError::field(F, format!("stages[{i}].{what}"), "not all finite numbers"));
                }
                Ok(())
            };
            match &stage.op {
                StageOp::Scaler { offset, scale } => {
                    per_input("offset", offset)?;
                    per_input("scale", scale)?;
                }
                StageOp::Imputer { values, .. } => per_input("values", values)?,
                StageOp::OneHot { categories } => {
                    if categories.is_empty() || categories.len() > MAX_CATEGORIES {
                        return Err(TreeError::field(
                            F,
                            format!("stages[{i}].categories"),
                            format!("{} categories is not between 1 and {MAX_CATEGORIES}", categories.len()),
                        ));
                    }
                }
                StageOp::Lookup { keys, values, default } => {
                    if keys.is_empty() || keys.len() > MAX_CATEGORIES || keys.len() != values.len() {
                        return Err(TreeError::field(
                            F,
                            format!("stages[{i}].keys"),
                            format!("{} keys and {} values (1 to {MAX_CATEGORIES}, as many)", keys.len(), values.len()),
                        ));
                    }
                    if keys.iter().any(|k| k.is_nan()) || values.iter().any(|v| v.is_nan()) || default.is_nan() {
                        return Err(TreeError::field(
                            F,
                            format!("stages[{i}].keys"),
                            "NaN is neither a key nor a value",
                        ));
                    }
                    let mut sorted = keys.clone();
                    sorted.sort_by(f32::total_cmp);
                    if sorted.windows(2).any(|w| w[0] == w[1]) {
                        return Err(TreeError::field(F, format!("stages[{i}].keys"), "a key appears twice"));
                    }
                }
                StageOp::Clip { min, max } => {
                    if min.is_nan() || max.is_nan() || min > max {
                        return Err(TreeError::field(
                            F,
                            format!("stages[{i}]"),
                            format!("clip bounds {min}..{max} are not an interval"),
                        ));
                    }
                }
                StageOp::Normalizer(_) | StageOp::Truncate => {}
            }
            slots = slots.saturating_add(stage.n_outputs());
            if slots > MAX_SLOTS {
                return Err(TreeError::TooLarge {
                    format: F,
                    what: "the values of a row's stages",
                    found: slots,
                    limit: MAX_SLOTS,
                });
            }
        }
        if self.features.is_empty() || self.features.len() > MAX_FEATURES {
            return Err(TreeError::field(F, "features", format!("{} model inputs", self.features.len())));
        }
        if let Some(bad) = self.features.iter().find(|s| **s as usize >= slots) {
            return Err(TreeError::field(F, "features", format!("value {bad} is not one of the {slots} computed")));
        }
        let w = self.model_width();
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
                        format!("{} is not the model's {w} inputs", ensemble.n_features),
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

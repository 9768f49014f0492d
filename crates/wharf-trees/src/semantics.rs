//! Whose scoring rules an ensemble follows. The spec, the tree walk and the links all read
//! it, so it sits below them.

use serde::{Deserialize, Serialize};

/// Which library's scoring rules the ensemble follows. Each fixes how a value is compared
/// with a threshold, where missing values and unseen categories go, and the precision of
/// the sum and the link, so imported models reproduce their library's predictions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Semantics {
    /// XGBoost: inputs and thresholds are `f32`, left when `x < t`; the margin is summed in
    /// `f32` starting from the base score, in tree order; the links run in `f32`. A
    /// categorical split sends the categories in its set right, and a negative or huge value
    /// left.
    XGBoost,
    /// LightGBM: inputs and thresholds are `f64`, left when `x <= t`; values within `1e-35`
    /// of zero are read as zero; the margin is summed in `f64`; the links run in `f64`. A
    /// categorical split sends the categories in its set left, and NaN or a negative value
    /// right.
    LightGBM,
    /// ONNX's `TreeEnsemble*` operators as ONNX Runtime scores a float input: inputs and
    /// thresholds are `f32`, left (the "true" branch) when `x <= t` (other branch modes are
    /// rewritten to this one at import), NaN goes to the side its node says; each group's
    /// score is summed in `f32` from zero in tree order, base values are added after the
    /// sum (by the ONNX pipeline, not the ensemble). No categorical splits: opset 5's
    /// `BRANCH_MEMBER` is [`Split::Member`](crate::spec::Split::Member) instead (the set goes
    /// right, NaN to its node's side, every other value left).
    Onnx,
}

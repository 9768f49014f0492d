//! Links: from a row's margins to its predictions, in the precision and with the exact
//! formulas of the library the model came from (so a probability matches to the last bit
//! where the platform's `exp` is the library's).

use serde::{Deserialize, Serialize};

use crate::semantics::Semantics;

/// Maps a row's margins (one per output group) to predictions.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Link {
    /// The margin is the prediction (regression, raw scores).
    Identity,
    /// `1 / (1 + e^-m)` per group (binary classification; the probability of the positive
    /// class).
    Sigmoid,
    /// `1 / (1 + e^-(s·m))` (LightGBM's `sigmoid:s` parameter when it is not 1).
    ScaledSigmoid(f64),
    /// `e^m_k / Σ e^m_j` over the groups (multiclass probabilities).
    Softmax,
    /// `e^m` (Poisson and other log-link counts).
    Exp,
}

impl Link {
    /// Writes the predictions of one row's `margins` into `out` (same length).
    pub(crate) fn apply(self, semantics: Semantics, margins: &[f64], out: &mut [f64]) {
        match semantics {
            Semantics::XGBoost | Semantics::Onnx => self.apply_f32(margins, out),
            Semantics::LightGBM => self.apply_f64(margins, out),
        }
    }

    /// XGBoost's transforms (`common::Sigmoid`, `common::Softmax`, `expf`), all on `f32`
    /// margins; the softmax sums its exponentials in `f64` as XGBoost does.
    fn apply_f32(self, margins: &[f64], out: &mut [f64]) {
        match self {
            Link::Identity => out.copy_from_slice(margins),
            Link::Sigmoid | Link::ScaledSigmoid(_) => {
                let scale = if let Link::ScaledSigmoid(s) = self { s as f32 } else { 1.0 };
                for (o, m) in out.iter_mut().zip(margins) {
                    *o = sigmoid_f32(scale * *m as f32) as f64;
                }
            }
            Link::Exp => {
                for (o, m) in out.iter_mut().zip(margins) {
                    *o = (*m as f32).exp() as f64;
                }
            }
            Link::Softmax => {
                let max = margins.iter().fold(f32::NEG_INFINITY, |a, m| (*m as f32).max(a));
                let mut sum = 0.0f64;
                for (o, m) in out.iter_mut().zip(margins) {
                    let e = (*m as f32 - max).exp();
                    sum += e as f64;
                    *o = e as f64;
                }
                let sum = sum as f32;
                for o in out.iter_mut() {
                    *o = (*o as f32 / sum) as f64;
                }
            }
        }
    }

    /// LightGBM's transforms (`ConvertOutput` of its binary, multiclass and regression
    /// objectives), in `f64`.
    fn apply_f64(self, margins: &[f64], out: &mut [f64]) {
        match self {
            Link::Identity => out.copy_from_slice(margins),
            Link::Sigmoid => {
                for (o, m) in out.iter_mut().zip(margins) {
                    *o = 1.0 / (1.0 + (-m).exp());
                }
            }
            Link::ScaledSigmoid(s) => {
                for (o, m) in out.iter_mut().zip(margins) {
                    *o = 1.0 / (1.0 + (-s * m).exp());
                }
            }
            Link::Exp => {
                for (o, m) in out.iter_mut().zip(margins) {
                    *o = m.exp();
                }
            }
            Link::Softmax => {
                let max = margins.iter().fold(f64::NEG_INFINITY, |a, m| m.max(a));
                let mut sum = 0.0f64;
                for (o, m) in out.iter_mut().zip(margins) {
                    *o = (m - max).exp();
                    sum += *o;
                }
                for o in out.iter_mut() {
                    *o /= sum;
                }
            }
        }
    }
}

/// XGBoost's `common::Sigmoid`: the exponent is clamped so `expf` cannot overflow, and a
/// tiny epsilon keeps the division finite.
fn sigmoid_f32(x: f32) -> f32 {
    const EPS: f32 = 1e-16;
    let x = (-x).min(88.7);
    1.0 / (x.exp() + 1.0 + EPS)
}

//! Fitted estimators in Wharf's own persistable form.
//!
//! Training runs on linfa and smartcore; the fitted parameters are then copied into these
//! plain structures. That keeps the artifact independent of those crates' internal layouts
//! (which change between releases and, for linfa's random forest, do not serialize at all),
//! makes predict a tight loop over flat arrays, and lets a loaded artifact be checked for
//! internal consistency before it is ever used.

pub(crate) mod cart;
pub(crate) mod fit;
pub(crate) mod gbdt;
pub(crate) mod kernel;
pub(crate) mod tree;

use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};

pub(crate) use tree::FlatTree;

/// A fitted estimator working on the preprocessed design matrix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum Estimator {
    /// Binary logistic regression: `P(classes[positive]) = σ(x·w + b)`.
    LogisticBinary { weights: Vec<f64>, intercept: f64, positive: u32 },
    /// Multinomial logistic regression: softmax over one linear score per class;
    /// `weights` is `n_classes × width`, row-major, rows in class order.
    LogisticMulti { weights: Vec<f64>, intercept: Vec<f64> },
    /// Ordinary least squares: `x·w + b`.
    Linear { weights: Vec<f64>, intercept: f64 },
    /// One decision tree (class distributions at the leaves).
    Tree(FlatTree),
    /// A bagged forest: the mean of its trees' leaf distributions.
    Forest { trees: Vec<FlatTree> },
    /// k-means: the nearest of `k` centroids (`k × width`, row-major).
    KMeans { centroids: Vec<f64> },
}

/// What an estimator computes for a batch.
pub(crate) enum RawOutput {
    /// Class probabilities, `n × n_classes`.
    Probabilities(Array2<f64>),
    /// Regression values.
    Values(Vec<f64>),
    /// Cluster indices.
    Clusters(Vec<u32>),
}

impl Estimator {
    /// Checks every length and index against the design width and class count, so that a
    /// crafted artifact whose checksum matches still cannot make predict index out of bounds.
    pub(crate) fn check(&self, width: usize, n_classes: usize) -> Result<(), String> {
        let expect = |what: &str, found: usize, want: usize| {
            if found == want {
                Ok(())
            } else {
                Err(format!("{what} has length {found}, expected {want}"))
            }
        };
        match self {
            Estimator::LogisticBinary { weights, positive, .. } => {
                expect("weights", weights.len(), width)?;
                if n_classes != 2 || *positive > 1 {
                    return Err("binary logistic regression needs exactly two classes".into());
                }
                Ok(())
            }
            Estimator::LogisticMulti { weights, intercept } => {
                expect("intercept", intercept.len(), n_classes)?;
                expect("weights", weights.len(), width.saturating_mul(n_classes))
            }
            Estimator::Linear { weights, .. } => expect("weights", weights.len(), width),
            Estimator::Tree(tree) => tree.check(width, n_classes.max(1)),
            Estimator::Forest { trees } => {
                if trees.is_empty() {
                    return Err("forest has no trees".into());
                }
                trees.iter().try_for_each(|t| t.check(width, n_classes.max(1)))
            }
            Estimator::KMeans { centroids } => {
                if width == 0 || centroids.is_empty() || !centroids.len().is_multiple_of(width) {
                    return Err("centroids do not match the design width".into());
                }
                Ok(())
            }
        }
    }

    /// Rough count of basic steps (multiply-adds, tree levels) to score one row.
    pub(crate) fn work_per_row(&self) -> usize {
        match self {
            Estimator::LogisticBinary { weights, .. } | Estimator::Linear { weights, .. } => weights.len(),
            Estimator::LogisticMulti { weights, .. } | Estimator::KMeans { centroids: weights } => weights.len(),
            Estimator::Tree(tree) => tree.depth() as usize + 1,
            Estimator::Forest { trees } => trees.iter().map(|t| t.depth() as usize + 1).sum(),
        }
    }

    /// Runs the estimator on a design matrix whose width was checked.
    pub(crate) fn run(&self, x: ArrayView2<'_, f64>, n_classes: usize) -> RawOutput {
        let n = x.nrows();
        match self {
            Estimator::LogisticBinary { weights, intercept, positive } => {
                let mut out = Array2::zeros((n, 2));
                for (i, row) in x.rows().into_iter().enumerate() {
                    let p = sigmoid(dot(row.as_slice(), weights, row.iter()) + intercept);
                    let pos = *positive as usize;
                    out[(i, pos)] = p;
                    out[(i, 1 - pos)] = 1.0 - p;
                }
                RawOutput::Probabilities(out)
            }
            Estimator::LogisticMulti { weights, intercept } => {
                let width = x.ncols();
                let mut out = Array2::zeros((n, n_classes));
                for (i, row) in x.rows().into_iter().enumerate() {
                    let mut scores = out.row_mut(i);
                    for c in 0..n_classes {
                        let w = &weights[c * width..(c + 1) * width];
                        scores[c] = dot(row.as_slice(), w, row.iter()) + intercept[c];
                    }
                    let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    scores.mapv_inplace(|s| (s - max).exp());
                    let sum: f64 = scores.sum();
                    scores.mapv_inplace(|s| s / sum);
                }
                RawOutput::Probabilities(out)
            }
            Estimator::Linear { weights, intercept } => RawOutput::Values(
                x.rows().into_iter().map(|row| dot(row.as_slice(), weights, row.iter()) + intercept).collect(),
            ),
            Estimator::Tree(tree) => {
                let mut out = Array2::zeros((n, n_classes));
                for (i, row) in x.rows().into_iter().enumerate() {
                    let leaf = tree.leaf(|f| row[f]);
                    out.row_mut(i).iter_mut().zip(leaf).for_each(|(o, v)| *o = *v);
                }
                RawOutput::Probabilities(out)
            }
            Estimator::Forest { trees } => {
                // Tree-major over blocks of rows: one tree's nodes stay in cache while a
                // block of rows walks it, instead of every row touching all 100 trees.
                const BLOCK: usize = 256;
                let mut out = Array2::zeros((n, n_classes));
                // Divide (not multiply by the reciprocal): the same rounding as scikit-learn,
                // so an imported forest reproduces its probabilities bit for bit.
                let n_trees = trees.len() as f64;
                let width = x.ncols();
                let contiguous = x.as_standard_layout();
                let data = contiguous.as_slice().unwrap_or(&[]);
                let outs = out.as_slice_mut().expect("fresh arrays are contiguous");
                for start in (0..n).step_by(BLOCK) {
                    let end = (start + BLOCK).min(n);
                    for tree in trees {
                        for i in start..end {
                            let row = &data[i * width..(i + 1) * width];
                            let leaf = tree.leaf(|f| row[f]);
                            let acc = &mut outs[i * n_classes..(i + 1) * n_classes];
                            acc.iter_mut().zip(leaf).for_each(|(o, v)| *o += *v);
                        }
                    }
                }
                outs.iter_mut().for_each(|v| *v /= n_trees);
                RawOutput::Probabilities(out)
            }
            Estimator::KMeans { centroids } => {
                let width = x.ncols();
                RawOutput::Clusters(
                    x.rows()
                        .into_iter()
                        .map(|row| {
                            let mut best = (0u32, f64::INFINITY);
                            for (c, centroid) in centroids.chunks_exact(width).enumerate() {
                                let d: f64 = row.iter().zip(centroid).map(|(a, b)| (a - b) * (a - b)).sum();
                                if d < best.1 {
                                    best = (c as u32, d);
                                }
                            }
                            best.0
                        })
                        .collect(),
                )
            }
        }
    }
}

/// Dot product; uses the contiguous slice when the row has one (the common case).
#[inline]
fn dot<'a>(row: Option<&[f64]>, w: &[f64], iter: impl Iterator<Item = &'a f64>) -> f64 {
    match row {
        Some(r) => r.iter().zip(w).map(|(a, b)| a * b).sum(),
        None => iter.zip(w).map(|(a, b)| a * b).sum(),
    }
}

#[inline]
pub(crate) fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

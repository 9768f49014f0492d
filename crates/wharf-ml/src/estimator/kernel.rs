//! Scoring kernels: the hot paths of `predict` for numeric matrices, compiled from a model the
//! first time it scores one.
//!
//! The artifact keeps the plain, checkable form (preprocessing steps, a [`FlatTree`] per tree).
//! That form is good to validate and to save, not to score fast: scaling copies the whole
//! input before the arithmetic, and a pointer-chasing tree walk waits on one load per level.
//! A [`Kernel`] is the same model rearranged for speed, derived (never stored) from it:
//!
//! - **Binary logistic regression** folds the standard scaling into the weights and the
//!   intercept (`w·(x-m)/s + b = (w/s)·x + (b - Σ w·m/s)`), so it reads the caller's rows
//!   once, in place, and writes only the probabilities: at 20 features it is bound by memory
//!   bandwidth. A row holding a missing value (`NaN`) is re-scored the plain way.
//! - **Forests** become *perfect* trees of the forest's depth in heap order (children of node
//!   `i` at `2i+1` and `2i+2`): a shallower leaf is copied into every bottom slot below it, so
//!   every walk takes exactly `depth` branch-free steps (`i = 2i + 1 + (x > t)`) with no leaf
//!   test. Several walks (8 rows through one tree, or one row through 8 trees) run
//!   interleaved, so the CPU overlaps their loads instead of waiting on each in turn.
//!   When every threshold is one that an `f32` comparison reproduces exactly (the case for
//!   imported scikit-learn forests, which split on `f32` inputs) nodes are 8 bytes
//!   (`f32` threshold + feature), else 16 (`f64`).
//!
//! Big batches are split over rayon's pool; small ones stay on the calling thread, where the
//! hand-off would cost more than the work.
//!
//! The input is a view with any strides, so a caller's column-major matrix (a pandas frame's
//! block, a Fortran-ordered NumPy array) is scored where it lies instead of being copied
//! whole first: the logistic kernel reads it column by column with the same sums in the same
//! order (so the probabilities are bit-identical to the row-major ones), and the forests
//! already copy rows into a small walk buffer, from any layout.

use std::sync::OnceLock;

use ndarray::{s, ArrayView1, ArrayView2};
use rayon::prelude::*;

use super::tree::{FlatTree, LEAF};
use super::{sigmoid, Estimator};
use crate::preprocess::{Preprocessor, Step};

/// Deepest forest compiled into perfect trees; a node array doubles with each level, so deeper
/// forests keep the node-by-node walk.
const MAX_PERFECT_DEPTH: u32 = 10;

/// Rows per parallel task of the forest; enough to amortise a task, few enough that both
/// threads get work on mid-sized batches.
const FOREST_CHUNK: usize = 256;

/// Rows per parallel task of the linear kernels (memory-bound: bigger pieces).
const LINEAR_CHUNK: usize = 16 * 1024;

/// Rows per block of the column-by-column logistic kernel: long enough runs of each column
/// for the prefetcher (8 KiB), few enough that the partial sums (5 × 8 KiB) stay in L2 while
/// every column of the block streams past.
const COLUMN_BLOCK: usize = 1024;

/// Rows the column-major logistic kernel scores together: 4 partial sums × 4 rows fill 8 SSE2
/// registers.
const ROW_LANES: usize = 4;

/// Walks run interleaved (rows per tree, or trees per row).
const LANES: usize = 8;

/// A model's scoring kernel, built on first use and shared by clones of the model.
///
/// Not part of the artifact and not part of a model's identity: two models that differ only
/// in whether their kernel was built yet are equal.
#[derive(Default)]
pub(crate) struct Compiled(OnceLock<Kernel>);

impl Clone for Compiled {
    fn clone(&self) -> Self {
        // Cheap to rebuild, and a clone may be changed before it scores.
        Compiled::default()
    }
}

impl PartialEq for Compiled {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for Compiled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.get().is_some() { "Compiled(ready)" } else { "Compiled(pending)" })
    }
}

impl Compiled {
    /// The kernel for this preprocessing and estimator, built the first time.
    pub(crate) fn get(&self, preprocessor: &Preprocessor, estimator: &Estimator) -> &Kernel {
        self.0.get_or_init(|| Kernel::build(preprocessor, estimator))
    }
}

/// A fast form of one model; see the module docs.
pub(crate) enum Kernel {
    /// Binary logistic regression with the scaling folded in.
    Logistic(FoldedLogistic),
    /// A forest (or a single tree) as perfect trees with `f32` thresholds.
    Forest32(PerfectForest<f32>),
    /// A forest (or a single tree) as perfect trees with `f64` thresholds.
    Forest64(PerfectForest<f64>),
    /// No fast form: the general path scores this model.
    General,
}

/// The numeric scaling of every feature, when the model has no categorical feature.
fn numeric_scaling(preprocessor: &Preprocessor) -> Option<Vec<(f64, f64)>> {
    preprocessor
        .steps
        .iter()
        .map(|s| match s {
            Step::Scale { mean, scale } => Some((*mean, *scale)),
            Step::OneHot => None,
        })
        .collect()
}

impl Kernel {
    fn build(preprocessor: &Preprocessor, estimator: &Estimator) -> Kernel {
        let Some(scaling) = numeric_scaling(preprocessor) else { return Kernel::General };
        match estimator {
            Estimator::LogisticBinary { weights, intercept, positive } if weights.len() == scaling.len() => {
                Kernel::Logistic(FoldedLogistic::new(weights, *intercept, *positive as usize, &scaling))
            }
            Estimator::Forest { trees } => Kernel::forest(trees, scaling),
            Estimator::Tree(tree) => Kernel::forest(std::slice::from_ref(tree), scaling),
            _ => Kernel::General,
        }
    }

    fn forest(trees: &[FlatTree], scaling: Vec<(f64, f64)>) -> Kernel {
        let depth = trees.iter().map(|t| t.depth()).max().unwrap_or(0);
        if trees.is_empty() || depth > MAX_PERFECT_DEPTH {
            return Kernel::General;
        }
        match PerfectForest::<f32>::new(trees, depth, scaling.clone()) {
            Some(forest) => Kernel::Forest32(forest),
            None => PerfectForest::<f64>::new(trees, depth, scaling).map_or(Kernel::General, Kernel::Forest64),
        }
    }

    /// Class probabilities (`n × n_classes`, row-major) for the raw rows of `x` (before
    /// preprocessing, any layout), or `None` when this kernel does not apply.
    pub(crate) fn probabilities(&self, x: ArrayView2<'_, f64>) -> Option<Vec<f64>> {
        let width = x.ncols();
        if width == 0 {
            return None;
        }
        match self {
            Kernel::Logistic(k) if k.weights.len() == width => Some(k.probabilities(x)),
            Kernel::Forest32(f) if f.scaling.len() == width => Some(f.probabilities(x)),
            Kernel::Forest64(f) if f.scaling.len() == width => Some(f.probabilities(x)),
            _ => None,
        }
    }
}

/// True when the batch is worth splitting over the pool.
fn parallel(rows: usize, chunk: usize) -> bool {
    rows >= 2 * chunk && rayon::current_num_threads() > 1
}

/// Binary logistic regression on raw inputs: `σ(w'·x + b')`.
pub(crate) struct FoldedLogistic {
    weights: Vec<f64>,
    intercept: f64,
    /// Column of `P(positive class)` in the output (0 or 1).
    positive: usize,
    /// Per feature, what a missing value stands for in raw units (the training mean).
    means: Vec<f64>,
}

impl FoldedLogistic {
    fn new(weights: &[f64], intercept: f64, positive: usize, scaling: &[(f64, f64)]) -> Self {
        let folded: Vec<f64> = weights.iter().zip(scaling).map(|(w, (_, s))| w / s).collect();
        // Σ in feature order; with mean 0 and scale 1 (imported models) this is exactly `b`.
        let shift: f64 = folded.iter().zip(scaling).map(|(w, (m, _))| w * m).sum();
        FoldedLogistic {
            weights: folded,
            intercept: intercept - shift,
            positive: positive.min(1),
            means: scaling.iter().map(|(m, _)| *m).collect(),
        }
    }

    fn probabilities(&self, x: ArrayView2<'_, f64>) -> Vec<f64> {
        let rows = x.nrows();
        let mut out = vec![0.0; rows * 2];
        if parallel(rows, LINEAR_CHUNK) {
            out.par_chunks_mut(2 * LINEAR_CHUNK).enumerate().for_each(|(c, out)| {
                let start = c * LINEAR_CHUNK;
                self.fill_any(x.slice(s![start..start + out.len() / 2, ..]), out)
            });
        } else {
            self.fill_any(x, &mut out);
        }
        out
    }

    /// [`fill`](Self::fill) for rows in any layout: in place when they are one row-major
    /// slice, column by column otherwise.
    fn fill_any(&self, x: ArrayView2<'_, f64>, out: &mut [f64]) {
        // Row-major first: a single row is, and must not pay for a list of its columns.
        if let Some(rows) = x.as_slice() {
            return self.fill(rows, out);
        }
        let columns: Option<Vec<&[f64]>> = x.columns().into_iter().map(|c| c.to_slice()).collect();
        match columns {
            Some(columns) => self.fill_column_major(&columns, x, out),
            None => {
                let mut sums = vec![0.0; 5 * COLUMN_BLOCK];
                for (c, out) in out.chunks_mut(2 * COLUMN_BLOCK).enumerate() {
                    let start = c * COLUMN_BLOCK;
                    self.fill_by_columns(x.slice(s![start..start + out.len() / 2, ..]), out, &mut sums);
                }
            }
        }
    }

    /// [`fill`](Self::fill) for a block of rows read a column at a time, which is how a
    /// column-major matrix lies in memory. The four partial sums, the tail (summed from the
    /// neutral element `Iterator::sum` starts from) and their order are exactly [`dot`]'s,
    /// so every row scores bit for bit as it would row-major.
    fn fill_by_columns(&self, x: ArrayView2<'_, f64>, out: &mut [f64], sums: &mut [f64]) {
        let rows = x.nrows();
        let body = self.weights.len() - self.weights.len() % 4;
        // Per row: the four partial sums of `dot`, then its tail.
        let mut acc: Vec<&mut [f64]> = sums.chunks_mut(COLUMN_BLOCK).map(|c| &mut c[..rows]).collect();
        acc.iter_mut().take(4).for_each(|a| a.fill(0.0));
        acc[4].fill(std::iter::empty::<f64>().sum());
        for (j, w) in self.weights.iter().enumerate() {
            let acc = &mut acc[if j < body { j % 4 } else { 4 }];
            let column = x.column(j);
            match column.as_slice() {
                Some(column) => acc.iter_mut().zip(column).for_each(|(a, x)| *a += x * w),
                None => acc.iter_mut().zip(column.iter()).for_each(|(a, x)| *a += x * w),
            }
        }
        for (i, pair) in out.chunks_exact_mut(2).enumerate() {
            let mut z = (acc[0][i] + acc[1][i]) + (acc[2][i] + acc[3][i]) + acc[4][i] + self.intercept;
            if z.is_nan() {
                z = self.with_missing_view(x.row(i));
            }
            let p = sigmoid(z);
            pair[self.positive] = p;
            pair[1 - self.positive] = 1.0 - p;
        }
    }

    /// [`fill_by_columns`](Self::fill_by_columns) for contiguous columns (a column-major
    /// matrix), [`ROW_LANES`] rows at a time with their partial sums held in registers: one
    /// load per cell, as in the row-major kernel. Sums and order are still exactly [`dot`]'s.
    fn fill_column_major(&self, columns: &[&[f64]], x: ArrayView2<'_, f64>, out: &mut [f64]) {
        let width = self.weights.len();
        let body = width - width % 4;
        let zero: f64 = std::iter::empty::<f64>().sum();
        for (g, out) in out.chunks_mut(2 * ROW_LANES).enumerate() {
            let (i0, lanes) = (g * ROW_LANES, out.len() / 2);
            let mut acc = [[0.0f64; ROW_LANES]; 4];
            let mut tail = [zero; ROW_LANES];
            if lanes == ROW_LANES {
                for (c, w) in self.weights[..body].chunks_exact(4).enumerate() {
                    for k in 0..4 {
                        let column = &columns[4 * c + k][i0..i0 + ROW_LANES];
                        for l in 0..ROW_LANES {
                            acc[k][l] += column[l] * w[k];
                        }
                    }
                }
            } else {
                for (j, w) in self.weights[..body].iter().enumerate() {
                    for l in 0..lanes {
                        acc[j % 4][l] += columns[j][i0 + l] * w;
                    }
                }
            }
            for (j, w) in self.weights.iter().enumerate().skip(body) {
                for l in 0..lanes {
                    tail[l] += columns[j][i0 + l] * w;
                }
            }
            for (l, pair) in out.chunks_exact_mut(2).enumerate() {
                let mut z = (acc[0][l] + acc[1][l]) + (acc[2][l] + acc[3][l]) + tail[l] + self.intercept;
                if z.is_nan() {
                    z = self.with_missing_view(x.row(i0 + l));
                }
                let p = sigmoid(z);
                pair[self.positive] = p;
                pair[1 - self.positive] = 1.0 - p;
            }
        }
    }

    #[cold]
    fn with_missing_view(&self, row: ArrayView1<'_, f64>) -> f64 {
        self.with_missing(&row.to_vec())
    }

    fn fill(&self, x: &[f64], out: &mut [f64]) {
        let width = self.weights.len();
        for (row, pair) in x.chunks_exact(width).zip(out.chunks_exact_mut(2)) {
            let mut z = dot(row, &self.weights) + self.intercept;
            if z.is_nan() {
                z = self.with_missing(row);
            }
            let p = sigmoid(z);
            pair[self.positive] = p;
            pair[1 - self.positive] = 1.0 - p;
        }
    }

    /// The score of a row with missing values: each stands for its training mean.
    #[cold]
    fn with_missing(&self, row: &[f64]) -> f64 {
        let filled = row.iter().zip(&self.means).map(|(x, m)| if x.is_nan() { *m } else { *x });
        filled.zip(&self.weights).map(|(x, w)| x * w).sum::<f64>() + self.intercept
    }
}

/// A dot product with four independent sums, so the adds pipeline and vectorise.
#[inline]
pub(crate) fn dot(x: &[f64], w: &[f64]) -> f64 {
    let mut acc = [0.0f64; 4];
    let (xc, wc) = (x.chunks_exact(4), w.chunks_exact(4));
    let tail: f64 = xc.remainder().iter().zip(wc.remainder()).map(|(a, b)| a * b).sum();
    for (a, b) in xc.zip(wc) {
        for k in 0..4 {
            acc[k] += a[k] * b[k];
        }
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

/// A threshold type of the compiled trees: `f32` or `f64`.
pub(crate) trait Threshold: Copy + Default + PartialOrd + Send + Sync + 'static {
    /// The threshold that makes `x <= t` (on this type) split like `x <= t64` on `f64`
    /// inputs rounded to this type, if there is one.
    fn exact(t64: f64) -> Option<Self>;
    /// An input value rounded to this type.
    fn from_input(x: f64) -> Self;
}

impl Threshold for f64 {
    fn exact(t64: f64) -> Option<f64> {
        Some(t64)
    }
    fn from_input(x: f64) -> f64 {
        x
    }
}

impl Threshold for f32 {
    fn exact(t64: f64) -> Option<f32> {
        // `x <= t64` ⟺ `(x as f32) <= a` for every f64 `x` exactly when t64 is the rounding
        // boundary above `a` (what the importer writes for scikit-learn's f32 rule).
        let a = t64 as f32;
        [a, a.next_down(), a.next_up()]
            .into_iter()
            .find(|a| a.is_finite() && super::tree::f32_rule_threshold(*a as f64) == t64)
    }
    fn from_input(x: f64) -> f32 {
        x as f32
    }
}

/// One internal node of a perfect tree: go right when `x[feature] > threshold`.
#[derive(Clone, Copy, Default)]
#[repr(C)]
struct Split<T> {
    threshold: T,
    feature: u32,
}

/// Trees of equal depth `d` in heap order: `2^d` node slots per tree (the last is unused, so
/// a tree's block is a power of two and an index masked by it needs no bounds check) and
/// `2^d × n_outputs` leaf values.
pub(crate) struct PerfectForest<T> {
    depth: u32,
    n_trees: usize,
    n_outputs: usize,
    nodes: Vec<Split<T>>,
    leaves: Vec<f64>,
    /// `(mean, scale)` per input column, applied while rows are copied into the walk buffer.
    scaling: Vec<(f64, f64)>,
}

impl<T: Threshold> PerfectForest<T> {
    fn new(trees: &[FlatTree], depth: u32, scaling: Vec<(f64, f64)>) -> Option<Self> {
        let slots = 1usize << depth;
        let n_outputs = trees.first()?.n_outputs as usize;
        let mut forest = PerfectForest {
            depth,
            n_trees: trees.len(),
            n_outputs,
            nodes: vec![Split::default(); slots * trees.len()],
            leaves: vec![0.0; slots * n_outputs * trees.len()],
            scaling,
        };
        for (t, tree) in trees.iter().enumerate() {
            if tree.n_outputs as usize != n_outputs {
                return None;
            }
            let nodes = &mut forest.nodes[t * slots..(t + 1) * slots];
            let leaves = &mut forest.leaves[t * slots * n_outputs..(t + 1) * slots * n_outputs];
            place(tree, 0, 0, 0, depth, nodes, leaves)?;
        }
        Some(forest)
    }

    /// Probabilities (sums of leaf values over trees, divided by the tree count).
    fn probabilities(&self, x: ArrayView2<'_, f64>) -> Vec<f64> {
        let rows = x.nrows();
        let k = self.n_outputs;
        let mut out = vec![0.0; rows * k];
        let block = |c: usize, out: &[f64]| x.slice(s![c * FOREST_CHUNK..c * FOREST_CHUNK + out.len() / k, ..]);
        if parallel(rows, FOREST_CHUNK) {
            out.par_chunks_mut(FOREST_CHUNK * k)
                .enumerate()
                .for_each_init(Vec::new, |buf, (c, out)| self.accumulate(block(c, out), out, buf));
        } else {
            let mut buf = Vec::new();
            for (c, out) in out.chunks_mut(FOREST_CHUNK * k).enumerate() {
                self.accumulate(block(c, out), out, &mut buf);
            }
        }
        // Divide (not multiply by the reciprocal): the same rounding as scikit-learn, so an
        // imported forest reproduces its probabilities bit for bit.
        let n_trees = self.n_trees as f64;
        out.iter_mut().for_each(|v| *v /= n_trees);
        out
    }

    /// Adds every tree's leaf values, in tree order, for a block of raw rows (any layout:
    /// they are copied, scaled, into the row-major walk buffer either way).
    fn accumulate(&self, x: ArrayView2<'_, f64>, out: &mut [f64], buf: &mut Vec<T>) {
        let width = self.scaling.len();
        let scale = |(v, (m, s)): (&f64, &(f64, f64))| T::from_input(crate::preprocess::scaled(*v, *m, *s));
        buf.clear();
        match x.as_slice() {
            Some(x) => buf.extend(x.chunks_exact(width).flat_map(|row| row.iter().zip(&self.scaling).map(scale))),
            None => buf.extend(x.rows().into_iter().flat_map(|row| row.into_iter().zip(&self.scaling).map(scale))),
        }
        match self.depth {
            0 => self.walk::<1>(buf, out),
            1 => self.walk::<2>(buf, out),
            2 => self.walk::<4>(buf, out),
            3 => self.walk::<8>(buf, out),
            4 => self.walk::<16>(buf, out),
            5 => self.walk::<32>(buf, out),
            6 => self.walk::<64>(buf, out),
            7 => self.walk::<128>(buf, out),
            8 => self.walk::<256>(buf, out),
            9 => self.walk::<512>(buf, out),
            _ => self.walk::<1024>(buf, out),
        }
    }

    /// The walks for one block, monomorphised on the slots per tree (`S = 2^depth`) so the
    /// step count is a constant and node indices are masked instead of bounds-checked.
    fn walk<const S: usize>(&self, xs: &[T], out: &mut [f64]) {
        let width = self.scaling.len();
        let k = self.n_outputs;
        let rows = xs.len() / width;
        let trees: Vec<&[Split<T>; S]> =
            self.nodes.chunks_exact(S).filter_map(|c| c.try_into().ok()).collect::<Vec<_>>();
        let leaves = |t: usize, leaf: usize| &self.leaves[(t * S + leaf) * k..(t * S + leaf + 1) * k];
        let full = rows - rows % LANES;
        // Tree-major over groups of rows: one tree's nodes stay in L1 while the block walks it.
        for (t, nodes) in trees.iter().enumerate() {
            for r0 in (0..full).step_by(LANES) {
                let rows: [&[T]; LANES] = std::array::from_fn(|l| &xs[(r0 + l) * width..(r0 + l + 1) * width]);
                let leaf = walk_lanes::<T, S, LANES>(&[*nodes; LANES], &rows);
                for (l, leaf) in leaf.into_iter().enumerate() {
                    let acc = &mut out[(r0 + l) * k..(r0 + l + 1) * k];
                    acc.iter_mut().zip(leaves(t, leaf)).for_each(|(o, v)| *o += *v);
                }
            }
        }
        // The rest (all of a single-row call): one row through LANES trees at a time.
        for r in full..rows {
            let row = &xs[r * width..(r + 1) * width];
            let acc = &mut out[r * k..(r + 1) * k];
            let groups = trees.chunks_exact(LANES);
            let rest = groups.remainder();
            for (g, group) in groups.enumerate() {
                let nodes: [&[Split<T>; S]; LANES] = std::array::from_fn(|l| group[l]);
                let leaf = walk_lanes::<T, S, LANES>(&nodes, &[row; LANES]);
                for (l, leaf) in leaf.into_iter().enumerate() {
                    acc.iter_mut().zip(leaves(g * LANES + l, leaf)).for_each(|(o, v)| *o += *v);
                }
            }
            let first = trees.len() - rest.len();
            for (i, nodes) in rest.iter().enumerate() {
                let [leaf] = walk_lanes::<T, S, 1>(&[*nodes], &[row]);
                acc.iter_mut().zip(leaves(first + i, leaf)).for_each(|(o, v)| *o += *v);
            }
        }
    }
}

/// `L` independent walks in lockstep; returns each walk's leaf (`0..S`).
#[inline(always)]
fn walk_lanes<T: Threshold, const S: usize, const L: usize>(
    nodes: &[&[Split<T>; S]; L],
    rows: &[&[T]; L],
) -> [usize; L] {
    let mut at = [0usize; L];
    for _ in 0..S.trailing_zeros() {
        for l in 0..L {
            let node = nodes[l][at[l] & (S - 1)];
            // Feature indices were checked against the width when the model was loaded; a
            // bad one would be a bounds panic here, never a wrong read.
            let left = rows[l][node.feature as usize] <= node.threshold;
            at[l] = 2 * at[l] + 2 - left as usize;
        }
    }
    at.map(|i| i + 1 - S)
}

/// Copies the subtree at `node` of `tree` into the perfect tree at heap slot `slot` (depth
/// `level` of `depth`). Returns `None` if a threshold has no exact form in `T`.
fn place<T: Threshold>(
    tree: &FlatTree,
    node: usize,
    slot: usize,
    level: u32,
    depth: u32,
    nodes: &mut [Split<T>],
    leaves: &mut [f64],
) -> Option<()> {
    let n = tree.nodes.get(node)?;
    let k = tree.n_outputs as usize;
    if n.feature == LEAF {
        // Every bottom slot under `slot` gets this leaf's values; the nodes between keep
        // their default split, harmless since both of their sides lead to the same values.
        let below = depth - level;
        let first = ((slot + 1) << below) - 1 - ((1usize << depth) - 1);
        let values = tree.values.get(n.left as usize * k..(n.left as usize + 1) * k)?;
        for leaf in first..first + (1usize << below) {
            leaves.get_mut(leaf * k..(leaf + 1) * k)?.copy_from_slice(values);
        }
        return Some(());
    }
    if level >= depth {
        return None;
    }
    *nodes.get_mut(slot)? = Split { threshold: T::exact(n.threshold)?, feature: n.feature };
    place(tree, n.left as usize, 2 * slot + 1, level + 1, depth, nodes, leaves)?;
    place(tree, n.right as usize, 2 * slot + 2, level + 1, depth, nodes, leaves)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::estimator::tree::Node;
    use ndarray::ShapeBuilder;

    fn leaf(i: u32) -> Node {
        Node { feature: LEAF, threshold: 0.0, left: i, right: 0 }
    }

    /// x0 <= t ? (x1 <= u ? A : B) : C — leaves at depths 2, 2 and 1.
    fn lopsided(t: f64, u: f64) -> FlatTree {
        FlatTree {
            nodes: vec![
                Node { feature: 0, threshold: t, left: 1, right: 4 },
                Node { feature: 1, threshold: u, left: 2, right: 3 },
                leaf(0),
                leaf(1),
                leaf(2),
            ],
            values: vec![1.0, 0.0, 0.25, 0.75, 0.0, 1.0],
            n_outputs: 2,
        }
    }

    fn reference(trees: &[FlatTree], scaling: &[(f64, f64)], x: &[f64]) -> Vec<f64> {
        let width = scaling.len();
        let mut out = Vec::new();
        for row in x.chunks_exact(width) {
            let row: Vec<f64> =
                row.iter().zip(scaling).map(|(v, (m, s))| crate::preprocess::scaled(*v, *m, *s)).collect();
            let mut acc = [0.0; 2];
            for tree in trees {
                acc.iter_mut().zip(tree.leaf(|f| row[f])).for_each(|(a, v)| *a += v);
            }
            out.extend(acc.map(|a| a / trees.len() as f64));
        }
        out
    }

    fn view(x: &[f64], width: usize) -> ArrayView2<'_, f64> {
        ArrayView2::from_shape((x.len() / width, width), x).unwrap()
    }

    /// Calls `check` with the rows of `x` in two other layouts: column-major, and every
    /// other row of a matrix twice as tall. Neither is one row-major slice, so the strided
    /// paths run.
    fn each_layout(x: &[f64], width: usize, mut check: impl FnMut(ArrayView2<'_, f64>)) {
        let rows = view(x, width);
        let mut column_major = ndarray::Array2::zeros((rows.nrows(), width).f());
        column_major.assign(&rows);
        let mut tall = ndarray::Array2::from_elem((2 * rows.nrows(), width), f64::NAN);
        tall.slice_mut(s![..;2, ..]).assign(&rows);
        for layout in [column_major.view(), tall.slice(s![..;2, ..])] {
            let one_line = rows.nrows() < 2 || width < 2;
            assert!(one_line || layout.as_slice().is_none(), "{:?}", layout.strides());
            check(layout);
        }
    }

    fn inputs() -> Vec<f64> {
        let mut x = Vec::new();
        let probes = [f64::NAN, -2.0, -1.0, -0.5, 0.0, 0.5, 0.5f64.next_up(), 1.0, 3.0, f64::INFINITY];
        for a in probes {
            for b in probes {
                x.extend([a, b]);
            }
        }
        x
    }

    #[test]
    fn perfect_forest_agrees_with_the_node_walk_for_every_batch_shape() {
        // 11 trees: more than a lane group, not a multiple of it; 100 rows: the same for rows.
        let trees: Vec<FlatTree> = (0..11).map(|i| lopsided(0.5 - i as f64 * 0.1, -1.0)).collect();
        let scaling = vec![(0.0, 1.0), (0.25, 2.0)];
        let x = inputs();
        let want = reference(&trees, &scaling, &x);
        let kernel = Kernel::forest(&trees, scaling);
        assert!(matches!(kernel, Kernel::Forest64(_)), "0.4 has no exact f32 split");
        for rows in [1, 3, 8, 9, 100] {
            let got = kernel.probabilities(view(&x[..rows * 2], 2)).unwrap();
            assert_eq!(got, want[..rows * 2], "{rows} rows");
            each_layout(&x[..rows * 2], 2, |layout| {
                assert_eq!(kernel.probabilities(layout).unwrap(), got, "{rows} rows, strides {:?}", layout.strides());
            });
        }
    }

    #[test]
    fn f32_boundaries_compile_to_f32_nodes_with_the_same_splits() {
        let f32_rule = crate::estimator::tree::f32_rule_threshold;
        let t = f32_rule(0.5);
        let trees = vec![lopsided(t, f32_rule(-1.0)), lopsided(f32_rule(-0.75), f32_rule(0.1))];
        let scaling = vec![(0.0, 1.0); 2];
        let mut x = inputs();
        // Just around the boundary: the f32 rounding decides the side.
        x.extend([t, 0.0, t.next_up(), 0.0, t.next_down(), 0.0, 0.5f64.next_up(), 0.0]);
        let kernel = Kernel::forest(&trees, scaling.clone());
        assert!(matches!(kernel, Kernel::Forest32(_)));
        assert_eq!(kernel.probabilities(view(&x, 2)).unwrap(), reference(&trees, &scaling, &x));
    }

    #[test]
    fn folded_logistic_matches_scaling_first() {
        let (w, b) = ([0.5, -1.25, 2.0, 0.0, 1.0], 0.1);
        let scaling = [(1.0, 2.0), (-3.0, 0.5), (0.0, 1.0), (4.0, 4.0), (0.5, 1.5)];
        let k = FoldedLogistic::new(&w, b, 1, &scaling);
        let rows = [[1.0, 2.0, 3.0, 4.0, 5.0], [f64::NAN, 0.0, -1.0, f64::NAN, 2.0], [0.0; 5]];
        let x: Vec<f64> = rows.iter().flatten().copied().collect();
        let got = k.probabilities(view(&x, 5));
        for (i, row) in rows.iter().enumerate() {
            let z: f64 = row
                .iter()
                .zip(&scaling)
                .zip(&w)
                .map(|((x, (m, s)), w)| w * crate::preprocess::scaled(*x, *m, *s))
                .sum::<f64>()
                + b;
            let p = sigmoid(z);
            assert!((got[2 * i + 1] - p).abs() < 1e-14, "row {i}: {} vs {p}", got[2 * i + 1]);
            assert!((got[2 * i] - (1.0 - p)).abs() < 1e-14);
        }
    }

    #[test]
    fn folded_logistic_scores_every_layout_bit_for_bit() {
        // Widths with and without a tail past the four partial sums; rows past a column
        // block and (40 000) past the parallel split; NaN cells for the re-scored rows.
        for width in [1, 4, 7, 20] {
            let w: Vec<f64> = (0..width).map(|j| (j as f64 * 0.37).sin()).collect();
            let scaling: Vec<(f64, f64)> = (0..width).map(|j| (j as f64 * 0.1, 1.0 + j as f64 * 0.01)).collect();
            let k = FoldedLogistic::new(&w, 0.3, 1, &scaling);
            for rows in [1, 3, COLUMN_BLOCK + 5, 40_000] {
                let x: Vec<f64> = (0..rows * width)
                    .map(|i| if i % 997 == 3 { f64::NAN } else { ((i * 7919) % 1000) as f64 / 137.0 - 3.0 })
                    .collect();
                let want = k.probabilities(view(&x, width));
                each_layout(&x, width, |layout| {
                    let got = k.probabilities(layout);
                    let same = got.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits());
                    assert!(
                        same && got.len() == want.len(),
                        "width {width}, {rows} rows, strides {:?}",
                        layout.strides()
                    );
                });
            }
        }
    }

    #[test]
    fn identity_scaling_folds_to_the_same_weights() {
        let w = [0.3, -0.7, 1e-3];
        let k = FoldedLogistic::new(&w, -0.2, 1, &[(0.0, 1.0); 3]);
        assert_eq!(k.weights, w);
        assert_eq!(k.intercept, -0.2);
    }

    #[test]
    fn deep_or_categorical_models_keep_the_general_path() {
        let mut deep = FlatTree { nodes: Vec::new(), values: vec![0.5, 0.5], n_outputs: 2 };
        for i in 0..=MAX_PERFECT_DEPTH {
            deep.nodes.push(Node { feature: 0, threshold: i as f64, left: i + 1, right: MAX_PERFECT_DEPTH + 2 });
        }
        deep.nodes.push(leaf(0));
        deep.nodes.push(leaf(0));
        assert_eq!(deep.depth(), MAX_PERFECT_DEPTH + 1);
        assert!(matches!(Kernel::forest(&[deep], vec![(0.0, 1.0)]), Kernel::General));
        let pre = Preprocessor { steps: vec![Step::OneHot] };
        let logistic = Estimator::LogisticBinary { weights: vec![1.0], intercept: 0.0, positive: 1 };
        assert!(matches!(Kernel::build(&pre, &logistic), Kernel::General));
    }
}

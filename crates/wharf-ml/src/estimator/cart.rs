//! CART classification trees, fitted by Wharf itself.
//!
//! linfa's trees sum Gini terms over a `HashMap`, whose iteration order changes from one
//! process to the next; with three or more classes the float sums then differ in their last
//! bits, near-ties between splits go different ways, and the same seed gave a different
//! forest on every run. Here class counts live in a `Vec` indexed by class, impurities are
//! summed in class order in `f64`, and a tie between candidate splits goes to the first one
//! met (features in the order given, thresholds ascending), so a fit depends on nothing but
//! its inputs.
//!
//! The tree is built straight into [`FlatTree`]'s layout, with leaves holding the class
//! distribution of the training rows that reach them, so `predict_proba` needs no second
//! pass over the data.

use ndarray::ArrayView2;

use super::tree::{FlatTree, Node, LEAF};
use wharf_core::{Result, WharfError};

/// What bounds a tree's growth.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Levels of splits below the root; `None` grows until leaves are pure or too small.
    pub(crate) max_depth: Option<usize>,
    /// The fewest training rows a leaf may hold.
    pub(crate) min_samples_leaf: usize,
}

/// Fits a tree on the rows of `x` with class labels `y` (each `< n_classes`), splitting
/// only on the columns listed in `features`. A split sends `x[f] <= threshold` left, the
/// rule every Wharf tree is scored with.
pub(crate) fn fit(
    x: ArrayView2<'_, f64>,
    y: &[usize],
    features: &[usize],
    n_classes: usize,
    limits: Limits,
) -> Result<FlatTree> {
    if x.nrows() == 0 || x.nrows() != y.len() {
        return Err(WharfError::Training(format!("a tree needs rows: got {} rows and {} labels", x.nrows(), y.len())));
    }
    if n_classes == 0 || y.iter().any(|&c| c >= n_classes) {
        return Err(WharfError::Training(format!("class labels must be below {n_classes}")));
    }
    if let Some(&f) = features.iter().find(|&&f| f >= x.ncols()) {
        return Err(WharfError::Training(format!("feature {f} is out of range for {} columns", x.ncols())));
    }
    let min_leaf = limits.min_samples_leaf.max(1);
    let mut nodes: Vec<Node> = Vec::new();
    let mut values: Vec<f64> = Vec::new();
    let mut stack = vec![Pending { rows: (0..x.nrows()).collect(), depth: 0, parent: None }];
    let mut order: Vec<usize> = Vec::new();
    while let Some(Pending { rows, depth, parent }) = stack.pop() {
        let index = nodes.len();
        if let Some((p, is_left)) = parent {
            if is_left {
                nodes[p].left = index as u32;
            } else {
                nodes[p].right = index as u32;
            }
        }
        let counts = class_counts(&rows, y, n_classes);
        let may_split = limits.max_depth.is_none_or(|d| depth < d) && rows.len() >= 2 * min_leaf && !is_pure(&counts);
        let split = if may_split { best_split(x, y, &rows, features, &counts, min_leaf, &mut order) } else { None };
        match split {
            Some(Split { feature, threshold }) => {
                let (left, right): (Vec<usize>, Vec<usize>) = rows.iter().partition(|&&r| x[(r, feature)] <= threshold);
                nodes.push(Node { feature: feature as u32, threshold, left: 0, right: 0 });
                // Right first, so the left child is popped, and numbered, first.
                stack.push(Pending { rows: right, depth: depth + 1, parent: Some((index, false)) });
                stack.push(Pending { rows: left, depth: depth + 1, parent: Some((index, true)) });
            }
            None => {
                let leaf = (values.len() / n_classes) as u32;
                nodes.push(Node { feature: LEAF, threshold: 0.0, left: leaf, right: 0 });
                let n = rows.len() as f64;
                values.extend(counts.iter().map(|&c| c / n));
            }
        }
    }
    Ok(FlatTree { nodes, values, n_outputs: n_classes as u32 })
}

/// A node still to be built: the rows that reach it, its depth, and its parent's index
/// with the side to patch once the node is numbered.
struct Pending {
    rows: Vec<usize>,
    depth: usize,
    parent: Option<(usize, bool)>,
}

struct Split {
    feature: usize,
    threshold: f64,
}

fn class_counts(rows: &[usize], y: &[usize], n_classes: usize) -> Vec<f64> {
    let mut counts = vec![0.0; n_classes];
    for &r in rows {
        counts[y[r]] += 1.0;
    }
    counts
}

fn is_pure(counts: &[f64]) -> bool {
    counts.iter().filter(|&&c| c > 0.0).count() <= 1
}

/// `n · gini` of a node with these class counts: `n - Σ c² / n`, summed in class order.
fn weighted_gini(counts: &[f64], n: f64) -> f64 {
    if n <= 0.0 {
        return 0.0;
    }
    n - counts.iter().map(|c| c * c).sum::<f64>() / n
}

/// The split with the lowest summed child impurity that leaves `min_leaf` rows on each
/// side and lowers the impurity at all; `None` when no split does.
fn best_split(
    x: ArrayView2<'_, f64>,
    y: &[usize],
    rows: &[usize],
    features: &[usize],
    counts: &[f64],
    min_leaf: usize,
    order: &mut Vec<usize>,
) -> Option<Split> {
    let n = rows.len();
    let parent = weighted_gini(counts, n as f64);
    // A split must gain more than rounding noise, or trees grow on ties alone.
    let mut best_score = parent - 1e-9 * (n as f64);
    let mut best = None;
    let mut left = vec![0.0; counts.len()];
    let mut right = vec![0.0; counts.len()];
    for &feature in features {
        order.clear();
        order.extend_from_slice(rows);
        order.sort_by(|&a, &b| x[(a, feature)].total_cmp(&x[(b, feature)]).then(a.cmp(&b)));
        left.iter_mut().for_each(|c| *c = 0.0);
        right.copy_from_slice(counts);
        for i in 0..n - 1 {
            let label = y[order[i]];
            left[label] += 1.0;
            right[label] -= 1.0;
            let (here, next) = (x[(order[i], feature)], x[(order[i + 1], feature)]);
            let n_left = i + 1;
            if here == next || n_left < min_leaf || n - n_left < min_leaf || !here.is_finite() || !next.is_finite() {
                continue;
            }
            let score = weighted_gini(&left, n_left as f64) + weighted_gini(&right, (n - n_left) as f64);
            if score < best_score {
                best_score = score;
                // The midpoint, unless rounding puts it on the upper value (adjacent floats).
                let mid = here + (next - here) / 2.0;
                let threshold = if mid < next { mid } else { here };
                best = Some(Split { feature, threshold });
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn leaf_of(tree: &FlatTree, row: &[f64]) -> Vec<f64> {
        tree.leaf(|f| row[f]).to_vec()
    }

    #[test]
    fn a_separable_column_is_split_at_the_midpoint() {
        let x = array![[1.0, 9.0], [2.0, 1.0], [3.0, 5.0], [10.0, 2.0], [11.0, 7.0], [12.0, 3.0]];
        let y = [0, 0, 0, 1, 1, 1];
        let tree = fit(x.view(), &y, &[0, 1], 2, Limits { max_depth: None, min_samples_leaf: 1 }).unwrap();
        assert_eq!(tree.nodes[0].feature, 0);
        assert_eq!(tree.nodes[0].threshold, 6.5);
        assert_eq!(leaf_of(&tree, &[0.0, 0.0]), vec![1.0, 0.0]);
        assert_eq!(leaf_of(&tree, &[20.0, 0.0]), vec![0.0, 1.0]);
        tree.check(2, 2).unwrap();
    }

    #[test]
    fn depth_and_leaf_size_limits_hold() {
        let x = array![[1.0], [2.0], [3.0], [4.0], [5.0], [6.0]];
        let y = [0, 1, 0, 1, 0, 1];
        let stump = fit(x.view(), &y, &[0], 2, Limits { max_depth: Some(0), min_samples_leaf: 1 }).unwrap();
        assert_eq!(stump.nodes.len(), 1, "depth 0 is a single leaf");
        assert_eq!(leaf_of(&stump, &[1.0]), vec![0.5, 0.5]);
        let wide = fit(x.view(), &y, &[0], 2, Limits { max_depth: None, min_samples_leaf: 3 }).unwrap();
        let leaves = wide.nodes.iter().filter(|n| n.feature == LEAF).count();
        assert!(leaves <= 2, "leaves of at least 3 rows out of 6: at most 2, got {leaves}");
    }

    #[test]
    fn three_classes_fit_the_same_every_time() {
        // Many near-ties among three classes: the case linfa's hash-ordered sums broke.
        let n = 300;
        let x = ndarray::Array2::from_shape_fn((n, 4), |(i, j)| ((i * 7 + j * 13) % 17) as f64 / 3.0);
        let y: Vec<usize> = (0..n).map(|i| (i * 5 + i / 7) % 3).collect();
        let limits = Limits { max_depth: Some(6), min_samples_leaf: 1 };
        let first = fit(x.view(), &y, &[0, 1, 2, 3], 3, limits).unwrap();
        for _ in 0..5 {
            assert_eq!(fit(x.view(), &y, &[0, 1, 2, 3], 3, limits).unwrap(), first);
        }
    }

    #[test]
    fn bad_inputs_are_errors() {
        let x = array![[1.0], [2.0]];
        let limits = Limits { max_depth: None, min_samples_leaf: 1 };
        assert!(fit(x.view(), &[0, 2], &[0], 2, limits).is_err(), "label out of range");
        assert!(fit(x.view(), &[0], &[0], 2, limits).is_err(), "label count");
        assert!(fit(x.view(), &[0, 1], &[1], 2, limits).is_err(), "feature out of range");
    }
}

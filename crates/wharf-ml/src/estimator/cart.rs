//! CART classification trees, fitted by Wharf itself.
//!
//! linfa's trees sum Gini terms over a `HashMap`, whose iteration order changes from one
//! process to the next; with three or more classes the float sums then differ in their last
//! bits, near-ties between splits go different ways, and the same seed gave a different
//! forest on every run. Here class counts live in a `Vec` indexed by class, impurities are
//! summed in class order in `f64`, and a tie between candidate splits goes to the first one
//! met (features in the order visited, thresholds ascending), so a fit depends on nothing
//! but its inputs and, in a forest, its seed.
//!
//! A forest's trees weigh each training row by how often the bootstrap drew it (as
//! scikit-learn does) instead of copying the duplicates: the sums are the same, every sort
//! is over the distinct rows only (about 63% of them), and the design matrix is turned into
//! columns once per forest rather than once per tree.
//!
//! The tree is built straight into [`FlatTree`]'s layout, with leaves holding the class
//! distribution of the training rows that reach them, so `predict_proba` needs no second
//! pass over the data.

use ndarray::ArrayView2;
use rand::Rng;
use rand_xoshiro::Xoshiro256PlusPlus;

use super::tree::{FlatTree, Node, LEAF};
use wharf_core::{Result, WharfError};

/// What bounds a tree's growth.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Levels of splits below the root; `None` grows until leaves are pure or too small.
    pub(crate) max_depth: Option<usize>,
    /// The fewest distinct training rows a leaf may hold.
    pub(crate) min_samples_leaf: usize,
}

/// The design matrix column by column, so that reading one feature for the rows of a node
/// walks one contiguous array.
pub(crate) struct Columns {
    n_rows: usize,
    width: usize,
    values: Vec<f64>,
}

impl Columns {
    pub(crate) fn new(x: ArrayView2<'_, f64>) -> Columns {
        let (n_rows, width) = x.dim();
        let values = x.t().iter().copied().collect();
        Columns { n_rows, width, values }
    }

    fn column(&self, f: usize) -> &[f64] {
        &self.values[f * self.n_rows..(f + 1) * self.n_rows]
    }
}

/// Which features a split may use.
pub(crate) enum Candidates<'a> {
    /// All of these, in this order (a lone decision tree).
    All(&'a [usize]),
    /// A fresh random draw at every node, as in Breiman's random forest and scikit-learn:
    /// features are drawn without replacement until `count` non-constant ones were tried
    /// and one of them gives a split; when none of the first `count` does, drawing goes on
    /// through the rest, so a node becomes a leaf only when no feature splits it.
    Sample { count: usize, rng: &'a mut Xoshiro256PlusPlus },
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
    if x.nrows() != y.len() {
        return Err(WharfError::Training(format!("a tree needs rows: got {} rows and {} labels", x.nrows(), y.len())));
    }
    let weights = vec![1u32; y.len()];
    fit_weighted(&Columns::new(x), y, &weights, n_classes, limits, Candidates::All(features))
}

/// Fits a tree where row `r` counts `weights[r]` times (0: left out), choosing each split's
/// feature among `candidates`.
pub(crate) fn fit_weighted(
    x: &Columns,
    y: &[usize],
    weights: &[u32],
    n_classes: usize,
    limits: Limits,
    mut candidates: Candidates<'_>,
) -> Result<FlatTree> {
    if x.n_rows == 0 || x.n_rows != y.len() || x.n_rows != weights.len() {
        return Err(WharfError::Training(format!("a tree needs rows: got {} rows and {} labels", x.n_rows, y.len())));
    }
    if n_classes == 0 || y.iter().any(|&c| c >= n_classes) {
        return Err(WharfError::Training(format!("class labels must be below {n_classes}")));
    }
    let features: Vec<usize> = match &candidates {
        Candidates::All(features) => features.to_vec(),
        Candidates::Sample { .. } => (0..x.width).collect(),
    };
    if let Some(&f) = features.iter().find(|&&f| f >= x.width) {
        return Err(WharfError::Training(format!("feature {f} is out of range for {} columns", x.width)));
    }
    let mut rows: Vec<u32> = (0..x.n_rows as u32).filter(|&r| weights[r as usize] > 0).collect();
    if rows.is_empty() {
        return Err(WharfError::Training("a tree needs rows: every row has weight 0".into()));
    }
    let labels: Vec<u32> = y.iter().map(|&c| c as u32).collect();
    let min_leaf = limits.min_samples_leaf.max(1);
    let mut nodes: Vec<Node> = Vec::new();
    let mut values: Vec<f64> = Vec::new();
    let mut search = Search::new(n_classes, features);
    let mut stack = vec![Pending { start: 0, end: rows.len(), depth: 0, parent: None }];
    while let Some(Pending { start, end, depth, parent }) = stack.pop() {
        let index = nodes.len();
        if let Some((p, is_left)) = parent {
            if is_left {
                nodes[p].left = index as u32;
            } else {
                nodes[p].right = index as u32;
            }
        }
        let here = &mut rows[start..end];
        let counts = class_counts(here, &labels, weights, n_classes);
        let may_split = limits.max_depth.is_none_or(|d| depth < d) && here.len() >= 2 * min_leaf && !is_pure(&counts);
        let split = if may_split {
            search.best_split(x, &labels, weights, here, &counts, min_leaf, &mut candidates)
        } else {
            None
        };
        match split {
            Some(Split { feature, threshold }) => {
                let column = x.column(feature);
                let mid = start + partition(here, |r| column[r as usize] <= threshold);
                nodes.push(Node { feature: feature as u32, threshold, left: 0, right: 0 });
                // Right first, so the left child is popped, and numbered, first.
                stack.push(Pending { start: mid, end, depth: depth + 1, parent: Some((index, false)) });
                stack.push(Pending { start, end: mid, depth: depth + 1, parent: Some((index, true)) });
            }
            None => {
                let leaf = (values.len() / n_classes) as u32;
                nodes.push(Node { feature: LEAF, threshold: 0.0, left: leaf, right: 0 });
                let n: f64 = counts.iter().sum();
                values.extend(counts.iter().map(|&c| c / n));
            }
        }
    }
    Ok(FlatTree { nodes, values, n_outputs: n_classes as u32 })
}

/// A node still to be built: its rows (`rows[start..end]`), its depth, and its parent's
/// index with the side to patch once the node is numbered.
struct Pending {
    start: usize,
    end: usize,
    depth: usize,
    parent: Option<(usize, bool)>,
}

struct Split {
    feature: usize,
    threshold: f64,
}

/// Moves the rows for which `left` holds to the front; returns how many there are. The
/// order inside each side does not matter: every later step sorts or sums.
fn partition(rows: &mut [u32], left: impl Fn(u32) -> bool) -> usize {
    let mut i = 0;
    let mut j = rows.len();
    while i < j {
        if left(rows[i]) {
            i += 1;
        } else {
            j -= 1;
            rows.swap(i, j);
        }
    }
    i
}

fn class_counts(rows: &[u32], y: &[u32], weights: &[u32], n_classes: usize) -> Vec<f64> {
    let mut counts = vec![0.0; n_classes];
    for &r in rows {
        counts[y[r as usize] as usize] += weights[r as usize] as f64;
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

/// One row of a node seen through one feature.
#[derive(Clone, Copy)]
struct Entry {
    value: f64,
    label: u32,
    weight: u32,
}

/// The buffers of the split search, reused from node to node.
struct Search {
    features: Vec<usize>,
    pool: Vec<usize>,
    entries: Vec<Entry>,
    left: Vec<f64>,
    right: Vec<f64>,
}

/// The best split of one feature so far, by its summed child impurity.
struct Best {
    score: f64,
    split: Option<Split>,
}

impl Search {
    fn new(n_classes: usize, features: Vec<usize>) -> Search {
        Search {
            pool: Vec::with_capacity(features.len()),
            features,
            entries: Vec::new(),
            left: vec![0.0; n_classes],
            right: vec![0.0; n_classes],
        }
    }

    /// The split with the lowest summed child impurity that leaves `min_leaf` rows on each
    /// side and lowers the impurity at all; `None` when no candidate feature gives one.
    #[allow(clippy::too_many_arguments)]
    fn best_split(
        &mut self,
        x: &Columns,
        y: &[u32],
        weights: &[u32],
        rows: &[u32],
        counts: &[f64],
        min_leaf: usize,
        candidates: &mut Candidates<'_>,
    ) -> Option<Split> {
        let n: f64 = counts.iter().sum();
        // A split must gain more than rounding noise, or trees grow on ties alone.
        let mut best = Best { score: weighted_gini(counts, n) - 1e-9 * n, split: None };
        match candidates {
            Candidates::All(_) => {
                for i in 0..self.features.len() {
                    let feature = self.features[i];
                    self.try_feature(x, y, weights, rows, counts, min_leaf, feature, &mut best);
                }
            }
            Candidates::Sample { count, rng } => {
                self.pool.clear();
                self.pool.extend_from_slice(&self.features);
                let mut tried = 0;
                while !self.pool.is_empty() && (tried < *count || best.split.is_none()) {
                    let feature = self.pool.swap_remove(rng.gen_range(0..self.pool.len()));
                    if self.try_feature(x, y, weights, rows, counts, min_leaf, feature, &mut best) {
                        tried += 1;
                    }
                }
            }
        }
        best.split
    }

    /// Scans every threshold of `feature` over `rows`, updating `best`. Returns false when
    /// the feature is constant on these rows (it could not split them).
    #[allow(clippy::too_many_arguments)]
    fn try_feature(
        &mut self,
        x: &Columns,
        y: &[u32],
        weights: &[u32],
        rows: &[u32],
        counts: &[f64],
        min_leaf: usize,
        feature: usize,
        best: &mut Best,
    ) -> bool {
        let column = x.column(feature);
        let entries = &mut self.entries;
        entries.clear();
        entries.extend(rows.iter().map(|&r| Entry {
            value: column[r as usize],
            label: y[r as usize],
            weight: weights[r as usize],
        }));
        // Rows with equal values are never separated, so their order among themselves does
        // not change any score: an unstable sort is as deterministic as a stable one.
        entries.sort_unstable_by(|a, b| a.value.total_cmp(&b.value));
        let m = entries.len();
        if entries[0].value == entries[m - 1].value {
            return false;
        }
        let n: f64 = counts.iter().sum();
        let (left, right) = (&mut self.left, &mut self.right);
        left.iter_mut().for_each(|c| *c = 0.0);
        right.copy_from_slice(counts);
        let mut n_left = 0.0;
        for i in 0..m - 1 {
            let Entry { value: here, label, weight } = entries[i];
            let w = weight as f64;
            left[label as usize] += w;
            right[label as usize] -= w;
            n_left += w;
            let next = entries[i + 1].value;
            let rows_left = i + 1;
            if here == next
                || rows_left < min_leaf
                || m - rows_left < min_leaf
                || !here.is_finite()
                || !next.is_finite()
            {
                continue;
            }
            let score = weighted_gini(left, n_left) + weighted_gini(right, n - n_left);
            if score < best.score {
                best.score = score;
                // The midpoint, unless rounding puts it on the upper value (adjacent floats).
                let mid = here + (next - here) / 2.0;
                let threshold = if mid < next { mid } else { here };
                best.split = Some(Split { feature, threshold });
            }
        }
        true
    }
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

    fn sampled(x: ArrayView2<'_, f64>, y: &[usize], count: usize, seed: u64, depth: usize) -> FlatTree {
        use rand::SeedableRng;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let limits = Limits { max_depth: Some(depth), min_samples_leaf: 1 };
        let weights = vec![1; y.len()];
        let candidates = Candidates::Sample { count, rng: &mut rng };
        fit_weighted(&Columns::new(x), y, &weights, 2, limits, candidates).unwrap()
    }

    /// Eight informative columns: label = majority vote of their signs.
    fn votes(n: usize) -> (ndarray::Array2<f64>, Vec<usize>) {
        let x = ndarray::Array2::from_shape_fn((n, 8), |(i, j)| (((i * 31 + j * 17) * (j + 3)) % 23) as f64 - 11.0);
        let y = (0..n).map(|i| usize::from(x.row(i).iter().filter(|v| **v > 0.0).count() > 4)).collect();
        (x, y)
    }

    #[test]
    fn each_split_draws_its_own_features() {
        // With one candidate per split, a tree drawn once per tree would use one feature;
        // drawn per split, the nodes of one tree spread over the columns.
        let (x, y) = votes(400);
        let tree = sampled(x.view(), &y, 1, 5, 6);
        let mut used: Vec<u32> = tree.nodes.iter().filter(|n| n.feature != LEAF).map(|n| n.feature).collect();
        used.sort_unstable();
        used.dedup();
        assert!(used.len() >= 4, "features used by one tree: {used:?}");
        assert_eq!(sampled(x.view(), &y, 1, 5, 6), tree, "the same seed draws the same tree");
        assert_ne!(sampled(x.view(), &y, 1, 6, 6), tree, "another seed draws another tree");
    }

    #[test]
    fn constant_features_do_not_use_up_the_draw() {
        // Nine constant columns and one that separates: with one candidate per split the
        // draw goes on past the constants, whatever the seed.
        let n = 40;
        let x = ndarray::Array2::from_shape_fn((n, 10), |(i, j)| if j == 7 { i as f64 } else { 1.0 });
        let y: Vec<usize> = (0..n).map(|i| usize::from(i >= 25)).collect();
        for seed in 0..20 {
            let tree = sampled(x.view(), &y, 1, seed, 3);
            assert_eq!(tree.nodes[0].feature, 7, "seed {seed}");
            assert_eq!(tree.nodes[0].threshold, 24.5, "seed {seed}");
        }
    }

    #[test]
    fn a_weight_counts_like_repeated_rows() {
        // A bootstrap sample as weights fits the tree its duplicated rows fit.
        let (x, y) = votes(120);
        let weights: Vec<u32> = (0..120).map(|i| ((i * 7) % 4) as u32).collect();
        let mut repeated = Vec::new();
        for (i, &w) in weights.iter().enumerate() {
            repeated.extend(std::iter::repeat_n(i, w as usize));
        }
        let xs = x.select(ndarray::Axis(0), &repeated);
        let ys: Vec<usize> = repeated.iter().map(|&i| y[i]).collect();
        let all: Vec<usize> = (0..8).collect();
        let limits = Limits { max_depth: Some(5), min_samples_leaf: 1 };
        let by_rows = fit(xs.view(), &ys, &all, 2, limits).unwrap();
        let by_weight = fit_weighted(&Columns::new(x.view()), &y, &weights, 2, limits, Candidates::All(&all)).unwrap();
        assert_eq!(by_weight, by_rows);
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

//! A decision tree as flat arrays: nodes in pre-order, leaves as rows of a value table.

use serde::{Deserialize, Serialize};

/// Marks a leaf in [`Node::feature`].
pub(crate) const LEAF: u32 = u32::MAX;

/// One node. Internal: go `left` when `x[feature] <= threshold`, else `right`.
/// Leaf: `left` is the index of its row in the value table.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) struct Node {
    pub(crate) feature: u32,
    pub(crate) threshold: f64,
    pub(crate) left: u32,
    pub(crate) right: u32,
}

/// A tree whose leaves hold `n_outputs` values each (class probabilities, or one value).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct FlatTree {
    pub(crate) nodes: Vec<Node>,
    pub(crate) values: Vec<f64>,
    pub(crate) n_outputs: u32,
}

impl FlatTree {
    /// Validates structure: children come after their parent (so traversal terminates),
    /// every index is in range, leaves have a full row of values.
    pub(crate) fn check(&self, width: usize, n_outputs: usize) -> Result<(), String> {
        if self.n_outputs as usize != n_outputs {
            return Err(format!("tree has {} outputs, expected {n_outputs}", self.n_outputs));
        }
        if self.nodes.is_empty() {
            return Err("tree has no nodes".into());
        }
        let n_leaves = self.values.len() / n_outputs;
        if !self.values.len().is_multiple_of(n_outputs) {
            return Err("leaf value table is ragged".into());
        }
        for (i, node) in self.nodes.iter().enumerate() {
            if node.feature == LEAF {
                if node.left as usize >= n_leaves {
                    return Err(format!("leaf {i} points past the value table"));
                }
            } else {
                let (l, r) = (node.left as usize, node.right as usize);
                if node.feature as usize >= width {
                    return Err(format!("node {i} splits on feature {} of {width}", node.feature));
                }
                if l <= i || r <= i || l >= self.nodes.len() || r >= self.nodes.len() {
                    return Err(format!("node {i} has an invalid child"));
                }
                if node.threshold.is_nan() {
                    return Err(format!("node {i} has a NaN threshold"));
                }
            }
        }
        Ok(())
    }

    /// Levels below the root of the deepest leaf (0 for a lone leaf). Children come after
    /// their parent (checked on load), so one forward pass sees every parent first.
    pub(crate) fn depth(&self) -> u32 {
        let mut depth = vec![0u32; self.nodes.len()];
        let mut deepest = 0;
        for (i, node) in self.nodes.iter().enumerate() {
            let d = depth[i];
            deepest = deepest.max(d);
            if node.feature != LEAF {
                for child in [node.left, node.right] {
                    if let Some(c) = depth.get_mut(child as usize) {
                        *c = d + 1;
                    }
                }
            }
        }
        deepest
    }

    /// The value row of the leaf that `x` reaches.
    #[inline]
    pub(crate) fn leaf(&self, x: impl Fn(usize) -> f64) -> &[f64] {
        let mut i = 0usize;
        loop {
            let node = &self.nodes[i];
            if node.feature == LEAF {
                let k = self.n_outputs as usize;
                let start = node.left as usize * k;
                return &self.values[start..start + k];
            }
            i = if x(node.feature as usize) <= node.threshold { node.left } else { node.right } as usize;
        }
    }

    /// Converts a fitted linfa tree. `features` maps the tree's column indices back to the
    /// design matrix (a forest fits each tree on a subset of columns). Leaf values are the
    /// class distribution of the training rows that reach the leaf, which is what
    /// `predict_proba` needs and linfa does not keep.
    pub(crate) fn from_linfa(
        tree: &linfa_trees::DecisionTree<f64, usize>,
        features: &[usize],
        rows: &ndarray::ArrayView2<'_, f64>,
        labels: &[usize],
        n_classes: usize,
    ) -> FlatTree {
        let mut nodes = Vec::new();
        let mut leaf_labels = Vec::new();
        // (linfa node, parent index, is left child)
        let mut stack = vec![(tree.root_node(), usize::MAX, false)];
        while let Some((node, parent, is_left)) = stack.pop() {
            let idx = nodes.len();
            if parent != usize::MAX {
                let p: &mut Node = &mut nodes[parent];
                if is_left {
                    p.left = idx as u32;
                } else {
                    p.right = idx as u32;
                }
            }
            let children = node.children();
            match (node.is_leaf(), children[0], children[1]) {
                (false, Some(left), Some(right)) => {
                    let (feature, threshold, _) = node.split();
                    nodes.push(Node { feature: features[feature] as u32, threshold, left: 0, right: 0 });
                    // Right first so the left child is popped, and numbered, first.
                    stack.push((right, idx, false));
                    stack.push((left, idx, true));
                }
                _ => {
                    // linfa marks a node a leaf when one side is empty; its `prediction`
                    // is set on every node, leaf or not.
                    let label = node.prediction().unwrap_or_default();
                    nodes.push(Node { feature: LEAF, threshold: 0.0, left: leaf_labels.len() as u32, right: 0 });
                    leaf_labels.push(label);
                }
            }
        }
        let mut tree =
            FlatTree { nodes, values: vec![0.0; leaf_labels.len() * n_classes], n_outputs: n_classes as u32 };
        // linfa fits with `x <= split` going left (its own predict uses `<`, which disagrees
        // only on ties with a split value; we follow the fitting rule).
        let mut counts = vec![0.0f64; leaf_labels.len()];
        for (row, &label) in rows.rows().into_iter().zip(labels) {
            let leaf = tree.leaf_index(|f| row[f]);
            tree.values[leaf * n_classes + label] += 1.0;
            counts[leaf] += 1.0;
        }
        for (leaf, &count) in counts.iter().enumerate() {
            let dist = &mut tree.values[leaf * n_classes..(leaf + 1) * n_classes];
            if count > 0.0 {
                dist.iter_mut().for_each(|v| *v /= count);
            } else {
                dist[leaf_labels[leaf].min(n_classes - 1)] = 1.0;
            }
        }
        tree
    }

    fn leaf_index(&self, x: impl Fn(usize) -> f64) -> usize {
        let mut i = 0usize;
        loop {
            let node = &self.nodes[i];
            if node.feature == LEAF {
                return node.left as usize;
            }
            i = if x(node.feature as usize) <= node.threshold { node.left } else { node.right } as usize;
        }
    }
}

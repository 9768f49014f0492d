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
}

/// The `f64` threshold `t'` such that, for every `f64` input `x` (NaN aside),
/// `x <= t'` exactly when `((x as f32) as f64) <= t` — scikit-learn's split rule.
///
/// `x as f32` rounds to nearest, ties to even, and is monotonic, so the inputs going left
/// are those up to the rounding boundary between `a`, the largest `f32` not above `t`, and
/// the next `f32`. That boundary (their midpoint) is exact in `f64`; it goes left when the
/// tie rounds down to `a` (even mantissa), otherwise the boundary is just below it.
pub(crate) fn f32_rule_threshold(t: f64) -> f64 {
    // Inputs at or beyond this magnitude round to an infinite f32 (the tie goes to the
    // "even" infinity since f32::MAX has an odd mantissa).
    let overflow = f32::MAX as f64 + 2f64.powi(103);
    if t.is_nan() {
        return t;
    }
    if t >= f32::MAX as f64 {
        // Every finite f32 is at or below t; +inf only when t is +inf.
        return if t == f64::INFINITY { f64::INFINITY } else { overflow.next_down() };
    }
    if t < f32::MIN as f64 {
        // Only inputs that round to -inf go left.
        return -overflow;
    }
    let mut a = t as f32;
    if a as f64 > t {
        a = a.next_down();
    }
    if a == 0.0 {
        a = 0.0; // treat -0.0 as +0.0: same value, even mantissa
    }
    let b = a.next_up();
    let mid = (a as f64 + b as f64) / 2.0;
    if a.to_bits() & 1 == 0 {
        mid
    } else {
        mid.next_down()
    }
}

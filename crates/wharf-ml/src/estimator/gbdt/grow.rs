//! Growing one tree leaf-wise: the leaf whose best split gains most is split next, until the
//! tree has `max_leaves` leaves or no split gains (LightGBM's growth). Leaves deeper than
//! `max_depth` are not split.
//!
//! The rows of the tree live in one array, each leaf owning a contiguous range of it; a split
//! partitions its range stably (lefts first, in their order), so every histogram sums its
//! rows in the same order on every run.

use rayon::prelude::*;

use super::bins::Mapper;
use super::hist::{self, Bin, Layout};
use super::split::{self, Candidate, Decision, Rules};

/// A grown tree, with decisions on bins.
#[derive(Debug, Clone)]
pub(crate) struct Grown {
    pub(crate) nodes: Vec<GNode>,
}

#[derive(Debug, Clone)]
pub(crate) enum GNode {
    /// A leaf's value (already scaled by the learning rate).
    Leaf {
        value: f64,
    },
    Split {
        feature: usize,
        decision: Decision,
        missing_bin: usize,
        left: usize,
        right: usize,
        gain: f64,
    },
}

impl Grown {
    /// The value the tree gives row `r` of the binned `columns`.
    pub(crate) fn predict(&self, columns: &[Vec<u8>], r: usize) -> f64 {
        let mut i = 0;
        loop {
            match &self.nodes[i] {
                GNode::Leaf { value } => return *value,
                GNode::Split { feature, decision, missing_bin, left, right, .. } => {
                    let b = columns[*feature][r] as usize;
                    let goes_left = match decision {
                        Decision::Numeric { bin, missing_left } => {
                            if b == *missing_bin {
                                *missing_left
                            } else {
                                b <= *bin
                            }
                        }
                        Decision::Categorical { left } => left.binary_search(&b).is_ok(),
                    };
                    i = if goes_left { *left } else { *right };
                }
            }
        }
    }
}

/// What growing needs besides the rows.
pub(crate) struct Grower<'a> {
    pub(crate) columns: &'a [Vec<u8>],
    pub(crate) mappers: &'a [Mapper],
    pub(crate) layout: &'a Layout,
    pub(crate) rules: Rules,
    pub(crate) max_leaves: usize,
    pub(crate) max_depth: Option<usize>,
    pub(crate) learning_rate: f64,
}

struct Leaf {
    start: usize,
    end: usize,
    depth: usize,
    node: usize,
    total: Bin,
    hist: Option<Vec<Bin>>,
    best: Option<Candidate>,
}

impl Grower<'_> {
    /// Grows a tree on `rows` (in increasing order) with gradients `g` and hessians `h`
    /// (indexed by row), over the features marked in `active`. Returns the tree and, for
    /// each of its leaves, its node and its rows.
    pub(crate) fn grow(&self, rows: Vec<u32>, g: &[f32], h: &[f32], active: &[bool]) -> (Grown, Leaves) {
        let mut rows = rows;
        let mut scratch: Vec<u32> = Vec::with_capacity(rows.len());
        let root_hist = if rows.len() == g.len() {
            hist::build(self.layout, self.columns, active, None, g, h)
        } else {
            let (og, oh) = gather(&rows, g, h);
            hist::build(self.layout, self.columns, active, Some(&rows), &og, &oh)
        };
        // The root's totals from one feature's bins (every row falls in one bin of each).
        let first = active.iter().position(|a| *a).unwrap_or(0);
        let total = root_hist[self.layout.offsets[first]..self.layout.offsets[first + 1]]
            .iter()
            .fold(Bin::default(), |a, b| a.add(*b));
        let mut nodes = vec![GNode::Leaf { value: 0.0 }];
        let mut leaves = vec![self.leaf(0, rows.len(), 0, 0, total, root_hist, active)];
        while leaves.len() < self.max_leaves {
            // The leaf whose split gains most; the first of equals, so the order is fixed.
            let mut pick: Option<usize> = None;
            for (i, leaf) in leaves.iter().enumerate() {
                if let Some(c) = &leaf.best {
                    if pick.is_none_or(|p| leaves[p].best.as_ref().is_none_or(|b| c.gain > b.gain)) {
                        pick = Some(i);
                    }
                }
            }
            let Some(i) = pick else { break };
            let parent = leaves.swap_remove(i);
            let Some(best) = parent.best else { break };
            let Some(parent_hist) = parent.hist else { break };
            let missing_bin = self.mappers[best.feature].missing_bin();
            let table = best.decision.table(missing_bin);
            let column = &self.columns[best.feature];
            let write = parent.start
                + partition(&mut rows[parent.start..parent.end], &mut scratch, |r| table[column[r as usize] as usize]);
            let (ls, le, rs, re) = (parent.start, write, write, parent.end);
            let (left_node, right_node) = (nodes.len(), nodes.len() + 1);
            nodes.push(GNode::Leaf { value: 0.0 });
            nodes.push(GNode::Leaf { value: 0.0 });
            nodes[parent.node] = GNode::Split {
                feature: best.feature,
                decision: best.decision.clone(),
                missing_bin,
                left: left_node,
                right: right_node,
                gain: best.gain,
            };
            // The smaller child's histogram is built; the larger's is the parent's minus it.
            let left_smaller = le - ls <= re - rs;
            let small = if left_smaller { &rows[ls..le] } else { &rows[rs..re] };
            let (sg, sh) = gather(small, g, h);
            let small_hist = hist::build(self.layout, self.columns, active, Some(small), &sg, &sh);
            let large_hist = hist::subtract(&parent_hist, &small_hist);
            let (left_hist, right_hist) =
                if left_smaller { (small_hist, large_hist) } else { (large_hist, small_hist) };
            let depth = parent.depth + 1;
            leaves.push(self.leaf(ls, le, depth, left_node, best.left, left_hist, active));
            leaves.push(self.leaf(rs, re, depth, right_node, best.right, right_hist, active));
        }
        let mut ranges = Vec::with_capacity(leaves.len());
        let mut leaf_nodes = Vec::with_capacity(leaves.len());
        for leaf in &leaves {
            let value = -leaf.total.g / (leaf.total.h + self.rules.l2) * self.learning_rate;
            let value = if value.is_finite() { value } else { 0.0 };
            nodes[leaf.node] = GNode::Leaf { value };
            ranges.push((value, leaf.start..leaf.end));
            leaf_nodes.push(leaf.node);
        }
        (Grown { nodes }, Leaves { rows, ranges, nodes: leaf_nodes })
    }

    #[allow(clippy::too_many_arguments)]
    fn leaf(
        &self,
        start: usize,
        end: usize,
        depth: usize,
        node: usize,
        total: Bin,
        hist: Vec<Bin>,
        active: &[bool],
    ) -> Leaf {
        let deep = self.max_depth.is_some_and(|d| depth >= d);
        let splittable = !deep && (end - start) as u32 >= 2 * self.rules.min_samples_leaf;
        let best =
            if splittable { split::best(&hist, self.layout, self.mappers, active, total, &self.rules) } else { None };
        let hist = best.is_some().then_some(hist);
        Leaf { start, end, depth, node, total, hist, best }
    }
}

/// Where a tree sent the rows it was grown on: each leaf's value and its range of `rows`.
pub(crate) struct Leaves {
    pub(crate) rows: Vec<u32>,
    pub(crate) ranges: Vec<(f64, std::ops::Range<usize>)>,
    /// Each range's leaf node in the tree.
    pub(crate) nodes: Vec<usize>,
}

impl Leaves {
    /// Sets each leaf of `tree` to `value(its rows)`, here and in the tree, for a loss that
    /// chooses its leaves' values itself.
    pub(crate) fn renew(&mut self, tree: &mut Grown, value: impl Fn(&[u32]) -> f64) {
        for ((v, range), node) in self.ranges.iter_mut().zip(&self.nodes) {
            let renewed = value(&self.rows[range.clone()]);
            *v = if renewed.is_finite() { renewed } else { 0.0 };
            tree.nodes[*node] = GNode::Leaf { value: *v };
        }
    }
}

/// The gradients and hessians of `rows`, in their order, so histogram loops read them
/// sequentially.
fn gather(rows: &[u32], g: &[f32], h: &[f32]) -> (Vec<f32>, Vec<f32>) {
    if rows.len() < 2 * CHUNK {
        return (rows.iter().map(|r| g[*r as usize]).collect(), rows.iter().map(|r| h[*r as usize]).collect());
    }
    rayon::join(
        || rows.par_iter().with_min_len(CHUNK).map(|r| g[*r as usize]).collect(),
        || rows.par_iter().with_min_len(CHUNK).map(|r| h[*r as usize]).collect(),
    )
}

/// Rows per task of the parallel partition and gather.
const CHUNK: usize = 16_384;

/// Stable partition of `rows`: those `left` accepts first, in their order, then the others
/// in theirs; returns how many went left. Big ranges are cut into fixed chunks partitioned in
/// parallel and joined in chunk order, which is the same result.
fn partition(rows: &mut [u32], scratch: &mut Vec<u32>, left: impl Fn(u32) -> bool + Sync) -> usize {
    if rows.len() < 2 * CHUNK {
        scratch.clear();
        let mut write = 0;
        for k in 0..rows.len() {
            let r = rows[k];
            if left(r) {
                rows[write] = r;
                write += 1;
            } else {
                scratch.push(r);
            }
        }
        rows[write..].copy_from_slice(scratch);
        return write;
    }
    let parts: Vec<(Vec<u32>, Vec<u32>)> =
        rows.par_chunks(CHUNK).map(|chunk| chunk.iter().partition(|r| left(**r))).collect();
    let mut write = 0;
    for (lefts, _) in &parts {
        rows[write..write + lefts.len()].copy_from_slice(lefts);
        write += lefts.len();
    }
    let mut at = write;
    for (_, rights) in &parts {
        rows[at..at + rights.len()].copy_from_slice(rights);
        at += rights.len();
    }
    write
}

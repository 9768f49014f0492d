//! Growing one tree leaf-wise: the leaf whose best split gains most is split next, until the
//! tree has `max_leaves` leaves or no split gains (LightGBM's growth). Leaves deeper than
//! `max_depth` are not split.
//!
//! The rows of the tree live in one array, each leaf owning a contiguous range of it; a split
//! partitions its range stably (lefts first, in their order), so every histogram sums its
//! rows in the same order on every run.

use rayon::prelude::*;

use super::bins::Mapper;
use super::hist::{self, Bin, Buffers, Columns, Grad, Hist, Layout};
use super::quantize::{self, Noise, Units};
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
    /// The same bins, checked against the layout, which histograms read.
    pub(crate) bins: Columns<'a>,
    pub(crate) mappers: &'a [Mapper],
    pub(crate) layout: &'a Layout,
    pub(crate) rules: Rules,
    pub(crate) max_leaves: usize,
    pub(crate) max_depth: Option<usize>,
    pub(crate) learning_rate: f64,
}

/// Buffers kept from tree to tree, so growing allocates nothing per leaf once the first tree
/// has been grown.
#[derive(Default)]
pub(crate) struct Scratch {
    /// Histograms no leaf holds.
    free: Buffers,
    /// The right side of a partition.
    right: Vec<u32>,
    /// Each row's gradient and hessian, side by side: one read per row a histogram adds.
    gh: Vec<[f32; 2]>,
    /// The same quantized and packed, when the gradients are.
    packed: Vec<u64>,
}

struct Leaf {
    start: usize,
    end: usize,
    depth: usize,
    node: usize,
    total: Bin,
    hist: Option<Hist>,
    best: Option<Candidate>,
}

impl Grower<'_> {
    /// Grows a tree on `rows` (in increasing order) with gradients `g` and hessians `h`
    /// (indexed by row), over the features marked in `active`; with `quantized`, splits are
    /// chosen on gradients quantized with that noise from that offset. Returns the tree and,
    /// for each of its leaves, its node and its rows.
    pub(crate) fn grow(
        &self,
        rows: Vec<u32>,
        g: &[f32],
        h: &[f32],
        active: &[bool],
        quantized: Option<(&Noise, usize)>,
        scratch: &mut Scratch,
    ) -> (Grown, Leaves) {
        let mut rows = rows;
        scratch.gh.clear();
        scratch.gh.extend(g.iter().zip(h).map(|(g, h)| [*g, *h]));
        let units = match quantized {
            Some((noise, offset)) => quantize::quantize(&scratch.gh, noise, offset, &mut scratch.packed),
            None => Units::EXACT,
        };
        // The split search works in the histograms' units.
        let rules = self.rules.in_units(units.h, quantized.is_some());
        let Scratch { free, right, gh, packed } = scratch;
        let grad = if quantized.is_some() { Grad::Quantized(packed) } else { Grad::Exact(gh) };
        let all = if rows.len() == g.len() { None } else { Some(rows.as_slice()) };
        let root_hist = hist::build(&self.bins, active, all, grad, free);
        // The root's totals from one feature's bins (every row falls in one bin of each).
        let first = active.iter().position(|a| *a).unwrap_or(0);
        let total = root_hist.total(self.layout, first);
        let mut nodes = vec![GNode::Leaf { value: 0.0 }];
        let root_best = self.find(0, rows.len(), 0, total, &root_hist, active, &rules);
        let root_hist = keep(root_hist, &root_best, free);
        let mut leaves =
            vec![Leaf { start: 0, end: rows.len(), depth: 0, node: 0, total, hist: root_hist, best: root_best }];
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
            let column: &[u8] = &self.columns[best.feature];
            let write = parent.start
                + partition(&mut rows[parent.start..parent.end], right, |r| table[column[r as usize] as usize]);
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
                gain: units.gain(best.gain),
            };
            let depth = parent.depth + 1;
            // Children that will not be split need no histogram and no search: those of the
            // tree's last split, or two too small or too deep to split.
            let last = leaves.len() + 2 >= self.max_leaves;
            if last || !(self.splittable(ls, le, depth) || self.splittable(rs, re, depth)) {
                free.give(parent_hist);
                for (start, end, node, total) in [(ls, le, left_node, best.left), (rs, re, right_node, best.right)] {
                    leaves.push(Leaf { start, end, depth, node, total, hist: None, best: None });
                }
                continue;
            }
            // The smaller child's histogram is built; the larger's is the parent's minus it,
            // in the parent's buffer.
            let left_smaller = le - ls <= re - rs;
            let small = if left_smaller { &rows[ls..le] } else { &rows[rs..re] };
            let small_hist = hist::build(&self.bins, active, Some(small), grad, free);
            let parent_hist = hist::subtract(parent_hist, &small_hist, free);
            let (left_hist, right_hist) =
                if left_smaller { (small_hist, parent_hist) } else { (parent_hist, small_hist) };
            // The two children's searches run side by side on two threads.
            let find_left = || self.find(ls, le, depth, best.left, &left_hist, active, &rules);
            let find_right = || self.find(rs, re, depth, best.right, &right_hist, active, &rules);
            let (left_best, right_best) = if rayon::current_num_threads() > 1 {
                rayon::join(find_left, find_right)
            } else {
                (find_left(), find_right())
            };
            for (start, end, node, total, hist, best) in [
                (ls, le, left_node, best.left, left_hist, left_best),
                (rs, re, right_node, best.right, right_hist, right_best),
            ] {
                leaves.push(Leaf { start, end, depth, node, total, hist: keep(hist, &best, free), best });
            }
        }
        let mut ranges = Vec::with_capacity(leaves.len());
        let mut leaf_nodes = Vec::with_capacity(leaves.len());
        // Quantized, the totals were counted in units: the step is taken on the exact
        // gradients of the leaf's rows, each leaf's summed in their order (the leaves in
        // parallel).
        let totals: Vec<Bin> = if quantized.is_some() {
            let exact = |leaf: &Leaf| {
                rows[leaf.start..leaf.end].iter().fold(Bin::default(), |t, r| {
                    let [g, h] = gh[*r as usize];
                    Bin { g: t.g + f64::from(g), h: t.h + f64::from(h), n: t.n + 1 }
                })
            };
            leaves.par_iter().map(exact).collect()
        } else {
            leaves.iter().map(|leaf| leaf.total).collect()
        };
        for (leaf, total) in leaves.into_iter().zip(totals) {
            let value = -total.g / (total.h + self.rules.l2) * self.learning_rate;
            let value = if value.is_finite() { value } else { 0.0 };
            nodes[leaf.node] = GNode::Leaf { value };
            ranges.push((value, leaf.start..leaf.end));
            leaf_nodes.push(leaf.node);
            if let Some(hist) = leaf.hist {
                free.give(hist);
            }
        }
        (Grown { nodes }, Leaves { rows, ranges, nodes: leaf_nodes })
    }

    /// Whether a leaf of rows `start..end` at `depth` may be split at all.
    fn splittable(&self, start: usize, end: usize, depth: usize) -> bool {
        let deep = self.max_depth.is_some_and(|d| depth >= d);
        !deep && (end - start) as u32 >= 2 * self.rules.min_samples_leaf
    }

    /// The best split of a leaf of rows `start..end` at `depth`, `None` when it may not or
    /// cannot be split.
    #[allow(clippy::too_many_arguments)]
    fn find(
        &self,
        start: usize,
        end: usize,
        depth: usize,
        total: Bin,
        hist: &Hist,
        active: &[bool],
        rules: &Rules,
    ) -> Option<Candidate> {
        if self.splittable(start, end, depth) {
            split::best(hist, self.layout, self.mappers, active, total, rules)
        } else {
            None
        }
    }
}

/// A leaf's histogram, kept while the leaf may be split (it has a `best` split); otherwise
/// back to the free buffers.
fn keep(hist: Hist, best: &Option<Candidate>, free: &mut Buffers) -> Option<Hist> {
    if best.is_some() {
        Some(hist)
    } else {
        free.give(hist);
        None
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

/// Rows per task of the parallel partition.
const CHUNK: usize = 16_384;

/// Stable partition of `rows`: those `left` accepts first, in their order, then the others
/// in theirs; returns how many went left. Big ranges are cut into fixed chunks partitioned in
/// parallel and joined in chunk order, which is the same result; on one thread they are not
/// cut.
fn partition(rows: &mut [u32], right: &mut Vec<u32>, left: impl Fn(u32) -> bool + Sync) -> usize {
    if rows.len() < 2 * CHUNK || rayon::current_num_threads() == 1 {
        return partition_here(rows, right, &left);
    }
    let parts: Vec<(Vec<u32>, usize)> = rows
        .par_chunks_mut(CHUNK)
        .map(|chunk| {
            let mut right = Vec::new();
            let write = partition_here(chunk, &mut right, &left);
            (chunk[..write].to_vec(), write)
        })
        .collect();
    // Each chunk is lefts then rights; the rights are gathered first, while the chunks still
    // hold them, then the lefts written over the front in chunk order.
    right.clear();
    for (chunk, (_, write)) in rows.chunks(CHUNK).zip(&parts) {
        right.extend_from_slice(&chunk[*write..]);
    }
    let mut write = 0;
    for (lefts, _) in &parts {
        rows[write..write + lefts.len()].copy_from_slice(lefts);
        write += lefts.len();
    }
    rows[write..].copy_from_slice(right);
    write
}

/// [`partition`] on the calling thread. Every row is written to both sides and the side it
/// belongs to advances: no branch on the (unpredictable) decision.
fn partition_here(rows: &mut [u32], right: &mut Vec<u32>, left: &impl Fn(u32) -> bool) -> usize {
    right.clear();
    right.resize(rows.len(), 0);
    let (mut write, mut other) = (0usize, 0usize);
    for k in 0..rows.len() {
        let r = rows[k];
        let goes_left = left(r);
        // `write <= k` and `other <= k`: both in bounds.
        rows[write] = r;
        right[other] = r;
        write += usize::from(goes_left);
        other += usize::from(!goes_left);
    }
    rows[write..].copy_from_slice(&right[..other]);
    write
}

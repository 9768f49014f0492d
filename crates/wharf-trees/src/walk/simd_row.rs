//! AVX-512 scoring of one row through perfect trees with `f32` thresholds (XGBoost's and
//! ONNX's rules), up to depth 6, reading features 0 to 31.
//!
//! The scalar walk spends about ten instructions per level per tree (load the node, mask
//! its feature, load the value, compare, step), six dependent levels a tree. Here the row
//! sits in two registers, and a depth-6 tree is a top subtree of three levels over eight
//! subtrees of three levels, each 7 nodes (8 lanes). A tree takes two steps:
//! - the top subtrees of two trees, side by side in one register, pick their values from the
//!   row with one two-register permute (no memory, no gather) and one compare gives the
//!   nodes that send the row right; a 128-entry table turns a tree's 7 bits into the subtree
//!   below it (0..8);
//! - that subtree, decided the same way (8 lanes), gives the leaf in it.
//!
//! Every tree's first step runs before any second step (in passes of [`BLOCK`] trees), so
//! the two are not one dependent chain and the CPU overlaps many trees. Trees shallower than
//! 6 are deepened (their leaves repeated below). Deciding every node of a subtree, reached
//! or not, costs the same as deciding one: the lanes are there. The leaves are then added
//! one at a time, in tree order, in `f32`, so the answers are the scalar walk's bit for bit.
//!
//! Measured on the 500-tree depth-6 XGBoost model (20 features): 1.7–1.8 µs a row against
//! the walk's 2.7–2.8 µs. Deciding all 63 nodes in four 16-lane registers and following the
//! mask level by level measured no faster than the walk (a long dependent chain per tree);
//! so did the two steps with each step's two subtrees joined from two loads (the joins cost
//! as much as the rest).

use std::arch::x86_64::*;

use super::{PNode, NAN_LEFT};

/// `f32` lanes per register.
const W: usize = 16;
/// Deepest trees taken; shallower ones are deepened to it (their leaves repeated), so
/// every tree has one layout.
pub(super) const ROW_DEPTH: u32 = 6;
/// Most features read: two registers.
pub(super) const ROW_WIDTH: usize = 32;
/// Most trees × 64 slots laid out (12 bytes a slot).
const MAX_SLOTS: usize = 1 << 22;

/// A depth-3 subtree's seven decisions (bit `k` for its heap slot `k + 1`, set when the row
/// goes right) to the leaf the row reaches (0..8).
const SUBTREE_LEAF: [u8; 128] = {
    let mut t = [0u8; 128];
    let mut bits = 0;
    while bits < 128 {
        let mut at = 1;
        while at < 8 {
            at = 2 * at + ((bits >> (at - 1)) & 1);
        }
        t[bits] = (at - 8) as u8;
        bits += 1;
    }
    t
};

/// Where a depth-6 tree's heap slot `s` (1..64) sits: `(subtree, lane)`, subtree 0 the top
/// three levels and `1 + p` the depth-3 subtree `p` (0..8) below them, each in its own
/// heap order (lane `k` for its slot `k + 1`; lane 7 is padding).
const fn position(s: usize) -> (usize, usize) {
    let level = s.ilog2() as usize;
    if level < 3 {
        return (0, s - 1);
    }
    let j = s - (1 << level);
    let below = level - 3;
    (1 + (j >> below), (1 << below) + (j & ((1 << below) - 1)) - 1)
}

/// The trees as nine 8-node subtrees each (see [`position`]), thresholds and feature
/// indices apart, with a mask per subtree of the nodes that send NaN left: the top subtrees
/// of each pair of trees side by side (one register), the eight below each tree's top one
/// by one; and 64 leaves per tree (a shallower tree's repeated). An odd number of trees
/// gets one more top subtree, all zeros, decided and never used.
pub(crate) struct RowTables {
    top_thresholds: Vec<[f32; W]>,
    top_features: Vec<[i32; W]>,
    top_nan_left: Vec<u16>,
    thresholds: Vec<[[f32; 8]; 8]>,
    features: Vec<[[i32; 8]; 8]>,
    nan_left: Vec<[u8; 8]>,
    leaves: Vec<[f32; 64]>,
    /// One past the largest tree group.
    groups: usize,
    /// One past the largest feature: the row's values from there on are never read.
    reads: usize,
}

/// Trees decided per pass: each pass decides every tree's top subtree, then the subtree
/// below it, so a tree's two steps are not one long dependent chain.
const BLOCK: usize = 256;

impl RowTables {
    /// Lays out perfect trees of `depth` (`2^depth` nodes and leaves each, heap order from
    /// 1), or `None` when they are too deep, too many or read past [`ROW_WIDTH`] features.
    pub(super) fn new(nodes: &[PNode<f32>], leaves: &[f32], groups: &[u32], depth: u32, reads: usize) -> Option<Self> {
        let slots = 1usize << depth;
        let trees = groups.len();
        if depth > ROW_DEPTH
            || reads > ROW_WIDTH
            || trees.saturating_mul(64) > MAX_SLOTS
            || nodes.len() != trees * slots
            || leaves.len() != trees * slots
        {
            return None;
        }
        let pairs = trees.div_ceil(2);
        let mut t = RowTables {
            top_thresholds: vec![[0.0; W]; pairs],
            top_features: vec![[0; W]; pairs],
            top_nan_left: vec![0; pairs],
            thresholds: vec![[[0.0; 8]; 8]; trees],
            features: vec![[[0; 8]; 8]; trees],
            nan_left: vec![[0; 8]; trees],
            leaves: vec![[0.0; 64]; trees],
            groups: groups.iter().map(|g| *g as usize + 1).max().unwrap_or(0),
            reads,
        };
        for (i, (tree, values)) in nodes.chunks_exact(slots).zip(leaves.chunks_exact(slots)).enumerate() {
            let (pair, half) = (i / 2, 8 * (i % 2));
            // Slots below the tree's depth stay 0 (feature 0, threshold 0): decided, but
            // every leaf under them is the same.
            for (s, node) in tree.iter().enumerate().skip(1) {
                let feature = i32::try_from(node.feature & !NAN_LEFT).ok()?;
                let nan = node.feature & NAN_LEFT != 0;
                match position(s) {
                    (0, lane) => {
                        *t.top_thresholds.get_mut(pair)?.get_mut(half + lane)? = node.threshold;
                        *t.top_features.get_mut(pair)?.get_mut(half + lane)? = feature;
                        *t.top_nan_left.get_mut(pair)? |= u16::from(nan) << (half + lane);
                    }
                    (sub, lane) => {
                        *t.thresholds.get_mut(i)?.get_mut(sub - 1)?.get_mut(lane)? = node.threshold;
                        *t.features.get_mut(i)?.get_mut(sub - 1)?.get_mut(lane)? = feature;
                        *t.nan_left.get_mut(i)?.get_mut(sub - 1)? |= u8::from(nan) << lane;
                    }
                }
            }
            for (l, v) in t.leaves.get_mut(i)?.iter_mut().enumerate() {
                *v = values[(l >> (ROW_DEPTH - depth)) & (slots - 1)];
            }
        }
        Some(t)
    }
}

/// Adds every tree's leaf, in tree order, to one row's margins (`acc`, one per group), as
/// the scalar walk does; false (nothing added) when the arguments do not fit the kernel.
/// `LE`: a value equal to the threshold goes left (ONNX's `<=`, not XGBoost's `<`).
pub(super) fn accumulate<const LE: bool>(t: &RowTables, tree_groups: &[u32], row: &[f32], acc: &mut [f32]) -> bool {
    // What the unsafe code below relies on, checked here: the CPU has AVX-512F and
    // AVX-512BW (the caller builds tables only then; checked again, cheaply); every group
    // fits `acc`. Feature indices need no check: a permute reads any index modulo 32, from
    // registers.
    let trees = tree_groups.len();
    let fits = row.len() >= t.reads
        && t.groups <= acc.len()
        && t.leaves.len() == trees
        && t.top_thresholds.len() == trees.div_ceil(2)
        && super::vector_cpu();
    if !fits {
        return false;
    }
    // The values the trees read (a wider row's others are never read).
    let mut padded = [0.0f32; ROW_WIDTH];
    let read = row.len().min(ROW_WIDTH);
    padded[..read].copy_from_slice(&row[..read]);
    // SAFETY: the conditions above are the kernel's contract.
    unsafe {
        if padded.iter().any(|x| x.is_nan()) {
            decide::<LE, true>(t, tree_groups, &padded, acc)
        } else {
            decide::<LE, false>(t, tree_groups, &padded, acc)
        }
    }
    true
}

/// Every tree, in order, [`BLOCK`] at a pass. `NAN`: the row holds a missing value.
///
/// # Safety
/// AVX-512F and AVX-512BW are available; every group is below `acc.len()`.
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn decide<const LE: bool, const NAN: bool>(
    t: &RowTables,
    tree_groups: &[u32],
    row: &[f32; ROW_WIDTH],
    acc: &mut [f32],
) {
    // SAFETY: `row` is 32 values: two registers.
    let (lo, hi) = unsafe { (_mm512_loadu_ps(row.as_ptr()), _mm512_loadu_ps(row.as_ptr().add(W))) };
    // The nodes (of `lanes`) that send the row right: `x < t` (`x <= t`) goes left, as in
    // the scalar walk; NaN compares unordered, so it goes right unless the node sends it
    // left.
    let right = |f: __m512i, th: __m512, lanes: u16, nan_left: u16| {
        let x = _mm512_permutex2var_ps(lo, f, hi);
        let mut r = if LE {
            _mm512_mask_cmp_ps_mask::<_CMP_NLE_UQ>(lanes, x, th)
        } else {
            _mm512_mask_cmp_ps_mask::<_CMP_NLT_UQ>(lanes, x, th)
        };
        if NAN {
            r &= !(_mm512_cmp_ps_mask::<_CMP_UNORD_Q>(x, x) & nan_left);
        }
        r
    };
    let leaf = |bits: u16| SUBTREE_LEAF[usize::from(bits & 127)];
    let single = acc.len() == 1;
    let mut total = acc.first().copied().unwrap_or(0.0);
    let mut tops = [0u8; BLOCK];
    let (tops, _) = tops.as_chunks_mut::<2>();
    let top =
        t.top_thresholds.chunks(BLOCK / 2).zip(t.top_features.chunks(BLOCK / 2)).zip(t.top_nan_left.chunks(BLOCK / 2));
    let below = t.thresholds.chunks(BLOCK).zip(t.features.chunks(BLOCK)).zip(t.nan_left.chunks(BLOCK));
    for ((((top_thr, top_feat), top_nan), ((thr, feat), nan)), (values, groups)) in
        top.zip(below).zip(t.leaves.chunks(BLOCK).zip(tree_groups.chunks(BLOCK)))
    {
        // Every pair's top subtrees: which subtree below each tree's row goes to.
        for (((top, th), f), nan) in tops.iter_mut().zip(top_thr).zip(top_feat).zip(top_nan) {
            // SAFETY: both are 16 values.
            let (th, f) = unsafe { (_mm512_loadu_ps(th.as_ptr()), _mm512_loadu_si512(f.as_ptr().cast())) };
            let r = right(f, th, u16::MAX, *nan);
            *top = [leaf(r), leaf(r >> 8)];
        }
        // The subtree below each, and its leaf, added in tree order.
        let trees = tops.as_flattened().iter().zip(thr).zip(feat).zip(nan).zip(values).zip(groups);
        for (((((p, thr), feat), nan), values), group) in trees {
            let p = usize::from(*p) & 7;
            // SAFETY: both are 8 values (the register's upper half is not compared).
            let (th, f) = unsafe {
                (
                    _mm512_castps256_ps512(_mm256_loadu_ps(thr[p].as_ptr())),
                    _mm512_castsi256_si512(_mm256_loadu_si256(feat[p].as_ptr().cast())),
                )
            };
            let r = right(f, th, 0xff, u16::from(nan[p]));
            let value = values[(8 * p + usize::from(leaf(r))) & 63];
            if single {
                total += value;
            } else {
                // SAFETY: every group is below `acc.len()` (the contract).
                unsafe { *acc.get_unchecked_mut(*group as usize) += value };
            }
        }
    }
    if single {
        acc[0] = total;
    }
}

//! AVX-512 scoring of one row through perfect trees up to depth 6 reading features 0 to 31:
//! `f32` thresholds compared as they are (XGBoost's and ONNX's rules), LightGBM's `f64`
//! ones by rank (see [`RowTables`]).
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
//! one at a time, in tree order, in the source's precision (`f32`, or `f64`), so the answers
//! are the scalar walk's bit for bit.
//!
//! Measured on the 500-tree depth-6 models (20 features): 1.7–1.8 µs a row against the
//! walk's 2.6–2.7 µs (XGBoost), 1.9 against 2.9 µs (LightGBM, about 0.1 µs of it the
//! ranks). Deciding all 63 nodes in four 16-lane registers and following the mask level by
//! level measured no faster than the walk (a long dependent chain per tree); so did the two
//! steps with each step's two subtrees joined from two loads (the joins cost as much as the
//! rest).

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
///
/// A threshold is an `f32`'s bits, or for `f64` sources its *rank*: its index among the
/// distinct thresholds of its feature (`cuts`), ascending. A row's value then becomes the
/// number of its feature's thresholds below it, `c(x)`, and `x <= t_k` exactly when
/// `c(x) <= k`: LightGBM's `f64` rule decided on 16 integer lanes, after one binary search
/// per feature.
pub(crate) struct RowTables<A> {
    top_thresholds: Vec<[u32; W]>,
    top_features: Vec<[i32; W]>,
    top_nan_left: Vec<u16>,
    thresholds: Vec<[[u32; 8]; 8]>,
    features: Vec<[[i32; 8]; 8]>,
    nan_left: Vec<[u8; 8]>,
    leaves: Vec<[A; 64]>,
    /// One past the largest tree group.
    groups: usize,
    /// One past the largest feature: the row's values from there on are never read.
    reads: usize,
    /// Ranked thresholds: per feature below `reads`, its distinct thresholds, ascending
    /// (`-0.0` and `0.0` are one), then `+∞` up to `stride` values, a power of two above the
    /// most any feature has; empty for `f32` thresholds.
    cuts: Vec<f64>,
    stride: usize,
}

/// Trees decided per pass: each pass decides every tree's top subtree, then the subtree
/// below it, so a tree's two steps are not one long dependent chain.
const BLOCK: usize = 256;

/// A ranked row value that is missing: below every rank, and told apart by the NaN test.
const MISSING: u32 = u32::MAX;
/// Most ranked thresholds laid out (`features × stride`, 8 bytes each; 2 MiB): past this
/// the searches would miss the cache, and the trees are walked.
const MAX_CUTS: usize = 1 << 18;

impl<A: Copy + Default> RowTables<A> {
    /// Lays out perfect trees of `depth` (`2^depth` nodes and leaves each, heap order from
    /// 1), or `None` when they are too deep, too many or read past [`ROW_WIDTH`] features.
    /// `key` is a node's threshold as compared (from its feature and threshold).
    fn new<T: Copy>(
        nodes: &[PNode<T>],
        leaves: &[A],
        groups: &[u32],
        depth: u32,
        reads: usize,
        (cuts, stride): (Vec<f64>, usize),
        key: impl Fn(&[f64], usize, T) -> Option<u32>,
    ) -> Option<Self> {
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
            top_thresholds: vec![[0; W]; pairs],
            top_features: vec![[0; W]; pairs],
            top_nan_left: vec![0; pairs],
            thresholds: vec![[[0; 8]; 8]; trees],
            features: vec![[[0; 8]; 8]; trees],
            nan_left: vec![[0; 8]; trees],
            leaves: vec![[A::default(); 64]; trees],
            groups: groups.iter().map(|g| *g as usize + 1).max().unwrap_or(0),
            reads,
            cuts,
            stride,
        };
        for (i, (tree, values)) in nodes.chunks_exact(slots).zip(leaves.chunks_exact(slots)).enumerate() {
            let (pair, half) = (i / 2, 8 * (i % 2));
            // Slots below the tree's depth stay 0 (feature 0, threshold 0): decided, but
            // every leaf under them is the same.
            for (s, node) in tree.iter().enumerate().skip(1) {
                let f = node.feature & !NAN_LEFT;
                let feature = i32::try_from(f).ok()?;
                let threshold = key(&t.cuts, f as usize, node.threshold)?;
                let nan = node.feature & NAN_LEFT != 0;
                match position(s) {
                    (0, lane) => {
                        *t.top_thresholds.get_mut(pair)?.get_mut(half + lane)? = threshold;
                        *t.top_features.get_mut(pair)?.get_mut(half + lane)? = feature;
                        *t.top_nan_left.get_mut(pair)? |= u16::from(nan) << (half + lane);
                    }
                    (sub, lane) => {
                        *t.thresholds.get_mut(i)?.get_mut(sub - 1)?.get_mut(lane)? = threshold;
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

    /// True when the kernel may run on rows of `width` into `acc` for these trees (what
    /// its unsafe code relies on): the CPU has AVX-512F and AVX-512BW (the caller builds
    /// tables only then; checked again, cheaply), the tables hold `trees` trees, every group
    /// fits `acc`. Feature indices need no check: a permute reads any index modulo 32, from
    /// registers.
    fn fits(&self, width: usize, trees: usize, acc: usize) -> bool {
        width >= self.reads
            && self.groups <= acc
            && self.leaves.len() == trees
            && self.top_thresholds.len() == trees.div_ceil(2)
            && super::vector_cpu()
    }
}

impl RowTables<f32> {
    /// Tables for `f32` thresholds, compared as they are.
    pub(super) fn new_f32(
        nodes: &[PNode<f32>],
        leaves: &[f32],
        groups: &[u32],
        depth: u32,
        reads: usize,
    ) -> Option<Self> {
        Self::new(nodes, leaves, groups, depth, reads, (Vec::new(), 0), |_, _, t: f32| Some(t.to_bits()))
    }
}

impl RowTables<f64> {
    /// Tables for `f64` thresholds, compared by rank (see [`RowTables`]).
    pub(super) fn new_ranked(
        nodes: &[PNode<f64>],
        leaves: &[f64],
        groups: &[u32],
        depth: u32,
        reads: usize,
    ) -> Option<Self> {
        if reads > ROW_WIDTH {
            return None;
        }
        let mut cuts = vec![Vec::new(); reads];
        for node in nodes {
            cuts.get_mut((node.feature & !NAN_LEFT) as usize)?.push(node.threshold);
        }
        for c in &mut cuts {
            // Thresholds are never NaN (validated); `-0.0` sorts next to `0.0` and they
            // merge, as they compare equal.
            c.sort_by(f64::total_cmp);
            c.dedup_by(|a, b| a == b);
        }
        let stride = (cuts.iter().map(Vec::len).max().unwrap_or(0) + 1).next_power_of_two();
        if stride.saturating_mul(reads) > MAX_CUTS {
            return None;
        }
        let mut flat = Vec::with_capacity(stride * reads);
        for c in &cuts {
            flat.extend_from_slice(c);
            flat.resize(flat.len() + stride - c.len(), f64::INFINITY);
        }
        let rank = |cuts: &[f64], f: usize, t: f64| {
            let c = cuts.get(f * stride..(f + 1) * stride)?;
            let k = c.partition_point(|u| *u < t);
            (c.get(k) == Some(&t)).then_some(u32::try_from(k).ok()?)
        };
        Self::new(nodes, leaves, groups, depth, reads, (flat, stride), rank)
    }
}

/// Adds every tree's leaf, in tree order, to one row's margins (`acc`, one per group), as
/// the scalar walk does; false (nothing added) when the arguments do not fit the kernel.
/// `LE`: a value equal to the threshold goes left (ONNX's `<=`, not XGBoost's `<`).
pub(super) fn accumulate<const LE: bool>(
    t: &RowTables<f32>,
    tree_groups: &[u32],
    row: &[f32],
    acc: &mut [f32],
) -> bool {
    if !t.fits(row.len(), tree_groups.len(), acc.len()) {
        return false;
    }
    // The values the trees read (a wider row's others are never read).
    let mut keys = [0u32; ROW_WIDTH];
    for (k, x) in keys.iter_mut().zip(row) {
        *k = x.to_bits();
    }
    let nan = row.iter().take(ROW_WIDTH).any(|x| x.is_nan());
    // SAFETY: `fits` checked the kernel's contract.
    unsafe {
        if nan {
            decide::<f32, LE, false, true>(t, tree_groups, &keys, acc)
        } else {
            decide::<f32, LE, false, false>(t, tree_groups, &keys, acc)
        }
    }
    true
}

/// [`accumulate`] for `f64` thresholds compared by rank, `x <= t` going left (LightGBM's
/// rule; the row's values already read as LightGBM reads them).
pub(super) fn accumulate_ranked(t: &RowTables<f64>, tree_groups: &[u32], row: &[f64], acc: &mut [f64]) -> bool {
    if !t.fits(row.len(), tree_groups.len(), acc.len()) || t.cuts.len() != t.reads * t.stride || t.reads > row.len() {
        return false;
    }
    // Each read feature's rank, `c(x)`: a search by halving steps in its padded thresholds
    // (the `+∞` padding is never below a value; NaN is below nothing, and marked after), all
    // features in lockstep and without branches so the searches overlap: 0.1 µs a row
    // faster than one `partition_point` per feature (whose exits mispredict), and than
    // lockstep with a plain `if` (compiled to a branch). AVX-512 gathers measured no faster.
    let row = &row[..t.reads];
    let mut at = [0usize; ROW_WIDTH];
    let mut step = t.stride / 2;
    while step > 0 {
        for ((at, x), cuts) in at.iter_mut().zip(row).zip(t.cuts.chunks_exact(t.stride)) {
            // `at + step - 1 < stride`: `at` is a sum of larger steps.
            let below = cuts[(*at + step - 1) & (t.stride - 1)] < *x;
            *at += std::hint::select_unpredictable(below, step, 0);
        }
        step /= 2;
    }
    let mut keys = [0u32; ROW_WIDTH];
    let mut nan = false;
    for ((k, x), at) in keys.iter_mut().zip(row).zip(at) {
        // At most MAX_CUTS thresholds: the count fits.
        *k = at as u32;
        if x.is_nan() {
            nan = true;
            *k = MISSING;
        }
    }
    // SAFETY: `fits` checked the kernel's contract.
    unsafe {
        if nan {
            decide::<f64, true, true, true>(t, tree_groups, &keys, acc)
        } else {
            decide::<f64, true, true, false>(t, tree_groups, &keys, acc)
        }
    }
    true
}

/// Every tree, in order, [`BLOCK`] at a pass. `RANK`: keys are ranks (`x` goes right when
/// its rank is above the threshold's; a missing value is [`MISSING`]), else `f32` bits.
/// `NAN`: the row holds a missing value.
///
/// # Safety
/// AVX-512F and AVX-512BW are available; every group is below `acc.len()`.
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn decide<A, const LE: bool, const RANK: bool, const NAN: bool>(
    t: &RowTables<A>,
    tree_groups: &[u32],
    row: &[u32; ROW_WIDTH],
    acc: &mut [A],
) where
    A: Copy + Default + std::ops::AddAssign,
{
    // SAFETY: `row` is 32 values: two registers.
    let (lo, hi) = unsafe { (_mm512_loadu_si512(row.as_ptr().cast()), _mm512_loadu_si512(row.as_ptr().add(W).cast())) };
    // The nodes (of `lanes`) that send the row right: `x < t` (`x <= t`) goes left, as in
    // the scalar walk; a missing value goes right unless the node sends it left (an `f32`
    // NaN compares unordered, so "not less" holds for it).
    let right = |f: __m512i, th: __m512i, lanes: u16, nan_left: u16| {
        let x = _mm512_permutex2var_epi32(lo, f, hi);
        if RANK {
            let mut r = _mm512_mask_cmpgt_epi32_mask(lanes, x, th);
            if NAN {
                r |= _mm512_cmpeq_epi32_mask(x, _mm512_set1_epi32(MISSING as i32)) & !nan_left;
            }
            r
        } else {
            let (x, th) = (_mm512_castsi512_ps(x), _mm512_castsi512_ps(th));
            let mut r = if LE {
                _mm512_mask_cmp_ps_mask::<_CMP_NLE_UQ>(lanes, x, th)
            } else {
                _mm512_mask_cmp_ps_mask::<_CMP_NLT_UQ>(lanes, x, th)
            };
            if NAN {
                r &= !(_mm512_cmp_ps_mask::<_CMP_UNORD_Q>(x, x) & nan_left);
            }
            r
        }
    };
    let leaf = |bits: u16| SUBTREE_LEAF[usize::from(bits & 127)];
    let single = acc.len() == 1;
    let mut total = acc.first().copied().unwrap_or_default();
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
            let (th, f) = unsafe { (_mm512_loadu_si512(th.as_ptr().cast()), _mm512_loadu_si512(f.as_ptr().cast())) };
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
                    _mm512_castsi256_si512(_mm256_loadu_si256(thr[p].as_ptr().cast())),
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

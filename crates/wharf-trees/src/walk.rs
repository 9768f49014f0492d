//! The compiled forms of an ensemble and their walks.
//!
//! - **Perfect trees.** When every split is numeric (with NaN going a fixed way) and no tree
//!   is deeper than [`MAX_PERFECT_DEPTH`], each tree becomes a *perfect* tree of the
//!   ensemble's depth in heap order (children of `i` at `2i`, `2i+1`, from 1); a shallower
//!   leaf is copied into every bottom slot below it. A walk is then exactly `depth`
//!   branch-free steps (`i = 2i + right`), with no leaf test, and sixteen walks run
//!   interleaved (sixteen rows through one tree, or one row through sixteen trees) so the CPU
//!   overlaps their loads. A node is a threshold and a feature index whose top bit says
//!   where NaN goes: 8 bytes for XGBoost's `f32` thresholds. Where the CPU has AVX-512, a
//!   batch of `f32` trees up to depth [`VECTOR_DEPTH`] is not walked but decided node by
//!   node for 64 rows at once (see `simd`), and a single row through trees up to depth 6
//!   reading at most 32 features (LightGBM's too, its `f64` thresholds by rank) is decided
//!   three levels at a time, in registers (see `simd_row`).
//! - **General trees.** Deeper trees, categorical splits and LightGBM's zero-as-missing go
//!   node by node; children are explicit and a leaf is a child index with its top bit set.
//!
//! Both score tree-major over blocks of rows: one tree's nodes stay in L1 while the block
//! walks it. Each row's margins are summed in tree order in the source's precision, which is
//! what makes XGBoost's `f32` sums reproducible bit for bit.

use crate::spec::{Missing, Node, Split, Tree};

#[cfg(target_arch = "x86_64")]
mod simd;
#[cfg(target_arch = "x86_64")]
mod simd_row;

#[cfg(target_arch = "x86_64")]
use simd_row::RowTables;
/// The single-row vector kernel's tables: none off x86-64.
#[cfg(not(target_arch = "x86_64"))]
pub(crate) struct RowTables<A>(std::marker::PhantomData<A>);

/// Deepest ensemble compiled into perfect trees (a tree's slots double with each level).
pub(crate) const MAX_PERFECT_DEPTH: u32 = 10;
/// Most perfect-tree slots over all trees (8–16 bytes of node and 4–8 of leaf each).
const MAX_PERFECT_SLOTS: usize = 1 << 23;
/// Rows scored together, tree by tree.
pub(crate) const BLOCK: usize = 128;
/// Walks run interleaved.
const LANES: usize = 16;
/// Most rows a call scores row by row with the single-row vector kernel (where it runs)
/// rather than with the batch one: on the 500-tree depth-6 XGBoost model the batch kernel,
/// which decides 64 rows at a time, costs more per row below 64 rows (5.2 µs at 16 rows,
/// 2.8 at 32, 2.1 at 49) than the single-row kernel (1.7–1.8 µs); at 64 they are even.
/// LightGBM's trees have no batch kernel, and the single-row one (1.9 µs) also beats their
/// walk (2.6–2.9 µs) on larger calls, but batches keep the walk's block order for now.
const ROW_CALLS: usize = 63;

/// The buffer a single row wider than 64 values is walked from (a power of two).
const WIDE: usize = 1024;
/// Deepest perfect trees the vector kernel takes: it decides every node of a tree for 64
/// rows at once, which beats walking only while a tree has few nodes (`2^depth − 1`); at
/// depth 8 it measured slower than the walk.
const VECTOR_DEPTH: u32 = 6;
/// Marks a general tree's child index as a leaf index.
const LEAF: u32 = 1 << 31;
/// Top bit of a perfect node's feature: NaN goes left.
const NAN_LEFT: u32 = 1 << 31;

/// A source's scoring rules, as types: the kernels are monomorphised per source.
pub(crate) trait Format: Copy + Send + Sync + 'static {
    /// An input value and a threshold.
    type T: Copy + Default + PartialOrd + Send + Sync;
    /// The margin accumulator.
    type A: Copy + Default + Send + Sync + std::ops::AddAssign;
    /// Categories in the set go left (LightGBM) or right (XGBoost).
    const IN_SET_LEFT: bool;
    /// A value that is no category (negative, huge) goes left (XGBoost) or right (LightGBM).
    const INVALID_LEFT: bool;
    fn input(x: f64) -> Self::T;
    fn threshold(t: f64) -> Self::T;
    fn left(x: Self::T, t: Self::T) -> bool;
    fn is_nan(x: Self::T) -> bool;
    fn is_zero(x: Self::T) -> bool;
    /// The category a (non-NaN) value names, or `None` when it names none.
    fn category(x: Self::T) -> Option<u32>;
    /// True when the (non-NaN) value has no fractional part.
    fn is_whole(x: Self::T) -> bool;
    fn acc(v: f64) -> Self::A;
    fn out(a: Self::A) -> f64;
    /// Random-forest mode's average over `n` trees.
    fn average(a: Self::A, n: usize) -> Self::A;
    /// True when the source's perfect trees have a vector kernel ([`Format::vector_accumulate`]).
    const VECTOR: bool = false;
    /// The vector kernel (module `simd`) on a block of rows, for a source that has one: how
    /// many of the first rows it scored (all or none); the rest go the scalar way. LightGBM's
    /// `f64` nodes have none: eight lanes to a register double the compares per node, which
    /// leaves too little over the scalar walk to be worth a second kernel.
    fn vector_accumulate<const NAN: bool>(
        _p: &Perfect<Self>,
        _xs: &[Self::T],
        _width: usize,
        _groups: usize,
        _acc: &mut [Self::A],
    ) -> usize {
        0
    }
    /// The single-row vector kernel's tables (module `simd_row`) for perfect trees, for a
    /// source that has one and trees it takes.
    fn row_tables(_p: &Perfect<Self>) -> Option<RowTables<Self::A>> {
        None
    }
    /// The single-row vector kernel on one row (`acc`: its margins): false when it did not
    /// score (the row then goes the scalar way).
    fn vector_row(_p: &Perfect<Self>, _t: &RowTables<Self::A>, _row: &[Self::T], _acc: &mut [Self::A]) -> bool {
        false
    }
}

/// XGBoost: `f32` inputs and thresholds, `x < t`, `f32` sums.
#[derive(Clone, Copy)]
pub(crate) struct Xgb;

impl Format for Xgb {
    type T = f32;
    type A = f32;
    const IN_SET_LEFT: bool = false;
    const INVALID_LEFT: bool = true;
    #[inline(always)]
    fn input(x: f64) -> f32 {
        x as f32
    }
    fn threshold(t: f64) -> f32 {
        t as f32
    }
    #[inline(always)]
    fn left(x: f32, t: f32) -> bool {
        x < t
    }
    #[inline(always)]
    fn is_nan(x: f32) -> bool {
        x.is_nan()
    }
    fn is_zero(x: f32) -> bool {
        x == 0.0
    }
    fn category(x: f32) -> Option<u32> {
        // XGBoost's `InvalidCat`: negative, or past the last integer an f32 holds exactly.
        (0.0..16_777_216.0).contains(&x).then_some(x as u32)
    }
    fn is_whole(x: f32) -> bool {
        x.trunc() == x
    }
    #[inline(always)]
    fn acc(v: f64) -> f32 {
        v as f32
    }
    fn out(a: f32) -> f64 {
        a as f64
    }
    fn average(a: f32, n: usize) -> f32 {
        a / n as f32
    }
    const VECTOR: bool = cfg!(target_arch = "x86_64");
    fn vector_accumulate<const NAN: bool>(
        p: &Perfect<Self>,
        xs: &[f32],
        width: usize,
        groups: usize,
        acc: &mut [f32],
    ) -> usize {
        #[cfg(target_arch = "x86_64")]
        return simd::accumulate::<Self, false, NAN>(p, xs, width, groups, acc);
        #[cfg(not(target_arch = "x86_64"))]
        return 0;
    }
    fn row_tables(p: &Perfect<Self>) -> Option<RowTables<f32>> {
        f32_row_tables(p)
    }
    fn vector_row(p: &Perfect<Self>, t: &RowTables<f32>, row: &[f32], acc: &mut [f32]) -> bool {
        f32_vector_row::<Self, false>(p, t, row, acc)
    }
}

/// The single-row kernel's tables for `f32` thresholds compared as they are (XGBoost's and
/// ONNX's).
fn f32_row_tables<F: Format<T = f32, A = f32>>(p: &Perfect<F>) -> Option<RowTables<f32>> {
    #[cfg(target_arch = "x86_64")]
    return RowTables::new_f32(&p.nodes, &p.leaves, &p.groups, p.depth, p.reads);
    #[cfg(not(target_arch = "x86_64"))]
    return None;
}

/// One row through [`f32_row_tables`]' kernel; `LE`: a value equal to the threshold goes
/// left (ONNX's `<=`, not XGBoost's `<`).
fn f32_vector_row<F: Format<T = f32, A = f32>, const LE: bool>(
    p: &Perfect<F>,
    t: &RowTables<f32>,
    row: &[f32],
    acc: &mut [f32],
) -> bool {
    #[cfg(target_arch = "x86_64")]
    return simd_row::accumulate::<LE>(t, &p.groups, row, acc);
    #[cfg(not(target_arch = "x86_64"))]
    return false;
}

/// ONNX Runtime on a float input: `f32` inputs and thresholds, `x <= t`, `f32` sums.
#[derive(Clone, Copy)]
pub(crate) struct Onx;

impl Format for Onx {
    type T = f32;
    type A = f32;
    const IN_SET_LEFT: bool = false;
    const INVALID_LEFT: bool = true;
    #[inline(always)]
    fn input(x: f64) -> f32 {
        x as f32
    }
    fn threshold(t: f64) -> f32 {
        t as f32
    }
    #[inline(always)]
    fn left(x: f32, t: f32) -> bool {
        x <= t
    }
    #[inline(always)]
    fn is_nan(x: f32) -> bool {
        x.is_nan()
    }
    fn is_zero(x: f32) -> bool {
        x == 0.0
    }
    fn category(x: f32) -> Option<u32> {
        // `BRANCH_MEMBER` (`Split::Member`): ONNX Runtime's `static_cast<int32_t>(x)` truncates
        // toward zero, so `(-1, 0)` names category 0 (`as u32` saturates -0.5 to 0). Past 2^24
        // every float is whole and no imported set reaches that far, so `None` (not in the
        // set, like every negative int32, and INT_MIN for the out-of-range casts) is exact.
        (x > -1.0 && x < 16_777_216.0).then_some(x as u32)
    }
    fn is_whole(x: f32) -> bool {
        x.trunc() == x
    }
    #[inline(always)]
    fn acc(v: f64) -> f32 {
        v as f32
    }
    fn out(a: f32) -> f64 {
        a as f64
    }
    fn average(a: f32, n: usize) -> f32 {
        a / n as f32
    }
    const VECTOR: bool = cfg!(target_arch = "x86_64");
    fn vector_accumulate<const NAN: bool>(
        p: &Perfect<Self>,
        xs: &[f32],
        width: usize,
        groups: usize,
        acc: &mut [f32],
    ) -> usize {
        #[cfg(target_arch = "x86_64")]
        return simd::accumulate::<Self, true, NAN>(p, xs, width, groups, acc);
        #[cfg(not(target_arch = "x86_64"))]
        return 0;
    }
    fn row_tables(p: &Perfect<Self>) -> Option<RowTables<f32>> {
        f32_row_tables(p)
    }
    fn vector_row(p: &Perfect<Self>, t: &RowTables<f32>, row: &[f32], acc: &mut [f32]) -> bool {
        f32_vector_row::<Self, true>(p, t, row, acc)
    }
}

/// LightGBM: `f64` inputs and thresholds, `x <= t`, `f64` sums; values within LightGBM's
/// zero threshold are zero.
#[derive(Clone, Copy)]
pub(crate) struct Lgb;

/// LightGBM's `kZeroThreshold` (an `f32` literal, widened).
const LGB_ZERO: f64 = 1e-35f32 as f64;

impl Format for Lgb {
    type T = f64;
    type A = f64;
    const IN_SET_LEFT: bool = true;
    const INVALID_LEFT: bool = false;
    #[inline(always)]
    fn input(x: f64) -> f64 {
        // LightGBM's dense-row reader keeps a value only when `|x| > kZeroThreshold` or NaN.
        if x.abs() <= LGB_ZERO {
            0.0
        } else {
            x
        }
    }
    fn threshold(t: f64) -> f64 {
        t
    }
    #[inline(always)]
    fn left(x: f64, t: f64) -> bool {
        x <= t
    }
    #[inline(always)]
    fn is_nan(x: f64) -> bool {
        x.is_nan()
    }
    fn is_zero(x: f64) -> bool {
        x == 0.0
    }
    fn category(x: f64) -> Option<u32> {
        // `static_cast<int>(x)` truncates toward zero; out of int range it is INT_MIN on x86
        // (negative, so right), as it is for NaN, which the caller handles first.
        (x > -1.0 && x < 2_147_483_648.0).then_some(x as u32)
    }
    fn is_whole(x: f64) -> bool {
        x.trunc() == x
    }
    #[inline(always)]
    fn acc(v: f64) -> f64 {
        v
    }
    fn out(a: f64) -> f64 {
        a
    }
    fn average(a: f64, n: usize) -> f64 {
        a / n as f64
    }
    fn row_tables(p: &Perfect<Self>) -> Option<RowTables<f64>> {
        #[cfg(target_arch = "x86_64")]
        return RowTables::new_ranked(&p.nodes, &p.leaves, &p.groups, p.depth, p.reads);
        #[cfg(not(target_arch = "x86_64"))]
        return None;
    }
    fn vector_row(p: &Perfect<Self>, t: &RowTables<f64>, row: &[f64], acc: &mut [f64]) -> bool {
        #[cfg(target_arch = "x86_64")]
        return simd_row::accumulate_ranked(t, &p.groups, row, acc);
        #[cfg(not(target_arch = "x86_64"))]
        return false;
    }
}

/// One node of a perfect tree.
#[derive(Clone, Copy, Default)]
#[repr(C)]
struct PNode<T> {
    threshold: T,
    /// Feature index; [`NAN_LEFT`] set when NaN goes left.
    feature: u32,
}

/// Kinds of general nodes.
const NUMERIC: u8 = 0;
const ZERO_MISSING: u8 = 1;
const CATEGORICAL: u8 = 2;
/// ONNX's `BRANCH_MEMBER` when only whole values name categories ([`Split::Member`]).
const WHOLE_MEMBER: u8 = 3;

/// One node of a general tree.
#[derive(Clone, Copy)]
struct GNode<T> {
    threshold: T,
    feature: u32,
    left: u32,
    right: u32,
    /// Categorical: the bitset's range in [`General::words`].
    cat_start: u32,
    cat_len: u32,
    kind: u8,
    nan_left: bool,
    default_left: bool,
}

/// The compiled body of an ensemble.
pub(crate) enum Body<F: Format> {
    Perfect(Perfect<F>),
    General(General<F>),
}

/// Perfect trees of equal depth; see the module docs.
pub(crate) struct Perfect<F: Format> {
    depth: u32,
    nodes: Vec<PNode<F::T>>,
    leaves: Vec<F::A>,
    groups: Vec<u32>,
    /// The narrowest row the walks may read: one past the largest feature, and at least 1
    /// (a padded slot reads feature 0).
    reads: usize,
    /// Score batches with the vector kernel: decided once, when compiled (the source has one,
    /// the trees are shallow enough and the CPU runs it), so the hot path tests a field
    /// rather than the CPU.
    simd: bool,
    /// The single-row vector kernel's tables, when the source has one, the trees fit it and
    /// the CPU runs it ([`Body::scalar_only`] drops them).
    row: Option<RowTables<F::A>>,
}

/// Node-by-node trees.
pub(crate) struct General<F: Format> {
    nodes: Vec<GNode<F::T>>,
    /// Root per tree (a leaf index with [`LEAF`] for a one-leaf tree).
    roots: Vec<u32>,
    leaves: Vec<F::A>,
    groups: Vec<u32>,
    words: Vec<u32>,
}

/// True when this CPU runs the vector kernels.
fn vector_cpu() -> bool {
    #[cfg(target_arch = "x86_64")]
    return simd::available();
    #[cfg(not(target_arch = "x86_64"))]
    return false;
}

/// Depth of a validated tree (a lone leaf has depth 0).
fn depth(tree: &Tree) -> u32 {
    let mut deepest = 0;
    let mut stack = vec![(0usize, 0u32)];
    while let Some((i, d)) = stack.pop() {
        match tree.nodes.get(i) {
            Some(Node::Internal { left, right, .. }) => {
                stack.push((*left as usize, d + 1));
                stack.push((*right as usize, d + 1));
            }
            _ => deepest = deepest.max(d),
        }
    }
    deepest
}

/// True when a perfect tree can hold this split.
fn perfect_split(node: &Node) -> bool {
    match node {
        Node::Leaf { .. } => true,
        Node::Internal { split: Split::Numeric { missing, .. }, .. } => {
            matches!(missing, Missing::Default | Missing::AsZero)
        }
        Node::Internal { .. } => false,
    }
}

/// Where NaN goes at a numeric split.
fn nan_left<F: Format>(threshold: f64, missing: Missing, default_left: bool) -> bool {
    match missing {
        Missing::AsZero => F::left(F::input(0.0), F::threshold(threshold)),
        _ => default_left,
    }
}

impl<F: Format> Body<F> {
    /// Compiles validated trees (see [`crate::EnsembleSpec::validate`]).
    pub(crate) fn compile(trees: &[Tree]) -> Body<F> {
        let max_depth = trees.iter().map(depth).max().unwrap_or(0);
        let slots = 1usize << max_depth.min(MAX_PERFECT_DEPTH);
        let fits = max_depth <= MAX_PERFECT_DEPTH && slots.saturating_mul(trees.len()) <= MAX_PERFECT_SLOTS;
        if fits && trees.iter().all(|t| t.nodes.iter().all(perfect_split)) {
            if let Some(p) = Perfect::new(trees, max_depth) {
                return Body::Perfect(p);
            }
        }
        Body::General(General::new(trees))
    }

    /// Adds every tree's leaf, in tree order, to the margins of a block of converted rows.
    pub(crate) fn accumulate(&self, xs: &[F::T], width: usize, groups: usize, acc: &mut [F::A]) {
        match self {
            Body::Perfect(p) => {
                // Blocks without a missing value (the common case) skip the NaN test per step.
                if xs.iter().any(|x| F::is_nan(*x)) {
                    p.accumulate::<true>(xs, width, groups, acc)
                } else {
                    p.accumulate::<false>(xs, width, groups, acc)
                }
            }
            Body::General(g) => g.accumulate(xs, width, groups, acc),
        }
    }

    /// Trees per output group (for random-forest averaging), group by group.
    pub(crate) fn trees_per_group(&self, n_groups: usize) -> Vec<usize> {
        let groups = match self {
            Body::Perfect(p) => &p.groups,
            Body::General(g) => &g.groups,
        };
        let mut counts = vec![0usize; n_groups];
        for g in groups {
            if let Some(c) = counts.get_mut(*g as usize) {
                *c += 1;
            }
        }
        counts
    }

    /// Turns the vector kernels off (tests compare them with the scalar ones).
    pub(crate) fn scalar_only(&mut self) {
        if let Body::Perfect(p) = self {
            p.simd = false;
            p.row = None;
        }
    }

    /// True when the vector kernels score.
    pub(crate) fn vector(&self) -> bool {
        matches!(self, Body::Perfect(p) if p.simd)
    }

    /// True when the single-row vector kernel scores single rows.
    pub(crate) fn vector_row(&self) -> bool {
        matches!(self, Body::Perfect(p) if p.row.is_some())
    }

    /// Which compiled form this is (for benchmarks and tests).
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Body::Perfect(_) => "perfect",
            Body::General(_) => "general",
        }
    }
}

impl<F: Format> Perfect<F> {
    fn new(trees: &[Tree], depth: u32) -> Option<Self> {
        let slots = 1usize << depth;
        let mut p = Perfect {
            depth,
            nodes: vec![PNode::default(); slots * trees.len()],
            leaves: vec![F::A::default(); slots * trees.len()],
            groups: trees.iter().map(|t| t.group).collect(),
            reads: 1,
            simd: F::VECTOR && depth <= VECTOR_DEPTH && vector_cpu(),
            row: None,
        };
        for (t, tree) in trees.iter().enumerate() {
            let nodes = p.nodes.get_mut(t * slots..(t + 1) * slots)?;
            let leaves = p.leaves.get_mut(t * slots..(t + 1) * slots)?;
            // (source node, heap slot, level); iterative, so no recursion depth to bound.
            // Heap slots from 1 (children of `s` at `2s` and `2s + 1`); slot 0 is unused.
            let mut stack = vec![(0usize, 1usize, 0u32)];
            while let Some((i, slot, level)) = stack.pop() {
                match tree.nodes.get(i)? {
                    Node::Leaf { value } => {
                        let below = depth - level;
                        let first = (slot << below) - slots;
                        leaves.get_mut(first..first + (1usize << below))?.fill(F::acc(*value));
                    }
                    Node::Internal { feature, left, right, default_left, split } => {
                        let Split::Numeric { threshold, missing } = split else { return None };
                        let nan = nan_left::<F>(*threshold, *missing, *default_left);
                        p.reads = p.reads.max(*feature as usize + 1);
                        *nodes.get_mut(slot)? = PNode {
                            threshold: F::threshold(*threshold),
                            feature: feature | if nan { NAN_LEFT } else { 0 },
                        };
                        stack.push((*left as usize, 2 * slot, level + 1));
                        stack.push((*right as usize, 2 * slot + 1, level + 1));
                    }
                }
            }
        }
        if depth <= VECTOR_DEPTH && vector_cpu() {
            p.row = F::row_tables(&p);
        }
        Some(p)
    }

    fn accumulate<const NAN: bool>(&self, xs: &[F::T], width: usize, groups: usize, acc: &mut [F::A]) {
        // Small calls (a single row above all): row by row through the single-row kernel.
        let mut rows = 0;
        if let Some(t) = self.row.as_ref().filter(|_| xs.len() <= ROW_CALLS * width) {
            for (row, acc) in xs.chunks_exact(width).zip(acc.chunks_exact_mut(groups)) {
                if !F::vector_row(self, t, row, acc) {
                    break;
                }
                rows += 1;
            }
        }
        let (Some(xs), Some(acc)) = (xs.get(rows * width..), acc.get_mut(rows * groups..)) else { return };
        let done = if self.simd { F::vector_accumulate::<NAN>(self, xs, width, groups, acc) } else { 0 };
        let (Some(xs), Some(acc)) = (xs.get(done * width..), acc.get_mut(done * groups..)) else { return };
        if xs.is_empty() {
            return;
        }
        match self.depth {
            0 => self.walk::<NAN, 1>(xs, width, groups, acc),
            1 => self.walk::<NAN, 2>(xs, width, groups, acc),
            2 => self.walk::<NAN, 4>(xs, width, groups, acc),
            3 => self.walk::<NAN, 8>(xs, width, groups, acc),
            4 => self.walk::<NAN, 16>(xs, width, groups, acc),
            5 => self.walk::<NAN, 32>(xs, width, groups, acc),
            6 => self.walk::<NAN, 64>(xs, width, groups, acc),
            7 => self.walk::<NAN, 128>(xs, width, groups, acc),
            8 => self.walk::<NAN, 256>(xs, width, groups, acc),
            9 => self.walk::<NAN, 512>(xs, width, groups, acc),
            _ => self.walk::<NAN, 1024>(xs, width, groups, acc),
        }
    }

    /// The walks of one block, monomorphised on the slots per tree (`S = 2^depth`) so the
    /// step count is a constant and node indices are masked instead of bounds-checked.
    fn walk<const NAN: bool, const S: usize>(&self, xs: &[F::T], width: usize, groups: usize, acc: &mut [F::A]) {
        let rows = xs.len() / width;
        let (trees, _) = self.nodes.as_chunks::<S>();
        let (leaves, _) = self.leaves.as_chunks::<S>();
        let full = rows - rows % LANES;
        if full > 0 {
            // Rows up to 32 or 64 features go through a fixed-size group buffer, whose
            // indices are masked instead of bounds-checked (fewer live registers per lane).
            if width <= 32 {
                self.batch::<NAN, S, { 32 * LANES }>(xs, width, full, groups, acc);
            } else if width <= 64 {
                self.batch::<NAN, S, { 64 * LANES }>(xs, width, full, groups, acc);
            } else {
                self.batch::<NAN, S, 0>(xs, width, full, groups, acc);
            }
        }
        // The rest (all of a single-row call): one row through LANES trees at a time, the
        // leaves added in tree order. Each row is copied into a fixed buffer first (64
        // values, or 1024 for wider rows), so [`walk_trees`] masks its indices; a row wider
        // still goes one tree at a time.
        let mut narrow = [F::T::default(); 64];
        let mut wide = if width > narrow.len() { vec![F::T::default(); WIDE] } else { Vec::new() };
        for r in full..rows {
            let row = &xs[r * width..(r + 1) * width];
            let acc = &mut acc[r * groups..(r + 1) * groups];
            let fits = width <= WIDE;
            if width <= narrow.len() {
                narrow[..width].copy_from_slice(row);
            } else if fits {
                wide[..width].copy_from_slice(row);
            }
            let whole = if fits { trees.len() - trees.len() % LANES } else { 0 };
            let wide_row = <&[F::T; WIDE]>::try_from(wide.as_slice()).ok();
            let walk8 = |eight: &[[PNode<F::T>; S]]| match wide_row {
                Some(wide) if width > 64 => walk_trees::<F, NAN, S, WIDE>(eight, wide),
                _ => walk_trees::<F, NAN, S, 64>(eight, &narrow),
            };
            let eights = trees[..whole].chunks_exact(LANES).zip(leaves[..whole].chunks_exact(LANES));
            if let [sum] = acc {
                // One group (a binary model, a regressor): the sum stays in a register, added
                // to in the same tree order.
                let mut total = *sum;
                for (eight, leaves) in eights {
                    for (leaf, values) in walk8(eight).into_iter().zip(leaves) {
                        total += values[leaf & (S - 1)];
                    }
                }
                for (nodes, values) in trees[whole..].iter().zip(&leaves[whole..]) {
                    total += values[walk_one::<F, NAN, S>(nodes, row) & (S - 1)];
                }
                *sum = total;
                continue;
            }
            for ((eight, leaves), groups) in eights.zip(self.groups[..whole].chunks_exact(LANES)) {
                for ((leaf, values), group) in walk8(eight).into_iter().zip(leaves).zip(groups) {
                    acc[*group as usize] += values[leaf & (S - 1)];
                }
            }
            for t in whole..trees.len() {
                let leaf = walk_one::<F, NAN, S>(&trees[t], row);
                acc[self.groups[t] as usize] += leaves[t][leaf & (S - 1)];
            }
        }
    }
    /// The first `full` rows (whole groups of LANES) through every tree. Each group of rows
    /// is stored feature-major (`[feature][lane]`), so a lane's value is one shift and add
    /// away from the group's base. `N` is the group buffer's fixed size (`stride × LANES`),
    /// or 0 for rows too wide for one: then the stride is the width and indices are checked.
    fn batch<const NAN: bool, const S: usize, const N: usize>(
        &self,
        xs: &[F::T],
        width: usize,
        full: usize,
        groups: usize,
        acc: &mut [F::A],
    ) {
        let (trees, _) = self.nodes.as_chunks::<S>();
        let (leaves, _) = self.leaves.as_chunks::<S>();
        let stride = if N == 0 { width } else { N / LANES };
        let mut lanes = vec![F::T::default(); full / LANES * stride * LANES];
        for (r, row) in xs[..full * width].chunks_exact(width).enumerate() {
            let (group, lane) = (r / LANES, r % LANES);
            for (f, x) in row.iter().enumerate() {
                lanes[(group * stride + f) * LANES + lane] = *x;
            }
        }
        for ((nodes, leaves), group) in trees.iter().zip(leaves).zip(&self.groups) {
            let g = *group as usize;
            for (r0, block) in (0..full).step_by(LANES).zip(lanes.chunks_exact(stride * LANES)) {
                let at = match <&[F::T; N]>::try_from(block) {
                    Ok(block) if N > 0 => walk_fixed::<F, NAN, S, N>(nodes, block),
                    _ => walk_rows::<F, NAN, S>(nodes, block),
                };
                for (l, leaf) in at.into_iter().enumerate() {
                    acc[(r0 + l) * groups + g] += leaves[leaf & (S - 1)];
                }
            }
        }
    }
}

/// [`walk_rows`] over a group buffer of fixed size `N` (a power of two): feature indices
/// were checked against the width, which is at most `N / LANES`, so masking changes none.
#[inline(always)]
fn walk_fixed<F: Format, const NAN: bool, const S: usize, const N: usize>(
    nodes: &[PNode<F::T>; S],
    block: &[F::T; N],
) -> [usize; LANES] {
    let mut at = [1usize; LANES];
    for _ in 0..S.trailing_zeros() {
        for (l, at) in at.iter_mut().enumerate() {
            let node = nodes[*at & (S - 1)];
            let x = block[(((node.feature & !NAN_LEFT) as usize) * LANES + l) & (N - 1)];
            *at = 2 * *at + goes_right::<F, NAN>(node, x) as usize;
        }
    }
    at.map(|i| i - S)
}

/// True when a perfect node sends `x` right (the step is then `at = 2·at + right`).
#[inline(always)]
fn goes_right<F: Format, const NAN: bool>(node: PNode<F::T>, x: F::T) -> bool {
    !(F::left(x, node.threshold) | (NAN && F::is_nan(x) & (node.feature & NAN_LEFT != 0)))
}

/// LANES rows (feature-major, see [`Perfect::walk`]) through one tree in lockstep; returns
/// each row's leaf (`0..S`). `NAN`: the rows may hold missing values.
#[inline(always)]
fn walk_rows<F: Format, const NAN: bool, const S: usize>(nodes: &[PNode<F::T>; S], block: &[F::T]) -> [usize; LANES] {
    let mut at = [1usize; LANES];
    for _ in 0..S.trailing_zeros() {
        for (l, at) in at.iter_mut().enumerate() {
            let node = nodes[*at & (S - 1)];
            // Feature indices were checked against the width when the ensemble was built.
            let x = block[((node.feature & !NAN_LEFT) as usize) * LANES + l];
            *at = 2 * *at + goes_right::<F, NAN>(node, x) as usize;
        }
    }
    at.map(|i| i - S)
}

/// One row through LANES trees in lockstep; returns each tree's leaf. The row sits in a
/// buffer of `N` values (a power of two): feature indices were checked against the width,
/// which is at most `N`, so masking them changes none and saves a bounds check a step.
#[inline(always)]
fn walk_trees<F: Format, const NAN: bool, const S: usize, const N: usize>(
    trees: &[[PNode<F::T>; S]],
    row: &[F::T; N],
) -> [usize; LANES] {
    let mut at = [1usize; LANES];
    let trees: &[[PNode<F::T>; S]; LANES] = match trees.try_into() {
        Ok(t) => t,
        Err(_) => return at,
    };
    for _ in 0..S.trailing_zeros() {
        for (l, at) in at.iter_mut().enumerate() {
            let node = trees[l][*at & (S - 1)];
            let x = row[((node.feature & !NAN_LEFT) as usize) & (N - 1)];
            *at = 2 * *at + goes_right::<F, NAN>(node, x) as usize;
        }
    }
    at.map(|i| i - S)
}

/// One row through one tree.
#[inline(always)]
fn walk_one<F: Format, const NAN: bool, const S: usize>(nodes: &[PNode<F::T>; S], row: &[F::T]) -> usize {
    let mut at = 1usize;
    for _ in 0..S.trailing_zeros() {
        let node = nodes[at & (S - 1)];
        let x = row[(node.feature & !NAN_LEFT) as usize];
        at = 2 * at + goes_right::<F, NAN>(node, x) as usize;
    }
    at - S
}

impl<F: Format> General<F> {
    fn new(trees: &[Tree]) -> Self {
        let mut g = General {
            nodes: Vec::new(),
            roots: Vec::with_capacity(trees.len()),
            leaves: Vec::new(),
            groups: trees.iter().map(|t| t.group).collect(),
            words: Vec::new(),
        };
        for tree in trees {
            // Compiled index of each source node (leaves: LEAF | leaf index), assigned in
            // source order; validation guarantees every child exists and is reached once.
            let mut index = Vec::with_capacity(tree.nodes.len());
            let (mut next_node, mut next_leaf) = (g.nodes.len() as u32, g.leaves.len() as u32);
            for node in &tree.nodes {
                match node {
                    Node::Leaf { .. } => {
                        index.push(LEAF | next_leaf);
                        next_leaf += 1;
                    }
                    Node::Internal { .. } => {
                        index.push(next_node);
                        next_node += 1;
                    }
                }
            }
            let child = |c: u32| index.get(c as usize).copied().unwrap_or(LEAF);
            g.roots.push(child(0));
            for node in &tree.nodes {
                match node {
                    Node::Leaf { value } => g.leaves.push(F::acc(*value)),
                    Node::Internal { feature, left, right, default_left, split } => {
                        let mut n = GNode {
                            threshold: F::T::default(),
                            feature: *feature,
                            left: child(*left),
                            right: child(*right),
                            cat_start: 0,
                            cat_len: 0,
                            kind: NUMERIC,
                            nan_left: *default_left,
                            default_left: *default_left,
                        };
                        match split {
                            Split::Numeric { threshold, missing } => {
                                n.threshold = F::threshold(*threshold);
                                n.nan_left = nan_left::<F>(*threshold, *missing, *default_left);
                                if *missing == Missing::ZeroOrNan {
                                    n.kind = ZERO_MISSING;
                                }
                            }
                            Split::Categorical { bitset } => {
                                n.kind = CATEGORICAL;
                                n.cat_start = g.words.len() as u32;
                                n.cat_len = bitset.len() as u32;
                                g.words.extend_from_slice(bitset);
                                // NaN: XGBoost's default direction; LightGBM sends it right.
                                n.nan_left = *default_left && !F::IN_SET_LEFT;
                            }
                            Split::Member { bitset, whole_only } => {
                                // Same lookup as a categorical split (ONNX's set goes right,
                                // what names no category left); NaN takes its node's side.
                                n.kind = if *whole_only { WHOLE_MEMBER } else { CATEGORICAL };
                                n.cat_start = g.words.len() as u32;
                                n.cat_len = bitset.len() as u32;
                                g.words.extend_from_slice(bitset);
                                n.nan_left = *default_left;
                            }
                        }
                        g.nodes.push(n);
                    }
                }
            }
        }
        g
    }

    #[inline]
    fn leaf(&self, root: u32, row: &[F::T]) -> F::A {
        let mut c = root;
        while c & LEAF == 0 {
            let n = &self.nodes[c as usize];
            let x = row[n.feature as usize];
            let left = match n.kind {
                NUMERIC => F::left(x, n.threshold) | (F::is_nan(x) & n.nan_left),
                ZERO_MISSING => {
                    if F::is_nan(x) || F::is_zero(x) {
                        n.default_left
                    } else {
                        F::left(x, n.threshold)
                    }
                }
                _ => self.categorical(n, x),
            };
            c = if left { n.left } else { n.right };
        }
        self.leaves[(c & !LEAF) as usize]
    }

    #[cold]
    fn categorical(&self, n: &GNode<F::T>, x: F::T) -> bool {
        if F::is_nan(x) {
            return n.nan_left;
        }
        if n.kind == WHOLE_MEMBER && !F::is_whole(x) {
            return F::INVALID_LEFT;
        }
        let Some(cat) = F::category(x) else { return F::INVALID_LEFT };
        let word = (cat / 32) as usize;
        let set = word < n.cat_len as usize
            && self.words.get(n.cat_start as usize + word).is_some_and(|w| (w >> (cat % 32)) & 1 == 1);
        set == F::IN_SET_LEFT
    }

    fn accumulate(&self, xs: &[F::T], width: usize, groups: usize, acc: &mut [F::A]) {
        for (root, group) in self.roots.iter().zip(&self.groups) {
            let g = *group as usize;
            for (row, acc) in xs.chunks_exact(width).zip(acc.chunks_exact_mut(groups)) {
                acc[g] += self.leaf(*root, row);
            }
        }
    }
}

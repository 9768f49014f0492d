//! AVX-512 scoring of perfect trees with `f32` thresholds (XGBoost's and ONNX's rules), for
//! batches of rows.
//!
//! A walk is a chain of dependent loads per level; here a tree's nodes are instead all
//! decided at once for 64 rows, and the decisions followed as bit masks:
//! - the block is copied feature-major in chunks of 64 rows, so a node's 64 inputs are four
//!   contiguous registers, compared with its threshold into a 64-bit mask of the rows that
//!   go right;
//! - `reach[n]`, the rows standing at node `n`, splits into its children's (`reach & right`,
//!   `reach & !right`); the rows that go right somewhere on level `l` have bit `depth − 1 − l`
//!   set in their leaf's index, so each row's leaf index is read off one mask per level;
//! - the leaves are gathered 16 rows at a time and added to those rows' margins.
//!
//! A tree of depth `d` costs `2^d − 1` node decisions per 64 rows where a walk takes `d`
//! steps per row: it pays up to depth [`VECTOR_DEPTH`]. Deeper trees, and calls of fewer
//! than 16 rows (a single row), are walked by the scalar kernels. (Walking 16 rows per
//! register with gathers, the obvious vector walk, measured slower: a gather's latency is
//! several times a load's, and each level waits for one.)
//!
//! Each row still receives its trees' leaves one at a time, in tree order, in `f32`, so the
//! answers are the scalar kernels' bit for bit.

use std::arch::x86_64::*;

use super::{Format, PNode, Perfect, NAN_LEFT, VECTOR_DEPTH};

/// Rows per register.
const W: usize = 16;
/// Rows decided together: one bit each of a `u64`.
const CHUNK: usize = 64;
/// Fewest rows worth deciding a chunk for: smaller calls are walked.
const MIN_ROWS: usize = 16;

/// True when this CPU runs the kernel here (checked once, when an ensemble is compiled): it
/// needs AVX-512BW besides AVX-512F to join four 16-row masks into one of 64 rows.
pub(super) fn available() -> bool {
    is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bw")
}

/// Adds every tree's leaf, in tree order, to the margins of a block of rows (`groups` per
/// row), as [`Perfect::accumulate`] does, and returns how many rows it scored: all of them,
/// or none when the kernel may not run on these arguments (they then go the scalar way).
/// `LE`: a value equal to the threshold goes left (ONNX's `<=`, not XGBoost's `<`). `NAN`:
/// the rows may hold NaN.
pub(super) fn accumulate<F, const LE: bool, const NAN: bool>(
    p: &Perfect<F>,
    xs: &[f32],
    width: usize,
    groups: usize,
    acc: &mut [f32],
) -> usize
where
    F: Format<T = f32, A = f32>,
{
    if xs.len() < MIN_ROWS * width {
        return 0;
    }
    let trees = p.groups.len();
    let slots = 1usize << p.depth.min(VECTOR_DEPTH);
    // What the unsafe code below relies on, checked here rather than assumed: the CPU has
    // AVX-512F and AVX-512BW (`simd` is set only then); the trees are whole and at most
    // VECTOR_DEPTH deep; every node's feature is below `width` (`reads` is one past the
    // largest, and at least 1); the rows are whole and fit in `acc`; every tree's group is
    // below `groups`.
    let fits = p.simd
        && p.depth <= VECTOR_DEPTH
        && width >= p.reads
        && p.nodes.len() == trees * slots
        && p.leaves.len() == trees * slots
        && xs.len().is_multiple_of(width)
        && acc.len() == xs.len() / width * groups
        && p.groups.iter().all(|g| (*g as usize) < groups);
    if !fits {
        return 0;
    }
    let rows = xs.len() / width;
    let (nodes, leaves, trees) = (p.nodes.as_slice(), p.leaves.as_slice(), p.groups.as_slice());
    // SAFETY: the conditions above are the kernel's contract.
    unsafe {
        match p.depth {
            0 => decide::<LE, NAN, 0>(nodes, leaves, trees, xs, width, groups, acc),
            1 => decide::<LE, NAN, 1>(nodes, leaves, trees, xs, width, groups, acc),
            2 => decide::<LE, NAN, 2>(nodes, leaves, trees, xs, width, groups, acc),
            3 => decide::<LE, NAN, 3>(nodes, leaves, trees, xs, width, groups, acc),
            4 => decide::<LE, NAN, 4>(nodes, leaves, trees, xs, width, groups, acc),
            5 => decide::<LE, NAN, 5>(nodes, leaves, trees, xs, width, groups, acc),
            _ => decide::<LE, NAN, 6>(nodes, leaves, trees, xs, width, groups, acc),
        }
    }
    rows
}

/// The rows (of a chunk of 64) whose four registers of values pass `test`, as a mask.
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
fn mask64(values: &[f32; CHUNK], test: impl Fn(__m512) -> __mmask16) -> u64 {
    let (sixteens, _) = values.as_chunks::<W>();
    // SAFETY: each of the four is 16 values.
    let [a, b, c, d] = std::array::from_fn(|q| test(unsafe { _mm512_loadu_ps(sixteens[q].as_ptr()) }));
    let low = _mm512_kunpackw(u32::from(b), u32::from(a));
    let high = _mm512_kunpackw(u32::from(d), u32::from(c));
    _mm512_kunpackd(u64::from(high), u64::from(low))
}

/// Every tree for every row, tree by tree, chunk by chunk; monomorphised on the depth `D`
/// so the levels unroll.
///
/// # Safety
/// AVX-512F and AVX-512BW are available; `D ≤ 6`; `nodes` and `leaves` hold `2^D` slots per
/// tree of `tree_groups`; every node's feature (without [`NAN_LEFT`]) is below `width ≥ 1`;
/// `xs` is whole rows of `width`; `acc` holds `groups` per row; every tree's group is below
/// `groups`.
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn decide<const LE: bool, const NAN: bool, const D: u32>(
    nodes: &[PNode<f32>],
    leaves: &[f32],
    tree_groups: &[u32],
    xs: &[f32],
    width: usize,
    groups: usize,
    acc: &mut [f32],
) {
    let slots = 1usize << D;
    let rows = xs.len() / width;
    let chunks = rows.div_ceil(CHUNK);
    // Feature-major per chunk: row `r`'s value of feature `f` at `(c·width + f)·64 + r % 64`
    // in chunk `c`. Rows past the end stay 0: decided like the others, never added.
    let mut lanes = vec![0.0f32; chunks * width * CHUNK];
    for (r, row) in xs.chunks_exact(width).enumerate() {
        let at = (r / CHUNK) * width * CHUNK + r % CHUNK;
        for (f, x) in row.iter().enumerate() {
            lanes[at + f * CHUNK] = *x;
        }
    }
    let (values, _) = lanes.as_chunks::<CHUNK>();
    // With missing values: which rows of each chunk miss each feature (same indexing).
    let missing: Vec<u64> = if NAN {
        values.iter().map(|v| mask64(v, |x| _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(x, x))).collect()
    } else {
        Vec::new()
    };
    let bit = |level: u32| _mm512_set1_epi32(1 << (D - 1 - level));
    let mut reach = [0u64; 64];
    let mut sums = [0.0f32; W];
    for ((tree, leaf_values), group) in nodes.chunks_exact(slots).zip(leaves.chunks_exact(slots)).zip(tree_groups) {
        for c in 0..chunks {
            let chunk = &values[c * width..(c + 1) * width];
            // Per level, the rows that go right on it: their leaf index's bits, high to low.
            let mut right_on = [0u64; VECTOR_DEPTH as usize];
            reach[1] = u64::MAX;
            for level in 0..D {
                let mut plane = 0u64;
                for n in (1usize << level)..(2usize << level) {
                    // SAFETY: `n < 2^D`, the tree's slots.
                    let node = unsafe { *tree.get_unchecked(n) };
                    let f = (node.feature & !NAN_LEFT) as usize;
                    // SAFETY: the feature is below `width`, the chunk's length (the contract).
                    let x = unsafe { chunk.get_unchecked(f) };
                    let t = _mm512_set1_ps(node.threshold);
                    // Right unless `x < t` (`x <= t`), as the scalar walk; NaN compares
                    // unordered, so it goes right unless the node sends it left.
                    let mut right = if LE {
                        mask64(x, |x| _mm512_cmp_ps_mask::<_CMP_NLE_UQ>(x, t))
                    } else {
                        mask64(x, |x| _mm512_cmp_ps_mask::<_CMP_NLT_UQ>(x, t))
                    };
                    if NAN {
                        let nan_left = 0u64.wrapping_sub(u64::from(node.feature >> 31));
                        right &= !(missing[c * width + f] & nan_left);
                    }
                    // Every node is decided, reached or not: skipping the unreached ones
                    // costs more in mispredicted branches than it saves.
                    // SAFETY: `n < 2^D ≤ 64`, and when there is a level below, `2n + 1 < 2^D`.
                    unsafe {
                        let here = *reach.get_unchecked(n);
                        plane |= here & right;
                        if level + 1 < D {
                            *reach.get_unchecked_mut(2 * n) = here & !right;
                            *reach.get_unchecked_mut(2 * n + 1) = here & right;
                        }
                    }
                }
                right_on[level as usize] = plane;
            }
            for j in 0..CHUNK / W {
                let first = c * CHUNK + j * W;
                if first >= rows {
                    break;
                }
                let mut index = _mm512_setzero_si512();
                for (level, plane) in (0..D).zip(right_on) {
                    index = _mm512_mask_or_epi32(index, (plane >> (j * W)) as __mmask16, index, bit(level));
                }
                // SAFETY: each lane's index has D bits, so it is below `slots`, the length of
                // `leaf_values`.
                let leaf = unsafe { _mm512_i32gather_ps::<4>(index, leaf_values.as_ptr()) };
                let n = (rows - first).min(W);
                if groups == 1 && n == W {
                    let sum = &mut acc[first..first + W];
                    // SAFETY: `sum` is 16 values.
                    unsafe { _mm512_storeu_ps(sum.as_mut_ptr(), _mm512_add_ps(_mm512_loadu_ps(sum.as_ptr()), leaf)) };
                } else {
                    // SAFETY: `sums` is 16 values.
                    unsafe { _mm512_storeu_ps(sums.as_mut_ptr(), leaf) };
                    for (l, v) in sums[..n].iter().enumerate() {
                        acc[(first + l) * groups + *group as usize] += *v;
                    }
                }
            }
        }
    }
}

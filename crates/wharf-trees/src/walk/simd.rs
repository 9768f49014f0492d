//! AVX-512 walks of perfect trees with `f32` thresholds (XGBoost's and ONNX's rules).
//!
//! The same walks as the scalar kernels, sixteen to a register:
//! - **A batch** sends 16 rows through one tree per register, four registers in lockstep so
//!   the gathers' latencies overlap. A tree's slots below 64 (its top six levels) are
//!   deinterleaved into eight registers once and shared by every row of the block, so those
//!   levels read their node with a permute rather than a gather; deeper levels, the rows'
//!   values (from a feature-major copy of the block) and the leaves are gathered.
//! - **A single row** (and the rows a batch leaves over) goes through 16 trees per register,
//!   two registers in lockstep; a row of at most 32 values sits in two registers and is read
//!   with a permute.
//!
//! Each row still receives its trees' leaves one at a time, in tree order, in `f32` (a batch
//! adds a register of 16 rows' leaves per tree; a single row adds the lanes one by one), so
//! the answers are the scalar kernels' bit for bit.

use std::arch::x86_64::*;

use super::{Format, PNode, Perfect, NAN_LEFT};

/// Rows (batch) or trees (single row) per register.
const W: usize = 16;
/// Registers of rows walked in lockstep in a batch.
const ROWS_IN_STEP: usize = 4;
/// Registers of trees walked in lockstep for a single row.
const TREES_IN_STEP: usize = 2;

/// True when this CPU runs the kernels here (checked once, when an ensemble is compiled).
pub(super) fn available() -> bool {
    is_x86_feature_detected!("avx512f")
}

/// Adds every tree's leaf, in tree order, to the margins of a block of rows (`groups` per
/// row), as [`Perfect::accumulate`] does; false (and nothing added) when the kernels may not
/// run on these arguments, which then go the scalar way. `LE`: a value equal to the
/// threshold goes left (ONNX's `<=`, not XGBoost's `<`). `NAN`: the rows may hold NaN.
pub(super) fn accumulate<F, const LE: bool, const NAN: bool>(
    p: &Perfect<F>,
    xs: &[f32],
    width: usize,
    groups: usize,
    acc: &mut [f32],
) -> bool
where
    F: Format<T = f32, A = f32>,
{
    let trees = p.groups.len();
    let slots = 1usize << p.depth;
    // What the unsafe code below relies on, checked here rather than assumed: the CPU has
    // AVX-512F; every node's feature is below `width` (`reads` is one past the largest, and at
    // least 1); the trees are whole; the rows are whole and fit in `acc`; no index overflows
    // an i32 lane (slots are at most 2^23, features 2^20).
    let fits = p.simd
        && p.depth <= super::MAX_PERFECT_DEPTH
        && width >= p.reads
        && width <= crate::spec::MAX_FEATURES
        && trees > 0
        && p.nodes.len() == trees * slots
        && p.leaves.len() == trees * slots
        && p.nodes.len() <= super::MAX_PERFECT_SLOTS
        && xs.len().is_multiple_of(width)
        && acc.len() == xs.len() / width * groups
        && p.groups.iter().all(|g| (*g as usize) < groups);
    if !fits {
        return false;
    }
    let rows = xs.len() / width;
    let batch = rows - rows % W;
    // SAFETY: the conditions above, which are what each kernel's safety section asks.
    unsafe {
        match p.depth {
            0 => kernels::<LE, NAN, 0>(p.nodes.as_slice(), &p.leaves, &p.groups, xs, width, batch, groups, acc),
            1 => kernels::<LE, NAN, 1>(p.nodes.as_slice(), &p.leaves, &p.groups, xs, width, batch, groups, acc),
            2 => kernels::<LE, NAN, 2>(p.nodes.as_slice(), &p.leaves, &p.groups, xs, width, batch, groups, acc),
            3 => kernels::<LE, NAN, 3>(p.nodes.as_slice(), &p.leaves, &p.groups, xs, width, batch, groups, acc),
            4 => kernels::<LE, NAN, 4>(p.nodes.as_slice(), &p.leaves, &p.groups, xs, width, batch, groups, acc),
            5 => kernels::<LE, NAN, 5>(p.nodes.as_slice(), &p.leaves, &p.groups, xs, width, batch, groups, acc),
            6 => kernels::<LE, NAN, 6>(p.nodes.as_slice(), &p.leaves, &p.groups, xs, width, batch, groups, acc),
            7 => kernels::<LE, NAN, 7>(p.nodes.as_slice(), &p.leaves, &p.groups, xs, width, batch, groups, acc),
            8 => kernels::<LE, NAN, 8>(p.nodes.as_slice(), &p.leaves, &p.groups, xs, width, batch, groups, acc),
            9 => kernels::<LE, NAN, 9>(p.nodes.as_slice(), &p.leaves, &p.groups, xs, width, batch, groups, acc),
            _ => kernels::<LE, NAN, 10>(p.nodes.as_slice(), &p.leaves, &p.groups, xs, width, batch, groups, acc),
        }
    }
    true
}

/// The batch kernel on the first `batch` rows (a multiple of 16), the single-row kernel on
/// the rest; monomorphised on the depth `D` so the levels unroll and each picks its way to
/// read a node at compile time.
///
/// # Safety
/// AVX-512F is available; `nodes` and `leaves` hold `trees × 2^D` slots (`trees ≥ 1`, at
/// most 2^23 slots); every node's feature (without [`NAN_LEFT`]) is below `width`, which is
/// at least 1 and at most 2^20; `xs` is whole rows of `width`; `acc` holds `groups` per row
/// and every tree's group is below `groups`.
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn kernels<const LE: bool, const NAN: bool, const D: u32>(
    nodes: &[PNode<f32>],
    leaves: &[f32],
    tree_groups: &[u32],
    xs: &[f32],
    width: usize,
    batch: usize,
    groups: usize,
    acc: &mut [f32],
) {
    let (head, tail) = xs.split_at(batch * width);
    let (acc_head, acc_tail) = acc.split_at_mut(batch * groups);
    if batch > 0 {
        // SAFETY: forwarded from this function's contract; `head` is whole groups of 16 rows.
        unsafe { rows16::<LE, NAN, D>(nodes, leaves, tree_groups, head, width, groups, acc_head) };
    }
    for (row, acc) in tail.chunks_exact(width).zip(acc_tail.chunks_exact_mut(groups)) {
        // SAFETY: forwarded from this function's contract; `row` is one row of `width`.
        unsafe { one_row::<LE, NAN, D>(nodes, leaves, tree_groups, row, acc) };
    }
}

/// A tree's slots 0..64 (its top six levels), thresholds and features apart.
struct Top {
    thresholds: [__m512; 4],
    features: [__m512i; 4],
}

/// Deinterleaves a tree's first 64 slots (fewer in a shallower tree; the rest zero, never read).
///
/// # Safety
/// AVX-512F is available.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn load_top(tree: &[PNode<f32>]) -> Top {
    // A node is a threshold then a feature (`repr(C)`, 8 bytes): 2 values per slot.
    let base = tree.as_ptr().cast::<f32>();
    let values = 2 * tree.len();
    let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    let odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    let mut top = Top { thresholds: [_mm512_setzero_ps(); 4], features: [_mm512_setzero_si512(); 4] };
    for q in 0..4 {
        let start = 32 * q;
        let mask = |from: usize| -> __mmask16 {
            let n = values.saturating_sub(from).min(W);
            ((1u32 << n) - 1) as __mmask16
        };
        // SAFETY: a masked load reads only its mask's lanes, which are inside `tree`
        // (`values` f32s from `base`); the pointers are formed with `wrapping_add` because
        // past a shallow tree's end they are never dereferenced.
        let (a, b) = unsafe {
            (
                _mm512_maskz_loadu_ps(mask(start), base.wrapping_add(start)),
                _mm512_maskz_loadu_ps(mask(start + W), base.wrapping_add(start + W)),
            )
        };
        top.thresholds[q] = _mm512_permutex2var_ps(a, even, b);
        top.features[q] = _mm512_castps_si512(_mm512_permutex2var_ps(a, odd, b));
    }
    top
}

/// The nodes at slots `at` (all on `level`) of the tree whose top is `top` and whose nodes
/// start at `tree`.
///
/// # Safety
/// AVX-512F is available; every lane of `at` is a slot of the tree on `level` (in
/// `2^level..2^(level+1)`) and below the tree's slots.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn node(top: &Top, tree: *const PNode<f32>, level: u32, at: __m512i) -> (__m512, __m512i) {
    match level {
        // Slots below 16: the index's low four bits select the lane.
        0..=3 => (_mm512_permutexvar_ps(at, top.thresholds[0]), _mm512_permutexvar_epi32(at, top.features[0])),
        // 16..32: the same four bits, from the second register.
        4 => (_mm512_permutexvar_ps(at, top.thresholds[1]), _mm512_permutexvar_epi32(at, top.features[1])),
        // 32..64: the low five bits select from the third and fourth.
        5 => (
            _mm512_permutex2var_ps(top.thresholds[2], at, top.thresholds[3]),
            _mm512_permutex2var_epi32(top.features[2], at, top.features[3]),
        ),
        // SAFETY: `at` is in the tree's slots (the contract); a slot is 8 bytes, its
        // threshold at byte 0 and its feature at byte 4.
        _ => unsafe {
            (
                _mm512_i32gather_ps::<8>(at, tree.cast::<f32>()),
                _mm512_i32gather_epi32::<8>(at, tree.cast::<i32>().wrapping_add(1)),
            )
        },
    }
}

/// One step of a walk: `at = 2·at + right`, with right as in the scalar `goes_right`.
#[inline]
#[target_feature(enable = "avx512f")]
fn step<const LE: bool, const NAN: bool>(at: __m512i, threshold: __m512, feature: __m512i, x: __m512) -> __m512i {
    let mut left =
        if LE { _mm512_cmp_ps_mask::<_CMP_LE_OQ>(x, threshold) } else { _mm512_cmp_ps_mask::<_CMP_LT_OQ>(x, threshold) };
    if NAN {
        let nan = _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(x, x);
        left |= nan & _mm512_test_epi32_mask(feature, _mm512_set1_epi32(NAN_LEFT as i32));
    }
    let twice = _mm512_add_epi32(at, at);
    _mm512_mask_add_epi32(twice, !left, twice, _mm512_set1_epi32(1))
}

/// A feature index without its NaN bit.
#[inline]
#[target_feature(enable = "avx512f")]
fn feature_index(feature: __m512i) -> __m512i {
    _mm512_and_si512(feature, _mm512_set1_epi32(!NAN_LEFT as i32))
}

/// Whole groups of 16 rows through every tree, tree by tree.
///
/// # Safety
/// As [`kernels`], and `xs` is whole groups of 16 rows.
#[target_feature(enable = "avx512f")]
unsafe fn rows16<const LE: bool, const NAN: bool, const D: u32>(
    nodes: &[PNode<f32>],
    leaves: &[f32],
    tree_groups: &[u32],
    xs: &[f32],
    width: usize,
    groups: usize,
    acc: &mut [f32],
) {
    let slots = 1usize << D;
    let n = xs.len() / width / W;
    // Feature-major per group of 16 rows: row `l`'s value of feature `f` at `f·16 + l`.
    let mut lanes = vec![0.0f32; n * width * W];
    for (r, row) in xs.chunks_exact(width).enumerate() {
        let (k, l) = (r / W, r % W);
        for (f, x) in row.iter().enumerate() {
            lanes[(k * width + f) * W + l] = *x;
        }
    }
    let lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    let first_leaf = _mm512_set1_epi32(slots as i32);
    let mut sums = [0.0f32; W];
    for ((tree, values), group) in nodes.chunks_exact(slots).zip(leaves.chunks_exact(slots)).zip(tree_groups) {
        // SAFETY: AVX-512F is available (the contract).
        let top = unsafe { load_top(tree) };
        let mut k = 0;
        while k < n {
            let step_rows = (n - k).min(ROWS_IN_STEP);
            let mut at = [_mm512_set1_epi32(1); ROWS_IN_STEP];
            for level in 0..D {
                for (j, at) in at.iter_mut().enumerate().take(step_rows) {
                    // SAFETY: `at` holds slots of this tree on `level` (it starts at 1 and
                    // each step doubles it and adds at most 1, D times in all, so it stays
                    // below `slots`).
                    let (threshold, feature) = unsafe { node(&top, tree.as_ptr(), level, *at) };
                    let group_rows = &lanes[(k + j) * width * W..(k + j + 1) * width * W];
                    let index = _mm512_add_epi32(_mm512_slli_epi32::<4>(feature_index(feature)), lane);
                    // SAFETY: the feature is below `width` (the contract), so
                    // `feature·16 + lane < width·16`, the group's length.
                    let x = unsafe { _mm512_i32gather_ps::<4>(index, group_rows.as_ptr()) };
                    *at = step::<LE, NAN>(*at, threshold, feature, x);
                }
            }
            for (j, at) in at.iter().enumerate().take(step_rows) {
                // SAFETY: after D steps `at` is in `slots..2·slots`, so `at − slots` is a leaf.
                let leaf = unsafe { _mm512_i32gather_ps::<4>(_mm512_sub_epi32(*at, first_leaf), values.as_ptr()) };
                let r0 = (k + j) * W;
                if groups == 1 {
                    let sum = &mut acc[r0..r0 + W];
                    // SAFETY: `sum` is 16 values.
                    unsafe { _mm512_storeu_ps(sum.as_mut_ptr(), _mm512_add_ps(_mm512_loadu_ps(sum.as_ptr()), leaf)) };
                } else {
                    // SAFETY: `sums` is 16 values.
                    unsafe { _mm512_storeu_ps(sums.as_mut_ptr(), leaf) };
                    for (l, v) in sums.iter().enumerate() {
                        acc[(r0 + l) * groups + *group as usize] += *v;
                    }
                }
            }
            k += step_rows;
        }
    }
}

/// One row through every tree, 16 trees to a register; the leaves are added one by one in
/// tree order.
///
/// # Safety
/// As [`kernels`], and `row` is one row of `width`.
#[target_feature(enable = "avx512f")]
unsafe fn one_row<const LE: bool, const NAN: bool, const D: u32>(
    nodes: &[PNode<f32>],
    leaves: &[f32],
    tree_groups: &[u32],
    row: &[f32],
    acc: &mut [f32],
) {
    let slots = 1usize << D;
    let trees = tree_groups.len();
    let width = row.len();
    let mask = |n: usize| ((1u32 << n.min(W)) - 1) as __mmask16;
    // SAFETY: the masks cover the row's first `width` values only (the pointer past the
    // first 16 is formed with `wrapping_add`: a row of 16 or fewer never reads it).
    let (low, high) = unsafe {
        (
            _mm512_maskz_loadu_ps(mask(width), row.as_ptr()),
            _mm512_maskz_loadu_ps(mask(width.saturating_sub(W)), row.as_ptr().wrapping_add(W)),
        )
    };
    let lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    let last = _mm512_set1_epi32(trees as i32 - 1);
    let slots_v = _mm512_set1_epi32(slots as i32);
    let thresholds = nodes.as_ptr().cast::<f32>();
    let features = nodes.as_ptr().cast::<i32>().wrapping_add(1);
    let mut values = [0.0f32; W * TREES_IN_STEP];
    for t0 in (0..trees).step_by(W * TREES_IN_STEP) {
        // Lanes past the last tree walk the last tree again; their leaves are not added.
        let mut base = [_mm512_setzero_si512(); TREES_IN_STEP];
        for (j, base) in base.iter_mut().enumerate() {
            let tree = _mm512_min_epi32(_mm512_add_epi32(_mm512_set1_epi32((t0 + W * j) as i32), lane), last);
            *base = _mm512_mullo_epi32(tree, slots_v);
        }
        let mut at = [_mm512_set1_epi32(1); TREES_IN_STEP];
        for _ in 0..D {
            for (at, base) in at.iter_mut().zip(&base) {
                let slot = _mm512_add_epi32(*base, *at);
                // SAFETY: `slot` is `tree·slots + at` with `tree < trees` and `1 ≤ at < slots`
                // (see `rows16`), inside `nodes`; a slot is 8 bytes, threshold then feature.
                let (threshold, feature) = unsafe {
                    (_mm512_i32gather_ps::<8>(slot, thresholds), _mm512_i32gather_epi32::<8>(slot, features))
                };
                let index = feature_index(feature);
                let x = if width <= 2 * W {
                    // The index is below `width ≤ 32`: its low five bits pick the value.
                    _mm512_permutex2var_ps(low, index, high)
                } else {
                    // SAFETY: the index is below `width`, the row's length.
                    unsafe { _mm512_i32gather_ps::<4>(index, row.as_ptr()) }
                };
                *at = step::<LE, NAN>(*at, threshold, feature, x);
            }
        }
        for (j, (at, base)) in at.iter().zip(&base).enumerate() {
            let leaf = _mm512_sub_epi32(_mm512_add_epi32(*base, *at), slots_v);
            // SAFETY: `leaf` is `tree·slots + (at − slots)` with `slots ≤ at < 2·slots`,
            // inside `leaves`; `values` has room for 16 at `16·j`.
            unsafe {
                _mm512_storeu_ps(values.as_mut_ptr().add(W * j), _mm512_i32gather_ps::<4>(leaf, leaves.as_ptr()))
            };
        }
        let count = (trees - t0).min(W * TREES_IN_STEP);
        if let [sum] = acc {
            for v in &values[..count] {
                *sum += *v;
            }
        } else {
            for (v, group) in values[..count].iter().zip(&tree_groups[t0..]) {
                acc[*group as usize] += *v;
            }
        }
    }
}

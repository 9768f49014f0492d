//! Choosing a leaf's split from its histogram.
//!
//! The gain of a split is the decrease of the second-order loss,
//! `G_L²/(H_L+λ) + G_R²/(H_R+λ) - G²/(H+λ)` (halved constants dropped, as LightGBM reports
//! it). Numeric features try every bin boundary twice, once with the missing bin on each
//! side, and keep the better: missing values are learned per split. Categorical features
//! order their categories by `G/(H + smooth)` and try every prefix of that order (from both
//! ends, up to [`MAX_CAT_SET`] categories) as the left set, LightGBM's way; their missing
//! bin, which also holds rare and unseen categories, always goes right.

use super::avx512::avx512;
use super::bins::Mapper;
use super::hist::{Bin, Hist, Layout, Slot};
use super::quantize;

/// Most categories in a categorical split's left set (LightGBM's `max_cat_threshold`).
const MAX_CAT_SET: usize = 32;
/// Added to the hessian when ordering categories (LightGBM's `cat_smooth`).
const CAT_SMOOTH: f64 = 10.0;
/// Extra L2 on categorical splits (LightGBM's `cat_l2`).
const CAT_L2: f64 = 10.0;
/// Fewest rows a category needs to be ordered on its own (LightGBM's `min_data_per_group`).
const MIN_PER_CATEGORY: u32 = 100;
/// Smallest hessian a child may have (LightGBM's `min_sum_hessian_in_leaf`).
const MIN_CHILD_HESSIAN: f64 = 1e-3;

/// The limits a split must respect, and the constants of its gain, in the histograms'
/// units of hessian.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rules {
    pub(crate) l2: f64,
    pub(crate) min_samples_leaf: u32,
    min_hessian: f64,
    cat_smooth: f64,
    cat_l2: f64,
    /// Whether every sum in the histograms is a whole number (quantized gradients), so
    /// running sums may be taken in any order and give the same bits.
    integral: bool,
}

impl Rules {
    pub(crate) fn new(l2: f64, min_samples_leaf: u32) -> Rules {
        Rules {
            l2,
            min_samples_leaf,
            min_hessian: MIN_CHILD_HESSIAN,
            cat_smooth: CAT_SMOOTH,
            cat_l2: CAT_L2,
            integral: false,
        }
    }

    /// The same rules for histograms whose hessians count units of `h` (`integral`: whole
    /// numbers of them): every constant added to or compared with a hessian is divided by it
    /// (by one, exact, they are unchanged), which scales every gain by the same positive
    /// factor and so leaves the choice of splits as it would be on the unquantized sums.
    pub(crate) fn in_units(&self, h: f64, integral: bool) -> Rules {
        Rules {
            l2: self.l2 / h,
            min_samples_leaf: self.min_samples_leaf,
            min_hessian: self.min_hessian / h,
            cat_smooth: self.cat_smooth / h,
            cat_l2: self.cat_l2 / h,
            integral,
        }
    }
}

/// How a chosen split sends rows.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Decision {
    /// Bins `<= bin` go left; the missing bin goes left when `missing_left`.
    Numeric { bin: usize, missing_left: bool },
    /// These bins go left; every other bin (the missing one too) goes right.
    Categorical { left: Vec<usize> },
}

/// The best split of a leaf.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    pub(crate) feature: usize,
    pub(crate) gain: f64,
    pub(crate) decision: Decision,
    pub(crate) left: Bin,
    pub(crate) right: Bin,
}

impl Decision {
    /// A lookup table: does bin `b` go left?
    pub(crate) fn table(&self, missing_bin: usize) -> [bool; 256] {
        let mut t = [false; 256];
        match self {
            Decision::Numeric { bin, missing_left } => {
                t[..=*bin].iter_mut().for_each(|x| *x = true);
                t[missing_bin] = *missing_left;
            }
            Decision::Categorical { left } => left.iter().for_each(|b| t[*b] = true),
        }
        t
    }
}

fn score(b: Bin, l2: f64) -> f64 {
    b.g * b.g / (b.h + l2)
}

fn allowed(b: Bin, rules: &Rules) -> bool {
    b.n >= rules.min_samples_leaf && b.h >= rules.min_hessian
}

/// The best split of a leaf whose histogram is `hist` and totals `total`, over the features
/// marked in `active`; `None` when no split is allowed or none gains.
pub(crate) fn best(
    hist: &Hist,
    layout: &Layout,
    mappers: &[Mapper],
    active: &[bool],
    total: Bin,
    rules: &Rules,
) -> Option<Candidate> {
    let search = |work: &mut Box<Work>, f: usize| {
        if !active[f] {
            return None;
        }
        let range = layout.offsets[f]..layout.offsets[f + 1];
        match (&mappers[f], hist) {
            (Mapper::Numeric { .. }, Hist::Wide(w)) => numeric(f, Bins::Wide(&w[range]), total, rules, work),
            (Mapper::Numeric { .. }, Hist::Packed(p)) => numeric(f, Bins::Packed(&p[range]), total, rules, work),
            (Mapper::Categorical { .. }, _) => categorical(f, &hist.slots(range), total, rules),
        }
    };
    // A feature's search takes about a microsecond, what a task costs: one task searches
    // every feature (the grower searches a split's two children side by side).
    let mut work = Work::new();
    let found: Vec<Option<Candidate>> = (0..mappers.len()).map(|f| search(&mut work, f)).collect();
    // In feature order, strictly greater: the lowest feature wins a tie, on every run.
    let mut best: Option<Candidate> = None;
    for c in found.into_iter().flatten() {
        if best.as_ref().is_none_or(|b| c.gain > b.gain) {
            best = Some(c);
        }
    }
    best
}

avx512! {
    /// Every cut of a numeric feature, each with the missing bin on either side: the same
    /// arithmetic as [`score`] and [`allowed`] on [`Bin`]s, in the same order, so the same bits.
    /// The running sums are taken first, then every cut's gain in one loop the compiler
    /// vectorizes (a gain takes two divisions, the search's cost), then the best is picked in
    /// the order of cuts, so whatever the vector width the same split wins.
    ///
    /// With AVX-512: eight gains (two divisions each) to an instruction, and eight lanes of
    /// the best cut's search in one register.
    fn numeric(feature: usize, bins: Bins<'_>, total: Bin, rules: &Rules, work: &mut Work) -> Option<Candidate> = numeric_generic;
}

#[inline(always)]
fn numeric_generic(feature: usize, bins: Bins<'_>, total: Bin, rules: &Rules, work: &mut Work) -> Option<Candidate> {
    let value_bins = bins.len() - 1;
    let cuts = value_bins.saturating_sub(1).min(MAX_CUTS);
    // The running sums of the bins up to each cut. Only the first `cuts` of each array are
    // written, and only they are read.
    let Work { sums, gains, packed } = work;
    let missing = match bins {
        Bins::Wide(bins) if rules.integral => {
            running_sums_blocked(&bins[..cuts], sums);
            bins[value_bins]
        }
        Bins::Wide(bins) => {
            // Sums of `f64`s in bin order are the bits of `Bin::add` (the count is exact
            // either way).
            let (mut g, mut h, mut n) = (0.0f64, 0.0f64, 0.0f64);
            for (j, b) in bins[..cuts].iter().enumerate() {
                (g, h, n) = (g + b.g, h + b.h, n + b.n);
                (sums.g[j], sums.h[j], sums.n[j]) = (g, h, n);
            }
            bins[value_bins]
        }
        Bins::Packed(bins) => {
            // Running sums of packed sums are packed sums of some of the leaf's rows: one
            // integer addition a bin, then every one unpacked, which vectorizes.
            let mut running = 0u64;
            for (p, b) in packed.iter_mut().zip(&bins[..cuts]) {
                running = running.wrapping_add(*b);
                *p = running;
            }
            for (j, p) in packed[..cuts].iter().enumerate() {
                let s = quantize::unpack(*p);
                (sums.g[j], sums.h[j], sums.n[j]) = (s.g, s.h, s.n);
            }
            quantize::unpack(bins[value_bins])
        }
    };
    let two_sides = missing.n > 0.0;
    let at = Totals {
        g: total.g,
        h: total.h,
        n: total.n as f64,
        l2: rules.l2,
        min_n: rules.min_samples_leaf as f64,
        min_h: rules.min_hessian,
        parent: score(total, rules.l2),
    };
    cut_gains_generic(sums, cuts, [0.0; 3], &at, &mut gains[0]);
    if two_sides {
        // A second pass rather than adding zeros: `-0.0 + 0.0` is `+0.0`, and the bits must
        // be those of the sides' own sums.
        cut_gains_generic(sums, cuts, [missing.g, missing.h, missing.n], &at, &mut gains[1]);
    } else {
        gains[1][..cuts].fill(f64::NEG_INFINITY);
    }
    // The largest gain, then its first cut in the order of cuts, missing right before
    // missing left: the split a scan keeping the strictly greater would keep, found without
    // a branch per cut.
    let [right_gains, left_gains] = &*gains;
    let (at, gain) = first_largest(&right_gains[..cuts], &left_gains[..cuts]);
    if gain <= 0.0 {
        return None;
    }
    let (j, missing_left) = (at / 2, at % 2 == 1);
    let left = Bin { g: sums.g[j], h: sums.h[j], n: sums.n[j] as u32 };
    let l = if missing_left { left.add(missing.bin()) } else { left };
    let r = total.sub(l);
    // With no missing value in training, missing values at scoring follow the majority, as
    // scikit-learn sends them.
    let missing_left = if two_sides { missing_left } else { l.n >= r.n };
    Some(Candidate { feature, gain, decision: Decision::Numeric { bin: j, missing_left }, left: l, right: r })
}

/// The largest of the gains and its first place in the order cut 0 with the missing bin
/// right (place 0), cut 0 with it left (place 1), cut 1 with it right (place 2)…, which is
/// the split a scan keeping the strictly greater would keep: eight lanes each keep their
/// first largest, then the largest of the lanes with the lowest place wins. NaN never wins;
/// minus infinity at place 0 for no gain at all.
#[inline(always)]
fn first_largest(right: &[f64], left: &[f64]) -> (usize, f64) {
    let mut top = [f64::NEG_INFINITY; 8];
    let mut at = [0usize; 8];
    let (rs, r_rest) = right.as_chunks::<8>();
    let (ls, l_rest) = left.as_chunks::<8>();
    for (c, (r, l)) in rs.iter().zip(ls).enumerate() {
        for lane in 0..8 {
            let place = 2 * (8 * c + lane);
            if r[lane] > top[lane] {
                (top[lane], at[lane]) = (r[lane], place);
            }
            if l[lane] > top[lane] {
                (top[lane], at[lane]) = (l[lane], place + 1);
            }
        }
    }
    // The cuts past the last eight, in the first lane: their places are above all of its.
    for (k, (r, l)) in r_rest.iter().zip(l_rest).enumerate() {
        let place = 2 * (8 * rs.len() + k);
        if *r > top[0] {
            (top[0], at[0]) = (*r, place);
        }
        if *l > top[0] {
            (top[0], at[0]) = (*l, place + 1);
        }
    }
    let mut best = (0, f64::NEG_INFINITY);
    for (t, a) in top.iter().zip(&at) {
        if *t > best.1 || (*t == best.1 && *a < best.0) {
            best = (*a, *t);
        }
    }
    best
}

/// Running sums of whole numbers, which any order of addition gives exactly: four blocks of
/// bins summed side by side (four chains of additions, not one), then each block's sums
/// raised by the totals of the blocks before it.
#[inline(always)]
fn running_sums_blocked(bins: &[Slot], sums: &mut Sums) {
    let len = bins.len().div_ceil(4);
    let mut acc = [[0.0f64; 3]; 4];
    for i in 0..len {
        for (k, a) in acc.iter_mut().enumerate() {
            if let Some(b) = bins.get(k * len + i) {
                *a = [a[0] + b.g, a[1] + b.h, a[2] + b.n];
                let j = k * len + i;
                (sums.g[j], sums.h[j], sums.n[j]) = (a[0], a[1], a[2]);
            }
        }
    }
    let mut carry = [0.0f64; 3];
    for k in 1..4 {
        for (c, a) in carry.iter_mut().zip(acc[k - 1]) {
            *c += a;
        }
        let block = (k * len).min(bins.len())..((k + 1) * len).min(bins.len());
        for arr in [&mut sums.g, &mut sums.h, &mut sums.n].into_iter().zip(carry) {
            let (arr, c) = arr;
            arr[block.clone()].iter_mut().for_each(|v| *v += c);
        }
    }
}

/// Most cuts of a feature: one fewer than the most value bins (255).
const MAX_CUTS: usize = 255;

/// The running sums of a feature's bins, one per cut.
struct Sums {
    g: [f64; MAX_CUTS],
    h: [f64; MAX_CUTS],
    n: [f64; MAX_CUTS],
}

/// A numeric search's arrays, made once per leaf (per task) rather than zeroed for every
/// feature: each search writes what it reads.
pub(crate) struct Work {
    sums: Sums,
    gains: [[f64; MAX_CUTS]; 2],
    /// Running packed sums, before they are unpacked into `sums`.
    packed: [u64; MAX_CUTS],
}

impl Work {
    fn new() -> Box<Work> {
        Box::new(Work {
            sums: Sums { g: [0.0; MAX_CUTS], h: [0.0; MAX_CUTS], n: [0.0; MAX_CUTS] },
            gains: [[0.0; MAX_CUTS]; 2],
            packed: [0; MAX_CUTS],
        })
    }
}

/// A numeric feature's bins: `f64` sums or packed ones.
#[derive(Clone, Copy)]
enum Bins<'a> {
    Wide(&'a [Slot]),
    Packed(&'a [u64]),
}

impl Bins<'_> {
    fn len(&self) -> usize {
        match self {
            Bins::Wide(b) => b.len(),
            Bins::Packed(b) => b.len(),
        }
    }
}

/// A leaf's totals and the rules, as every cut's gain reads them.
struct Totals {
    g: f64,
    h: f64,
    n: f64,
    l2: f64,
    min_n: f64,
    min_h: f64,
    parent: f64,
}

/// The gain of each of the first `cuts` cuts, with `extra` (the missing bin's sums, or
/// zeros) added to the left side, into `out`; minus infinity where a side breaks the rules.
#[inline(always)]
fn cut_gains_generic(sums: &Sums, cuts: usize, extra: [f64; 3], at: &Totals, out: &mut [f64; MAX_CUTS]) {
    let [eg, eh, en] = extra;
    let n = cuts.min(MAX_CUTS);
    for (((o, g), h), c) in out[..n].iter_mut().zip(&sums.g[..n]).zip(&sums.h[..n]).zip(&sums.n[..n]) {
        let (lg, lh, ln) = if en > 0.0 { (g + eg, h + eh, c + en) } else { (*g, *h, *c) };
        let (rg, rh, rn) = (at.g - lg, at.h - lh, at.n - ln);
        let ok = ln >= at.min_n && rn >= at.min_n && lh >= at.min_h && rh >= at.min_h;
        let gain = lg * lg / (lh + at.l2) + rg * rg / (rh + at.l2) - at.parent;
        *o = if ok { gain } else { f64::NEG_INFINITY };
    }
}

fn categorical(feature: usize, bins: &[Slot], total: Bin, rules: &Rules) -> Option<Candidate> {
    let value_bins = bins.len() - 1;
    let bins: Vec<Bin> = bins.iter().map(|s| s.bin()).collect();
    let l2 = rules.l2 + rules.cat_l2;
    let mut order: Vec<usize> =
        (0..value_bins).filter(|b| bins[*b].n >= MIN_PER_CATEGORY.min(total.n / 4).max(1)).collect();
    let ratio = |b: usize| bins[b].g / (bins[b].h + rules.cat_smooth);
    order.sort_by(|a, b| ratio(*a).total_cmp(&ratio(*b)).then(a.cmp(b)));
    let parent = score(total, l2);
    let mut best: Option<Candidate> = None;
    let limit = MAX_CAT_SET.min(order.len().saturating_sub(1).max(1));
    for reverse in [false, true] {
        let mut left = Bin::default();
        let mut set = Vec::new();
        for i in 0..limit.min(order.len()) {
            let b = if reverse { order[order.len() - 1 - i] } else { order[i] };
            left = left.add(bins[b]);
            set.push(b);
            let r = total.sub(left);
            if !allowed(left, rules) || !allowed(r, rules) {
                continue;
            }
            let gain = score(left, l2) + score(r, l2) - parent;
            if gain > 0.0 && best.as_ref().is_none_or(|c| gain > c.gain) {
                let mut sorted = set.clone();
                sorted.sort_unstable();
                best =
                    Some(Candidate { feature, gain, decision: Decision::Categorical { left: sorted }, left, right: r });
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_and_wide_histograms_of_the_same_rows_choose_the_same_split() {
        use super::super::quantize::{quantize, Noise};
        use rand::{Rng, SeedableRng};
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(8);
        let n = 3_000;
        // Three numeric features of 255, 17 and 2 value bins (and a missing bin each); the
        // bins of the first lean with the gradient, some rows missing.
        let value_bins = [255usize, 17, 2];
        let mappers: Vec<Mapper> =
            value_bins.iter().map(|v| Mapper::Numeric { edges: (1..*v).map(|e| e as f64).collect() }).collect();
        let layout = Layout::new(value_bins.iter().map(|v| v + 1));
        let gh: Vec<[f32; 2]> = (0..n).map(|_| [rng.gen_range(-1.0f32..1.0), rng.gen_range(0.01f32..0.25)]).collect();
        let mut packed = Vec::new();
        quantize(&gh, &Noise::new(&mut rng), 0, &mut packed);
        let mut hist = vec![0u64; layout.total()];
        for (r, [g, _]) in gh.iter().enumerate() {
            for (f, v) in value_bins.iter().enumerate() {
                let bin =
                    if r % 29 == f { *v } else { ((g + 1.0) * 0.5 * *v as f32 + rng.gen_range(0.0..3.0)) as usize % v };
                hist[layout.offsets[f] + bin] += packed[r];
            }
        }
        let packed_hist = Hist::Packed(hist);
        let wide_hist = Hist::Wide(packed_hist.slots(0..layout.total()));
        for f in 0..3 {
            let total = packed_hist.total(&layout, f);
            assert_eq!(total.n, n as u32);
            let rules = Rules::new(0.5, 20).in_units(0.001, true);
            let active = [true; 3];
            let (p, w) = (
                best(&packed_hist, &layout, &mappers, &active, total, &rules),
                best(&wide_hist, &layout, &mappers, &active, total, &rules),
            );
            let (p, w) = (p.expect("a split"), w.expect("a split"));
            assert_eq!(
                (p.feature, p.gain.to_bits(), &p.decision, p.left, p.right),
                (w.feature, w.gain.to_bits(), &w.decision, w.left, w.right)
            );
        }
    }

    #[test]
    fn blocked_running_sums_of_whole_numbers_are_the_running_sums() {
        for n in [0usize, 1, 3, 4, 5, 254] {
            let bins: Vec<Slot> =
                (0..n).map(|i| Slot::new((i as f64 * 7.0) % 13.0 - 6.0, (i % 5) as f64, (i % 3) as f64)).collect();
            let mut blocked = Work::new();
            running_sums_blocked(&bins, &mut blocked.sums);
            let (mut g, mut h, mut c) = (0.0, 0.0, 0.0);
            for (j, b) in bins.iter().enumerate() {
                (g, h, c) = (g + b.g, h + b.h, c + b.n);
                assert_eq!((blocked.sums.g[j], blocked.sums.h[j], blocked.sums.n[j]), (g, h, c), "{n} bins, bin {j}");
            }
        }
    }

    /// The scan `first_largest` stands for.
    fn scan(right: &[f64], left: &[f64]) -> (usize, f64) {
        let mut best = (0, f64::NEG_INFINITY);
        for (j, (r, l)) in right.iter().zip(left).enumerate() {
            for (side, g) in [*r, *l].into_iter().enumerate() {
                if g > best.1 {
                    best = (2 * j + side, g);
                }
            }
        }
        best
    }

    #[test]
    fn the_first_of_equal_gains_wins_as_in_a_scan() {
        let mut state = 7u64;
        for n in [0usize, 1, 7, 8, 9, 17, 64, 254] {
            for _ in 0..200 {
                let mut draw = || {
                    state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                    // Few distinct values, so ties are common; NaN and minus infinity too.
                    [1.0, 2.0, 3.0, f64::NAN, f64::NEG_INFINITY, -1.0][(state >> 33) as usize % 6]
                };
                let right: Vec<f64> = (0..n).map(|_| draw()).collect();
                let left: Vec<f64> = (0..n).map(|_| draw()).collect();
                let (want, got) = (scan(&right, &left), first_largest(&right, &left));
                assert_eq!((want.0, want.1.to_bits()), (got.0, got.1.to_bits()), "{right:?} {left:?}");
            }
        }
    }
}

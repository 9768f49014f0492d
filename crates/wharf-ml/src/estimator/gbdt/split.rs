//! Choosing a leaf's split from its histogram.
//!
//! The gain of a split is the decrease of the second-order loss,
//! `G_L²/(H_L+λ) + G_R²/(H_R+λ) - G²/(H+λ)` (halved constants dropped, as LightGBM reports
//! it). Numeric features try every bin boundary twice, once with the missing bin on each
//! side, and keep the better: missing values are learned per split. Categorical features
//! order their categories by `G/(H + smooth)` and try every prefix of that order (from both
//! ends, up to [`MAX_CAT_SET`] categories) as the left set, LightGBM's way; their missing
//! bin, which also holds rare and unseen categories, always goes right.

use rayon::prelude::*;

use super::bins::Mapper;
use super::hist::{Bin, Layout, Slot};

/// Most categories in a categorical split's left set (LightGBM's `max_cat_threshold`).
const MAX_CAT_SET: usize = 32;
/// Added to the hessian when ordering categories (LightGBM's `cat_smooth`).
const CAT_SMOOTH: f64 = 10.0;
/// Extra L2 on categorical splits (LightGBM's `cat_l2`).
const CAT_L2: f64 = 10.0;
/// Fewest rows a category needs to be ordered on its own (LightGBM's `min_data_per_group`).
const MIN_PER_CATEGORY: u32 = 100;
/// Smallest hessian a child may have (LightGBM's `min_sum_hessian_in_leaf`).
pub(crate) const MIN_CHILD_HESSIAN: f64 = 1e-3;

/// The limits a split must respect.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rules {
    pub(crate) l2: f64,
    pub(crate) min_samples_leaf: u32,
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
    b.n >= rules.min_samples_leaf && b.h >= MIN_CHILD_HESSIAN
}

/// The best split of a leaf whose histogram is `hist` and totals `total`, over the features
/// marked in `active`; `None` when no split is allowed or none gains.
pub(crate) fn best(
    hist: &[Slot],
    layout: &Layout,
    mappers: &[Mapper],
    active: &[bool],
    total: Bin,
    rules: &Rules,
) -> Option<Candidate> {
    let found: Vec<Option<Candidate>> = (0..mappers.len())
        .into_par_iter()
        .map(|f| {
            if !active[f] {
                return None;
            }
            let bins = &hist[layout.offsets[f]..layout.offsets[f + 1]];
            match &mappers[f] {
                Mapper::Numeric { .. } => numeric(f, bins, total, rules),
                Mapper::Categorical { .. } => categorical(f, bins, total, rules),
            }
        })
        .collect();
    // In feature order, strictly greater: the lowest feature wins a tie, on every run.
    let mut best: Option<Candidate> = None;
    for c in found.into_iter().flatten() {
        if best.as_ref().is_none_or(|b| c.gain > b.gain) {
            best = Some(c);
        }
    }
    best
}

/// Cuts whose gains are computed together: a split's gain takes two divisions, which one
/// loop over a few cuts at a time lets the compiler do two to an instruction, with arrays
/// small enough to cost nothing to set up.
const LANES: usize = 8;

/// Every cut of a numeric feature, each with the missing bin on either side: the same
/// arithmetic as [`score`] and [`allowed`] on [`Bin`]s, in the same order, so the same bits.
fn numeric(feature: usize, bins: &[Slot], total: Bin, rules: &Rules) -> Option<Candidate> {
    let value_bins = bins.len() - 1;
    let missing = bins[value_bins];
    let cuts = value_bins.saturating_sub(1);
    let parent = score(total, rules.l2);
    let (l2, min_n) = (rules.l2, rules.min_samples_leaf as f64);
    let (tg, th, tn) = (total.g, total.h, total.n as f64);
    let sides: &[bool] = if missing.n > 0.0 { &[false, true] } else { &[false] };
    let mut best: Option<Candidate> = None;
    // The running sums of the bins up to each cut; lanes as sums of `f64`s in bin order are
    // the bits of `Bin::add` (the count is exact either way).
    let (mut g, mut h, mut n) = (0.0f64, 0.0f64, 0.0f64);
    for start in (0..cuts).step_by(LANES) {
        let m = LANES.min(cuts - start);
        let (mut lg, mut lh, mut ln) = ([0.0f64; LANES], [0.0f64; LANES], [0.0f64; LANES]);
        for j in 0..m {
            let b = bins[start + j];
            (g, h, n) = (g + b.g, h + b.h, n + b.n);
            (lg[j], lh[j], ln[j]) = (g, h, n);
        }
        let mut gains = [[f64::NEG_INFINITY; LANES]; 2];
        for j in 0..LANES {
            gains[0][j] = gain(lg[j], lh[j], ln[j], tg, th, tn, l2, min_n, parent);
        }
        if sides.len() == 2 {
            // Two loops rather than adding zeros: `-0.0 + 0.0` is `+0.0`, and the bits must
            // be those of the sides' own sums.
            for j in 0..LANES {
                let (g, h, n) = (lg[j] + missing.g, lh[j] + missing.h, ln[j] + missing.n);
                gains[1][j] = gain(g, h, n, tg, th, tn, l2, min_n, parent);
            }
        }
        // Past the first cuts the best rarely changes: a chunk whose largest gain beats
        // neither zero nor the best so far is skipped whole (`max` passes NaN over, as the
        // comparisons below do).
        let top = gains.iter().flatten().fold(f64::NEG_INFINITY, |a, b| a.max(*b));
        if !(top > 0.0 && best.as_ref().is_none_or(|c| top > c.gain)) {
            continue;
        }
        for j in 0..m {
            for &missing_left in sides {
                let gain = gains[usize::from(missing_left)][j];
                if gain > 0.0 && best.as_ref().is_none_or(|c| gain > c.gain) {
                    let left = Bin { g: lg[j], h: lh[j], n: ln[j] as u32 };
                    let l = if missing_left { left.add(missing.bin()) } else { left };
                    let r = total.sub(l);
                    // With no missing value in training, missing values at scoring follow the
                    // majority, as scikit-learn sends them.
                    let missing_left = if missing.n > 0.0 { missing_left } else { l.n >= r.n };
                    best = Some(Candidate {
                        feature,
                        gain,
                        decision: Decision::Numeric { bin: start + j, missing_left },
                        left: l,
                        right: r,
                    });
                }
            }
        }
    }
    best
}

/// One cut's gain, branch-free (minus infinity when not allowed).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn gain(lg: f64, lh: f64, ln: f64, tg: f64, th: f64, tn: f64, l2: f64, min_n: f64, parent: f64) -> f64 {
    let (rg, rh, rn) = (tg - lg, th - lh, tn - ln);
    let ok = ln >= min_n && rn >= min_n && lh >= MIN_CHILD_HESSIAN && rh >= MIN_CHILD_HESSIAN;
    let g = lg * lg / (lh + l2) + rg * rg / (rh + l2) - parent;
    if ok {
        g
    } else {
        f64::NEG_INFINITY
    }
}

fn categorical(feature: usize, bins: &[Slot], total: Bin, rules: &Rules) -> Option<Candidate> {
    let value_bins = bins.len() - 1;
    let bins: Vec<Bin> = bins.iter().map(|s| s.bin()).collect();
    let l2 = rules.l2 + CAT_L2;
    let mut order: Vec<usize> =
        (0..value_bins).filter(|b| bins[*b].n >= MIN_PER_CATEGORY.min(total.n / 4).max(1)).collect();
    let ratio = |b: usize| bins[b].g / (bins[b].h + CAT_SMOOTH);
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

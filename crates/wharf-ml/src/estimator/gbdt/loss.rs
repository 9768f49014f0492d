//! Losses: each gives the starting margins, the gradients and hessians of the current
//! margins, and its value (for the progress bar, the tracker and early stopping). The
//! absolute error also sets its leaves itself: its hessian says nothing of the scale of the
//! residuals, so each leaf takes the median residual of its rows, as LightGBM and
//! scikit-learn do.

use rayon::prelude::*;

use super::avx512::avx512;
use super::exp::exp;

/// What the booster minimises.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Loss {
    /// Binary log-loss on one margin (the positive class's log-odds).
    Binary,
    /// Softmax cross-entropy over `k` margins, one tree per class per round.
    Softmax(usize),
    /// Squared error (half of it, so the hessian is 1).
    Squared,
    /// Absolute error: gradients are the residuals' signs, leaves the residuals' medians.
    Absolute,
    /// Huber's loss with threshold `delta`: squared within `delta` of the target, absolute
    /// beyond, so a few wild targets pull the fit no harder than `delta` each (LightGBM's
    /// `huber`: the gradient is the residual clipped to `±delta`, the hessian 1).
    Huber(f64),
}

/// Smallest hessian used, so a leaf of confident rows keeps a finite value.
const MIN_HESSIAN: f64 = 1e-16;

impl Loss {
    /// Margins per row.
    pub(crate) fn groups(self) -> usize {
        match self {
            Loss::Softmax(k) => k,
            _ => 1,
        }
    }

    /// The constant margins that minimise the loss (the weighted log-odds, log-priors, mean
    /// or median), for the targets `y` (class index or value) weighted by `w`.
    pub(crate) fn init(self, y: &[f64], w: &[f64]) -> Vec<f64> {
        let total: f64 = w.iter().sum();
        match self {
            Loss::Binary => {
                let pos: f64 = y.iter().zip(w).filter(|(y, _)| **y > 0.5).map(|(_, w)| w).sum();
                let p = (pos / total).clamp(1e-15, 1.0 - 1e-15);
                vec![(p / (1.0 - p)).ln()]
            }
            Loss::Softmax(k) => {
                let mut prior = vec![0.0; k];
                for (y, w) in y.iter().zip(w) {
                    prior[*y as usize] += w;
                }
                prior.iter().map(|p| (p / total).max(1e-15).ln()).collect()
            }
            Loss::Squared => vec![y.iter().zip(w).map(|(y, w)| y * w).sum::<f64>() / total],
            // The median for Huber too (scikit-learn's GradientBoostingRegressor starts there;
            // LightGBM from the mean): a mean dragged by wild targets would take the clipped
            // gradients many rounds to walk back.
            Loss::Absolute | Loss::Huber(_) => {
                vec![weighted_median(y.iter().copied().zip(w.iter().copied()).collect())]
            }
        }
    }

    /// Whether [`leaf_value`](Self::leaf_value) replaces the Newton step as a leaf's value.
    pub(crate) fn renews_leaves(self) -> bool {
        matches!(self, Loss::Absolute)
    }

    /// A leaf's value before shrinkage, from its `rows`' targets `y`, weights `w` and
    /// current margins `f`: the weighted median residual (for the absolute error).
    pub(crate) fn leaf_value(self, y: &[f64], w: &[f64], f: &[f64], rows: &[u32]) -> f64 {
        let residuals = rows.iter().map(|r| (y[*r as usize] - f[*r as usize], w[*r as usize])).collect();
        weighted_median(residuals)
    }

    /// Gradients and hessians of every group for every row, from the margins `f`
    /// (`groups()` per row, row-major), into `g` and `h` (group-major: group `k`'s are
    /// `k * n..(k + 1) * n`). A round's trees all start from the same margins.
    pub(crate) fn gradients(self, y: &[f64], w: &[f64], f: &[f64], g: &mut [f32], h: &mut [f32]) {
        let n = y.len();
        match self {
            Loss::Binary => {
                g[..n].par_chunks_mut(CHUNK).zip(h[..n].par_chunks_mut(CHUNK)).enumerate().for_each(|(c, (gc, hc))| {
                    let rows = c * CHUNK..c * CHUNK + gc.len();
                    binary(&y[rows.clone()], &w[rows.clone()], &f[rows], gc, hc);
                })
            }
            Loss::Softmax(k) => {
                let mut p = vec![0.0; k];
                for i in 0..n {
                    let row = &f[i * k..(i + 1) * k];
                    let max = row.iter().fold(f64::NEG_INFINITY, |a, b| a.max(*b));
                    let mut sum = 0.0;
                    for (p, m) in p.iter_mut().zip(row) {
                        *p = exp(m - max);
                        sum += *p;
                    }
                    for (c, p) in p.iter().enumerate() {
                        let p = p / sum;
                        let t = if y[i] as usize == c { 1.0 } else { 0.0 };
                        g[c * n + i] = ((p - t) * w[i]) as f32;
                        h[c * n + i] = ((p * (1.0 - p)).max(MIN_HESSIAN) * w[i]) as f32;
                    }
                }
            }
            Loss::Squared => per_row(g, h, |i| (((f[i] - y[i]) * w[i]) as f32, w[i] as f32)),
            // `signum` says 1 for 0: a row already on its target pulls neither way.
            Loss::Absolute => per_row(g, h, |i| {
                let d = f[i] - y[i];
                let sign = if d > 0.0 {
                    1.0
                } else if d < 0.0 {
                    -1.0
                } else {
                    0.0
                };
                ((sign * w[i]) as f32, w[i] as f32)
            }),
            Loss::Huber(delta) => per_row(g, h, |i| (((f[i] - y[i]).clamp(-delta, delta) * w[i]) as f32, w[i] as f32)),
        }
    }

    /// The weighted mean loss of margins `f` for targets `y`.
    pub(crate) fn value(self, y: &[f64], w: &[f64], f: &[f64]) -> f64 {
        let total: f64 = w.iter().sum();
        let n = y.len();
        let sum: f64 = match self {
            Loss::Binary => chunked_sum(n, |i| {
                // log(1 + e^f) - y f, computed without overflow.
                let f = f[i];
                let softplus = if f > 0.0 { f + (-f).exp().ln_1p() } else { f.exp().ln_1p() };
                w[i] * (softplus - y[i] * f)
            }),
            Loss::Softmax(k) => chunked_sum(n, |i| {
                let row = &f[i * k..(i + 1) * k];
                let max = row.iter().fold(f64::NEG_INFINITY, |a, b| a.max(*b));
                let lse = max + row.iter().map(|m| (m - max).exp()).sum::<f64>().ln();
                w[i] * (lse - row[y[i] as usize])
            }),
            Loss::Squared => chunked_sum(n, |i| w[i] * (f[i] - y[i]) * (f[i] - y[i])) / 2.0,
            Loss::Absolute => chunked_sum(n, |i| w[i] * (f[i] - y[i]).abs()),
            Loss::Huber(delta) => chunked_sum(n, |i| {
                let d = (f[i] - y[i]).abs();
                w[i] * if d <= delta { d * d / 2.0 } else { delta * (d - delta / 2.0) }
            }),
        };
        sum / total
    }

    /// The name logged with its value.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Loss::Binary => "log_loss",
            Loss::Softmax(_) => "log_loss",
            Loss::Squared => "half_squared_error",
            Loss::Absolute => "absolute_error",
            Loss::Huber(_) => "huber",
        }
    }
}

/// Rows per parallel task of the per-row passes. Fixed, so every sum is taken over the same
/// chunks in the same order whatever the number of threads.
const CHUNK: usize = 8192;

/// Fills `g[i]` and `h[i]` with `each(i)` for every row, chunks in parallel.
fn per_row(g: &mut [f32], h: &mut [f32], each: impl Fn(usize) -> (f32, f32) + Sync) {
    let n = g.len().min(h.len());
    g[..n].par_chunks_mut(CHUNK).zip(h[..n].par_chunks_mut(CHUNK)).enumerate().for_each(|(c, (gc, hc))| {
        for (j, (g, h)) in gc.iter_mut().zip(hc.iter_mut()).enumerate() {
            (*g, *h) = each(c * CHUNK + j);
        }
    });
}

/// `Σ each(i)` over `0..n`: each chunk summed in parallel, the chunks' sums added in order.
fn chunked_sum(n: usize, each: impl Fn(usize) -> f64 + Sync) -> f64 {
    let parts: Vec<f64> =
        (0..n.div_ceil(CHUNK)).into_par_iter().map(|c| (c * CHUNK..n.min((c + 1) * CHUNK)).map(&each).sum()).collect();
    parts.iter().sum()
}

/// The smallest value whose share of the total weight, counting it and everything below it,
/// reaches one half (scikit-learn's weighted percentile at 50, without interpolation). 0 for
/// no rows.
fn weighted_median(mut values: Vec<(f64, f64)>) -> f64 {
    values.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    let half = values.iter().map(|(_, w)| w).sum::<f64>() / 2.0;
    let mut seen = 0.0;
    for (v, w) in &values {
        seen += w;
        if seen >= half {
            return *v;
        }
    }
    values.last().map_or(0.0, |(v, _)| *v)
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + exp(-x))
}

avx512! {
    /// The log-loss's gradients and hessians of a chunk of rows: one `exp` a row, in a loop
    /// the compiler vectorizes (eight rows to an instruction with AVX-512; the same bits at
    /// any width, see [`exp`]).
    fn binary(y: &[f64], w: &[f64], f: &[f64], g: &mut [f32], h: &mut [f32]) = binary_generic;
}

#[inline(always)]
fn binary_generic(y: &[f64], w: &[f64], f: &[f64], g: &mut [f32], h: &mut [f32]) {
    for ((((g, h), y), w), f) in g.iter_mut().zip(h.iter_mut()).zip(y).zip(w).zip(f) {
        let p = sigmoid(*f);
        *g = ((p - y) * w) as f32;
        *h = ((p * (1.0 - p)).max(MIN_HESSIAN) * w) as f32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huber_clips_the_gradient_and_is_squared_inside_delta() {
        let (y, w, f) = ([0.0, 0.0, 0.0], [1.0, 1.0, 2.0], [0.5, -3.0, 10.0]);
        let (mut g, mut h) = ([0.0f32; 3], [0.0f32; 3]);
        Loss::Huber(1.0).gradients(&y, &w, &f, &mut g, &mut h);
        assert_eq!(g, [0.5, -1.0, 2.0], "within delta the residual, beyond it ±delta (weighted)");
        assert_eq!(h, [1.0, 1.0, 2.0]);
        // 0.125 + (3 - 0.5) + 2 × (10 - 0.5), over the weight 4.
        let want = (0.125 + 2.5 + 2.0 * 9.5) / 4.0;
        assert!((Loss::Huber(1.0).value(&y, &w, &f) - want).abs() < 1e-12);
    }

    #[test]
    fn absolute_error_starts_and_renews_at_the_weighted_median() {
        let y = [1.0, 2.0, 3.0, 100.0];
        assert_eq!(Loss::Absolute.init(&y, &[1.0; 4]), [2.0], "the lower median, not the mean 26.5");
        assert_eq!(Loss::Absolute.init(&y, &[1.0, 1.0, 1.0, 5.0]), [100.0], "the weight moves it");
        let f = [0.0, 0.0, 10.0, 0.0];
        // Residuals of rows 0, 2 and 3: 1, -7 and 100; the median is 1.
        assert_eq!(Loss::Absolute.leaf_value(&y, &[1.0; 4], &f, &[0, 2, 3]), 1.0);
        let (mut g, mut h) = ([0.0f32; 4], [0.0f32; 4]);
        Loss::Absolute.gradients(&y, &[1.0; 4], &f, &mut g, &mut h);
        assert_eq!(g, [-1.0, -1.0, 1.0, -1.0]);
        assert!(Loss::Absolute.renews_leaves() && !Loss::Huber(1.0).renews_leaves() && !Loss::Squared.renews_leaves());
        assert_eq!(Loss::Absolute.value(&y, &[1.0; 4], &f), (1.0 + 2.0 + 7.0 + 100.0) / 4.0);
    }

    #[test]
    fn weighted_median_of_nothing_is_zero() {
        assert_eq!(weighted_median(Vec::new()), 0.0);
    }
}

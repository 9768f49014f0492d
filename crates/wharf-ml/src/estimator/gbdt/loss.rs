//! Losses: each gives the starting margins, the gradients and hessians of the current
//! margins, and its value (for the progress bar, the tracker and early stopping).

use rayon::prelude::*;

/// What the booster minimises.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Loss {
    /// Binary log-loss on one margin (the positive class's log-odds).
    Binary,
    /// Softmax cross-entropy over `k` margins, one tree per class per round.
    Softmax(usize),
    /// Squared error (half of it, so the hessian is 1).
    Squared,
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

    /// The constant margins that minimise the loss (the weighted log-odds, log-priors or
    /// mean), for the targets `y` (class index or value) weighted by `w`.
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
        }
    }

    /// Gradients and hessians of every group for every row, from the margins `f`
    /// (`groups()` per row, row-major), into `g` and `h` (group-major: group `k`'s are
    /// `k * n..(k + 1) * n`). A round's trees all start from the same margins.
    pub(crate) fn gradients(self, y: &[f64], w: &[f64], f: &[f64], g: &mut [f32], h: &mut [f32]) {
        let n = y.len();
        match self {
            Loss::Binary => per_row(g, h, |i| {
                let p = sigmoid(f[i]);
                (((p - y[i]) * w[i]) as f32, ((p * (1.0 - p)).max(MIN_HESSIAN) * w[i]) as f32)
            }),
            Loss::Softmax(k) => {
                let mut p = vec![0.0; k];
                for i in 0..n {
                    let row = &f[i * k..(i + 1) * k];
                    let max = row.iter().fold(f64::NEG_INFINITY, |a, b| a.max(*b));
                    let mut sum = 0.0;
                    for (p, m) in p.iter_mut().zip(row) {
                        *p = (m - max).exp();
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
        };
        sum / total
    }

    /// The name logged with its value.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Loss::Binary => "log_loss",
            Loss::Softmax(_) => "log_loss",
            Loss::Squared => "half_squared_error",
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

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

//! Losses: each gives the starting margins, the gradients and hessians of the current
//! margins, and its value (for the progress bar, the tracker and early stopping).

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
            Loss::Binary => {
                for i in 0..n {
                    let p = sigmoid(f[i]);
                    g[i] = ((p - y[i]) * w[i]) as f32;
                    h[i] = ((p * (1.0 - p)).max(MIN_HESSIAN) * w[i]) as f32;
                }
            }
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
            Loss::Squared => {
                for i in 0..n {
                    g[i] = ((f[i] - y[i]) * w[i]) as f32;
                    h[i] = w[i] as f32;
                }
            }
        }
    }

    /// The weighted mean loss of margins `f` for targets `y`.
    pub(crate) fn value(self, y: &[f64], w: &[f64], f: &[f64]) -> f64 {
        let total: f64 = w.iter().sum();
        let sum: f64 = match self {
            Loss::Binary => y
                .iter()
                .zip(w)
                .zip(f)
                .map(|((y, w), f)| {
                    // log(1 + e^f) - y f, computed without overflow.
                    let softplus = if *f > 0.0 { f + (-f).exp().ln_1p() } else { f.exp().ln_1p() };
                    w * (softplus - y * f)
                })
                .sum(),
            Loss::Softmax(k) => y
                .iter()
                .zip(w)
                .zip(f.chunks_exact(k))
                .map(|((y, w), row)| {
                    let max = row.iter().fold(f64::NEG_INFINITY, |a, b| a.max(*b));
                    let lse = max + row.iter().map(|m| (m - max).exp()).sum::<f64>().ln();
                    w * (lse - row[*y as usize])
                })
                .sum(),
            Loss::Squared => y.iter().zip(w).zip(f).map(|((y, w), f)| w * (f - y) * (f - y)).sum::<f64>() / 2.0,
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

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

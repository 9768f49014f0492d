//! Wharf's histogram-based gradient booster.
//!
//! The design follows LightGBM: values are binned once ([`bins`]), each tree is grown
//! leaf-wise ([`grow`]) from per-leaf histograms of gradients and hessians ([`hist`]) with
//! the subtraction trick, splits are chosen by second-order gain with missing values sent to
//! whichever side gains more ([`split`]), on gradients quantized to 8 bits unless asked
//! otherwise ([`quantize`]), and the losses ([`loss`]) are binary log-loss,
//! softmax (one tree per class per round), and squared, absolute or Huber error.
//!
//! Determinism: every random draw (row subsample, column subsample, validation split) comes
//! from one generator seeded with the seed and consumed in a fixed order, and every sum is
//! taken in a fixed order by one task, so a seed and a table give the same trees, bit for
//! bit, with any number of threads.
//!
//! The result is a [`wharf_trees::EnsembleSpec`] with LightGBM's scoring rules (`x <= t`,
//! `f64` sums, categories in a split's set go left), the spec the LightGBM importer builds,
//! so a trained model is scored by the same compiled kernel as an imported one.

mod avx512;
mod bins;
mod exp;
mod export;
mod grow;
mod hist;
mod loss;
mod quantize;
mod radix;
mod split;

use rand::seq::index::sample;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use wharf_core::{Result, WharfError};

pub(crate) use loss::Loss;

use bins::Binned;
use grow::{Grower, Grown, Scratch};
use hist::{Columns, Layout};
use split::Rules;

/// How classes are weighted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ClassWeight {
    /// Every row counts once.
    #[default]
    None,
    /// Each class weighs `n / (classes × rows of the class)`, as scikit-learn's `balanced`.
    Balanced,
}

impl std::fmt::Display for ClassWeight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ClassWeight::None => "none",
            ClassWeight::Balanced => "balanced",
        })
    }
}

impl std::str::FromStr for ClassWeight {
    type Err = WharfError;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim() {
            "none" | "None" | "" => Ok(ClassWeight::None),
            "balanced" => Ok(ClassWeight::Balanced),
            other => Err(WharfError::invalid("class_weight", format!("'{other}' is not none or balanced"))),
        }
    }
}

/// What a boosted regressor minimises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum RegressionLoss {
    /// The mean squared error: the mean is what it predicts.
    #[default]
    SquaredError,
    /// The mean absolute error: the median is what it predicts, and wild targets weigh
    /// no more than any other.
    AbsoluteError,
    /// Huber's loss: squared for residuals within `huber_delta`, absolute beyond.
    Huber,
}

impl std::fmt::Display for RegressionLoss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RegressionLoss::SquaredError => "squared_error",
            RegressionLoss::AbsoluteError => "absolute_error",
            RegressionLoss::Huber => "huber",
        })
    }
}

impl std::str::FromStr for RegressionLoss {
    type Err = WharfError;
    /// scikit-learn's names, with `-` or `_`.
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().replace('-', "_").as_str() {
            "squared_error" => Ok(RegressionLoss::SquaredError),
            "absolute_error" => Ok(RegressionLoss::AbsoluteError),
            "huber" => Ok(RegressionLoss::Huber),
            _ => Err(WharfError::invalid(
                "loss",
                format!("'{}' is not squared_error, absolute_error or huber", s.trim()),
            )),
        }
    }
}

/// The booster's hyper-parameters.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Params {
    pub(crate) n_trees: usize,
    pub(crate) learning_rate: f64,
    pub(crate) max_leaves: usize,
    pub(crate) max_depth: Option<usize>,
    pub(crate) min_samples_leaf: usize,
    pub(crate) l2: f64,
    pub(crate) max_bins: usize,
    pub(crate) subsample: f64,
    pub(crate) colsample: f64,
    pub(crate) class_weight: ClassWeight,
    pub(crate) validation_fraction: f64,
    pub(crate) patience: usize,
    pub(crate) seed: u64,
    /// A regressor's loss (a classifier's is its log-loss).
    pub(crate) loss: RegressionLoss,
    pub(crate) huber_delta: f64,
    /// Whether splits are chosen on quantized gradients.
    pub(crate) quantized: bool,
}

impl Params {
    pub(crate) fn check(&self) -> Result<()> {
        let bad = |name: &str, msg: String| Err(WharfError::invalid(name, msg));
        if self.n_trees == 0 {
            return bad("n_trees", "needs at least one tree".into());
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return bad("learning_rate", format!("{} is not a positive number", self.learning_rate));
        }
        if self.max_leaves < 2 {
            return bad("max_leaves", format!("{} is below 2", self.max_leaves));
        }
        if !(2..=255).contains(&self.max_bins) {
            return bad("max_bins", format!("{} is not between 2 and 255", self.max_bins));
        }
        if !(self.l2 >= 0.0 && self.l2.is_finite()) {
            return bad("l2", format!("{} is not a number at least 0", self.l2));
        }
        for (name, v) in [("subsample", self.subsample), ("colsample", self.colsample)] {
            if !(v > 0.0 && v <= 1.0) {
                return bad(name, format!("{v} is not in (0, 1]"));
            }
        }
        if !(0.0..1.0).contains(&self.validation_fraction) {
            return bad("validation_fraction", format!("{} is not in [0, 1)", self.validation_fraction));
        }
        if !(self.huber_delta > 0.0 && self.huber_delta.is_finite()) {
            return bad("huber_delta", format!("{} is not a positive number", self.huber_delta));
        }
        if self.validation_fraction > 0.0 && self.patience == 0 {
            return bad("patience", "must be at least 1 with early stopping".into());
        }
        Ok(())
    }
}

/// The table the booster learns from.
pub(crate) struct Data<'a> {
    /// Column-major values; NaN is missing; a categorical column holds category codes.
    pub(crate) x: &'a [&'a [f64]],
    pub(crate) names: &'a [String],
    pub(crate) categorical: &'a [bool],
    /// Class index (as a number) or target value per row.
    pub(crate) y: &'a [f64],
    pub(crate) loss: Loss,
}

/// One boosting round's figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Iteration {
    /// The round, from 1.
    pub iteration: usize,
    /// The training loss after the round (NaN in the model's own history when nobody
    /// observed the fit: only the kept round's is computed then).
    pub train_loss: f64,
    /// The validation loss after the round, with early stopping.
    pub valid_loss: Option<f64>,
}

/// A fitted booster.
#[derive(Debug)]
pub(crate) struct Fitted {
    pub(crate) spec: wharf_trees::EnsembleSpec,
    /// Total gain of each feature's splits.
    pub(crate) gain: Vec<f64>,
    /// Number of splits on each feature.
    pub(crate) splits: Vec<u64>,
    pub(crate) history: Vec<Iteration>,
    /// Rounds kept (early stopping keeps the best).
    pub(crate) rounds: usize,
    /// Every row's margins (`groups` per row, rows in the table's order) under the kept
    /// trees, when they are the sums the compiled ensemble takes (base score, then the trees
    /// in order, in `f64`) and the trees send the rows where the bins did; `None` when early
    /// stopping dropped trees (their values were taken back out, which need not give the same
    /// bits).
    pub(crate) margins: Option<Vec<f64>>,
}

/// Fits a booster; `progress` hears of each round (with its training loss only when
/// `observed`: nobody listening, the per-round pass over every row is skipped).
pub(crate) fn fit(data: &Data<'_>, p: &Params, observed: bool, progress: &mut dyn FnMut(&Iteration)) -> Result<Fitted> {
    p.check()?;
    let n = data.y.len();
    let width = data.x.len();
    if width == 0 {
        return Err(WharfError::invalid("features", "gradient boosting needs at least one feature"));
    }
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(p.seed);
    let (train, valid) = holdout(n, p.validation_fraction, &mut rng)?;
    let binned = Binned::fit(data.x, data.names, data.categorical, &train, p.max_bins)?;
    let valid_columns = Binned::apply(&binned.mappers, data.x, &valid);
    let layout = Layout::new(binned.mappers.iter().map(|m| m.value_bins() + 1));

    let weights = class_weights(data, p.class_weight);
    let pick = |rows: &[u32], v: &[f64]| rows.iter().map(|r| v[*r as usize]).collect::<Vec<f64>>();
    let (y, w) = (pick(&train, data.y), pick(&train, &weights));
    let (yv, wv) = (pick(&valid, data.y), pick(&valid, &weights));
    let groups = data.loss.groups();
    let base = data.loss.init(&y, &w);
    let nt = train.len();
    let mut f: Vec<f64> = (0..nt).flat_map(|_| base.iter().copied()).collect();
    let mut fv: Vec<f64> = (0..valid.len()).flat_map(|_| base.iter().copied()).collect();
    let mut g = vec![0.0f32; nt * groups];
    let mut h = vec![0.0f32; nt * groups];

    let bins = Columns::new(&binned.columns, &layout)
        .ok_or_else(|| WharfError::Training("the binned table does not match its bins (a bug)".into()))?;
    let grower = Grower {
        columns: &binned.columns,
        bins,
        mappers: &binned.mappers,
        layout: &layout,
        rules: Rules::new(p.l2, p.min_samples_leaf.max(1) as u32),
        max_leaves: p.max_leaves,
        max_depth: p.max_depth,
        learning_rate: p.learning_rate,
    };
    let mut scratch = Scratch::default();
    let noise = p.quantized.then(|| quantize::Noise::new(&mut rng));
    let mut trees: Vec<Grown> = Vec::new();
    let mut history = Vec::new();
    let (mut best_loss, mut best_round) = (f64::INFINITY, 0usize);
    let n_cols = ((p.colsample * width as f64).round() as usize).clamp(1, width);
    let n_rows = ((p.subsample * nt as f64).round() as usize).clamp(1, nt);
    for round in 0..p.n_trees {
        data.loss.gradients(&y, &w, &f, &mut g, &mut h);
        let rows: Vec<u32> = if n_rows < nt {
            let mut r: Vec<u32> = sample(&mut rng, nt, n_rows).into_iter().map(|i| i as u32).collect();
            r.sort_unstable();
            r
        } else {
            (0..nt as u32).collect()
        };
        let mut active = vec![n_cols == width; width];
        if n_cols < width {
            for c in sample(&mut rng, width, n_cols) {
                active[c] = true;
            }
        }
        for k in 0..groups {
            let (gk, hk) = (&g[k * nt..(k + 1) * nt], &h[k * nt..(k + 1) * nt]);
            // Each tree's draws start where the last one's ended.
            let quantized = noise.as_ref().map(|n| (n, (round * groups + k) * nt));
            let (mut tree, mut leaves) = grower.grow(rows.clone(), gk, hk, &active, quantized, &mut scratch);
            if data.loss.renews_leaves() {
                // Regression only, so one group: row `r`'s margin is `f[r]`.
                leaves.renew(&mut tree, |rows| data.loss.leaf_value(&y, &w, &f, rows) * p.learning_rate);
            }
            if n_rows < nt {
                for r in 0..nt {
                    f[r * groups + k] += tree.predict(&binned.columns, r);
                }
            } else {
                for (value, range) in &leaves.ranges {
                    for r in &leaves.rows[range.clone()] {
                        f[*r as usize * groups + k] += value;
                    }
                }
            }
            for r in 0..valid.len() {
                fv[r * groups + k] += tree.predict(&valid_columns, r);
            }
            trees.push(tree);
        }
        let it = Iteration {
            iteration: round + 1,
            // Unobserved, only the kept round's loss is needed: computed after the loop.
            train_loss: if observed { data.loss.value(&y, &w, &f) } else { f64::NAN },
            valid_loss: (!valid.is_empty()).then(|| data.loss.value(&yv, &wv, &fv)),
        };
        progress(&it);
        history.push(it);
        if let Some(v) = it.valid_loss {
            if round == 0 || v < best_loss - 1e-12 * best_loss.abs().max(1.0) {
                (best_loss, best_round) = (v, round);
            } else if round - best_round >= p.patience {
                break;
            }
        } else {
            best_round = round;
        }
    }
    let rounds = best_round + 1;
    if !observed {
        // The rounds after the best one are dropped: take their trees out of the scores
        // before measuring the kept model's training loss.
        for (i, tree) in trees.iter().enumerate().skip(rounds * groups) {
            for r in 0..nt {
                f[r * groups + i % groups] -= tree.predict(&binned.columns, r);
            }
        }
        if let Some(kept) = history.get_mut(best_round) {
            kept.train_loss = data.loss.value(&y, &w, &f);
        }
    }
    let margins = (trees.len() == rounds * groups).then(|| {
        let mut all = vec![0.0; n * groups];
        for (rows, m) in [(&train, &f), (&valid, &fv)] {
            for (i, r) in rows.iter().enumerate() {
                let r = *r as usize;
                all[r * groups..(r + 1) * groups].copy_from_slice(&m[i * groups..(i + 1) * groups]);
            }
        }
        all
    });
    trees.truncate(rounds * groups);
    let (spec, gain, splits) = export::spec(&trees, &binned.mappers, groups, base, data.loss, width);
    Ok(Fitted { spec, gain, splits, history, rounds, margins })
}

/// The training and validation rows, each in increasing order.
fn holdout(n: usize, fraction: f64, rng: &mut Xoshiro256PlusPlus) -> Result<(Vec<u32>, Vec<u32>)> {
    if fraction <= 0.0 {
        return Ok(((0..n as u32).collect(), Vec::new()));
    }
    let n_valid = ((fraction * n as f64).round() as usize).max(1);
    if n_valid + 2 > n {
        return Err(WharfError::invalid(
            "validation_fraction",
            format!("{fraction} of {n} rows leaves too few to train on"),
        ));
    }
    let mut is_valid = vec![false; n];
    for i in sample(rng, n, n_valid) {
        is_valid[i] = true;
    }
    let (mut train, mut valid) = (Vec::new(), Vec::new());
    for (i, v) in is_valid.iter().enumerate() {
        if *v {
            valid.push(i as u32)
        } else {
            train.push(i as u32)
        }
    }
    Ok((train, valid))
}

fn class_weights(data: &Data<'_>, weight: ClassWeight) -> Vec<f64> {
    let n = data.y.len();
    let classes = match (weight, data.loss) {
        (ClassWeight::Balanced, Loss::Binary) => 2,
        (ClassWeight::Balanced, Loss::Softmax(k)) => k,
        _ => return vec![1.0; n],
    };
    let mut counts = vec![0usize; classes];
    for y in data.y {
        counts[*y as usize] += 1;
    }
    let per_class: Vec<f64> =
        counts.iter().map(|c| if *c == 0 { 0.0 } else { n as f64 / (classes * c) as f64 }).collect();
    data.y.iter().map(|y| per_class[*y as usize]).collect()
}

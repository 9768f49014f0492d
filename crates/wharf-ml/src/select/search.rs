//! Hyper-parameter search: grid, seeded random draws, and successive halving, each trial
//! measured by cross-validation and run in parallel on the machine's cores.
//!
//! Everything that can be wrong with a search (the metric, the space, the folds, a class
//! missing from a fold) is checked before the first trial trains. A trial that fails while
//! training is recorded with its error and the search goes on.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;
use serde::Serialize;
use wharf_core::{Result, Task, WharfError};

use super::cv::{fit_folds, plan, summarise, CvReport};
use super::{Folds, Metric, ParamSpace, Params};
use crate::train::encode_classes;
use crate::{Dataset, Trainer};

/// How candidates are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
#[non_exhaustive]
pub enum Strategy {
    /// Every combination of the listed values.
    Grid,
    /// This many candidates drawn with the search's seed.
    Random {
        /// Number of candidates.
        trials: usize,
    },
    /// Successive halving: this many drawn candidates are cross-validated on a small
    /// stratified subset of the rows; the best `1/factor` go on to a `factor` times larger
    /// subset, until the survivors are measured on every row. Most candidates cost a
    /// fraction of a full trial, so large searches become affordable.
    Halving {
        /// Number of candidates in the first round.
        trials: usize,
        /// How much smaller each round's field and larger its subset (3, as scikit-learn).
        factor: usize,
    },
}

impl std::str::FromStr for Strategy {
    type Err = WharfError;
    /// `grid`, `random` or `halving` (with 10 trials and factor 3; set `trials` after).
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "grid" => Ok(Strategy::Grid),
            "random" => Ok(Strategy::Random { trials: 10 }),
            "halving" => Ok(Strategy::Halving { trials: 10, factor: 3 }),
            other => Err(WharfError::invalid("search", format!("unknown search '{other}' (grid, random, halving)"))),
        }
    }
}

/// What a search explores, how it measures, and the seed of every draw.
#[derive(Debug, Clone)]
pub struct SearchOptions {
    /// How candidates are chosen.
    pub strategy: Strategy,
    /// The folds each trial is cross-validated on.
    pub folds: Folds,
    /// The metric candidates are ranked by (its mean over the folds).
    pub metric: String,
    /// Seed of the random draws and of halving's subsets.
    pub seed: u64,
}

/// How a trial ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "status")]
#[non_exhaustive]
pub enum Outcome {
    /// Cross-validated: its metrics, and the mean of the ranking metric.
    Scored {
        /// The cross-validation.
        cv: CvReport,
        /// Mean of the ranking metric over the folds.
        score: f64,
    },
    /// Training or scoring failed.
    Failed {
        /// Why.
        error: String,
    },
}

/// One candidate measured once (halving measures a survivor once per round).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trial {
    /// Position in the search, from 0, in the order trials were planned.
    pub number: usize,
    /// The candidate.
    pub params: Params,
    /// The halving round (0 for grid and random).
    pub round: usize,
    /// Rows cross-validated on.
    pub rows: usize,
    /// How it ended.
    pub outcome: Outcome,
}

impl Trial {
    /// The ranking metric's mean, when the trial was scored.
    pub fn score(&self) -> Option<f64> {
        match &self.outcome {
            Outcome::Scored { score, .. } => Some(*score),
            _ => None,
        }
    }
}

/// Every trial and which one won.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchReport {
    /// The ranking metric.
    pub metric: String,
    /// Whether larger is better for it.
    pub greater_is_better: bool,
    /// Every trial, in planned order.
    pub trials: Vec<Trial>,
    /// Index in `trials` of the winner: the best score of the last round, the earliest
    /// trial on a tie.
    pub best: usize,
}

impl SearchReport {
    /// The winning trial.
    pub fn best(&self) -> &Trial {
        &self.trials[self.best]
    }

    /// Every trial, ranked: later halving rounds first (their candidates survived the
    /// earlier ones and were measured on more rows), then by score, best first; failed
    /// trials last within their round.
    pub fn leaderboard(&self) -> Vec<&Trial> {
        let mut board: Vec<&Trial> = self.trials.iter().collect();
        let key = |t: &Trial| t.score().filter(|s| !s.is_nan()).map(|s| if self.greater_is_better { s } else { -s });
        board.sort_by(|a, b| {
            b.round.cmp(&a.round).then_with(|| match (key(a), key(b)) {
                (Some(x), Some(y)) => y.total_cmp(&x).then(a.number.cmp(&b.number)),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => a.number.cmp(&b.number),
            })
        });
        board
    }
}

/// Searches `space` for the best settings of `trainer` on `data`. `on_trial` hears each
/// trial as it ends (from whichever thread ran it), for progress and tracking.
pub fn search(
    trainer: &Trainer,
    data: &Dataset,
    space: &ParamSpace,
    options: &SearchOptions,
    on_trial: &(dyn Fn(&Trial) + Sync),
) -> Result<SearchReport> {
    // Everything is checked before the first trial trains.
    let task = trainer.algorithm().task();
    let n_classes = match (task, &data.target) {
        (Task::Classification, Some((name, column))) => encode_classes(name, column)?.0.len(),
        (Task::Classification, None) => {
            return Err(WharfError::invalid(&data.name, "a classifier needs a target column"))
        }
        _ => 0,
    };
    let metric = Metric::parse(&options.metric, task, n_classes)?;
    space.check(trainer)?;
    let candidates = match options.strategy {
        Strategy::Grid => space.grid()?,
        Strategy::Random { trials } | Strategy::Halving { trials, .. } => {
            if trials == 0 {
                return Err(WharfError::invalid("trials", "a search needs at least one trial"));
            }
            space.sample(trials, options.seed)?
        }
    };
    let trainers: Vec<Trainer> = candidates.iter().map(|p| trainer.clone().with_params(p)).collect::<Result<_>>()?;
    let rounds = match options.strategy {
        Strategy::Halving { factor, .. } => halving_rounds(data, &options.folds, n_classes, candidates.len(), factor)?,
        _ => vec![data.n_rows()],
    };
    let order = stratified_order(data, options.seed, n_classes > 0);
    let mut subsets = Vec::with_capacity(rounds.len());
    for &rows in &rounds {
        let mut take: Vec<usize> = order[..rows].to_vec();
        take.sort_unstable();
        let subset = if rows == data.n_rows() { data.clone() } else { data.take(&take, "subset") };
        let splits = plan(trainer, &subset, &options.folds)?;
        subsets.push((subset, splits));
    }

    let mut trials: Vec<Trial> = Vec::new();
    let mut alive: Vec<usize> = (0..candidates.len()).collect();
    for (round, (subset, splits)) in subsets.iter().enumerate() {
        let keep = match options.strategy {
            Strategy::Halving { factor, .. } if round > 0 => alive.len().div_ceil(factor.max(2)),
            _ => alive.len(),
        };
        if round > 0 {
            alive = ranked(&trials, &metric, round - 1).into_iter().take(keep).collect();
            alive.sort_unstable();
        }
        let first = trials.len();
        let planned: Vec<(usize, usize)> = alive.iter().enumerate().map(|(i, &c)| (first + i, c)).collect();
        let mut done: Vec<Trial> = planned
            .par_iter()
            .map(|&(number, c)| {
                let outcome = match fit_folds(&trainers[c], subset, splits) {
                    Ok(fitted) => {
                        let cv = summarise(fitted.into_iter().map(|(_, m)| m).collect());
                        Outcome::Scored { score: metric.of(&cv.mean), cv }
                    }
                    Err(e) => Outcome::Failed { error: e.to_string() },
                };
                let trial = Trial { number, params: candidates[c].clone(), round, rows: subset.n_rows(), outcome };
                on_trial(&trial);
                trial
            })
            .collect();
        done.sort_by_key(|t| t.number);
        trials.extend(done);
    }
    // Candidate indices of the last round ranked; the winner is the first scored one.
    let last = subsets.len() - 1;
    let first_of_last = trials.iter().position(|t| t.round == last).unwrap_or(0);
    let best = ranked(&trials, &metric, last)
        .first()
        .and_then(|&c| trials[first_of_last..].iter().position(|t| t.params == candidates[c]))
        .map(|i| first_of_last + i)
        .filter(|&i| trials[i].score().is_some_and(|s| !s.is_nan()));
    let Some(best) = best else {
        let why = trials
            .iter()
            .find_map(|t| match &t.outcome {
                Outcome::Failed { error } => Some(error.clone()),
                _ => None,
            })
            .unwrap_or_else(|| format!("no trial has a {metric} score"));
        return Err(WharfError::Training(format!("every trial failed; the first: {why}")));
    };
    Ok(SearchReport { metric: metric.name().to_string(), greater_is_better: metric.greater_is_better(), trials, best })
}

/// The candidates (by index into the planned candidates) of `round`'s scored trials, best
/// first; failed and NaN trials are left out.
fn ranked(trials: &[Trial], metric: &Metric, round: usize) -> Vec<usize> {
    let mut scored: Vec<(f64, usize, &Params)> = trials
        .iter()
        .filter(|t| t.round == round)
        .filter_map(|t| t.score().filter(|s| !s.is_nan()).map(|s| (metric.oriented(s), t.number, &t.params)))
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    // Map back to candidate indices through the first round, which has every candidate.
    let first: Vec<&Params> = trials.iter().filter(|t| t.round == 0).map(|t| &t.params).collect();
    scored.into_iter().filter_map(|(_, _, p)| first.iter().position(|q| *q == p)).collect()
}

/// The rows of each halving round: the last is the whole table, each earlier one `factor`
/// times smaller, and no round smaller than what its folds need (ten rows per fold, and per
/// class and fold for a classifier). A field too small to halve runs one round.
fn halving_rounds(
    data: &Dataset,
    folds: &Folds,
    n_classes: usize,
    candidates: usize,
    factor: usize,
) -> Result<Vec<usize>> {
    if factor < 2 {
        return Err(WharfError::invalid("factor", format!("halving needs a factor of at least 2, got {factor}")));
    }
    let n = data.n_rows();
    let min_rows = (folds.k * 10).max(folds.k * 2 * n_classes.max(1));
    let mut rounds = vec![n];
    let mut field = candidates;
    while field >= factor {
        let smaller = rounds[0] / factor;
        if smaller < min_rows {
            break;
        }
        rounds.insert(0, smaller);
        field = field.div_ceil(factor);
    }
    Ok(rounds)
}

/// A seeded order of the rows whose every prefix has about the class proportions of the
/// whole table (each class's rows shuffled and spread evenly along the order), so halving's
/// small subsets still hold every class.
fn stratified_order(data: &Dataset, seed: u64, stratify: bool) -> Vec<usize> {
    let n = data.n_rows();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed ^ 0x5eed_5eed);
    let labels: Vec<String> = match &data.target {
        Some((_, column)) if stratify => (0..n).map(|i| column.text_at(i)).collect(),
        _ => vec![String::new(); n],
    };
    let mut by_class: std::collections::BTreeMap<&str, Vec<usize>> = Default::default();
    for (i, l) in labels.iter().enumerate() {
        by_class.entry(l.as_str()).or_default().push(i);
    }
    let mut keyed: Vec<(f64, usize)> = Vec::with_capacity(n);
    for rows in by_class.values_mut() {
        rows.shuffle(&mut rng);
        let m = rows.len() as f64;
        let offset: f64 = rng.gen();
        keyed.extend(rows.iter().enumerate().map(|(j, &i)| ((j as f64 + offset) / m, i)));
    }
    keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    keyed.into_iter().map(|(_, i)| i).collect()
}

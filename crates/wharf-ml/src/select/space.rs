//! A hyper-parameter space: each parameter's candidate values, from a trainer's declared
//! space ([`Trainer::param_space`](crate::Trainer::param_space)) or a TOML file.
//!
//! ```toml
//! l2 = [0.01, 0.1, 1.0]                            # a list: grid and random draw from it
//! max_depth = [4, 8, "none"]
//! min_samples_leaf = { low = 1, high = 20 }        # whole numbers, random and halving only
//! l2 = { low = 0.0001, high = 100.0, log = true }  # a log-uniform range
//! ```

use std::collections::{BTreeMap, BTreeSet};

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::Serialize;
use wharf_core::{Result, WharfError};

use crate::Trainer;

/// One trial's parameter values, by name, as text (how trackers log them).
pub type Params = BTreeMap<String, String>;

/// The candidate values of one parameter.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub enum Domain {
    /// These values.
    Values(Vec<String>),
    /// Whole numbers in `low..=high`, drawn uniformly.
    Int {
        /// Smallest value.
        low: i64,
        /// Largest value.
        high: i64,
    },
    /// Numbers in `[low, high]`, drawn uniformly, or log-uniformly when `log`.
    Float {
        /// Smallest value.
        low: f64,
        /// Largest value.
        high: f64,
        /// Draw the logarithm uniformly (for penalties spanning powers of ten).
        log: bool,
    },
}

/// Parameters and their domains.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct ParamSpace {
    params: BTreeMap<String, Domain>,
}

impl ParamSpace {
    /// An empty space.
    pub fn new() -> Self {
        ParamSpace::default()
    }

    /// Adds (or replaces) parameter `name`.
    pub fn insert(&mut self, name: impl Into<String>, domain: Domain) -> &mut Self {
        self.params.insert(name.into(), domain);
        self
    }

    /// The parameters and their domains.
    pub fn params(&self) -> &BTreeMap<String, Domain> {
        &self.params
    }

    /// Reads a space from TOML: one key per parameter, whose value is a list of candidates
    /// or a `{ low, high, log }` range.
    pub fn from_toml(text: &str) -> Result<ParamSpace> {
        let table: toml::Table =
            text.parse().map_err(|e: toml::de::Error| WharfError::invalid("space", format!("TOML: {e}")))?;
        let mut space = ParamSpace::new();
        for (name, value) in table {
            let at = format!("space.{name}");
            let domain = match value {
                toml::Value::Array(items) => Domain::Values(
                    items
                        .iter()
                        .map(|v| match v {
                            toml::Value::String(s) => Ok(s.clone()),
                            toml::Value::Integer(i) => Ok(i.to_string()),
                            toml::Value::Float(f) => Ok(f.to_string()),
                            toml::Value::Boolean(b) => Ok(b.to_string()),
                            other => {
                                Err(WharfError::invalid(&at, format!("a candidate cannot be a {}", other.type_str())))
                            }
                        })
                        .collect::<Result<_>>()?,
                ),
                toml::Value::Table(range) => range_domain(&at, &range)?,
                other => {
                    return Err(WharfError::invalid(
                        &at,
                        format!("expected a list of values or {{ low, high }}, found a {}", other.type_str()),
                    ))
                }
            };
            space.insert(name, domain);
        }
        Ok(space)
    }

    /// Checks the space against `trainer` before anything is trained: it must name at least
    /// one parameter, every parameter must be one the trainer takes, every list must be
    /// non-empty and every range ordered, every listed value must parse, and there must be
    /// more than one candidate (a single one leaves nothing to choose).
    pub fn check(&self, trainer: &Trainer) -> Result<()> {
        if self.params.is_empty() {
            return Err(WharfError::invalid(
                "space",
                format!("the space is empty: name at least one of {}", names(trainer)),
            ));
        }
        let mut several = false;
        for (name, domain) in &self.params {
            let at = format!("space.{name}");
            match domain {
                Domain::Values(values) => {
                    if values.is_empty() {
                        return Err(WharfError::invalid(at, "no candidate values"));
                    }
                    for v in values {
                        trainer.clone().set_param(name, v)?;
                    }
                    several |= values.iter().collect::<BTreeSet<_>>().len() > 1;
                }
                Domain::Int { low, high } => {
                    if low > high {
                        return Err(WharfError::invalid(at, format!("low {low} is above high {high}")));
                    }
                    trainer.clone().set_param(name, &low.to_string())?;
                    several |= low < high;
                }
                Domain::Float { low, high, log } => {
                    if !(low.is_finite() && high.is_finite()) || low > high {
                        return Err(WharfError::invalid(at, format!("[{low}, {high}] is not a range")));
                    }
                    if *log && *low <= 0.0 {
                        return Err(WharfError::invalid(at, "a log range must be above 0"));
                    }
                    trainer.clone().set_param(name, &low.to_string())?;
                    several |= low < high;
                }
            }
        }
        if !several {
            return Err(WharfError::invalid("space", "the space has a single candidate: there is nothing to search"));
        }
        Ok(())
    }

    /// Every combination of the listed values, in a fixed order. A range has no grid: it is
    /// an error naming the parameter.
    pub fn grid(&self) -> Result<Vec<Params>> {
        let mut out: Vec<Params> = vec![Params::new()];
        for (name, domain) in &self.params {
            let Domain::Values(values) = domain else {
                return Err(WharfError::invalid(
                    format!("space.{name}"),
                    "a grid search needs a list of values, not a range (use --search random or halving)",
                ));
            };
            let mut values = values.clone();
            values.dedup();
            out = out
                .into_iter()
                .flat_map(|p| {
                    values.iter().map(move |v| {
                        let mut p = p.clone();
                        p.insert(name.clone(), v.clone());
                        p
                    })
                })
                .collect();
        }
        Ok(out)
    }

    /// `n` distinct candidates drawn with `seed`. A space of lists only that has no more
    /// than `n` combinations gives all of them (in a seeded order), as a draw without
    /// replacement.
    pub fn sample(&self, n: usize, seed: u64) -> Result<Vec<Params>> {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        if self.params.values().all(|d| matches!(d, Domain::Values(_))) {
            let mut grid = self.grid()?;
            grid.shuffle(&mut rng);
            grid.truncate(n);
            return Ok(grid);
        }
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        // Ranges make repeats rare; the cap only stops a narrow space from looping.
        for _ in 0..n.saturating_mul(20) {
            if out.len() == n {
                break;
            }
            let p: Params = self.params.iter().map(|(name, d)| (name.clone(), draw(d, &mut rng))).collect();
            if seen.insert(p.clone()) {
                out.push(p);
            }
        }
        Ok(out)
    }
}

fn draw(domain: &Domain, rng: &mut Xoshiro256PlusPlus) -> String {
    match domain {
        Domain::Values(values) => values.choose(rng).cloned().unwrap_or_default(),
        Domain::Int { low, high } => rng.gen_range(*low..=*high).to_string(),
        Domain::Float { low, high, log: false } => format_float(rng.gen_range(*low..=*high)),
        Domain::Float { low, high, log: true } => format_float(rng.gen_range(low.ln()..=high.ln()).exp()),
    }
}

/// Four significant digits: enough to tell candidates apart, short enough to read in a
/// leaderboard and to log as a param.
fn format_float(x: f64) -> String {
    let s = format!("{x:.3e}");
    s.parse::<f64>().map(|v| v.to_string()).unwrap_or(s)
}

fn range_domain(at: &str, range: &toml::Table) -> Result<Domain> {
    for key in range.keys() {
        if !["low", "high", "log"].contains(&key.as_str()) {
            return Err(WharfError::invalid(format!("{at}.{key}"), "unknown key (a range has low, high, log)"));
        }
    }
    let get = |k: &str| range.get(k).ok_or_else(|| WharfError::invalid(format!("{at}.{k}"), "missing"));
    let log = match range.get("log") {
        None => false,
        Some(toml::Value::Boolean(b)) => *b,
        Some(_) => return Err(WharfError::invalid(format!("{at}.log"), "expected true or false")),
    };
    Ok(match (get("low")?, get("high")?) {
        (toml::Value::Integer(low), toml::Value::Integer(high)) if !log => Domain::Int { low: *low, high: *high },
        (low, high) => {
            let num = |v: &toml::Value, k: &str| match v {
                toml::Value::Integer(i) => Ok(*i as f64),
                toml::Value::Float(f) => Ok(*f),
                _ => Err(WharfError::invalid(format!("{at}.{k}"), "expected a number")),
            };
            Domain::Float { low: num(low, "low")?, high: num(high, "high")?, log }
        }
    })
}

fn names(trainer: &Trainer) -> String {
    let names = trainer.param_names();
    if names.is_empty() {
        format!("(none: {} has no hyper-parameters to search)", trainer.algorithm().as_str())
    } else {
        names.join(", ")
    }
}

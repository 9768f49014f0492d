//! Binning: every feature's values become `u8` bin indices once, before the first tree, so
//! histograms are sums over at most 256 slots and the training copy of the data is one byte
//! per cell (an eighth of the `f64` input).
//!
//! A numeric feature's bins are quantiles of its values (at most `max_bins`), cut at the
//! midpoint between two consecutive distinct values. Bin `b` holds the values `x` with
//! `edges[b-1] < x <= edges[b]`, so "bin `<= b`" and "`x <= edges[b]`" are the same test:
//! the threshold a split stores is an edge, and the compiled ensemble (LightGBM's `<=`
//! semantics) sends every training row where the booster did. The last bin of every feature
//! holds its missing values (NaN).
//!
//! A categorical feature's values are integer codes; each code seen in training gets a bin,
//! most frequent first. A feature with more codes than `max_bins - 1` keeps the most frequent
//! ones and pools the rest with missing values and negative codes into the last bin, which a
//! categorical split always sends right: the side the compiled ensemble sends a category
//! outside its set to.

use wharf_core::{Result, WharfError};

/// Largest category code a categorical feature may use: a split stores its left set as a
/// bitset over codes, so codes must stay small.
pub(crate) const MAX_CATEGORY_CODE: u32 = 1 << 20;

/// Rows the quantile edges are computed from; bigger tables are sampled evenly.
const EDGE_SAMPLE: usize = 200_000;

/// How one feature maps values to bins.
#[derive(Debug, Clone)]
pub(crate) enum Mapper {
    /// Upper edges of all but the last value bin (`edges.len() + 1` value bins).
    Numeric { edges: Vec<f64> },
    /// The category code of each value bin, and `(code, bin)` sorted by code for lookups.
    Categorical { codes: Vec<u32>, by_code: Vec<(u32, u8)> },
}

impl Mapper {
    /// Value bins, not counting the missing bin.
    pub(crate) fn value_bins(&self) -> usize {
        match self {
            Mapper::Numeric { edges } => edges.len() + 1,
            Mapper::Categorical { codes, .. } => codes.len(),
        }
    }

    /// The missing bin: the last one.
    pub(crate) fn missing_bin(&self) -> usize {
        self.value_bins()
    }

    pub(crate) fn bin(&self, x: f64) -> u8 {
        let b = match self {
            Mapper::Numeric { edges } => {
                if x.is_nan() {
                    edges.len() + 1
                } else {
                    edges.partition_point(|e| *e < as_scored(x))
                }
            }
            Mapper::Categorical { codes, by_code } => match category(x) {
                Some(c) => {
                    by_code.binary_search_by_key(&c, |(k, _)| *k).map(|i| by_code[i].1 as usize).unwrap_or(codes.len())
                }
                None => codes.len(),
            },
        };
        b as u8
    }

    /// The threshold stored for a numeric split that sends bins `<= bin` left.
    pub(crate) fn threshold(&self, bin: usize) -> f64 {
        match self {
            Mapper::Numeric { edges } => edges.get(bin).copied().unwrap_or(f64::INFINITY),
            Mapper::Categorical { .. } => f64::NAN,
        }
    }
}

/// The category a value names, as the compiled ensemble reads it (LightGBM's rule: the
/// integer part of a value above -1; NaN and anything else name none).
pub(crate) fn category(x: f64) -> Option<u32> {
    (x > -1.0 && x < 2_147_483_648.0).then_some(x as u32)
}

/// A value as the compiled ensemble reads it: LightGBM's rules read a value within `1e-35`
/// of zero as zero, so the bins do too, and a threshold never falls between the two.
fn as_scored(x: f64) -> f64 {
    if x.abs() <= 1e-35f32 as f64 {
        0.0
    } else {
        x
    }
}

/// The binned training data: one column of bins per feature.
#[derive(Debug)]
pub(crate) struct Binned {
    pub(crate) columns: Vec<Vec<u8>>,
    pub(crate) mappers: Vec<Mapper>,
}

impl Binned {
    /// Learns each feature's bins from `rows` of the column-major `x` and bins those rows.
    pub(crate) fn fit(
        x: &[&[f64]],
        names: &[String],
        categorical: &[bool],
        rows: &[u32],
        max_bins: usize,
    ) -> Result<Binned> {
        use rayon::prelude::*;
        let mappers = x
            .par_iter()
            .enumerate()
            .map(|(f, column)| {
                if categorical[f] {
                    categorical_mapper(column, rows, max_bins, &names[f])
                } else {
                    Ok(numeric_mapper(column, rows, max_bins))
                }
            })
            .collect::<Result<Vec<Mapper>>>()?;
        let columns = Self::apply(&mappers, x, rows);
        Ok(Binned { columns, mappers })
    }

    /// Bins `rows` of `x` with learnt mappers.
    pub(crate) fn apply(mappers: &[Mapper], x: &[&[f64]], rows: &[u32]) -> Vec<Vec<u8>> {
        use rayon::prelude::*;
        mappers
            .par_iter()
            .zip(x.par_iter())
            .map(|(m, column)| rows.iter().map(|r| m.bin(column[*r as usize])).collect())
            .collect()
    }
}

fn sample(rows: &[u32]) -> impl Iterator<Item = u32> + '_ {
    let step = rows.len().div_ceil(EDGE_SAMPLE).max(1);
    rows.iter().step_by(step).copied()
}

fn numeric_mapper(column: &[f64], rows: &[u32], max_bins: usize) -> Mapper {
    let mut values: Vec<f64> = sample(rows).map(|r| as_scored(column[r as usize])).filter(|v| !v.is_nan()).collect();
    super::radix::sort(&mut values);
    // Distinct values and how often each occurs.
    let mut distinct: Vec<(f64, usize)> = Vec::new();
    for v in values.iter() {
        match distinct.last_mut() {
            Some((last, n)) if *last == *v => *n += 1,
            _ => distinct.push((*v, 1)),
        }
    }
    let mid = |a: f64, b: f64| {
        let m = a + (b - a) / 2.0;
        if m.is_finite() && m >= a && m < b {
            m
        } else {
            a
        }
    };
    let mut edges = Vec::new();
    if distinct.len() <= max_bins {
        for w in distinct.windows(2) {
            edges.push(mid(w[0].0, w[1].0));
        }
    } else {
        // Cut after the distinct value where the running count passes each quantile.
        let total = values.len();
        let mut seen = 0usize;
        let mut next = 1usize;
        for (i, (v, n)) in distinct.iter().enumerate() {
            seen += n;
            if i + 1 == distinct.len() || edges.len() + 1 >= max_bins {
                break;
            }
            if seen * max_bins >= next * total {
                edges.push(mid(*v, distinct[i + 1].0));
                while seen * max_bins >= next * total {
                    next += 1;
                }
            }
        }
    }
    Mapper::Numeric { edges }
}

fn categorical_mapper(column: &[f64], rows: &[u32], max_bins: usize, name: &str) -> Result<Mapper> {
    let mut counts: std::collections::BTreeMap<u32, usize> = std::collections::BTreeMap::new();
    for r in rows {
        let x = column[*r as usize];
        if let Some(c) = category(x) {
            if c >= MAX_CATEGORY_CODE {
                return Err(WharfError::invalid(
                    name,
                    format!("category code {x} is too large for a categorical feature (codes must be below {MAX_CATEGORY_CODE})"),
                ));
            }
            *counts.entry(c).or_default() += 1;
        }
    }
    let mut codes: Vec<(u32, usize)> = counts.into_iter().collect();
    // Most frequent first; equal counts by code, so the order is the same on every run.
    codes.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    codes.truncate(max_bins.saturating_sub(1).max(1));
    let codes: Vec<u32> = codes.into_iter().map(|(c, _)| c).collect();
    let mut by_code: Vec<(u32, u8)> = codes.iter().enumerate().map(|(b, c)| (*c, b as u8)).collect();
    by_code.sort_unstable();
    Ok(Mapper::Categorical { codes, by_code })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bin_and_its_threshold_agree() {
        let column: Vec<f64> = (0..1000).map(|i| ((i * 37) % 101) as f64 / 7.0).collect();
        let rows: Vec<u32> = (0..1000).collect();
        for max_bins in [2, 16, 255] {
            let m = numeric_mapper(&column, &rows, max_bins);
            assert!(m.value_bins() <= max_bins);
            for x in &column {
                let b = m.bin(*x) as usize;
                for t in 0..m.value_bins() - 1 {
                    assert_eq!(b <= t, *x <= m.threshold(t), "x {x} bin {b} edge {t}");
                }
            }
        }
    }

    #[test]
    fn missing_values_get_the_last_bin() {
        let m = numeric_mapper(&[1.0, f64::NAN, 2.0], &[0, 1, 2], 255);
        assert_eq!(m.bin(f64::NAN) as usize, m.missing_bin());
        assert_eq!(m.value_bins(), 2);
    }
}

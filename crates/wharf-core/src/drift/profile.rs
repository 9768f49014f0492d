//! The reference profile: what the training data looked like, kept with the model.
//!
//! Per feature, a few quantile bins (numbers) or the level frequencies (categories), with the
//! missing rate; and the same for the model's own predictions on its training data. It is a
//! few kilobytes, stored as JSON text in the model's tags under [`PROFILE_TAG`]: the tags
//! travel in every artifact format and every registry, so models saved before profiles
//! existed load as they did, and simply have none.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{FeatureKind, Model, Predictions, Records, Result, Signature, Task, WharfError};

/// The model tag that holds the profile's JSON.
pub const PROFILE_TAG: &str = "wharf.reference_profile";
/// Quantile bins per numeric feature: fine enough for a Kolmogorov–Smirnov gap read at 5%
/// steps, coarse enough that a window of a few hundred rows fills every bin.
pub const NUMERIC_BINS: usize = 20;
/// The profile layout this build writes and reads.
const PROFILE_VERSION: u32 = 1;
/// The bin index of a missing value, before it is mapped to the profile's last bin.
pub(crate) const MISSING: u16 = u16::MAX;

/// The training data's profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// Layout version.
    pub version: u32,
    /// Training rows the profile was taken from.
    pub rows: u64,
    /// One per signature feature, in signature order.
    pub features: Vec<Distribution>,
    /// The model's predictions on its training data: its classes, or its regression values.
    /// Absent for clustering.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prediction: Option<Distribution>,
}

/// One variable's distribution over its bins. The last of `expected` is the missing rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Distribution {
    /// The feature's name (`prediction` for the prediction).
    pub name: String,
    /// How values fall into bins.
    pub bins: Bins,
    /// The proportion of training values in each bin, then the missing proportion last.
    pub expected: Vec<f64>,
}

/// How a variable's values are binned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
#[non_exhaustive]
pub enum Bins {
    /// A number: bin `i` holds the values above `edges[i-1]` and at most `edges[i]`; the
    /// last value bin holds everything above the last edge.
    Numeric {
        /// Ascending, distinct cut points (the training quantiles).
        edges: Vec<f64>,
    },
    /// One bin per level (or class), in the signature's order.
    Categorical {
        /// The levels.
        levels: Vec<String>,
    },
}

impl Bins {
    /// Value bins, not counting the missing one.
    pub fn values(&self) -> usize {
        match self {
            Bins::Numeric { edges } => edges.len() + 1,
            Bins::Categorical { levels } => levels.len(),
        }
    }

    /// The bin of a number (for a category: its level index), [`MISSING`] for NaN or a
    /// level index out of range.
    pub(crate) fn bin(&self, x: f64) -> u16 {
        if x.is_nan() {
            return MISSING;
        }
        match self {
            Bins::Numeric { edges } => edges.partition_point(|e| *e < x) as u16,
            Bins::Categorical { levels } => {
                if x >= 0.0 && (x as usize) < levels.len() && x.fract() == 0.0 {
                    x as u16
                } else {
                    MISSING
                }
            }
        }
    }

    /// The bin of a text level.
    fn bin_text(&self, text: &str) -> u16 {
        match self {
            Bins::Categorical { levels } => levels.iter().position(|l| l == text).map_or(MISSING, |i| i as u16),
            Bins::Numeric { .. } => text.parse::<f64>().map_or(MISSING, |x| self.bin(x)),
        }
    }

    /// The bin of a JSON value.
    fn bin_json(&self, value: Option<&Value>) -> u16 {
        match value {
            Some(Value::Number(n)) => n.as_f64().map_or(MISSING, |x| self.bin(x)),
            Some(Value::String(s)) => self.bin_text(s),
            _ => MISSING,
        }
    }
}

impl Distribution {
    /// Bins of `values` (NaN missing), quantile cuts taken from the values themselves.
    fn numeric(name: &str, values: &[f64]) -> Self {
        let mut present: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        let mut edges: Vec<f64> = Vec::new();
        if !present.is_empty() {
            let mut at: Vec<usize> = (1..NUMERIC_BINS).map(|k| (k * (present.len() - 1)) / NUMERIC_BINS).collect();
            at.dedup();
            for edge in nth_values(&mut present, &at) {
                if edges.last().is_none_or(|last| *last < edge) {
                    edges.push(edge);
                }
            }
        }
        let bins = Bins::Numeric { edges };
        let indices: Vec<u16> = values.iter().map(|x| bins.bin(*x)).collect();
        Distribution::counted(name, bins, &indices)
    }

    /// The distribution of already-binned values.
    fn counted(name: &str, bins: Bins, indices: &[u16]) -> Self {
        let mut counts = vec![0u64; bins.values() + 1];
        for i in indices {
            counts[slot(&bins, *i)] += 1;
        }
        Distribution { name: name.to_string(), bins, expected: super::stats::proportions(&counts) }
    }
}

/// The values at the increasing positions `at` of `values` in sorted order, as a full sort
/// would place them, by selection: a training column's 19 cuts cost a few passes over it
/// rather than a sort.
fn nth_values(values: &mut [f64], at: &[usize]) -> Vec<f64> {
    fn select(values: &mut [f64], base: usize, at: &[usize], out: &mut Vec<f64>) {
        let Some(&middle) = at.get(at.len() / 2) else { return };
        let (before, after) = at.split_at(at.len() / 2);
        let (lower, nth, upper) = values.select_nth_unstable_by(middle - base, f64::total_cmp);
        let nth = *nth;
        select(lower, base, before, out);
        out.push(nth);
        select(upper, middle + 1, &after[1..], out);
    }
    let mut out = Vec::with_capacity(at.len());
    select(values, 0, at, &mut out);
    out
}

/// Where bin `i` is counted: its own slot, or the last (missing) one.
pub(crate) fn slot(bins: &Bins, i: u16) -> usize {
    if i == MISSING || usize::from(i) >= bins.values() {
        bins.values()
    } else {
        usize::from(i)
    }
}

impl Profile {
    /// The profile of `records` (the training features, in any shape the signature takes)
    /// and of `predictions`, the model's predictions on them.
    pub fn of(signature: &Signature, records: &Records, predictions: Option<&Predictions>) -> Result<Profile> {
        let rows = records.len();
        let mut features = Vec::with_capacity(signature.features.len());
        for (j, feature) in signature.features.iter().enumerate() {
            let distribution = match &feature.kind {
                FeatureKind::Numeric => Distribution::numeric(&feature.name, &numbers(signature, records, j)?),
                FeatureKind::Categorical { levels } => {
                    let bins = Bins::Categorical { levels: levels.clone() };
                    let indices = column_bins(signature, records, j, &bins)?;
                    Distribution::counted(&feature.name, bins, &indices)
                }
                #[allow(unreachable_patterns)]
                _ => return Err(WharfError::invalid(&feature.name, "no profile for this feature type")),
            };
            features.push(distribution);
        }
        let prediction = match predictions {
            Some(Predictions::Classes { classes, indices }) => {
                let bins = Bins::Categorical { levels: classes.clone() };
                let binned: Vec<u16> = indices.iter().map(|i| u16::try_from(*i).unwrap_or(MISSING)).collect();
                Some(Distribution::counted("prediction", bins, &binned))
            }
            Some(Predictions::Values(values)) if signature.task == Task::Regression => {
                Some(Distribution::numeric("prediction", values))
            }
            _ => None,
        };
        Ok(Profile { version: PROFILE_VERSION, rows: rows as u64, features, prediction })
    }

    /// The profile kept with `model`, if it has one. A profile that does not parse, or does
    /// not fit the model's signature, is an error: it would judge drift wrongly.
    pub fn of_model(model: &Model) -> Result<Option<Profile>> {
        let Some(text) = model.metadata().tags.get(PROFILE_TAG) else { return Ok(None) };
        let profile: Profile = serde_json::from_str(text)
            .map_err(|e| WharfError::invalid(PROFILE_TAG, format!("not a reference profile: {e}")))?;
        profile.check(model.signature())?;
        Ok(Some(profile))
    }

    /// The profile as the compact JSON stored in the tag.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Checks the profile describes `signature`'s features, in order, with their levels.
    fn check(&self, signature: &Signature) -> Result<()> {
        if self.version != PROFILE_VERSION {
            return Err(WharfError::invalid(
                PROFILE_TAG,
                format!("profile version {} (this build reads {PROFILE_VERSION})", self.version),
            ));
        }
        if self.features.len() != signature.features.len() {
            return Err(WharfError::invalid(
                PROFILE_TAG,
                format!("{} features profiled, the signature has {}", self.features.len(), signature.features.len()),
            ));
        }
        for (d, f) in
            self.features.iter().chain(self.prediction.as_ref()).zip(signature.features.iter().map(Some).chain([None]))
        {
            if let Some(f) = f {
                if d.name != f.name {
                    return Err(WharfError::invalid(
                        PROFILE_TAG,
                        format!("profiles '{}' where the signature has '{}'", d.name, f.name),
                    ));
                }
            }
            let sorted = match &d.bins {
                Bins::Numeric { edges } => edges.windows(2).all(|w| w[0] < w[1]) && edges.iter().all(|e| e.is_finite()),
                Bins::Categorical { .. } => true,
            };
            if !sorted || d.expected.len() != d.bins.values() + 1 || d.bins.values() >= usize::from(MISSING) {
                return Err(WharfError::invalid(format!("{PROFILE_TAG}.{}", d.name), "bins and proportions disagree"));
            }
        }
        Ok(())
    }

    /// Each record's bins: one per feature, then the prediction's (when the profile has one
    /// and `predictions` is given), row after row.
    pub fn bin_records(
        &self,
        signature: &Signature,
        records: &Records,
        predictions: Option<&Predictions>,
    ) -> Result<Vec<u16>> {
        let width = self.width();
        let rows = records.len();
        let mut out = vec![MISSING; rows * width];
        for (j, d) in self.features.iter().enumerate() {
            // Straight into the rows' slots: this runs on the request path of `wharf serve`.
            let slots = out.iter_mut().skip(j).step_by(width.max(1));
            put_column_bins(signature, records, j, &d.bins, slots)?;
        }
        if let Some(p) = predictions {
            self.bin_predictions(p, &mut out);
        }
        Ok(out)
    }

    /// Fills the prediction's bin of each row of `binned` (as [`bin_records`](Self::bin_records)
    /// gives them, its prediction slots missing) from `predictions`, one per row in order. A
    /// profile without the prediction leaves `binned` as it is.
    pub fn bin_predictions(&self, predictions: &Predictions, binned: &mut [u16]) {
        let Some(d) = &self.prediction else { return };
        let (width, j) = (self.width(), self.features.len());
        for (i, row) in binned.chunks_exact_mut(width).enumerate() {
            row[j] = match predictions {
                Predictions::Classes { indices, .. } => {
                    indices.get(i).map_or(MISSING, |c| u16::try_from(*c).unwrap_or(MISSING))
                }
                Predictions::Values(v) => v.get(i).map_or(MISSING, |x| d.bins.bin(*x)),
                Predictions::Clusters(_) => MISSING,
            };
        }
    }

    /// Variables per binned row: the features, and the prediction when profiled.
    pub fn width(&self) -> usize {
        self.features.len() + usize::from(self.prediction.is_some())
    }

    /// Every profiled variable, features first.
    pub fn variables(&self) -> impl Iterator<Item = &Distribution> {
        self.features.iter().chain(self.prediction.as_ref())
    }
}

/// `model` with the profile of `records` (its training data, or a sample of it) and of its
/// own predictions on them kept under [`PROFILE_TAG`]: how a trained model, or one imported
/// with a sample of the data it learned from, gets a reference for drift.
pub fn with_profile(model: Model, records: &Records) -> Result<Model> {
    let predictions = model.predict(records)?;
    with_profile_of(model, records, &predictions)
}

/// [`with_profile`] when the model's predictions on `records` are already known (a booster
/// ends its fit with every training row's margins), so they are not computed twice.
pub fn with_profile_of(model: Model, records: &Records, predictions: &Predictions) -> Result<Model> {
    let profile = Profile::of(model.signature(), records, Some(predictions))?;
    Ok(model.with_tag(PROFILE_TAG, profile.to_json()))
}

/// Feature `j`'s values as numbers (NaN when missing or not a number).
fn numbers(signature: &Signature, records: &Records, j: usize) -> Result<Vec<f64>> {
    let name = &signature.features[j].name;
    Ok(match records {
        Records::Matrix(m) => m.column(j).to_vec(),
        Records::Rows(rows) => rows.iter().map(|r| r.get(name).and_then(Value::as_f64).unwrap_or(f64::NAN)).collect(),
        Records::Columns(frame) => match frame.column(name) {
            Some(crate::Column::Numeric(v)) => v.clone(),
            Some(crate::Column::Text(v)) => {
                v.iter().map(|t| t.as_deref().and_then(|t| t.parse().ok()).unwrap_or(f64::NAN)).collect()
            }
            None => return Err(WharfError::invalid(name, "missing column")),
        },
    })
}

/// Feature `j`'s bins under `bins`, from whatever shape the records take.
fn column_bins(signature: &Signature, records: &Records, j: usize, bins: &Bins) -> Result<Vec<u16>> {
    let mut out = vec![MISSING; records.len()];
    put_column_bins(signature, records, j, bins, out.iter_mut())?;
    Ok(out)
}

/// Writes feature `j`'s bins into `slots`, one per record in order.
fn put_column_bins<'a>(
    signature: &Signature,
    records: &Records,
    j: usize,
    bins: &Bins,
    slots: impl Iterator<Item = &'a mut u16>,
) -> Result<()> {
    let name = &signature.features[j].name;
    match records {
        Records::Matrix(m) => slots.zip(m.column(j)).for_each(|(s, x)| *s = bins.bin(*x)),
        Records::Rows(rows) => slots.zip(rows).for_each(|(s, r)| *s = bins.bin_json(r.get(name))),
        Records::Columns(frame) => match frame.column(name) {
            Some(crate::Column::Numeric(v)) => slots.zip(v).for_each(|(s, x)| *s = bins.bin(*x)),
            Some(crate::Column::Text(v)) => {
                slots.zip(v).for_each(|(s, t)| *s = t.as_deref().map_or(MISSING, |t| bins.bin_text(t)))
            }
            None => return Err(WharfError::invalid(name, "missing column")),
        },
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Feature, Records, Row, Signature};

    fn signature(levels: &[&str]) -> Signature {
        Signature {
            features: vec![
                Feature::numeric("x"),
                Feature::categorical("c", levels.iter().map(|l| l.to_string()).collect()),
            ],
            target: None,
            task: Task::Classification,
            classes: vec!["no".into(), "yes".into()],
        }
    }

    #[test]
    fn selected_values_are_those_a_sort_places() {
        let mut state = 12_345u64;
        for n in [1usize, 2, 19, 20, 21, 1_000, 4_321] {
            let values: Vec<f64> = (0..n)
                .map(|_| {
                    state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                    // Few distinct values, signed zeros among them.
                    [(state >> 40) as f64 % 37.0 - 18.0, -0.0, 0.0][(state % 3) as usize]
                })
                .collect();
            let mut sorted = values.clone();
            sorted.sort_by(f64::total_cmp);
            let mut at: Vec<usize> = (1..NUMERIC_BINS).map(|k| (k * (n - 1)) / NUMERIC_BINS).collect();
            at.dedup();
            let want: Vec<u64> = at.iter().map(|a| sorted[*a].to_bits()).collect();
            let got: Vec<u64> = nth_values(&mut values.clone(), &at).iter().map(|v| v.to_bits()).collect();
            assert_eq!(got, want, "{n} values");
        }
    }

    #[test]
    fn named_rows_columns_and_matrices_bin_alike() {
        let sig = signature(&["a", "b"]);
        let named: Vec<Row> = (0..100)
            .map(|i| serde_json::json!({"x": i, "c": if i % 3 == 0 { "a" } else { "b" }}).as_object().cloned().unwrap())
            .collect();
        let profile = Profile::of(&sig, &Records::Rows(named.clone()), None).unwrap();
        let matrix = ndarray::Array2::from_shape_fn((100, 2), |(i, j)| match j {
            0 => i as f64,
            _ => f64::from(u8::from(i % 3 != 0)),
        });
        let a = profile.bin_records(&sig, &Records::Rows(named), None).unwrap();
        let b = profile.bin_records(&sig, &Records::Matrix(matrix.into()), None).unwrap();
        assert_eq!(a, b);
        // An edge value goes to the bin it closes; above the last edge is the last bin.
        if let Bins::Numeric { edges } = &profile.features[0].bins {
            assert_eq!(profile.features[0].bins.bin(edges[0]), 0);
            assert_eq!(profile.features[0].bins.bin(1e9) as usize, edges.len());
        }
    }

    #[test]
    fn a_profile_that_does_not_fit_the_model_is_refused() {
        let sig = signature(&["a", "b"]);
        let rows: Vec<Row> =
            (0..10).map(|i| serde_json::json!({"x": i, "c": "a"}).as_object().cloned().unwrap()).collect();
        let profile = Profile::of(&sig, &Records::Rows(rows), None).unwrap();
        let text = profile.to_json();
        let back: Profile = serde_json::from_str(&text).unwrap();
        assert!(back.check(&sig).is_ok());
        let mut renamed = sig.clone();
        renamed.features[0].name = "y".into();
        assert!(back.check(&renamed).unwrap_err().to_string().contains("profiles 'x' where the signature has 'y'"));
        let mut broken = back.clone();
        broken.features[0].expected.pop();
        assert!(broken.check(&sig).unwrap_err().to_string().contains("bins and proportions disagree"));
    }
}

//! The live side: a rolling window of binned rows, and the drift report against the profile.
//!
//! A row is kept as one small bin index per variable, so a window of 10,000 rows of 20
//! features costs about 400 KB, and counts are updated as rows enter and leave: reading the
//! drift is a pass over the bins, never over the rows.

use std::sync::Arc;

use serde::Serialize;

use super::profile::{slot, Bins, Profile};
use super::stats::{jensen_shannon, ks_binned, proportions, psi};

/// When a variable is flagged, and how much live data that takes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DriftRule {
    /// PSI at or above which a variable has drifted. 0.2 is the usual reading of "a
    /// significant shift" (0.1–0.2: moderate).
    pub psi_threshold: f64,
    /// Rows the window must hold before anything is flagged: on a handful of rows every
    /// PSI is noise.
    pub min_rows: usize,
}

impl Default for DriftRule {
    fn default() -> Self {
        DriftRule { psi_threshold: 0.2, min_rows: 200 }
    }
}

/// The live rows of one model version, binned like its profile.
#[derive(Debug)]
pub struct Window {
    profile: Arc<Profile>,
    capacity: usize,
    /// A ring of `capacity` rows of `width` bins; `len` of them are filled.
    ring: Vec<u16>,
    next: usize,
    len: usize,
    /// Per variable, per slot (value bins, then missing): how many rows of the window.
    counts: Vec<Vec<u64>>,
    /// Rows seen since the window was made, including those that have left it.
    seen: u64,
}

impl Window {
    /// An empty window of the last `capacity` rows (at least one).
    pub fn new(profile: Arc<Profile>, capacity: usize) -> Self {
        let capacity = capacity.max(1);
        let counts = profile.variables().map(|d| vec![0; d.bins.values() + 1]).collect();
        Window { ring: Vec::new(), capacity, next: 0, len: 0, counts, seen: 0, profile }
    }

    /// The profile the window is judged against.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// Adds binned rows (as [`Profile::bin_records`] gives them), evicting the oldest past
    /// the capacity.
    pub fn observe(&mut self, binned: &[u16]) {
        let width = self.profile.width();
        if width == 0 {
            return;
        }
        let variables: Vec<&Bins> = self.profile.variables().map(|d| &d.bins).collect();
        for row in binned.chunks_exact(width) {
            let at = self.next * width;
            if self.len == self.capacity {
                for (j, bins) in variables.iter().enumerate() {
                    let old = slot(bins, self.ring[at + j]);
                    self.counts[j][old] = self.counts[j][old].saturating_sub(1);
                }
                self.ring[at..at + width].copy_from_slice(row);
            } else {
                self.ring.extend_from_slice(row);
                self.len += 1;
            }
            for (j, bins) in variables.iter().enumerate() {
                self.counts[j][slot(bins, row[j])] += 1;
            }
            self.next = (self.next + 1) % self.capacity;
            self.seen += 1;
        }
    }

    /// The drift of the window against the profile. A row with no prediction (a request
    /// whose prediction was not binned) counts as a missing prediction.
    pub fn report(&self, rule: DriftRule) -> DriftReport {
        let judged = self.len >= rule.min_rows;
        let variables: Vec<VariableDrift> = self
            .profile
            .variables()
            .zip(&self.counts)
            .map(|(d, counts)| {
                let live = proportions(counts);
                let values = d.bins.values();
                let (e, a) = (&d.expected[..values], &live[..values]);
                let value = psi(&d.expected, &live);
                let (ks, js) = match d.bins {
                    Bins::Numeric { .. } => (Some(ks_binned(e, a)), None),
                    Bins::Categorical { .. } => (None, Some(jensen_shannon(&d.expected, &live))),
                };
                VariableDrift {
                    expected: d.expected.clone(),
                    live: live.clone(),
                    name: d.name.clone(),
                    kind: match d.bins {
                        Bins::Numeric { .. } => "numeric",
                        Bins::Categorical { .. } => "categorical",
                    },
                    psi: value,
                    ks,
                    js,
                    missing_expected: d.expected[values],
                    missing_live: live[values],
                    drifted: judged && value >= rule.psi_threshold,
                }
            })
            .collect();
        let n_features = self.profile.features.len();
        let mut features = variables;
        let prediction = (features.len() > n_features).then(|| features.remove(n_features));
        DriftReport {
            window_rows: self.len,
            rows_seen: self.seen,
            reference_rows: self.profile.rows,
            psi_threshold: rule.psi_threshold,
            min_rows: rule.min_rows,
            judged,
            drifted: features.iter().filter(|f| f.drifted).map(|f| f.name.clone()).collect(),
            features,
            prediction,
        }
    }
}

/// The drift of a window, per variable.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DriftReport {
    /// Rows in the window.
    pub window_rows: usize,
    /// Rows observed in all, including those that have left the window.
    pub rows_seen: u64,
    /// Training rows behind the profile.
    pub reference_rows: u64,
    /// The PSI at or above which a variable is flagged.
    pub psi_threshold: f64,
    /// Rows the window needs before anything is flagged.
    pub min_rows: usize,
    /// Whether the window held enough rows to flag anything.
    pub judged: bool,
    /// The names of the drifted features.
    pub drifted: Vec<String>,
    /// Every feature, in signature order.
    pub features: Vec<VariableDrift>,
    /// The prediction's drift, when the profile has the training predictions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prediction: Option<VariableDrift>,
}

/// One variable's drift.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VariableDrift {
    /// The feature's name, or `prediction`.
    pub name: String,
    /// `numeric` or `categorical`.
    pub kind: &'static str,
    /// Population stability index over the profile's bins, missing values as a bin.
    pub psi: f64,
    /// Numbers: the Kolmogorov–Smirnov gap at the resolution of the bins.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ks: Option<f64>,
    /// Categories: the Jensen–Shannon distance, missing values as a level.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub js: Option<f64>,
    /// Missing rate in training.
    pub missing_expected: f64,
    /// Missing rate in the window.
    pub missing_live: f64,
    /// PSI at or above the threshold, with enough rows.
    pub drifted: bool,
    /// The training data's share of rows in each bin, the missing values' last.
    pub expected: Vec<f64>,
    /// The window's share of rows in each bin, the missing values' last.
    pub live: Vec<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Feature, Records, Signature, Task};
    use ndarray::Array2;

    fn signature() -> Signature {
        Signature {
            features: vec![Feature::numeric("x"), Feature::categorical("c", vec!["a".into(), "b".into()])],
            target: None,
            task: Task::Regression,
            classes: Vec::new(),
        }
    }

    /// Rows `x = i / n` (uniform), `c` level `a` for the first `a_share` of them.
    fn rows(n: usize, shift: f64, a_share: f64) -> Records<'static> {
        let mut m = Array2::zeros((n, 2));
        for i in 0..n {
            m[[i, 0]] = i as f64 / n as f64 + shift;
            m[[i, 1]] = if (i as f64) < a_share * n as f64 { 0.0 } else { 1.0 };
        }
        Records::Matrix(m.into())
    }

    #[test]
    fn the_window_forgets_what_left_it_and_flags_only_what_moved() {
        let sig = signature();
        let profile = Arc::new(Profile::of(&sig, &rows(1000, 0.0, 0.5), None).unwrap());
        assert_eq!(profile.features[0].expected.len(), super::super::NUMERIC_BINS + 1, "20 value bins and missing");
        let mut window = Window::new(profile.clone(), 500);
        let rule = DriftRule { psi_threshold: 0.2, min_rows: 100 };
        window.observe(&profile.bin_records(&sig, &rows(500, 0.0, 0.5), None).unwrap());
        let calm = window.report(rule);
        assert!(calm.judged && calm.drifted.is_empty(), "{calm:?}");
        assert!(calm.features[0].psi < 0.05, "{calm:?}");
        // 500 shifted rows push the calm ones out of a 500-row window: only x moved.
        window.observe(&profile.bin_records(&sig, &rows(500, 0.5, 0.5), None).unwrap());
        let moved = window.report(rule);
        assert_eq!((moved.window_rows, moved.rows_seen), (500, 1000));
        assert_eq!(moved.drifted, ["x"]);
        assert!(moved.features[0].ks.unwrap() > 0.4, "{moved:?}");
        // Too few rows: nothing is flagged, whatever they hold.
        let mut few = Window::new(profile.clone(), 500);
        few.observe(&profile.bin_records(&sig, &rows(50, 5.0, 0.0), None).unwrap());
        let report = few.report(rule);
        assert!(!report.judged && report.drifted.is_empty() && report.features[0].psi > 1.0);
    }

    #[test]
    fn missing_values_are_a_bin_of_their_own() {
        let sig = signature();
        let profile = Arc::new(Profile::of(&sig, &rows(1000, 0.0, 0.5), None).unwrap());
        let mut window = Window::new(profile.clone(), 1000);
        let mut half_missing = rows(400, 0.0, 0.5);
        if let Records::Matrix(m) = &mut half_missing {
            for i in (0..400).step_by(2) {
                m[[i, 0]] = f64::NAN;
                m[[i, 1]] = f64::NAN;
            }
        }
        window.observe(&profile.bin_records(&sig, &half_missing, None).unwrap());
        let report = window.report(DriftRule::default());
        assert_eq!(report.drifted, ["x", "c"]);
        assert!((report.features[0].missing_live - 0.5).abs() < 1e-12 && report.features[0].missing_expected == 0.0);
    }
}

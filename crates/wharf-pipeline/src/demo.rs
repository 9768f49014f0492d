//! The data of the ML scoring demo, generated with a fixed seed so the example, the tests
//! and the benchmark all see the same records.
//!
//! Two training sets of 200 rows and 4 features (`f1`..`f4`), half of each class:
//! set A has class `0` around `[1,2,1,2]` and class `1` around `[3,4,3,4]`; set B has class
//! `0` around `[0,0,0,0]` and class `1` around `[5,5,5,5]`. Test records come in three
//! groups by index: `i % 3 == 0` near A's boundary (around `[2,3,2,3]`), otherwise even `i`
//! clearly class 1 (around `[3.5,4.5,3.5,4.5]`), otherwise clearly class 0 (around
//! `[0.5,1.5,0.5,1.5]`), with noise of standard deviation 0.3.

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde_json::{json, Value};
use wharf_core::{Column, Frame};
use wharf_ml::Dataset;

/// The feature names, in the order featurize sorts them.
pub const FEATURES: [&str; 4] = ["f1", "f2", "f3", "f4"];

/// Set A's class centres (class 0, class 1).
pub const CENTRES_A: ([f64; 4], [f64; 4]) = ([1.0, 2.0, 1.0, 2.0], [3.0, 4.0, 3.0, 4.0]);
/// Set B's class centres (class 0, class 1).
pub const CENTRES_B: ([f64; 4], [f64; 4]) = ([0.0; 4], [5.0; 4]);

/// A standard normal draw (Box–Muller), so the demo needs no distribution crate.
fn normal(rng: &mut Xoshiro256PlusPlus) -> f64 {
    let u1: f64 = rng.gen_range(f64::EPSILON..1.0);
    let u2: f64 = rng.gen();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// A two-class training set: `rows` rows (half labelled `0` around `centres.0`, half `1`
/// around `centres.1`, interleaved), noise of standard deviation `sd`, target `label`.
pub fn two_class_dataset(name: &str, centres: ([f64; 4], [f64; 4]), rows: usize, sd: f64, seed: u64) -> Dataset {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut columns: Vec<Vec<f64>> = (0..4).map(|_| Vec::with_capacity(rows)).collect();
    let mut labels = Vec::with_capacity(rows);
    for i in 0..rows {
        let (centre, label) = if i.is_multiple_of(2) { (&centres.0, "0") } else { (&centres.1, "1") };
        for (column, c) in columns.iter_mut().zip(centre) {
            column.push(c + sd * normal(&mut rng));
        }
        labels.push(Some(label.to_string()));
    }
    let features = FEATURES.iter().zip(columns).map(|(n, v)| (n.to_string(), Column::Numeric(v))).collect();
    Dataset {
        name: name.to_string(),
        // Four equal-length columns with distinct names: from_columns cannot refuse them.
        features: Frame::from_columns(features).unwrap_or_default(),
        target: Some(("label".into(), Column::Text(labels))),
        ids: Frame::new(),
        levels: BTreeMap::new(),
    }
}

/// Training set A (200 rows, noise 0.5).
pub fn dataset_a(seed: u64) -> Dataset {
    two_class_dataset("demo:a", CENTRES_A, 200, 0.5, seed)
}

/// Training set B (200 rows, noise 0.5).
pub fn dataset_b(seed: u64) -> Dataset {
    two_class_dataset("demo:b", CENTRES_B, 200, 0.5, seed)
}

/// True for the near-boundary group.
pub fn is_boundary(i: u64) -> bool {
    i.is_multiple_of(3)
}

/// `n` test records `{"id": i, "data": {"f1".., "f4"..}}` for `i` in `1..=n`.
pub fn test_records(n: u64, seed: u64) -> Vec<Value> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    (1..=n)
        .map(|i| {
            let centre = if is_boundary(i) {
                [2.0, 3.0, 2.0, 3.0]
            } else if i.is_multiple_of(2) {
                [3.5, 4.5, 3.5, 4.5]
            } else {
                [0.5, 1.5, 0.5, 1.5]
            };
            let data: serde_json::Map<String, Value> =
                FEATURES.iter().zip(centre).map(|(n, c)| (n.to_string(), json!(c + 0.3 * normal(&mut rng)))).collect();
            json!({ "id": i, "data": data })
        })
        .collect()
}

//! What the tests against the real libraries share: the fixture data directory
//! (`WHARF_TEST_TREES_DATA`, written by `tests/fixtures/generate.py`), its manifest, and the
//! little-endian `f64` files the libraries' predictions are stored in.

#![allow(dead_code)] // each test binary uses its own part

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The fixture script's `manifest.json`.
#[derive(Deserialize)]
pub struct Manifest {
    /// The library versions that trained the models.
    pub versions: serde_json::Value,
    pub cases: Vec<Case>,
}

/// One trained model and its data.
#[derive(Deserialize)]
pub struct Case {
    pub name: String,
    pub format: String,
    pub model: String,
    pub data: String,
    pub rows: usize,
    pub width: usize,
    pub margin_width: usize,
    pub pred_width: usize,
    pub objective: String,
}

/// The fixture directory, or `None` after a `skipped:` line; required (a failure) under
/// `WHARF_TEST_REQUIRE_BACKENDS=1` or `CI=true`.
pub fn data_dir() -> Option<PathBuf> {
    match std::env::var_os("WHARF_TEST_TREES_DATA") {
        Some(dir) => Some(PathBuf::from(dir)),
        None => {
            let required = std::env::var("WHARF_TEST_REQUIRE_BACKENDS").as_deref() == Ok("1")
                || std::env::var("CI").as_deref() == Ok("true");
            assert!(!required, "WHARF_TEST_TREES_DATA is not set but WHARF_TEST_REQUIRE_BACKENDS=1 or CI=true");
            eprintln!(
                "skipped: WHARF_TEST_TREES_DATA is not set (run the fixture script: python \
                 crates/wharf-trees/tests/fixtures/generate.py DIR, then export WHARF_TEST_TREES_DATA=DIR)"
            );
            None
        }
    }
}

/// The manifest of `dir`.
pub fn manifest(dir: &Path) -> Manifest {
    let path = dir.join("manifest.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A file of little-endian `f64`s.
pub fn read_f64(path: &Path) -> Vec<f64> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(bytes.len() % 8, 0, "{}", path.display());
    bytes.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes"))).collect()
}

/// (values not bit-identical, largest relative error over values not within 1e-9 of each
/// other), for outputs compared with ONNX Runtime's.
pub fn compare(ours: &[f64], theirs: &[f64]) -> (usize, f64) {
    assert_eq!(ours.len(), theirs.len());
    let mut differ = 0;
    let mut worst = 0.0f64;
    for (a, b) in ours.iter().zip(theirs) {
        if a.to_bits() != b.to_bits() {
            differ += 1;
            // A NaN on one side only is a disagreement, not a difference too small to see.
            if a.is_nan() != b.is_nan() {
                worst = f64::INFINITY;
                continue;
            }
            let rel = (a - b).abs() / a.abs().max(b.abs());
            worst = worst.max(if (a - b).abs() < 1e-9 { 0.0 } else { rel });
        }
    }
    (differ, worst)
}

//! The drift statistics against scipy on the same samples: `scipy.stats.ks_2samp`'s
//! statistic, the p-value of the limiting Kolmogorov distribution (`scipy.stats.kstwobign`),
//! `scipy.spatial.distance.jensenshannon`, and PSI as the reference formula computes it with
//! numpy over the same bins.
//!
//! The Python comes from `WHARF_TEST_TREES_PYTHON` (`cargo xtask test` sets it to a venv with
//! scikit-learn, hence scipy and numpy); without it the test says `skipped:`, and fails under
//! `WHARF_TEST_REQUIRE_BACKENDS=1` or `CI=true`.

use std::process::Command;

use wharf_core::drift::stats::{jensen_shannon, ks_2samp, psi};

fn python() -> Option<String> {
    match std::env::var("WHARF_TEST_TREES_PYTHON") {
        Ok(p) if !p.is_empty() => Some(p),
        _ => {
            let required = std::env::var("WHARF_TEST_REQUIRE_BACKENDS").as_deref() == Ok("1")
                || std::env::var("CI").as_deref() == Ok("true");
            assert!(!required, "WHARF_TEST_TREES_PYTHON is not set but WHARF_TEST_REQUIRE_BACKENDS=1 or CI=true");
            eprintln!("skipped: WHARF_TEST_TREES_PYTHON is not set (cargo xtask test sets it)");
            None
        }
    }
}

/// A deterministic sample: `n` draws of a normal with mean `shift`, from a seeded SplitMix64
/// through Box–Muller, rounded to 2 decimals so ties occur (the case KS implementations
/// disagree on when done wrong).
fn sample(seed: u64, n: usize, shift: f64) -> Vec<f64> {
    let mut state = seed;
    let mut next = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    };
    (0..n)
        .map(|_| {
            let (u, v) = (next().max(1e-12), next());
            let x = (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos() + shift;
            (x * 100.0).round() / 100.0
        })
        .collect()
}

const SCRIPT: &str = r#"
import json, sys
import numpy as np
from scipy.stats import ks_2samp, kstwobign
from scipy.spatial.distance import jensenshannon
cases = json.load(sys.stdin)
out = []
for c in cases:
    r = ks_2samp(c["a"], c["b"])
    n, m = len(c["a"]), len(c["b"])
    e, a = np.maximum(np.array(c["e"]), 1e-4), np.maximum(np.array(c["p"]), 1e-4)
    out.append({
        "ks": float(r.statistic),
        "p": float(kstwobign.sf(np.sqrt(n * m / (n + m)) * r.statistic)),
        "p_scipy": float(r.pvalue),
        "js": float(jensenshannon(c["e"], c["p"])),
        "psi": float(np.sum((a - e) * np.log(a / e))),
    })
print(json.dumps(out))
"#;

#[test]
fn ks_jensen_shannon_and_psi_equal_scipys() {
    let Some(python) = python() else { return };
    let cases: Vec<serde_json::Value> =
        [(1u64, 2u64, 500, 700, 0.0), (3, 4, 800, 300, 0.3), (5, 6, 2000, 2000, 1.0), (7, 8, 40, 9, 0.5)]
            .iter()
            .map(|&(sa, sb, n, m, shift)| {
                let (a, b) = (sample(sa, n, 0.0), sample(sb, m, shift));
                // Proportions over 5 bins, one of them empty on one side.
                let e = [0.1, 0.2, 0.3, 0.4, 0.0];
                let p = [0.05 + shift / 10.0, 0.25, 0.3, 0.3 - shift / 10.0, 0.1];
                serde_json::json!({ "a": a, "b": b, "e": e, "p": p })
            })
            .collect();
    let mut child = Command::new(&python)
        .args(["-c", SCRIPT])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start python");
    serde_json::to_writer(child.stdin.take().expect("stdin"), &cases).expect("write cases");
    let output = child.wait_with_output().expect("python ran");
    assert!(output.status.success(), "python failed");
    let scipy: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).expect("scipy's answers");
    for (case, want) in cases.iter().zip(&scipy) {
        let nums = |k: &str| -> Vec<f64> { case[k].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect() };
        let (a, b, e, p) = (nums("a"), nums("b"), nums("e"), nums("p"));
        let ks = ks_2samp(&a, &b).expect("non-empty samples");
        let close = |got: f64, want: &serde_json::Value, what: &str| {
            let want = want.as_f64().unwrap();
            assert!(
                (got - want).abs() <= 1e-9 * want.abs().max(1.0),
                "{what}: Wharf {got}, scipy {want} ({} vs {} rows)",
                a.len(),
                b.len()
            );
        };
        close(ks.statistic, &want["ks"], "KS statistic");
        close(ks.pvalue, &want["p"], "KS p-value");
        close(jensen_shannon(&e, &p), &want["js"], "Jensen-Shannon distance");
        close(psi(&e, &p), &want["psi"], "PSI");
    }
    // The shifted samples are told apart, the same-distribution ones are not, by Wharf's
    // p-value as by scipy's own finite-sample one.
    assert!(scipy[0]["p"].as_f64().unwrap() > 0.01 && scipy[2]["p"].as_f64().unwrap() < 1e-6);
    assert!(scipy[0]["p_scipy"].as_f64().unwrap() > 0.01 && scipy[2]["p_scipy"].as_f64().unwrap() < 1e-6);
}

//! Agreement with ONNX Runtime: scikit-learn models exported by skl2onnx at test time
//! (`tests/fixtures/generate_onnx.py`), compiled by Wharf, and compared with ONNX Runtime's
//! outputs (one thread) on 12,000 rows each; with them, hand-built opset 5 TreeEnsembles of
//! BRANCH_LEQ and BRANCH_MEMBER splits on rows in and out of the sets.
//!
//! The data directory is `$WHARF_TEST_TREES_DATA/onnx` (`cargo xtask test` generates it);
//! without it the test says `skipped:`, and fails under `WHARF_TEST_REQUIRE_BACKENDS=1`.
//!
//! What must hold: every output within 1e-6 relative of ONNX Runtime's (absolute 1e-9 near
//! zero); tree models' outputs bit for bit, since both sum the same `f32` leaves in the same
//! order and apply the same logistic and softmax formulas. Linear models reproduce MLAS's
//! fused multiply-add dot product and its logistic approximation, so they are bit for bit
//! too where ONNX Runtime runs its FMA kernels; a softmax after a linear model uses MLAS's
//! own `exp`, which Wharf does not copy (within 1e-6 relative).

use serde::Deserialize;

mod common;
use common::read_f64;

#[derive(Deserialize)]
struct Manifest {
    versions: serde_json::Value,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    model: String,
    rows: usize,
    width: usize,
    outputs: usize,
    task: String,
    /// For `hist_boosting_categorical`: how far scikit-learn's own probabilities are from
    /// ONNX Runtime's on the exported file.
    sklearn_max_abs_diff: Option<f64>,
}

fn onnx_dir() -> Option<std::path::PathBuf> {
    let dir = common::data_dir()?.join("onnx");
    Some(dir)
}

#[test]
fn onnx_models_agree_with_onnx_runtime() {
    let Some(dir) = onnx_dir() else { return };
    let text = std::fs::read_to_string(dir.join("manifest.json")).expect("onnx/manifest.json");
    let manifest: Manifest = serde_json::from_str(&text).expect("manifest");
    eprintln!("libraries: {}", manifest.versions);
    assert!(manifest.cases.len() >= 10, "expected the full set of cases");
    // The hand-built BRANCH_MEMBER ensembles (`member_cases` in generate_onnx.py).
    let members = manifest.cases.iter().filter(|c| c.name.starts_with("member_")).count();
    assert!(members >= 3, "expected the BRANCH_MEMBER cases, found {members}");
    let mut failures = Vec::new();
    for case in &manifest.cases {
        let model = wharf_trees::onnx::read(dir.join(&case.model)).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let x = read_f64(&dir.join(format!("{}.x.f64", case.name)));
        let want = read_f64(&dir.join(format!("{}.out.f64", case.name)));
        assert!(case.rows >= 10_000);
        assert_eq!(x.len(), case.rows * case.width, "{}", case.name);
        assert_eq!(model.pipeline.width(), case.width, "{}", case.name);
        assert_eq!(model.pipeline.n_outputs(), case.outputs, "{}: outputs", case.name);
        assert_eq!(model.classes.is_empty(), case.task == "regression", "{}", case.name);
        let mut out = vec![0.0; case.rows * case.outputs];
        model.pipeline.predict(&x, &mut out).expect("predict");
        let (differ, worst) = common::compare(&out, &want);
        let trees = model.pipeline.ensemble().is_some();
        eprintln!(
            "{:<24} {:<24} {} of {} values not bit-identical, worst relative error {worst:.2e}",
            case.name,
            model.model_op,
            differ,
            out.len()
        );
        if worst > 1e-6 {
            failures.push(format!("{}: relative error {worst:.2e} over 1e-6", case.name));
        }
        // Trees sum the same f32 leaves in the same order and use ONNX Runtime's own
        // logistic and softmax formulas: bit for bit.
        if trees && differ > 0 {
            failures.push(format!("{}: {differ} values not bit-identical", case.name));
        }
        // One row at a time gives the batch's answer.
        let mut one = vec![0.0; case.outputs];
        for i in [0usize, 1, case.rows / 2, case.rows - 1] {
            model.pipeline.predict(&x[i * case.width..(i + 1) * case.width], &mut one).expect("row");
            // Bit for bit, so a NaN answer (a NaN scored through a linear model) compares.
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&one), bits(&out[i * case.outputs..(i + 1) * case.outputs]), "{} row {i}", case.name);
        }
    }
    assert!(failures.is_empty(), "disagreements with ONNX Runtime:\n{}", failures.join("\n"));
    // skl2onnx 1.20.0 exports HistGradientBoosting's native categorical splits as numeric
    // `<=` splits: the file (and so ONNX Runtime, and Wharf) is not scikit-learn's model. The
    // guide says so; when a skl2onnx upgrade fixes it, this fails and the guide must change.
    let categorical = manifest.cases.iter().find(|c| c.name == "hist_boosting_categorical").expect("the HGB case");
    let gap = categorical.sklearn_max_abs_diff.expect("sklearn_max_abs_diff");
    assert!(gap > 0.1, "skl2onnx now exports HGB categorical splits faithfully (gap {gap}): update the guide");
}

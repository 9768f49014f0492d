//! [`Pipeline`]: a validated [`PipelineSpec`] compiled for scoring. Every step runs in `f32`
//! with ONNX Runtime's formulas (its reference `ComputeLogistic` and `ComputeSoftmax`), so
//! outputs agree with ONNX Runtime's within the rounding of `exp` and of the linear sums'
//! order; the trees' sums are bit for bit.

use crate::ensemble::Ensemble;
use crate::error::TreeError;

use super::spec::{Binary, Head, Norm, PipelineSpec, Post, Stage, StageOp, Transform};

/// An ONNX model compiled onto Wharf's kernels: row stages, then the linear kernel or the
/// tree evaluator, then the post-transforms. Immutable and `Send + Sync`.
#[derive(Debug)]
pub struct Pipeline {
    spec: PipelineSpec,
    /// No stages and the model reads the input as it is: the row goes straight in.
    direct: bool,
    /// The compiled trees of a tree head.
    ensemble: Option<Ensemble>,
}

/// Rows scored together (bounds the `f32` scratch buffers).
const BLOCK: usize = 1024;

impl Pipeline {
    /// Validates `spec` and compiles it.
    pub fn new(spec: PipelineSpec) -> Result<Pipeline, TreeError> {
        spec.validate()?;
        let ensemble = match &spec.head {
            Head::Trees { ensemble, .. } => Some(Ensemble::new(ensemble.clone())?),
            Head::Linear { .. } => None,
        };
        let direct = spec.stages.is_empty()
            && spec.features.iter().enumerate().all(|(i, s)| i == *s as usize)
            && spec.features.len() == spec.width;
        Ok(Pipeline { spec, direct, ensemble })
    }

    /// The spec it was compiled from (what a model artifact stores).
    pub fn spec(&self) -> &PipelineSpec {
        &self.spec
    }

    /// Width of an input row.
    pub fn width(&self) -> usize {
        self.spec.width
    }

    /// Values per output row: one probability per class, or the regression value.
    pub fn n_outputs(&self) -> usize {
        self.spec.n_outputs()
    }

    /// The compiled trees, for a tree model.
    pub fn ensemble(&self) -> Option<&Ensemble> {
        self.ensemble.as_ref()
    }

    /// Scores row-major `rows` (`width` each, NaN for missing) into `out`
    /// ([`n_outputs`](Self::n_outputs) per row): class probabilities, or values.
    pub fn predict(&self, rows: &[f64], out: &mut [f64]) -> Result<(), TreeError> {
        let w = self.spec.width;
        let k = self.n_outputs();
        if !rows.len().is_multiple_of(w) {
            return Err(TreeError::Shape(format!("{} values are not whole rows of {w}", rows.len())));
        }
        let n = rows.len() / w;
        if out.len() != n * k {
            return Err(TreeError::Shape(format!("output holds {} values; {n} rows need {}", out.len(), n * k)));
        }
        let mw = self.spec.model_width();
        let mut x = Vec::with_capacity(BLOCK.min(n) * mw);
        let mut wide = Vec::new();
        let mut scores = Vec::with_capacity(BLOCK.min(n) * k);
        let mut slots = Vec::new();
        for (rows, out) in rows.chunks(BLOCK * w).zip(out.chunks_mut(BLOCK * k)) {
            x.clear();
            if self.direct {
                x.extend(rows.iter().map(|v| *v as f32));
            } else {
                for row in rows.chunks_exact(w) {
                    slots.clear();
                    slots.extend(row.iter().map(|v| *v as f32));
                    for stage in &self.spec.stages {
                        run_stage(stage, &mut slots);
                    }
                    x.extend(self.spec.features.iter().map(|s| slots[*s as usize]));
                }
            }
            scores.clear();
            scores.resize(out.len(), 0.0f32);
            self.head(&x, &mut wide, &mut scores)?;
            for post in &self.spec.post {
                for row in scores.chunks_exact_mut(k) {
                    match post {
                        Post::Normalizer(norm) => normalize(*norm, row),
                        Post::Softmax => softmax(row, false),
                    }
                }
            }
            out.iter_mut().zip(&scores).for_each(|(o, s)| *o = *s as f64);
        }
        Ok(())
    }

    fn head(&self, x: &[f32], wide: &mut Vec<f64>, scores: &mut [f32]) -> Result<(), TreeError> {
        let w = self.spec.model_width();
        let k = self.n_outputs();
        match &self.spec.head {
            Head::Linear { coefficients, intercepts, transform } => {
                for (row, s) in x.chunks_exact(w).zip(scores.chunks_exact_mut(k)) {
                    for (j, s) in s.iter_mut().enumerate() {
                        let coef = &coefficients[j * w..(j + 1) * w];
                        // MLAS's SGEMM: one fused multiply-add per feature, in order, from
                        // zero; the intercept (GEMM's `beta · C`) is added after.
                        let mut acc = 0.0f32;
                        for (c, v) in coef.iter().zip(row) {
                            acc = v.mul_add(*c, acc);
                        }
                        *s = acc + intercepts[j];
                    }
                    apply_transform(*transform, s, mlas_logistic);
                }
            }
            Head::Trees { base_values, transform, binary, .. } => {
                let Some(ensemble) = &self.ensemble else {
                    return Err(TreeError::Shape("a tree head without its compiled trees".into()));
                };
                let groups = ensemble.n_groups();
                let n = x.len() / w;
                wide.clear();
                wide.extend(x.iter().map(|v| *v as f64));
                let mut margins = vec![0.0f64; n * groups];
                ensemble.predict_raw(wide, w, &mut margins)?;
                for (m, s) in margins.chunks_exact(groups).zip(scores.chunks_exact_mut(k)) {
                    match binary {
                        Binary::PerClass => {
                            for (j, s) in s.iter_mut().enumerate() {
                                *s = m[j] as f32 + base_values.get(j).copied().unwrap_or(0.0);
                            }
                            apply_transform(*transform, s, logistic);
                        }
                        Binary::Complement => {
                            let v = m[0] as f32 + base_values.first().copied().unwrap_or(0.0);
                            s[0] = 1.0 - v;
                            s[1] = v;
                        }
                        Binary::Signed => {
                            let v = m[0] as f32 + base_values.first().copied().unwrap_or(0.0);
                            match transform {
                                Transform::Logistic => {
                                    s[0] = logistic(-v);
                                    s[1] = logistic(v);
                                }
                                _ => {
                                    s[0] = -v;
                                    s[1] = v;
                                }
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// Appends the stage's outputs to the row's values.
fn run_stage(stage: &Stage, slots: &mut Vec<f32>) {
    let at = |v: &[f32], j: usize| if v.len() == 1 { v[0] } else { v[j] };
    let start = slots.len();
    match &stage.op {
        StageOp::Scaler { offset, scale } => {
            for (j, s) in stage.input.iter().enumerate() {
                let v = slots[*s as usize];
                slots.push((v - at(offset, j)) * at(scale, j));
            }
        }
        StageOp::Imputer { values, replaced } => {
            for (j, s) in stage.input.iter().enumerate() {
                let v = slots[*s as usize];
                let missing = v == *replaced || (replaced.is_nan() && v.is_nan());
                slots.push(if missing { at(values, j) } else { v });
            }
        }
        StageOp::Normalizer(norm) => {
            for s in &stage.input {
                slots.push(slots[*s as usize]);
            }
            normalize(*norm, &mut slots[start..]);
        }
        StageOp::Clip { min, max } => {
            for s in &stage.input {
                let v = slots[*s as usize];
                // Comparisons, not `f32::clamp`'s: a NaN passes through.
                slots.push(if v < *min {
                    *min
                } else if v > *max {
                    *max
                } else {
                    v
                });
            }
        }
        StageOp::Truncate => {
            for s in &stage.input {
                slots.push(slots[*s as usize].trunc());
            }
        }
        StageOp::Lookup { keys, values, default } => {
            for s in &stage.input {
                let v = slots[*s as usize];
                let found = keys.iter().position(|k| *k == v).map(|i| values[i]);
                slots.push(found.unwrap_or(*default));
            }
        }
        StageOp::OneHot { categories } => {
            for s in &stage.input {
                let v = slots[*s as usize];
                // ONNX Runtime casts to int64 and looks the integer up.
                let code = (v.is_finite() && v.abs() < 9.2e18).then_some(v as i64);
                for c in categories {
                    slots.push(if code == Some(*c) { 1.0 } else { 0.0 });
                }
            }
        }
    }
}

/// ONNX Runtime's `Normalizer` (`ml/normalizer.cc`).
fn normalize(norm: Norm, row: &mut [f32]) {
    match norm {
        Norm::Max => {
            let max = row.iter().fold(f32::MIN, |a, v| a.max(*v));
            if max != 0.0 {
                row.iter_mut().for_each(|v| *v /= max);
            }
        }
        Norm::L1 => {
            let sum: f32 = row.iter().map(|v| v.abs()).sum();
            if sum != 0.0 {
                row.iter_mut().for_each(|v| *v /= sum);
            }
        }
        Norm::L2 => {
            let sum: f32 = row.iter().map(|v| v * v).sum();
            let norm = sum.sqrt();
            if norm != 0.0 {
                row.iter_mut().for_each(|v| *v /= norm);
            }
        }
    }
}

/// `logistic` is the tree operators' exact one or the linear operators' approximation: ONNX
/// Runtime uses each where it does.
fn apply_transform(transform: Transform, s: &mut [f32], logistic: fn(f32) -> f32) {
    match transform {
        Transform::None => {}
        Transform::Logistic => s.iter_mut().for_each(|v| *v = logistic(*v)),
        Transform::Softmax => softmax(s, false),
        Transform::SoftmaxZero => softmax(s, true),
    }
}

/// ONNX Runtime's `ComputeLogistic` (tree operators): symmetric, so a very negative score
/// keeps its precision.
fn logistic(v: f32) -> f32 {
    let p = 1.0 / (1.0 + (-v.abs()).exp());
    if v < 0.0 {
        1.0 - p
    } else {
        p
    }
}

/// ONNX Runtime's batched logistic of the linear operators (`MlasComputeLogistic`): Eigen's rational approximation on
/// `[-18, 18]` with fused multiply-adds (its FMA3 kernel), clamped to `[0, 1]`. Not the
/// exact logistic: ONNX Runtime's probabilities are this function's, so Wharf's are too.
#[allow(clippy::excessive_precision)] // MLAS's constants, as written there
fn mlas_logistic(v: f32) -> f32 {
    const A9: f32 = 4.37031012579801e-11;
    const A7: f32 = 1.15627324459942e-07;
    const A5: f32 = 6.08574864600143e-05;
    const A3: f32 = 8.51377133304701e-03;
    const A1: f32 = 2.48287947061529e-01;
    const B10: f32 = 6.10247389755681e-13;
    const B8: f32 = 5.76102136993427e-09;
    const B6: f32 = 6.29106785017040e-06;
    const B4: f32 = 1.70198817374094e-03;
    const B2: f32 = 1.16817656904453e-01;
    const B0: f32 = 9.93151921023180e-01;
    let v = if v < -18.0 { -18.0 } else { v };
    let v = if v > 18.0 { 18.0 } else { v };
    let x2 = v * v;
    let mut p = x2.mul_add(A9, A7);
    p = p.mul_add(x2, A5);
    p = p.mul_add(x2, A3);
    p = p.mul_add(x2, A1);
    p *= v;
    let mut q = x2.mul_add(B10, B8);
    q = q.mul_add(x2, B6);
    q = q.mul_add(x2, B4);
    q = q.mul_add(x2, B2);
    q = q.mul_add(x2, B0);
    (p / q + 0.5).clamp(0.0, 1.0)
}

/// ONNX Runtime's `ComputeSoftmax` (and `ComputeSoftmaxZero`, which leaves zeros at zero).
fn softmax(s: &mut [f32], keep_zero: bool) {
    let max = s.iter().fold(-f32::MAX, |a, v| if *v > a { *v } else { a });
    let mut sum = 0.0f32;
    for v in s.iter_mut() {
        if keep_zero && *v == 0.0 {
            continue;
        }
        *v = (*v - max).exp();
        sum += *v;
    }
    for v in s.iter_mut() {
        if !(keep_zero && *v == 0.0) {
            *v /= sum;
        }
    }
}

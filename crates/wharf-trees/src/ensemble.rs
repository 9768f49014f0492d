//! [`Ensemble`]: a validated, compiled tree ensemble, and its scoring entry points.

use crate::error::TreeError;
use crate::link::Link;
use crate::spec::{EnsembleSpec, Semantics};
use crate::walk::{Body, Format, Lgb, Onx, Xgb, BLOCK};

/// A compiled additive tree ensemble: scores rows of `f64` (NaN = missing) into margins or
/// predictions. Immutable and `Send + Sync`: share one between threads and give each its own
/// rows. Scoring runs on the calling thread; split a big batch over threads outside.
pub struct Ensemble {
    /// What it was compiled from: kept so the ensemble can be saved and compiled again (a
    /// model artifact stores the spec, never the compiled form).
    spec: EnsembleSpec,
    spec_link: Link,
    semantics: Semantics,
    n_features: usize,
    n_groups: usize,
    n_trees: usize,
    inner: Inner,
}

enum Inner {
    Xgb(Compiled<Xgb>),
    Lgb(Compiled<Lgb>),
    Onx(Compiled<Onx>),
}

struct Compiled<F: Format> {
    base: Vec<F::A>,
    /// Trees per group when margins are averaged (random-forest mode).
    average: Option<Vec<usize>>,
    body: Body<F>,
}

impl std::fmt::Debug for Ensemble {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ensemble")
            .field("semantics", &self.semantics)
            .field("n_features", &self.n_features)
            .field("n_groups", &self.n_groups)
            .field("n_trees", &self.n_trees)
            .field("link", &self.spec_link)
            .field("compiled", &self.compiled_kind())
            .finish()
    }
}

impl<F: Format> Compiled<F> {
    fn new(spec: &EnsembleSpec) -> Self {
        let body = Body::<F>::compile(&spec.trees);
        let average = spec.average.then(|| body.trees_per_group(spec.n_groups()));
        Compiled { base: spec.base_score.iter().map(|b| F::acc(*b)).collect(), average, body }
    }

    /// Margins for `rows` (row-major, `width` each) into `out` (`groups` per row).
    fn margins(&self, rows: &[f64], width: usize, out: &mut [f64]) {
        let groups = self.base.len();
        let mut xs: Vec<F::T> = Vec::with_capacity(BLOCK * width);
        let mut acc: Vec<F::A> = Vec::with_capacity(BLOCK * groups);
        for (rows, out) in rows.chunks(BLOCK * width).zip(out.chunks_mut(BLOCK * groups)) {
            xs.clear();
            xs.extend(rows.iter().map(|x| F::input(*x)));
            acc.clear();
            for _ in 0..rows.len() / width {
                acc.extend_from_slice(&self.base);
            }
            self.body.accumulate(&xs, width, groups, &mut acc);
            self.finish(&acc, out);
        }
    }

    /// One row, with no heap allocation for up to 64 features and 16 groups.
    fn margins_row(&self, row: &[f64], out: &mut [f64]) {
        let groups = self.base.len();
        let mut xs_stack = [F::T::default(); 64];
        let mut xs_heap = Vec::new();
        let xs: &mut [F::T] = if row.len() <= 64 {
            &mut xs_stack[..row.len()]
        } else {
            xs_heap.resize(row.len(), F::T::default());
            &mut xs_heap
        };
        xs.iter_mut().zip(row).for_each(|(t, x)| *t = F::input(*x));
        let mut acc_stack = [F::A::default(); 16];
        let mut acc_heap = Vec::new();
        let acc: &mut [F::A] = if groups <= 16 {
            acc_stack[..groups].copy_from_slice(&self.base);
            &mut acc_stack[..groups]
        } else {
            acc_heap.extend_from_slice(&self.base);
            &mut acc_heap
        };
        self.body.accumulate(xs, row.len(), groups, acc);
        self.finish(acc, out);
    }

    fn finish(&self, acc: &[F::A], out: &mut [f64]) {
        match &self.average {
            None => out.iter_mut().zip(acc).for_each(|(o, a)| *o = F::out(*a)),
            Some(per_group) => {
                let groups = per_group.len();
                for (i, (o, a)) in out.iter_mut().zip(acc).enumerate() {
                    let n = per_group[i % groups].max(1);
                    *o = F::out(F::average(*a, n));
                }
            }
        }
    }
}

impl Ensemble {
    /// Validates `spec` (see [`EnsembleSpec::validate`]) and compiles it.
    pub fn new(spec: EnsembleSpec) -> Result<Ensemble, TreeError> {
        spec.validate()?;
        let inner = match spec.semantics {
            Semantics::XGBoost => Inner::Xgb(Compiled::new(&spec)),
            Semantics::LightGBM => Inner::Lgb(Compiled::new(&spec)),
            Semantics::Onnx => Inner::Onx(Compiled::new(&spec)),
        };
        Ok(Ensemble {
            spec_link: spec.link,
            semantics: spec.semantics,
            n_features: spec.n_features,
            n_groups: spec.n_groups(),
            n_trees: spec.trees.len(),
            inner,
            spec,
        })
    }

    /// The validated spec the ensemble was compiled from: what to save, since
    /// [`Ensemble::new`] compiles (and checks) it again when it is read back.
    pub fn spec(&self) -> &EnsembleSpec {
        &self.spec
    }

    /// Width of an input row.
    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// Margins (and predictions) per row: the number of output groups.
    pub fn n_groups(&self) -> usize {
        self.n_groups
    }

    /// Number of trees.
    pub fn n_trees(&self) -> usize {
        self.n_trees
    }

    /// True when margins are averaged over each group's trees (LightGBM's `average_output`,
    /// random-forest mode). [`Ensemble::predict_raw`] returns the average, the value the
    /// link sees; LightGBM's own `raw_score` output is the sum before it.
    pub fn averages(&self) -> bool {
        match &self.inner {
            Inner::Xgb(c) => c.average.is_some(),
            Inner::Lgb(c) => c.average.is_some(),
            Inner::Onx(c) => c.average.is_some(),
        }
    }

    /// The link from margins to predictions.
    pub fn link(&self) -> Link {
        self.spec_link
    }

    /// Whose scoring rules the ensemble follows.
    pub fn semantics(&self) -> Semantics {
        self.semantics
    }

    /// `"perfect"` or `"general"`: which compiled form scores (see the crate's README).
    pub fn compiled_kind(&self) -> &'static str {
        match &self.inner {
            Inner::Xgb(c) => c.body.kind(),
            Inner::Lgb(c) => c.body.kind(),
            Inner::Onx(c) => c.body.kind(),
        }
    }

    /// The same ensemble scored by the scalar kernels only: for tests that compare them with
    /// the vector kernels (which score otherwise whenever the CPU has them).
    #[doc(hidden)]
    pub fn scalar_only(mut self) -> Ensemble {
        match &mut self.inner {
            Inner::Xgb(c) => c.body.scalar_only(),
            Inner::Lgb(c) => c.body.scalar_only(),
            Inner::Onx(c) => c.body.scalar_only(),
        }
        self
    }

    /// True when the vector kernels score this ensemble (for tests and benchmarks).
    #[doc(hidden)]
    pub fn vector_kernels(&self) -> bool {
        match &self.inner {
            Inner::Xgb(c) => c.body.vector(),
            Inner::Lgb(c) => c.body.vector(),
            Inner::Onx(c) => c.body.vector(),
        }
    }

    /// True when single rows go through the single-row vector kernel (for tests and
    /// benchmarks).
    #[doc(hidden)]
    pub fn vector_row_kernel(&self) -> bool {
        match &self.inner {
            Inner::Xgb(c) => c.body.vector_row(),
            Inner::Lgb(c) => c.body.vector_row(),
            Inner::Onx(c) => c.body.vector_row(),
        }
    }

    fn check(&self, rows: &[f64], width: usize, out: &[f64]) -> Result<usize, TreeError> {
        if width != self.n_features {
            return Err(TreeError::Shape(format!("rows are {width} wide; the model reads {}", self.n_features)));
        }
        if !rows.len().is_multiple_of(width) {
            return Err(TreeError::Shape(format!("{} values are not whole rows of {width}", rows.len())));
        }
        let n = rows.len() / width;
        if out.len() != n * self.n_groups {
            return Err(TreeError::Shape(format!(
                "output holds {} values; {n} rows × {} groups need {}",
                out.len(),
                self.n_groups,
                n * self.n_groups
            )));
        }
        Ok(n)
    }

    /// Raw margins (before the link) of row-major `rows`, `width` values each, NaN for
    /// missing; `out` holds `n_groups` values per row.
    pub fn predict_raw(&self, rows: &[f64], width: usize, out: &mut [f64]) -> Result<(), TreeError> {
        let n = self.check(rows, width, out)?;
        if n == 1 {
            self.row_raw(rows, out);
            return Ok(());
        }
        match &self.inner {
            Inner::Xgb(c) => c.margins(rows, width, out),
            Inner::Lgb(c) => c.margins(rows, width, out),
            Inner::Onx(c) => c.margins(rows, width, out),
        }
        Ok(())
    }

    /// Predictions (margins through the link): probabilities of each class for softmax, of
    /// the positive class for a sigmoid, values for regression.
    pub fn predict(&self, rows: &[f64], width: usize, out: &mut [f64]) -> Result<(), TreeError> {
        self.predict_raw(rows, width, out)?;
        self.apply_link(out);
        Ok(())
    }

    /// One row's predictions, on the single-row fast path (no allocation for up to 64
    /// features and 16 groups).
    pub fn predict_row(&self, row: &[f64], out: &mut [f64]) -> Result<(), TreeError> {
        self.check(row, row.len().max(1), out)?;
        if row.len() != self.n_features {
            return Err(TreeError::Shape(format!(
                "the row has {} values; the model reads {}",
                row.len(),
                self.n_features
            )));
        }
        self.row_raw(row, out);
        self.apply_link(out);
        Ok(())
    }

    fn row_raw(&self, row: &[f64], out: &mut [f64]) {
        match &self.inner {
            Inner::Xgb(c) => c.margins_row(row, out),
            Inner::Lgb(c) => c.margins_row(row, out),
            Inner::Onx(c) => c.margins_row(row, out),
        }
    }

    /// Applies the link in place to margins laid out `n_groups` per row.
    pub fn apply_link(&self, values: &mut [f64]) {
        if matches!(self.spec_link, Link::Identity) {
            return;
        }
        // The links read all of a row's margins before writing (softmax): a copy per row, on
        // the stack for up to 16 groups so a single row allocates nothing.
        let mut stack = [0.0f64; 16];
        let mut heap = Vec::new();
        let margins: &mut [f64] = if self.n_groups <= 16 {
            &mut stack[..self.n_groups]
        } else {
            heap.resize(self.n_groups, 0.0);
            &mut heap
        };
        for row in values.chunks_exact_mut(self.n_groups) {
            margins.copy_from_slice(row);
            self.spec_link.apply(self.semantics, margins, row);
        }
    }
}

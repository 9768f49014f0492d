//! Histograms: per feature and bin, the sums of the gradients, hessians and rows of a leaf.
//!
//! A leaf's histogram is built from its rows, one feature per rayon task, each task summing
//! its rows in their (fixed) order: the sums do not depend on how many threads run them. Of
//! two siblings only the smaller is built; the other is its parent minus it (the subtraction
//! trick), which halves the work of every level at least.

use rayon::prelude::*;

/// One bin's sums.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Bin {
    pub(crate) g: f64,
    pub(crate) h: f64,
    pub(crate) n: u32,
}

impl Bin {
    pub(crate) fn add(self, o: Bin) -> Bin {
        Bin { g: self.g + o.g, h: self.h + o.h, n: self.n + o.n }
    }
    pub(crate) fn sub(self, o: Bin) -> Bin {
        Bin { g: self.g - o.g, h: self.h - o.h, n: self.n - o.n }
    }
}

/// Where each feature's bins sit in a flat histogram.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    /// `offsets[f]..offsets[f + 1]` are feature `f`'s bins (its missing bin last).
    pub(crate) offsets: Vec<usize>,
}

impl Layout {
    pub(crate) fn new(bins_per_feature: impl Iterator<Item = usize>) -> Layout {
        let mut offsets = vec![0];
        for n in bins_per_feature {
            offsets.push(offsets.last().copied().unwrap_or(0) + n);
        }
        Layout { offsets }
    }
    pub(crate) fn total(&self) -> usize {
        self.offsets.last().copied().unwrap_or(0)
    }
    fn slices<'a>(&self, hist: &'a mut [Bin]) -> Vec<&'a mut [Bin]> {
        let mut out = Vec::with_capacity(self.offsets.len() - 1);
        let mut rest = hist;
        for w in self.offsets.windows(2) {
            let (head, tail) = rest.split_at_mut(w[1] - w[0]);
            out.push(head);
            rest = tail;
        }
        out
    }
}

/// Builds the histogram of the rows `rows` whose gradients and hessians, in the same order,
/// are `g` and `h` (`None`: every row, in order, and `g` and `h` are indexed by row), over
/// the features marked in `active` (the others stay zero). Gradients are `f32`, as
/// LightGBM's and scikit-learn's, which halves the bytes each pass reads; the sums are `f64`.
pub(crate) fn build(
    layout: &Layout,
    columns: &[Vec<u8>],
    active: &[bool],
    rows: Option<&[u32]>,
    g: &[f32],
    h: &[f32],
) -> Vec<Bin> {
    let mut hist = vec![Bin::default(); layout.total()];
    let slices = layout.slices(&mut hist);
    slices.into_par_iter().enumerate().for_each(|(f, slice)| {
        if !active[f] {
            return;
        }
        let column = &columns[f];
        // Summed into 256 slots a `u8` always indexes (no bounds check in the loop), then
        // copied out.
        let mut sums = [Bin::default(); 256];
        let mut add = |b: u8, gi: f32, hi: f32| {
            let b = &mut sums[b as usize];
            b.g += gi as f64;
            b.h += hi as f64;
            b.n += 1;
        };
        match rows {
            Some(rows) => {
                for ((r, gi), hi) in rows.iter().zip(g).zip(h) {
                    add(column[*r as usize], *gi, *hi);
                }
            }
            None => {
                for ((b, gi), hi) in column.iter().zip(g).zip(h) {
                    add(*b, *gi, *hi);
                }
            }
        }
        let n = slice.len();
        slice.copy_from_slice(&sums[..n]);
    });
    hist
}

/// `parent - child`, bin by bin: the sibling's histogram.
pub(crate) fn subtract(parent: &[Bin], child: &[Bin]) -> Vec<Bin> {
    parent.iter().zip(child).map(|(p, c)| p.sub(*c)).collect()
}

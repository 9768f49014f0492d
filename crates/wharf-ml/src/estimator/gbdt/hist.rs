//! Histograms: per feature and bin, the sums of the gradients, hessians and rows of a leaf.
//!
//! A leaf's histogram is built row by row from the row-major copy of the bins (LightGBM's
//! row-wise mode): a row's bins are a few adjacent bytes and its gradient and hessian are
//! read once for all its features, where a pass per feature would read them once per
//! feature and gather one byte per row from a column far away. Each feature's sums are still
//! taken over the leaf's rows in their (fixed) order, so they do not depend on how many
//! threads run them: the features are cut into blocks, each a pass over the rows, which run
//! in parallel on big leaves. Of two siblings only the smaller is built; the other is its
//! parent minus it (the subtraction trick), which halves the work of every level at least.

use rayon::prelude::*;

/// One bin's sums, as four `f64` lanes (the last unused) so that adding a row to a bin is one
/// 32-byte load, add and store: the row count is a lane of its own, exact in an `f64` (up to
/// 2^53 rows), rather than a second store per row.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[repr(C, align(32))]
pub(crate) struct Slot {
    pub(crate) g: f64,
    pub(crate) h: f64,
    pub(crate) n: f64,
    pad: f64,
}

impl Slot {
    fn sub(self, o: Slot) -> Slot {
        Slot { g: self.g - o.g, h: self.h - o.h, n: self.n - o.n, pad: 0.0 }
    }
    /// The sums as the split search reads them.
    pub(crate) fn bin(self) -> Bin {
        Bin { g: self.g, h: self.h, n: self.n as u32 }
    }
}

/// One bin's sums, or a side's of a split.
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
}

/// The bins row-major: row `r`'s bins are `bins[r * width..(r + 1) * width]`, each below
/// its feature's slot count in the layout (checked once, when made: a bin past its slots
/// is an error there rather than a panic while adding rows).
pub(crate) struct RowBins<'a> {
    bins: &'a [u8],
    /// The layout the bins were checked against, which histograms of these bins use.
    layout: &'a Layout,
    width: usize,
}

impl<'a> RowBins<'a> {
    /// `None` when `bins` is not whole rows of `layout`'s features, or a bin is past its
    /// feature's slots.
    pub(crate) fn new(bins: &'a [u8], layout: &'a Layout) -> Option<RowBins<'a>> {
        let width = layout.offsets.len() - 1;
        let slots: Vec<usize> = layout.offsets.windows(2).map(|w| w[1] - w[0]).collect();
        let whole = width > 0 && bins.len().is_multiple_of(width);
        let inside = || bins.chunks_exact(width).all(|row| row.iter().zip(&slots).all(|(b, s)| (*b as usize) < *s));
        (whole && inside()).then_some(RowBins { bins, layout, width })
    }
}

/// Row-feature additions below which a histogram is built on the calling thread: a task
/// costs more than it saves on a small leaf.
const PARALLEL_WORK: usize = 1 << 16;

/// Builds into `hist` (every slot overwritten) the histogram of the rows `rows` (`None`:
/// every row, in order), whose gradient and hessian are `gh[r]`, over the features marked in
/// `active` (the others stay zero). Gradients are `f32`, as LightGBM's and scikit-learn's,
/// which halves the bytes each pass reads; the sums are `f64`.
pub(crate) fn build(data: &RowBins<'_>, active: &[bool], rows: Option<&[u32]>, gh: &[[f32; 2]], hist: &mut Vec<Slot>) {
    let layout = data.layout;
    hist.clear();
    hist.resize(layout.total(), Slot::default());
    let n_rows = rows.map_or(gh.len(), <[u32]>::len);
    let work = n_rows * active.iter().filter(|a| **a).count();
    let threads = rayon::current_num_threads();
    let parallel = threads > 1 && work >= PARALLEL_WORK;
    // Contiguous blocks of features whose slots fit in the first-level cache, each a pass
    // over the rows: the whole histogram does not fit (160 KB on the peers' table), and
    // additions that miss it cost more. In parallel, a multiple of the threads' count of
    // them, of about equal slots. Each feature's sums are the same whatever the cut.
    let per_block = if parallel {
        let n_blocks = layout.total().div_ceil(BLOCK_SLOTS).div_ceil(threads) * threads;
        layout.total().div_ceil(n_blocks.max(1))
    } else {
        BLOCK_SLOTS
    };
    let mut blocks = Vec::new();
    let mut rest = hist.as_mut_slice();
    let n_features = layout.offsets.len() - 1;
    let mut start = 0;
    while start < n_features {
        let mut end = start + 1;
        while end < n_features && layout.offsets[end + 1] - layout.offsets[start] <= per_block {
            end += 1;
        }
        let (head, tail) = rest.split_at_mut(layout.offsets[end] - layout.offsets[start]);
        let block = Block::new(layout, active, start..end);
        if !block.features.is_empty() {
            blocks.push((block, head));
        }
        rest = tail;
        start = end;
    }
    if parallel && blocks.len() > 1 {
        blocks.into_par_iter().for_each(|(block, region)| add_rows(data, rows, gh, &block, region));
    } else {
        for (block, region) in blocks {
            add_rows(data, rows, gh, &block, region);
        }
    }
}

/// Slots of a block of features: 24 KB, three quarters of the smallest first-level data
/// cache of current x86 cores.
const BLOCK_SLOTS: usize = 768;

/// The active features of a contiguous range, each with the offset of its bins in the
/// range's part of the histogram.
struct Block {
    features: Vec<(u32, u32)>,
}

impl Block {
    /// The block of `range` (features of `layout`), each feature with its offset in the
    /// range's slots.
    fn new(layout: &Layout, active: &[bool], range: std::ops::Range<usize>) -> Block {
        let base = layout.offsets[range.start];
        let features = range.filter(|f| active[*f]).map(|f| (f as u32, (layout.offsets[f] - base) as u32)).collect();
        Block { features }
    }
}

/// Adds `rows` to `region`, the histograms of the features of `block`.
fn add_rows(data: &RowBins<'_>, rows: Option<&[u32]>, gh: &[[f32; 2]], block: &Block, region: &mut [Slot]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx") {
        // SAFETY: the CPU has AVX (checked just above), the only requirement of a
        // `#[target_feature(enable = "avx")]` function.
        unsafe { add_rows_avx(data, rows, gh, block, region) };
        return;
    }
    add_rows_generic(data, rows, gh, block, region);
}

/// [`add_rows_generic`] compiled with AVX, where a slot's four lanes are added by one
/// instruction rather than two: the histograms' share of a profile fell by about a quarter
/// (relative to the partition's) when the additions got it.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
fn add_rows_avx(data: &RowBins<'_>, rows: Option<&[u32]>, gh: &[[f32; 2]], block: &Block, region: &mut [Slot]) {
    add_rows_generic(data, rows, gh, block, region);
}

#[inline(always)]
fn add_rows_generic(data: &RowBins<'_>, rows: Option<&[u32]>, gh: &[[f32; 2]], block: &Block, region: &mut [Slot]) {
    match rows {
        Some(rows) => {
            for r in rows {
                add_row(data, *r as usize, gh, block, region);
            }
        }
        None => {
            for r in 0..gh.len() {
                add_row(data, r, gh, block, region);
            }
        }
    }
}

/// Adds row `r` to the histograms of `block`'s features. A function rather than a closure,
/// so it is inlined into its AVX caller and compiled with AVX too.
#[inline(always)]
fn add_row(data: &RowBins<'_>, r: usize, gh: &[[f32; 2]], block: &Block, region: &mut [Slot]) {
    let [g, h] = gh[r];
    let (g, h) = (g as f64, h as f64);
    let row = &data.bins[r * data.width..(r + 1) * data.width];
    for (f, offset) in &block.features {
        let s = &mut region[*offset as usize + row[*f as usize] as usize];
        s.g += g;
        s.h += h;
        s.n += 1.0;
        s.pad += 0.0;
    }
}

/// `parent - child`, bin by bin, in place: the parent's histogram becomes its other child's.
pub(crate) fn subtract(parent: &mut [Slot], child: &[Slot]) {
    for (p, c) in parent.iter_mut().zip(child) {
        *p = p.sub(*c);
    }
}

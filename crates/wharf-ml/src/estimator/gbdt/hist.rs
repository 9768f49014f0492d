//! Histograms: per feature and bin, the sums of the gradients, hessians and rows of a leaf.
//!
//! A leaf's histogram is built a feature at a time, down the feature's column of bins (one
//! byte a row, so a column of 100,000 rows sits in the second-level cache while the leaf's
//! rows are gathered from it). With quantized gradients (the default) each bin's sums are one
//! packed `u64` ([`quantize`]) and four copies of a feature's 256 bins take every fourth row
//! each, so an addition seldom waits for the previous one to the same bin; a leaf of at most
//! [`CHUNK_ROWS`] rows keeps its sums packed ([`Hist::Packed`]), which the subtraction and the
//! split search read as they are. Exact gradients are added to one `f64` copy, in the rows'
//! order. Either way each feature's sums are taken
//! over the leaf's rows in their (fixed) order, so they do not depend on how many threads
//! run them: the features are cut into blocks, which run in parallel on big leaves. Of two
//! siblings only the smaller is built; the other is its parent minus it (the subtraction
//! trick), which halves the work of every level at least.

use rayon::prelude::*;

use super::avx512::avx512;
use super::quantize::{self, CHUNK_ROWS};

/// One bin's `f64` sums, as four lanes (the last unused) so that adding a row to a bin is one
/// addition of four lanes: the row count is a lane of its own, exact in an `f64` (up to 2^53
/// rows), rather than a second store per row.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[repr(C, align(32))]
pub(crate) struct Slot {
    pub(crate) g: f64,
    pub(crate) h: f64,
    pub(crate) n: f64,
    pad: f64,
}

impl Slot {
    pub(crate) fn new(g: f64, h: f64, n: f64) -> Slot {
        Slot { g, h, n, pad: 0.0 }
    }
    fn add(self, o: Slot) -> Slot {
        Slot { g: self.g + o.g, h: self.h + o.h, n: self.n + o.n, pad: 0.0 }
    }
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

/// The bins column by column: feature `f`'s bin of row `r` is `columns[f][r]`, below the
/// feature's slot count in the layout (checked once, when made: a bin past its slots is an
/// error there rather than a panic while adding rows).
pub(crate) struct Columns<'a> {
    columns: &'a [Vec<u8>],
    /// The layout the bins were checked against, which histograms of these bins use.
    layout: &'a Layout,
}

impl<'a> Columns<'a> {
    /// `None` when `columns` are not one per feature of `layout`, all as long, or a bin is
    /// past its feature's slots.
    pub(crate) fn new(columns: &'a [Vec<u8>], layout: &'a Layout) -> Option<Columns<'a>> {
        let rows = columns.first().map_or(0, Vec::len);
        let fits = columns.len() == layout.offsets.len() - 1
            && columns.iter().enumerate().all(|(f, c)| {
                let slots = layout.offsets[f + 1] - layout.offsets[f];
                c.len() == rows && c.iter().all(|b| (*b as usize) < slots)
            });
        fits.then_some(Columns { columns, layout })
    }

    fn slots(&self, f: usize) -> usize {
        self.layout.offsets[f + 1] - self.layout.offsets[f]
    }
}

/// Row-feature additions below which a histogram is built on the calling thread: a task
/// costs more than it saves on a small leaf.
const PARALLEL_WORK: usize = 1 << 16;

/// Each row's gradient and hessian, as histograms add them.
#[derive(Clone, Copy)]
pub(crate) enum Grad<'a> {
    /// `f32` gradients and hessians, as LightGBM's and scikit-learn's, which halves the
    /// bytes each pass reads; the sums are `f64`.
    Exact(&'a [[f32; 2]]),
    /// Packed quantized values ([`quantize`]), summed as integers.
    Quantized(&'a [u64]),
}

impl Grad<'_> {
    fn len(&self) -> usize {
        match self {
            Grad::Exact(gh) => gh.len(),
            Grad::Quantized(q) => q.len(),
        }
    }
}

/// A leaf's histogram.
#[derive(Debug)]
pub(crate) enum Hist {
    /// Packed quantized sums ([`quantize`]), one `u64` a bin: a leaf of at most
    /// [`CHUNK_ROWS`] rows, whose fields cannot overflow. Subtracting and searching read these
    /// directly, a quarter of the bytes of [`Slot`]s.
    Packed(Vec<u64>),
    /// `f64` sums: exact gradients, or the quantized sums of a bigger leaf.
    Wide(Vec<Slot>),
}

impl Hist {
    /// The sums of feature `f`'s bins, every row of the leaf (each row is in one bin).
    pub(crate) fn total(&self, layout: &Layout, f: usize) -> Bin {
        let range = layout.offsets[f]..layout.offsets[f + 1];
        match self {
            Hist::Wide(w) => w[range].iter().fold(Bin::default(), |a, b| a.add(b.bin())),
            Hist::Packed(p) => quantize::unpack(p[range].iter().sum()).bin(),
        }
    }

    /// The bins of `range` as the split search reads them.
    pub(crate) fn slots(&self, range: std::ops::Range<usize>) -> Vec<Slot> {
        match self {
            Hist::Wide(w) => w[range].to_vec(),
            Hist::Packed(p) => p[range].iter().map(|s| quantize::unpack(*s)).collect(),
        }
    }
}

/// Histogram buffers no leaf holds, kept from leaf to leaf and tree to tree.
#[derive(Default)]
pub(crate) struct Buffers {
    packed: Vec<Vec<u64>>,
    wide: Vec<Vec<Slot>>,
}

impl Buffers {
    pub(crate) fn give(&mut self, hist: Hist) {
        match hist {
            Hist::Packed(p) => self.packed.push(p),
            Hist::Wide(w) => self.wide.push(w),
        }
    }
}

/// The histogram of the rows `rows` (`None`: every row, in order), whose gradients and
/// hessians are `grad` (indexed by row), over the features marked in `active` (the others'
/// slots are zero), in a buffer from `buffers`.
pub(crate) fn build(
    data: &Columns<'_>,
    active: &[bool],
    rows: Option<&[u32]>,
    grad: Grad<'_>,
    buffers: &mut Buffers,
) -> Hist {
    let layout = data.layout;
    let n_rows = rows.map_or(grad.len(), <[u32]>::len);
    let work = n_rows * active.iter().filter(|a| **a).count();
    let parallel = rayon::current_num_threads() > 1 && work >= PARALLEL_WORK;
    match grad {
        Grad::Quantized(q) => {
            // A leaf's packed gradients side by side, gathered once for all its features
            // (every block reads them): `q[i]` is the `i`-th row's from here on.
            let gathered: Vec<u64>;
            let q = match rows {
                Some(rows) => {
                    gathered = rows.iter().map(|r| q[*r as usize]).collect();
                    gathered.as_slice()
                }
                None => q,
            };
            if n_rows <= CHUNK_ROWS {
                let mut hist = buffers.packed.pop().unwrap_or_default();
                hist.resize(layout.total(), 0);
                in_blocks(layout, active, parallel, &mut hist, |block, region| {
                    region.fill(0);
                    let rows = rows.map_or(Rows::From(0), Rows::Some);
                    add_packed(data, rows, q, &block, region, &mut Copies::new());
                });
                Hist::Packed(hist)
            } else {
                let mut hist = buffers.wide.pop().unwrap_or_default();
                hist.resize(layout.total(), Slot::default());
                in_blocks(layout, active, parallel, &mut hist, |block, region| {
                    add_rows_quantized(data, rows, q, &block, region)
                });
                Hist::Wide(hist)
            }
        }
        Grad::Exact(gh) => {
            let mut hist = buffers.wide.pop().unwrap_or_default();
            hist.resize(layout.total(), Slot::default());
            in_blocks(layout, active, parallel, &mut hist, |block, region| {
                region.fill(Slot::default());
                add_rows(data, rows, gh, &block, region);
            });
            Hist::Wide(hist)
        }
    }
}

/// Runs `add` on contiguous blocks of features (each with its part of `hist`) whose slots
/// fit in the first-level cache, each a pass over the rows: the whole histogram need not fit,
/// and additions that miss it cost more. In parallel, a multiple of the threads' count of
/// them, of about equal slots. Each feature's sums are the same whatever the cut. A block of
/// inactive features only is zeroed.
fn in_blocks<T: Copy + Default + Send>(
    layout: &Layout,
    active: &[bool],
    parallel: bool,
    hist: &mut [T],
    add: impl Fn(Block, &mut [T]) + Sync,
) {
    let fit = BLOCK_BYTES / std::mem::size_of::<T>();
    let threads = rayon::current_num_threads();
    let per_block = if parallel {
        let n_blocks = layout.total().div_ceil(fit).div_ceil(threads) * threads;
        layout.total().div_ceil(n_blocks.max(1))
    } else {
        fit
    };
    let mut blocks = Vec::new();
    let mut rest = hist;
    let n_features = layout.offsets.len() - 1;
    let mut start = 0;
    while start < n_features {
        let mut end = start + 1;
        while end < n_features && layout.offsets[end + 1] - layout.offsets[start] <= per_block {
            end += 1;
        }
        let (head, tail) = rest.split_at_mut(layout.offsets[end] - layout.offsets[start]);
        let block = Block::new(layout, active, start..end);
        if block.features.is_empty() {
            head.fill(T::default());
        } else {
            blocks.push((block, head));
        }
        rest = tail;
        start = end;
    }
    if parallel && blocks.len() > 1 {
        blocks.into_par_iter().for_each(|(block, region)| add(block, region));
    } else {
        blocks.into_iter().for_each(|(block, region)| add(block, region));
    }
}

/// Bytes of histogram a pass over the rows adds to: three quarters of the smallest
/// first-level data cache of current x86 cores (32 KB).
const BLOCK_BYTES: usize = 24 * 1024;

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

/// Adds `rows` to `region`, the histograms of the features of `block`, from exact
/// gradients: one `f64` copy, each bin's sums in the rows' order.
fn add_rows(data: &Columns<'_>, rows: Option<&[u32]>, gh: &[[f32; 2]], block: &Block, region: &mut [Slot]) {
    for (f, offset) in &block.features {
        let (f, offset) = (*f as usize, *offset as usize);
        let out = &mut region[offset..offset + data.slots(f)];
        let column = &data.columns[f];
        let mut add = |b: u8, [g, h]: [f32; 2]| {
            if let Some(s) = out.get_mut(b as usize) {
                *s = s.add(Slot::new(f64::from(g), f64::from(h), 1.0));
            }
        };
        match rows {
            Some(rows) => rows.iter().for_each(|r| add(column[*r as usize], gh[*r as usize])),
            None => column.iter().zip(gh).for_each(|(b, gh)| add(*b, *gh)),
        }
    }
}

/// Adds `rows` to `region`, the histograms of the features of `block`, from packed
/// quantized gradients of more rows than a packed sum holds: a chunk of [`CHUNK_ROWS`] rows
/// at a time into packed sums, each chunk's moved into `region` before a field could
/// overflow.
///
/// `q[i]` is the packed gradient of the `i`-th row (of `rows`, or of the table).
fn add_rows_quantized(data: &Columns<'_>, rows: Option<&[u32]>, q: &[u64], block: &Block, region: &mut [Slot]) {
    let mut sums = vec![0u64; region.len()];
    let mut copies = Copies::new();
    let n_rows = rows.map_or(q.len(), <[u32]>::len);
    if n_rows == 0 {
        region.fill(Slot::default());
    }
    for start in (0..n_rows).step_by(CHUNK_ROWS) {
        let end = n_rows.min(start + CHUNK_ROWS);
        sums.fill(0);
        match rows {
            Some(rows) => {
                add_packed(data, Rows::Some(&rows[start..end]), &q[start..end], block, &mut sums, &mut copies)
            }
            None => add_packed(data, Rows::From(start), &q[start..end], block, &mut sums, &mut copies),
        }
        unpack_into(&sums, region, start == 0);
    }
}

/// Which rows [`add_packed`] adds.
#[derive(Clone, Copy)]
enum Rows<'a> {
    /// These rows.
    Some(&'a [u32]),
    /// The rows from this one on, as many as the packed gradients given.
    From(usize),
}

/// Adds `rows` to `sums`, the packed histograms of the features of `block`: at most
/// [`CHUNK_ROWS`] rows.
fn add_packed(data: &Columns<'_>, rows: Rows<'_>, q: &[u64], block: &Block, sums: &mut [u64], copies: &mut Copies) {
    // `q` holds the rows' packed gradients, in the rows' order.
    let (rows, first) = match rows {
        Rows::Some(rows) => (Some(rows), 0),
        Rows::From(first) => (None, first),
    };
    for (f, offset) in &block.features {
        let (f, offset) = (*f as usize, *offset as usize);
        let out = &mut sums[offset..offset + data.slots(f)];
        let column: &[u8] = &data.columns[f];
        match rows {
            // A few rows are added where they belong: the copies' setting up and merging
            // would cost more than they save.
            Some(rows) if rows.len() < FEW_ROWS => {
                for (r, g) in rows.iter().zip(q) {
                    if let Some(s) = out.get_mut(column[*r as usize] as usize) {
                        *s += g;
                    }
                }
            }
            Some(rows) => copies.add_rows(column, rows, q, out),
            None => copies.add(&column[first..first + q.len()], q, out),
        }
    }
}

/// Rows below which a leaf's histogram is added without copies.
const FEW_ROWS: usize = 1024;

/// Four copies of a feature's histogram, each taking every fourth row, so an addition seldom
/// waits for the one before it to the same bin; a `u8` bin indexes a copy of 256 slots
/// without a bounds check. Zero between features: merging takes the sums out.
struct Copies(Box<[[u64; 256]; 4]>);

impl Copies {
    fn new() -> Copies {
        Copies(Box::new([[0; 256]; 4]))
    }

    /// Adds each row's packed gradient `q` to the sums `out` of its bin, `bins[i]` for the
    /// `i`-th: one feature's histogram over every row of a chunk.
    fn add(&mut self, bins: &[u8], q: &[u64], out: &mut [u64]) {
        let copies = &mut *self.0;
        let (bs, rest_bins) = bins.as_chunks::<4>();
        let (gs, rest) = q.as_chunks::<4>();
        for (b, g) in bs.iter().zip(gs) {
            for k in 0..4 {
                copies[k][b[k] as usize] += g[k];
            }
        }
        for (b, g) in rest_bins.iter().zip(rest) {
            copies[0][*b as usize] += g;
        }
        self.merge(out);
    }

    /// [`add`](Self::add) over the rows `rows` of `column` (`q` is theirs, in the same order).
    fn add_rows(&mut self, column: &[u8], rows: &[u32], q: &[u64], out: &mut [u64]) {
        let copies = &mut *self.0;
        let (rs, rest_rows) = rows.as_chunks::<4>();
        let (gs, rest) = q.as_chunks::<4>();
        for (r, g) in rs.iter().zip(gs) {
            for k in 0..4 {
                copies[k][column[r[k] as usize] as usize] += g[k];
            }
        }
        for (r, g) in rest_rows.iter().zip(rest) {
            copies[0][column[*r as usize] as usize] += g;
        }
        self.merge(out);
    }

    /// Adds the copies' sums to `out`, a feature's slots, and leaves the copies zero.
    fn merge(&mut self, out: &mut [u64]) {
        let [a, b, c, d] = &mut *self.0;
        for (i, o) in out.iter_mut().enumerate().take(256) {
            *o += std::mem::take(&mut a[i])
                + std::mem::take(&mut b[i])
                + std::mem::take(&mut c[i])
                + std::mem::take(&mut d[i]);
        }
    }
}

avx512! {
    /// The packed sums `sums` as the split search reads them, written over `region`
    /// (`first`) or added to it; AVX-512 converts eight integers to `f64` at a time (integers
    /// below 2^53 convert exactly either way).
    fn unpack_into(sums: &[u64], region: &mut [Slot], first: bool) = unpack_into_generic;
}

#[inline(always)]
fn unpack_into_generic(sums: &[u64], region: &mut [Slot], first: bool) {
    if first {
        for (slot, sum) in region.iter_mut().zip(sums) {
            *slot = quantize::unpack(*sum);
        }
    } else {
        for (slot, sum) in region.iter_mut().zip(sums) {
            *slot = slot.add(quantize::unpack(*sum));
        }
    }
}

/// `parent - child`, bin by bin, in place: the parent's histogram becomes its other child's.
///
/// Packed sums subtract exactly, field by field (the child's rows are some of the parent's,
/// so no field borrows); a packed child is unpacked from a wide parent.
pub(crate) fn subtract(parent: Hist, child: &Hist, buffers: &mut Buffers) -> Hist {
    match (parent, child) {
        (Hist::Packed(mut p), Hist::Packed(c)) => {
            p.iter_mut().zip(c).for_each(|(p, c)| *p = p.wrapping_sub(*c));
            Hist::Packed(p)
        }
        (Hist::Wide(mut p), Hist::Wide(c)) => {
            p.iter_mut().zip(c).for_each(|(p, c)| *p = p.sub(*c));
            Hist::Wide(p)
        }
        (Hist::Wide(mut p), Hist::Packed(c)) => {
            p.iter_mut().zip(c).for_each(|(p, c)| *p = p.sub(quantize::unpack(*c)));
            Hist::Wide(p)
        }
        // A packed parent has at most a chunk of rows, so its child is packed too; were it
        // not, the parent is unpacked first.
        (Hist::Packed(p), Hist::Wide(c)) => {
            let mut wide = buffers.wide.pop().unwrap_or_default();
            wide.clear();
            wide.extend(p.iter().zip(c).map(|(p, c)| quantize::unpack(*p).sub(*c)));
            buffers.packed.push(p);
            Hist::Wide(wide)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::estimator::gbdt::quantize::{quantize, Noise};
    use rand::{Rng, SeedableRng};
    use rand_xoshiro::Xoshiro256PlusPlus;

    /// A table of `rows` rows over features of 256, 3 and 40 slots, with gradients.
    fn table(rows: usize) -> (Vec<Vec<u8>>, Layout, Vec<[f32; 2]>) {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(11);
        let slots = [256usize, 3, 40];
        let columns = slots.iter().map(|s| (0..rows).map(|_| rng.gen_range(0..*s) as u8).collect()).collect();
        let gh = (0..rows).map(|_| [rng.gen_range(-1.0f32..1.0), rng.gen_range(0.0f32..0.25)]).collect();
        (columns, Layout::new(slots.into_iter()), gh)
    }

    /// Each feature's sums, added one row at a time in the rows' order.
    fn plain(columns: &[Vec<u8>], layout: &Layout, rows: &[u32], each: impl Fn(usize) -> Slot) -> Vec<Slot> {
        let mut hist = vec![Slot::default(); layout.total()];
        for (f, column) in columns.iter().enumerate() {
            for r in rows {
                let s = &mut hist[layout.offsets[f] + column[*r as usize] as usize];
                *s = s.add(each(*r as usize));
            }
        }
        hist
    }

    #[test]
    fn histograms_are_the_plain_sums_across_chunks_and_threads() {
        // More rows than a chunk, every row and a scattered subset of them.
        let n = CHUNK_ROWS + 5_003;
        let (columns, layout, gh) = table(n);
        let data = Columns::new(&columns, &layout).unwrap();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
        let mut packed = Vec::new();
        quantize(&gh, &Noise::new(&mut rng), 9, &mut packed);
        let all: Vec<u32> = (0..n as u32).collect();
        let some: Vec<u32> = (0..n as u32).filter(|r| r % 3 != 1).collect();
        // Fewer rows than the copies are used for.
        let few: Vec<u32> = (0..n as u32).step_by(131).collect();
        assert!(few.len() < FEW_ROWS);
        let active = [true, true, true];
        for threads in [1, 2] {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            // Buffers left over from other leaves, of another size and contents.
            let mut buffers = Buffers { packed: vec![vec![7; 3]], wide: vec![vec![Slot::new(7.0, 7.0, 7.0); 3]] };
            for (rows, subset) in [(&all, None), (&some, Some(some.as_slice())), (&few, Some(few.as_slice()))] {
                let hist = pool.install(|| build(&data, &active, subset, Grad::Quantized(&packed), &mut buffers));
                // Packed up to a chunk of rows, wide above.
                assert_eq!(matches!(hist, Hist::Packed(_)), rows.len() <= CHUNK_ROWS);
                assert_eq!(
                    hist.slots(0..layout.total()),
                    plain(&columns, &layout, rows, |r| quantize::unpack(packed[r]))
                );
                buffers.give(hist);
                let hist = pool.install(|| build(&data, &active, subset, Grad::Exact(&gh), &mut buffers));
                let exact = |r: usize| Slot::new(f64::from(gh[r][0]), f64::from(gh[r][1]), 1.0);
                // Exact sums are the same bits: one copy, the rows' order.
                assert_eq!(hist.slots(0..layout.total()), plain(&columns, &layout, rows, exact));
                buffers.give(hist);
            }
        }
    }

    #[test]
    fn inactive_features_and_empty_leaves_are_zero() {
        let (columns, layout, gh) = table(500);
        let data = Columns::new(&columns, &layout).unwrap();
        let mut packed = Vec::new();
        quantize(&gh, &Noise::new(&mut Xoshiro256PlusPlus::seed_from_u64(1)), 0, &mut packed);
        for grad in [Grad::Quantized(&packed), Grad::Exact(&gh)] {
            // Buffers left over from another leaf.
            let mut buffers = Buffers {
                packed: vec![vec![1; layout.total()]],
                wide: vec![vec![Slot::new(1.0, 2.0, 3.0); layout.total()]],
            };
            let hist = build(&data, &[true, false, true], None, grad, &mut buffers).slots(0..layout.total());
            let middle = &hist[layout.offsets[1]..layout.offsets[2]];
            assert!(middle.iter().all(|s| *s == Slot::default()));
            assert_eq!(hist[..256].iter().map(|s| s.n).sum::<f64>(), 500.0);
            let hist = build(&data, &[true, true, true], Some(&[]), grad, &mut buffers).slots(0..layout.total());
            assert!(hist.iter().all(|s| *s == Slot::default()));
        }
    }

    #[test]
    fn a_parent_minus_a_child_is_the_other_child_in_every_form() {
        let n = CHUNK_ROWS + 2_000;
        let (columns, layout, gh) = table(n);
        let data = Columns::new(&columns, &layout).unwrap();
        let mut packed = Vec::new();
        quantize(&gh, &Noise::new(&mut Xoshiro256PlusPlus::seed_from_u64(4)), 0, &mut packed);
        let active = [true, true, true];
        let all: Vec<u32> = (0..n as u32).collect();
        let mut buffers = Buffers::default();
        // A wide parent (more rows than a chunk) and a packed one, each less a packed child.
        for parent_rows in [all.clone(), all[..3_000].to_vec()] {
            let (small, other): (Vec<u32>, Vec<u32>) = parent_rows.iter().partition(|r| *r % 4 == 1);
            let parent = build(&data, &active, Some(&parent_rows), Grad::Quantized(&packed), &mut buffers);
            let child = build(&data, &active, Some(&small), Grad::Quantized(&packed), &mut buffers);
            let rest = subtract(parent, &child, &mut buffers);
            let want = plain(&columns, &layout, &other, |r| quantize::unpack(packed[r]));
            assert_eq!(rest.slots(0..layout.total()), want);
        }
        // A packed parent less a wide child (which the grower never makes) still subtracts.
        let parent = build(&data, &active, Some(&all[..100]), Grad::Quantized(&packed), &mut buffers);
        let child = Hist::Wide(plain(&columns, &layout, &all[..40], |r| quantize::unpack(packed[r])));
        let rest = subtract(parent, &child, &mut buffers);
        assert_eq!(
            rest.slots(0..layout.total()),
            plain(&columns, &layout, &all[40..100], |r| quantize::unpack(packed[r]))
        );
    }

    #[test]
    fn bins_past_their_slots_are_refused() {
        let layout = Layout::new([4usize, 2].into_iter());
        assert!(Columns::new(&[vec![3, 0], vec![1, 1]], &layout).is_some());
        assert!(Columns::new(&[vec![3, 0], vec![1, 2]], &layout).is_none());
        assert!(Columns::new(&[vec![3, 0], vec![1]], &layout).is_none());
        assert!(Columns::new(&[vec![3, 0]], &layout).is_none());
    }
}

//! Quantized gradients (LightGBM's `use_quantized_grad`): each round, every row's gradient
//! becomes an integer in `-127..=127` and its hessian one in `0..=127`, by stochastic
//! rounding (rounded up with the probability of the fraction, so a leaf's sums stay unbiased
//! however small its rows' gradients are), and both are packed with a count of one into a
//! single `u64`. Adding a row to a bin is then one integer addition of eight bytes rather
//! than a 32-byte floating-point one: a histogram takes a quarter of the bytes, and its sums
//! are exact integers, so the order of additions cannot change them.
//!
//! The fields of a packed sum stay apart while at most [`CHUNK_ROWS`] rows are added: the
//! count takes 17 bits, the hessians 23 and the gradients (each offset by 127, so never
//! negative and never borrowing from the field below) the top 24. A leaf of at most that many
//! rows keeps its histogram packed; a bigger leaf's is added a chunk at a time, each chunk's
//! sums moved into `f64` ones.
//!
//! The draws come from a table of 16,384, read from an offset that moves on with every tree:
//! within a tree, rows 16,384 apart share a draw, which keeps every sum unbiased.
//!
//! Only the choice of splits sees the quantized values: a leaf's value is the Newton step of
//! its rows' exact gradients (LightGBM's `quant_train_renew_leaf`).

use rayon::prelude::*;

use super::avx512::avx512;
use super::hist::Slot;

/// Most rows whose packed sums cannot overflow a field.
pub(crate) const CHUNK_ROWS: usize = 1 << 16;

/// Largest quantized gradient's magnitude, and largest quantized hessian.
const LEVELS: f64 = 127.0;
const G_OFFSET: u64 = 127;
const N_BITS: u32 = 17;
const H_BITS: u32 = 23;
const N_MASK: u64 = (1 << N_BITS) - 1;
const H_MASK: u64 = (1 << H_BITS) - 1;

/// What one quantized unit of gradient and of hessian is worth.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Units {
    pub(crate) g: f64,
    pub(crate) h: f64,
}

impl Units {
    /// Exact gradients: the histograms hold the values themselves.
    pub(crate) const EXACT: Units = Units { g: 1.0, h: 1.0 };

    /// A gain computed on quantized sums, in the units of exact ones.
    pub(crate) fn gain(self, quantized: f64) -> f64 {
        quantized * (self.g * self.g / self.h)
    }
}

/// Uniform draws in `[0, 1)` for the stochastic rounding, made once per fit from its seed and
/// read at a per-round offset: a table lookup costs a row far less than a generator would,
/// and the draws, like everything else, depend on the seed only.
pub(crate) struct Noise {
    table: Vec<f32>,
}

const NOISE_LEN: usize = 1 << 14;

impl Noise {
    pub(crate) fn new(rng: &mut impl rand::Rng) -> Noise {
        Noise { table: (0..NOISE_LEN).map(|_| rng.gen::<f32>()).collect() }
    }
}

/// Quantizes each row's gradient and hessian of `gh` into `packed`, with the draws of `noise`
/// taken from `offset` on; returns what a unit is worth.
pub(crate) fn quantize(gh: &[[f32; 2]], noise: &Noise, offset: usize, packed: &mut Vec<u64>) -> Units {
    // The largest values, chunks in parallel (a largest value is the same in any order).
    let (g_max, h_max) = gh
        .par_chunks(PARALLEL_ROWS)
        .map(|c| c.iter().fold((0.0f32, 0.0f32), |(g, h), [rg, rh]| (g.max(rg.abs()), h.max(*rh))))
        .reduce(|| (0.0, 0.0), |(g, h), (cg, ch)| (g.max(cg), h.max(ch)));
    // A zero (or non-finite) largest value leaves a unit of one: every row quantizes to zero.
    let unit = |max: f32| if max > 0.0 && max.is_finite() { f64::from(max) / LEVELS } else { 1.0 };
    let units = Units { g: unit(g_max), h: unit(h_max) };
    let scales = [(1.0 / units.g) as f32, (1.0 / units.h) as f32];
    packed.clear();
    packed.resize(gh.len(), 0);
    // Chunks of rows in parallel, each row with its own draws: the same values however the
    // rows are cut.
    packed.par_chunks_mut(PARALLEL_ROWS).zip(gh.par_chunks(PARALLEL_ROWS)).enumerate().for_each(|(c, (out, gh))| {
        // Runs of rows whose draws are side by side in the table (the offset wraps around
        // it), so the loop reads both as slices.
        let first = offset + c * PARALLEL_ROWS;
        let mut start = 0;
        while start < gh.len() {
            let at = (first + start) % NOISE_LEN;
            let hat = (at + NOISE_LEN / 2) % NOISE_LEN;
            let len = (gh.len() - start).min(NOISE_LEN - at).min(NOISE_LEN - hat);
            let end = start + len;
            let draws = [&noise.table[at..at + len], &noise.table[hat..hat + len]];
            pack(&gh[start..end], draws, scales, &mut out[start..end]);
            start = end;
        }
    });
    units
}

/// Rows per task of the quantization's passes.
const PARALLEL_ROWS: usize = 16_384;

avx512! {
    /// [`pack_generic`], sixteen rows to an instruction with AVX-512.
    fn pack(gh: &[[f32; 2]], draws: [&[f32]; 2], scales: [f32; 2], out: &mut [u64]) = pack_generic;
}

/// Each row's gradient and hessian scaled, plus its draw, floored, as a packed value: in
/// `f32` (a quantized value needs 8 bits; `f32` keeps 24) and `i32`, which vectorize.
#[inline(always)]
fn pack_generic(gh: &[[f32; 2]], [gu, hu]: [&[f32]; 2], [gs, hs]: [f32; 2], out: &mut [u64]) {
    let levels = LEVELS as f32;
    for (((o, [g, h]), ug), uh) in out.iter_mut().zip(gh).zip(gu).zip(hu) {
        // Floors by truncation of a positive number: `x + u + 128` is in [1, 256) for any
        // `x` in [-127, 127]; the clamps catch what rounding put a hair outside, and NaN
        // (which converts to zero).
        let gq = (((g * gs + ug + levels + 1.0) as i32).clamp(1, 255) - 1) as u64;
        let hq = (((h * hs + uh + 1.0) as i32).clamp(1, 128) - 1) as u64;
        // `gq` (offset by 127) and `hq` are whole numbers in 0..=254 and 0..=127.
        *o = (gq << (N_BITS + H_BITS)) | (hq << N_BITS) | 1;
    }
}

/// A packed sum of at most [`CHUNK_ROWS`] rows as the split search reads it: the gradients'
/// and hessians' sums in quantized units, and the count.
#[inline(always)]
pub(crate) fn unpack(sum: u64) -> Slot {
    let n = sum & N_MASK;
    let h = (sum >> N_BITS) & H_MASK;
    let g = (sum >> (N_BITS + H_BITS)) as i64 - (G_OFFSET * n) as i64;
    Slot::new(g as f64, h as f64, n as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn the_fields_of_a_full_chunk_do_not_overflow() {
        // Every row at the extremes, summed over the most rows a chunk adds.
        for (g, h) in [(1.0f32, 1.0f32), (-1.0, 0.0), (1.0, 0.0), (-1.0, 1.0)] {
            let gh = vec![[g, h]; 4];
            let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(1);
            let mut packed = Vec::new();
            quantize(&gh, &Noise::new(&mut rng), 0, &mut packed);
            let sum = packed[0].wrapping_mul(CHUNK_ROWS as u64);
            let s = unpack(sum);
            let rows = CHUNK_ROWS as f64;
            assert_eq!((s.g, s.h, s.n), (g as f64 * LEVELS * rows, h as f64 * LEVELS * rows, rows));
        }
    }

    #[test]
    fn rounding_is_unbiased() {
        // A gradient a tenth of a unit, on many rows: the mean of its quantized values stays
        // near a tenth, where rounding to nearest would make every one of them zero.
        let mut gh = vec![[0.0123f32, 0.2]; 20_000];
        gh[0] = [1.0, 0.25];
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(7);
        let noise = Noise::new(&mut rng);
        let mut packed = Vec::new();
        let units = quantize(&gh, &noise, 3, &mut packed);
        let sum = packed[1..].iter().map(|p| unpack(*p)).fold(0.0, |a, s| a + s.g);
        let mean = sum * units.g / (gh.len() - 1) as f64;
        assert!((mean - 0.0123).abs() < 0.0123 * 0.05, "mean {mean}");
        let hsum = packed[1..].iter().map(|p| unpack(*p)).fold(0.0, |a, s| a + s.h);
        let hmean = hsum * units.h / (gh.len() - 1) as f64;
        assert!((hmean - 0.2).abs() < 0.2 * 0.01, "mean {hmean}");
    }

    #[test]
    fn every_row_takes_the_draws_at_its_offset_across_the_table_s_end() {
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(3);
        let noise = Noise::new(&mut rng);
        let gh: Vec<[f32; 2]> =
            (0..NOISE_LEN + 777).map(|r| [(r % 23) as f32 / 11.0 - 1.0, (r % 7) as f32 / 28.0]).collect();
        for offset in [0, 5, NOISE_LEN / 2 - 3, NOISE_LEN - 1, 3 * NOISE_LEN + 9] {
            let mut packed = Vec::new();
            let units = quantize(&gh, &noise, offset, &mut packed);
            let (gs, hs) = ((1.0 / units.g) as f32, (1.0 / units.h) as f32);
            for (r, [g, h]) in gh.iter().enumerate() {
                let ug = noise.table[(offset + r) % NOISE_LEN];
                let uh = noise.table[(offset + r + NOISE_LEN / 2) % NOISE_LEN];
                let s = unpack(packed[r]);
                // The arithmetic of `pack_generic`, row by row with the draws looked up.
                let gq = ((g * gs + ug + 128.0) as i32).clamp(1, 255) - 128;
                let hq = ((h * hs + uh + 1.0) as i32).clamp(1, 128) - 1;
                assert_eq!((s.g, s.h), (gq as f64, hq as f64), "row {r}, offset {offset}");
            }
        }
    }

    #[test]
    fn zero_and_non_finite_gradients_quantize_to_zero() {
        let gh = vec![[0.0f32, 0.0]; 10];
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(1);
        let mut packed = Vec::new();
        let units = quantize(&gh, &Noise::new(&mut rng), 0, &mut packed);
        assert_eq!(units, Units::EXACT);
        assert!(packed.iter().all(|p| unpack(*p) == Slot::new(0.0, 0.0, 1.0)));
    }
}

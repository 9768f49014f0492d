//! `exp` for the losses' gradients, in plain `f64` arithmetic: every round takes one per row
//! (and class), and the C library's is a call the compiler cannot vectorize. This one is
//! branch-free, so a loop of them is compiled to vector instructions, and it is made of
//! additions, multiplications and bit operations only (no fused multiply-add), so it gives the
//! same bits on every machine and at every vector width — which the C library's need not
//! across versions.
//!
//! The method is the textbook one: `x = k ln 2 + r` with `|r| <= ln 2 / 2` (`ln 2` split in
//! two parts so that `r` is exact), `e^r` by its Taylor series to the 13th power (the first
//! term left out is below 2e-16 of the result), then `2^k` put in the exponent bits.

/// `ln 2` in two parts: the high one has trailing zero bits, so `k * LN2_HI` is exact for
/// the `k` used here.
/// The values are fdlibm's, by their bits.
const LN2_HI: f64 = f64::from_bits(0x3FE6_2E42_FEE0_0000);
const LN2_LO: f64 = f64::from_bits(0x3DEA_39EF_3579_3C76);
/// `1.5 * 2^52`: added to a number below `2^51` in magnitude, it rounds it to an integer,
/// which then sits in the low bits of the sum.
const ROUNDER: f64 = 6_755_399_441_055_744.0;

/// `e^x` within a few units in the last place, for `x` in `[-708, 709]`; inputs outside are
/// clamped to that range (their `e^x` is below `1e-307` or above `8e307`), NaN gives NaN.
#[inline(always)]
pub(crate) fn exp(x: f64) -> f64 {
    let x = x.clamp(-708.0, 709.0);
    let t = x * std::f64::consts::LOG2_E + ROUNDER;
    let k = t - ROUNDER;
    let r = (x - k * LN2_HI) - k * LN2_LO;
    // Taylor's series of e^r to r^13, by Horner's rule.
    let mut p = 1.0 / 6_227_020_800.0;
    for c in [
        1.0 / 479_001_600.0,
        1.0 / 39_916_800.0,
        1.0 / 3_628_800.0,
        1.0 / 362_880.0,
        1.0 / 40_320.0,
        1.0 / 5_040.0,
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
        1.0,
    ] {
        p = p * r + c;
    }
    // `k` is an integer in -1022..=1023: its bits are the low bits of `t`'s.
    let k_bits = t.to_bits().wrapping_sub(ROUNDER.to_bits());
    let scale = f64::from_bits(k_bits.wrapping_add(1023) << 52);
    p * scale
}

#[cfg(test)]
mod tests {
    use super::exp;

    #[test]
    fn agrees_with_the_standard_library() {
        let mut worst = 0.0f64;
        let mut x = -708.0f64;
        while x <= 709.0 {
            for d in [0.0, 1e-9, 0.3466, 0.5].into_iter().filter(|d| x + d <= 709.0) {
                let want = (x + d).exp();
                let got = exp(x + d);
                worst = worst.max(((got - want) / want).abs());
            }
            x += 0.0137;
        }
        assert!(worst < 1e-15, "largest relative error {worst:e}");
        for x in [0.0f64, -0.0, 1.0, -1.0, 1e-300, -1e-300] {
            assert!(((exp(x) - x.exp()) / x.exp()).abs() < 1e-15, "{x}");
        }
        assert_eq!(exp(0.0), 1.0);
    }

    #[test]
    fn the_ends_are_clamped_and_nan_stays_nan() {
        assert!(exp(-1e6) > 0.0 && exp(-1e6) < 1e-307);
        assert!(exp(f64::NEG_INFINITY) < 1e-307);
        assert!(exp(1e6).is_finite() && exp(1e6) > 8e307);
        assert!(exp(f64::NAN).is_nan());
    }
}

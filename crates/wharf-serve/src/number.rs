//! Reading one JSON number from a request body, correctly rounded, in one pass.
//!
//! A scoring body is mostly numbers, and Python writes them with 15 to 17 significant
//! digits. lexical-core read each in about 300 instructions, most of it the generality of
//! its format machinery: on a 1-row, 20-feature predict that was a sixth of the server's own
//! work. This reader handles the shape nearly every number has (at most 19 significant
//! digits, a decimal exponent within what is tabulated below) itself, with the two exact
//! methods every correct parser uses for it, and hands everything else to lexical-core:
//!
//! - Clinger's fast path: a mantissa below 2^53 times or over a power of ten up to 10^22 is
//!   one correctly rounded IEEE operation on two exact values;
//! - the Eisel–Lemire algorithm (Lemire, "Number Parsing at a Gigabyte per Second", 2021,
//!   as in Rust's `core::num::dec2flt::lemire` and fast_float), whose 128-bit products are
//!   exact for decimal exponents in −27..=55, so it never needs its fallback there.
//!
//! The result is the same bits as the standard library's parser; a unit test compares them
//! on hundreds of thousands of texts.

/// The bytes a JSON number can contain: a number followed by one of them was not read whole.
static NUMBER_BYTE: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = b'0';
    while b <= b'9' {
        table[b as usize] = true;
        b += 1;
    }
    table[b'-' as usize] = true;
    table[b'+' as usize] = true;
    table[b'.' as usize] = true;
    table[b'e' as usize] = true;
    table[b'E' as usize] = true;
    table
};

/// The JSON number (`-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`) at the start of
/// `bytes`, and its length; `None` when there is none, when more number characters follow
/// it (`01`, `1e5e5`), or when it is not a finite `f64` (`1e400`).
pub(crate) fn read(bytes: &[u8]) -> Option<(f64, usize)> {
    let (x, len) = match decimal(bytes)? {
        Decimal::Exact { x, len } => (x, len),
        Decimal::Other => lexical(bytes)?,
    };
    x.is_finite().then_some((x, len))
}

enum Decimal {
    Exact {
        x: f64,
        len: usize,
    },
    /// A valid number this reader leaves to lexical-core: more than 19 digits, or a decimal
    /// exponent outside the table.
    Other,
}

/// Reads the grammar and, for the common shape, the value.
fn decimal(bytes: &[u8]) -> Option<Decimal> {
    let digit = |at: usize| bytes.get(at).and_then(|b| b.checked_sub(b'0')).filter(|d| *d < 10);
    let negative = bytes.first() == Some(&b'-');
    let mut at = usize::from(negative);
    let first = at;
    let mut w: u64 = 0;
    match digit(at)? {
        0 => at += 1,
        _ => at = digits_into(bytes, at, &mut w),
    }
    let mut fraction = 0usize;
    if bytes.get(at) == Some(&b'.') {
        at += 1;
        let start = at;
        at = digits_into(bytes, at, &mut w);
        fraction = at - start;
        if fraction == 0 {
            return None;
        }
    }
    let digits = at - first - usize::from(fraction > 0);
    let mut exponent: i64 = 0;
    if let Some(b'e' | b'E') = bytes.get(at) {
        at += 1;
        let negative_exponent = match bytes.get(at) {
            Some(b'-') => {
                at += 1;
                true
            }
            Some(b'+') => {
                at += 1;
                false
            }
            _ => false,
        };
        let start = at;
        while let Some(d) = digit(at) {
            // Past any exponent a finite double can have; saturating keeps it bounded.
            exponent = (exponent * 10 + i64::from(d)).min(1_000_000);
            at += 1;
        }
        if at == start {
            return None;
        }
        if negative_exponent {
            exponent = -exponent;
        }
    }
    if bytes.get(at).is_some_and(|b| NUMBER_BYTE[usize::from(*b)]) {
        return None;
    }
    // 19 digits always fit a u64 (10^19 - 1 < 2^64), leading zeros included.
    if digits > 19 {
        return Some(Decimal::Other);
    }
    let q = exponent - fraction as i64;
    let magnitude = if w == 0 {
        0.0
    } else if w <= 1 << 53 && (-22..=22).contains(&q) {
        // Both operands are exact, so the one operation rounds correctly.
        let w = w as f64;
        let power = POW10[q.unsigned_abs() as usize];
        if q < 0 {
            w / power
        } else {
            w * power
        }
    } else if (MIN_Q..=MAX_Q).contains(&q) {
        eisel_lemire(q, w)
    } else {
        return Some(Decimal::Other);
    };
    Some(Decimal::Exact { x: if negative { -magnitude } else { magnitude }, len: at })
}

/// Appends the decimal digits from `at` to `w` (wrapping past 19 digits, which the caller
/// counts and refuses) and returns where they end. Eight digits at a time when eight bytes
/// are there (fast_float's SWAR method: one check that all eight are digits, three
/// multiplications), which is most of a 17-digit number.
fn digits_into(bytes: &[u8], mut at: usize, w: &mut u64) -> usize {
    while let Some(chunk) = bytes.get(at..at + 8) {
        let mut eight = [0u8; 8];
        eight.copy_from_slice(chunk);
        let v = u64::from_le_bytes(eight);
        let less = v.wrapping_sub(0x3030_3030_3030_3030);
        let more = v.wrapping_add(0x4646_4646_4646_4646);
        if (less | more) & 0x8080_8080_8080_8080 != 0 {
            break;
        }
        let v = less.wrapping_mul(10).wrapping_add(less >> 8);
        let v1 = (v & 0x0000_00FF_0000_00FF).wrapping_mul(0x000F_4240_0000_0064);
        let v2 = ((v >> 16) & 0x0000_00FF_0000_00FF).wrapping_mul(0x0000_2710_0000_0001);
        *w = w.wrapping_mul(100_000_000).wrapping_add(u64::from((v1.wrapping_add(v2) >> 32) as u32));
        at += 8;
    }
    while let Some(d) = bytes.get(at).map(|b| b.wrapping_sub(b'0')).filter(|d| *d < 10) {
        *w = w.wrapping_mul(10).wrapping_add(u64::from(d));
        at += 1;
    }
    at
}

/// The numbers this reader does not convert itself, with JSON's grammar.
fn lexical(bytes: &[u8]) -> Option<(f64, usize)> {
    const JSON: u128 = lexical_core::format::JSON;
    const OPTIONS: lexical_core::ParseFloatOptions = lexical_core::ParseFloatOptions::new();
    let (x, len) = lexical_core::parse_partial_with_options::<f64, JSON>(bytes, &OPTIONS).ok()?;
    (len > 0 && !bytes.get(len).is_some_and(|b| NUMBER_BYTE[usize::from(*b)])).then_some((x, len))
}

/// The powers of ten a double holds exactly.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20,
    1e21, 1e22,
];

/// The decimal exponents whose 128-bit power of five makes the Eisel–Lemire product exact
/// (its "safe exponent" range): no fallback is ever needed inside it.
const MIN_Q: i64 = -27;
const MAX_Q: i64 = 55;

/// 5^q for q in `MIN_Q..=MAX_Q`, as (high, low) 64-bit halves of a 128-bit number with its
/// top bit set: exact for q >= 0 (5^55 < 2^128), and floor(2^b / 5^-q) + 1 for q < 0, the
/// values fast_float's and Rust's tables hold. Computed at compile time by long division,
/// so no table of magic numbers is copied in.
static POW5: [(u64, u64); (MAX_Q - MIN_Q + 1) as usize] = {
    let mut table = [(0u64, 0u64); (MAX_Q - MIN_Q + 1) as usize];
    let mut q = MIN_Q;
    while q <= MAX_Q {
        let value: u128 = if q >= 0 {
            let p = 5u128.pow(q as u32);
            p << p.leading_zeros()
        } else {
            // d = 5^-q < 2^63 for q >= -27; 2^(z-1) < d < 2^z, so 2^(z+127) / d has 128 bits.
            let d = 5u128.pow((-q) as u32);
            let b = (128 - d.leading_zeros()) + 127;
            let mut quotient: u128 = 0;
            let mut remainder: u128 = 0;
            let mut i = b as i64;
            while i >= 0 {
                remainder = (remainder << 1) | (i == b as i64) as u128;
                if remainder >= d {
                    remainder -= d;
                    quotient |= 1u128 << i;
                }
                i -= 1;
            }
            quotient + 1
        };
        table[(q - MIN_Q) as usize] = ((value >> 64) as u64, value as u64);
        q += 1;
    }
    table
};

/// w × 10^q, correctly rounded, for `w > 0` and q in `MIN_Q..=MAX_Q` (the computation of
/// Rust's `core::num::dec2flt::lemire::compute_float` for `f64`, without the branches the
/// exponent range rules out).
fn eisel_lemire(q: i64, w: u64) -> f64 {
    const MANTISSA: i32 = 52;
    const MINIMUM_EXPONENT: i32 = -1023;
    const INFINITE_POWER: i32 = 0x7FF;
    let lz = w.leading_zeros() as i32;
    let w = w << lz;
    let (hi5, lo5) = POW5[(q - MIN_Q) as usize];
    let full = |a: u64, b: u64| {
        let r = u128::from(a) * u128::from(b);
        (r as u64, (r >> 64) as u64)
    };
    let (mut lo, mut hi) = full(w, hi5);
    let mask = u64::MAX >> (MANTISSA + 3);
    if hi & mask == mask {
        let (_, second_hi) = full(w, lo5);
        lo = lo.wrapping_add(second_hi);
        if second_hi > lo {
            hi += 1;
        }
    }
    let upperbit = (hi >> 63) as i32;
    let mut mantissa = hi >> (upperbit + 64 - MANTISSA - 3);
    // floor(log2(10^q)) + 63, as the reference computes it.
    let power = ((q as i32).wrapping_mul(152_170 + 65_536) >> 16) + 63;
    let mut power2 = power + upperbit - lz - MINIMUM_EXPONENT;
    if power2 <= 0 {
        // Subnormal: unreachable for q >= -27 with a non-zero w, kept for exactness.
        if -power2 + 1 >= 64 {
            return 0.0;
        }
        mantissa >>= -power2 + 1;
        mantissa += mantissa & 1;
        mantissa >>= 1;
        power2 = i32::from(mantissa >= (1u64 << MANTISSA));
        return f64::from_bits(mantissa | ((power2 as u64) << MANTISSA));
    }
    // A product exactly halfway between two doubles rounds to even.
    if lo <= 1 && (-4..=23).contains(&q) && mantissa & 3 == 1 && (mantissa << (upperbit + 64 - MANTISSA - 3)) == hi {
        mantissa &= !1u64;
    }
    mantissa += mantissa & 1;
    mantissa >>= 1;
    if mantissa >= (2u64 << MANTISSA) {
        mantissa = 1u64 << MANTISSA;
        power2 += 1;
    }
    mantissa &= !(1u64 << MANTISSA);
    if power2 >= INFINITE_POWER {
        return f64::INFINITY;
    }
    f64::from_bits(mantissa | ((power2 as u64) << MANTISSA))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Option<u64> {
        read(text.as_bytes()).map(|(x, len)| {
            assert_eq!(len, text.len(), "{text}");
            x.to_bits()
        })
    }

    fn standard(text: &str) -> Option<u64> {
        text.parse::<f64>().ok().filter(|x| x.is_finite()).map(f64::to_bits)
    }

    #[test]
    fn the_table_holds_the_known_powers() {
        // 5^-1 and 5^0 as fast_float and Rust's core tabulate them.
        assert_eq!(POW5[(-1 - MIN_Q) as usize], (0xcccc_cccc_cccc_cccc, 0xcccc_cccc_cccc_cccd));
        assert_eq!(POW5[(-MIN_Q) as usize], (0x8000_0000_0000_0000, 0));
        for (hi, _) in POW5 {
            assert!(hi >> 63 == 1, "every entry is normalised");
        }
    }

    /// The numbers a scoring body carries: Python's shortest round-trip forms, fixed and
    /// scientific, over the magnitudes features have, plus shortened and lengthened
    /// mantissas and exact halfway cases.
    #[test]
    fn common_numbers_read_to_the_standard_parsers_bits() {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut checked = 0;
        for _ in 0..60_000 {
            let scale = 10f64.powi((next() % 80) as i32 - 35);
            let x = ((next() >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * scale;
            let mut texts = vec![
                format!("{x:?}"),
                format!("{x:e}"),
                format!("{x:.3}"),
                format!("{:.1$e}", x, (next() % 20) as usize),
            ];
            // A double's exact midpoint to its successor: ties must round to even.
            let up = f64::from_bits(x.abs().to_bits() + 1);
            texts.push(format!("{:.25e}", (x.abs() + up) / 2.0));
            texts.push(format!("{}e{}", next() % 10_000_000_000_000_000_000, (next() % 90) as i64 - 40));
            for text in texts {
                assert_eq!(parsed(&text), standard(&text), "{text}");
                checked += 1;
            }
        }
        assert!(checked >= 360_000);
    }

    #[test]
    fn the_edges_of_each_method_agree_with_the_standard_parser() {
        let mut texts: Vec<String> = Vec::new();
        for q in -30..=60 {
            for w in ["1", "9007199254740992", "9007199254740993", "9999999999999999999", "4503599627370497", "5"] {
                texts.push(format!("{w}e{q}"));
                texts.push(format!("-{w}e{q}"));
            }
        }
        texts.extend(
            [
                "0",
                "-0",
                "0.0",
                "-0.0",
                "0e5",
                "0.000",
                "1e-400",
                "1e308",
                "1.7976931348623157e308",
                "2.2250738585072014e-308",
            ]
            .map(String::from),
        );
        texts.push("1".repeat(25));
        texts.push(format!("0.{}1", "0".repeat(30)));
        for text in &texts {
            assert_eq!(parsed(text), standard(text), "{text}");
        }
        assert_eq!(read(b"-0").map(|(x, _)| x.to_bits()), Some((-0.0f64).to_bits()));
    }

    #[test]
    fn digit_runs_of_every_length_and_position_are_read() {
        for len in 1..=19usize {
            for seed in 0..50u64 {
                let digits: String =
                    (0..len).map(|i| char::from(b'1' + ((seed * 7 + i as u64 * 3) % 9) as u8)).collect();
                for text in [
                    digits.clone(),
                    format!("{digits}.5"),
                    format!("0.{digits}"),
                    format!("{}.{}", &digits[..len / 2 + 1], &digits[len / 2 + 1..]).trim_end_matches('.').to_string(),
                ] {
                    for tail in ["", ",", "]", " 1", ":", "/", "}", "x"] {
                        let body = format!("{text}{tail}");
                        let read = read(body.as_bytes()).map(|(x, n)| (x.to_bits(), n));
                        assert_eq!(read, standard(&text).map(|bits| (bits, text.len())), "{body}");
                    }
                }
            }
        }
    }

    #[test]
    fn only_json_spellings_are_read() {
        for bad in
            ["", "-", "+1", ".5", "1.", "1.e5", "01", "-01", "1e", "1e+", "1-2", "1.2.3", "NaN", "inf", "-.5", "1e400"]
        {
            assert_eq!(read(bad.as_bytes()), None, "{bad}");
        }
        assert_eq!(read(b"12,"), Some((12.0, 2)));
        assert_eq!(read(b"-1.5e3]"), Some((-1500.0, 6)));
        assert_eq!(read(b"0 "), Some((0.0, 1)));
    }
}

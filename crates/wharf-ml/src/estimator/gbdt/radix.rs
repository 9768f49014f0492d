//! Sorting a training column's values for its bin edges: a least-significant-digit radix
//! sort of their order-preserving bit patterns, a byte at a time, which on the 100,000 values
//! of a column takes a fraction of a comparison sort's time. The order is `f64::total_cmp`'s,
//! so the edges are those a comparison sort gives.

/// `x`'s bits, mapped so that unsigned order is `total_cmp`'s: negatives (sign set) have
/// every bit flipped, the others only the sign.
fn key(x: f64) -> u64 {
    let bits = x.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    }
}

fn value(key: u64) -> f64 {
    f64::from_bits(if key >> 63 == 1 { key & !(1 << 63) } else { !key })
}

/// Sorts `values` in `f64::total_cmp` order.
pub(crate) fn sort(values: &mut [f64]) {
    if values.len() < 256 {
        values.sort_unstable_by(f64::total_cmp);
        return;
    }
    let mut keys: Vec<u64> = values.iter().map(|v| key(*v)).collect();
    let mut other = vec![0u64; keys.len()];
    // Every byte's counts in one pass; a byte all keys share is skipped.
    let mut counts = vec![[0usize; 256]; 8];
    for k in &keys {
        for (byte, c) in counts.iter_mut().enumerate() {
            c[((k >> (8 * byte)) & 0xff) as usize] += 1;
        }
    }
    for (byte, c) in counts.iter().enumerate() {
        if c.contains(&keys.len()) {
            continue;
        }
        let mut at = [0usize; 256];
        let mut sum = 0;
        for (a, n) in at.iter_mut().zip(c) {
            *a = sum;
            sum += n;
        }
        for k in &keys {
            let d = ((k >> (8 * byte)) & 0xff) as usize;
            other[at[d]] = *k;
            at[d] += 1;
        }
        std::mem::swap(&mut keys, &mut other);
    }
    for (v, k) in values.iter_mut().zip(&keys) {
        *v = value(*k);
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};

    #[test]
    fn the_order_is_total_cmp_s() {
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(2);
        let specials = [0.0, -0.0, f64::INFINITY, f64::NEG_INFINITY, f64::MIN_POSITIVE / 4.0, -5e-324, f64::MAX];
        for n in [0usize, 1, 255, 256, 1_000, 30_000] {
            let values: Vec<f64> = (0..n)
                .map(|i| match i % 4 {
                    0 => specials[rng.gen_range(0..specials.len())],
                    1 => f64::from_bits(rng.gen::<u64>() & !(0x7ff << 52) | (rng.gen_range(0..2047u64) << 52)),
                    2 => rng.gen_range(-3.0..3.0),
                    _ => (rng.gen_range(-20..20) as f64) / 4.0,
                })
                .collect();
            let mut want = values.clone();
            want.sort_unstable_by(f64::total_cmp);
            let mut got = values;
            super::sort(&mut got);
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<u64>>();
            assert_eq!(bits(&got), bits(&want), "{n} values");
        }
    }
}

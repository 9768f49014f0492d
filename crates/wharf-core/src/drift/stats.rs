//! The drift statistics, on samples and on binned counts.
//!
//! PSI and Jensen–Shannon compare two distributions over the same bins; the two-sample
//! Kolmogorov–Smirnov statistic compares two samples of a number. Each is written to agree
//! with the implementation users check against: `scipy.stats.ks_2samp`'s statistic (ties
//! counted as scipy counts them), the p-value of the limiting Kolmogorov distribution
//! (`scipy.stats.kstwobign`, as R's and statsmodels' large-sample tests; scipy's own
//! `ks_2samp` p-value uses the finite-n distribution and differs by about 0.02 near 0.5),
//! `scipy.spatial.distance.jensenshannon` (natural log), and the textbook PSI with empty
//! bins floored, as most monitoring tools do.

/// The proportion an empty bin is given in [`psi`]: without a floor, one bin that is empty
/// on one side makes PSI infinite, and a bin empty on both sides would be 0 · ln(0/0).
pub const PSI_FLOOR: f64 = 1e-4;

/// Proportions of `counts` (all zeros when the total is zero).
pub fn proportions(counts: &[u64]) -> Vec<f64> {
    let total: u64 = counts.iter().sum();
    counts.iter().map(|c| if total == 0 { 0.0 } else { *c as f64 / total as f64 }).collect()
}

/// Population stability index of `actual` against `expected`, both proportions over the
/// same bins: Σ (a − e) · ln(a / e), each proportion floored at [`PSI_FLOOR`]. 0 means the
/// same distribution; above 0.2 is the common reading of a significant shift.
pub fn psi(expected: &[f64], actual: &[f64]) -> f64 {
    expected
        .iter()
        .zip(actual)
        .map(|(e, a)| {
            let (e, a) = (e.max(PSI_FLOOR), a.max(PSI_FLOOR));
            (a - e) * (a / e).ln()
        })
        .sum()
}

/// Jensen–Shannon distance (the square root of the divergence, natural log) between two
/// distributions over the same bins, as `scipy.spatial.distance.jensenshannon(p, q)`: each
/// side is normalised to sum to 1 first. Between 0 and √ln 2.
pub fn jensen_shannon(p: &[f64], q: &[f64]) -> f64 {
    let (sp, sq): (f64, f64) = (p.iter().sum(), q.iter().sum());
    if sp <= 0.0 || sq <= 0.0 {
        return 0.0;
    }
    let kl = |a: f64, m: f64| if a > 0.0 { a * (a / m).ln() } else { 0.0 };
    let divergence: f64 = p
        .iter()
        .zip(q)
        .map(|(a, b)| {
            let (a, b) = (a / sp, b / sq);
            let m = (a + b) / 2.0;
            (kl(a, m) + kl(b, m)) / 2.0
        })
        .sum();
    divergence.max(0.0).sqrt()
}

/// The two-sample Kolmogorov–Smirnov test: the largest gap between the two empirical
/// distribution functions, and its asymptotic two-sided p-value. NaNs are left out. `None`
/// when either sample is empty.
pub fn ks_2samp(a: &[f64], b: &[f64]) -> Option<KsTest> {
    let sorted = |s: &[f64]| {
        let mut v: Vec<f64> = s.iter().copied().filter(|x| !x.is_nan()).collect();
        v.sort_by(f64::total_cmp);
        v
    };
    let (a, b) = (sorted(a), sorted(b));
    if a.is_empty() || b.is_empty() {
        return None;
    }
    let (n, m) = (a.len(), b.len());
    let (mut i, mut j, mut d) = (0usize, 0usize, 0f64);
    // Walk both sorted samples; at each distinct value, step past all its copies on both
    // sides before comparing, so ties count as scipy counts them.
    while i < n && j < m {
        let x = a[i].min(b[j]);
        while i < n && a[i] <= x {
            i += 1;
        }
        while j < m && b[j] <= x {
            j += 1;
        }
        d = d.max((i as f64 / n as f64 - j as f64 / m as f64).abs());
    }
    let en = (n as f64 * m as f64) / (n + m) as f64;
    Some(KsTest { statistic: d, pvalue: kolmogorov_sf(en.sqrt() * d) })
}

/// The result of [`ks_2samp`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KsTest {
    /// The largest gap between the two empirical distribution functions, in [0, 1].
    pub statistic: f64,
    /// Two-sided p-value from the limiting Kolmogorov distribution (scipy's `kstwobign`).
    pub pvalue: f64,
}

/// The largest gap between two distribution functions given as proportions over the same
/// ordered bins: the Kolmogorov–Smirnov statistic at the resolution of the bins, which is
/// what a live window kept as bin counts can tell.
pub fn ks_binned(expected: &[f64], actual: &[f64]) -> f64 {
    let (se, sa): (f64, f64) = (expected.iter().sum(), actual.iter().sum());
    if se <= 0.0 || sa <= 0.0 {
        return 0.0;
    }
    let (mut ce, mut ca, mut d) = (0.0, 0.0, 0f64);
    for (e, a) in expected.iter().zip(actual) {
        ce += e / se;
        ca += a / sa;
        d = d.max((ce - ca).abs());
    }
    d
}

/// P(K > x) for the Kolmogorov distribution: 2 Σ (−1)^(k−1) e^(−2k²x²), scipy's
/// `kstwobign.sf`. The series converges fast except near 0, where the answer is 1.
fn kolmogorov_sf(x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    if x < 0.2 {
        // Every term is within rounding of 1 here and the alternating sum converges slowly.
        return 1.0;
    }
    let mut sum = 0.0;
    for k in 1..=100 {
        let k = k as f64;
        let term = (-2.0 * k * k * x * x).exp();
        sum += if k as u64 % 2 == 1 { term } else { -term };
        if term < 1e-17 {
            break;
        }
    }
    (2.0 * sum).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_distributions_have_no_drift() {
        let p = [0.2, 0.3, 0.5];
        assert!(psi(&p, &p).abs() < 1e-15);
        assert!(jensen_shannon(&p, &p).abs() < 1e-7);
        assert_eq!(ks_binned(&p, &p), 0.0);
    }

    #[test]
    fn a_flipped_category_is_a_large_psi() {
        // 70/30 against 30/70: 2 · 0.4 · ln(7/3) ≈ 0.678.
        let v = psi(&[0.7, 0.3], &[0.3, 0.7]);
        assert!((v - 0.8 * (7.0f64 / 3.0).ln()).abs() < 1e-12, "{v}");
    }

    #[test]
    fn ks_counts_ties_on_both_sides() {
        let t = ks_2samp(&[1.0, 2.0, 2.0, 3.0], &[2.0, 2.0, 4.0]).expect("non-empty");
        // After 2: a at 3/4, b at 2/3 → 1/12; after 1: 1/4 vs 0 → 1/4; after 3: 1 vs 2/3.
        assert!((t.statistic - 1.0 / 3.0).abs() < 1e-12, "{t:?}");
        assert!(ks_2samp(&[], &[1.0]).is_none());
    }

    #[test]
    fn kolmogorov_tail_is_known_at_a_point() {
        // kstwobign.sf(1.0) = 0.26999967167735456 (scipy).
        assert!((kolmogorov_sf(1.0) - 0.269_999_671_677_354_56).abs() < 1e-12);
        assert_eq!(kolmogorov_sf(0.0), 1.0);
    }
}

//! Whether a change of a function's share is more than sampling noise.
//!
//! A sampling profiler's samples of one function are, to a good first
//! approximation, a Poisson count whose rate is the function's share of the
//! time times the sampling rate. For two runs with `n1` and `n2` samples, of
//! which `x1` and `x2` hit the function, the exact test that its share is the
//! same in both conditions on the function's total `k = x1 + x2`: if the
//! share did not change, `x1` is binomial with `k` draws and probability
//! `n1 / (n1 + n2)` (the conditional test of two Poisson rates). Its
//! two-sided p-value is twice the smaller tail, capped at 1.
//!
//! Small counts, where a normal approximation fails (one sample in 300
//! against none in 30 000 is not a change), are summed exactly; large ones,
//! whose binomial is close to normal, use the normal tail.

/// Two-sided p-value of the exact conditional test that a function has the
/// same share of `n1` samples (`x1` of them) and of `n2` samples (`x2`).
/// 1 when either run has no samples or the function none in both.
pub fn p_value(x1: u64, n1: u64, x2: u64, n2: u64) -> f64 {
    let k = x1.saturating_add(x2);
    if n1 == 0 || n2 == 0 || k == 0 {
        return 1.0;
    }
    let q = n1 as f64 / (n1 as f64 + n2 as f64);
    let (kf, x) = (k as f64, x1.min(k));
    let (mean, var) = (kf * q, kf * q * (1.0 - q));
    let tail = if var > 1e6 {
        // Normal tail, with the continuity correction.
        let z = ((x as f64 - mean).abs() - 0.5).max(0.0) / var.sqrt();
        normal_upper_tail(z)
    } else if (x as f64) < mean {
        binomial_tail(x, k, q, Side::Below)
    } else {
        binomial_tail(x, k, q, Side::Above)
    };
    (2.0 * tail).min(1.0)
}

/// Which tail of the binomial: `X ≤ x` or `X ≥ x`.
#[derive(Clone, Copy, PartialEq)]
enum Side {
    Below,
    Above,
}

/// P(X ≤ x) or P(X ≥ x) for X binomial with `k` draws of probability `q`,
/// summed from `x` away from the mean until the terms no longer count.
fn binomial_tail(x: u64, k: u64, q: f64, side: Side) -> f64 {
    let (ln_q, ln_1q) = (q.ln(), (-q).ln_1p());
    let ln_choose_k = ln_factorial(k);
    let pmf = |i: u64| {
        (ln_choose_k - ln_factorial(i) - ln_factorial(k - i)
            + i as f64 * ln_q
            + (k - i) as f64 * ln_1q)
            .exp()
    };
    let mean = k as f64 * q;
    let (mut sum, mut i) = (0.0, x);
    loop {
        let term = pmf(i);
        sum += term;
        // Past the mean the terms only shrink: stop when they are negligible.
        let past_mean = match side {
            Side::Below => (i as f64) < mean,
            Side::Above => (i as f64) > mean,
        };
        if past_mean && term <= sum * 1e-17 {
            break;
        }
        match side {
            Side::Below if i > 0 => i -= 1,
            Side::Above if i < k => i += 1,
            _ => break,
        }
    }
    sum.min(1.0)
}

/// ln(n!): summed below 32, Stirling's series above (error under 1e-10).
fn ln_factorial(n: u64) -> f64 {
    if n < 32 {
        return (2..=n).map(|i| (i as f64).ln()).sum();
    }
    let n = n as f64;
    n * n.ln() - n + 0.5 * (2.0 * std::f64::consts::PI * n).ln() + 1.0 / (12.0 * n)
        - 1.0 / (360.0 * n * n * n)
}

/// P(Z ≥ z) for a standard normal Z, z ≥ 0: by Laplace's continued fraction
/// above 3 and the Taylor series of Φ below (relative error under 1e-6 from
/// 0.5 down to 1e-9, checked against tabulated values).
fn normal_upper_tail(z: f64) -> f64 {
    if z > 3.0 {
        // Laplace's continued fraction for Mills' ratio, evaluated from the bottom.
        let mut f = z;
        for n in (1..=60).rev() {
            f = z + n as f64 / f;
        }
        (-z * z / 2.0).exp() / (2.0 * std::f64::consts::PI).sqrt() / f
    } else {
        // 1/2 − (φ-weighted) Taylor series of the integral from 0 to z.
        let (mut term, mut sum, mut n) = (z, z, 0u32);
        while term.abs() > 1e-17 * sum.abs() && n < 200 {
            n += 1;
            term *= z * z / (2 * n + 1) as f64;
            sum += term;
        }
        0.5 - (-z * z / 2.0).exp() / (2.0 * std::f64::consts::PI).sqrt() * sum
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_normal_tail_matches_known_values() {
        for (z, p) in [
            (0.0, 0.5),
            (1.0, 0.158_655_253_9),
            (1.959_963_985, 0.025),
            (3.0, 0.001_349_898_032),
            (4.0, 3.167_124_183e-5),
            (6.0, 9.865_876_450e-10),
        ] {
            let got = normal_upper_tail(z);
            assert!((got - p).abs() / p < 1e-6, "z = {z}: {got} vs {p}");
        }
    }

    #[test]
    fn ln_factorial_is_continuous_where_stirling_takes_over() {
        let exact = |n: u64| (2..=n).map(|i| (i as f64).ln()).sum::<f64>();
        for n in [31, 32, 33, 100, 1000] {
            assert!((ln_factorial(n) - exact(n)).abs() < 1e-9, "{n}");
        }
    }

    #[test]
    fn small_counts_are_summed_exactly() {
        // 1 sample in 300, none in 30 000: the one sample lands in the
        // small run with probability 300/30 300; doubled, ≈ 0.0198.
        let p = p_value(1, 300, 0, 30_000);
        assert!((p - 2.0 * 300.0 / 30_300.0).abs() < 1e-12, "{p}");
        // 3 in 300 and none in 30 000: (300/30 300)³, doubled.
        let p = p_value(3, 300, 0, 30_000);
        assert!(
            (p - 2.0 * (300.0f64 / 30_300.0).powi(3)).abs() < 1e-15,
            "{p}"
        );
        // Equal runs, 5 against 5: no evidence at all.
        assert_eq!(p_value(5, 1000, 5, 1000), 1.0);
        // Equal runs, 10 against 0: the binomial(10, ½) tail, 2 / 1024.
        assert!((p_value(10, 1000, 0, 1000) - 2.0 / 1024.0).abs() < 1e-15);
    }

    #[test]
    fn large_counts_follow_the_normal_approximation() {
        // 40 % of 30 000 against 45 % of 30 000: of the 25 500 samples, half
        // expected in each run, 12 000 seen in the first: 9.4 standard
        // deviations, p ≈ 6·10⁻²¹.
        let p = p_value(12_000, 30_000, 13_500, 30_000);
        assert!(p > 1e-21 && p < 1e-20, "{p}");
        // 40 % of 300 against 45 % of 30 000: 1.3 standard deviations, noise.
        let p = p_value(120, 300, 13_500, 30_000);
        assert!(p > 0.15 && p < 0.25, "{p}");
        // At the exact sum's limit (a variance of 10⁶) the normal tail that
        // takes over above it agrees: 2 and 4 standard deviations.
        for (x, z) in [(1_998_000, 2.0), (1_996_000, 4.0)] {
            let exact = binomial_tail(x, 4_000_000, 0.5, Side::Below);
            let normal = normal_upper_tail(z - 0.5 / 1000.0);
            assert!((exact / normal - 1.0).abs() < 0.01, "{z}: {exact} {normal}");
        }
    }

    #[test]
    fn hostile_counts_end_quickly() {
        let start = std::time::Instant::now();
        let p = p_value(u64::MAX / 2, u64::MAX / 2, u64::MAX / 2, u64::MAX);
        assert!((0.0..=1.0).contains(&p), "{p}");
        assert!(p_value(1, 1, 1 << 40, 1 << 62) <= 1.0);
        assert!(start.elapsed().as_secs() < 5);
    }
}

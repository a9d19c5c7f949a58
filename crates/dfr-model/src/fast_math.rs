//! Element-wise building blocks of the fused CPU ops, written so that the loops around them
//! vectorise (everything here is `#[inline(always)]`, so it is compiled at the SIMD level of
//! the kernel that calls it: the kernels carry `#[multiversion(targets = "simd")]`, one copy per
//! x86-64 level up to AVX-512, chosen at run time, since a default build targets SSE2 only): `exp` as a polynomial (a call into libm stops the compiler from vectorising a
//! loop, and was 6 % of a train step), the activations and their derivatives on top of it,
//! and f64 sums over f32 data in eight independent lanes (a single f64 accumulator is a
//! loop-carried dependency, one add per four cycles).

/// `eˣ` in f32: Cephes' `expf` polynomial after the reduction `x = n·ln 2 + r`. Relative
/// error within 2 ulp of the correctly rounded value on [-87, 88]; the input is clamped to
/// that range (below it, the result is ≈ 1.6e-38 instead of a subnormal or 0; above it
/// ≈ 1.65e38 instead of infinity); NaN stays NaN.
///
/// ```
/// # use dfr_model::fast_math::exp;
/// for x in [-20.0f32, -1.0, 0.0, 0.5, 10.0] {
///     assert!((exp(x) - x.exp()).abs() <= 2.5e-7 * x.exp());
/// }
/// ```
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // 1.5·2²³: adding it rounds to an integer held in the low mantissa bits
    const SHIFTER: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let t = x * std::f32::consts::LOG2_E + SHIFTER;
    let n = t - SHIFTER;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let y = p * r * r + r + 1.0;
    // 2ⁿ from n's bits in t (|n| ≤ 127 after the clamp)
    let n_int = (t.to_bits() as i32).wrapping_sub(SHIFTER.to_bits() as i32);
    y * f32::from_bits(((n_int + 127) as u32) << 23)
}

/// `σ(z) = 1 / (1 + e⁻ᶻ)`.
#[inline(always)]
pub fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + exp(-z))
}

/// `silu(z) = z · σ(z)`.
#[inline(always)]
pub fn silu(z: f32) -> f32 {
    z * sigmoid(z)
}

/// `silu'(z) = σ(z) · (1 + z · (1 − σ(z)))`.
#[inline(always)]
pub fn silu_grad(z: f32) -> f32 {
    let s = sigmoid(z);
    s * (1.0 + z * (1.0 - s))
}

/// `min(max(z, 0), 6)` (NaN maps to 0).
#[inline(always)]
#[allow(clippy::manual_clamp)] // max/min, not clamp: NaN maps to 0
pub fn relu6(z: f32) -> f32 {
    z.max(0.0).min(6.0)
}

/// The derivative of [`relu6`]: 1 on (0, 6), else 0.
#[inline(always)]
pub fn relu6_grad(z: f32) -> f32 {
    if z > 0.0 && z < 6.0 {
        1.0
    } else {
        0.0
    }
}

/// `(Σ f(a, b).0, Σ f(a, b).1)` over paired elements, accumulated in f64 in eight lanes.
#[inline(always)]
#[allow(clippy::needless_range_loop)] // indexed lanes vectorise reliably
pub fn sum2_f64(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> (f64, f64)) -> (f64, f64) {
    let (mut s, mut t) = ([0f64; 8], [0f64; 8]);
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        let (x, y): (&[f32; 8], &[f32; 8]) = (x.try_into().unwrap(), y.try_into().unwrap());
        for l in 0..8 {
            let (p, q) = f(x[l], y[l]);
            s[l] += p;
            t[l] += q;
        }
    }
    let (mut u, mut v) = (0f64, 0f64);
    for (&x, &y) in ra.iter().zip(rb) {
        let (p, q) = f(x, y);
        u += p;
        v += q;
    }
    (u + s.iter().sum::<f64>(), v + t.iter().sum::<f64>())
}

/// `Σ f(x)` in f64, eight lanes.
#[inline(always)]
pub fn sum_f64(x: &[f32], f: impl Fn(f32) -> f64) -> f64 {
    sum2_f64(x, x, |v, _| (f(v), 0.0)).0
}

/// `Σ a·b` in f32, eight lanes (a fixed order, independent of threads).
#[inline(always)]
#[allow(clippy::needless_range_loop)]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        let (x, y): (&[f32; 8], &[f32; 8]) = (x.try_into().unwrap(), y.try_into().unwrap());
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    let mut s: f32 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    for v in acc {
        s += v;
    }
    s
}

/// `Σ a` in f32, eight lanes.
#[inline(always)]
#[allow(clippy::needless_range_loop)]
pub fn sum(a: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let c = a.chunks_exact(8);
    let mut s: f32 = c.remainder().iter().sum();
    for x in c {
        let x: &[f32; 8] = x.try_into().unwrap();
        for l in 0..8 {
            acc[l] += x[l];
        }
    }
    for v in acc {
        s += v;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_within_two_ulp_of_libm_on_its_range() {
        let mut worst = 0f64;
        let mut x = -87.0f32;
        while x <= 88.0 {
            let (ours, exact) = (exp(x) as f64, (x as f64).exp());
            worst = worst.max(((ours - exact) / exact).abs());
            x += 0.000_37;
        }
        // 2 ulp of f32 is 2.4e-7 relative
        assert!(worst < 2.4e-7, "worst relative error {worst}");
        assert!(exp(f32::NAN).is_nan());
        assert!(exp(-1000.0) > 0.0 && exp(-1000.0) < 1e-37);
        assert!(exp(1000.0).is_finite() && exp(1000.0) > 1e38);
        assert!(silu(-1000.0).abs() < 1e-30 && (silu(1000.0) - 1000.0).abs() < 1e-3);
    }

    #[test]
    fn lane_sums_match_sequential_sums() {
        let a: Vec<f32> = (0..37).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..37).map(|i| (i as f32 * 0.11).cos()).collect();
        let seq_dot: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
        let (s, d) = sum2_f64(&a, &b, |x, y| (x as f64, x as f64 * y as f64));
        assert!((s - a.iter().map(|&x| x as f64).sum::<f64>()).abs() < 1e-12);
        assert!((d - seq_dot).abs() < 1e-12);
        assert!((dot(&a, &b) as f64 - seq_dot).abs() < 1e-5);
        assert!((sum(&a) as f64 - s).abs() < 1e-5);
        assert!((sum_f64(&a, |x| x as f64 * 2.0) - 2.0 * s).abs() < 1e-12);
    }
}

//! Paired comparison of two arms of a study over seeds: arm `a` and arm `b` were trained
//! with the same seeds, so seed `i` gives the pair `(a[i], b[i])` and the difference
//! `d[i] = b[i] − a[i]`.
//!
//! - [`compare_paired`]: mean and standard deviation of `d`, its t-based confidence
//!   interval, the exact sign-flip permutation p-value and the exact Wilcoxon signed-rank
//!   p-value (both two-sided), and the smallest p-value the sign-flip test can give with
//!   `n` pairs, `2/2ⁿ`: with 5 seeds no difference can reach p < 0.05.
//! - [`detectable_difference`]: the smallest true mean difference this design would
//!   detect with a given power, for "no detectable difference with n seeds" statements.
//! - [`Verdict`]: the one rule that turns an interval and a p-value into a sentence.
//!
//! The formulas follow `../shared/fixtures/stats_case.json` (numpy / scipy): sample
//! standard deviation with `n − 1`; interval `mean ± t(1 − (1 − level)/2, n − 1)·sd/√n`;
//! sign-flip p = the fraction of the `2ⁿ` sign patterns `s` with
//! `|mean(s·d)| ≥ |mean(d)| − 1e-12` (the observed pattern included);
//! Wilcoxon as `scipy.stats.wilcoxon(b, a, method="exact")` (zero differences dropped).

use serde::{Deserialize, Serialize};

use crate::error::{MetricsError, Result};
use crate::stats::{check_finite, mean_sd, t_quantile};

/// Up to this many pairs the sign-flip test enumerates all `2ⁿ` patterns (about 20 M
/// operations at the limit); above it, it draws [`SIGN_FLIP_DRAWS`] random patterns.
pub const EXACT_SIGN_FLIP_MAX: usize = 20;
/// Random sign patterns drawn above [`EXACT_SIGN_FLIP_MAX`] pairs (seeded, reproducible).
pub const SIGN_FLIP_DRAWS: usize = 1 << 20;
/// Tolerance of the "at least as extreme" comparison of the sign-flip test.
const TIE_TOLERANCE: f64 = 1e-12;

/// A two-sided sign-flip (paired permutation) p-value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SignFlip {
    /// The p-value (observed pattern included, so never 0).
    pub p: f64,
    /// Whether all `2ⁿ` patterns were enumerated (else a seeded Monte Carlo estimate
    /// `(1 + hits) / (1 + draws)`).
    pub exact: bool,
}

/// Everything a report needs about one paired comparison `b − a`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PairedComparison {
    /// Number of pairs (seeds).
    pub n: usize,
    /// Mean of `b − a`.
    pub mean_diff: f64,
    /// Sample standard deviation of `b − a` (`n − 1`).
    pub sd_diff: f64,
    /// Confidence level of [`Self::t_ci`].
    pub level: f64,
    /// `mean ± t·sd/√n`.
    pub t_ci: [f64; 2],
    /// Two-sided sign-flip permutation p-value.
    pub sign_flip: SignFlip,
    /// Two-sided exact Wilcoxon signed-rank p-value (1 when every difference is 0).
    pub wilcoxon_p: f64,
    /// The smallest sign-flip p-value possible with `n` pairs: `2/2ⁿ`.
    pub min_possible_p: f64,
}

/// Compares arm `b` with arm `a`, paired by position (seed): `d = b − a`.
///
/// Errors on different lengths, fewer than 2 pairs, non-finite values or a level outside
/// (0, 1).
///
/// ```
/// // 6 seeds, b better on every one: the smallest p the design allows.
/// let a = [0.70, 0.72, 0.69, 0.75, 0.71, 0.73];
/// let b = [0.74, 0.75, 0.70, 0.80, 0.72, 0.78];
/// let c = dfr_metrics::compare_paired(&a, &b, 0.95).unwrap();
/// assert!((c.mean_diff - 0.19 / 6.0).abs() < 1e-12);
/// assert_eq!(c.sign_flip.p, 2.0 / 64.0);
/// assert_eq!(c.min_possible_p, 2.0 / 64.0);
/// assert!(c.t_ci[0] > 0.0);
/// ```
pub fn compare_paired(a: &[f64], b: &[f64], level: f64) -> Result<PairedComparison> {
    let d = differences(a, b)?;
    check_level(level)?;
    let n = d.len();
    let (mean_diff, sd_diff) = mean_sd(&d)?;
    let half = t_quantile(1.0 - (1.0 - level) / 2.0, (n - 1) as f64)? * sd_diff / (n as f64).sqrt();
    Ok(PairedComparison {
        n,
        mean_diff,
        sd_diff,
        level,
        t_ci: [mean_diff - half, mean_diff + half],
        sign_flip: sign_flip_test(&d)?,
        wilcoxon_p: wilcoxon_signed_rank(&d)?,
        min_possible_p: min_sign_flip_p(n),
    })
}

/// `b − a` element by element, checked: same length, at least 2, finite.
fn differences(a: &[f64], b: &[f64]) -> Result<Vec<f64>> {
    if a.len() != b.len() {
        return Err(MetricsError::LengthMismatch {
            left_name: "a",
            left: a.len(),
            right_name: "b",
            right: b.len(),
        });
    }
    check_finite(a, "a")?;
    check_finite(b, "b")?;
    if a.len() < 2 {
        return Err(MetricsError::TooFewPoints {
            got: a.len(),
            needed: 2,
        });
    }
    Ok(a.iter().zip(b).map(|(x, y)| y - x).collect())
}

fn check_level(level: f64) -> Result<()> {
    if level > 0.0 && level < 1.0 {
        Ok(())
    } else {
        Err(MetricsError::InvalidConfig(format!(
            "confidence level must be in (0, 1), got {level}"
        )))
    }
}

/// The smallest two-sided sign-flip p-value with `n` pairs, `2/2ⁿ` (1 for `n ≤ 1`).
///
/// ```
/// assert_eq!(dfr_metrics::min_sign_flip_p(5), 0.0625); // 5 seeds can never reach 0.05
/// assert_eq!(dfr_metrics::min_sign_flip_p(6), 0.03125);
/// ```
pub fn min_sign_flip_p(n: usize) -> f64 {
    if n <= 1 {
        1.0
    } else {
        (2.0f64).powi(1 - n.min(1100) as i32)
    }
}

/// Two-sided sign-flip permutation test of "the mean difference is 0" on the differences
/// `d`: exact up to [`EXACT_SIGN_FLIP_MAX`] values, a seeded Monte Carlo estimate above.
///
/// ```
/// let t = dfr_metrics::sign_flip_test(&[0.1, 0.2, -0.05, 0.3]).unwrap();
/// assert!(t.exact);
/// // patterns as extreme as the observed one: ± all signs, and flipping only -0.05
/// assert_eq!(t.p, 4.0 / 16.0);
/// ```
pub fn sign_flip_test(d: &[f64]) -> Result<SignFlip> {
    check_finite(d, "differences")?;
    if d.is_empty() {
        return Err(MetricsError::Empty {
            what: "differences",
        });
    }
    let n = d.len();
    let observed = d.iter().sum::<f64>().abs() / n as f64 - TIE_TOLERANCE;
    if n <= EXACT_SIGN_FLIP_MAX {
        let total = 1usize << n;
        let hits = (0..total)
            .filter(|&pattern| {
                let s: f64 = d
                    .iter()
                    .enumerate()
                    .map(|(i, &v)| if pattern >> i & 1 == 1 { -v } else { v })
                    .sum();
                s.abs() / n as f64 >= observed
            })
            .count();
        return Ok(SignFlip {
            p: hits as f64 / total as f64,
            exact: true,
        });
    }
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(MONTE_CARLO_SEED);
    let mut hits = 0usize;
    for _ in 0..SIGN_FLIP_DRAWS {
        let s: f64 = d
            .iter()
            .map(|&v| if rng.random::<bool>() { -v } else { v })
            .sum();
        if s.abs() / n as f64 >= observed {
            hits += 1;
        }
    }
    Ok(SignFlip {
        p: (1 + hits) as f64 / (1 + SIGN_FLIP_DRAWS) as f64,
        exact: false,
    })
}

/// The seed of the Monte Carlo sign-flip test (fixed: the same data give the same p).
const MONTE_CARLO_SEED: u64 = 0x5167_f119;

/// Two-sided exact Wilcoxon signed-rank p-value of the differences `d`, as
/// `scipy.stats.wilcoxon(b, a, method="exact")`: zero differences are dropped, `|d|` is
/// ranked (ties get their average rank) and the p-value is
/// `min(1, 2·min(P(W⁺ ≤ w), P(W⁺ ≥ w)))` under the exact null distribution of the sum of
/// positive ranks `W⁺` — the distribution of the actual ranks under random signs, which is
/// the classical table when there are no ties. 1 when every difference is 0.
///
/// ```
/// // all five differences positive: P = 2/32
/// let p = dfr_metrics::wilcoxon_signed_rank(&[0.1, 0.2, 0.3, 0.05, 0.4]).unwrap();
/// assert_eq!(p, 0.0625);
/// ```
pub fn wilcoxon_signed_rank(d: &[f64]) -> Result<f64> {
    check_finite(d, "differences")?;
    if d.is_empty() {
        return Err(MetricsError::Empty {
            what: "differences",
        });
    }
    let nz: Vec<f64> = d.iter().copied().filter(|v| *v != 0.0).collect();
    if nz.is_empty() {
        return Ok(1.0);
    }
    // Doubled average ranks of |d| are integers.
    let mut order: Vec<usize> = (0..nz.len()).collect();
    order.sort_by(|&i, &j| nz[i].abs().total_cmp(&nz[j].abs()));
    let mut rank2 = vec![0usize; nz.len()];
    let mut k = 0;
    while k < order.len() {
        let mut end = k + 1;
        while end < order.len() && nz[order[end]].abs() == nz[order[k]].abs() {
            end += 1;
        }
        // ranks k+1 ..= end, average (k + 1 + end) / 2, doubled
        for &i in &order[k..end] {
            rank2[i] = k + 1 + end;
        }
        k = end;
    }
    let w: usize = nz
        .iter()
        .zip(&rank2)
        .filter(|(v, _)| **v > 0.0)
        .map(|(_, r)| r)
        .sum();
    // Number of sign patterns giving each doubled W⁺ (as f64: 2ⁿ may exceed u64 range).
    let total: usize = rank2.iter().sum();
    let mut count = vec![0f64; total + 1];
    count[0] = 1.0;
    let mut reach = 0;
    for &r in &rank2 {
        for s in (0..=reach).rev() {
            if count[s] != 0.0 {
                count[s + r] += count[s];
            }
        }
        reach += r;
    }
    let all: f64 = count.iter().sum();
    let below: f64 = count[..=w].iter().sum::<f64>() / all;
    let above: f64 = count[w..].iter().sum::<f64>() / all;
    Ok((2.0 * below.min(above)).min(1.0))
}

/// The smallest true mean difference a paired design with `n` seeds and difference
/// standard deviation `sd_diff` detects with probability `power` at two-sided level
/// `alpha`: `(t(1 − α/2, n − 1) + t(power, n − 1))·sd/√n` (the usual t approximation).
///
/// `None` when no difference is detectable at all: fewer than 2 seeds, or so few that
/// even the most extreme sign pattern has p = `2/2ⁿ` > `alpha` (5 seeds at 0.05).
///
/// ```
/// use dfr_metrics::detectable_difference;
/// assert_eq!(detectable_difference(0.02, 5, 0.05, 0.8), None);
/// let d = detectable_difference(0.02, 6, 0.05, 0.8).unwrap();
/// assert!((d - 0.02 * (2.5706 + 0.9195) / 6f64.sqrt()).abs() < 1e-4);
/// ```
pub fn detectable_difference(sd_diff: f64, n: usize, alpha: f64, power: f64) -> Option<f64> {
    if n < 2 || !sd_diff.is_finite() || min_sign_flip_p(n) > alpha {
        return None;
    }
    let df = (n - 1) as f64;
    let t_a = t_quantile(1.0 - alpha / 2.0, df).ok()?;
    let t_b = t_quantile(power, df).ok()?;
    Some((t_a + t_b) * sd_diff / (n as f64).sqrt())
}

/// What a comparison of `b` against `a` says, from an interval of `b − a` and a p-value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// `b` is higher: the interval lies above 0 and p ≤ α.
    Higher,
    /// `b` is lower: the interval lies below 0 and p ≤ α.
    Lower,
    /// The interval contains 0, or p > α: the data cannot tell.
    NotDetectable,
}

impl Verdict {
    /// The one rule: a direction only when the interval excludes 0 **and** the paired test
    /// rejects at `alpha` (so 5 seeds, whose smallest p is 0.0625, never give one).
    ///
    /// ```
    /// use dfr_metrics::Verdict;
    /// assert_eq!(Verdict::from_interval([0.01, 0.05], 0.03, 0.05), Verdict::Higher);
    /// assert_eq!(Verdict::from_interval([0.01, 0.05], 0.0625, 0.05), Verdict::NotDetectable);
    /// assert_eq!(Verdict::from_interval([-0.01, 0.05], 0.01, 0.05), Verdict::NotDetectable);
    /// ```
    pub fn from_interval(ci: [f64; 2], p: f64, alpha: f64) -> Self {
        if p.is_nan() || p > alpha {
            Verdict::NotDetectable
        } else if ci[0] > 0.0 {
            Verdict::Higher
        } else if ci[1] < 0.0 {
            Verdict::Lower
        } else {
            Verdict::NotDetectable
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_flip_counts_ties_and_the_observed_pattern() {
        // All zero: every pattern ties.
        assert_eq!(sign_flip_test(&[0.0, 0.0, 0.0]).unwrap().p, 1.0);
        // One value: both patterns are as extreme.
        assert_eq!(sign_flip_test(&[0.3]).unwrap().p, 1.0);
        let t = sign_flip_test(&[1.0, 1.0, 1.0, 1.0, 1.0, 1.0]).unwrap();
        assert_eq!(t.p, 2.0 / 64.0);
        assert!(sign_flip_test(&[]).is_err());
        assert!(sign_flip_test(&[1.0, f64::NAN]).is_err());
    }

    #[test]
    fn monte_carlo_sign_flip_agrees_with_enumeration_above_the_limit() {
        // 21 differences: a Monte Carlo estimate; its exact value is computed here by
        // enumerating 2^21 patterns (slow only in this test).
        let d: Vec<f64> = (0..21)
            .map(|i| ((i * 37 % 11) as f64 - 4.0) / 10.0)
            .collect();
        let mc = sign_flip_test(&d).unwrap();
        assert!(!mc.exact);
        let n = d.len();
        let obs = d.iter().sum::<f64>().abs() - 1e-12 * n as f64;
        let hits = (0..1usize << n)
            .filter(|&p| {
                let s: f64 = (0..n)
                    .map(|i| if p >> i & 1 == 1 { -d[i] } else { d[i] })
                    .sum();
                s.abs() >= obs
            })
            .count();
        let exact = hits as f64 / (1u64 << n) as f64;
        // 2^20 draws: standard error below 5e-4
        assert!((mc.p - exact).abs() < 3e-3, "{} vs {exact}", mc.p);
        assert_eq!(sign_flip_test(&d).unwrap(), mc, "seeded: reproducible");
    }

    #[test]
    fn wilcoxon_handles_zeros_and_ties() {
        assert_eq!(wilcoxon_signed_rank(&[0.0, 0.0]).unwrap(), 1.0);
        // zeros dropped: the same as the two non-zero values alone
        assert_eq!(
            wilcoxon_signed_rank(&[0.0, 0.2, 0.1]).unwrap(),
            wilcoxon_signed_rank(&[0.2, 0.1]).unwrap()
        );
        // two values of equal |d| and opposite sign: W⁺ = 1.5 (doubled 3) of 0..3, p = 1
        assert_eq!(wilcoxon_signed_rank(&[0.1, -0.1]).unwrap(), 1.0);
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(matches!(
            compare_paired(&[1.0, 2.0], &[1.0], 0.95),
            Err(MetricsError::LengthMismatch { .. })
        ));
        assert!(matches!(
            compare_paired(&[1.0], &[1.0], 0.95),
            Err(MetricsError::TooFewPoints { .. })
        ));
        assert!(compare_paired(&[1.0, 2.0], &[1.0, 2.0], 1.0).is_err());
        assert!(compare_paired(&[1.0, f64::INFINITY], &[1.0, 2.0], 0.95).is_err());
        // identical arms: no difference, p = 1, a zero-width interval
        let c = compare_paired(&[0.5, 0.6, 0.7], &[0.5, 0.6, 0.7], 0.95).unwrap();
        assert_eq!(
            (c.mean_diff, c.sd_diff, c.sign_flip.p, c.wilcoxon_p),
            (0.0, 0.0, 1.0, 1.0)
        );
        assert_eq!(
            Verdict::from_interval(c.t_ci, c.sign_flip.p, 0.05),
            Verdict::NotDetectable
        );
        assert_eq!(
            Verdict::from_interval([-0.3, -0.1], 0.01, 0.05),
            Verdict::Lower
        );
        assert_eq!(
            Verdict::from_interval([0.1, 0.3], f64::NAN, 0.05),
            Verdict::NotDetectable
        );
    }
}

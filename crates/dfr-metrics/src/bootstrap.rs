//! Percentile-bootstrap confidence intervals, deterministic from a seed (ChaCha8).
//!
//! Each resample draws `n` indices uniformly with replacement from `0..n`. Resamples on
//! which a statistic is undefined (e.g. ROC-AUC when a class is absent) are skipped and
//! counted. The interval is `[q((1 − level)/2), q((1 + level)/2)]` of the resampled
//! values, with numpy's default linear-interpolation quantiles.
//!
//! For a given seed the result is reproducible with this crate version and its `rand` /
//! `rand_chacha` versions (`rand` 0.9 samples `usize` ranges portably across platforms).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{MetricsError, Result};
use crate::input::{
    binary_inputs, check_non_empty, check_same_len, require_both_classes, Label, Score,
};
use crate::roc::ScoreCounts;

/// Bootstrap settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BootstrapConfig {
    /// Number of resamples drawn (must be ≥ 1; 1000–10000 is typical).
    pub resamples: usize,
    /// Confidence level, strictly between 0 and 1 (e.g. 0.95).
    pub level: f64,
    /// Seed of the ChaCha8 generator; equal seeds give equal intervals.
    pub seed: u64,
}

impl Default for BootstrapConfig {
    /// 1000 resamples, 95 % level, seed 0.
    fn default() -> Self {
        Self {
            resamples: 1000,
            level: 0.95,
            seed: 0,
        }
    }
}

impl BootstrapConfig {
    fn validate(&self) -> Result<()> {
        if self.resamples == 0 {
            return Err(MetricsError::InvalidConfig(
                "bootstrap resamples must be at least 1".into(),
            ));
        }
        if !(self.level > 0.0 && self.level < 1.0) {
            return Err(MetricsError::InvalidConfig(format!(
                "bootstrap level must be in (0, 1), got {}",
                self.level
            )));
        }
        Ok(())
    }
}

/// A percentile-bootstrap confidence interval around a point estimate. The interval is
/// about the metric, so "better" follows that metric's direction; narrower means more
/// certain.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ConfidenceInterval {
    /// The statistic on the full sample.
    pub estimate: f64,
    /// Lower bound: the `(1 − level)/2` quantile of the resampled statistics.
    pub lower: f64,
    /// Upper bound: the `(1 + level)/2` quantile of the resampled statistics.
    pub upper: f64,
    /// Confidence level used.
    pub level: f64,
    /// Resamples on which the statistic was defined and used.
    pub resamples_used: usize,
    /// Resamples skipped because the statistic was undefined there.
    pub resamples_skipped: usize,
}

/// Bootstrap CI of any statistic of `n` samples.
///
/// `statistic` receives the resampled indices (length `n`, with repetitions) and returns
/// `None` where it is undefined (the resample is then skipped). The estimate is the
/// statistic on the indices `0..n`; errors if it is undefined there, if `n == 0`, if the
/// config is invalid, or if every resample is skipped.
pub fn bootstrap_statistic<F>(
    n: usize,
    config: &BootstrapConfig,
    mut statistic: F,
) -> Result<ConfidenceInterval>
where
    F: FnMut(&[usize]) -> Option<f64>,
{
    config.validate()?;
    check_non_empty("samples", n)?;
    let identity: Vec<usize> = (0..n).collect();
    let estimate = statistic(&identity).ok_or_else(|| {
        MetricsError::InvalidConfig("statistic is undefined on the full sample".into())
    })?;
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let mut indices = vec![0usize; n];
    let mut values = Vec::with_capacity(config.resamples);
    for _ in 0..config.resamples {
        for slot in indices.iter_mut() {
            *slot = rng.random_range(0..n);
        }
        if let Some(v) = statistic(&indices) {
            values.push(v);
        }
    }
    finish(estimate, values, config)
}

/// Paired bootstrap CI of a difference between two arms over seeds **and** test items.
///
/// Both arms were trained with the same `n_seeds` seeds and evaluated on the same
/// `n_items` test images. Each resample draws `n_seeds` seeds with replacement and, for
/// each drawn seed, `n_items` item indices with replacement — the same indices for both
/// arms, so the pairing by image is kept too. `diff(seed, items)` returns arm B's metric
/// minus arm A's for that seed on those items (`None` where undefined, e.g. ROC-AUC on a
/// one-class resample; such resamples are skipped and counted). A resample's value is the
/// mean over its drawn seeds; the estimate is the mean over all seeds on all items.
///
/// This interval covers both sources of noise a study has: which seeds were run and which
/// test images were drawn.
///
/// ```
/// use dfr_metrics::{bootstrap_seeds_and_items, BootstrapConfig};
/// // 3 seeds × 4 images of per-image correctness (1 = correct) for arms A and B.
/// let a = [[1, 0, 1, 0], [1, 1, 0, 0], [0, 1, 1, 0]];
/// let b = [[1, 1, 1, 0], [1, 1, 1, 0], [1, 1, 1, 0]];
/// let acc = |row: &[i32; 4], items: &[usize]| {
///     items.iter().map(|&i| row[i] as f64).sum::<f64>() / items.len() as f64
/// };
/// let ci = bootstrap_seeds_and_items(3, 4, &BootstrapConfig::default(), |s, items| {
///     Some(acc(&b[s], items) - acc(&a[s], items))
/// })
/// .unwrap();
/// assert!((ci.estimate - 0.25).abs() < 1e-12);
/// assert!(ci.lower <= ci.estimate && ci.estimate <= ci.upper);
/// ```
pub fn bootstrap_seeds_and_items<F>(
    n_seeds: usize,
    n_items: usize,
    config: &BootstrapConfig,
    mut diff: F,
) -> Result<ConfidenceInterval>
where
    F: FnMut(usize, &[usize]) -> Option<f64>,
{
    config.validate()?;
    check_non_empty("seeds", n_seeds)?;
    check_non_empty("items", n_items)?;
    let all: Vec<usize> = (0..n_items).collect();
    let mut estimate = 0.0;
    for seed in 0..n_seeds {
        estimate += diff(seed, &all).ok_or_else(|| {
            MetricsError::InvalidConfig(format!(
                "the difference is undefined on all items of seed {seed}"
            ))
        })?;
    }
    estimate /= n_seeds as f64;
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let mut items = vec![0usize; n_items];
    let mut values = Vec::with_capacity(config.resamples);
    'resample: for _ in 0..config.resamples {
        let mut sum = 0.0;
        for _ in 0..n_seeds {
            let seed = rng.random_range(0..n_seeds);
            for slot in items.iter_mut() {
                *slot = rng.random_range(0..n_items);
            }
            match diff(seed, &items) {
                Some(v) => sum += v,
                None => continue 'resample,
            }
        }
        values.push(sum / n_seeds as f64);
    }
    finish(estimate, values, config)
}

fn finish(
    estimate: f64,
    mut values: Vec<f64>,
    config: &BootstrapConfig,
) -> Result<ConfidenceInterval> {
    if values.is_empty() {
        return Err(MetricsError::NoValidResamples {
            resamples: config.resamples,
        });
    }
    if let Some(index) = values.iter().position(|v| v.is_nan()) {
        return Err(MetricsError::NonFinite {
            what: "bootstrap statistic",
            index,
            value: f64::NAN,
        });
    }
    values.sort_by(f64::total_cmp);
    let alpha = (1.0 - config.level) / 2.0;
    Ok(ConfidenceInterval {
        estimate,
        lower: quantile_sorted(&values, alpha),
        upper: quantile_sorted(&values, 1.0 - alpha),
        level: config.level,
        resamples_used: values.len(),
        resamples_skipped: config.resamples - values.len(),
    })
}

/// Quantile `q ∈ [0, 1]` of sorted, non-empty data with linear interpolation (numpy's default).
fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    let frac = pos - lo as f64;
    sorted[lo] + (sorted[hi] - sorted[lo]) * frac
}

/// Bootstrap CI of [`crate::accuracy`] (higher is better). Never skips a resample.
pub fn bootstrap_accuracy<T: Label, P: Label>(
    y_true: &[T],
    y_pred: &[P],
    config: &BootstrapConfig,
) -> Result<ConfidenceInterval> {
    check_same_len("y_true", y_true.len(), "y_pred", y_pred.len())?;
    check_non_empty("y_true", y_true.len())?;
    let correct: Vec<bool> = y_true
        .iter()
        .zip(y_pred)
        .map(|(t, p)| t.class_index() == p.class_index())
        .collect();
    let n = correct.len() as f64;
    bootstrap_statistic(correct.len(), config, |idx| {
        Some(idx.iter().filter(|&&i| correct[i]).count() as f64 / n)
    })
}

/// Bootstrap CI of [`crate::roc_auc`] (higher is better). Resamples that miss a class
/// are skipped and reported in [`ConfidenceInterval::resamples_skipped`]. Errors if the
/// full sample has a single class.
pub fn bootstrap_roc_auc<L: Label, S: Score>(
    labels: &[L],
    scores: &[S],
    config: &BootstrapConfig,
) -> Result<ConfidenceInterval> {
    config.validate()?;
    let (labels, scores) = binary_inputs(labels, scores)?;
    let counts = ScoreCounts::new(&labels, &scores);
    require_both_classes(counts.positives, counts.negatives, "bootstrap_roc_auc")?;
    let estimate = counts.auc();

    // Sort once by score (descending) and group ties; each resample then only needs the
    // multiplicity of every sample, giving an O(n) weighted AUC per resample.
    let n = labels.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let mut group_ends = Vec::new();
    for k in 0..n {
        if k + 1 == n || scores[order[k + 1]] != scores[order[k]] {
            group_ends.push(k + 1);
        }
    }
    let mut multiplicity = vec![0u64; n];
    bootstrap_statistic(n, config, |idx| {
        multiplicity.iter_mut().for_each(|m| *m = 0);
        for &i in idx {
            multiplicity[i] += 1;
        }
        weighted_auc(&order, &group_ends, &labels, &multiplicity)
    })
    .map(|ci| ConfidenceInterval { estimate, ..ci })
}

/// Trapezoid ROC-AUC of weighted samples (`None` if a class has zero weight).
fn weighted_auc(
    order: &[usize],
    group_ends: &[usize],
    labels: &[bool],
    weight: &[u64],
) -> Option<f64> {
    let (mut tp, mut fp) = (0u64, 0u64);
    let mut twice_area: u128 = 0;
    let mut start = 0;
    for &end in group_ends {
        let (mut gtp, mut gfp) = (0u64, 0u64);
        for &i in &order[start..end] {
            if labels[i] {
                gtp += weight[i];
            } else {
                gfp += weight[i];
            }
        }
        twice_area += u128::from(gfp) * u128::from(2 * tp + gtp);
        tp += gtp;
        fp += gfp;
        start = end;
    }
    (tp > 0 && fp > 0).then(|| twice_area as f64 / (2.0 * tp as f64 * fp as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_interpolates_linearly_like_numpy() {
        let v = [1.0, 2.0, 4.0, 8.0];
        // numpy.quantile([1,2,4,8], q): pos = q * 3
        assert_eq!(quantile_sorted(&v, 0.0), 1.0);
        assert_eq!(quantile_sorted(&v, 1.0), 8.0);
        assert!((quantile_sorted(&v, 0.5) - 3.0).abs() < 1e-12); // between 2 and 4
        assert!((quantile_sorted(&v, 0.9) - 6.8).abs() < 1e-12); // pos 2.7: 4 + 0.7*4
        assert_eq!(quantile_sorted(&[5.0], 0.3), 5.0);
    }

    #[test]
    fn weighted_auc_counts_multiplicities() {
        // scores 0.9 (fake), 0.5 (real), 0.5 (fake), 0.1 (real), already sorted.
        let labels = [true, false, true, false];
        let order = [0, 1, 2, 3];
        let group_ends = [1, 3, 4];
        // Unit weights: pairs (fake, real): 0.9>0.5, 0.9>0.1, 0.5=0.5 (half), 0.5>0.1 → 3.5/4.
        let auc = weighted_auc(&order, &group_ends, &labels, &[1, 1, 1, 1]).unwrap();
        assert!((auc - 0.875).abs() < 1e-12);
        // Doubling sample 2 (fake at the tie): pairs 6 in total, 1 + 1 + 2*(0.5 + 1) = 5 → 5/6.
        let auc = weighted_auc(&order, &group_ends, &labels, &[1, 1, 2, 1]).unwrap();
        assert!((auc - 5.0 / 6.0).abs() < 1e-12);
        assert_eq!(
            weighted_auc(&order, &group_ends, &labels, &[1, 0, 1, 0]),
            None
        );
    }
}

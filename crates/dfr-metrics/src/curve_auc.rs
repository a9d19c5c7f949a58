//! Normalised area under a metric-vs-ε robustness curve (e.g. accuracy under attack as a
//! function of the perturbation budget ε), by the trapezoid rule.
//!
//! The area has the metric's direction: for accuracy or AUC under attack, higher is more
//! robust; for an error rate or attack success rate, lower is more robust.

use serde::{Deserialize, Serialize};

use crate::error::{MetricsError, Result};
use crate::input::check_same_len;

/// How the trapezoid area is normalised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AucNormalization {
    /// Divide by the largest ε (the convention of the published tables). The curve is not
    /// extended to ε = 0: the area is taken from the smallest to the largest ε only.
    ByMaxEps,
    /// Divide by the ε range (largest − smallest): the mean metric value over the range.
    ByRange,
}

/// Trapezoid-rule integral `Σ (x_{i+1} − x_i)(y_i + y_{i+1}) / 2` of `y` over `x`, in the
/// given order (numpy's `trapz`). Errors on length mismatch or non-finite values; fewer
/// than two points give 0.
pub fn trapezoid(x: &[f64], y: &[f64]) -> Result<f64> {
    check_same_len("x", x.len(), "y", y.len())?;
    check_finite("x", x)?;
    check_finite("y", y)?;
    Ok(trapezoid_unchecked(x, y))
}

fn trapezoid_unchecked(x: &[f64], y: &[f64]) -> f64 {
    x.windows(2)
        .zip(y.windows(2))
        .map(|(x, y)| (x[1] - x[0]) * (y[0] + y[1]) / 2.0)
        .sum()
}

fn check_finite(what: &'static str, v: &[f64]) -> Result<()> {
    match v.iter().position(|x| !x.is_finite()) {
        Some(index) => Err(MetricsError::NonFinite {
            what,
            index,
            value: v[index],
        }),
        None => Ok(()),
    }
}

/// Area under `metric` vs `eps` by the trapezoid rule, normalised as `norm` says.
///
/// `eps` need not be sorted (points are sorted by ε, carrying their metric values);
/// errors on length mismatch, fewer than two points, negative or non-finite ε, duplicate
/// ε, or non-finite metric values. The result is on the metric's scale (e.g. a mean
/// accuracy for `ByRange`) and shares its direction.
///
/// ```
/// use dfr_metrics::{normalized_auc, AucNormalization};
/// // robust accuracy at ε = 0, 2/255, 4/255
/// let eps = [0.0, 2.0 / 255.0, 4.0 / 255.0];
/// let acc = [0.9, 0.5, 0.3];
/// let mean = normalized_auc(&eps, &acc, AucNormalization::ByRange)?;
/// assert!((mean - (0.7 + 0.4) / 2.0).abs() < 1e-12); // the mean of the two trapezoids
/// # Ok::<(), dfr_metrics::MetricsError>(())
/// ```
pub fn normalized_auc(eps: &[f64], metric: &[f64], norm: AucNormalization) -> Result<f64> {
    check_same_len("eps", eps.len(), "metric", metric.len())?;
    if eps.len() < 2 {
        return Err(MetricsError::TooFewPoints {
            got: eps.len(),
            needed: 2,
        });
    }
    check_finite("eps", eps)?;
    check_finite("metric", metric)?;
    if let Some(index) = eps.iter().position(|&e| e < 0.0) {
        return Err(MetricsError::NegativeEps {
            index,
            value: eps[index],
        });
    }
    let mut points: Vec<(f64, f64)> = eps.iter().copied().zip(metric.iter().copied()).collect();
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    if let Some(w) = points.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(MetricsError::DuplicateEps { value: w[0].0 });
    }
    let (xs, ys): (Vec<f64>, Vec<f64>) = points.into_iter().unzip();
    let area = trapezoid_unchecked(&xs, &ys);
    let first = xs[0];
    let last = xs[xs.len() - 1];
    // With >= 2 distinct non-negative values, last > 0 and last - first > 0.
    Ok(match norm {
        AucNormalization::ByMaxEps => area / last,
        AucNormalization::ByRange => area / (last - first),
    })
}

/// [`normalized_auc`] divided by the largest ε (convention of the published tables).
pub fn normalized_auc_by_max_eps(eps: &[f64], metric: &[f64]) -> Result<f64> {
    normalized_auc(eps, metric, AucNormalization::ByMaxEps)
}

/// [`normalized_auc`] divided by the ε range (largest − smallest ε).
pub fn normalized_auc_by_range(eps: &[f64], metric: &[f64]) -> Result<f64> {
    normalized_auc(eps, metric, AucNormalization::ByRange)
}

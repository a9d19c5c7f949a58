//! Summaries of a metric over independent runs (seeds): mean, sample standard deviation,
//! the t-based confidence interval of the mean, and how many standard errors two groups'
//! means are apart.

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, StudentsT};

use crate::error::{MetricsError, Result};

/// Errors on a non-finite value (naming its position).
pub(crate) fn check_finite(values: &[f64], what: &'static str) -> Result<()> {
    if let Some((index, &value)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(MetricsError::NonFinite { what, index, value });
    }
    Ok(())
}

fn check(values: &[f64], what: &'static str) -> Result<()> {
    if values.is_empty() {
        return Err(MetricsError::Empty { what });
    }
    check_finite(values, what)
}

/// The `p` quantile of Student's t distribution with `df` degrees of freedom (statrs).
///
/// ```
/// let t = dfr_metrics::t_quantile(0.975, 5.0).unwrap();
/// assert!((t - 2.570_581_836).abs() < 1e-8); // scipy.stats.t.ppf(0.975, 5)
/// ```
pub fn t_quantile(p: f64, df: f64) -> Result<f64> {
    if !(p > 0.0 && p < 1.0) {
        return Err(MetricsError::InvalidConfig(format!(
            "t quantile: probability must be in (0, 1), got {p}"
        )));
    }
    let t = StudentsT::new(0.0, 1.0, df).map_err(|e| {
        MetricsError::InvalidConfig(format!("t distribution with {df} degrees of freedom: {e}"))
    })?;
    Ok(t.inverse_cdf(p))
}

/// A metric over seeds: mean, sample standard deviation and the t-based confidence interval
/// of the mean.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MeanCi {
    /// Number of values (seeds).
    pub n: usize,
    /// Mean.
    pub mean: f64,
    /// Sample standard deviation (`n − 1`).
    pub sd: f64,
    /// Confidence level.
    pub level: f64,
    /// Lower bound, `mean − t(1 − (1 − level)/2, n − 1)·sd/√n`.
    pub ci_low: f64,
    /// Upper bound.
    pub ci_high: f64,
}

/// Mean, sample standard deviation and t-based confidence interval of `values`.
/// Errors on fewer than 2 values (no interval exists), non-finite values or a level
/// outside (0, 1).
///
/// ```
/// let m = dfr_metrics::mean_ci(&[0.70, 0.74, 0.78], 0.95).unwrap();
/// assert!((m.mean - 0.74).abs() < 1e-12 && (m.sd - 0.04).abs() < 1e-12);
/// // 0.74 ± 4.302653 · 0.04 / √3
/// assert!((m.ci_low - 0.640634).abs() < 1e-6 && (m.ci_high - 0.839366).abs() < 1e-6);
/// ```
pub fn mean_ci(values: &[f64], level: f64) -> Result<MeanCi> {
    check(values, "values")?;
    if values.len() < 2 {
        return Err(MetricsError::TooFewPoints {
            got: values.len(),
            needed: 2,
        });
    }
    if !(level > 0.0 && level < 1.0) {
        return Err(MetricsError::InvalidConfig(format!(
            "confidence level must be in (0, 1), got {level}"
        )));
    }
    let n = values.len();
    let (mean, sd) = mean_sd(values)?;
    let half = t_quantile(1.0 - (1.0 - level) / 2.0, (n - 1) as f64)? * sd / (n as f64).sqrt();
    Ok(MeanCi {
        n,
        mean,
        sd,
        level,
        ci_low: mean - half,
        ci_high: mean + half,
    })
}

/// Mean and sample standard deviation (`n − 1` in the denominator; 0 for one value).
///
/// ```
/// let (m, sd) = dfr_metrics::mean_sd(&[1.0, 2.0, 3.0, 4.0]).unwrap();
/// assert_eq!(m, 2.5);
/// assert!((sd - 1.2909944).abs() < 1e-6);
/// assert!(dfr_metrics::mean_sd(&[]).is_err());
/// ```
pub fn mean_sd(values: &[f64]) -> Result<(f64, f64)> {
    check(values, "values")?;
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    if values.len() == 1 {
        return Ok((mean, 0.0));
    }
    let ss: f64 = values.iter().map(|v| (v - mean) * (v - mean)).sum();
    Ok((mean, (ss / (n - 1.0)).sqrt()))
}

/// `(mean(a) − mean(b)) / sqrt(sd(a)²/n_a + sd(b)²/n_b)`: the difference of two independent
/// groups' means in standard errors of that difference (Welch's statistic). Infinite when
/// the means differ and neither group varies, 0 when both are identical constants.
///
/// ```
/// let z = dfr_metrics::standard_errors_apart(&[0.70, 0.74, 0.78], &[0.60, 0.64, 0.68]).unwrap();
/// assert!((z - 3.0619).abs() < 1e-3);
/// ```
pub fn standard_errors_apart(a: &[f64], b: &[f64]) -> Result<f64> {
    check(a, "a")?;
    check(b, "b")?;
    let ((ma, sa), (mb, sb)) = (mean_sd(a)?, mean_sd(b)?);
    let se = (sa * sa / a.len() as f64 + sb * sb / b.len() as f64).sqrt();
    let d = ma - mb;
    Ok(if se > 0.0 {
        d / se
    } else if d == 0.0 {
        0.0
    } else {
        d.signum() * f64::INFINITY
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values_and_edge_cases() {
        // numpy: x.mean(), x.std(ddof=1)
        let (m, s) = mean_sd(&[0.786, 0.755, 0.743, 0.696]).unwrap();
        assert!((m - 0.745).abs() < 1e-12);
        assert!((s - 0.0373542).abs() < 1e-6, "{s}");
        assert_eq!(mean_sd(&[3.0]).unwrap(), (3.0, 0.0));
        assert!(mean_sd(&[1.0, f64::NAN]).is_err());
        assert_eq!(standard_errors_apart(&[1.0, 1.0], &[1.0]).unwrap(), 0.0);
        assert_eq!(
            standard_errors_apart(&[2.0, 2.0], &[1.0]).unwrap(),
            f64::INFINITY
        );
        let z = standard_errors_apart(&[1.0, 2.0, 3.0], &[2.0, 3.0, 4.0]).unwrap();
        assert!((z + 1.224745).abs() < 1e-5, "{z}");
    }
}

//! Summaries of a metric over independent runs (seeds): mean, sample standard deviation,
//! standard error, and how many standard errors two groups' means are apart.

use crate::error::{MetricsError, Result};

fn check(values: &[f64], what: &'static str) -> Result<()> {
    if values.is_empty() {
        return Err(MetricsError::Empty { what });
    }
    if let Some((index, &value)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(MetricsError::NonFinite { what, index, value });
    }
    Ok(())
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

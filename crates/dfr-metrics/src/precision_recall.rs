//! Precision-recall curve and average precision, matching scikit-learn's
//! `precision_recall_curve` and `average_precision_score` (class 1 = fake is positive).

use serde::{Deserialize, Serialize};

use crate::error::{MetricsError, Result};
use crate::input::{Label, Score};
use crate::roc::ScoreCounts;

/// Points of a precision-recall curve in scikit-learn's order: thresholds increasing,
/// and a final point `(precision 1, recall 0)` with no threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrecisionRecallCurve {
    /// Precision (fraction of predicted-fake samples that are fake) at each threshold,
    /// then a final 1; higher is better. `precision.len() == thresholds.len() + 1`.
    pub precision: Vec<f64>,
    /// Recall (fraction of fake samples predicted fake) at each threshold, then a final 0;
    /// higher is better. Non-increasing.
    pub recall: Vec<f64>,
    /// Distinct scores, increasing; point `i` predicts fake for `score >= thresholds[i]`.
    pub thresholds: Vec<f64>,
}

/// Precision-recall curve like scikit-learn's `precision_recall_curve(y_true, y_score)`
/// (`drop_intermediate=False`).
///
/// Errors on bad input and with [`MetricsError::SingleClass`] if there is no fake sample
/// (recall undefined).
pub fn precision_recall_curve<L: Label, S: Score>(
    labels: &[L],
    scores: &[S],
) -> Result<PrecisionRecallCurve> {
    let counts = positive_counts(labels, scores, "precision_recall_curve")?;
    let (precision, recall) = pr_points(&counts);
    let mut curve = PrecisionRecallCurve {
        precision: precision.into_iter().rev().collect(),
        recall: recall.into_iter().rev().collect(),
        thresholds: counts.thresholds.into_iter().rev().collect(),
    };
    curve.precision.push(1.0);
    curve.recall.push(0.0);
    Ok(curve)
}

/// Average precision in `[0, 1]`; higher is better.
///
/// `AP = Σ_n (R_n − R_{n−1}) · P_n` over the distinct score thresholds (descending, with
/// `R_{-1} = 0`), without interpolation, exactly as scikit-learn's
/// `average_precision_score`. Errors with [`MetricsError::SingleClass`] if there is no
/// fake sample; with only fake samples it is 1.
pub fn average_precision<L: Label, S: Score>(labels: &[L], scores: &[S]) -> Result<f64> {
    let counts = positive_counts(labels, scores, "average_precision")?;
    Ok(average_precision_from_counts(&counts))
}

pub(crate) fn average_precision_from_counts(counts: &ScoreCounts) -> f64 {
    let (precision, recall) = pr_points(counts);
    let mut prev_recall = 0.0;
    let mut ap = 0.0;
    for (p, r) in precision.iter().zip(&recall) {
        ap += (r - prev_recall) * p;
        prev_recall = *r;
    }
    ap
}

fn positive_counts<L: Label, S: Score>(
    labels: &[L],
    scores: &[S],
    metric: &'static str,
) -> Result<ScoreCounts> {
    let counts = ScoreCounts::from_inputs(labels, scores)?;
    if counts.positives == 0 {
        return Err(MetricsError::SingleClass { present: 0, metric });
    }
    Ok(counts)
}

/// Precision and recall at each distinct threshold, thresholds descending.
fn pr_points(counts: &ScoreCounts) -> (Vec<f64>, Vec<f64>) {
    let p = counts.positives as f64;
    counts
        .tps
        .iter()
        .zip(&counts.fps)
        .map(|(&tp, &fp)| (tp as f64 / (tp + fp) as f64, tp as f64 / p))
        .unzip()
}

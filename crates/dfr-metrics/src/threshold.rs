//! Turning scores into decisions: the `score >= threshold → fake` rule and helpers that
//! choose a threshold (fixed, Youden's J, equal error rate, best macro-F1).

use serde::{Deserialize, Serialize};

use crate::classification::binary_macro_f1_from_counts;
use crate::error::{MetricsError, Result};
use crate::input::{finite_scores, require_both_classes, Label, Score};
use crate::roc::{eer_point_from_curve, roc_from_counts, ScoreCounts};

/// The conventional fixed threshold on the probability of class fake.
pub const DEFAULT_THRESHOLD: f64 = 0.5;

/// Hard predictions: 1 (fake) where `score >= threshold`, else 0 (real).
///
/// Errors if the threshold is NaN or a score is not finite. `threshold = +inf` predicts
/// everything real.
pub fn predict<S: Score>(scores: &[S], threshold: f64) -> Result<Vec<u8>> {
    if threshold.is_nan() {
        return Err(MetricsError::InvalidThreshold(threshold));
    }
    Ok(finite_scores("scores", scores)?
        .into_iter()
        .map(|s| u8::from(s >= threshold))
        .collect())
}

/// A chosen threshold and the value of the criterion it optimises.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ThresholdChoice {
    /// Predict fake for `score >= threshold` (may be `+inf`: predict everything real).
    pub threshold: f64,
    /// The criterion at that threshold (Youden's J, the EER, or the macro-F1 — see the
    /// function that produced it).
    pub value: f64,
}

/// How to choose the decision threshold.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum ThresholdRule {
    /// A fixed threshold (e.g. [`DEFAULT_THRESHOLD`]).
    Fixed(f64),
    /// Maximise Youden's J = TPR − FPR ([`youden_threshold`]).
    YoudenJ,
    /// The threshold of the equal-error-rate point ([`eer_threshold`]).
    Eer,
    /// Maximise macro-F1 ([`best_macro_f1_threshold`]).
    MaxMacroF1,
}

impl ThresholdRule {
    /// The threshold this rule picks on a (validation) set; `Fixed` ignores the data
    /// but still rejects a NaN threshold.
    pub fn choose<L: Label, S: Score>(&self, labels: &[L], scores: &[S]) -> Result<f64> {
        match *self {
            ThresholdRule::Fixed(t) if t.is_nan() => Err(MetricsError::InvalidThreshold(t)),
            ThresholdRule::Fixed(t) => Ok(t),
            ThresholdRule::YoudenJ => Ok(youden_threshold(labels, scores)?.threshold),
            ThresholdRule::Eer => Ok(eer_threshold(labels, scores)?.threshold),
            ThresholdRule::MaxMacroF1 => Ok(best_macro_f1_threshold(labels, scores)?.threshold),
        }
    }
}

fn counts_both_classes<L: Label, S: Score>(
    labels: &[L],
    scores: &[S],
    metric: &'static str,
) -> Result<ScoreCounts> {
    let counts = ScoreCounts::from_inputs(labels, scores)?;
    require_both_classes(counts.positives, counts.negatives, metric)?;
    Ok(counts)
}

/// Threshold maximising Youden's J = TPR − FPR (`value` = J in `[-1, 1]`, higher is better)
/// over the points of [`crate::roc_curve`]; ties go to the first (highest) threshold.
pub fn youden_threshold<L: Label, S: Score>(labels: &[L], scores: &[S]) -> Result<ThresholdChoice> {
    let counts = counts_both_classes(labels, scores, "youden_threshold")?;
    let curve = roc_from_counts(&counts, true);
    let mut best = ThresholdChoice {
        threshold: curve.thresholds[0],
        value: curve.tpr[0] - curve.fpr[0],
    };
    for ((&t, &tpr), &fpr) in curve.thresholds.iter().zip(&curve.tpr).zip(&curve.fpr) {
        let j = tpr - fpr;
        if j > best.value {
            best = ThresholdChoice {
                threshold: t,
                value: j,
            };
        }
    }
    Ok(best)
}

/// Threshold of the equal-error-rate point (`value` = EER, lower is better); see
/// [`crate::eer_point`].
pub fn eer_threshold<L: Label, S: Score>(labels: &[L], scores: &[S]) -> Result<ThresholdChoice> {
    let counts = counts_both_classes(labels, scores, "eer_threshold")?;
    let point = eer_point_from_curve(&roc_from_counts(&counts, true));
    Ok(ThresholdChoice {
        threshold: point.threshold,
        value: point.eer,
    })
}

/// Threshold maximising binary macro-F1 (mean of real and fake F1; `value` = that
/// macro-F1, higher is better), meant for a validation set.
///
/// Candidates are `+inf` (everything real) and every distinct score; the returned
/// threshold is one of them, so `score >= threshold` reproduces `value` exactly on this
/// set. Ties go to the highest threshold. Requires both classes.
pub fn best_macro_f1_threshold<L: Label, S: Score>(
    labels: &[L],
    scores: &[S],
) -> Result<ThresholdChoice> {
    let counts = counts_both_classes(labels, scores, "best_macro_f1_threshold")?;
    let (p, n) = (counts.positives, counts.negatives);
    let f1_at = |tp: u64, fp: u64| binary_macro_f1_from_counts(tp, fp, p - tp, n - fp);
    let mut best = ThresholdChoice {
        threshold: f64::INFINITY,
        value: f1_at(0, 0),
    };
    for ((&tp, &fp), &t) in counts.tps.iter().zip(&counts.fps).zip(&counts.thresholds) {
        let f1 = f1_at(tp, fp);
        if f1 > best.value {
            best = ThresholdChoice {
                threshold: t,
                value: f1,
            };
        }
    }
    Ok(best)
}

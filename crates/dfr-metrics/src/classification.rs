//! Accuracy, per-class precision / recall / F1 and their macro and binary averages.
//!
//! Division by zero follows scikit-learn's `zero_division=0`: a precision, recall or F1
//! whose denominator is zero is reported as 0.

use serde::{Deserialize, Serialize};

use crate::confusion::{BinaryConfusion, ConfusionMatrix};
use crate::error::Result;
use crate::input::{check_non_empty, check_same_len, Label};

/// Fraction of samples with `y_pred[i] == y_true[i]`, in `[0, 1]`; higher is better.
///
/// Labels are compared as class indices; errors on length mismatch or empty input.
pub fn accuracy<T: Label, P: Label>(y_true: &[T], y_pred: &[P]) -> Result<f64> {
    check_same_len("y_true", y_true.len(), "y_pred", y_pred.len())?;
    check_non_empty("y_true", y_true.len())?;
    let correct = y_true
        .iter()
        .zip(y_pred)
        .filter(|(t, p)| t.class_index() == p.class_index())
        .count();
    Ok(correct as f64 / y_true.len() as f64)
}

/// Precision, recall and F1 of one class (one-vs-rest); all in `[0, 1]`, higher is better.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct ClassScores {
    /// `TP / (TP + FP)`: of the samples predicted as this class, the fraction that are (0 if none predicted).
    pub precision: f64,
    /// `TP / (TP + FN)`: of the samples of this class, the fraction found (0 if the class is absent).
    pub recall: f64,
    /// Harmonic mean of precision and recall, `2TP / (2TP + FP + FN)` (0 if that denominator is 0).
    pub f1: f64,
    /// Number of samples whose true class is this class.
    pub support: u64,
}

impl ClassScores {
    /// Scores from one-vs-rest counts, with `zero_division = 0`.
    pub fn from_counts(tp: u64, fp: u64, fn_: u64) -> Self {
        let ratio = |num: u64, den: u64| {
            if den == 0 {
                0.0
            } else {
                num as f64 / den as f64
            }
        };
        Self {
            precision: ratio(tp, tp + fp),
            recall: ratio(tp, tp + fn_),
            f1: ratio(2 * tp, 2 * tp + fp + fn_),
            support: tp + fn_,
        }
    }
}

/// One [`ClassScores`] per class of the matrix (index = class).
pub fn per_class_scores(cm: &ConfusionMatrix) -> Vec<ClassScores> {
    (0..cm.n_classes())
        .map(|c| {
            let tp = cm.get(c, c).unwrap_or(0);
            ClassScores::from_counts(tp, cm.predicted(c) - tp, cm.support(c) - tp)
        })
        .collect()
}

/// Per-class precision, recall and F1 for classes `0..n_classes` (index = class).
pub fn precision_recall_f1<T: Label, P: Label>(
    y_true: &[T],
    y_pred: &[P],
    n_classes: usize,
) -> Result<Vec<ClassScores>> {
    Ok(per_class_scores(&ConfusionMatrix::from_labels(
        y_true, y_pred, n_classes,
    )?))
}

/// Unweighted mean of the per-class F1 over ALL classes `0..n_classes`, in `[0, 1]`; higher is better.
///
/// Classes absent from both `y_true` and `y_pred` count with F1 = 0 (scikit-learn with
/// `labels=range(n_classes), average="macro", zero_division=0`).
pub fn macro_f1<T: Label, P: Label>(y_true: &[T], y_pred: &[P], n_classes: usize) -> Result<f64> {
    Ok(macro_f1_from_matrix(&ConfusionMatrix::from_labels(
        y_true, y_pred, n_classes,
    )?))
}

/// Macro-F1 (mean per-class F1 over all classes of the matrix); higher is better.
pub fn macro_f1_from_matrix(cm: &ConfusionMatrix) -> f64 {
    let scores = per_class_scores(cm);
    scores.iter().map(|s| s.f1).sum::<f64>() / scores.len() as f64
}

/// Binary macro-F1: mean of the F1 of class 0 (real) and class 1 (fake), in `[0, 1]`;
/// higher is better. This is scikit-learn's `f1_score(average="macro")` on binary data.
///
/// Not to be confused with [`binary_f1`], the F1 of the fake class only.
///
/// ```
/// use dfr_metrics::{binary_f1, binary_macro_f1};
/// let (y_true, y_pred) = ([0u8, 0, 1, 1, 1], [0u8, 1, 1, 1, 0]);
/// // real: precision 1/2, recall 1/2 → F1 0.5; fake: precision 2/3, recall 2/3 → F1 2/3
/// assert!((binary_macro_f1(&y_true, &y_pred)? - (0.5 + 2.0 / 3.0) / 2.0).abs() < 1e-12);
/// assert!((binary_f1(&y_true, &y_pred)? - 2.0 / 3.0).abs() < 1e-12);
/// # Ok::<(), dfr_metrics::MetricsError>(())
/// ```
pub fn binary_macro_f1<T: Label, P: Label>(y_true: &[T], y_pred: &[P]) -> Result<f64> {
    macro_f1(y_true, y_pred, 2)
}

/// Binary F1: the F1 of the positive class 1 (fake) only, in `[0, 1]`; higher is better.
/// This is scikit-learn's `f1_score(average="binary")`.
///
/// Not a macro average: see [`binary_macro_f1`].
pub fn binary_f1<T: Label, P: Label>(y_true: &[T], y_pred: &[P]) -> Result<f64> {
    let c = BinaryConfusion::from_labels(y_true, y_pred)?;
    Ok(ClassScores::from_counts(c.true_positives, c.false_positives, c.false_negatives).f1)
}

/// Macro-F1 of binary counts (mean of real-class and fake-class F1).
pub(crate) fn binary_macro_f1_from_counts(tp: u64, fp: u64, fn_: u64, tn: u64) -> f64 {
    let fake = ClassScores::from_counts(tp, fp, fn_).f1;
    let real = ClassScores::from_counts(tn, fn_, fp).f1;
    (fake + real) / 2.0
}

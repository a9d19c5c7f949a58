//! ROC curve, ROC-AUC and equal error rate, matching scikit-learn's `roc_curve` /
//! `roc_auc_score` on binary data (class 1 = fake is the positive class).

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::input::{binary_inputs, require_both_classes, Label, Score};

/// Cumulative counts at each distinct score, scores descending (scikit-learn's
/// `_binary_clf_curve`): predicting fake for `score >= thresholds[k]` gives
/// `tps[k]` true positives and `fps[k]` false positives.
#[derive(Debug, Clone)]
pub(crate) struct ScoreCounts {
    pub tps: Vec<u64>,
    pub fps: Vec<u64>,
    pub thresholds: Vec<f64>,
    pub positives: u64,
    pub negatives: u64,
}

impl ScoreCounts {
    /// Computes the counts from validated inputs (labels as bools, finite scores).
    pub fn new(labels: &[bool], scores: &[f64]) -> Self {
        let mut order: Vec<usize> = (0..scores.len()).collect();
        order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
        let mut tps = Vec::new();
        let mut fps = Vec::new();
        let mut thresholds = Vec::new();
        let (mut tp, mut fp) = (0u64, 0u64);
        for (k, &i) in order.iter().enumerate() {
            if labels[i] {
                tp += 1;
            } else {
                fp += 1;
            }
            // Close a group at the last index of each run of equal scores
            // (`==`, so -0.0 and 0.0 form one group as in numpy's `diff != 0`).
            let last_of_group = order
                .get(k + 1)
                .is_none_or(|&next| scores[next] != scores[i]);
            if last_of_group {
                tps.push(tp);
                fps.push(fp);
                thresholds.push(scores[i]);
            }
        }
        Self {
            tps,
            fps,
            thresholds,
            positives: tp,
            negatives: fp,
        }
    }

    /// Validates raw inputs, then counts.
    pub fn from_inputs<L: Label, S: Score>(labels: &[L], scores: &[S]) -> Result<Self> {
        let (labels, scores) = binary_inputs(labels, scores)?;
        Ok(Self::new(&labels, &scores))
    }

    /// Area under the full ROC curve by the trapezoid rule, computed exactly on counts.
    /// Requires both classes (checked by the caller).
    pub fn auc(&self) -> f64 {
        // 2 * area * P * N = sum over segments of dFP * (TP_k + TP_{k-1}).
        let mut twice_area: u128 = 0;
        let (mut prev_tp, mut prev_fp) = (0u64, 0u64);
        for (&tp, &fp) in self.tps.iter().zip(&self.fps) {
            twice_area += u128::from(fp - prev_fp) * u128::from(tp + prev_tp);
            prev_tp = tp;
            prev_fp = fp;
        }
        twice_area as f64 / (2.0 * self.positives as f64 * self.negatives as f64)
    }
}

/// Points of a ROC curve, ordered by decreasing threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RocCurve {
    /// False positive rate (real samples predicted fake / real samples) at each threshold; lower is better.
    pub fpr: Vec<f64>,
    /// True positive rate (fake samples predicted fake / fake samples) at each threshold; higher is better.
    pub tpr: Vec<f64>,
    /// Decision thresholds, strictly decreasing; `thresholds[0] = +inf` (nothing predicted
    /// fake), then the distinct scores. Point `i` predicts fake for `score >= thresholds[i]`.
    pub thresholds: Vec<f64>,
}

impl RocCurve {
    /// Number of points.
    pub fn len(&self) -> usize {
        self.thresholds.len()
    }

    /// Whether the curve has no points (never true for a curve built by this crate).
    pub fn is_empty(&self) -> bool {
        self.thresholds.is_empty()
    }

    /// False negative rate `1 - tpr` at each point; lower is better.
    pub fn fnr(&self) -> Vec<f64> {
        self.tpr.iter().map(|t| 1.0 - t).collect()
    }
}

/// ROC curve like scikit-learn's `roc_curve(y_true, y_score)` with its default
/// `drop_intermediate=True`: collinear intermediate points are dropped, a first point
/// `(0, 0)` with threshold `+inf` is prepended.
///
/// Errors on length mismatch, empty input, labels other than 0/1, non-finite scores, or
/// when only one class is present (rates would be undefined).
pub fn roc_curve<L: Label, S: Score>(labels: &[L], scores: &[S]) -> Result<RocCurve> {
    roc_curve_with(labels, scores, true)
}

/// ROC curve with explicit control of scikit-learn's `drop_intermediate`:
/// `false` keeps one point per distinct score (plus the `+inf` point).
pub fn roc_curve_with<L: Label, S: Score>(
    labels: &[L],
    scores: &[S],
    drop_intermediate: bool,
) -> Result<RocCurve> {
    let counts = ScoreCounts::from_inputs(labels, scores)?;
    require_both_classes(counts.positives, counts.negatives, "roc_curve")?;
    Ok(roc_from_counts(&counts, drop_intermediate))
}

pub(crate) fn roc_from_counts(counts: &ScoreCounts, drop_intermediate: bool) -> RocCurve {
    let n = counts.tps.len();
    let keep: Vec<usize> =
        if drop_intermediate && n > 2 {
            // Keep the ends and every point where the second difference of fps or tps is
            // non-zero (numpy: np.diff(x, 2)), i.e. the corners of the curve.
            let second_diff = |v: &[u64], i: usize| {
                i128::from(v[i + 1]) - 2 * i128::from(v[i]) + i128::from(v[i - 1])
            };
            std::iter::once(0)
                .chain((1..n - 1).filter(|&i| {
                    second_diff(&counts.fps, i) != 0 || second_diff(&counts.tps, i) != 0
                }))
                .chain(std::iter::once(n - 1))
                .collect()
        } else {
            (0..n).collect()
        };
    let p = counts.positives as f64;
    let neg = counts.negatives as f64;
    let mut curve = RocCurve {
        fpr: Vec::with_capacity(keep.len() + 1),
        tpr: Vec::with_capacity(keep.len() + 1),
        thresholds: Vec::with_capacity(keep.len() + 1),
    };
    curve.fpr.push(0.0);
    curve.tpr.push(0.0);
    curve.thresholds.push(f64::INFINITY);
    for &i in &keep {
        curve.fpr.push(counts.fps[i] as f64 / neg);
        curve.tpr.push(counts.tps[i] as f64 / p);
        curve.thresholds.push(counts.thresholds[i]);
    }
    curve
}

/// Area under the ROC curve, in `[0, 1]`; higher is better (0.5 = chance).
///
/// Trapezoid rule over the full curve, so tied scores count half: equals the probability
/// that a random fake sample scores higher than a random real one, plus half the
/// probability of a tie. Matches scikit-learn's `roc_auc_score` on binary labels.
/// Errors with [`crate::MetricsError::SingleClass`] if only one class is present.
///
/// ```
/// use dfr_metrics::roc_auc;
/// // labels 0 = real, 1 = fake; scores = fake probability
/// let auc = roc_auc(&[0u8, 0, 1, 1], &[0.1f32, 0.6, 0.4, 0.9])?;
/// assert_eq!(auc, 0.75); // 3 of the 4 (real, fake) pairs are ordered correctly
/// assert!(roc_auc(&[1u8, 1], &[0.2f32, 0.3]).is_err()); // one class only
/// # Ok::<(), dfr_metrics::MetricsError>(())
/// ```
pub fn roc_auc<L: Label, S: Score>(labels: &[L], scores: &[S]) -> Result<f64> {
    let counts = ScoreCounts::from_inputs(labels, scores)?;
    require_both_classes(counts.positives, counts.negatives, "roc_auc")?;
    Ok(counts.auc())
}

/// The equal-error-rate point of a ROC curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EerPoint {
    /// Equal error rate `(fpr + fnr) / 2` at the chosen point, in `[0, 1]`; lower is better.
    pub eer: f64,
    /// False positive rate at the chosen point.
    pub fpr: f64,
    /// False negative rate `1 - tpr` at the chosen point.
    pub fnr: f64,
    /// Threshold of the chosen point (predict fake for `score >= threshold`; may be `+inf`).
    pub threshold: f64,
    /// Index of the chosen point in [`roc_curve`]'s output.
    pub index: usize,
}

/// Equal-error-rate point on [`roc_curve`]'s points (`drop_intermediate=True`): the
/// first index `i` minimising `|fnr_i - fpr_i|`, with `eer = (fpr_i + fnr_i) / 2`.
pub fn eer_point<L: Label, S: Score>(labels: &[L], scores: &[S]) -> Result<EerPoint> {
    Ok(eer_point_from_curve(&roc_curve(labels, scores)?))
}

/// Equal error rate in `[0, 1]`; lower is better. See [`eer_point`] for the definition.
pub fn eer<L: Label, S: Score>(labels: &[L], scores: &[S]) -> Result<f64> {
    Ok(eer_point(labels, scores)?.eer)
}

/// [`EerPoint`] of an existing curve (first minimiser of `|fnr - fpr|`).
///
/// The curve must be non-empty (curves built by this crate always are); an empty curve
/// yields a point of NaNs.
pub fn eer_point_from_curve(curve: &RocCurve) -> EerPoint {
    let mut best: Option<(usize, f64)> = None;
    for (i, (&fpr, &tpr)) in curve.fpr.iter().zip(&curve.tpr).enumerate() {
        let gap = ((1.0 - tpr) - fpr).abs();
        if best.is_none_or(|(_, g)| gap < g) {
            best = Some((i, gap));
        }
    }
    match best {
        Some((i, _)) => {
            let fpr = curve.fpr[i];
            let fnr = 1.0 - curve.tpr[i];
            EerPoint {
                eer: (fpr + fnr) / 2.0,
                fpr,
                fnr,
                threshold: curve.thresholds[i],
                index: i,
            }
        }
        None => EerPoint {
            eer: f64::NAN,
            fpr: f64::NAN,
            fnr: f64::NAN,
            threshold: f64::NAN,
            index: 0,
        },
    }
}

//! A serialisable summary of every binary metric at one threshold.

use serde::{Deserialize, Serialize};

use crate::classification::ClassScores;
use crate::confusion::BinaryConfusion;
use crate::error::{MetricsError, Result};
use crate::input::{binary_inputs, require_both_classes, Label, Score};
use crate::precision_recall::average_precision_from_counts;
use crate::roc::{eer_point_from_curve, roc_from_counts, ScoreCounts};

/// All binary detection metrics of one evaluation (class 1 = fake is positive).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BinaryReport {
    /// Decision threshold used for the hard-prediction metrics (`score >= threshold → fake`).
    pub threshold: f64,
    /// Number of samples.
    pub n_samples: usize,
    /// Fraction of correct hard predictions; higher is better.
    pub accuracy: f64,
    /// Mean of the real-class and fake-class F1 (true macro-F1); higher is better.
    pub macro_f1: f64,
    /// F1 of the fake class only (scikit-learn `average="binary"`); higher is better.
    pub binary_f1: f64,
    /// Precision, recall, F1 and support of class 0 (real); higher is better.
    pub real: ClassScores,
    /// Precision, recall, F1 and support of class 1 (fake); higher is better.
    pub fake: ClassScores,
    /// Area under the ROC curve (threshold-free); higher is better, 0.5 = chance.
    pub roc_auc: f64,
    /// Average precision for the fake class (threshold-free); higher is better.
    pub average_precision: f64,
    /// Equal error rate (threshold-free); lower is better.
    pub eer: f64,
    /// Confusion counts at `threshold`.
    pub confusion: BinaryConfusion,
}

impl BinaryReport {
    /// Computes every metric from labels (0/1), fake-class scores and a threshold.
    ///
    /// Errors on bad input (length mismatch, empty, invalid labels, non-finite scores, NaN
    /// threshold) and with [`MetricsError::SingleClass`] if only one class is present
    /// (ROC-AUC and EER are undefined then).
    pub fn compute<L: Label, S: Score>(labels: &[L], scores: &[S], threshold: f64) -> Result<Self> {
        if threshold.is_nan() {
            return Err(MetricsError::InvalidThreshold(threshold));
        }
        let (labels, scores) = binary_inputs(labels, scores)?;
        let counts = ScoreCounts::new(&labels, &scores);
        require_both_classes(counts.positives, counts.negatives, "BinaryReport")?;

        let mut confusion = BinaryConfusion::default();
        for (&fake, &s) in labels.iter().zip(&scores) {
            match (fake, s >= threshold) {
                (false, false) => confusion.true_negatives += 1,
                (false, true) => confusion.false_positives += 1,
                (true, false) => confusion.false_negatives += 1,
                (true, true) => confusion.true_positives += 1,
            }
        }
        let c = confusion;
        let fake = ClassScores::from_counts(c.true_positives, c.false_positives, c.false_negatives);
        let real = ClassScores::from_counts(c.true_negatives, c.false_negatives, c.false_positives);
        let eer = eer_point_from_curve(&roc_from_counts(&counts, true)).eer;
        Ok(Self {
            threshold,
            n_samples: labels.len(),
            accuracy: (c.true_positives + c.true_negatives) as f64 / labels.len() as f64,
            macro_f1: (real.f1 + fake.f1) / 2.0,
            binary_f1: fake.f1,
            real,
            fake,
            roc_auc: counts.auc(),
            average_precision: average_precision_from_counts(&counts),
            eer,
            confusion,
        })
    }
}

//! Confusion matrices: rows are the true class, columns the predicted class.

use serde::{Deserialize, Serialize};

use crate::error::{MetricsError, Result};
use crate::input::{check_non_empty, check_same_len, class_indices, Label};

/// An `n × n` confusion matrix; entry `(t, p)` counts samples of true class `t`
/// predicted as class `p` (rows true, columns predicted, like scikit-learn).
///
/// Serialises as a list of rows (`[[u64; n]; n]`), validated when deserialised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<Vec<u64>>", into = "Vec<Vec<u64>>")]
pub struct ConfusionMatrix {
    n_classes: usize,
    /// Row-major counts, `n_classes * n_classes` long.
    counts: Vec<u64>,
}

impl ConfusionMatrix {
    /// Counts `(y_true[i], y_pred[i])` pairs for classes `0..n_classes`.
    ///
    /// Errors on length mismatch, empty input, `n_classes == 0`, or a label `>= n_classes`.
    pub fn from_labels<T: Label, P: Label>(
        y_true: &[T],
        y_pred: &[P],
        n_classes: usize,
    ) -> Result<Self> {
        if n_classes == 0 {
            return Err(MetricsError::InvalidConfig(
                "n_classes must be at least 1".into(),
            ));
        }
        check_same_len("y_true", y_true.len(), "y_pred", y_pred.len())?;
        check_non_empty("y_true", y_true.len())?;
        let t = class_indices(y_true, n_classes)?;
        let p = class_indices(y_pred, n_classes)?;
        let mut counts = vec![0u64; n_classes * n_classes];
        for (&t, &p) in t.iter().zip(&p) {
            counts[t * n_classes + p] += 1;
        }
        Ok(Self { n_classes, counts })
    }

    /// Builds a matrix from rows (true class) of counts per predicted class.
    ///
    /// Errors unless the rows form a non-empty square matrix.
    pub fn from_rows(rows: Vec<Vec<u64>>) -> Result<Self> {
        let n_classes = rows.len();
        if n_classes == 0 {
            return Err(MetricsError::Empty {
                what: "confusion matrix rows",
            });
        }
        if let Some(bad) = rows.iter().find(|r| r.len() != n_classes) {
            return Err(MetricsError::InvalidConfig(format!(
                "confusion matrix must be square: {n_classes} rows but a row has {} columns",
                bad.len()
            )));
        }
        Ok(Self {
            n_classes,
            counts: rows.into_iter().flatten().collect(),
        })
    }

    /// Number of classes `n`.
    pub fn n_classes(&self) -> usize {
        self.n_classes
    }

    /// Count of samples of true class `true_class` predicted as `predicted`
    /// (`None` if either index is out of range).
    pub fn get(&self, true_class: usize, predicted: usize) -> Option<u64> {
        (true_class < self.n_classes && predicted < self.n_classes)
            .then(|| self.counts[true_class * self.n_classes + predicted])
    }

    /// The matrix as rows (true class) of counts per predicted class.
    pub fn rows(&self) -> Vec<Vec<u64>> {
        self.counts
            .chunks(self.n_classes)
            .map(<[u64]>::to_vec)
            .collect()
    }

    /// Total number of samples.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Number of correctly classified samples (the trace).
    pub fn correct(&self) -> u64 {
        (0..self.n_classes)
            .map(|c| self.counts[c * self.n_classes + c])
            .sum()
    }

    /// Number of samples whose true class is `class` (row sum; 0 if out of range).
    pub fn support(&self, class: usize) -> u64 {
        if class >= self.n_classes {
            return 0;
        }
        self.counts[class * self.n_classes..(class + 1) * self.n_classes]
            .iter()
            .sum()
    }

    /// Number of samples predicted as `class` (column sum; 0 if out of range).
    pub fn predicted(&self, class: usize) -> u64 {
        if class >= self.n_classes {
            return 0;
        }
        (0..self.n_classes)
            .map(|t| self.counts[t * self.n_classes + class])
            .sum()
    }

    /// Fraction of correctly classified samples (higher is better); 0 for an empty matrix.
    pub fn accuracy(&self) -> f64 {
        let total = self.total();
        if total == 0 {
            0.0
        } else {
            self.correct() as f64 / total as f64
        }
    }
}

impl TryFrom<Vec<Vec<u64>>> for ConfusionMatrix {
    type Error = MetricsError;

    fn try_from(rows: Vec<Vec<u64>>) -> Result<Self> {
        Self::from_rows(rows)
    }
}

impl From<ConfusionMatrix> for Vec<Vec<u64>> {
    fn from(m: ConfusionMatrix) -> Self {
        m.rows()
    }
}

/// Binary confusion counts with class 1 (fake) as the positive class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BinaryConfusion {
    /// Real samples predicted real.
    pub true_negatives: u64,
    /// Real samples predicted fake.
    pub false_positives: u64,
    /// Fake samples predicted real.
    pub false_negatives: u64,
    /// Fake samples predicted fake.
    pub true_positives: u64,
}

impl BinaryConfusion {
    /// Counts binary labels against binary predictions (both must be 0 or 1).
    pub fn from_labels<T: Label, P: Label>(y_true: &[T], y_pred: &[P]) -> Result<Self> {
        Ok(Self::from(&ConfusionMatrix::from_labels(
            y_true, y_pred, 2,
        )?))
    }

    /// Rows true, columns predicted: `[[tn, fp], [fn, tp]]` (scikit-learn layout).
    pub fn as_rows(&self) -> [[u64; 2]; 2] {
        [
            [self.true_negatives, self.false_positives],
            [self.false_negatives, self.true_positives],
        ]
    }

    /// Total number of samples.
    pub fn total(&self) -> u64 {
        self.true_negatives + self.false_positives + self.false_negatives + self.true_positives
    }

    /// Number of fake (positive) samples.
    pub fn positives(&self) -> u64 {
        self.true_positives + self.false_negatives
    }

    /// Number of real (negative) samples.
    pub fn negatives(&self) -> u64 {
        self.true_negatives + self.false_positives
    }

    /// The general `2 × 2` matrix.
    pub fn to_matrix(&self) -> ConfusionMatrix {
        ConfusionMatrix {
            n_classes: 2,
            counts: self.as_rows().into_iter().flatten().collect(),
        }
    }
}

impl From<&ConfusionMatrix> for BinaryConfusion {
    /// Takes the top-left `2 × 2` block (classes 0 and 1) of `m`; missing entries count 0.
    fn from(m: &ConfusionMatrix) -> Self {
        let g = |t, p| m.get(t, p).unwrap_or(0);
        Self {
            true_negatives: g(0, 0),
            false_positives: g(0, 1),
            false_negatives: g(1, 0),
            true_positives: g(1, 1),
        }
    }
}

//! Input conversion traits and validation helpers shared by all metrics.

use crate::error::{MetricsError, Result};

/// A class label that can be turned into a class index (0 = real, 1 = fake for binary metrics).
///
/// Implemented for the unsigned integer types and `bool` (`true` = fake).
pub trait Label: Copy {
    /// The class index; values that do not fit a `usize` saturate to `usize::MAX`
    /// (and are then rejected as invalid labels).
    fn class_index(self) -> usize;
}

macro_rules! impl_label {
    ($($t:ty),*) => {$(
        impl Label for $t {
            #[inline]
            fn class_index(self) -> usize {
                usize::try_from(self).unwrap_or(usize::MAX)
            }
        }
    )*};
}
impl_label!(u8, u16, u32, u64, usize);

impl Label for bool {
    #[inline]
    fn class_index(self) -> usize {
        usize::from(self)
    }
}

/// A real-valued score (for binary metrics: the probability, or any monotone score, of class fake).
///
/// Implemented for `f32` and `f64`; computations are done in `f64`.
pub trait Score: Copy {
    /// The score as `f64`.
    fn as_f64(self) -> f64;
}

impl Score for f32 {
    #[inline]
    fn as_f64(self) -> f64 {
        f64::from(self)
    }
}

impl Score for f64 {
    #[inline]
    fn as_f64(self) -> f64 {
        self
    }
}

pub(crate) fn check_same_len(
    left_name: &'static str,
    left: usize,
    right_name: &'static str,
    right: usize,
) -> Result<()> {
    if left != right {
        return Err(MetricsError::LengthMismatch {
            left_name,
            left,
            right_name,
            right,
        });
    }
    Ok(())
}

pub(crate) fn check_non_empty(what: &'static str, len: usize) -> Result<()> {
    if len == 0 {
        return Err(MetricsError::Empty { what });
    }
    Ok(())
}

/// Converts labels to class indices, checking each is `< n_classes`.
pub(crate) fn class_indices<L: Label>(labels: &[L], n_classes: usize) -> Result<Vec<usize>> {
    labels
        .iter()
        .enumerate()
        .map(|(index, &l)| {
            let label = l.class_index();
            if label < n_classes {
                Ok(label)
            } else {
                Err(MetricsError::InvalidLabel {
                    index,
                    label,
                    n_classes,
                })
            }
        })
        .collect()
}

/// Converts binary labels to `bool` (true = fake), rejecting anything but 0/1.
pub(crate) fn binary_labels<L: Label>(labels: &[L]) -> Result<Vec<bool>> {
    Ok(class_indices(labels, 2)?
        .into_iter()
        .map(|c| c == 1)
        .collect())
}

/// Converts scores to `f64`, rejecting NaN and infinities.
pub(crate) fn finite_scores<S: Score>(what: &'static str, scores: &[S]) -> Result<Vec<f64>> {
    scores
        .iter()
        .enumerate()
        .map(|(index, &s)| {
            let value = s.as_f64();
            if value.is_finite() {
                Ok(value)
            } else {
                Err(MetricsError::NonFinite { what, index, value })
            }
        })
        .collect()
}

/// Validated binary labels and finite scores of equal, non-zero length.
pub(crate) fn binary_inputs<L: Label, S: Score>(
    labels: &[L],
    scores: &[S],
) -> Result<(Vec<bool>, Vec<f64>)> {
    check_same_len("labels", labels.len(), "scores", scores.len())?;
    check_non_empty("labels", labels.len())?;
    Ok((binary_labels(labels)?, finite_scores("scores", scores)?))
}

/// Errors with [`MetricsError::SingleClass`] unless both classes occur.
pub(crate) fn require_both_classes(
    positives: u64,
    negatives: u64,
    metric: &'static str,
) -> Result<()> {
    if positives == 0 || negatives == 0 {
        return Err(MetricsError::SingleClass {
            present: usize::from(positives > 0),
            metric,
        });
    }
    Ok(())
}

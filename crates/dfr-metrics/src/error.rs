//! Typed errors returned by every fallible metric.

use thiserror::Error;

/// Convenient alias for results of this crate.
pub type Result<T, E = MetricsError> = std::result::Result<T, E>;

/// Why a metric could not be computed.
///
/// No function of this crate panics on bad input: every problem with the data is
/// reported through one of these variants.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum MetricsError {
    /// Two inputs that must be aligned element by element have different lengths.
    #[error("length mismatch: {left_name} has {left} elements but {right_name} has {right}")]
    LengthMismatch {
        /// Name of the first input.
        left_name: &'static str,
        /// Length of the first input.
        left: usize,
        /// Name of the second input.
        right_name: &'static str,
        /// Length of the second input.
        right: usize,
    },
    /// An input slice is empty.
    #[error("empty input: {what} has no elements")]
    Empty {
        /// Name of the empty input.
        what: &'static str,
    },
    /// The metric needs both classes in the ground truth (e.g. ROC-AUC, EER) but only one is present.
    #[error("only one class present in the labels (class {present}); {metric} needs both real (0) and fake (1) samples")]
    SingleClass {
        /// The only class found.
        present: usize,
        /// The metric that could not be computed.
        metric: &'static str,
    },
    /// A score (or other real-valued input) is NaN or infinite.
    #[error("non-finite value {value} in {what} at index {index}")]
    NonFinite {
        /// Name of the input.
        what: &'static str,
        /// Position of the offending value.
        index: usize,
        /// The offending value.
        value: f64,
    },
    /// A label is outside `0..n_classes` (for binary metrics: not 0 or 1).
    #[error("invalid label {label} at index {index}: expected a class in 0..{n_classes}")]
    InvalidLabel {
        /// Position of the offending label.
        index: usize,
        /// The offending label (saturated to `usize::MAX` if it does not fit).
        label: usize,
        /// Number of classes expected.
        n_classes: usize,
    },
    /// A decision threshold is NaN.
    #[error("invalid threshold {0}: must not be NaN")]
    InvalidThreshold(f64),
    /// A curve abscissa (eps) is negative.
    #[error("negative eps {value} at index {index}")]
    NegativeEps {
        /// Position of the offending value.
        index: usize,
        /// The offending value.
        value: f64,
    },
    /// The same eps appears twice in a metric-vs-eps curve.
    #[error("duplicate eps {value}")]
    DuplicateEps {
        /// The duplicated value.
        value: f64,
    },
    /// Too few points to define an area (at least `needed` are required).
    #[error("too few points: got {got}, need at least {needed}")]
    TooFewPoints {
        /// Number of points given.
        got: usize,
        /// Minimum number of points.
        needed: usize,
    },
    /// A configuration value is out of range (number of classes, bootstrap settings, …).
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// Every bootstrap resample was skipped (e.g. a class was absent from each one).
    #[error("all {resamples} bootstrap resamples were skipped (one class absent in each)")]
    NoValidResamples {
        /// Number of resamples drawn.
        resamples: usize,
    },
}

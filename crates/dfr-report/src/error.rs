//! Typed errors returned by every fallible function of this crate.

use std::path::PathBuf;

use thiserror::Error;

/// Convenient alias for results of this crate.
pub type Result<T, E = ReportError> = std::result::Result<T, E>;

/// Why a table, plot or report could not be produced.
///
/// No function of this crate panics on bad input: every problem with the data or the
/// file system is reported through one of these variants.
#[derive(Debug, Error)]
pub enum ReportError {
    /// Reading or writing a file failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// polars could not build, write or read a DataFrame.
    #[error("polars error: {0}")]
    Polars(#[from] polars::error::PolarsError),
    /// Encoding or decoding an image failed.
    #[error("image error: {0}")]
    Image(#[from] image::ImageError),
    /// A metric needed for a figure could not be computed.
    #[error("metric error: {0}")]
    Metrics(#[from] dfr_metrics::MetricsError),
    /// plotters failed while drawing a figure.
    #[error("drawing failed: {0}")]
    Draw(String),
    /// The embedded font could not be parsed or registered.
    #[error("the embedded font could not be registered")]
    Font,
    /// An input that must contain something is empty.
    #[error("empty input: {what}")]
    Empty {
        /// Name of the empty input.
        what: String,
    },
    /// Two inputs that must be aligned have different lengths.
    #[error("length mismatch: {what}: expected {expected}, found {found}")]
    LengthMismatch {
        /// What was being compared.
        what: String,
        /// The expected length.
        expected: usize,
        /// The length found.
        found: usize,
    },
    /// A value that must be drawn is NaN or infinite.
    #[error("non-finite value {value} in {what} at index {index}")]
    NonFinite {
        /// Name of the input holding the value.
        what: String,
        /// Index of the offending value.
        index: usize,
        /// The offending value.
        value: f64,
    },
    /// A value lies outside the range it must be in.
    #[error("value {value} in {what} at index {index} is outside [{min}, {max}]")]
    OutOfRange {
        /// Name of the input holding the value.
        what: String,
        /// Index of the offending value.
        index: usize,
        /// The offending value.
        value: f64,
        /// Smallest allowed value.
        min: f64,
        /// Largest allowed value.
        max: f64,
    },
    /// Any other invalid argument (e.g. a zero-sized figure, log scale with ε ≤ 0).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

impl ReportError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn empty(what: impl Into<String>) -> Self {
        Self::Empty { what: what.into() }
    }

    pub(crate) fn mismatch(what: impl Into<String>, expected: usize, found: usize) -> Self {
        Self::LengthMismatch {
            what: what.into(),
            expected,
            found,
        }
    }
}

/// Check that every value of `values` is finite.
pub(crate) fn check_finite(what: &str, values: &[f64]) -> Result<()> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(ReportError::NonFinite {
            what: what.to_owned(),
            index,
            value: values[index],
        }),
        None => Ok(()),
    }
}

/// Check that every value of `values` is finite and within `[min, max]`.
pub(crate) fn check_range(what: &str, values: &[f64], min: f64, max: f64) -> Result<()> {
    check_finite(what, values)?;
    match values.iter().position(|v| *v < min || *v > max) {
        Some(index) => Err(ReportError::OutOfRange {
            what: what.to_owned(),
            index,
            value: values[index],
            min,
            max,
        }),
        None => Ok(()),
    }
}

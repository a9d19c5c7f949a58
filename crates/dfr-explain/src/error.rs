//! Error type of the crate.

use std::path::PathBuf;

/// Errors of Grad-CAM, overlays, consistency metrics and parity checks.
///
/// Bad input (wrong shapes, out-of-range classes or values, mismatched map sizes) is
/// reported as [`ExplainError::InvalidInput`]; nothing in this crate panics on it.
#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    /// An error from candle (tensor operations, back-propagation).
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// An error from the model crate (e.g. loading fixture weights).
    #[error(transparent)]
    Model(#[from] dfr_model::Error),
    /// An I/O error with the path involved.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Encoding an image failed.
    #[error("{path}: image encoding failed: {source}")]
    Image {
        /// The file being written.
        path: PathBuf,
        /// The underlying error.
        source: image::ImageError,
    },
    /// Invalid argument: shapes, stage index, target classes, value ranges.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A reference-vector file is missing or malformed.
    #[error("fixture: {0}")]
    Fixture(String),
}

/// Result alias of the crate.
pub type Result<T, E = ExplainError> = std::result::Result<T, E>;

impl ExplainError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ExplainError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn invalid(msg: impl Into<String>) -> Self {
        ExplainError::InvalidInput(msg.into())
    }
}

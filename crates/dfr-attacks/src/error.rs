//! Error type of the crate.

use std::path::PathBuf;

/// Errors of attacks and robust evaluation. Bad input never panics: it is reported
/// through one of these variants.
#[derive(Debug, thiserror::Error)]
pub enum AttackError {
    /// An error from candle (shapes, devices, kernels).
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// An error of the model crate (checkpoint loading, a checkpoint that is not a
    /// binary detector of the requested architecture).
    #[error(transparent)]
    Model(#[from] dfr_model::Error),
    /// An error of the data crate (decoding, loader configuration).
    #[error(transparent)]
    Data(#[from] dfr_data::DataError),
    /// A metric could not be computed.
    #[error(transparent)]
    Metrics(#[from] dfr_metrics::MetricsError),
    /// An I/O error with the path involved.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A report or manifest could not be serialised.
    #[error("cannot serialise the {what} as {format}: {message}")]
    Serialize {
        /// What was serialised.
        what: &'static str,
        /// The format (`JSON`, `CSV`).
        format: &'static str,
        /// The serialiser's message.
        message: String,
    },
    /// ε is negative, not finite or larger than 1 (images live in [0, 1]).
    #[error("invalid epsilon {0}: must be finite and in [0, 1]")]
    InvalidEps(f64),
    /// The number of iterations of an iterative attack is 0.
    #[error("invalid number of steps {steps} for {attack}: must be at least 1")]
    InvalidSteps {
        /// The attack.
        attack: String,
        /// The value given.
        steps: usize,
    },
    /// Any other invalid parameter (step size, decay, batch size, ε list, …).
    #[error("invalid parameter `{name}`: {message}")]
    InvalidParam {
        /// The parameter.
        name: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The model does not have the number of classes the evaluation needs
    /// (e.g. a 1000-class ImageNet model used as a binary real/fake detector).
    #[error("model has {found} output classes, expected {expected}")]
    ClassMismatch {
        /// Classes expected.
        expected: usize,
        /// Classes of the model (or of its logits).
        found: usize,
    },
    /// Input tensors of the wrong shape, dtype or range.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The loader / sample list yielded nothing to evaluate.
    #[error("no samples to evaluate")]
    NoSamples,
}

/// Result alias of the crate.
pub type Result<T, E = AttackError> = std::result::Result<T, E>;

impl AttackError {
    pub(crate) fn param(name: &'static str, message: impl Into<String>) -> Self {
        AttackError::InvalidParam {
            name,
            message: message.into(),
        }
    }

    pub(crate) fn serialize(
        what: &'static str,
        format: &'static str,
        e: &dyn std::fmt::Display,
    ) -> Self {
        AttackError::Serialize {
            what,
            format,
            message: e.to_string(),
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        AttackError::Io {
            path: path.into(),
            source,
        }
    }
}

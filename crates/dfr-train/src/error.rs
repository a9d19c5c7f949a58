//! Typed training errors.

use std::path::PathBuf;

/// Result alias.
pub type Result<T, E = TrainError> = std::result::Result<T, E>;

/// What can go wrong while configuring or running training.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A configuration value is invalid (checked before any work).
    #[error("invalid configuration `{field}`: {message}")]
    Config {
        /// Dotted key.
        field: String,
        /// What was expected.
        message: String,
    },
    /// The TOML file could not be read or parsed.
    #[error("{path}: {message}")]
    ConfigFile {
        /// The file.
        path: PathBuf,
        /// Parser message (names the unknown key or wrong type).
        message: String,
    },
    /// The loss became NaN or infinite.
    #[error(
        "non-finite loss ({value}) at epoch {epoch}, step {step}; training stopped, the last \
         good checkpoint is kept"
    )]
    NonFinite {
        /// Epoch (0-based).
        epoch: usize,
        /// Global step (0-based).
        step: usize,
        /// The loss value.
        value: f32,
    },
    /// Resume state missing or inconsistent.
    #[error("cannot resume from `{path}`: {message}")]
    Resume {
        /// The run directory or file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// Data pipeline error.
    #[error(transparent)]
    Data(#[from] dfr_data::DataError),
    /// Model error.
    #[error(transparent)]
    Model(#[from] dfr_model::Error),
    /// Tensor error.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// Metrics error.
    #[error(transparent)]
    Metrics(#[from] dfr_metrics::MetricsError),
    /// Filesystem error.
    #[error("{action} `{path}`: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

impl TrainError {
    /// Configuration error helper.
    pub fn config(field: impl Into<String>, message: impl Into<String>) -> Self {
        TrainError::Config {
            field: field.into(),
            message: message.into(),
        }
    }

    /// I/O error helper.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        TrainError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

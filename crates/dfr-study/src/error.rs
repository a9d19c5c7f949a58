//! The study's error type: what failed, with the step it failed in.

use std::fmt::Display;

/// Result of this crate.
pub type Result<T, E = StudyError> = std::result::Result<T, E>;

/// Why a study could not run.
#[derive(Debug, thiserror::Error)]
pub enum StudyError {
    /// A study file holds an invalid or unknown value; `key` names it.
    #[error("{file}: {key}: {message}")]
    Config {
        /// The study file (or how it is named in messages).
        file: String,
        /// The offending key, e.g. `arms[2].name`.
        key: String,
        /// What was expected.
        message: String,
    },
    /// A study file is not valid TOML or does not match the schema.
    #[error("{file}: {message}")]
    Parse {
        /// The study file.
        file: String,
        /// The parser's message (it names the key and line).
        message: String,
    },
    /// An invalid option or argument of a study run (not from the study file).
    #[error("{0}")]
    Invalid(String),
    /// A step of the study failed; the source says why.
    #[error("{context}")]
    Step {
        /// The step, e.g. `training gradreg seed 3`.
        context: String,
        /// Why it failed.
        #[source]
        source: Box<StudyError>,
    },
    /// Reading or writing a file.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// Training (configuration, checkpoints, resume).
    #[error(transparent)]
    Train(#[from] dfr_train::TrainError),
    /// Data (layout, decoding, synthetic generation).
    #[error(transparent)]
    Data(#[from] dfr_data::DataError),
    /// The model (weights, devices).
    #[error(transparent)]
    Model(#[from] dfr_model::Error),
    /// Tensor operations.
    #[error(transparent)]
    Tensor(#[from] candle_core::Error),
    /// Attacks and robust evaluation.
    #[error(transparent)]
    Attack(#[from] dfr_attacks::AttackError),
    /// Grad-CAM and CAM consistency.
    #[error(transparent)]
    Explain(#[from] dfr_explain::ExplainError),
    /// Metrics and statistics.
    #[error(transparent)]
    Metrics(#[from] dfr_metrics::MetricsError),
    /// Tables, figures and report pages.
    #[error(transparent)]
    Report(#[from] dfr_report::ReportError),
    /// JSON of caches and summaries.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

impl StudyError {
    /// A [`StudyError::Config`] error.
    pub fn config(file: impl Display, key: impl Display, message: impl Display) -> Self {
        StudyError::Config {
            file: file.to_string(),
            key: key.to_string(),
            message: message.to_string(),
        }
    }
}

/// Adds the step a fallible call belongs to (`.step(|| format!("training {arm}"))`).
pub(crate) trait StepContext<T> {
    /// Wraps the error in [`StudyError::Step`].
    fn step<C: Display>(self, context: impl FnOnce() -> C) -> Result<T>;
}

impl<T, E: Into<StudyError>> StepContext<T> for std::result::Result<T, E> {
    fn step<C: Display>(self, context: impl FnOnce() -> C) -> Result<T> {
        self.map_err(|e| StudyError::Step {
            context: context().to_string(),
            source: Box::new(e.into()),
        })
    }
}

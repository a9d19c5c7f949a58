//! Error type of the crate.

use std::path::PathBuf;

/// Errors of model construction, weight loading, checkpoints and parity checks.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An error from candle.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// An I/O error with the path involved.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A tensor the model needs is missing from a weight file.
    #[error("missing tensor `{name}` (looked for `{source_name}` in {naming} naming), expected shape {expected:?}")]
    MissingTensor {
        /// Internal (torchvision-style) name.
        name: String,
        /// Name in the file's naming scheme.
        source_name: String,
        /// Detected naming scheme.
        naming: String,
        /// Shape the model expects.
        expected: Vec<usize>,
    },
    /// A tensor in a weight file has a different shape than the model's.
    #[error("tensor `{name}` (`{source_name}` in the file) has shape {found:?}, the model expects {expected:?}")]
    ShapeMismatch {
        /// Internal (torchvision-style) name.
        name: String,
        /// Name in the file.
        source_name: String,
        /// Shape the model expects.
        expected: Vec<usize>,
        /// Shape in the file.
        found: Vec<usize>,
    },
    /// The tensor names of a weight file match no known naming scheme.
    #[error("cannot tell the naming of the weights in {0}: no torchvision (`features.0.0.weight`), timm (`conv_stem.weight`) or efficientnet_pytorch (`_conv_stem.weight`) stem found")]
    UnknownNaming(String),
    /// An unknown architecture name.
    #[error("unknown architecture `{0}` (expected efficientnet_b0..b7 or efficientnet_lite0..4)")]
    UnknownArch(String),
    /// Resolving or downloading `hf:` weights failed.
    #[error("hugging face hub: {0}")]
    Hub(String),
    /// A weight file cannot be read as weights.
    #[error("weight file {path}: {message}")]
    WeightFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A checkpoint is malformed.
    #[error("checkpoint {path}: {message}")]
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A checkpoint is not a binary real/fake detector (e.g. a 1000-class ImageNet
    /// model where a detector was expected).
    #[error("checkpoint {path}: {found} output classes, a real/fake detector has {expected}")]
    ClassMismatch {
        /// The checkpoint.
        path: PathBuf,
        /// Classes expected.
        expected: usize,
        /// Classes of the checkpoint.
        found: usize,
    },
    /// A checkpoint's architecture differs from the one requested.
    #[error("checkpoint {path}: architecture {found}, expected {expected}")]
    ArchMismatch {
        /// The checkpoint.
        path: PathBuf,
        /// Architecture requested.
        expected: String,
        /// Architecture in the checkpoint.
        found: String,
    },
    /// Invalid argument (stage index, shapes, configuration).
    #[error("{0}")]
    Invalid(String),
    /// A fixture needed by a parity check is missing or malformed.
    #[error("fixture: {0}")]
    Fixture(String),
}

/// Result alias of the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

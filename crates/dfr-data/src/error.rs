//! Typed errors of the data pipeline.

use std::path::PathBuf;

/// Result alias for this crate.
pub type Result<T, E = DataError> = std::result::Result<T, E>;

/// Everything that can go wrong while scanning, decoding, augmenting or generating data.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The dataset root does not exist or is not a directory.
    #[error("dataset root `{root}` does not exist or is not a directory\n{expected}")]
    MissingRoot {
        /// The root that was given.
        root: PathBuf,
        /// A description of the expected layout.
        expected: String,
    },
    /// The layout matched no image at all.
    #[error("no images found under `{root}` for the `{layout}` layout\n{expected}")]
    NothingMatched {
        /// The root that was scanned.
        root: PathBuf,
        /// The layout name.
        layout: String,
        /// A description of the expected layout.
        expected: String,
    },
    /// A split has no samples (after source selection).
    #[error("split `{split}` of `{root}` is empty{detail}\n{expected}")]
    EmptySplit {
        /// The dataset root.
        root: PathBuf,
        /// The split that is empty.
        split: String,
        /// Extra detail, e.g. the active source filter.
        detail: String,
        /// A description of the expected layout.
        expected: String,
    },
    /// A DFFD source folder is neither known nor mapped in the configuration.
    #[error(
        "unknown DFFD source folder `{name}` in `{root}`; known sources: {known}. \
         Map it in the data config, e.g. `sources = {{ {name} = \"fake\" }}`"
    )]
    UnknownSource {
        /// The folder name.
        name: String,
        /// The dataset root.
        root: PathBuf,
        /// Comma-separated list of the known names.
        known: String,
    },
    /// A source filter names a source that does not exist in the dataset.
    #[error("source filter for split `{split}` names `{name}`, which is not in the dataset (present: {present})")]
    UnknownFilterSource {
        /// The split whose filter is wrong.
        split: String,
        /// The unknown name.
        name: String,
        /// Names present in the dataset.
        present: String,
    },
    /// A CSV manifest is malformed.
    #[error("{path}:{line}: {message}")]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// 1-based line number (0 for file-level problems).
        line: usize,
        /// What was wrong and what was expected.
        message: String,
    },
    /// An image could not be read or decoded.
    #[error("cannot decode image `{path}`: {message}")]
    Decode {
        /// The image file.
        path: PathBuf,
        /// The decoder's message.
        message: String,
    },
    /// Too many undecodable images in one split.
    #[error(
        "{bad} of {total} images of split `{split}` are unreadable (more than the allowed \
         fraction {max_fraction}); first ones:\n{files}"
    )]
    TooManyBadFiles {
        /// The split.
        split: String,
        /// Number of bad files seen.
        bad: usize,
        /// Number of samples in the split.
        total: usize,
        /// The configured maximum fraction.
        max_fraction: f64,
        /// A list of the first bad files with their errors.
        files: String,
    },
    /// A configuration value is out of range.
    #[error("invalid configuration `{field}`: {message}")]
    Config {
        /// The offending field.
        field: String,
        /// What was expected.
        message: String,
    },
    /// Filesystem error with the path involved.
    #[error("{action} `{path}`: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A manipulation mask does not fit its image.
    #[error("mask `{mask}` is {mask_size} but its image `{image}` is {image_size}: a mask must have its image's size")]
    MaskSize {
        /// The mask file.
        mask: PathBuf,
        /// The image file.
        image: PathBuf,
        /// The mask's `width×height`.
        mask_size: String,
        /// The image's `width×height`.
        image_size: String,
    },
    /// Image encoding error (synthetic data).
    #[error("cannot encode `{path}`: {message}")]
    Encode {
        /// The output path.
        path: PathBuf,
        /// The encoder's message.
        message: String,
    },
}

impl DataError {
    /// Helper for I/O errors.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DataError::Io {
            action,
            path: path.into(),
            source,
        }
    }

    /// Helper for configuration errors.
    pub fn config(field: impl Into<String>, message: impl Into<String>) -> Self {
        DataError::Config {
            field: field.into(),
            message: message.into(),
        }
    }
}

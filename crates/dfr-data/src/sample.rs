//! Samples, labels and splits.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;

/// Ground-truth class. The numeric value is the class index used by the models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Label {
    /// A real (pristine) face, class 0.
    Real = 0,
    /// A manipulated or synthesised face, class 1.
    Fake = 1,
}

impl Label {
    /// Class index (real = 0, fake = 1).
    pub fn index(self) -> usize {
        self as usize
    }

    /// Parses `real`/`fake`/`0`/`1` (case-insensitive).
    pub fn parse(s: &str) -> Option<Label> {
        match s.trim().to_ascii_lowercase().as_str() {
            "real" | "0" | "pristine" => Some(Label::Real),
            "fake" | "1" => Some(Label::Fake),
            _ => None,
        }
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Label::Real => "real",
            Label::Fake => "fake",
        })
    }
}

/// Dataset split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// Training data.
    Train,
    /// Validation data (early stopping, model selection).
    Validation,
    /// Held-out test data.
    Test,
}

impl Split {
    /// All splits in canonical order.
    pub const ALL: [Split; 3] = [Split::Train, Split::Validation, Split::Test];

    /// Canonical folder / config name.
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Validation => "validation",
            Split::Test => "test",
        }
    }

    /// Parses `train`, `val`/`validation`/`valid`, `test` (case-insensitive).
    pub fn parse(s: &str) -> Option<Split> {
        match s.trim().to_ascii_lowercase().as_str() {
            "train" | "training" => Some(Split::Train),
            "val" | "valid" | "validation" => Some(Split::Validation),
            "test" | "testing" => Some(Split::Test),
            _ => None,
        }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One image of a dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sample {
    /// Path to the image file.
    pub path: PathBuf,
    /// Real or fake.
    pub label: Label,
    /// Generation method / source name (e.g. `ffhq`, `stylegan_ffhq`).
    pub method: String,
    /// The split the image belongs to.
    pub split: Split,
    /// The video a frame comes from (the CSV layout's `video` column), for video-level
    /// metrics; `None` for still images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video: Option<String>,
}

/// True when the file name has an image extension this crate decodes (png, jpg, jpeg).
pub fn is_image_file(path: &std::path::Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .map(|e| matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg"))
        .unwrap_or(false)
}

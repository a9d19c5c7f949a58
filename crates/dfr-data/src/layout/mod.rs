//! Dataset layouts and the scanned [`Dataset`].
//!
//! Three layouts are understood:
//! * [`LayoutKind::Dffd`] — the official DFFD release: `<root>/<source>/{train,validation,test}/*`;
//! * [`LayoutKind::Folder`] — `<root>/{train,val|validation,test}/{real,fake}/[method/]…`;
//! * [`LayoutKind::Csv`] — a manifest `path,label,split[,method]` with paths relative to it.
//!
//! Source (method) selection per split is part of [`DataConfig`], so leave-one-method-out
//! experiments are a configuration change.

pub mod csv;
pub mod dffd;
pub mod folder;

use crate::error::{DataError, Result};
use crate::sample::{Label, Sample, Split};
use crate::weights::ClassWeights;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Which on-disk layout the dataset uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LayoutKind {
    /// DFFD official: `<root>/<source>/{train,validation,test}/*.{png,jpg,jpeg}`.
    #[default]
    Dffd,
    /// Image folder: `<root>/{train,val|validation,test}/{real,fake}/[method/]…`.
    Folder,
    /// CSV manifest `path,label,split[,method]`.
    Csv,
}

impl LayoutKind {
    /// Parses `dffd`, `folder`, `csv`.
    pub fn parse(s: &str) -> Option<LayoutKind> {
        match s.to_ascii_lowercase().as_str() {
            "dffd" => Some(LayoutKind::Dffd),
            "folder" | "imagefolder" => Some(LayoutKind::Folder),
            "csv" | "manifest" => Some(LayoutKind::Csv),
            _ => None,
        }
    }

    /// Human-readable description of the expected layout, used in error messages.
    pub fn expected(self) -> &'static str {
        match self {
            LayoutKind::Dffd => dffd::EXPECTED,
            LayoutKind::Folder => folder::EXPECTED,
            LayoutKind::Csv => csv::EXPECTED,
        }
    }
}

/// Which sources (methods) a split keeps. An empty `include` keeps all; `exclude` removes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SourceFilter {
    /// Keep only these sources (empty: keep every source).
    pub include: Vec<String>,
    /// Drop these sources.
    pub exclude: Vec<String>,
}

impl SourceFilter {
    /// Whether a source passes the filter.
    pub fn keeps(&self, method: &str) -> bool {
        (self.include.is_empty() || self.include.iter().any(|m| m == method))
            && !self.exclude.iter().any(|m| m == method)
    }

    fn is_noop(&self) -> bool {
        self.include.is_empty() && self.exclude.is_empty()
    }
}

/// Where the data is and how to read it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataConfig {
    /// Dataset root directory (for `csv`, the manifest file or a directory holding
    /// `manifest.csv`).
    pub root: PathBuf,
    /// On-disk layout.
    pub layout: LayoutKind,
    /// Extra DFFD source folders and their labels, e.g. `{ mysrc = "fake" }`; also overrides
    /// the label of a known source.
    pub sources: BTreeMap<String, Label>,
    /// Source selection for the train split.
    pub train: SourceFilter,
    /// Source selection for the validation split.
    pub validation: SourceFilter,
    /// Source selection for the test split.
    pub test: SourceFilter,
    /// Largest tolerated fraction of undecodable images in a split before aborting.
    pub max_bad_fraction: f64,
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            root: PathBuf::from("data/synthetic-dffd"),
            layout: LayoutKind::Dffd,
            sources: BTreeMap::new(),
            train: SourceFilter::default(),
            validation: SourceFilter::default(),
            test: SourceFilter::default(),
            max_bad_fraction: 0.001,
        }
    }
}

impl DataConfig {
    /// A config for `root` with the given layout and defaults otherwise.
    pub fn new(root: impl Into<PathBuf>, layout: LayoutKind) -> Self {
        DataConfig {
            root: root.into(),
            layout,
            ..Default::default()
        }
    }

    /// The source filter of a split.
    pub fn filter(&self, split: Split) -> &SourceFilter {
        match split {
            Split::Train => &self.train,
            Split::Validation => &self.validation,
            Split::Test => &self.test,
        }
    }

    /// Checks value ranges.
    pub fn validate(&self) -> Result<()> {
        if !(0.0..=1.0).contains(&self.max_bad_fraction) {
            return Err(DataError::config(
                "data.max_bad_fraction",
                format!("must be in [0, 1], got {}", self.max_bad_fraction),
            ));
        }
        Ok(())
    }

    /// Scans the dataset: every image of every split, filtered per split.
    pub fn scan(&self) -> Result<Dataset> {
        self.validate()?;
        let expected = self.layout.expected().to_string();
        if !self.root.exists() || (self.layout != LayoutKind::Csv && !self.root.is_dir()) {
            return Err(DataError::MissingRoot {
                root: self.root.clone(),
                expected,
            });
        }
        let all = match self.layout {
            LayoutKind::Dffd => dffd::scan(&self.root, &self.sources)?,
            LayoutKind::Folder => folder::scan(&self.root)?,
            LayoutKind::Csv => csv::scan(&self.root)?,
        };
        if all.is_empty() {
            return Err(DataError::NothingMatched {
                root: self.root.clone(),
                layout: format!("{:?}", self.layout).to_lowercase(),
                expected,
            });
        }
        let present: BTreeSet<&str> = all.iter().map(|s| s.method.as_str()).collect();
        for split in Split::ALL {
            let f = self.filter(split);
            for name in f.include.iter().chain(&f.exclude) {
                if !present.contains(name.as_str()) {
                    return Err(DataError::UnknownFilterSource {
                        split: split.name().into(),
                        name: name.clone(),
                        present: present.iter().copied().collect::<Vec<_>>().join(", "),
                    });
                }
            }
        }
        let samples = all
            .into_iter()
            .filter(|s| self.filter(s.split).keeps(&s.method))
            .collect();
        Ok(Dataset {
            root: self.root.clone(),
            layout: self.layout,
            samples,
            filters: [
                self.train.clone(),
                self.validation.clone(),
                self.test.clone(),
            ],
            max_bad_fraction: self.max_bad_fraction,
        })
    }
}

/// A scanned dataset: all samples of all splits, sorted by split, then path.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// The root it was scanned from.
    pub root: PathBuf,
    /// The layout.
    pub layout: LayoutKind,
    /// Every sample, sorted (split, path).
    pub samples: Vec<Sample>,
    filters: [SourceFilter; 3],
    /// Largest tolerated fraction of undecodable images per split.
    pub max_bad_fraction: f64,
}

impl Dataset {
    /// Samples of one split (possibly empty).
    pub fn split(&self, split: Split) -> Vec<Sample> {
        self.samples
            .iter()
            .filter(|s| s.split == split)
            .cloned()
            .collect()
    }

    /// Samples of one split; an empty split is an error that shows the expected layout.
    pub fn require_split(&self, split: Split) -> Result<Vec<Sample>> {
        let v = self.split(split);
        if v.is_empty() {
            let f = &self.filters[split as usize];
            let detail = if f.is_noop() {
                String::new()
            } else {
                format!(" after source selection {f:?}")
            };
            return Err(DataError::EmptySplit {
                root: self.root.clone(),
                split: split.name().into(),
                detail,
                expected: self.layout.expected().into(),
            });
        }
        Ok(v)
    }

    /// Class weights of the train split.
    pub fn class_weights(&self) -> Result<ClassWeights> {
        Ok(ClassWeights::from_samples(
            &self.require_split(Split::Train)?,
        ))
    }

    /// Counts per (split, method, label).
    pub fn counts(&self) -> BTreeMap<(Split, String, Label), usize> {
        let mut m = BTreeMap::new();
        for s in &self.samples {
            *m.entry((s.split, s.method.clone(), s.label)).or_insert(0) += 1;
        }
        m
    }
}

/// Lists the image files below `dir`, recursively, sorted; hidden entries and non-images are
/// skipped. Symbolic links are followed (a data set may link to images elsewhere), but each
/// directory is listed once: one that contains the listed directory (a loop such as
/// `self -> .` or `up -> ..`) or was reached before (a second link to it) is skipped with a
/// warning, so nothing is counted twice and a loop cannot make the scan run forever.
pub(crate) fn list_images(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let canonical =
        |d: &Path| std::fs::canonicalize(d).map_err(|e| DataError::io("resolving", d, e));
    let root = canonical(dir)?;
    let mut seen = std::collections::BTreeSet::new();
    seen.insert(root.clone());
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let rd = std::fs::read_dir(&d).map_err(|e| DataError::io("reading directory", &d, e))?;
        for entry in rd {
            let entry = entry.map_err(|e| DataError::io("reading directory", &d, e))?;
            let path = entry.path();
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            if path.is_dir() {
                let real = canonical(&path)?;
                // the listed directory or one above it (a loop), or one already listed
                if root.starts_with(&real) || !seen.insert(real.clone()) {
                    tracing::warn!(
                        "skipping {}: it is {}, which contains or was already part of the listing \
                         (a symbolic-link loop or a second link to it)",
                        path.display(),
                        real.display()
                    );
                    continue;
                }
                stack.push(path);
            } else if crate::sample::is_image_file(&path) {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Sub-directories of `dir`, sorted by name, hidden ones skipped.
pub(crate) fn subdirs(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    let rd = std::fs::read_dir(dir).map_err(|e| DataError::io("reading directory", dir, e))?;
    for entry in rd {
        let entry = entry.map_err(|e| DataError::io("reading directory", dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') && entry.path().is_dir() {
            out.push((name, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

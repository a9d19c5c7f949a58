//! Book-keeping of unreadable images.

use crate::error::DataError;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

/// One unreadable file and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BadFile {
    /// The file.
    pub path: PathBuf,
    /// The decoder's message.
    pub error: String,
}

/// The bad files of one split, shared by the loader's workers. A file that failed once is not
/// retried in later epochs.
#[derive(Debug, Default)]
pub struct BadFiles {
    inner: Mutex<BTreeMap<usize, BadFile>>,
}

impl BadFiles {
    /// Records a failure of sample `index`; logs a warning the first time.
    pub fn record(&self, index: usize, path: PathBuf, error: String) {
        let mut m = self.inner.lock().expect("bad-file registry poisoned");
        if let std::collections::btree_map::Entry::Vacant(e) = m.entry(index) {
            tracing::warn!("skipping unreadable image {}: {}", path.display(), error);
            e.insert(BadFile { path, error });
        }
    }

    /// Whether sample `index` is known to be bad.
    pub fn contains(&self, index: usize) -> bool {
        self.inner
            .lock()
            .expect("bad-file registry poisoned")
            .contains_key(&index)
    }

    /// Number of bad files.
    pub fn len(&self) -> usize {
        self.inner.lock().expect("bad-file registry poisoned").len()
    }

    /// Whether no file is bad.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bad files, in sample order.
    pub fn list(&self) -> Vec<BadFile> {
        self.inner
            .lock()
            .expect("bad-file registry poisoned")
            .values()
            .cloned()
            .collect()
    }

    /// Errors if more than `max_fraction` of `total` samples are bad.
    pub fn check(&self, split: &str, total: usize, max_fraction: f64) -> Result<(), DataError> {
        let bad = self.list();
        if bad.len() as f64 > max_fraction * total as f64 {
            let files = bad
                .iter()
                .take(20)
                .map(|b| format!("  {}: {}", b.path.display(), b.error))
                .collect::<Vec<_>>()
                .join("\n");
            return Err(DataError::TooManyBadFiles {
                split: split.into(),
                bad: bad.len(),
                total,
                max_fraction,
                files,
            });
        }
        Ok(())
    }
}

//! Atomic file writes ([`dfr_fs`]) with this crate's errors.

use std::io::Write;
use std::path::Path;

use dfr_fs::AtomicFile;

use crate::error::{ReportError, Result};

/// Write a file atomically: `write` fills a temporary file in the same directory as
/// `path` (created if missing), which is then synced and renamed over `path`. Readers
/// never see a half-written file; on error the temporary file is removed.
pub(crate) fn write_atomic<F>(path: &Path, write: F) -> Result<()>
where
    F: FnOnce(&mut AtomicFile) -> Result<()>,
{
    if path.file_name().is_none() {
        return Err(ReportError::InvalidArgument(format!(
            "{} does not name a file",
            path.display()
        )));
    }
    let mut file = AtomicFile::create(path).map_err(|e| ReportError::io(path, e))?;
    write(&mut file)?;
    file.commit().map_err(|e| ReportError::io(path, e))
}

/// Write `bytes` to `path` atomically.
pub(crate) fn write_bytes(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic(path, |w| {
        w.write_all(bytes).map_err(|e| ReportError::io(path, e))
    })
}

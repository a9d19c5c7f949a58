//! Atomic file writes: write to a temporary file in the destination directory, then rename.

use std::fs;
use std::io::{BufWriter, Write};
use std::path::Path;

use crate::error::{ReportError, Result};

/// Write a file atomically: `write` fills a temporary file created in the same directory
/// as `path` (created if missing), which is then flushed, synced and renamed over `path`.
/// Readers never see a half-written file; on error the temporary file is removed.
pub(crate) fn write_atomic<F>(path: &Path, write: F) -> Result<()>
where
    F: FnOnce(&mut BufWriter<&mut fs::File>) -> Result<()>,
{
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    if path.file_name().is_none() {
        return Err(ReportError::InvalidArgument(format!(
            "{} does not name a file",
            path.display()
        )));
    }
    fs::create_dir_all(&dir).map_err(|e| ReportError::io(&dir, e))?;
    let mut builder = tempfile::Builder::new();
    builder.prefix(".dfr-report-").suffix(".tmp");
    // Temporary files are private (0600) by default; reports are meant to be shared.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(fs::Permissions::from_mode(0o644));
    }
    let mut tmp = builder
        .tempfile_in(&dir)
        .map_err(|e| ReportError::io(&dir, e))?;
    {
        let mut writer = BufWriter::new(tmp.as_file_mut());
        write(&mut writer)?;
        writer.flush().map_err(|e| ReportError::io(path, e))?;
    }
    tmp.as_file()
        .sync_all()
        .map_err(|e| ReportError::io(path, e))?;
    tmp.persist(path)
        .map_err(|e| ReportError::io(path, e.error))?;
    Ok(())
}

/// Write `bytes` to `path` atomically.
pub(crate) fn write_bytes(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic(path, |w| {
        w.write_all(bytes).map_err(|e| ReportError::io(path, e))
    })
}

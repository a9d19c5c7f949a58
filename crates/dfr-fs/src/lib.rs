//! Atomic file writes, shared by every crate that writes results: the content goes to a
//! temporary file in the destination directory, which is flushed, synced and renamed over
//! the destination, so a reader (or a resumed run) never sees a half-written file. A
//! failed or abandoned write removes its temporary file; only a process killed mid-write
//! leaves one (`.NAME.XXXXXX.tmp`), which [`remove_stale_temp_files`] deletes.
//!
//! [`DirLock`]: one writer per directory (a run directory, say), released by the operating
//! system when the holder exits.
//!
//! Errors are plain [`std::io::Error`]s; callers wrap them in their own typed errors with
//! the path.

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

mod lock;
pub use lock::{DirLock, LOCK_FILE};

/// A file being written atomically: write through [`Write`], then [`AtomicFile::commit`].
/// Dropping it without committing removes the temporary file and leaves `path` untouched.
pub struct AtomicFile {
    path: PathBuf,
    writer: BufWriter<NamedTempFile>,
}

impl AtomicFile {
    /// Starts writing `path`, creating missing parent directories. The file gets the usual
    /// permissions (0666 minus the umask), not a temporary file's private 0600.
    pub fn create(path: &Path) -> io::Result<Self> {
        let name = path.file_name().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} does not name a file", path.display()),
            )
        })?;
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        std::fs::create_dir_all(dir)?;
        let mut prefix = std::ffi::OsString::from(".");
        prefix.push(name);
        prefix.push(".");
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix).suffix(".tmp");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            builder.permissions(std::fs::Permissions::from_mode(0o666));
        }
        let tmp = builder.tempfile_in(dir)?;
        Ok(Self {
            path: path.to_path_buf(),
            writer: BufWriter::new(tmp),
        })
    }

    /// Flushes, syncs and renames the temporary file over the destination.
    pub fn commit(self) -> io::Result<()> {
        let tmp = self.writer.into_inner().map_err(|e| e.into_error())?;
        tmp.as_file().sync_all()?;
        tmp.persist(&self.path).map_err(|e| e.error)?;
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writer.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.writer.write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.writer.flush()
    }
}

/// Writes `bytes` to `path` atomically (see the crate docs).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut f = AtomicFile::create(path)?;
    f.write_all(bytes)?;
    f.commit()
}

/// Whether `name` is a temporary file of [`AtomicFile`] (`.NAME.XXXXXX.tmp`).
fn is_temp_name(name: &str) -> bool {
    name.len() > ".x..tmp".len() + 5
        && name.starts_with('.')
        && name.ends_with(".tmp")
        && name[1..name.len() - 4].contains('.')
}

/// Removes the temporary files that writes killed mid-way left in `dir` (not below it) and
/// returns them. Call it only while no other process writes into `dir` — while holding its
/// [`DirLock`] — or it may delete a write in progress.
pub fn remove_stale_temp_files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(removed),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        if entry.file_type()?.is_file() && is_temp_name(&name.to_string_lossy()) {
            std::fs::remove_file(entry.path())?;
            removed.push(entry.path());
        }
    }
    removed.sort();
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;

    fn temp_files(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect()
    }

    #[test]
    fn stale_temp_files_are_removed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let keep = ["best.safetensors", ".lock", "notes.tmp", ".hidden"];
        for k in keep {
            std::fs::write(dir.path().join(k), "x").unwrap();
        }
        // what a killed write leaves: the temporary file of a write never committed
        let f = AtomicFile::create(&dir.path().join("resume.safetensors")).unwrap();
        let leaked: Vec<String> = temp_files(dir.path())
            .into_iter()
            .filter(|n| n.starts_with('.'))
            .collect();
        std::mem::forget(f);
        assert_eq!(leaked.len(), 1, "{leaked:?}");
        let removed = remove_stale_temp_files(dir.path()).unwrap();
        assert_eq!(removed.len(), 1);
        assert!(temp_files(dir.path()).iter().all(|n| n == "notes.tmp"));
        for k in keep {
            assert!(dir.path().join(k).exists(), "{k}");
        }
        assert!(remove_stale_temp_files(&dir.path().join("missing"))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn writes_replaces_and_creates_parents() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/out.json");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert!(temp_files(&dir.path().join("a/b")).is_empty());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            // the mode a plain File::create gets under this process's umask, not 0600
            let plain = dir.path().join("plain");
            File::create(&plain).unwrap();
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&path), mode(&plain));
        }
    }

    #[test]
    fn abandoned_write_leaves_the_old_file_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        write_atomic(&path, b"old").unwrap();
        {
            let mut f = AtomicFile::create(&path).unwrap();
            f.write_all(b"half of the new").unwrap();
            assert_eq!(temp_files(dir.path()).len(), 1);
            // dropped without commit, as on an error or a panic
        }
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        assert!(temp_files(dir.path()).is_empty());
    }

    #[test]
    fn a_path_without_a_file_name_is_an_error() {
        let e = write_atomic(Path::new("/"), b"x").err().unwrap();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }
}

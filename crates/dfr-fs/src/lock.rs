//! One writer per directory: an exclusive advisory lock on `DIR/.lock` held while a run
//! writes `DIR`, with the holder's process id inside for the error a second writer gets.
//! The operating system releases the lock when the holder exits, however it exits (a
//! SIGKILL included), so a stale lock file never blocks the next run.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Name of the lock file inside a locked directory.
pub const LOCK_FILE: &str = ".lock";

/// An exclusive lock on a directory, released when dropped (or when the process ends).
#[derive(Debug)]
pub struct DirLock {
    path: PathBuf,
    _file: File,
}

impl DirLock {
    /// Locks `dir` (created if missing) for this process, or fails at once with
    /// [`io::ErrorKind::WouldBlock`] and a message naming the holder's pid when another
    /// process (or another lock in this one) holds it.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let lock = dfr_fs::DirLock::acquire(dir.path())?;
    /// let second = dfr_fs::DirLock::acquire(dir.path()).unwrap_err();
    /// assert!(second.to_string().contains(&std::process::id().to_string()));
    /// drop(lock);
    /// assert!(dfr_fs::DirLock::acquire(dir.path()).is_ok());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn acquire(dir: &Path) -> io::Result<DirLock> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                let who = if holder.is_empty() {
                    "another process".to_string()
                } else {
                    format!("process {holder}")
                };
                return Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    format!(
                        "{} is in use by {who} (lock file {}); wait for it to finish or stop it",
                        dir.display(),
                        path.display()
                    ),
                ));
            }
            Err(TryLockError::Error(e)) => return Err(e),
        }
        file.set_len(0)?;
        file.seek(SeekFrom::Start(0))?;
        writeln!(file, "{}", std::process::id())?;
        file.sync_all()?;
        Ok(DirLock { path, _file: file })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

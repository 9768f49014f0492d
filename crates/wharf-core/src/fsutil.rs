//! File-system helpers for writes that must never be seen half-done.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::{Result, WharfError};

/// Writes `bytes` to `path` atomically: a temporary file in the same directory is written,
/// flushed to disk, and renamed over `path`, then the directory entry is flushed. Readers see
/// the old content or the new, never a mix; a crash leaves at most a stray temporary file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = parent_dir(path);
    fs::create_dir_all(&dir).map_err(|e| WharfError::io(&dir, e))?;
    let tmp = temp_sibling(path);
    let result = (|| {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        sync_dir(&dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(|e| WharfError::io(path, e))
}

/// The directory holding `path` (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// A unique temporary name beside `path`, hidden and marked so it is never mistaken for data.
pub fn temp_sibling(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    parent_dir(path).join(format!(".{name}.tmp-{}", uuid::Uuid::now_v7().simple()))
}

/// Flushes a directory's entries (so a rename inside it survives a crash).
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// An exclusive advisory lock on a file, held until dropped. Serialises writers across
/// processes (two `wharf train` runs registering the same model name, say).
#[derive(Debug)]
pub struct FileLock {
    file: File,
}

impl FileLock {
    /// Blocks until the lock on `path` (created if missing) is held.
    pub fn acquire(path: &Path) -> Result<FileLock> {
        let dir = parent_dir(path);
        fs::create_dir_all(&dir).map_err(|e| WharfError::io(&dir, e))?;
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| WharfError::io(path, e))?;
        file.lock().map_err(|e| WharfError::io(path, e))?;
        Ok(FileLock { file })
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

/// Appends one line to a file under an exclusive lock, and flushes it to disk, so concurrent
/// writers never interleave within a line.
pub fn append_line(path: &Path, line: &str) -> Result<()> {
    let dir = parent_dir(path);
    fs::create_dir_all(&dir).map_err(|e| WharfError::io(&dir, e))?;
    let mut file = OpenOptions::new().create(true).append(true).open(path).map_err(|e| WharfError::io(path, e))?;
    file.lock().map_err(|e| WharfError::io(path, e))?;
    let mut buf = String::with_capacity(line.len() + 1);
    buf.push_str(line);
    buf.push('\n');
    let result = file.write_all(buf.as_bytes()).and_then(|_| file.sync_data());
    let _ = file.unlock();
    result.map_err(|e| WharfError::io(path, e))
}

/// Lower-case hex of `bytes` (checksums and fingerprints).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

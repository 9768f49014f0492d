//! An output file that appears complete or not at all.
//!
//! Scored output is streamed (it can be larger than memory), so `fsutil::write_atomic`, which
//! takes the whole content at once, does not fit. This is the same idea for a stream: write a
//! hidden temporary file beside the target, and rename it over the target only on
//! [`commit`](AtomicFile::commit). Dropping it uncommitted (an error, a panic) deletes the
//! temporary file, so a failed job leaves neither a partial output nor litter.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use wharf_core::fsutil::{parent_dir, sync_dir, temp_sibling};
use wharf_core::{Result, WharfError};

/// A buffered file written under a temporary name and renamed into place on commit.
#[derive(Debug)]
pub struct AtomicFile {
    target: PathBuf,
    temp: PathBuf,
    file: Option<BufWriter<File>>,
}

impl AtomicFile {
    /// Starts writing what will become `target` (its directory is created if missing).
    pub fn create(target: &Path) -> Result<AtomicFile> {
        let dir = parent_dir(target);
        fs::create_dir_all(&dir).map_err(|e| WharfError::io(&dir, e))?;
        let temp = temp_sibling(target);
        let file = File::create(&temp).map_err(|e| WharfError::io(&temp, e))?;
        Ok(AtomicFile { target: target.to_path_buf(), temp, file: Some(BufWriter::with_capacity(1 << 20, file)) })
    }

    /// The path the file will have once committed.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Flushes to disk and renames the temporary file over the target.
    pub fn commit(mut self) -> Result<()> {
        let Some(writer) = self.file.take() else {
            return Ok(());
        };
        let result = (|| {
            let file = writer.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()?;
            drop(file);
            fs::rename(&self.temp, &self.target)?;
            sync_dir(&parent_dir(&self.target))
        })();
        if result.is_err() {
            let _ = fs::remove_file(&self.temp);
        }
        result.map_err(|e| WharfError::io(&self.target, e))
    }

    fn writer(&mut self) -> io::Result<&mut BufWriter<File>> {
        self.file.as_mut().ok_or_else(|| io::Error::other("the file was already committed"))
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writer()?.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.writer()?.write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.writer()?.flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = fs::remove_file(&self.temp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_commit_makes_the_file_appear() {
        let dir = tempfile::tempdir().expect("dir");
        let target = dir.path().join("out.csv");
        let mut file = AtomicFile::create(&target).expect("create");
        file.write_all(b"a,b\n").expect("write");
        drop(file);
        assert!(!target.exists());
        assert_eq!(fs::read_dir(dir.path()).expect("list").count(), 0, "no temporary file is left");

        let mut file = AtomicFile::create(&target).expect("create");
        file.write_all(b"a,b\n").expect("write");
        file.commit().expect("commit");
        assert_eq!(fs::read_to_string(&target).expect("read"), "a,b\n");
        assert_eq!(fs::read_dir(dir.path()).expect("list").count(), 1);
    }
}

//! Where results go: the [`StreamSink`] port, an append-only file with exactly-once
//! recovery, and a writer (stdout) that can only be at-least-once.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use wharf_core::{Result, WharfError};

use crate::source::Delivery;

/// A destination for scored records (JSON lines).
///
/// # Contract
///
/// - [`write`](Self::write) appends a micro-batch and returns only once it is as durable as
///   the sink can make it; [`len`](Self::len) then counts it.
/// - [`recover`](Self::recover) is called once, before the first write, with the length a
///   checkpoint committed. A sink that is [`exactly_once`](Self::exactly_once) removes
///   everything written after that point (results of a run that died before its
///   checkpoint), so they are not duplicated when the records are scored again. A sink that
///   cannot take bytes back (a pipe) only resets its count and may repeat output.
pub trait StreamSink: Send {
    /// The dataset name for lineage and checkpoints (`file:scores.jsonl`, `stdout`).
    fn name(&self) -> String;
    /// Returns to `committed` bytes, dropping anything written after it where possible.
    fn recover(&mut self, committed: u64) -> Result<()>;
    /// Appends `bytes` durably.
    fn write(&mut self, bytes: &[u8]) -> Result<()>;
    /// Bytes written, as a checkpoint should record them.
    fn len(&self) -> u64;
    /// True when the sink's length is 0.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// True when [`recover`](Self::recover) really removes uncommitted output.
    fn exactly_once(&self) -> bool;
    /// Writes a micro-batch's results and, when the sink can do both in one atomic step,
    /// acknowledges the `deliveries` they came from; answers whether it acknowledged them.
    ///
    /// A broker sink on the same server as its broker source (a Redis sink paired with a
    /// Redis consumer group) writes and acknowledges together, so a crash can never leave
    /// a result without its acknowledgement or the reverse. Every other sink only writes
    /// (this default), and the job then acknowledges through
    /// [`StreamSource::commit`](crate::StreamSource::commit).
    fn write_acked(&mut self, bytes: &[u8], deliveries: &[Delivery]) -> Result<bool> {
        let _ = deliveries;
        self.write(bytes)?;
        Ok(false)
    }
}

impl<T: StreamSink + ?Sized> StreamSink for Box<T> {
    fn name(&self) -> String {
        (**self).name()
    }
    fn recover(&mut self, committed: u64) -> Result<()> {
        (**self).recover(committed)
    }
    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        (**self).write(bytes)
    }
    fn len(&self) -> u64 {
        (**self).len()
    }
    fn exactly_once(&self) -> bool {
        (**self).exactly_once()
    }
    fn write_acked(&mut self, bytes: &[u8], deliveries: &[Delivery]) -> Result<bool> {
        (**self).write_acked(bytes, deliveries)
    }
}

/// An output file: each micro-batch is appended and flushed to disk (`fsync`) before the
/// job checkpoints it; on restart the file is cut back to the checkpointed length.
#[derive(Debug)]
pub struct FileSink {
    path: PathBuf,
    file: File,
    len: u64,
}

impl FileSink {
    /// Opens (creating) `path` for appending. Nothing is removed until
    /// [`recover`](StreamSink::recover).
    pub fn open(path: impl AsRef<Path>) -> Result<FileSink> {
        let path = path.as_ref().to_path_buf();
        let dir = wharf_core::fsutil::parent_dir(&path);
        std::fs::create_dir_all(&dir).map_err(|e| WharfError::io(&dir, e))?;
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| WharfError::io(&path, e))?;
        let len = file.metadata().map_err(|e| WharfError::io(&path, e))?.len();
        // A new file's directory entry must survive a crash too, or a checkpoint could
        // outlive the file it describes.
        wharf_core::fsutil::sync_dir(&dir).map_err(|e| WharfError::io(&dir, e))?;
        Ok(FileSink { path, file, len })
    }
}

impl StreamSink for FileSink {
    fn name(&self) -> String {
        format!("file:{}", self.path.display())
    }

    fn recover(&mut self, committed: u64) -> Result<()> {
        let actual = self.file.metadata().map_err(|e| WharfError::io(&self.path, e))?.len();
        if actual < committed {
            return Err(WharfError::invalid(
                self.path.display().to_string(),
                format!(
                    "the checkpoint says {committed} bytes were written but the file has {actual}; it was truncated \
                     or replaced, so the job cannot resume exactly once (remove the checkpoint to start over)"
                ),
            ));
        }
        let io = |e| WharfError::io(&self.path, e);
        // Every batch ends with a newline, so a checkpointed length always falls after
        // one; anywhere else the checkpoint was altered, and cutting there would leave half
        // a record in the output.
        if committed > 0 {
            let mut last = [0u8; 1];
            self.file.seek(SeekFrom::Start(committed - 1)).map_err(io)?;
            self.file.read_exact(&mut last).map_err(io)?;
            if last[0] != b'\n' {
                return Err(WharfError::invalid(
                    self.path.display().to_string(),
                    format!(
                        "the checkpoint says {committed} bytes were written, but that falls inside a line of the \
                         output, not after one: the checkpoint or the file was altered, so the job cannot resume \
                         exactly once (remove the checkpoint to start over)"
                    ),
                ));
            }
        }
        self.file.set_len(committed).map_err(io)?;
        self.file.sync_all().map_err(io)?;
        self.file.seek(SeekFrom::Start(committed)).map_err(io)?;
        self.len = committed;
        Ok(())
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        let io = |e| WharfError::io(&self.path, e);
        self.file.write_all(bytes).map_err(io)?;
        self.file.sync_data().map_err(io)?;
        self.len += bytes.len() as u64;
        Ok(())
    }

    fn len(&self) -> u64 {
        self.len
    }

    fn exactly_once(&self) -> bool {
        true
    }
}

/// Any writer, stdout by default. Each batch is flushed before it is checkpointed, but
/// bytes already handed to a pipe cannot be taken back: after a crash the records between
/// the last checkpoint and the crash are written again (at-least-once). Each output record
/// carries its input `key`, so a consumer can drop the repeats.
pub struct WriterSink<W: Write + Send> {
    name: String,
    writer: W,
    len: u64,
}

impl<W: Write + Send> std::fmt::Debug for WriterSink<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriterSink").field("name", &self.name).field("len", &self.len).finish()
    }
}

impl WriterSink<std::io::Stdout> {
    /// The process's standard output.
    pub fn stdout() -> Self {
        WriterSink::new("stdout", std::io::stdout())
    }
}

impl<W: Write + Send> WriterSink<W> {
    /// Wraps `writer`, named `name` in lineage.
    pub fn new(name: impl Into<String>, writer: W) -> Self {
        WriterSink { name: name.into(), writer, len: 0 }
    }

    /// The wrapped writer (to inspect what a test wrote).
    pub fn into_inner(self) -> W {
        self.writer
    }
}

impl<W: Write + Send> StreamSink for WriterSink<W> {
    fn name(&self) -> String {
        self.name.clone()
    }
    fn recover(&mut self, committed: u64) -> Result<()> {
        self.len = committed;
        Ok(())
    }
    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        let io = |e| WharfError::io(PathBuf::from(&self.name), e);
        self.writer.write_all(bytes).map_err(io)?;
        self.writer.flush().map_err(io)?;
        self.len += bytes.len() as u64;
        Ok(())
    }
    fn len(&self) -> u64 {
        self.len
    }
    fn exactly_once(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_cuts_a_file_back_to_the_committed_length() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out.jsonl");
        std::fs::write(&path, b"kept\nuncommitted\n").expect("write");
        let mut sink = FileSink::open(&path).expect("open");
        sink.recover(5).expect("recover");
        sink.write(b"next\n").expect("write");
        assert_eq!(std::fs::read(&path).expect("read"), b"kept\nnext\n");
        assert_eq!(sink.len(), 10);

        let mut short = FileSink::open(&path).expect("open");
        let err = short.recover(1000).expect_err("file shorter than checkpoint");
        assert!(err.to_string().contains("truncated or replaced"), "{err}");
    }

    #[test]
    fn a_checkpoint_inside_a_line_is_refused_and_cuts_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out.jsonl");
        std::fs::write(&path, b"{\"a\":1}\n{\"a\":2}\n").expect("write");
        let mut sink = FileSink::open(&path).expect("open");
        let err = sink.recover(12).expect_err("mid-line");
        assert!(err.to_string().contains("inside a line"), "{err}");
        assert_eq!(std::fs::read(&path).expect("read").len(), 16, "nothing was cut");
        // At a line end, and at 0, recovery works.
        sink.recover(8).expect("after the first line");
        sink.recover(0).expect("the start");
        assert!(std::fs::read(&path).expect("read").is_empty());
    }
}

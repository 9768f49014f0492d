//! The JSON-lines logs Wharf writes while it serves (the shadow log, the prediction log and
//! its feedback): one record per line, in files that rotate by size and sort by start time.
//!
//! Writing is one `write_all` of a whole line, so a crash leaves at most a torn last line;
//! reading streams one line at a time, skips such a torn last line (the record was never
//! complete) and names the file and line of anything else it cannot read.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::WharfError;

/// The longest line a reader accepts: far above any record `wharf serve` writes for a body
/// within its default 16 MiB limit, low enough that a corrupt file cannot take the reader's
/// memory.
pub const MAX_LINE_BYTES: u64 = 64 * 1024 * 1024;

/// A file being appended to, and how much it holds; past a size, the next file is started.
pub struct RotatingFile {
    out: BufWriter<File>,
    bytes: u64,
    dir: PathBuf,
    stem: String,
}

impl RotatingFile {
    /// Creates `dir` if needed and opens `<stem>-<start time>.jsonl` in it, named so that
    /// name order is start order. An unwritable directory fails here, before any record.
    pub fn open(dir: &Path, stem: &str) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?;
        let start = chrono::Utc::now().format("%Y%m%dT%H%M%S%.6fZ");
        let path = dir.join(format!("{stem}-{start}.jsonl"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        Ok(RotatingFile { out: BufWriter::new(file), bytes: 0, dir: dir.to_path_buf(), stem: stem.to_string() })
    }

    /// Appends `record` as one line, first starting a new file when this one holds
    /// `rotate_bytes` or more.
    pub fn write<T: Serialize>(&mut self, record: &T, rotate_bytes: u64) -> std::io::Result<()> {
        if self.bytes >= rotate_bytes {
            self.out.flush()?;
            *self = RotatingFile::open(&self.dir, &self.stem)?;
        }
        let mut line = serde_json::to_vec(record).map_err(std::io::Error::other)?;
        line.push(b'\n');
        self.out.write_all(&line)?;
        self.bytes += line.len() as u64;
        Ok(())
    }

    /// Flushes what is buffered to the file.
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// The log files at `path`: the file itself, or every `<prefix>*.jsonl` of a directory in
/// name order. `what` names the log in the error for a directory that holds none.
pub fn files(path: &Path, prefix: &str, what: &str) -> Result<Vec<PathBuf>, WharfError> {
    let meta = std::fs::metadata(path).map_err(|e| WharfError::io(path, e))?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| WharfError::io(path, e))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.starts_with(prefix) && name.ends_with(".jsonl")
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(WharfError::invalid(
            path.display().to_string(),
            format!("no {prefix}*.jsonl files: is this the directory {what}?"),
        ));
    }
    Ok(files)
}

/// Calls `each` with every record of `files`, in order; `what` names the record type in
/// errors. Memory is one line at a time.
///
/// # Errors
/// An unreadable file, a line over [`MAX_LINE_BYTES`] or one that is not a record (named by
/// file and line), or the first error `each` returns.
pub fn for_each<T: DeserializeOwned>(
    files: &[PathBuf],
    what: &str,
    mut each: impl FnMut(T) -> Result<(), WharfError>,
) -> Result<(), WharfError> {
    for file in files {
        let opened = std::fs::File::open(file).map_err(|e| WharfError::io(file, e))?;
        let mut reader = BufReader::new(opened);
        let mut line = Vec::new();
        for number in 1.. {
            line.clear();
            let read = (&mut reader).take(MAX_LINE_BYTES + 1).read_until(b'\n', &mut line);
            let at = || format!("{}:{number}", file.display());
            match read {
                Ok(0) => break,
                Ok(n) if n as u64 > MAX_LINE_BYTES => {
                    return Err(WharfError::invalid(at(), format!("a line longer than {MAX_LINE_BYTES} bytes")))
                }
                Ok(_) => {}
                Err(e) => return Err(WharfError::io(file, e)),
            }
            // A line cut short by a crash mid-write is the log's last one: the record it
            // would have held was never complete, so it is not evidence.
            if !line.ends_with(b"\n") {
                break;
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let record: T =
                serde_json::from_slice(&line).map_err(|e| WharfError::invalid(at(), format!("not a {what}: {e}")))?;
            each(record)?;
        }
    }
    Ok(())
}

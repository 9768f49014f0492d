//! `FileLineage`: lineage events as JSON lines.

use std::path::{Path, PathBuf};

use crate::fsutil::append_line;
use crate::ports::lineage::{validate_event, LineageEvent, LineageLog, LineagePort};
use crate::{Result, WharfError};

/// Appends each event as one JSON object per line, flushed to disk before `emit` returns.
/// Concurrent writers (threads or processes) never interleave inside a line.
#[derive(Debug, Clone)]
pub struct FileLineage {
    path: PathBuf,
}

impl FileLineage {
    /// A sink writing to `path` (created on the first event).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileLineage { path: path.into() }
    }

    /// The file events go to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads every event back (for tests and tools). A malformed line is an error naming it.
    pub fn read_all(&self) -> Result<Vec<LineageEvent>> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(WharfError::io(&self.path, e)),
        };
        text.lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| {
                serde_json::from_str(l)
                    .map_err(|e| WharfError::invalid(format!("{}:{}", self.path.display(), i + 1), e.to_string()))
            })
            .collect()
    }
}

impl LineagePort for FileLineage {
    fn name(&self) -> &str {
        "file"
    }
    fn emit(&self, event: &LineageEvent) -> Result<()> {
        validate_event(event)?;
        let line = serde_json::to_string(event).map_err(|e| WharfError::invalid("event", e.to_string()))?;
        append_line(&self.path, &line)
    }
    fn events(&self, limit: Option<usize>) -> Result<LineageLog> {
        let text = match std::fs::read(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(LineageLog::default()),
            Err(e) => return Err(WharfError::io(&self.path, e)),
        };
        // Bytes, not a string: a line torn mid-character by a crash is one skipped line, not
        // an unreadable file.
        let mut log = LineageLog::default();
        for line in text.split(|b| *b == b'\n').filter(|l| !l.iter().all(u8::is_ascii_whitespace)) {
            match serde_json::from_slice::<LineageEvent>(line) {
                Ok(event) => log.events.push(event),
                Err(_) => log.skipped += 1,
            }
        }
        if let Some(limit) = limit {
            let drop = log.events.len().saturating_sub(limit);
            log.events.drain(..drop);
        }
        Ok(log)
    }
}

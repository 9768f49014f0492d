//! Progress that survives a crash: which input is done, how much output belongs to it, and
//! the state of the windowed features at that point.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use wharf_core::{Result, WharfError};

use crate::window::WindowState;

/// The checkpoint format this build writes and reads.
pub const CHECKPOINT_FORMAT: u32 = 1;

/// Counts of what a job did with its records, kept in the checkpoint so a resumed job
/// reports totals for the whole stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Records read from the source.
    pub records_in: u64,
    /// Results written to the sink.
    pub records_out: u64,
    /// Records dropped because a required field was missing or null.
    pub dropped_null: u64,
    /// Records dropped as late (before the watermark).
    pub dropped_late: u64,
    /// Records refused: not JSON objects, mistyped fields, unknown categorical levels.
    pub rejected: u64,
    /// Micro-batches committed.
    pub batches: u64,
}

/// One committed point of a streaming job.
///
/// Written only after the output up to `output_len` is durable, so after a crash the
/// output is cut back to `output_len` and the input resumes at `input_offset`: nothing is
/// lost and nothing is written twice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// [`CHECKPOINT_FORMAT`] when written.
    pub format: u32,
    /// The source's name; a checkpoint is only valid for the same input.
    pub input: String,
    /// The sink's name; and the same output.
    pub output: String,
    /// Every input byte before this position is done.
    pub input_offset: u64,
    /// The output's length that goes with it.
    pub output_len: u64,
    /// Totals so far.
    pub counts: Counts,
    /// The windowed features' state, when the job has windows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<WindowState>,
    /// When it was written.
    pub written_at: DateTime<Utc>,
}

impl Checkpoint {
    /// The starting point of a job that has done nothing yet.
    pub fn start(input: String, output: String) -> Checkpoint {
        Checkpoint {
            format: CHECKPOINT_FORMAT,
            input,
            output,
            input_offset: 0,
            output_len: 0,
            counts: Counts::default(),
            window: None,
            written_at: Utc::now(),
        }
    }
}

/// Where checkpoints are kept.
///
/// # Contract
///
/// - [`save`](Self::save) replaces the previous checkpoint atomically and durably: after a
///   crash, [`load`](Self::load) returns either the old checkpoint or the new one, whole.
/// - [`load`](Self::load) returns `None` when no checkpoint was ever saved, and an error
///   naming the store when one exists but cannot be read.
pub trait CheckpointStore: Send {
    /// Where the checkpoint lives, for messages.
    fn name(&self) -> String;
    /// The last saved checkpoint.
    fn load(&self) -> Result<Option<Checkpoint>>;
    /// Saves `checkpoint` in place of the previous one.
    fn save(&mut self, checkpoint: &Checkpoint) -> Result<()>;
}

/// A checkpoint in a JSON file, replaced by writing a temporary file, flushing it, renaming
/// it over the old one and flushing the directory.
#[derive(Debug, Clone)]
pub struct FileCheckpoint {
    path: PathBuf,
}

impl FileCheckpoint {
    /// A store at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileCheckpoint { path: path.into() }
    }

    /// The conventional checkpoint path for an output file: `<output>.checkpoint.json`.
    pub fn beside(output: &Path) -> Self {
        let mut name = output.file_name().map(|n| n.to_os_string()).unwrap_or_default();
        name.push(".checkpoint.json");
        FileCheckpoint { path: output.with_file_name(name) }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl CheckpointStore for FileCheckpoint {
    fn name(&self) -> String {
        self.path.display().to_string()
    }

    fn load(&self) -> Result<Option<Checkpoint>> {
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(WharfError::io(&self.path, e)),
        };
        let checkpoint: Checkpoint = serde_json::from_slice(&bytes).map_err(|e| {
            WharfError::invalid(self.name(), format!("unreadable checkpoint: {e} (remove it to start over)"))
        })?;
        if checkpoint.format != CHECKPOINT_FORMAT {
            return Err(WharfError::invalid(
                self.name(),
                format!("checkpoint format {} is not {CHECKPOINT_FORMAT}, the one this build reads", checkpoint.format),
            ));
        }
        Ok(Some(checkpoint))
    }

    fn save(&mut self, checkpoint: &Checkpoint) -> Result<()> {
        let bytes = serde_json::to_vec(checkpoint)
            .map_err(|e| WharfError::invalid(self.name(), format!("cannot encode the checkpoint: {e}")))?;
        wharf_core::fsutil::write_atomic(&self.path, &bytes)
    }
}

/// Keeps the checkpoint in memory: for a job whose progress need not survive the process
/// (stdout, tests).
#[derive(Debug, Clone, Default)]
pub struct MemoryCheckpoint {
    last: Option<Checkpoint>,
}

impl MemoryCheckpoint {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl CheckpointStore for MemoryCheckpoint {
    fn name(&self) -> String {
        "memory".into()
    }
    fn load(&self) -> Result<Option<Checkpoint>> {
        Ok(self.last.clone())
    }
    fn save(&mut self, checkpoint: &Checkpoint) -> Result<()> {
        self.last = Some(checkpoint.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_checkpoint_round_trips_and_names_a_bad_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = FileCheckpoint::beside(&dir.path().join("out.jsonl"));
        assert!(store.path().ends_with("out.jsonl.checkpoint.json"));
        assert_eq!(store.load().expect("load"), None);
        let mut cp = Checkpoint::start("file:in".into(), "file:out".into());
        cp.input_offset = 42;
        cp.output_len = 7;
        store.save(&cp).expect("save");
        assert_eq!(store.load().expect("load"), Some(cp));
        std::fs::write(store.path(), b"{not json").expect("write");
        let err = store.load().expect_err("corrupt");
        assert!(err.to_string().contains("out.jsonl.checkpoint.json"), "{err}");
    }
}

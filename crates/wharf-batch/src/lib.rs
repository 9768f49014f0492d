//! # wharf-batch
//!
//! Batch scoring of CSV, Parquet and JSON-lines files, streamed in chunks.
//!
//! [`score_file`] scores a whole file through a model server (one from the container's
//! [`ModelServers`](wharf_core::ModelServers) factory, so `serving.backend` decides where
//! predictions are computed, and every row goes through [`wharf_core::score`]): the file streams
//! through in chunks (memory stays flat for files larger than RAM), chunks are decoded and
//! scored on every core, and the output is written in input order. Each output row holds the
//! id columns you name, `prediction`, one `prob_<class>` per class (classifiers), then
//! `model` and `model_version`. The output appears only when the job succeeds (it is written
//! to a temporary file and renamed), and the job is recorded in lineage: START, then
//! COMPLETE or FAIL, with the input and output datasets and the model version.
//!
//! Problems are caught as early as they can be:
//!
//! - a feature or id column missing from the file, or (Parquet) a feature column of the wrong
//!   type, fails the job before any row is scored, naming the column;
//! - a bad row (a CSV cell that is not a number, a malformed JSON line, an unknown category)
//!   fails the job with its row and column under [`OnError::Fail`], or goes to a reject file
//!   with the reason under [`OnError::Skip`].
//!
//! ```
//! use wharf_batch::{score_file, unregistered_facts, OnError, ScoreOptions};
//! use wharf_core::{FileLineage, ModelServers};
//! use wharf_ml::{datasets, Trainer};
//!
//! # fn main() -> wharf_core::Result<()> {
//! let dir = tempfile::tempdir().expect("temp dir");
//! let model = Trainer::logistic_regression().fit(&datasets::lead_scoring())?;
//! let facts = unregistered_facts(&model, "lead");
//! let server = ModelServers::local().serve(model)?; // in process; a container picks by config
//! let input = dir.path().join("leads.csv");
//! std::fs::write(&input, datasets::LEAD_SCORING_CSV).expect("write");
//!
//! let options = ScoreOptions::new(&input, dir.path().join("scored.parquet"))
//!     .ids(["lead_id"])
//!     .on_error(OnError::Skip); // bad rows go to scored.parquet.rejects.jsonl
//! let lineage = FileLineage::new(dir.path().join("lineage.jsonl"));
//! let summary = score_file(server.as_ref(), &facts, &options, &lineage, &mut |_| {})?;
//!
//! assert_eq!(summary.rows_scored, 1200);
//! assert_eq!(summary.columns, ["lead_id", "prediction", "prob_no", "prob_yes", "model", "model_version"]);
//! # Ok(())
//! # }
//! ```
//!
//! ## The format layer
//!
//! [`format`](mod@format) is the part other front ends reuse (streaming scoring reads and writes the same
//! formats): a [`RecordReader`] reads chunks of rows as [`Chunk`]s (feature columns in a
//! [`Frame`](wharf_core::Frame), ids, positions, unreadable rows), [`score_chunk`] scores one,
//! and a [`RecordWriter`] writes the [`ScoredChunk`]s.
//!
//! ```
//! use wharf_batch::format::{CsvReader, JsonlWriter, OutputLayout, ReadSpec, RecordReader, RecordWriter};
//! use wharf_batch::{score_chunk, OnError};
//! use wharf_core::ModelServers;
//! use wharf_ml::{datasets, Trainer};
//!
//! # fn main() -> wharf_core::Result<()> {
//! let model = Trainer::logistic_regression().fit(&datasets::iris())?;
//! let spec = ReadSpec::for_model(model.signature(), &[]);
//! let (task, classes) = (model.task(), model.classes().to_vec());
//! let server = ModelServers::local().serve(model)?;
//! let mut reader = CsvReader::new(datasets::IRIS_CSV.as_bytes(), "iris.csv", &spec, 64)?;
//! let layout = OutputLayout::new(&[], reader.schema(), task, &classes, None)?;
//! let mut out = Vec::new();
//! let mut writer = JsonlWriter::new(&mut out, &layout);
//! while let Some(chunk) = reader.next_chunk()? {
//!     writer.write_chunk(&score_chunk(server.as_ref(), chunk, OnError::Fail)?)?;
//! }
//! Box::new(writer).finish()?;
//! assert_eq!(out.iter().filter(|b| **b == b'\n').count(), 150);
//! # Ok(())
//! # }
//! ```
//!
//! ## Parquet
//!
//! Parquet goes through arrow-rs with only the `arrow` and `snap` features of `parquet`:
//! Snappy is the default compression of pandas, pyarrow and Spark, so their files read; other
//! codecs (zstd, gzip, lz4, brotli) are left out to keep the build small and free of C code,
//! and a file using one is refused with an error naming the codec. Output is Snappy too.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

mod atomic;
pub mod format;
mod job;
mod score;

pub use atomic::AtomicFile;
pub use format::{
    BadRow, Chunk, Format, OutputLayout, Position, RawChunk, ReadSpec, RecordReader, RecordWriter, ScoredChunk,
};
pub use job::{
    registered_facts, score_file, unregistered_facts, Progress, ScoreOptions, ScoreSummary, DEFAULT_CHUNK_ROWS,
};
pub use score::{score_chunk, OnError};

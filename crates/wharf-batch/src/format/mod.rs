//! The file formats: reading records in chunks and writing scored chunks.
//!
//! This is the layer other scoring front ends build on (batch files here, streams in
//! `wharf-stream`), so it knows nothing about jobs, threads or lineage:
//!
//! - a [`RecordReader`] reads a file's header or schema when it is opened (so a missing or
//!   mistyped column fails before any row is scored), then hands out chunks of rows;
//! - a chunk comes out of the file as a [`RawChunk`] (the cheap, sequential part: splitting
//!   the bytes into records) and becomes a [`Chunk`] with [`RawChunk::decode`] (the costly
//!   part: parsing numbers and JSON), which can run on any thread;
//! - [`crate::score_chunk`] turns a [`Chunk`] into a [`ScoredChunk`];
//! - a [`RecordWriter`] writes scored chunks in the columns an [`OutputLayout`] names.
//!
//! Rows that cannot be read (a malformed JSON line, a number that does not parse) do not stop
//! the reader: they come out of [`RawChunk::decode`] as [`BadRow`]s, and the caller's error
//! policy decides whether they fail the job or go to a reject file.

use std::fmt;
use std::path::Path;

use ndarray::Array2;
use serde_json::Value;
use wharf_core::{Column, FeatureKind, Frame, Predictions, Result, Signature, Task, WharfError};

pub mod csv;
pub mod jsonl;
pub mod parquet;

pub use self::csv::{CsvReader, CsvWriter};
pub use self::jsonl::{JsonlReader, JsonlWriter};
pub use self::parquet::{ParquetReader, ParquetWriter};

use crate::atomic::AtomicFile;

/// A file format, usually chosen by the file's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Comma-separated values with a header row (`.csv`).
    Csv,
    /// One JSON object per line (`.jsonl`, `.ndjson`).
    Jsonl,
    /// Apache Parquet (`.parquet`, `.pq`).
    Parquet,
}

impl Format {
    /// The format a path's extension names; an error naming the file otherwise, so a typo
    /// such as `scored.cvs` is caught before anything is read.
    pub fn from_path(path: &Path) -> Result<Format> {
        let ext = path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
        Format::from_name(&ext).ok_or_else(|| {
            WharfError::invalid(
                path.display().to_string(),
                "unsupported file type: use .csv, .jsonl (or .ndjson) or .parquet (or .pq)",
            )
        })
    }

    /// The format called `name` (`csv`, `jsonl`, `ndjson`, `parquet`, `pq`), case-insensitive.
    pub fn from_name(name: &str) -> Option<Format> {
        match name.to_ascii_lowercase().as_str() {
            "csv" => Some(Format::Csv),
            "jsonl" | "ndjson" => Some(Format::Jsonl),
            "parquet" | "pq" => Some(Format::Parquet),
            _ => None,
        }
    }

    /// The short name (`csv`, `jsonl`, `parquet`).
    pub fn name(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Jsonl => "jsonl",
            Format::Parquet => "parquet",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a reader must deliver a feature column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// Numbers (`f64`, missing as `NaN`).
    Number,
    /// Text (categorical levels).
    Text,
}

/// Which columns to read, and how: the model's features and the id columns to carry along.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadSpec {
    /// Feature columns in signature order, with the kind each must be decoded to.
    pub features: Vec<(String, ColumnKind)>,
    /// Columns copied unchanged to the output, in order.
    pub ids: Vec<String>,
}

impl ReadSpec {
    /// The columns `signature` takes, plus `ids`.
    pub fn for_model(signature: &Signature, ids: &[String]) -> ReadSpec {
        let features = signature
            .features
            .iter()
            .map(|f| {
                let kind = match f.kind {
                    FeatureKind::Numeric => ColumnKind::Number,
                    FeatureKind::Categorical { .. } => ColumnKind::Text,
                    // A feature type added later is read as text; the model checks it.
                    _ => ColumnKind::Text,
                };
                (f.name.clone(), kind)
            })
            .collect();
        ReadSpec { features, ids: ids.to_vec() }
    }

    /// Checks that `schema` has every column this spec reads, with a type it can be decoded
    /// from. The error names the file and the column, and is raised before any row is read.
    pub fn check(&self, schema: &InputSchema, source: &str) -> Result<()> {
        for (i, id) in self.ids.iter().enumerate() {
            if self.ids[..i].contains(id) {
                return Err(WharfError::invalid(format!("{source}, column '{id}'"), "id column given twice"));
            }
        }
        for (i, (name, _)) in self.features.iter().enumerate() {
            if self.features[..i].iter().any(|(n, _)| n == name) {
                return Err(WharfError::invalid(format!("{source}, column '{name}'"), "feature given twice"));
            }
        }
        if schema.columns.is_empty() {
            // A JSON-lines file with no record yet: nothing to check against.
            return Ok(());
        }
        // The rule training applies to the same file (a CSV header naming a column twice).
        wharf_core::check_unique_columns(schema.columns.iter().map(|(name, _)| name.as_str()), source)?;
        for (name, kind) in &self.features {
            let Some(found) = schema.get(name) else {
                return Err(WharfError::schema(
                    format!("{source}, column '{name}'"),
                    format!("missing column: the model needs it ({})", kind_words(*kind)),
                ));
            };
            let fits = match (kind, found) {
                (_, SourceType::Unknown) => true,
                (ColumnKind::Number, SourceType::Integer | SourceType::Float) => true,
                (ColumnKind::Number, SourceType::Text) => !schema.typed,
                (ColumnKind::Text, SourceType::Text | SourceType::Integer | SourceType::Boolean) => true,
                _ => false,
            };
            if !fits {
                return Err(WharfError::schema(
                    format!("{source}, column '{name}'"),
                    format!("wrong type: the file has {found}, the model needs {}", kind_words(*kind)),
                ));
            }
        }
        for id in &self.ids {
            if schema.get(id).is_none() {
                return Err(WharfError::invalid(
                    format!("{source}, column '{id}'"),
                    format!("no column '{id}' in {source} (each id column must exist)"),
                ));
            }
        }
        Ok(())
    }
}

fn kind_words(kind: ColumnKind) -> &'static str {
    match kind {
        ColumnKind::Number => "numbers",
        ColumnKind::Text => "text (categorical)",
    }
}

/// A column's type as the file declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceType {
    /// The format declares no type (JSON lines: values carry their own types per row).
    Unknown,
    /// Text (every CSV column; Parquet strings).
    Text,
    /// Whole numbers.
    Integer,
    /// Floating-point numbers.
    Float,
    /// Booleans.
    Boolean,
    /// Anything else (dates, lists, binary), by the file's own name for it.
    Other(String),
}

impl fmt::Display for SourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceType::Unknown => f.write_str("values of any type"),
            SourceType::Text => f.write_str("text"),
            SourceType::Integer => f.write_str("integers"),
            SourceType::Float => f.write_str("floating-point numbers"),
            SourceType::Boolean => f.write_str("booleans"),
            SourceType::Other(name) => write!(f, "type {name}"),
        }
    }
}

/// The columns a file declares, read when it is opened.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InputSchema {
    /// Column names and types, in file order.
    pub columns: Vec<(String, SourceType)>,
    /// True when the types are enforced by the format for every row (Parquet), so a wrong
    /// type is a schema error; false when they are only text (CSV) or a first look (JSON
    /// lines), so a wrong value is a per-row error.
    pub typed: bool,
}

impl InputSchema {
    /// The type of column `name`.
    pub fn get(&self, name: &str) -> Option<&SourceType> {
        self.columns.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }
}

/// Where a row is in its file, for error messages and reject files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// 1-based record number (data rows, not counting a header or blank lines).
    pub row: u64,
    /// 1-based line where the record starts, for text formats.
    pub line: Option<u64>,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "row {} (line {line})", self.row),
            None => write!(f, "row {}", self.row),
        }
    }
}

/// A row that could not be scored, with why and what it held.
#[derive(Debug, Clone, PartialEq)]
pub struct BadRow {
    /// Where it is.
    pub position: Position,
    /// The column at fault, when one is.
    pub column: Option<String>,
    /// What is wrong.
    pub message: String,
    /// The row as read: an object of its fields, or the raw text when it did not parse.
    pub raw: Value,
}

impl BadRow {
    /// The reason in one line (`column 'age': expected a number, found 'abc'`).
    pub fn reason(&self) -> String {
        match &self.column {
            Some(column) => format!("column '{column}': {}", self.message),
            None => self.message.clone(),
        }
    }

    /// The row as an error naming `source`, the row and the column.
    pub fn to_error(&self, source: &str) -> WharfError {
        let place = match &self.column {
            Some(column) => format!("{source} {}, column '{column}'", self.position),
            None => format!("{source} {}", self.position),
        };
        WharfError::invalid(place, self.message.clone())
    }

    /// The reject-file line: `{"row", "line", "column", "reason", "raw"}`.
    pub fn to_json(&self) -> Value {
        let mut object = serde_json::Map::new();
        object.insert("row".into(), self.position.row.into());
        if let Some(line) = self.position.line {
            object.insert("line".into(), line.into());
        }
        if let Some(column) = &self.column {
            object.insert("column".into(), column.clone().into());
        }
        object.insert("reason".into(), self.reason().into());
        object.insert("raw".into(), self.raw.clone());
        Value::Object(object)
    }
}

/// Decoded rows, ready to score.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    /// The feature columns of the rows that decoded, in [`ReadSpec::features`] order.
    pub frame: Frame,
    /// Each id column's name and values for those rows, in [`ReadSpec::ids`] order.
    pub ids: Vec<(String, Vec<Value>)>,
    /// Where each of those rows is in the file.
    pub positions: Vec<Position>,
    /// Rows that could not be decoded, in file order.
    pub rejects: Vec<BadRow>,
    /// How far into the input this chunk reaches, in bytes (approximate for Parquet); for
    /// progress reports.
    pub end_byte: u64,
}

impl Chunk {
    /// Rows in the chunk, decoded or not.
    pub fn rows_read(&self) -> usize {
        self.positions.len() + self.rejects.len()
    }
}

/// Collects decoded rows column by column; what every text format's decoder fills.
pub(crate) struct ChunkBuilder {
    pub(crate) columns: Vec<Column>,
    pub(crate) ids: Vec<Vec<Value>>,
    pub(crate) positions: Vec<Position>,
    pub(crate) rejects: Vec<BadRow>,
}

impl ChunkBuilder {
    /// Room for `rows` rows of feature columns of `kinds` and `ids` id columns.
    pub(crate) fn new(kinds: impl Iterator<Item = ColumnKind>, ids: usize, rows: usize) -> Self {
        let columns = kinds
            .map(|kind| match kind {
                ColumnKind::Number => Column::Numeric(Vec::with_capacity(rows)),
                ColumnKind::Text => Column::Text(Vec::with_capacity(rows)),
            })
            .collect();
        let ids = (0..ids).map(|_| Vec::with_capacity(rows)).collect();
        ChunkBuilder { columns, ids, positions: Vec::with_capacity(rows), rejects: Vec::new() }
    }

    /// The chunk, its columns named by `spec`.
    pub(crate) fn finish(self, spec: &ReadSpec, end_byte: u64) -> Chunk {
        let names = spec.features.iter().map(|(n, _)| n.clone());
        let frame = Frame::from_columns(names.zip(self.columns).collect())
            .unwrap_or_else(|_| unreachable!("the spec was checked: names are unique, columns equally long"));
        let ids = spec.ids.iter().cloned().zip(self.ids).collect();
        Chunk { frame, ids, positions: self.positions, rejects: self.rejects, end_byte }
    }
}

/// A chunk split out of the file but not yet decoded. Decoding is the costly part, and runs
/// on whichever thread calls [`decode`](Self::decode).
#[derive(Debug)]
pub struct RawChunk(pub(crate) RawInner);

#[derive(Debug)]
pub(crate) enum RawInner {
    Csv(self::csv::RawCsv),
    Jsonl(self::jsonl::RawLines),
    Parquet(self::parquet::RawBatch),
}

impl RawChunk {
    /// Parses the chunk's rows into columns; rows that do not parse become [`BadRow`]s.
    pub fn decode(self) -> Chunk {
        match self.0 {
            RawInner::Csv(raw) => raw.decode(),
            RawInner::Jsonl(raw) => raw.decode(),
            RawInner::Parquet(raw) => raw.decode(),
        }
    }
}

/// Reads a file in chunks.
///
/// The file's header or schema is read and checked against the [`ReadSpec`] when the reader
/// is made, so a missing column is an error before the first chunk.
pub trait RecordReader: Send {
    /// The columns the file declares.
    fn schema(&self) -> &InputSchema;
    /// The number of rows, when the format knows it up front (Parquet).
    fn total_rows(&self) -> Option<u64> {
        None
    }
    /// The next chunk, undecoded; `None` at the end. Errors here are about the file as a whole
    /// (an I/O error, a corrupt Parquet page); a bad row is not an error until decoded.
    fn next_raw(&mut self) -> Result<Option<RawChunk>>;
    /// The next chunk, decoded on this thread.
    fn next_chunk(&mut self) -> Result<Option<Chunk>> {
        Ok(self.next_raw()?.map(RawChunk::decode))
    }
}

/// Opens `path` as `format`, reading up to `chunk_rows` rows per chunk.
pub fn open_reader(path: &Path, format: Format, spec: &ReadSpec, chunk_rows: usize) -> Result<Box<dyn RecordReader>> {
    let name = path.display().to_string();
    Ok(match format {
        Format::Csv => {
            let file = std::fs::File::open(path).map_err(|e| WharfError::io(path, e))?;
            Box::new(CsvReader::new(file, &name, spec, chunk_rows)?)
        }
        Format::Jsonl => {
            let file = std::fs::File::open(path).map_err(|e| WharfError::io(path, e))?;
            Box::new(JsonlReader::new(std::io::BufReader::new(file), &name, spec, chunk_rows)?)
        }
        Format::Parquet => {
            let file = std::fs::File::open(path).map_err(|e| WharfError::io(path, e))?;
            Box::new(ParquetReader::new(file, &name, spec, chunk_rows)?)
        }
    })
}

/// What a scored output holds: the id columns, `prediction`, one `prob_<class>` per class
/// (classifiers), then optionally `model` and `model_version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputLayout {
    /// Id columns with their input types (Parquet output keeps integer ids integers).
    pub ids: Vec<(String, SourceType)>,
    /// What the model predicts (decides the type of `prediction`).
    pub task: Task,
    /// Class labels, one probability column each (classifiers scored by a server that has
    /// probabilities).
    pub classes: Vec<String>,
    /// The model's name and version, written on every row when set.
    pub model: Option<(String, Option<u64>)>,
}

impl OutputLayout {
    /// The layout for scoring with `model`, carrying `ids` (typed as `schema` declares them).
    /// Refuses an id column whose name clashes with an output column.
    pub fn new(
        ids: &[String],
        schema: &InputSchema,
        task: Task,
        classes: &[String],
        model: Option<(String, Option<u64>)>,
    ) -> Result<OutputLayout> {
        let layout = OutputLayout {
            ids: ids.iter().map(|id| (id.clone(), schema.get(id).cloned().unwrap_or(SourceType::Unknown))).collect(),
            task,
            classes: if task == Task::Classification { classes.to_vec() } else { Vec::new() },
            model,
        };
        let columns = layout.columns();
        for (i, column) in columns.iter().enumerate() {
            if columns[..i].contains(column) {
                return Err(WharfError::invalid(
                    column.as_str(),
                    format!("the id column '{column}' clashes with an output column of the same name"),
                ));
            }
        }
        Ok(layout)
    }

    /// The output's column names, in order.
    pub fn columns(&self) -> Vec<String> {
        let mut columns: Vec<String> = self.ids.iter().map(|(n, _)| n.clone()).collect();
        columns.extend(wharf_core::scoring::output_columns(&self.classes));
        if self.model.is_some() {
            columns.push("model".into());
            columns.push("model_version".into());
        }
        columns
    }
}

/// Scores for the rows of one chunk, plus the rows that could not be scored.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredChunk {
    /// Where each scored row is in the input.
    pub positions: Vec<Position>,
    /// Each id column's name and values, per scored row.
    pub ids: Vec<(String, Vec<Value>)>,
    /// One prediction per scored row.
    pub predictions: Predictions,
    /// Class probabilities (`rows × classes`) for classifiers.
    pub probabilities: Option<Array2<f64>>,
    /// Rows that could not be read or scored, in file order.
    pub rejects: Vec<BadRow>,
    /// How far into the input the chunk reaches, in bytes.
    pub end_byte: u64,
}

impl ScoredChunk {
    /// Number of scored rows.
    pub fn len(&self) -> usize {
        self.positions.len()
    }

    /// True when no row was scored.
    pub fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }

    /// Row `i`'s class probabilities (empty unless a classifier).
    pub fn probabilities_of(&self, i: usize) -> &[f64] {
        match &self.probabilities {
            Some(p) => p.row(i).to_slice().unwrap_or(&[]),
            None => &[],
        }
    }
}

/// Writes scored chunks.
pub trait RecordWriter: Send {
    /// Appends a chunk's scored rows.
    fn write_chunk(&mut self, chunk: &ScoredChunk) -> Result<()>;
    /// Writes what the format needs at the end (Parquet's footer) and flushes. Writers made
    /// by [`create_writer`] also move their file into place here; dropped unfinished, they
    /// leave nothing behind.
    fn finish(self: Box<Self>) -> Result<()>;
}

/// A writer to `path` in `format`. The rows go to a temporary file beside `path`, which
/// replaces `path` only in [`RecordWriter::finish`], so a failed job never leaves a partial
/// output (or destroys the previous one).
pub fn create_writer(path: &Path, format: Format, layout: &OutputLayout) -> Result<Box<dyn RecordWriter>> {
    let file = AtomicFile::create(path)?;
    Ok(match format {
        Format::Csv => Box::new(Committing(CsvWriter::new(file, layout)?)),
        Format::Jsonl => Box::new(Committing(JsonlWriter::new(file, layout))),
        Format::Parquet => Box::new(Committing(ParquetWriter::new(file, layout)?)),
    })
}

/// A writer whose sink is an [`AtomicFile`], committed when the writer finishes.
struct Committing<W>(W);

/// Writers that can hand back their sink once the format's trailer is written.
pub(crate) trait IntoSink {
    type Sink;
    fn write_scored(&mut self, chunk: &ScoredChunk) -> Result<()>;
    fn into_sink(self) -> Result<Self::Sink>;
}

impl<W: IntoSink<Sink = AtomicFile> + Send> RecordWriter for Committing<W> {
    fn write_chunk(&mut self, chunk: &ScoredChunk) -> Result<()> {
        self.0.write_scored(chunk)
    }

    fn finish(self: Box<Self>) -> Result<()> {
        self.0.into_sink()?.commit()
    }
}

/// Implements [`RecordWriter`] (and the crate's `IntoSink`) for a format's writer from its
/// inherent `write` and `into_inner`, the same way for every format.
macro_rules! record_writer {
    ($writer:ident) => {
        impl<W: std::io::Write + Send> $crate::format::IntoSink for $writer<W> {
            type Sink = W;
            fn write_scored(&mut self, chunk: &$crate::format::ScoredChunk) -> wharf_core::Result<()> {
                self.write(chunk)
            }
            fn into_sink(self) -> wharf_core::Result<W> {
                self.into_inner()
            }
        }

        impl<W: std::io::Write + Send> $crate::format::RecordWriter for $writer<W> {
            fn write_chunk(&mut self, chunk: &$crate::format::ScoredChunk) -> wharf_core::Result<()> {
                self.write(chunk)
            }

            fn finish(self: Box<Self>) -> wharf_core::Result<()> {
                self.into_inner().map(drop)
            }
        }
    };
}
pub(crate) use record_writer;

/// The text of an id value in a text cell: strings as they are, `null` as empty.
pub(crate) fn cell_text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_come_from_extensions() {
        assert_eq!(Format::from_path(Path::new("a.CSV")).ok(), Some(Format::Csv));
        assert_eq!(Format::from_path(Path::new("a.ndjson")).ok(), Some(Format::Jsonl));
        assert_eq!(Format::from_path(Path::new("dir/a.parquet")).ok(), Some(Format::Parquet));
        let err = Format::from_path(Path::new("a.json")).expect_err("json is not json lines").to_string();
        assert!(err.contains("a.json"), "{err}");
        assert!(Format::from_path(Path::new("a")).is_err());
    }

    #[test]
    fn positions_read_as_rows_and_lines() {
        assert_eq!(Position { row: 3, line: Some(4) }.to_string(), "row 3 (line 4)");
        assert_eq!(Position { row: 3, line: None }.to_string(), "row 3");
    }

    #[test]
    fn a_typed_schema_refuses_text_for_a_number() {
        let spec = ReadSpec { features: vec![("age".into(), ColumnKind::Number)], ids: vec![] };
        let mut schema = InputSchema { columns: vec![("age".into(), SourceType::Text)], typed: true };
        let err = spec.check(&schema, "in.parquet").expect_err("text is not a number").to_string();
        assert!(err.contains("'age'") && err.contains("text"), "{err}");
        // In CSV every column is text; the values decide, row by row.
        schema.typed = false;
        assert!(spec.check(&schema, "in.csv").is_ok());
        let missing = ReadSpec { features: vec![("income".into(), ColumnKind::Number)], ids: vec![] };
        let err = missing.check(&schema, "in.csv").expect_err("missing").to_string();
        assert!(err.contains("'income'") && err.contains("missing"), "{err}");
    }

    #[test]
    fn an_id_clashing_with_an_output_column_is_refused() {
        let schema = InputSchema { columns: vec![("prediction".into(), SourceType::Text)], typed: false };
        let err = OutputLayout::new(&["prediction".into()], &schema, Task::Regression, &[], None)
            .expect_err("clash")
            .to_string();
        assert!(err.contains("prediction"), "{err}");
    }
}

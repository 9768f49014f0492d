//! JSON lines: one JSON object per line; blank lines are skipped.
//!
//! The first record stands in for a header: a feature or id it lacks is a schema error
//! before scoring (unless the first chunk holds lines that are not JSON at all, which are
//! then reported first, row by row). Later records are checked one by one (a record that is not JSON, lacks a
//! field or holds a string where a number belongs becomes a [`BadRow`]). Fields the model
//! does not take are ignored, so records can carry anything else along.

use std::io::{BufRead, Write};
use std::sync::Arc;

use serde_json::value::RawValue;
use serde_json::Value;
use wharf_core::{format_number, json_type, Column, Result, WharfError};

use super::{
    BadRow, Chunk, ChunkBuilder, ColumnKind, InputSchema, OutputLayout, Position, RawChunk, RawInner, ReadSpec,
    RecordReader, ScoredChunk, SourceType,
};

/// Reads JSON lines in chunks.
pub struct JsonlReader<R: BufRead> {
    reader: R,
    source: String,
    schema: InputSchema,
    spec: Arc<ReadSpec>,
    chunk_rows: usize,
    /// The first chunk's lines, read ahead for the schema.
    pending: Vec<Line>,
    line: u64,
    rows: u64,
    bytes: u64,
    done: bool,
}

/// One non-blank line: its record number, line number and text.
#[derive(Debug)]
struct Line {
    row: u64,
    line: u64,
    text: String,
}

impl<R: BufRead + Send> JsonlReader<R> {
    /// Reads the first chunk of `reader` ahead (`source` names it in errors; so this blocks
    /// until `chunk_rows` records or the end of the input) and checks the first record's
    /// fields against `spec`.
    pub fn new(reader: R, source: &str, spec: &ReadSpec, chunk_rows: usize) -> Result<Self> {
        let mut this = JsonlReader {
            reader,
            source: source.to_string(),
            schema: InputSchema::default(),
            spec: Arc::new(spec.clone()),
            chunk_rows: chunk_rows.max(1),
            pending: Vec::new(),
            line: 0,
            rows: 0,
            bytes: 0,
            done: false,
        };
        // Read the first chunk ahead. Its first record stands in for a header, but only when
        // every line of the chunk is JSON: a file with broken lines has a bigger problem than
        // a missing field, and its lines are reported one by one instead.
        while this.pending.len() < this.chunk_rows {
            match this.read_line()? {
                Some(line) => this.pending.push(line),
                None => break,
            }
        }
        let well_formed = this.pending.iter().all(|l| serde_json::from_str::<&RawValue>(&l.text).is_ok());
        if let Some(Ok(Value::Object(first))) =
            this.pending.first().filter(|_| well_formed).map(|l| serde_json::from_str::<Value>(&l.text))
        {
            this.schema.columns = first.keys().map(|k| (k.clone(), SourceType::Unknown)).collect();
        }
        spec.check(&this.schema, source)?;
        Ok(this)
    }

    /// The next non-blank line, or `None` at the end of the input.
    fn read_line(&mut self) -> Result<Option<Line>> {
        loop {
            let mut text = String::new();
            let n = self.reader.read_line(&mut text).map_err(|e| WharfError::io(&self.source, e))?;
            if n == 0 {
                return Ok(None);
            }
            self.bytes += n as u64;
            self.line += 1;
            if text.trim().is_empty() {
                continue;
            }
            self.rows += 1;
            return Ok(Some(Line { row: self.rows, line: self.line, text }));
        }
    }
}

impl<R: BufRead + Send> RecordReader for JsonlReader<R> {
    fn schema(&self) -> &InputSchema {
        &self.schema
    }

    fn next_raw(&mut self) -> Result<Option<RawChunk>> {
        if self.done {
            return Ok(None);
        }
        let mut lines = std::mem::take(&mut self.pending);
        while lines.len() < self.chunk_rows {
            match self.read_line()? {
                Some(line) => lines.push(line),
                None => {
                    self.done = true;
                    break;
                }
            }
        }
        if lines.is_empty() {
            return Ok(None);
        }
        Ok(Some(RawChunk(RawInner::Jsonl(RawLines { spec: self.spec.clone(), lines, end_byte: self.bytes }))))
    }
}

/// JSON lines not yet parsed.
#[derive(Debug)]
pub(crate) struct RawLines {
    spec: Arc<ReadSpec>,
    lines: Vec<Line>,
    end_byte: u64,
}

impl RawLines {
    pub(crate) fn decode(self) -> Chunk {
        let spec = &self.spec;
        let mut out = ChunkBuilder::new(spec.features.iter().map(|(_, k)| *k), spec.ids.len(), self.lines.len());
        for line in self.lines {
            let position = Position { row: line.row, line: Some(line.line) };
            let object = match serde_json::from_str::<Value>(&line.text) {
                Ok(Value::Object(object)) => object,
                Ok(other) => {
                    let message = format!("expected a JSON object, found {}", json_type(&other));
                    out.rejects.push(BadRow { position, column: None, message, raw: other });
                    continue;
                }
                Err(e) => {
                    let full = e.to_string();
                    let message = full.rsplit_once(" at line ").map(|(m, _)| m.to_string()).unwrap_or(full);
                    let message = format!("invalid JSON at column {}: {message}", e.column());
                    let raw = Value::String(line.text.trim_end().to_string());
                    out.rejects.push(BadRow { position, column: None, message, raw });
                    continue;
                }
            };
            if let Err((column, message)) = check_row(spec, &object) {
                out.rejects.push(BadRow { position, column: Some(column), message, raw: Value::Object(object) });
                continue;
            }
            for (column, (name, _)) in out.columns.iter_mut().zip(&spec.features) {
                let value = object.get(name).unwrap_or(&Value::Null);
                match column {
                    Column::Numeric(values) => values.push(value.as_f64().unwrap_or(f64::NAN)),
                    Column::Text(values) => values.push(level_text(value)),
                }
            }
            for (values, name) in out.ids.iter_mut().zip(&spec.ids) {
                values.push(object.get(name).cloned().unwrap_or(Value::Null));
            }
            out.positions.push(position);
        }
        out.finish(spec, self.end_byte)
    }
}

/// Checks one record's features and ids; the column and reason on failure.
fn check_row(spec: &ReadSpec, object: &serde_json::Map<String, Value>) -> std::result::Result<(), (String, String)> {
    for (name, kind) in &spec.features {
        let Some(value) = object.get(name) else {
            return Err((name.clone(), "missing field".into()));
        };
        let fits = match kind {
            ColumnKind::Number => matches!(value, Value::Number(_) | Value::Null),
            ColumnKind::Text => !matches!(value, Value::Array(_) | Value::Object(_)),
        };
        if !fits {
            let wanted = if *kind == ColumnKind::Number { "a number" } else { "a string (categorical)" };
            return Err((name.clone(), format!("expected {wanted}, found {}", json_type(value))));
        }
    }
    for name in &spec.ids {
        if !object.contains_key(name) {
            return Err((name.clone(), format!("no field '{name}'")));
        }
    }
    Ok(())
}

/// A categorical value as its level text (`null` is missing).
fn level_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) if s.is_empty() => None,
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(format_number(n.as_f64().unwrap_or(f64::NAN))),
        other => Some(other.to_string()),
    }
}

/// Writes scored rows as JSON lines, keys in output-column order. Ids keep their JSON type.
pub struct JsonlWriter<W: Write> {
    sink: W,
    /// Each column name already encoded as a JSON string.
    keys: Vec<Vec<u8>>,
    model: Option<(Value, Value)>,
    line: Vec<u8>,
}

impl<W: Write + Send> JsonlWriter<W> {
    /// A writer for `layout` into `sink`.
    pub fn new(sink: W, layout: &OutputLayout) -> Self {
        let keys = layout.columns().iter().map(|c| Value::String(c.clone()).to_string().into_bytes()).collect();
        let model =
            layout.model.as_ref().map(|(n, v)| (Value::String(n.clone()), v.map(Value::from).unwrap_or_default()));
        JsonlWriter { sink, keys, model, line: Vec::new() }
    }

    /// Flushes and returns the sink.
    pub fn into_inner(mut self) -> Result<W> {
        self.sink.flush().map_err(|e| WharfError::io("JSON-lines output", e))?;
        Ok(self.sink)
    }

    fn write(&mut self, chunk: &ScoredChunk) -> Result<()> {
        for i in 0..chunk.len() {
            let prediction = chunk.predictions.to_json(i);
            let values = chunk
                .ids
                .iter()
                .map(|(_, values)| &values[i])
                .chain(std::iter::once(&prediction))
                .map(Value::clone)
                .chain(chunk.probabilities_of(i).iter().map(|p| Value::from(*p)))
                .chain(self.model.iter().flat_map(|(n, v)| [n.clone(), v.clone()]));
            self.line.clear();
            self.line.push(b'{');
            for (j, (key, value)) in self.keys.iter().zip(values).enumerate() {
                if j > 0 {
                    self.line.push(b',');
                }
                self.line.extend_from_slice(key);
                self.line.push(b':');
                serde_json::to_writer(&mut self.line, &value)
                    .map_err(|e| WharfError::invalid("JSON-lines output", e.to_string()))?;
            }
            self.line.extend_from_slice(b"}\n");
            self.sink.write_all(&self.line).map_err(|e| WharfError::io("JSON-lines output", e))?;
        }
        Ok(())
    }
}

super::record_writer!(JsonlWriter);

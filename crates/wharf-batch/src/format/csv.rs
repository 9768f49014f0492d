//! CSV with a header row.
//!
//! Every CSV cell is text, so types show only row by row: a feature cell that does not parse
//! as a number makes that row a [`BadRow`] naming the column, not a file-level error. Cells
//! and headers are trimmed; an empty cell is a missing value.

use std::io::{Read, Write};
use std::sync::Arc;

use serde_json::Value;
use wharf_core::{Column, Result, WharfError};

use super::{
    cell_text, BadRow, Chunk, ChunkBuilder, ColumnKind, InputSchema, OutputLayout, Position, RawChunk, RawInner,
    ReadSpec, RecordReader, ScoredChunk, SourceType,
};

/// Where each wanted column is in the file.
#[derive(Debug)]
struct Plan {
    headers: Vec<String>,
    /// (column index, kind) per feature.
    features: Vec<(usize, ColumnKind)>,
    /// Column index per id.
    ids: Vec<usize>,
    names: Vec<String>,
    spec: ReadSpec,
}

/// Reads CSV in chunks of records.
pub struct CsvReader<R: Read> {
    reader: csv::Reader<R>,
    source: String,
    schema: InputSchema,
    plan: Arc<Plan>,
    chunk_rows: usize,
    rows: u64,
    done: bool,
}

impl<R: Read + Send> CsvReader<R> {
    /// Reads the header of `reader` (`source` names it in errors) and checks it against
    /// `spec`: a missing column is an error here, before any row is read.
    pub fn new(reader: R, source: &str, spec: &ReadSpec, chunk_rows: usize) -> Result<Self> {
        let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(reader);
        let headers: Vec<String> = reader
            .headers()
            .map_err(|e| WharfError::invalid(source, format!("CSV header: {e}")))?
            .iter()
            .map(|h| h.trim().to_string())
            .collect();
        let schema =
            InputSchema { columns: headers.iter().map(|h| (h.clone(), SourceType::Text)).collect(), typed: false };
        spec.check(&schema, source)?;
        let index = |name: &str| headers.iter().position(|h| h == name).unwrap_or(usize::MAX);
        let plan = Plan {
            features: spec.features.iter().map(|(n, k)| (index(n), *k)).collect(),
            ids: spec.ids.iter().map(|n| index(n)).collect(),
            spec: spec.clone(),
            names: spec.features.iter().map(|(n, _)| n.clone()).collect(),
            headers,
        };
        if let Some(i) = plan.features.iter().position(|(c, _)| *c == usize::MAX) {
            // Only reachable with an empty header, which `check` lets through.
            return Err(WharfError::schema(format!("{source}, column '{}'", plan.names[i]), "missing column"));
        }
        Ok(CsvReader {
            reader,
            source: source.to_string(),
            schema,
            plan: Arc::new(plan),
            chunk_rows: chunk_rows.max(1),
            rows: 0,
            done: false,
        })
    }
}

impl<R: Read + Send> RecordReader for CsvReader<R> {
    fn schema(&self) -> &InputSchema {
        &self.schema
    }

    fn next_raw(&mut self) -> Result<Option<RawChunk>> {
        if self.done {
            return Ok(None);
        }
        let first_row = self.rows + 1;
        let mut records = Vec::with_capacity(self.chunk_rows.min(1 << 16));
        // Records are sized like the previous one, so reading does not grow them bit by bit.
        let (mut bytes, mut fields) = (64, self.plan.headers.len());
        while records.len() < self.chunk_rows {
            let mut record = csv::ByteRecord::with_capacity(bytes, fields);
            let more = self
                .reader
                .read_byte_record(&mut record)
                .map_err(|e| WharfError::invalid(self.source.as_str(), format!("CSV: {e}")))?;
            if !more {
                self.done = true;
                break;
            }
            (bytes, fields) = (record.as_slice().len(), record.len());
            records.push(record);
        }
        self.rows += records.len() as u64;
        if records.is_empty() {
            return Ok(None);
        }
        let end_byte = self.reader.position().byte();
        Ok(Some(RawChunk(RawInner::Csv(RawCsv { plan: self.plan.clone(), records, first_row, end_byte }))))
    }
}

/// CSV records not yet parsed.
#[derive(Debug)]
pub(crate) struct RawCsv {
    plan: Arc<Plan>,
    records: Vec<csv::ByteRecord>,
    first_row: u64,
    end_byte: u64,
}

/// One feature value of a row being decoded.
enum Cell {
    Number(f64),
    Text(Option<String>),
}

impl RawCsv {
    pub(crate) fn decode(self) -> Chunk {
        let plan = &self.plan;
        let mut out = ChunkBuilder::new(plan.features.iter().map(|(_, k)| *k), plan.ids.len(), self.records.len());
        let mut cells: Vec<Cell> = Vec::with_capacity(plan.features.len());
        for (k, record) in self.records.iter().enumerate() {
            let position = Position { row: self.first_row + k as u64, line: record.position().map(|p| p.line()) };
            match decode_row(plan, record, &mut cells) {
                Ok(()) => {
                    for (column, cell) in out.columns.iter_mut().zip(cells.drain(..)) {
                        match (column, cell) {
                            (Column::Numeric(values), Cell::Number(x)) => values.push(x),
                            (Column::Text(values), Cell::Text(t)) => values.push(t),
                            _ => unreachable!("cells are decoded by the column's kind"),
                        }
                    }
                    for (values, &index) in out.ids.iter_mut().zip(&plan.ids) {
                        let text = record.get(index).map(|c| String::from_utf8_lossy(c).trim().to_string());
                        values.push(match text {
                            Some(t) if !t.is_empty() => Value::String(t),
                            _ => Value::Null,
                        });
                    }
                    out.positions.push(position);
                }
                Err((column, message)) => {
                    out.rejects.push(BadRow { position, column, message, raw: raw_row(&plan.headers, record) })
                }
            }
        }
        out.finish(&plan.spec, self.end_byte)
    }
}

/// Parses one record's feature cells into `cells`; the column and reason on failure.
fn decode_row(
    plan: &Plan,
    record: &csv::ByteRecord,
    cells: &mut Vec<Cell>,
) -> std::result::Result<(), (Option<String>, String)> {
    cells.clear();
    if record.len() != plan.headers.len() {
        return Err((None, format!("has {} fields, the header has {}", record.len(), plan.headers.len())));
    }
    for ((index, kind), name) in plan.features.iter().zip(&plan.names) {
        let bytes = record.get(*index).unwrap_or_default();
        let text = std::str::from_utf8(bytes).map_err(|_| (Some(name.clone()), "not valid UTF-8".to_string()))?;
        let text = text.trim();
        cells.push(match kind {
            ColumnKind::Number if text.is_empty() => Cell::Number(f64::NAN),
            ColumnKind::Number => match text.parse::<f64>() {
                Ok(x) => Cell::Number(x),
                Err(_) => return Err((Some(name.clone()), format!("expected a number, found '{text}'"))),
            },
            ColumnKind::Text if text.is_empty() => Cell::Text(None),
            ColumnKind::Text => Cell::Text(Some(text.to_string())),
        });
    }
    Ok(())
}

/// A record as `{header: cell}` (or a list of cells when the field count is wrong).
fn raw_row(headers: &[String], record: &csv::ByteRecord) -> Value {
    let cells = record.iter().map(|c| Value::String(String::from_utf8_lossy(c).into_owned()));
    if record.len() == headers.len() {
        Value::Object(headers.iter().cloned().zip(cells).collect())
    } else {
        Value::Array(cells.collect())
    }
}

/// Writes scored rows as CSV: a header, then one line per row. Probabilities are written
/// with the shortest text that reads back as the same `f64`.
pub struct CsvWriter<W: Write> {
    writer: csv::Writer<W>,
    model: Option<(String, String)>,
    record: Vec<String>,
}

impl<W: Write + Send> CsvWriter<W> {
    /// Writes the header for `layout` to `sink`.
    pub fn new(sink: W, layout: &OutputLayout) -> Result<Self> {
        let mut writer = csv::Writer::from_writer(sink);
        writer.write_record(layout.columns()).map_err(csv_error)?;
        let model = layout.model.as_ref().map(|(n, v)| (n.clone(), v.map(|v| v.to_string()).unwrap_or_default()));
        Ok(CsvWriter { writer, model, record: Vec::new() })
    }

    /// Flushes and returns the sink.
    pub fn into_inner(self) -> Result<W> {
        self.writer.into_inner().map_err(|e| csv_error(csv::Error::from(e.into_error())))
    }

    fn write(&mut self, chunk: &ScoredChunk) -> Result<()> {
        for i in 0..chunk.len() {
            self.record.clear();
            self.record.extend(chunk.ids.iter().map(|(_, values)| cell_text(&values[i])));
            self.record.push(chunk.predictions.display(i));
            self.record.extend(chunk.probabilities_of(i).iter().map(|p| p.to_string()));
            if let Some((name, version)) = &self.model {
                self.record.push(name.clone());
                self.record.push(version.clone());
            }
            self.writer.write_record(&self.record).map_err(csv_error)?;
        }
        Ok(())
    }
}

fn csv_error(e: csv::Error) -> WharfError {
    match e.into_kind() {
        csv::ErrorKind::Io(io) => WharfError::io("CSV output", io),
        other => WharfError::invalid("CSV output", format!("{other:?}")),
    }
}

super::record_writer!(CsvWriter);

//! Apache Parquet, through arrow-rs.
//!
//! Parquet declares a type per column, so a feature column of the wrong type (text where the
//! model needs numbers) is a schema error when the file is opened. Only the columns the model
//! and the ids need are read (a projection), in record batches of the chunk size. Output is
//! Snappy-compressed, in row groups of at most [`ROW_GROUP_ROWS`] rows, so memory stays flat
//! however long the output.

use std::io::Write;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use arrow_array::{Array, ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::arrow::{ArrowWriter, ProjectionMask};
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use parquet::file::reader::ChunkReader;
use serde_json::Value;
use wharf_core::{format_number, Column, Frame, Predictions, Result, Task, WharfError};

use super::{
    BadRow, Chunk, ColumnKind, InputSchema, OutputLayout, Position, RawChunk, RawInner, ReadSpec, RecordReader,
    ScoredChunk, SourceType,
};

/// Rows per row group written: small enough that the writer's buffer stays a few megabytes,
/// large enough for efficient reads.
pub const ROW_GROUP_ROWS: usize = 128 * 1024;

fn parquet_error(source: &str, e: impl std::fmt::Display) -> WharfError {
    WharfError::invalid(source, format!("Parquet: {e}"))
}

/// The [`SourceType`] of an Arrow type.
fn source_type(data_type: &DataType) -> SourceType {
    match data_type {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => SourceType::Text,
        DataType::Dictionary(_, values) if source_type(values) == SourceType::Text => SourceType::Text,
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64 => SourceType::Integer,
        DataType::Float32 | DataType::Float64 => SourceType::Float,
        DataType::Boolean => SourceType::Boolean,
        other => SourceType::Other(other.to_string()),
    }
}

/// Reads a Parquet file in record batches of the chunk size.
pub struct ParquetReader {
    reader: ParquetRecordBatchReader,
    schema: InputSchema,
    spec: Arc<ReadSpec>,
    source: Arc<str>,
    total_rows: u64,
    file_bytes: u64,
    rows: u64,
}

impl ParquetReader {
    /// Reads the footer of `input` (`source` names it in errors), checks the schema against
    /// `spec` (missing columns, wrong types) and prepares to read only the columns needed.
    pub fn new<T: ChunkReader + 'static>(input: T, source: &str, spec: &ReadSpec, chunk_rows: usize) -> Result<Self> {
        let file_bytes = input.len();
        let builder = ParquetRecordBatchReaderBuilder::try_new(input).map_err(|e| parquet_error(source, e))?;
        let arrow_schema = builder.schema().clone();
        let schema = InputSchema {
            columns: arrow_schema.fields().iter().map(|f| (f.name().clone(), source_type(f.data_type()))).collect(),
            typed: true,
        };
        spec.check(&schema, source)?;
        let mut roots: Vec<usize> = spec
            .features
            .iter()
            .map(|(n, _)| n)
            .chain(&spec.ids)
            .filter_map(|name| arrow_schema.index_of(name).ok())
            .collect();
        roots.sort_unstable();
        roots.dedup();
        let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
        let total_rows = u64::try_from(builder.metadata().file_metadata().num_rows()).unwrap_or(0);
        let reader = builder
            .with_projection(mask)
            .with_batch_size(chunk_rows.max(1))
            .build()
            .map_err(|e| parquet_error(source, e))?;
        Ok(ParquetReader {
            reader,
            schema,
            spec: Arc::new(spec.clone()),
            source: source.into(),
            total_rows,
            file_bytes,
            rows: 0,
        })
    }
}

impl RecordReader for ParquetReader {
    fn schema(&self) -> &InputSchema {
        &self.schema
    }

    fn total_rows(&self) -> Option<u64> {
        Some(self.total_rows)
    }

    fn next_raw(&mut self) -> Result<Option<RawChunk>> {
        let Some(batch) = self.reader.next() else {
            return Ok(None);
        };
        let batch = batch.map_err(|e| parquet_error(&self.source, e))?;
        let first_row = self.rows + 1;
        self.rows += batch.num_rows() as u64;
        let end_byte = if self.total_rows == 0 {
            self.file_bytes
        } else {
            (self.file_bytes as f64 * self.rows as f64 / self.total_rows as f64) as u64
        };
        Ok(Some(RawChunk(RawInner::Parquet(RawBatch { spec: self.spec.clone(), batch, first_row, end_byte }))))
    }
}

/// A record batch not yet turned into columns.
#[derive(Debug)]
pub(crate) struct RawBatch {
    spec: Arc<ReadSpec>,
    batch: RecordBatch,
    first_row: u64,
    end_byte: u64,
}

impl RawBatch {
    pub(crate) fn decode(self) -> Chunk {
        let n = self.batch.num_rows();
        let positions: Vec<Position> =
            (0..n as u64).map(|i| Position { row: self.first_row + i, line: None }).collect();
        let mut columns = Vec::with_capacity(self.spec.features.len());
        let mut failure = None;
        for (name, kind) in &self.spec.features {
            let column = self.batch.column_by_name(name).and_then(|a| match kind {
                ColumnKind::Number => numbers(a).map(Column::Numeric),
                ColumnKind::Text => texts(a).map(Column::Text),
            });
            match column {
                Some(column) => columns.push((name.clone(), column)),
                None => {
                    failure = Some(name.clone());
                    break;
                }
            }
        }
        let ids: Vec<(String, Vec<Value>)> = self
            .spec
            .ids
            .iter()
            .map(|name| {
                let values = self.batch.column_by_name(name).map(json_values).unwrap_or_else(|| vec![Value::Null; n]);
                (name.clone(), values)
            })
            .collect();
        let frame = match (failure, Frame::from_columns(columns)) {
            (None, Ok(frame)) => frame,
            // Unreachable after the schema check; kept as row errors rather than a panic.
            (column, _) => {
                let rejects = positions
                    .into_iter()
                    .map(|position| BadRow {
                        position,
                        column: column.clone(),
                        message: "the column's values cannot be read as the model needs them".into(),
                        raw: Value::Null,
                    })
                    .collect();
                return Chunk {
                    frame: Frame::new(),
                    ids: ids.into_iter().map(|(name, _)| (name, Vec::new())).collect(),
                    positions: Vec::new(),
                    rejects,
                    end_byte: self.end_byte,
                };
            }
        };
        Chunk { frame, ids, positions, rejects: Vec::new(), end_byte: self.end_byte }
    }
}

/// Applies `$body` to the primitive array of whichever numeric type `$array` holds. One body
/// serves every type, so its `as` casts are no-ops for some of them (hence the
/// `unnecessary_cast` allowances where it is used).
macro_rules! with_primitive {
    ($array:expr, |$p:ident| $body:expr) => {
        match $array.data_type() {
            DataType::Float64 => $array.as_primitive_opt::<Float64Type>().map(|$p| $body),
            DataType::Float32 => $array.as_primitive_opt::<Float32Type>().map(|$p| $body),
            DataType::Int64 => $array.as_primitive_opt::<Int64Type>().map(|$p| $body),
            DataType::Int32 => $array.as_primitive_opt::<Int32Type>().map(|$p| $body),
            DataType::Int16 => $array.as_primitive_opt::<Int16Type>().map(|$p| $body),
            DataType::Int8 => $array.as_primitive_opt::<Int8Type>().map(|$p| $body),
            DataType::UInt64 => $array.as_primitive_opt::<UInt64Type>().map(|$p| $body),
            DataType::UInt32 => $array.as_primitive_opt::<UInt32Type>().map(|$p| $body),
            DataType::UInt16 => $array.as_primitive_opt::<UInt16Type>().map(|$p| $body),
            DataType::UInt8 => $array.as_primitive_opt::<UInt8Type>().map(|$p| $body),
            _ => None,
        }
    };
}

/// A numeric array as `f64`s (nulls as `NaN`).
#[allow(clippy::unnecessary_cast)]
fn numbers(array: &ArrayRef) -> Option<Vec<f64>> {
    if let Some(p) = array.as_primitive_opt::<Float64Type>() {
        if p.null_count() == 0 {
            return Some(p.values().to_vec());
        }
    }
    with_primitive!(array, |p| p.iter().map(|v| v.map(|x| x as f64).unwrap_or(f64::NAN)).collect())
}

/// A text, integer or boolean array as level texts (nulls and empty strings as missing).
#[allow(clippy::unnecessary_cast)]
fn texts(array: &ArrayRef) -> Option<Vec<Option<String>>> {
    let own = |s: Option<&str>| s.filter(|s| !s.is_empty()).map(str::to_string);
    match array.data_type() {
        DataType::Utf8 => array.as_string_opt::<i32>().map(|a| a.iter().map(own).collect()),
        DataType::LargeUtf8 => array.as_string_opt::<i64>().map(|a| a.iter().map(own).collect()),
        DataType::Utf8View => array.as_string_view_opt().map(|a| a.iter().map(own).collect()),
        DataType::Boolean => array.as_boolean_opt().map(|a| a.iter().map(|b| b.map(|b| b.to_string())).collect()),
        DataType::Dictionary(_, _) => {
            let dict = array.as_any_dictionary_opt()?;
            let values = texts(dict.values())?;
            let keys = dict.normalized_keys();
            Some(
                (0..array.len())
                    .map(|i| if array.is_valid(i) { values.get(keys[i]).cloned().flatten() } else { None })
                    .collect(),
            )
        }
        _ => with_primitive!(array, |p| p.iter().map(|v| v.map(|x| format_number(x as f64))).collect()),
    }
}

/// An id column as JSON values, keeping numbers numbers.
#[allow(clippy::unnecessary_cast)]
fn json_values(array: &ArrayRef) -> Vec<Value> {
    let n = array.len();
    if let Some(a) = array.as_primitive_opt::<Int64Type>() {
        return a.iter().map(|v| v.map(Value::from).unwrap_or_default()).collect();
    }
    if let Some(a) = array.as_boolean_opt() {
        return a.iter().map(|v| v.map(Value::from).unwrap_or_default()).collect();
    }
    match array.data_type() {
        DataType::Float32 | DataType::Float64 => numbers(array)
            .map(|v| {
                v.into_iter().map(|x| serde_json::Number::from_f64(x).map(Value::Number).unwrap_or_default()).collect()
            })
            .unwrap_or_else(|| vec![Value::Null; n]),
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::UInt8 | DataType::UInt16 | DataType::UInt32 => {
            with_primitive!(array, |p| p.iter().map(|v| v.map(|x| Value::from(x as i64)).unwrap_or_default()).collect())
                .unwrap_or_else(|| vec![Value::Null; n])
        }
        DataType::UInt64 => array
            .as_primitive_opt::<UInt64Type>()
            .map(|p| p.iter().map(|v| v.map(Value::from).unwrap_or_default()).collect())
            .unwrap_or_else(|| vec![Value::Null; n]),
        _ => texts(array)
            .map(|v| v.into_iter().map(|t| t.map(Value::String).unwrap_or_default()).collect())
            .unwrap_or_else(|| vec![Value::Null; n]),
    }
}

/// Writes scored rows as Parquet (Snappy). Integer, float and boolean ids keep their type;
/// other ids are written as text.
pub struct ParquetWriter<W: Write + Send> {
    writer: ArrowWriter<W>,
    schema: SchemaRef,
    layout: OutputLayout,
}

impl<W: Write + Send> ParquetWriter<W> {
    /// A writer for `layout` into `sink`.
    pub fn new(sink: W, layout: &OutputLayout) -> Result<Self> {
        let mut fields: Vec<Field> = layout
            .ids
            .iter()
            .map(|(name, t)| {
                let data_type = match t {
                    SourceType::Integer => DataType::Int64,
                    SourceType::Float => DataType::Float64,
                    SourceType::Boolean => DataType::Boolean,
                    _ => DataType::Utf8,
                };
                Field::new(name, data_type, true)
            })
            .collect();
        let prediction = match layout.task {
            Task::Classification => DataType::Utf8,
            Task::Regression => DataType::Float64,
            Task::Clustering => DataType::Int64,
            // A task added later: its predictions as text.
            _ => DataType::Utf8,
        };
        fields.push(Field::new("prediction", prediction, true));
        fields.extend(
            layout.classes.iter().map(|c| Field::new(wharf_core::scoring::prob_column(c), DataType::Float64, false)),
        );
        if layout.model.is_some() {
            fields.push(Field::new("model", DataType::Utf8, false));
            fields.push(Field::new("model_version", DataType::Int64, true));
        }
        let schema = Arc::new(Schema::new(fields));
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .build();
        let writer =
            ArrowWriter::try_new(sink, schema.clone(), Some(props)).map_err(|e| parquet_error("Parquet output", e))?;
        Ok(ParquetWriter { writer, schema, layout: layout.clone() })
    }

    /// Writes the footer and returns the sink.
    pub fn into_inner(self) -> Result<W> {
        self.writer.into_inner().map_err(|e| parquet_error("Parquet output", e))
    }

    fn write(&mut self, chunk: &ScoredChunk) -> Result<()> {
        if chunk.is_empty() {
            return Ok(());
        }
        let n = chunk.len();
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(self.schema.fields().len());
        for ((name, t), (_, values)) in self.layout.ids.iter().zip(&chunk.ids) {
            arrays.push(id_array(name, t, values)?);
        }
        arrays.push(match &chunk.predictions {
            Predictions::Classes { classes, indices } => {
                Arc::new(StringArray::from_iter_values(indices.iter().map(|&i| classes[i as usize].as_str())))
            }
            Predictions::Values(v) => Arc::new(Float64Array::from(v.clone())),
            Predictions::Clusters(v) => Arc::new(Int64Array::from_iter_values(v.iter().map(|&c| i64::from(c)))),
        });
        if let Some(p) = &chunk.probabilities {
            for j in 0..self.layout.classes.len() {
                arrays.push(Arc::new(Float64Array::from_iter_values(p.column(j).iter().copied())));
            }
        }
        if let Some((name, version)) = &self.layout.model {
            arrays.push(Arc::new(StringArray::from_iter_values(std::iter::repeat_n(name.as_str(), n))));
            let version = version.and_then(|v| i64::try_from(v).ok());
            arrays.push(Arc::new(Int64Array::from(vec![version; n])));
        }
        let batch =
            RecordBatch::try_new(self.schema.clone(), arrays).map_err(|e| parquet_error("Parquet output", e))?;
        self.writer.write(&batch).map_err(|e| parquet_error("Parquet output", e))
    }
}

/// An id column in its output type; a value that does not fit is an error naming the column.
fn id_array(name: &str, t: &SourceType, values: &[Value]) -> Result<ArrayRef> {
    let unfit = |v: &Value| WharfError::invalid(name, format!("id value {v} does not fit the column's type ({t})"));
    Ok(match t {
        SourceType::Integer => Arc::new(
            values
                .iter()
                .map(|v| if v.is_null() { Ok(None) } else { v.as_i64().map(Some).ok_or_else(|| unfit(v)) })
                .collect::<Result<Int64Array>>()?,
        ),
        SourceType::Float => Arc::new(
            values
                .iter()
                .map(|v| if v.is_null() { Ok(None) } else { v.as_f64().map(Some).ok_or_else(|| unfit(v)) })
                .collect::<Result<Float64Array>>()?,
        ),
        SourceType::Boolean => Arc::new(
            values
                .iter()
                .map(|v| if v.is_null() { Ok(None) } else { v.as_bool().map(Some).ok_or_else(|| unfit(v)) })
                .collect::<Result<BooleanArray>>()?,
        ),
        _ => Arc::new(
            values
                .iter()
                .map(|v| match v {
                    Value::Null => None,
                    Value::String(s) => Some(s.clone()),
                    other => Some(other.to_string()),
                })
                .collect::<StringArray>(),
        ),
    })
}

super::record_writer!(ParquetWriter);

//! Writes the prepared table as one Parquet file (Snappy, as Spark writes it).
//!
//! wharf-batch's writers write *scored* rows (ids, prediction, probabilities); a prepared
//! table is plain columns, so it goes through the same arrow-rs stack here, into
//! wharf-batch's [`AtomicFile`] so the file appears whole or not at all.

use std::path::Path;
use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use wharf_batch::AtomicFile;
use wharf_core::{Column, Frame};

/// Writes `frame`: text columns as nullable UTF-8, numbers as nullable doubles (NaN → null).
pub fn write_parquet(frame: &Frame, path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let mut fields = Vec::new();
    let mut arrays: Vec<ArrayRef> = Vec::new();
    for (name, column) in frame.columns() {
        match column {
            Column::Text(values) => {
                fields.push(Field::new(name, DataType::Utf8, true));
                arrays.push(Arc::new(StringArray::from(values.clone())));
            }
            Column::Numeric(values) => {
                fields.push(Field::new(name, DataType::Float64, true));
                let values: Vec<Option<f64>> = values.iter().map(|v| (!v.is_nan()).then_some(*v)).collect();
                arrays.push(Arc::new(Float64Array::from(values)));
            }
        }
    }
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(schema.clone(), arrays)?;
    let props = WriterProperties::builder().set_compression(Compression::SNAPPY).build();
    let mut writer = ArrowWriter::try_new(AtomicFile::create(path)?, schema, Some(props))?;
    writer.write(&batch)?;
    writer.into_inner()?.commit()?;
    Ok(())
}

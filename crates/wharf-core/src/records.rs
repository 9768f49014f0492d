//! Input records: a numeric matrix, named rows (JSON objects), or named columns.
//!
//! Three shapes because callers hold data in three shapes: a matrix from numeric code, JSON
//! objects from HTTP bodies and JSON lines, columns from CSV or Arrow. All three are checked
//! against the model's [`Signature`](crate::Signature) before any arithmetic.

use ndarray::{Array2, ArrayView2, CowArray, Ix2};
use serde_json::{Map, Value};

/// One named row: field name → JSON value.
pub type Row = Map<String, Value>;

/// A column of a [`Frame`].
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    /// Numbers; `NaN` marks a missing value.
    Numeric(Vec<f64>),
    /// Text; `None` marks a missing value.
    Text(Vec<Option<String>>),
}

impl Column {
    /// Number of values.
    pub fn len(&self) -> usize {
        match self {
            Column::Numeric(v) => v.len(),
            Column::Text(v) => v.len(),
        }
    }

    /// True when the column has no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value at `row` as display text (empty for missing).
    pub fn text_at(&self, row: usize) -> String {
        match self {
            Column::Numeric(v) => v.get(row).map(|x| format_number(*x)).unwrap_or_default(),
            Column::Text(v) => v.get(row).cloned().flatten().unwrap_or_default(),
        }
    }

    /// A copy holding only the rows in `rows`.
    pub fn take(&self, rows: &[usize]) -> Column {
        match self {
            Column::Numeric(v) => Column::Numeric(rows.iter().map(|&i| v[i]).collect()),
            Column::Text(v) => Column::Text(rows.iter().map(|&i| v[i].clone()).collect()),
        }
    }
}

/// Formats a number the way a person wrote it: integers without a trailing `.0`.
pub fn format_number(x: f64) -> String {
    if x.is_nan() {
        String::new()
    } else if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

/// How many characters of an input value an error message repeats.
pub const EXCERPT_CHARS: usize = 64;

/// `text` as an error message may quote it: at most [`EXCERPT_CHARS`] characters, then an
/// ellipsis. A message echoes what the client sent so it can find its mistake, and a
/// megabyte-long "category" must not come back (or reach the logs) in full.
pub fn excerpt(text: &str) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(EXCERPT_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]).into(),
        None => text.into(),
    }
}

/// Named columns of equal length.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Frame {
    columns: Vec<(String, Column)>,
    rows: usize,
}

impl Frame {
    /// An empty frame.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds a frame, checking that names are unique and columns have equal length.
    pub fn from_columns(columns: Vec<(String, Column)>) -> crate::Result<Self> {
        let mut frame = Frame::new();
        for (name, column) in columns {
            frame.push(name, column)?;
        }
        Ok(frame)
    }

    /// Appends a column.
    pub fn push(&mut self, name: impl Into<String>, column: Column) -> crate::Result<()> {
        let name = name.into();
        if self.columns.iter().any(|(n, _)| *n == name) {
            return Err(crate::WharfError::invalid(name, "duplicate column"));
        }
        if !self.columns.is_empty() && column.len() != self.rows {
            return Err(crate::WharfError::invalid(
                name,
                format!("column has {} rows, expected {}", column.len(), self.rows),
            ));
        }
        self.rows = column.len();
        self.columns.push((name, column));
        Ok(())
    }

    /// Number of rows.
    pub fn n_rows(&self) -> usize {
        self.rows
    }

    /// The columns with their names, in order.
    pub fn columns(&self) -> &[(String, Column)] {
        &self.columns
    }

    /// The column called `name`.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|(n, _)| n == name).map(|(_, c)| c)
    }

    /// Removes and returns the column called `name`.
    pub fn remove(&mut self, name: &str) -> Option<Column> {
        let idx = self.columns.iter().position(|(n, _)| n == name)?;
        let (_, column) = self.columns.remove(idx);
        if self.columns.is_empty() {
            self.rows = 0;
        }
        Some(column)
    }

    /// A copy holding only the rows in `rows` (indices must be in range).
    pub fn take(&self, rows: &[usize]) -> Frame {
        Frame { columns: self.columns.iter().map(|(n, c)| (n.clone(), c.take(rows))).collect(), rows: rows.len() }
    }

    /// Row `i` as a JSON object (missing values as `null`).
    pub fn row(&self, i: usize) -> Row {
        let mut row = Row::new();
        for (name, column) in &self.columns {
            let value = match column {
                Column::Numeric(v) => serde_json::Number::from_f64(v[i]).map(Value::Number).unwrap_or(Value::Null),
                Column::Text(v) => v[i].clone().map(Value::String).unwrap_or(Value::Null),
            };
            row.insert(name.clone(), value);
        }
        row
    }
}

/// Checks that a file's header (`names`, in file order) names no column twice: the one rule
/// training and scoring share, so a file refused for training is refused for scoring too,
/// instead of being scored with whichever copy a reader happens to pick. The error names
/// `source`, the column and both positions (1-based). Linear in the number of columns.
pub fn check_unique_columns<'a>(names: impl IntoIterator<Item = &'a str>, source: &str) -> crate::Result<()> {
    let mut seen = std::collections::HashMap::new();
    for (i, name) in names.into_iter().enumerate() {
        if let Some(first) = seen.insert(name, i) {
            return Err(crate::WharfError::invalid(
                format!("{source}, column '{name}'"),
                format!("the header names this column twice (columns {} and {})", first + 1, i + 1),
            ));
        }
    }
    Ok(())
}

/// Records to score, in any of the three shapes.
///
/// The lifetime is that of a borrowed matrix: a caller holding its numbers in memory it
/// owns (a NumPy array, a pandas frame's block) lends them for the scoring call instead of
/// copying them, in whatever layout they have. Owned records are `Records<'static>`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Records<'a> {
    /// Raw feature values in signature order, one row per record. A categorical feature's
    /// cell holds the index of its level in the signature's `levels`.
    ///
    /// Owned or borrowed, with any strides (row-major, column-major, a slice of a wider
    /// array): one variant rather than a separate view variant, so every reader of a matrix
    /// handles a borrowed one without a second arm to forget (the enum is
    /// `non_exhaustive`, so a forgotten arm would fall into a catch-all refusal silently).
    /// Readers that need contiguous rows check [`ArrayBase::as_slice`](ndarray::ArrayBase::as_slice)
    /// and copy at most a block at a time otherwise.
    Matrix(CowArray<'a, f64, Ix2>),
    /// Named rows, as JSON objects. Every feature must be present; unknown fields are refused
    /// so a misspelt field name cannot pass unnoticed.
    Rows(Vec<Row>),
    /// Named columns. Every feature must be present; other columns are ignored, so a file's id
    /// columns can ride along.
    Columns(Frame),
}

impl<'a> Records<'a> {
    /// Number of records.
    pub fn len(&self) -> usize {
        match self {
            Records::Matrix(m) => m.nrows(),
            Records::Rows(r) => r.len(),
            Records::Columns(f) => f.n_rows(),
        }
    }

    /// True when there are no records.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The records at `rows`, in that order, in the same shape.
    pub fn take(&self, rows: &[usize]) -> Records<'static> {
        match self {
            Records::Matrix(m) => Records::Matrix(m.select(ndarray::Axis(0), rows).into()),
            Records::Rows(r) => Records::Rows(rows.iter().filter_map(|&i| r.get(i).cloned()).collect()),
            Records::Columns(f) => Records::Columns(f.take(rows)),
        }
    }

    /// The same records, owning their matrix, for a caller that keeps them past the
    /// lender's lifetime (a queue, a background task). Copies a borrowed matrix only.
    pub fn into_owned(self) -> Records<'static> {
        match self {
            Records::Matrix(m) => Records::Matrix(m.into_owned().into()),
            Records::Rows(r) => Records::Rows(r),
            Records::Columns(f) => Records::Columns(f),
        }
    }
}

impl From<Array2<f64>> for Records<'static> {
    fn from(m: Array2<f64>) -> Self {
        Records::Matrix(m.into())
    }
}

impl<'a> From<ArrayView2<'a, f64>> for Records<'a> {
    fn from(m: ArrayView2<'a, f64>) -> Self {
        Records::Matrix(m.into())
    }
}

impl From<Vec<Row>> for Records<'static> {
    fn from(rows: Vec<Row>) -> Self {
        Records::Rows(rows)
    }
}

impl From<Frame> for Records<'static> {
    fn from(frame: Frame) -> Self {
        Records::Columns(frame)
    }
}

/// How a JSON value's type reads in an error message (`a string`, `null`), so every place
/// that refuses a value words it the same way.
pub fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_keep_short_text_and_cut_long_text_on_a_character() {
        assert_eq!(excerpt("tablet"), "tablet");
        let exact = "é".repeat(EXCERPT_CHARS);
        assert_eq!(excerpt(&exact), exact.as_str());
        let long = "é".repeat(1_000_000);
        assert_eq!(excerpt(&long), format!("{}…", "é".repeat(EXCERPT_CHARS)));
    }
}

//! Tabular training data: feature columns, an optional target, optional id columns.

use std::collections::BTreeMap;
use std::path::Path;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use sha2::{Digest, Sha256};

use wharf_core::{Column, Frame};
use wharf_core::{Result, WharfError};

/// How to read a CSV file into a [`Dataset`].
#[derive(Debug, Clone, Default)]
pub struct CsvOptions {
    /// The column to predict; `None` for clustering.
    pub target: Option<String>,
    /// Columns that identify a row and are not features (kept for output, never trained on).
    pub ids: Vec<String>,
    /// Columns to treat as categorical even if every value parses as a number.
    pub categorical: Vec<String>,
    /// Columns to treat as numeric; a value that does not parse is an error naming the cell.
    pub numeric: Vec<String>,
    /// Columns to leave out entirely.
    pub drop: Vec<String>,
}

/// A table to train or evaluate on.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// A name for lineage and tracking (`bundled:lead_scoring`, a file path).
    pub name: String,
    /// The feature columns.
    pub features: Frame,
    /// The target column's name and values.
    pub target: Option<(String, Column)>,
    /// Id columns, kept aside.
    pub ids: Frame,
    /// Known levels of categorical feature columns beyond those present in `features`.
    /// [`split`](Self::split) fills it from the whole table, so a model trained on one part
    /// still knows a level that only occurs in the other.
    pub levels: BTreeMap<String, Vec<String>>,
}

impl Dataset {
    /// Reads a CSV file with a header row. Column types are inferred (a column is numeric when
    /// every non-empty cell parses as a number) unless `options` says otherwise.
    pub fn from_csv_path(path: impl AsRef<Path>, options: &CsvOptions) -> Result<Dataset> {
        let path = path.as_ref();
        let file = std::fs::File::open(path).map_err(|e| WharfError::io(path, e))?;
        Self::from_csv_reader(file, &path.display().to_string(), options)
    }

    /// Reads CSV from any reader; `name` names the source in errors and lineage.
    pub fn from_csv_reader(reader: impl std::io::Read, name: &str, options: &CsvOptions) -> Result<Dataset> {
        let frame = read_csv(reader, name, &options.categorical, &options.numeric)?;
        Self::from_frame(name, frame, options)
    }

    /// Splits a frame into target, ids and features as `options` says.
    pub fn from_frame(name: &str, mut frame: Frame, options: &CsvOptions) -> Result<Dataset> {
        let missing = |col: &str| WharfError::invalid(col, format!("no column '{col}' in {name}"));
        let target = match &options.target {
            Some(t) => Some((t.clone(), frame.remove(t).ok_or_else(|| missing(t))?)),
            None => None,
        };
        let mut ids = Frame::new();
        for id in &options.ids {
            let column = frame.remove(id).ok_or_else(|| missing(id))?;
            ids.push(id.clone(), column)?;
        }
        for d in &options.drop {
            frame.remove(d).ok_or_else(|| missing(d))?;
        }
        if frame.columns().is_empty() {
            return Err(WharfError::invalid(name, "no feature columns left"));
        }
        Ok(Dataset { name: name.to_string(), features: frame, target, ids, levels: BTreeMap::new() })
    }

    /// Number of rows.
    pub fn n_rows(&self) -> usize {
        self.features.n_rows()
    }

    /// Splits into (train, test) with `test_fraction` of the rows in test, shuffled with
    /// `seed`. Both parts keep at least one row when the data has two or more.
    pub fn split(&self, test_fraction: f64, seed: u64) -> Result<(Dataset, Dataset)> {
        if !(0.0..1.0).contains(&test_fraction) {
            return Err(WharfError::invalid("test_fraction", "must be in [0, 1)"));
        }
        let n = self.n_rows();
        let mut idx: Vec<usize> = (0..n).collect();
        idx.shuffle(&mut Xoshiro256PlusPlus::seed_from_u64(seed));
        let mut n_test = (n as f64 * test_fraction).round() as usize;
        if test_fraction > 0.0 && n >= 2 {
            n_test = n_test.clamp(1, n - 1);
        }
        let (test, train) = idx.split_at(n_test);
        let mut train = train.to_vec();
        let mut test = test.to_vec();
        train.sort_unstable();
        test.sort_unstable();
        Ok((self.take(&train, "train"), self.take(&test, "test")))
    }

    pub(crate) fn take(&self, rows: &[usize], part: &str) -> Dataset {
        let mut levels = self.levels.clone();
        for (name, column) in self.features.columns() {
            if let Column::Text(values) = column {
                let known = levels.entry(name.clone()).or_default();
                known.extend(values.iter().flatten().cloned());
                known.sort();
                known.dedup();
            }
        }
        Dataset {
            levels,
            name: format!("{}[{part}]", self.name),
            features: self.features.take(rows),
            target: self.target.as_ref().map(|(n, c)| (n.clone(), c.take(rows))),
            ids: self.ids.take(rows),
        }
    }

    /// SHA-256 over the features and target, so a model records exactly which data it saw.
    pub fn fingerprint(&self) -> String {
        let mut hasher = Sha256::new();
        let columns = self.features.columns().iter().chain(self.target.iter().map(|t| t as &(String, Column)));
        for (name, column) in columns {
            hasher.update(name.as_bytes());
            hasher.update([0]);
            match column {
                Column::Numeric(v) => v.iter().for_each(|x| hasher.update(x.to_le_bytes())),
                Column::Text(v) => v.iter().for_each(|x| {
                    hasher.update(x.as_deref().unwrap_or("\u{0}").as_bytes());
                    hasher.update([0xff]);
                }),
            }
        }
        hex(&hasher.finalize())
    }
}

/// Lower-case hexadecimal.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads a whole CSV into a frame, inferring column types.
pub fn read_csv(reader: impl std::io::Read, name: &str, categorical: &[String], numeric: &[String]) -> Result<Frame> {
    let mut rdr = csv::ReaderBuilder::new().flexible(false).from_reader(reader);
    let csv_err = |e: csv::Error| WharfError::invalid(name, format!("CSV: {e}"));
    let headers: Vec<String> = rdr.headers().map_err(csv_err)?.iter().map(|h| h.trim().to_string()).collect();
    wharf_core::check_unique_columns(headers.iter().map(String::as_str), name)?;
    for wanted in categorical.iter().chain(numeric) {
        if !headers.contains(wanted) {
            return Err(WharfError::invalid(wanted.as_str(), format!("no column '{wanted}' in {name}")));
        }
    }
    let mut cells: Vec<Vec<String>> = vec![Vec::new(); headers.len()];
    for record in rdr.records() {
        let record = record.map_err(csv_err)?;
        for (col, cell) in cells.iter_mut().zip(record.iter()) {
            col.push(cell.trim().to_string());
        }
    }
    let mut frame = Frame::new();
    for (header, values) in headers.into_iter().zip(cells) {
        let force_text = categorical.contains(&header);
        let force_num = numeric.contains(&header);
        let parsed: Option<Vec<f64>> = if force_text {
            None
        } else {
            values.iter().map(|v| if v.is_empty() { Some(f64::NAN) } else { v.parse::<f64>().ok() }).collect()
        };
        let column = match parsed {
            Some(nums) if !nums.iter().all(|x| x.is_nan()) || force_num => Column::Numeric(nums),
            _ if force_num => {
                let (row, bad) = values
                    .iter()
                    .enumerate()
                    .find(|(_, v)| !v.is_empty() && v.parse::<f64>().is_err())
                    .map(|(i, v)| (i, v.clone()))
                    .unwrap_or_default();
                return Err(WharfError::invalid(
                    format!("{header}[{row}]"),
                    format!("column is declared numeric but holds '{bad}'"),
                ));
            }
            _ => Column::Text(values.into_iter().map(|v| if v.is_empty() { None } else { Some(v) }).collect()),
        };
        frame.push(header, column)?;
    }
    Ok(frame)
}

/// Small datasets bundled inside the crate: no download, always available.
pub mod datasets {
    use super::{CsvOptions, Dataset};

    fn bundled(name: &str, csv: &str, options: CsvOptions) -> Dataset {
        // The bundled files are part of this crate and covered by its tests; failing to parse
        // them is a build defect, not a runtime condition.
        Dataset::from_csv_reader(csv.as_bytes(), &format!("bundled:{name}"), &options)
            .unwrap_or_else(|e| panic!("bundled dataset {name} is broken: {e}"))
    }

    fn opts(target: &str, ids: &[&str]) -> CsvOptions {
        CsvOptions {
            target: Some(target.into()),
            ids: ids.iter().map(|s| s.to_string()).collect(),
            ..CsvOptions::default()
        }
    }

    /// The raw CSV of [`lead_scoring`].
    pub const LEAD_SCORING_CSV: &str = include_str!("../data/lead_scoring.csv");
    /// The raw CSV of [`breast_cancer`].
    pub const BREAST_CANCER_CSV: &str = include_str!("../data/breast_cancer.csv");
    /// The raw CSV of [`diabetes`].
    pub const DIABETES_CSV: &str = include_str!("../data/diabetes.csv");
    /// The raw CSV of [`iris`].
    pub const IRIS_CSV: &str = include_str!("../data/iris.csv");

    /// Synthetic B2B leads (1,200 rows): will the lead convert (`yes`/`no`)? Mixes numeric
    /// and categorical features; id column `lead_id`.
    pub fn lead_scoring() -> Dataset {
        bundled("lead_scoring", LEAD_SCORING_CSV, opts("converted", &["lead_id"]))
    }

    /// Breast Cancer Wisconsin (Diagnostic), 569 rows × 30 numeric features; target
    /// `diagnosis` (`benign`/`malignant`); id column `id`.
    pub fn breast_cancer() -> Dataset {
        bundled("breast_cancer", BREAST_CANCER_CSV, opts("diagnosis", &["id"]))
    }

    /// Diabetes progression (442 rows × 10 features); regression target `progression`.
    pub fn diabetes() -> Dataset {
        bundled("diabetes", DIABETES_CSV, opts("progression", &[]))
    }

    /// Fisher's iris (150 rows × 4 features); three classes in `species`.
    pub fn iris() -> Dataset {
        bundled("iris", IRIS_CSV, opts("species", &[]))
    }
}

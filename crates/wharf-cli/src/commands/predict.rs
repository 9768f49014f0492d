//! `wharf predict`: score a CSV or JSON-lines file with a registered model.

use std::fs;
use std::path::Path;
use wharf::json_type;

use anyhow::{anyhow, bail};
use serde_json::{json, Value};
use wharf::{
    format_number, Column, FeatureKind, LineageEvent, LineageEventType, Model, ModelRef, Predictions, Probabilities,
    Records, RegistryExt, Row, Selector, Signature, Task, Wharf, WharfError,
};

use crate::args::PredictArgs;
use crate::output::{self, Output, Spinner};

/// A file format, from the file's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Csv,
    Jsonl,
}

impl Format {
    fn of(path: &Path, role: &str) -> anyhow::Result<Format> {
        let ext = path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
        match ext.as_str() {
            "csv" => Ok(Format::Csv),
            "jsonl" | "ndjson" => Ok(Format::Jsonl),
            _ => bail!("{role} file {}: unsupported type (use a .csv or .jsonl file)", path.display()),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Jsonl => "jsonl",
        }
    }
}

/// Records read from the input, with the id values kept aside for the output.
struct Input {
    records: Records,
    /// Each `--id` column's values, one per record.
    ids: Vec<(String, Vec<Value>)>,
    /// The line each record came from (JSON lines only), to name it in errors.
    lines: Vec<usize>,
}

/// Runs `wharf predict`.
pub fn run(args: PredictArgs, out: &Output) -> anyhow::Result<()> {
    let in_format = Format::of(&args.input, "input")?;
    let out_format = Format::of(&args.output, "output")?;
    if same_file(&args.input, &args.output) {
        bail!("the output {} would overwrite the input", args.output.display());
    }
    for (i, id) in args.ids.iter().enumerate() {
        if args.ids[..i].contains(id) {
            bail!("--id {id} is given twice");
        }
    }
    let ctx = Wharf::load()?;

    let spinner = Spinner::new(out.quiet);
    spinner.stage(format!("loading {}", args.model));
    // Resolve the selector once, so the version reported is the version scored even if an
    // alias moves meanwhile.
    let info = ctx.registry().version_info(&args.model.name, &args.model.selector)?;
    let model = ctx
        .registry()
        .load_ref(&ModelRef { name: args.model.name.clone(), selector: Selector::Version(info.version) })?;
    let columns = output_columns(&args.ids, &model)?;

    // Batch scoring is a job in lineage terms: START now, COMPLETE or FAIL at the end, with
    // the input file and the model version read and the output file written.
    let file = args.input.display().to_string();
    let job = format!("score-{}", info.name);
    let input_ds = format!("file:{file}");
    let model_ds = format!("registry:{}/{}", info.name, info.version);
    let output_ds = format!("file:{}", args.output.display());
    let facts = wharf::ModelFacts {
        name: info.name.clone(),
        version: Some(info.version.0),
        sha256: Some(info.sha256.clone()),
        algorithm: Some(info.algorithm.clone()),
        metrics: info.metrics.clone(),
    };
    let start = LineageEvent::new(job.clone())
        .event_type(LineageEventType::Start)
        .input(input_ds.clone())
        .input(model_ds.clone())
        .model(facts.clone());
    let run_id = start.run_id.clone();
    ctx.lineage().emit(&start)?;
    let end = LineageEvent::new(job).run_id(run_id).input(input_ds.clone()).input(model_ds).model(facts);
    let result = score_file(&args, &model, &columns, in_format, out_format, &file, &spinner);
    let end = match &result {
        Ok(rows) => end
            .output(output_ds.clone())
            .schema(input_ds, wharf::SchemaField::from_signature(model.signature()))
            .meta("rows", *rows),
        Err(e) => end.event_type(LineageEventType::Fail).meta("error", output::one_line(e)),
    };
    ctx.lineage().emit(&end)?;
    let rows = result?;
    drop(spinner);

    if out.json {
        return out.json(&json!({
            "model": info.name,
            "version": info.version.0,
            "rows": rows,
            "input": file,
            "output": args.output.display().to_string(),
            "format": out_format.name(),
            "columns": columns,
        }));
    }
    out.info(format!("Scored {rows} rows with {}@{} -> {}", info.name, info.version, args.output.display()))
}

/// Reads, scores and writes; returns the number of rows scored.
fn score_file(
    args: &PredictArgs,
    model: &Model,
    columns: &[String],
    in_format: Format,
    out_format: Format,
    file: &str,
    spinner: &Spinner,
) -> anyhow::Result<usize> {
    spinner.stage(format!("reading {}", args.input.display()));
    let input = match in_format {
        Format::Csv => read_csv(&args.input, &args.ids, model.signature())?,
        Format::Jsonl => read_jsonl(&args.input, &args.ids, model.signature())?,
    };

    spinner.stage(format!("scoring {} rows", input.records.len()));
    let (predictions, proba) = score(model, &input.records).map_err(|e| locate(e, &input, file))?;
    if predictions.len() != input.records.len() {
        bail!("the model returned {} predictions for {} records", predictions.len(), input.records.len());
    }

    spinner.stage(format!("writing {}", args.output.display()));
    let bytes = match out_format {
        Format::Csv => write_csv(columns, &input, &predictions, proba.as_ref())?,
        Format::Jsonl => write_jsonl(columns, &input, &predictions, proba.as_ref())?,
    };
    wharf::fsutil::write_atomic(&args.output, &bytes)?;
    Ok(predictions.len())
}

/// The output's header: the id columns, `prediction`, then `prob_<class>` per class.
fn output_columns(ids: &[String], model: &Model) -> anyhow::Result<Vec<String>> {
    let mut columns: Vec<String> = ids.to_vec();
    let scores = std::iter::once("prediction".to_string())
        .chain(model.classes().iter().filter(|_| model.task() == Task::Classification).map(|c| format!("prob_{c}")));
    for column in scores {
        if columns.contains(&column) {
            bail!("the id column '{column}' clashes with an output column of the same name");
        }
        columns.push(column);
    }
    Ok(columns)
}

/// One prediction per record, plus class probabilities for classifiers. The predicted class
/// is the most probable one, as `Model::predict` defines it, so the model runs once.
fn score(model: &Model, records: &Records) -> wharf::Result<(Predictions, Option<Probabilities>)> {
    if model.task() == Task::Classification {
        let proba = model.predict_proba(records)?;
        let predictions = Predictions::Classes { classes: proba.classes.clone(), indices: proba.argmax() };
        Ok((predictions, Some(proba)))
    } else {
        Ok((model.predict(records)?, None))
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (fs::canonicalize(a), fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Reads a CSV file. The signature's categorical features and the id columns are read as
/// text, so `007` stays `007` and a numeric-looking level stays a level.
fn read_csv(path: &Path, ids: &[String], signature: &Signature) -> anyhow::Result<Input> {
    let bytes = fs::read(path).map_err(|e| WharfError::io(path, e))?;
    let name = path.display().to_string();
    let headers: Vec<String> = csv::Reader::from_reader(bytes.as_slice())
        .headers()
        .map_err(|e| WharfError::invalid(name.as_str(), format!("CSV: {e}")))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    for id in ids {
        if !headers.contains(id) {
            bail!("no column '{id}' in {name} (each --id column must exist)");
        }
    }
    // A categorical feature missing from the file is reported by the model, like any
    // missing feature.
    let text_columns: Vec<String> = signature
        .features
        .iter()
        .filter(|f| matches!(f.kind, FeatureKind::Categorical { .. }))
        .map(|f| f.name.clone())
        .chain(ids.iter().cloned())
        .filter(|c| headers.contains(c))
        .collect();
    let frame = wharf::read_csv(bytes.as_slice(), &name, &text_columns, &[])?;
    let ids = ids
        .iter()
        .map(|id| {
            let column = frame.column(id).ok_or_else(|| anyhow!("no column '{id}' in {name}"))?;
            Ok((id.clone(), column_values(column)))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Input { records: Records::Columns(frame), ids, lines: Vec::new() })
}

fn column_values(column: &Column) -> Vec<Value> {
    match column {
        Column::Text(values) => values.iter().map(|v| v.clone().map(Value::String).unwrap_or(Value::Null)).collect(),
        Column::Numeric(values) => {
            values.iter().map(|x| if x.is_nan() { Value::Null } else { Value::String(format_number(*x)) }).collect()
        }
    }
}

/// Reads JSON lines: one object per line, blank lines skipped. Id fields are kept aside and
/// fields the model does not take are dropped (a misspelt feature still fails, as missing).
fn read_jsonl(path: &Path, ids: &[String], signature: &Signature) -> anyhow::Result<Input> {
    let text = fs::read_to_string(path).map_err(|e| WharfError::io(path, e))?;
    let name = path.display();
    let mut rows: Vec<Row> = Vec::new();
    let mut id_values: Vec<(String, Vec<Value>)> = ids.iter().map(|id| (id.clone(), Vec::new())).collect();
    let mut lines = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(line).map_err(|e| {
            let full = e.to_string();
            let message = full.rsplit_once(" at line ").map(|(m, _)| m.to_string()).unwrap_or(full);
            anyhow!("{name} line {line_no}, column {}: invalid JSON: {message}", e.column())
        })?;
        let Value::Object(mut row) = value else {
            bail!("{name} line {line_no}: expected a JSON object, found {}", json_type(&value));
        };
        for (id, values) in &mut id_values {
            let value =
                row.get(id.as_str()).cloned().ok_or_else(|| anyhow!("{name} line {line_no}: no field '{id}'"))?;
            values.push(value);
        }
        row.retain(|field, _| signature.position(field).is_some());
        rows.push(row);
        lines.push(line_no);
    }
    Ok(Input { records: Records::Rows(rows), ids: id_values, lines })
}

/// Rewrites the record paths of the model's errors (`records[3].age`, `columns.age[3]`)
/// into places in the input file.
fn locate(err: WharfError, input: &Input, file: &str) -> WharfError {
    match err {
        WharfError::SchemaMismatch { path, message } => WharfError::schema(place(&path, input, file), message),
        WharfError::InvalidInput { path, message } => WharfError::invalid(place(&path, input, file), message),
        other => other,
    }
}

fn place(path: &str, input: &Input, file: &str) -> String {
    if let Some((index, field)) = path.strip_prefix("records[").and_then(|rest| rest.split_once("].")) {
        if let Some(line) = index.parse::<usize>().ok().and_then(|i| input.lines.get(i)) {
            return format!("{file} line {line}, field '{field}'");
        }
    }
    if let Some(rest) = path.strip_prefix("columns.") {
        if let Some((column, index)) = rest.strip_suffix(']').and_then(|r| r.rsplit_once('[')) {
            if let Ok(i) = index.parse::<usize>() {
                return format!("{file} row {}, column '{column}'", i + 1);
            }
        }
        return format!("{file}, column '{rest}'");
    }
    path.to_string()
}

/// Record `i`'s class probabilities (none unless a classifier).
fn probabilities(i: usize, proba: Option<&Probabilities>) -> Vec<f64> {
    proba.map(|p| p.values.row(i).to_vec()).unwrap_or_default()
}

fn write_csv(
    columns: &[String],
    input: &Input,
    predictions: &Predictions,
    proba: Option<&Probabilities>,
) -> anyhow::Result<Vec<u8>> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(columns)?;
    for i in 0..predictions.len() {
        let mut record: Vec<String> = input.ids.iter().map(|(_, values)| cell_text(&values[i])).collect();
        record.push(predictions.display(i));
        record.extend(probabilities(i, proba).iter().map(|p| p.to_string()));
        writer.write_record(&record)?;
    }
    writer.into_inner().map_err(|e| anyhow!("cannot write CSV: {}", e.error()))
}

fn cell_text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn write_jsonl(
    columns: &[String],
    input: &Input,
    predictions: &Predictions,
    proba: Option<&Probabilities>,
) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    for i in 0..predictions.len() {
        let values = input
            .ids
            .iter()
            .map(|(_, values)| values[i].clone())
            .chain(std::iter::once(predictions.to_json(i)))
            .chain(probabilities(i, proba).into_iter().map(Value::from));
        // Written by hand to keep the columns in output order.
        out.push(b'{');
        for (j, (column, value)) in columns.iter().zip(values).enumerate() {
            if j > 0 {
                out.push(b',');
            }
            serde_json::to_writer(&mut out, column)?;
            out.push(b':');
            serde_json::to_writer(&mut out, &value)?;
        }
        out.extend_from_slice(b"}\n");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(lines: Vec<usize>) -> Input {
        Input { records: Records::Rows(Vec::new()), ids: Vec::new(), lines }
    }

    #[test]
    fn model_error_paths_become_file_places() {
        let jsonl = input(vec![1, 3, 4]);
        assert_eq!(place("records[1].age", &jsonl, "in.jsonl"), "in.jsonl line 3, field 'age'");
        let csv = input(Vec::new());
        assert_eq!(place("columns.age[0]", &csv, "in.csv"), "in.csv row 1, column 'age'");
        assert_eq!(place("columns.age", &csv, "in.csv"), "in.csv, column 'age'");
        assert_eq!(place("records", &csv, "in.csv"), "records");
    }

    #[test]
    fn formats_come_from_extensions() {
        assert_eq!(Format::of(Path::new("a.CSV"), "input").unwrap(), Format::Csv);
        assert_eq!(Format::of(Path::new("a.jsonl"), "input").unwrap(), Format::Jsonl);
        assert!(Format::of(Path::new("a.json"), "input").is_err());
        assert!(Format::of(Path::new("a"), "input").is_err());
    }
}

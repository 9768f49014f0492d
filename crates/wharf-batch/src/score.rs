//! Scoring one chunk: a plain function over a batch of rows, with no state beyond the model,
//! so the same code serves batch files, streams and (later) distributed engines.

use serde_json::Value;
use wharf_core::{Model, Predictions, Records, Result, Task, WharfError};

use crate::format::{BadRow, Chunk, ScoredChunk};

/// What to do with a row that cannot be read or scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnError {
    /// Stop the job at the first bad row; the error names its row and column.
    #[default]
    Fail,
    /// Leave the row out of the output and record it, with the reason, as a reject.
    Skip,
}

impl std::str::FromStr for OnError {
    type Err = WharfError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "fail" => Ok(OnError::Fail),
            "skip" => Ok(OnError::Skip),
            other => Err(WharfError::invalid("on_error", format!("'{other}' is not a policy (skip, fail)"))),
        }
    }
}

/// Scores a decoded chunk with `model`.
///
/// Classifiers get a prediction (the most probable class, exactly as
/// [`Model::predict`] chooses it) and their class probabilities from one pass of the model.
/// A row the model refuses (an unknown categorical level, text in a numeric CSV column) is
/// moved to [`ScoredChunk::rejects`] with the model's reason, and the other rows are scored.
/// With [`OnError::Fail`] the caller stops at the first reject; with `Fail` the chunk is not
/// scored at all once a reject is known, to save the work.
///
/// Errors are for what no single row explains (a model that cannot score at all).
pub fn score_chunk(model: &Model, chunk: Chunk, on_error: OnError) -> Result<ScoredChunk> {
    let Chunk { mut frame, mut ids, mut positions, mut rejects, end_byte } = chunk;
    if frame.n_rows() == 0 || (on_error == OnError::Fail && !rejects.is_empty()) {
        return Ok(unscored(model, rejects, end_byte));
    }
    let mut records = Records::Columns(frame);
    let scores = match run(model, &records) {
        Ok(scores) => scores,
        Err(first) => {
            let Records::Columns(all) = records else { unreachable!("built as columns above") };
            frame = all;
            let bad = match on_error {
                // One located row is enough to stop the job; an error about no row in
                // particular stops it as it is.
                OnError::Fail => match row_of(&first) {
                    Some(i) => vec![(i, first)],
                    None => return Err(first),
                },
                OnError::Skip => bad_rows(model, &frame, first)?,
            };
            let bad_set: std::collections::HashSet<usize> = bad.iter().map(|(i, _)| *i).collect();
            for (i, err) in bad {
                let (column, message) = reason(&err);
                let Some(&position) = positions.get(i) else { return Err(err) };
                let mut raw = frame.row(i);
                for (name, values) in &ids {
                    raw.insert(name.clone(), values[i].clone());
                }
                rejects.push(BadRow { position, column, message, raw: Value::Object(raw) });
            }
            rejects.sort_by_key(|r| r.position);
            if on_error == OnError::Fail {
                return Ok(unscored(model, rejects, end_byte));
            }
            let keep: Vec<usize> = (0..frame.n_rows()).filter(|i| !bad_set.contains(i)).collect();
            frame = frame.take(&keep);
            positions = keep.iter().map(|&i| positions[i]).collect();
            ids = ids
                .into_iter()
                .map(|(name, values)| (name, keep.iter().map(|&i| values[i].clone()).collect()))
                .collect();
            records = Records::Columns(frame);
            run(model, &records)?
        }
    };
    Ok(ScoredChunk { positions, ids, predictions: scores.0, probabilities: scores.1, rejects, end_byte })
}

type Scores = (Predictions, Option<ndarray::Array2<f64>>);

/// One pass of the model: predictions, plus probabilities for classifiers.
fn run(model: &Model, records: &Records) -> Result<Scores> {
    if model.task() == Task::Classification {
        let proba = model.predict_proba(records)?;
        let indices = proba.argmax();
        Ok((Predictions::Classes { classes: proba.classes, indices }, Some(proba.values)))
    } else {
        Ok((model.predict(records)?, None))
    }
}

fn unscored(model: &Model, rejects: Vec<BadRow>, end_byte: u64) -> ScoredChunk {
    let predictions = match model.task() {
        Task::Classification => Predictions::Classes { classes: model.classes().to_vec(), indices: Vec::new() },
        Task::Regression => Predictions::Values(Vec::new()),
        Task::Clustering => Predictions::Clusters(Vec::new()),
        // A task added later: no rows scored, so no values either way.
        _ => Predictions::Values(Vec::new()),
    };
    ScoredChunk { positions: Vec::new(), ids: Vec::new(), predictions, probabilities: None, rejects, end_byte }
}

/// Finds every row of `frame` the model refuses, by checking rows one at a time. Only runs
/// for a chunk that already failed as a whole, so good chunks pay nothing for it.
fn bad_rows(model: &Model, frame: &wharf_core::Frame, first: WharfError) -> Result<Vec<(usize, WharfError)>> {
    if row_of(&first).is_none() {
        // Not about a row (a model that cannot score at all): no row can be blamed.
        return Err(first);
    }
    let mut bad = Vec::new();
    for i in 0..frame.n_rows() {
        if let Err(err) = model.validate(&Records::Columns(frame.take(&[i]))) {
            bad.push((i, err));
        }
    }
    Ok(bad)
}

/// The row index of a model error about `columns.<name>[<i>]` (relative to the frame).
fn row_of(err: &WharfError) -> Option<usize> {
    let path = match err {
        WharfError::SchemaMismatch { path, .. } | WharfError::InvalidInput { path, .. } => path,
        _ => return None,
    };
    let (_, index) = path.strip_prefix("columns.")?.strip_suffix(']')?.rsplit_once('[')?;
    index.parse().ok()
}

/// The column and message of a model error about one cell.
fn reason(err: &WharfError) -> (Option<String>, String) {
    match err {
        WharfError::SchemaMismatch { path, message } | WharfError::InvalidInput { path, message } => {
            let column = path
                .strip_prefix("columns.")
                .map(|rest| rest.rsplit_once('[').map(|(c, _)| c).unwrap_or(rest).to_string());
            (column, message.clone())
        }
        other => (None, other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_error_paths_name_the_row_and_column() {
        let err = WharfError::invalid("columns.industry[7]", "unknown level 'x'");
        assert_eq!(row_of(&err), Some(7));
        assert_eq!(reason(&err), (Some("industry".to_string()), "unknown level 'x'".to_string()));
        assert_eq!(row_of(&WharfError::Unsupported("x".into())), None);
    }

    #[test]
    fn policies_parse() {
        assert_eq!("skip".parse::<OnError>().ok(), Some(OnError::Skip));
        assert!("ignore".parse::<OnError>().is_err());
    }
}

//! Scoring one chunk: a plain function over a batch of rows, with no state beyond the
//! server, so the same code serves batch files, streams and (later) distributed engines.
//!
//! The scoring itself is [`wharf_core::score`], the one path every job shares; what is left
//! here is the file's side of it: which row of the file a refused record was, and what it
//! looked like.

use serde_json::Value;
use wharf_core::predlog::PredictionLogWriter;
use wharf_core::scoring::{self, no_predictions, Reject};
use wharf_core::{ModelServerPort, Records, Result, WharfError};

use crate::format::{BadRow, Chunk, ScoredChunk};

pub use wharf_core::OnError;

/// Scores a decoded chunk through `server`.
///
/// Classifiers get a prediction (the most probable class) and their class probabilities
/// from one pass of the server, as [`wharf_core::score`] does for every job. A row the model
/// refuses (an unknown categorical level, text in a numeric CSV column) is moved to
/// [`ScoredChunk::rejects`] with the model's reason, and the other rows are scored. With
/// [`OnError::Fail`] the caller stops at the first reject; the chunk is then not scored at
/// all once a reject is known, to save the work.
///
/// Errors are for what no single row explains (no model loaded, a backend that cannot be
/// reached).
pub fn score_chunk(server: &dyn ModelServerPort, chunk: Chunk, on_error: OnError) -> Result<ScoredChunk> {
    score_chunk_logged(server, chunk, on_error, None)
}

/// [`score_chunk`], logging a sample of the scored rows to `log` (each by the job's name and
/// its row number in the file).
pub fn score_chunk_logged(
    server: &dyn ModelServerPort,
    chunk: Chunk,
    on_error: OnError,
    log: Option<&PredictionLogWriter>,
) -> Result<ScoredChunk> {
    let Chunk { frame, ids, positions, mut rejects, end_byte } = chunk;
    let model = server.model().ok_or(WharfError::NoModelLoaded)?;
    if frame.n_rows() == 0 || (on_error == OnError::Fail && !rejects.is_empty()) {
        return Ok(unscored(no_predictions(&model), rejects, end_byte));
    }
    let records = Records::Columns(frame);
    let started = std::time::Instant::now();
    let scored = match wharf_core::score(server, &records, on_error) {
        Ok(scored) => scored,
        // Under `Fail` one located row is enough to stop the job, and the job words it with
        // the file's row number; an error about no row in particular stops it as it is.
        Err(first) => match scoring::locate(&first) {
            Some((index, column)) if index < positions.len() => {
                rejects.push(bad_row(&records, &ids, &positions, Reject { index, column, error: first }));
                rejects.sort_by_key(|r| r.position);
                return Ok(unscored(no_predictions(&model), rejects, end_byte));
            }
            _ => return Err(first),
        },
    };
    if let Some(log) = log {
        let us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        let row = |i: usize| positions.get(i).map_or(0, |p| p.row);
        log.log(model.signature(), &records, &scored, us, &|i| (log.job().to_string(), row(i) as usize, row(i)))?;
    }
    for reject in &scored.rejects {
        if reject.index >= positions.len() {
            return Err(WharfError::invalid(
                format!("records[{}]", reject.index),
                format!("the model refused a row outside the chunk of {}", positions.len()),
            ));
        }
    }
    rejects.extend(scored.rejects.into_iter().map(|r| bad_row(&records, &ids, &positions, r)));
    rejects.sort_by_key(|r| r.position);
    let all_kept = scored.kept.len() == positions.len();
    let (positions, ids) = if all_kept {
        (positions, ids)
    } else {
        let keep = &scored.kept;
        (
            keep.iter().map(|&i| positions[i]).collect(),
            ids.into_iter().map(|(name, values)| (name, keep.iter().map(|&i| values[i].clone()).collect())).collect(),
        )
    };
    Ok(ScoredChunk {
        positions,
        ids,
        predictions: scored.predictions,
        probabilities: scored.probabilities.map(|p| p.values),
        rejects,
        end_byte,
    })
}

/// The file's view of a refused record: its position, the column at fault, the reason and
/// the row as read (features and ids).
fn bad_row(
    records: &Records,
    ids: &[(String, Vec<Value>)],
    positions: &[crate::format::Position],
    reject: Reject,
) -> BadRow {
    let i = reject.index;
    let mut raw = match records {
        Records::Columns(frame) => frame.row(i),
        _ => serde_json::Map::new(),
    };
    for (name, values) in ids {
        if let Some(value) = values.get(i) {
            raw.insert(name.clone(), value.clone());
        }
    }
    let message = reject.message();
    BadRow { position: positions[i], column: reject.column, message, raw: Value::Object(raw) }
}

fn unscored(predictions: wharf_core::Predictions, rejects: Vec<BadRow>, end_byte: u64) -> ScoredChunk {
    ScoredChunk { positions: Vec::new(), ids: Vec::new(), predictions, probabilities: None, rejects, end_byte }
}

//! `wharf predict`: score a file with a registered model.
//!
//! Kept for the scripts that use it: it is `wharf score` failing on the first bad row and
//! writing only the id columns, `prediction` and the class probabilities (no `model` and
//! `model_version` columns).

use crate::args::PredictArgs;
use crate::commands::score::{self, ScoreArgs};
use crate::output::Output;

/// Runs `wharf predict`.
pub fn run(args: PredictArgs, out: &Output) -> anyhow::Result<()> {
    let args = ScoreArgs {
        job: args,
        on_error: "fail".into(),
        reject: None,
        chunk_rows: wharf_batch::DEFAULT_CHUNK_ROWS,
        threads: 0,
    };
    score::execute(args, false, out)
}

//! Standard protocols beside Wharf's own routes, so clients and gateways built for other
//! servers can call `wharf serve` unchanged: the Open Inference Protocol v2 REST API of
//! KServe and Triton ([`v2`]) and MLflow's scoring protocol, `POST /invocations`
//! ([`mlflow`]).
//!
//! Each only translates: its body becomes [`Records`], which are scored through the one
//! scoring path ([`wharf_core::score`]) exactly as `/predict` scores them, and the
//! [`Scored`] answer is written in the protocol's shape. The protections are the native
//! routes' own: the same body limit, deadline and scoring permit, and the same tokens.

use std::sync::Arc;

use wharf_core::{score, OnError, Records, Scored};

use crate::problem::Problem;
use crate::routes::{blocking, INLINE_WORK};
use crate::state::Loaded;

pub(crate) mod infer_request;
pub(crate) mod mlflow;
pub(crate) mod tensor;
pub(crate) mod v2;

/// Scores `records` with `loaded` through the one scoring path: on the reactor when the work
/// is small and the server in process (as `/predict` does), on the blocking pool otherwise.
pub(crate) async fn score_records(loaded: Arc<Loaded>, records: Records) -> Result<Scored, Problem> {
    let work = records.len().saturating_mul(loaded.model.work_per_row());
    if work <= INLINE_WORK && loaded.server.capabilities().in_process {
        return score(loaded.server.as_ref(), &records, OnError::Fail).map_err(Problem::from);
    }
    blocking(move || score(loaded.server.as_ref(), &records, OnError::Fail).map_err(Problem::from)).await
}

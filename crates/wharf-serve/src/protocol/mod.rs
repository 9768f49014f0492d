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
use std::time::Instant;

use axum::http::HeaderMap;
use axum::response::Response;
use wharf_core::{score, OnError, Records, Scored};

use crate::problem::Problem;
use crate::routes::{blocking, INLINE_WORK};
use crate::state::Loaded;
use crate::AppState;

pub(crate) mod infer_request;
pub(crate) mod mlflow;
pub(crate) mod tensor;
pub(crate) mod v2;

/// Scores `records` with `loaded` through the one scoring path: on the reactor when the work
/// is small and the server in process (as `/predict` does), on the blocking pool otherwise.
/// The request is then followed (shadowed, logged, watched for drift) as `/predict`'s are;
/// `respond` writes the answer first, so the request id can be echoed on it.
pub(crate) async fn score_records<E: From<Problem>>(
    app: &AppState,
    headers: &HeaderMap,
    loaded: Arc<Loaded>,
    records: Records<'static>,
    respond: impl FnOnce(&Scored) -> Result<Response, E>,
) -> Result<Response, E> {
    let follow = app.follow(&loaded, &records);
    let work = records.len().saturating_mul(loaded.model.work_per_row());
    let scoring = loaded.clone();
    let run = move || {
        let started = Instant::now();
        let scored = score(scoring.server.as_ref(), &records, OnError::Fail).map_err(Problem::from)?;
        Ok((scored, u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX)))
    };
    let (scored, us) =
        if work <= INLINE_WORK && loaded.server.capabilities().in_process { run()? } else { blocking(run).await? };
    let mut response = respond(&scored)?;
    follow.hand_over(headers, &mut response, loaded, us, scored);
    Ok(response)
}

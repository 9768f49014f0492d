//! What happens to a scored request after its answer: the shadowed challenger scores it
//! ([`crate::shadow`]) and the watch logs it and bins it for drift ([`crate::watch`]).
//!
//! Every scoring route asks [`App::follow`](crate::App) before scoring and calls
//! [`Follow::hand_over`] after writing its answer, so `/predict`, v2 `infer` and
//! `/invocations` are shadowed, logged and watched alike, and a logged request has one id,
//! echoed in `X-Request-Id`.

use std::sync::Arc;

use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;
use wharf_core::{Records, Scored};

use crate::shadow::Pending;
use crate::state::Loaded;
use crate::watch::Observed;
use crate::App;

/// The header a request id comes in and is echoed back in.
const REQUEST_ID: &str = "x-request-id";

/// A request's followers, kept from before scoring to after the answer.
pub(crate) struct Follow<'a> {
    shadow: Option<Pending<'a>>,
    watch: Option<Observed<'a>>,
}

impl App {
    /// The followers of a request to `loaded` with `records`; each keeps its own copy of the
    /// records only when it will use them.
    pub(crate) fn follow(&self, loaded: &Arc<Loaded>, records: &Records) -> Follow<'_> {
        Follow { shadow: self.shadows.pending(&self.models, loaded, records), watch: self.watch.begin(loaded, records) }
    }
}

impl Follow<'_> {
    /// Whether anyone follows: only then must the scored answer be kept past the response.
    pub(crate) fn wanted(&self) -> bool {
        self.shadow.is_some() || self.watch.is_some()
    }

    /// Echoes the request id on `response` and hands the answer on.
    pub(crate) fn hand_over(
        self,
        headers: &HeaderMap,
        response: &mut Response,
        loaded: Arc<Loaded>,
        us: u64,
        scored: Scored,
    ) {
        // Only a request that is logged (here or in the shadow log) needs an id to be joined by.
        let logged = self.shadow.is_some() || self.watch.as_ref().is_some_and(Observed::logged);
        let id = logged.then(|| request_id(headers));
        if let Some(value) = id.as_deref().and_then(|id| HeaderValue::from_str(id).ok()) {
            response.headers_mut().insert(REQUEST_ID, value);
        }
        if let Some(watch) = self.watch {
            watch.finish(id.as_deref(), &scored, us);
        }
        if let (Some(shadow), Some(id)) = (self.shadow, id) {
            shadow.hand_over(id, loaded, us, scored);
        }
    }
}

/// The request's id: the client's `X-Request-Id` when it is a usable one (1 to 128 visible
/// ASCII characters), else a new UUID (v7: time-ordered).
fn request_id(headers: &HeaderMap) -> String {
    headers
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string())
}

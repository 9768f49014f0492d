//! Who may call what: bearer tokens (or API keys in `X-API-Key`) in two scopes.
//!
//! - **scoring**: the catalog and predict / predict_proba / score. Open when no scoring
//!   token is configured (the default, for a server on loopback or behind a gateway that
//!   authenticates).
//! - **admin**: `/admin/...`, which is off (404) until an admin token is configured. An
//!   admin token may also score.
//!
//! Probes, `/metrics` and the OpenAPI page stay open: orchestrators and scrapers call them
//! without credentials, and they carry no scoring data.
//!
//! Tokens are compared in constant time on their SHA-256 digests, so neither a token's
//! content nor its length shows in how long a refusal takes. No token is ever logged or
//! echoed: refusals say only that a valid token is required.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

use crate::problem::Problem;
use crate::AppState;

/// The header an API key may come in instead of `Authorization: Bearer`.
pub const API_KEY_HEADER: &str = "x-api-key";

/// A set of accepted tokens, kept only as digests.
#[derive(Clone, Default)]
pub(crate) struct Tokens {
    digests: Vec<[u8; 32]>,
}

impl Tokens {
    pub(crate) fn new<'a>(tokens: impl IntoIterator<Item = &'a String>) -> Self {
        Tokens { digests: tokens.into_iter().filter(|t| !t.is_empty()).map(|t| digest(t)).collect() }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }

    /// Whether `presented` is one of the tokens; every token is compared, whatever matches.
    pub(crate) fn admits(&self, presented: &str) -> bool {
        let presented = digest(presented);
        let mut any = Choice::from(0);
        for token in &self.digests {
            any |= token.ct_eq(&presented);
        }
        any.into()
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The credential a request presents: `Authorization: Bearer <token>` (the scheme is
/// case-insensitive, as HTTP defines it) or `X-API-Key: <token>`.
pub(crate) fn presented(headers: &HeaderMap) -> Option<&str> {
    if let Some(value) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let (scheme, token) = value.trim().split_once(' ')?;
        return scheme.eq_ignore_ascii_case("bearer").then(|| token.trim());
    }
    headers.get(API_KEY_HEADER).and_then(|v| v.to_str().ok()).map(str::trim)
}

/// 401 with the challenge a client needs; the presented value is never repeated.
pub(crate) fn unauthorized(detail: &'static str) -> Problem {
    Problem::new(StatusCode::UNAUTHORIZED, "Unauthorized", detail)
}

fn with_challenge(problem: Problem) -> Response {
    let mut response = problem.into_response();
    response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// Checks the admin scope: `None` lets the request in, else the refusal to send. Admin is
/// off (404) when no admin token is configured.
pub(crate) fn refuse_admin(app: &AppState, headers: &HeaderMap) -> Option<Response> {
    if app.admin_tokens.is_empty() {
        return Some(
            Problem::not_found("the admin API is disabled: set serving.admin_token to enable it").into_response(),
        );
    }
    match presented(headers) {
        Some(token) if app.admin_tokens.admits(token) => None,
        _ => Some(with_challenge(unauthorized("a valid admin bearer token is required"))),
    }
}

/// Lets a request through to the catalog and scoring endpoints when scoring tokens are
/// configured only with one of them (or an admin token).
pub(crate) async fn require_scoring(State(app): State<AppState>, request: Request, next: Next) -> Response {
    if app.scoring_tokens.is_empty() {
        return next.run(request).await;
    }
    match presented(request.headers()) {
        Some(token) if app.scoring_tokens.admits(token) || app.admin_tokens.admits(token) => next.run(request).await,
        _ => with_challenge(unauthorized("a valid bearer token (or X-API-Key) is required")),
    }
}

/// What an operator should hear at start about the server's exposure, loudly.
pub(crate) fn exposure_warnings(addr: std::net::SocketAddr, scoring_open: bool, tls: bool) -> Vec<&'static str> {
    let mut warnings = Vec::new();
    if addr.ip().is_loopback() {
        return warnings;
    }
    if scoring_open {
        warnings.push(
            "listening on a non-loopback address with no scoring token: anyone who can reach it can score and \
             read the catalog; set serving.scoring_tokens, or keep it behind a gateway that authenticates",
        );
    }
    if !tls {
        warnings.push(
            "listening on a non-loopback address without TLS: requests and tokens travel in clear; set \
             serving.tls_cert and serving.tls_key, or terminate TLS at a gateway on the same host",
        );
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_admit_exactly_their_own() {
        let tokens = Tokens::new(&["alpha".to_string(), String::new(), "beta-2".to_string()]);
        assert!(tokens.admits("alpha") && tokens.admits("beta-2"));
        assert!(!tokens.admits("") && !tokens.admits("alph") && !tokens.admits("alphaa") && !tokens.admits("ALPHA"));
        assert!(Tokens::new(&[String::new()]).is_empty());
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive_and_api_keys_count() {
        let mut headers = HeaderMap::new();
        for value in ["Bearer tok", "bearer tok", "BEARER  tok ", "  Bearer tok"] {
            headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
            assert_eq!(presented(&headers), Some("tok"), "{value}");
        }
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic dG9rOg=="));
        assert_eq!(presented(&headers), None);
        let mut headers = HeaderMap::new();
        headers.insert(API_KEY_HEADER, HeaderValue::from_static("key-1"));
        assert_eq!(presented(&headers), Some("key-1"));
    }

    #[test]
    fn only_an_open_non_loopback_server_is_warned_about() {
        let public = "0.0.0.0:8080".parse().unwrap();
        let local = "127.0.0.1:8080".parse().unwrap();
        assert!(exposure_warnings(local, true, false).is_empty());
        assert_eq!(exposure_warnings(public, true, false).len(), 2);
        assert_eq!(exposure_warnings(public, false, true).len(), 0);
        assert!(exposure_warnings(public, true, true)[0].contains("no scoring token"));
    }
}

//! The token a UI on a non-loopback address requires. A script sends it as
//! `Authorization: Bearer`; a browser opens any page once with `?token=…`, and the answer
//! sets an HttpOnly, SameSite=Strict cookie so the links that follow work.
//!
//! Tokens are compared in constant time on their SHA-256 digests (as `wharf serve` does),
//! and never logged or echoed.

use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::html;

const COOKIE: &str = "wharf_ui_token";

/// The accepted token, kept only as its digest.
#[derive(Clone)]
pub(crate) struct Token {
    digest: [u8; 32],
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Token {
    pub(crate) fn new(token: &str) -> Self {
        Token { digest: digest(token.trim()) }
    }

    fn admits(&self, presented: &str) -> bool {
        self.digest.ct_eq(&digest(presented.trim())).into()
    }

    pub(crate) async fn check(&self, req: Request, next: Next) -> Response {
        let headers = req.headers();
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.to_string());
        let cookie = headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(|v| {
            v.split(';')
                .find_map(|kv| kv.trim().strip_prefix(COOKIE).and_then(|r| r.strip_prefix('=')).map(str::to_string))
        });
        let query =
            req.uri().query().and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("token=")).map(str::to_string));
        if bearer.or(cookie).is_some_and(|t| self.admits(&t)) {
            return next.run(req).await;
        }
        if let Some(token) = query.filter(|t| self.admits(t)) {
            let mut response = next.run(req).await;
            if let Ok(value) = HeaderValue::from_str(&format!("{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/")) {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
            return response;
        }
        let body = "<p class=\"message\">This UI needs a token: send <code>Authorization: Bearer …</code>, \
                    or open a page once with <code>?token=…</code>.</p>";
        let mut response =
            (StatusCode::UNAUTHORIZED, axum::response::Html(html::layout("Token required", "", body))).into_response();
        response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        response
    }
}

//! The OpenAPI document and the Swagger UI, served from assets built into the binary so the
//! page works without internet access.

use axum::extract::State;

use super::PathParam;
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use serde_json::Value;

use crate::problem::Problem;
use crate::AppState;

pub async fn openapi(State(app): State<AppState>) -> Json<Value> {
    let models: Vec<(String, wharf_core::Signature)> = app
        .models
        .models
        .iter()
        .filter_map(|m| m.slot(None).map(|s| (m.name.clone(), s.current().model.signature().clone())))
        .collect();
    Json(crate::schema::openapi(&models))
}

/// `/docs` → `/docs/`, so the page's relative asset links resolve under `/docs/`.
pub async fn docs_redirect() -> Redirect {
    Redirect::permanent("/docs/")
}

pub async fn docs_index(State(app): State<AppState>) -> Response {
    docs_file(&app, "")
}

pub async fn docs_asset(State(app): State<AppState>, PathParam(tail): PathParam) -> Response {
    docs_file(&app, &tail)
}

fn docs_file(app: &AppState, tail: &str) -> Response {
    match utoipa_swagger_ui::serve(tail, app.swagger.clone()) {
        Ok(Some(file)) => {
            let mut response = ([(header::CONTENT_TYPE, file.content_type)], file.bytes.into_owned()).into_response();
            if file.gzpipped {
                response.headers_mut().insert(header::CONTENT_ENCODING, header::HeaderValue::from_static("gzip"));
            }
            response
        }
        Ok(None) => Problem::not_found(format!("no documentation file '{tail}'")).into_response(),
        Err(e) => Problem::internal(format!("documentation page: {e}")).into_response(),
    }
}

//! Upload files (seller): the file is the raw request body, streamed to disk by the
//! upload module under its own size limit (not the 1 MiB JSON limit).

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::{ApiError, ApiResult};
use super::extract::{PathParams, QueryParams, Seller};
use super::input;
use super::render;
use crate::server::AppState;

/// The report's media type (SPEC section 5: tab-separated text).
const REPORT_CONTENT_TYPE: &str = "text/tab-separated-values; charset=utf-8";

#[derive(Deserialize)]
pub struct UploadQuery {
    store: Option<String>,
}

/// `POST /v1/uploads?store=S`
pub async fn create(
    State(state): State<AppState>,
    Seller(seller): Seller,
    QueryParams(q): QueryParams<UploadQuery>,
    body: Body,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let raw = q.store.ok_or_else(|| {
        ApiError::invalid(
            "store",
            "An upload file is for one store: give it in the query, ?store=US.",
        )
    })?;
    let store = input::store(state.service.region(), &raw)?;
    let upload = state.uploads.receive(seller, store, body).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "upload_id": upload.upload_id,
            "store": upload.store.as_str(),
            "status": upload.status.as_str(),
        })),
    ))
}

/// `GET /v1/uploads/{upload_id}`
pub async fn get(
    State(state): State<AppState>,
    Seller(seller): Seller,
    PathParams(upload_id): PathParams<String>,
) -> ApiResult<Json<Value>> {
    let upload = state.uploads.get(&seller, &upload_id).await?;
    Ok(Json(render::upload(&upload)))
}

/// `GET /v1/uploads/{upload_id}/report`
pub async fn report(
    State(state): State<AppState>,
    Seller(seller): Seller,
    PathParams(upload_id): PathParams<String>,
) -> ApiResult<Response> {
    let body = state.uploads.report_body(&seller, &upload_id).await?;
    Ok(([(CONTENT_TYPE, REPORT_CONTENT_TYPE)], body).into_response())
}

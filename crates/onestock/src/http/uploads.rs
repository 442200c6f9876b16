//! Upload files (seller): the file is the raw request body, streamed to disk by the
//! upload module under its own size limit (not the 1 MiB JSON limit) and the seller's
//! queue quota. A declared `Content-Length` above the limit is refused before any byte
//! of the body is read.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use onestock_core::error::ErrorCode;
use serde::Deserialize;

use super::error::{ApiError, ApiResult};
use super::extract::{PathParams, QueryParams, Seller};
use super::input;
use super::render;
use super::schema;
use crate::server::AppState;
use crate::upload::{UPLOAD_BYTES_MAX, UPLOAD_QUEUE_RETRY_AFTER_SECONDS};

/// The report's media type (SPEC section 5: tab-separated text).
const REPORT_CONTENT_TYPE: &str = "text/tab-separated-values; charset=utf-8";

#[derive(Deserialize)]
pub struct UploadQuery {
    store: Option<String>,
}

/// Send an upload file for one store: the request body is the file (tab-separated or
/// comma-separated text, or an .xlsx workbook; docs/uploads.md). It is queued and
/// processed in arrival order; follow it with GET /v1/uploads/{upload_id}.
///
/// Who: seller.
#[utoipa::path(post, path = "/v1/uploads", operation_id = "createUpload", tag = "seller",
    params(("store" = String, Query, example = "US", description = "The store the file is for.")),
    request_body(content = Option<schema::UploadFile>, content_type = "application/octet-stream", description = "The file's bytes, as saved. An empty body is queued like any file and ends FATAL, with the reason in its status and report."),
    responses(
        (status = 202, description = "Queued", body = schema::UploadQueued),
        (status = 413, description = "PAYLOAD_TOO_LARGE: a file over the upload limit", body = schema::ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    Seller(seller): Seller,
    QueryParams(q): QueryParams<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match receive(state, seller, q, &headers, body).await {
        Ok(answer) => answer.into_response(),
        Err(e) => {
            let rate_limited = e.code() == ErrorCode::RateLimited;
            let mut response = e.into_response();
            if rate_limited {
                response.headers_mut().insert(
                    RETRY_AFTER,
                    HeaderValue::from(UPLOAD_QUEUE_RETRY_AFTER_SECONDS),
                );
            }
            response
        }
    }
}

async fn receive(
    state: AppState,
    seller: onestock_core::types::SellerId,
    q: UploadQuery,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<schema::UploadQueued>)> {
    // Before the body: a declared size above the limit is refused without reading it.
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > UPLOAD_BYTES_MAX) {
        return Err(crate::upload::too_large().into());
    }
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
        Json(schema::UploadQueued {
            upload_id: upload.upload_id,
            store: upload.store.as_str().to_owned(),
            status: upload.status.as_str(),
        }),
    ))
}

/// An upload's status and counts.
///
/// Who: seller.
#[utoipa::path(get, path = "/v1/uploads/{upload_id}", operation_id = "getUpload", tag = "seller",
    params(("upload_id" = String, Path, description = "The upload_id POST /v1/uploads answered.")),
    responses(
        (status = 200, description = "The status", body = schema::UploadJson),
        (status = 404, description = "NOT_FOUND: you have no such upload", body = schema::ErrorBody),
    ))]
pub async fn get(
    State(state): State<AppState>,
    Seller(seller): Seller,
    PathParams(upload_id): PathParams<String>,
) -> ApiResult<Json<schema::UploadJson>> {
    let upload = state.uploads.get(&seller, &upload_id).await?;
    Ok(Json(render::upload(&upload)))
}

/// The processing report: tab-separated text in the marketplace's layout
/// (docs/uploads.md), one line per failed row.
///
/// Who: seller.
#[utoipa::path(get, path = "/v1/uploads/{upload_id}/report", operation_id = "getUploadReport", tag = "seller",
    params(("upload_id" = String, Path, description = "The upload_id POST /v1/uploads answered.")),
    responses(
        (status = 200, description = "The report", body = String, content_type = "text/tab-separated-values"),
        (status = 404, description = "NOT_FOUND: you have no such upload", body = schema::ErrorBody),
    ))]
pub async fn report(
    State(state): State<AppState>,
    Seller(seller): Seller,
    PathParams(upload_id): PathParams<String>,
) -> ApiResult<Response> {
    let body = state.uploads.report_body(&seller, &upload_id).await?;
    Ok(([(CONTENT_TYPE, REPORT_CONTENT_TYPE)], body).into_response())
}

#[derive(Deserialize)]
pub struct ListQuery {
    store: Option<String>,
    cursor: Option<String>,
    limit: Option<String>,
}

/// Uploads per page by default and at most.
const UPLOADS_LIMIT_DEFAULT: usize = 50;
const UPLOADS_LIMIT_MAX: usize = 1000;

/// The seller's uploads, newest first.
///
/// Who: seller.
#[utoipa::path(get, path = "/v1/uploads", operation_id = "listUploads", tag = "seller",
    params(
        ("store" = Option<String>, Query, description = "Only this store."),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page (the last upload id it held)."),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "Uploads per page, 1 to 1,000; 50 unless given."),
    ),
    responses((status = 200, description = "One page", body = schema::UploadPage)))]
pub async fn list(
    State(state): State<AppState>,
    Seller(seller): Seller,
    QueryParams(q): QueryParams<ListQuery>,
) -> ApiResult<Json<schema::UploadPage>> {
    let store = q
        .store
        .as_deref()
        .map(|s| input::store(state.service.region(), s))
        .transpose()?;
    let limit = input::page_limit(q.limit.as_deref(), UPLOADS_LIMIT_DEFAULT, UPLOADS_LIMIT_MAX)?;
    let before = q.cursor.filter(|c| !c.trim().is_empty());
    let page = state
        .service
        .read(move |tx, _| {
            tx.uploads_of_seller(&seller, store.as_ref(), before.as_deref(), limit + 1)
        })
        .await?;
    let more = page.len() > limit;
    let items = page.iter().take(limit).map(render::upload).collect();
    let next_cursor = if more {
        page.get(limit - 1).map(|u| u.upload_id.clone())
    } else {
        None
    };
    Ok(Json(schema::UploadPage { items, next_cursor }))
}

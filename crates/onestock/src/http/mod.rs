//! The HTTP API of SPEC.md section 4: thin handlers that parse requests into core
//! commands, run them through the service and render the outcomes as JSON.
//!
//! Architecture Invariant: no rule of SPEC section 3 is decided here. This module checks
//! the shape of input (JSON types, field names, price and quantity formats, store codes)
//! and leaves every rule to `onestock_core::rules`.
//!
//! Every answer that is not a success is the JSON error shape of SPEC 4.2, including
//! unknown paths (404 `NOT_FOUND`), wrong methods (405 `METHOD_NOT_ALLOWED`, with an
//! `Allow` header), bodies over 1 MiB (413) and panics (500).
//!
//! Beside `/v1`: `GET /v1/openapi.json` (also `/openapi.json`: the OpenAPI 3.1 document,
//! derived from the handlers and `schema.rs` by `openapi.rs`, kept as `docs/openapi.json`),
//! `GET /v1/docs/` (the document as a reference page, Swagger UI vendored into the
//! binary) and `GET /metrics` (Prometheus text, operator token).

mod catalog;
mod error;
mod events;
mod extract;
mod input;
pub mod limit;
mod listings;
pub mod openapi;
mod operator;
mod render;
pub mod schema;
mod uploads;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde_json::json;
use tower_http::catch_panic::CatchPanicLayer;

pub use catalog::SEARCH_RESULTS_MAX;
pub use error::{ApiError, ApiResult, status_of};
pub use extract::JSON_BODY_BYTES_MAX;

use crate::server::AppState;

/// Every endpoint of SPEC 4.1.
pub fn router(state: AppState) -> Router {
    let pages = crate::pages::router(state.clone());
    Router::new()
        .route("/healthz", get(healthz))
        .route("/openapi.json", get(openapi_json_root))
        .route("/v1/openapi.json", get(openapi_json))
        .route("/metrics", get(metrics))
        .route(
            "/v1/sellers",
            post(operator::create_seller).get(operator::list_sellers),
        )
        .route("/v1/stores", get(catalog::stores))
        .route("/v1/catalog/items", post(catalog::create))
        .route("/v1/catalog/items/{asin}", get(catalog::item))
        .route("/v1/catalog/search", get(catalog::search))
        .route("/v1/listings", get(listings::page))
        .route(
            "/v1/listings/{sku}",
            get(listings::get).delete(listings::delete),
        )
        .route("/v1/listings/{sku}/ledger", get(listings::ledger))
        .route(
            "/v1/listings/{sku}/stores/{store}",
            put(listings::put).patch(listings::patch),
        )
        .route(
            "/v1/listings/{sku}/stores/{store}/close",
            post(listings::close),
        )
        .route(
            "/v1/listings/{sku}/stores/{store}/relist",
            post(listings::relist),
        )
        .route(
            "/v1/stores/{store}/items/{asin}/offers",
            get(operator::offers),
        )
        .route("/v1/stores/{store}/orders", post(operator::place_order))
        .route(
            "/v1/stores/{store}/orders/{order_id}/cancel",
            post(operator::cancel_order),
        )
        .route("/v1/uploads", post(uploads::create).get(uploads::list))
        .route("/v1/uploads/{upload_id}", get(uploads::get))
        .route("/v1/uploads/{upload_id}/report", get(uploads::report))
        .route("/v1/events", get(events::list))
        .merge(crate::spapi::router(state.clone()))
        .merge(reference_page())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .merge(pages)
        .layer(axum::middleware::from_fn(refuse_control_characters))
        .layer(axum::middleware::from_fn(allow_header))
        .layer(CatchPanicLayer::custom(error::panic_response))
        .layer(axum::middleware::from_fn(crate::metrics::count_requests))
        .layer(crate::request_id::trace_layer())
        .layer(axum::middleware::from_fn(crate::request_id::assign))
}

/// The process answers.
///
/// Who: anyone.
#[utoipa::path(get, path = "/healthz", operation_id = "healthz", tag = "anyone",
    responses((status = 200, description = "Serving", body = schema::Health)))]
async fn healthz() -> Json<schema::Health> {
    Json(schema::Health { status: "ok" })
}

/// This document: the OpenAPI 3.1 description of the JSON API.
///
/// Who: anyone.
#[utoipa::path(get, path = "/v1/openapi.json", operation_id = "openapiV1", tag = "anyone",
    responses((status = 200, description = "OpenAPI 3.1", content_type = "application/json", body = Object)))]
async fn openapi_json() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        openapi::document_json(),
    )
        .into_response()
}

/// This document again (the same as /v1/openapi.json).
///
/// Who: anyone.
#[utoipa::path(get, path = "/openapi.json", operation_id = "openapi", tag = "anyone",
    responses((status = 200, description = "OpenAPI 3.1", content_type = "application/json", body = Object)))]
async fn openapi_json_root() -> Response {
    openapi_json().await
}

/// `GET /v1/docs/`: the reference page, Swagger UI (vendored: nothing is fetched at
/// build or run time) reading `/v1/openapi.json`.
fn reference_page<S: Clone + Send + Sync + 'static>() -> Router<S> {
    let ui: Router<S> = utoipa_swagger_ui::SwaggerUi::new("/v1/docs")
        .config(utoipa_swagger_ui::Config::from("/v1/openapi.json"))
        .into();
    ui
}

/// Prometheus metrics (text format 0.0.4): requests by route and status, latencies,
/// the writer's batches and commits, the upload queue, connections (docs/operations.md).
///
/// Who: operator.
#[utoipa::path(get, path = "/metrics", operation_id = "metrics", tag = "operator",
    responses((status = 200, description = "Metrics in Prometheus text format", body = String, content_type = "text/plain")))]
async fn metrics(State(state): State<AppState>, _op: extract::Operator) -> Response {
    use onestock_core::model::UploadStatus;
    let unfinished = state.service.read(|tx, _| tx.unfinished_uploads()).await;
    match unfinished {
        Ok(uploads) => {
            let waiting = |s| uploads.iter().filter(|u| u.status == s).count();
            crate::metrics::upload_queue(
                waiting(UploadStatus::InQueue),
                waiting(UploadStatus::InProgress),
            );
        }
        Err(e) => tracing::warn!(error = %e, "/metrics: the upload queue could not be read"),
    }
    let body = crate::metrics::METRICS.render(&state.service.writer_stats());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

async fn not_found() -> ApiError {
    ApiError::not_found(
        "There is no such path. The JSON API lives under /v1 (its endpoints: GET /openapi.json, or docs/api.md in the repository); the seller pages start at /.",
    )
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    let body = json!({"error": {
        "code": "METHOD_NOT_ALLOWED",
        "message": format!(
            "{} does not take {method}; the methods it takes are in the Allow header of this answer.",
            uri.path()
        ),
    }});
    (StatusCode::METHOD_NOT_ALLOWED, Json(body)).into_response()
}

/// axum adds `Allow` to its own 405s only; this keeps it on ours. The method router
/// answers 405 only after every route of the path was tried, so the header it would
/// have written is rebuilt here from the routes' methods.
async fn allow_header(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let path = req.uri().path().to_owned();
    let mut response = next.run(req).await;
    if response.status() == StatusCode::METHOD_NOT_ALLOWED
        && !response.headers().contains_key(header::ALLOW)
        && let Some(allow) = allowed_methods(&path)
        && let Ok(value) = HeaderValue::from_str(allow)
    {
        response.headers_mut().insert(header::ALLOW, value);
    }
    response
}

/// The methods of the JSON API's path, matched segment by segment (`{x}` matches any).
fn allowed_methods(path: &str) -> Option<&'static str> {
    const ROUTES: &[(&str, &str)] = &[
        ("/healthz", "GET"),
        ("/openapi.json", "GET"),
        ("/v1/openapi.json", "GET"),
        ("/metrics", "GET"),
        ("/v1/sellers", "GET, POST"),
        ("/v1/stores", "GET"),
        ("/v1/catalog/items", "POST"),
        ("/v1/catalog/items/{}", "GET"),
        ("/v1/catalog/search", "GET"),
        ("/v1/listings", "GET"),
        ("/v1/listings/{}", "GET, DELETE"),
        ("/v1/listings/{}/ledger", "GET"),
        ("/v1/listings/{}/stores/{}", "PUT, PATCH"),
        ("/v1/listings/{}/stores/{}/close", "POST"),
        ("/v1/listings/{}/stores/{}/relist", "POST"),
        ("/v1/stores/{}/items/{}/offers", "GET"),
        ("/v1/stores/{}/orders", "POST"),
        ("/v1/stores/{}/orders/{}/cancel", "POST"),
        ("/v1/uploads", "GET, POST"),
        ("/v1/uploads/{}", "GET"),
        ("/v1/uploads/{}/report", "GET"),
        ("/v1/events", "GET"),
    ];
    let given: Vec<&str> = path.split('/').collect();
    ROUTES.iter().find_map(|(pattern, methods)| {
        let want: Vec<&str> = pattern.split('/').collect();
        let fits =
            want.len() == given.len() && want.iter().zip(&given).all(|(w, g)| *w == "{}" || w == g);
        fits.then_some(*methods)
    })
}

/// Every door's addresses: a path or query whose decoded text holds a control character
/// (`%00`, say) names nothing onestock has, and PostgreSQL could not even look it up.
async fn refuse_control_characters(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let uri = req.uri();
    let field = if extract::uri_has_control(uri.path()) {
        Some("path")
    } else if uri.query().is_some_and(extract::uri_has_control) {
        Some("query")
    } else {
        None
    };
    match field {
        Some(field) => ApiError::invalid(
            field,
            format!("The {field} of the address holds a control character (such as %00); remove it and send the request again."),
        )
        .into_response(),
        None => next.run(req).await,
    }
}

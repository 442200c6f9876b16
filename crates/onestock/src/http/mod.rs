//! The HTTP API of SPEC.md section 4: thin handlers that parse requests into core
//! commands, run them through the service and render the outcomes as JSON.
//!
//! Architecture Invariant: no rule of SPEC section 3 is decided here. This module checks
//! the shape of input (JSON types, field names, price and quantity formats, store codes)
//! and leaves every rule to `onestock_core::rules`.
//!
//! Every answer that is not a success is the JSON error shape of SPEC 4.2, including
//! unknown paths (404 `NOT_FOUND`), wrong methods (405 `INVALID_REQUEST`), bodies over
//! 1 MiB (413) and panics (500).

mod catalog;
mod error;
mod events;
mod extract;
mod input;
pub mod limit;
mod listings;
mod operator;
mod render;
mod uploads;

use axum::Json;
use axum::Router;
use axum::routing::{get, post, put};
use serde_json::{Value, json};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

pub use error::{ApiError, ApiResult, status_of};
pub use extract::JSON_BODY_BYTES_MAX;

use crate::server::AppState;

/// Every endpoint of SPEC 4.1.
pub fn router(state: AppState) -> Router {
    let pages = crate::pages::router(state.clone());
    Router::new()
        .route("/healthz", get(healthz))
        .route("/v1/sellers", post(operator::create_seller))
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
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .merge(pages)
        .layer(axum::middleware::from_fn(refuse_control_characters))
        .layer(CatchPanicLayer::custom(error::panic_response))
        .layer(TraceLayer::new_for_http())
}

/// `GET /healthz`: the process answers.
async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

async fn not_found() -> ApiError {
    ApiError::not_found("There is no such path; the API lives under /v1 (see SPEC 4.1).")
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
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

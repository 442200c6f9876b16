//! The seller pages of SPEC section 7: server-rendered HTML for a person, one more door
//! onto the same `Service` commands and reads as the JSON API.
//!
//! Architecture Invariant: no rule of SPEC section 3 is decided here. A page turns a form
//! into the same `onestock_core::rules::Command` the API builds, runs it through
//! `Service::execute`, and shows the outcome or the refusal (its code and message). Where
//! a page must know beforehand whether the rules would take something (may this SKU join
//! the shared pool in this store?), it asks the rules themselves on a read-only
//! transaction ([`dryrun`]), never a copy of them.
//!
//! Layout: one file per page family (`session`, `inventory`, `add_product`, `sku`,
//! `upload`), the frame of every page (`layout`), the words the pages use (`words`), the
//! error page (`error`) and the embedded styles and script (`assets`).

mod add_product;
mod assets;
mod dryrun;
mod error;
mod forms;
mod inventory;
mod layout;
mod session;
mod sku;
mod upload;
mod words;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::Response;
use axum::routing::{get, post};

use crate::server::AppState;

pub use session::{SESSION_COOKIE, SESSION_IDLE, SESSIONS_MAX};

/// What every page handler gets: the server's state and the pages' own memory.
#[derive(Clone)]
pub(crate) struct Pages {
    pub app: AppState,
    pub sessions: Arc<session::Sessions>,
    pub upload_log: Arc<upload::UploadLog>,
}

/// The content security policy of every page: everything from this server, nothing
/// inline but styles-free SVG, no framing, forms only to this server.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The pages' routes, merged into the one router the server serves (no fallback here:
/// the API's JSON 404 stays the fallback).
pub fn router(state: AppState) -> Router {
    let pages = Pages {
        app: state,
        sessions: Arc::new(session::Sessions::new()),
        upload_log: Arc::new(upload::UploadLog::default()),
    };
    Router::new()
        .route("/", get(inventory::page))
        .route("/sign-in", post(session::sign_in))
        .route("/sign-out", post(session::sign_out))
        .route("/assets/app.css", get(assets::css))
        .route("/assets/app.js", get(assets::js))
        .route("/inventory/save", post(inventory::save))
        .route("/inventory/close", post(inventory::close))
        .route("/inventory/relist", post(inventory::relist))
        .route(
            "/inventory/details",
            get(inventory::details_form).post(inventory::details_save),
        )
        .route(
            "/inventory/delete",
            get(inventory::delete_confirm).post(inventory::delete),
        )
        .route("/add-product", get(add_product::search))
        .route(
            "/add-product/offer",
            get(add_product::offer_form).post(add_product::offer_save),
        )
        .route("/add-product/share", get(add_product::share_fragment))
        .route(
            "/add-product/new",
            get(add_product::new_form).post(add_product::new_save),
        )
        .route("/sku", get(sku::page))
        .route("/sku/live", get(sku::live))
        .route("/upload-products", get(upload::page).post(upload::create))
        .route("/upload-products/status", get(upload::status))
        .route("/upload-products/report", get(upload::report_download))
        .route("/upload-products/template", get(upload::template))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(pages)
}

/// The headers every page answer carries, set in this one place.
async fn security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !h.contains_key(header::CACHE_CONTROL) {
        // Pages show a seller's data: never kept by a shared cache or the back button.
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    h.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    response
}

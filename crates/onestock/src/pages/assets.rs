//! The pages' styles and script, compiled into the binary: nothing is loaded from
//! another host.

use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::IntoResponse;

const APP_CSS: &str = include_str!("assets/app.css");
const APP_JS: &str = include_str!("assets/app.js");
/// Assets change only with the binary; an hour keeps pages fast without serving an old
/// script long after an upgrade.
const ASSET_CACHE: &str = "public, max-age=3600";

/// `GET /assets/app.css`
pub async fn css() -> impl IntoResponse {
    (
        [
            (CONTENT_TYPE, "text/css; charset=utf-8"),
            (CACHE_CONTROL, ASSET_CACHE),
        ],
        APP_CSS,
    )
}

/// `GET /assets/app.js`
pub async fn js() -> impl IntoResponse {
    (
        [
            (CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (CACHE_CONTROL, ASSET_CACHE),
        ],
        APP_JS,
    )
}

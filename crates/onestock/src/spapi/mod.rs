//! The marketplace's own API (SPEC 8): the Login with Amazon token endpoint, Sellers v1,
//! Listings Items 2021-08-01, Catalog Items 2022-04-01 and Feeds 2021-06-30 (flat
//! files), so that programs written for
//! the Selling Partner API work against onestock with only their base URL and token URL
//! changed.
//!
//! Architecture Invariant: this door decides no rule of SPEC section 3. It reads the
//! marketplace's request shapes into the same `Command`s as `/v1`, runs them through the
//! same `Service`, and renders outcomes and refusals in the marketplace's shapes.
//!
//! Every error answers `{"errors": [{"code", "message", "details"}]}` with the
//! marketplace's codes (`InvalidInput`, `Unauthorized`, `NotFound`, `QuotaExceeded`).
//! Paths this router does not know fall through to the JSON API's own fallback.

mod auth;
mod catalog;
mod feeds;
mod json_feed;
mod listings;
mod numbers;

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use onestock_core::error::{DomainError, ErrorCode};
use onestock_core::region::{Region, Store};
use onestock_core::types::{SellerId, StoreCode};
use serde_json::{Value, json};

use crate::server::AppState;
use crate::service::AppError;

pub use auth::{ACCESS_TOKEN_SECONDS, ACCESS_TOKENS_MAX};

/// Largest request body this door reads (the JSON API's own limit, SPEC 4.2).
pub const BODY_BYTES_MAX: usize = crate::http::JSON_BODY_BYTES_MAX;

/// What the handlers share: the server's state and the access tokens issued here.
#[derive(Clone)]
pub struct SpState {
    pub app: AppState,
    pub tokens: Arc<auth::AccessTokens>,
    pub feeds: Arc<feeds::Feeds>,
}

/// The routes of SPEC 8; merged into `crate::http::router`.
pub fn router<S: Clone + Send + Sync + 'static>(app: AppState) -> Router<S> {
    let state = SpState {
        app,
        tokens: Arc::new(auth::AccessTokens::default()),
        feeds: Arc::new(feeds::Feeds::default()),
    };
    Router::new()
        .route("/auth/o2/token", post(auth::token))
        .route(
            "/sellers/v1/marketplaceParticipations",
            get(catalog::participations),
        )
        .route(
            "/listings/2021-08-01/items/{seller_id}",
            get(listings::search),
        )
        .route(
            "/listings/2021-08-01/items/{seller_id}/{sku}",
            get(listings::get)
                .put(listings::put)
                .patch(listings::patch)
                .delete(listings::delete),
        )
        .route("/catalog/2022-04-01/items", get(catalog::search))
        .route("/catalog/2022-04-01/items/{asin}", get(catalog::item))
        .route("/feeds/2021-06-30/documents", post(feeds::create_document))
        .route("/feeds/2021-06-30/documents/{id}", get(feeds::get_document))
        .route(
            "/feeds/2021-06-30/feeds",
            post(feeds::create_feed).get(feeds::get_feeds),
        )
        .route(
            "/feeds/2021-06-30/feeds/{id}",
            get(feeds::get_feed).delete(feeds::cancel_feed),
        )
        .route(
            "/spapi/feed-documents/{token}",
            axum::routing::put(feeds::upload_document),
        )
        .route("/spapi/feed-results/{token}", get(feeds::download))
        .with_state(state)
}

/// An answer that is not a success, in the marketplace's shape.
#[derive(Debug)]
pub struct SpError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: String,
}

pub type SpResult<T> = Result<T, SpError>;

impl SpError {
    pub fn invalid(message: impl Into<String>) -> SpError {
        SpError {
            status: StatusCode::BAD_REQUEST,
            code: "InvalidInput",
            message: message.into(),
            details: String::new(),
        }
    }

    pub fn unauthorized(message: impl Into<String>) -> SpError {
        SpError {
            status: StatusCode::FORBIDDEN,
            code: "Unauthorized",
            message: message.into(),
            details: String::new(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> SpError {
        SpError {
            status: StatusCode::NOT_FOUND,
            code: "NotFound",
            message: message.into(),
            details: String::new(),
        }
    }
}

impl From<DomainError> for SpError {
    fn from(e: DomainError) -> SpError {
        let (status, code) = match e.code {
            ErrorCode::NotFound => (StatusCode::NOT_FOUND, "NotFound"),
            ErrorCode::Unauthenticated | ErrorCode::Forbidden => {
                (StatusCode::FORBIDDEN, "Unauthorized")
            }
            ErrorCode::RateLimited => (StatusCode::TOO_MANY_REQUESTS, "QuotaExceeded"),
            ErrorCode::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "InvalidInput"),
            ErrorCode::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "InternalFailure"),
            _ => (StatusCode::BAD_REQUEST, "InvalidInput"),
        };
        let details = match &e.field {
            Some(f) => format!("{} (field {f})", e.code.as_str()),
            None => e.code.as_str().to_owned(),
        };
        SpError {
            status,
            code,
            message: e.message,
            details,
        }
    }
}

impl From<AppError> for SpError {
    fn from(e: AppError) -> SpError {
        match e {
            AppError::Domain(d) => d.into(),
            AppError::Internal(detail) => {
                tracing::error!(error = %detail, "internal error answered with 500 (SP-API)");
                SpError {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    code: "InternalFailure",
                    message: "The server failed to answer this request; the failure has been logged. Try again later.".into(),
                    details: String::new(),
                }
            }
        }
    }
}

impl IntoResponse for SpError {
    fn into_response(self) -> Response {
        let body = json!({"errors": [{
            "code": self.code,
            "message": self.message,
            "details": self.details,
        }]});
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
        }
        response
    }
}

/// The seller behind the request's `x-amz-access-token`.
pub struct SpSeller(pub SellerId);

impl FromRequestParts<SpState> for SpSeller {
    type Rejection = SpError;

    async fn from_request_parts(parts: &mut Parts, state: &SpState) -> SpResult<SpSeller> {
        let Some(raw) = parts.headers.get("x-amz-access-token") else {
            return Err(SpError::unauthorized(
                "Access to requested resource is denied: send the access token of /auth/o2/token in x-amz-access-token.",
            ));
        };
        let token = raw
            .to_str()
            .map_err(|_| SpError::unauthorized("The x-amz-access-token header is not readable."))?
            .trim();
        let now = state.app.service.now();
        let seller = state.tokens.seller(token, now).ok_or_else(|| {
            SpError::unauthorized(
                "The access token is unknown or expired; get a new one from /auth/o2/token.",
            )
        })?;
        if !state.app.limiter.allow(token, std::time::Instant::now()) {
            return Err(SpError {
                status: StatusCode::TOO_MANY_REQUESTS,
                code: "QuotaExceeded",
                message: format!(
                    "You exceeded your quota for the requested resource: more than {} requests in a second.",
                    state.app.limiter.per_second()
                ),
                details: String::new(),
            });
        }
        Ok(SpSeller(seller))
    }
}

/// The `sellerId` of a path must be the token's seller (SPEC 8).
pub fn check_seller(path_seller: &str, seller: &SellerId) -> SpResult<()> {
    if path_seller == seller.as_str() {
        Ok(())
    } else {
        Err(SpError::unauthorized(
            "Access to requested resource is denied: the sellerId in the path is not the seller of this access token.",
        ))
    }
}

/// Query parameters as given, repeated ones kept, percent-decoded.
pub struct RawQuery(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for RawQuery {
    type Rejection = SpError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> SpResult<RawQuery> {
        Ok(RawQuery(parse_form(parts.uri.query().unwrap_or(""))))
    }
}

impl RawQuery {
    /// Every value of any of `names`, comma-separated lists split, empty items dropped.
    pub fn list(&self, names: &[&str]) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| names.contains(&k.as_str()))
            .flat_map(|(_, v)| v.split(','))
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    }

    /// The first value of any of `names`.
    pub fn one(&self, names: &[&str]) -> Option<String> {
        self.0
            .iter()
            .find(|(k, _)| names.contains(&k.as_str()))
            .map(|(_, v)| v.trim().to_owned())
    }
}

/// The spellings real clients use for the marketplace parameter.
pub const MARKETPLACE_PARAMS: &[&str] = &[
    "marketplaceIds",
    "MarketplaceIds",
    "marketplace_ids",
    "MarketplaceId",
    "marketplaceId",
];

/// The stores named by marketplace ids, each once, in the order given.
pub fn stores_of(region: &Region, ids: &[String]) -> SpResult<Vec<StoreCode>> {
    let mut out: Vec<StoreCode> = Vec::new();
    for id in ids {
        let store = store_by_marketplace(region, id)?;
        if !out.contains(&store.code) {
            out.push(store.code.clone());
        }
    }
    if out.is_empty() {
        return Err(SpError::invalid(
            "Missing required parameter marketplaceIds (the marketplace ids of GET /sellers/v1/marketplaceParticipations).",
        ));
    }
    Ok(out)
}

/// The store of a marketplace id (a store code is accepted too).
pub fn store_by_marketplace<'a>(region: &'a Region, id: &str) -> SpResult<&'a Store> {
    region
        .stores
        .iter()
        .find(|s| s.marketplace_id == id)
        .or_else(|| region.store(id).ok())
        .ok_or_else(|| {
            SpError::invalid(format!(
                "Invalid marketplace id {id:?}; this region's are {}.",
                region
                    .stores
                    .iter()
                    .map(|s| s.marketplace_id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
}

/// The body's bytes, at most [`BODY_BYTES_MAX`].
pub async fn body_bytes(body: Body) -> SpResult<Vec<u8>> {
    axum::body::to_bytes(body, BODY_BYTES_MAX)
        .await
        .map(|b| b.to_vec())
        .map_err(|_| SpError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: "InvalidInput",
            message: format!(
                "The request body could not be read or is over {BODY_BYTES_MAX} bytes."
            ),
            details: String::new(),
        })
}

/// A JSON body as a `Value` (numbers as `f64` where fractional: read exact decimals
/// with [`numbers::exact_numbers`]).
pub fn json_body(bytes: &[u8]) -> SpResult<Value> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| SpError::invalid(format!("The request body is not valid JSON: {e}.")))?;
    check_strings(&value, "")?;
    Ok(value)
}

/// `application/x-www-form-urlencoded` pairs: `+` is a space, `%XX` a byte; a `|` or
/// any other character sent unencoded is taken as it is.
pub fn parse_form(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(raw: &str) -> String {
    let b = raw.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Refuses control characters in every string and key of a body, naming the field
/// (`onestock_core::types::check_text`, as the JSON API does).
fn check_strings(value: &Value, path: &str) -> SpResult<()> {
    match value {
        Value::String(s) => {
            let field = if path.is_empty() { "body" } else { path };
            onestock_core::types::check_text(field, s).map_err(SpError::from)
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, v)| check_strings(v, &format!("{path}[{i}]"))),
        Value::Object(map) => map.iter().try_for_each(|(k, v)| {
            let field = format!("{path}.{k}");
            onestock_core::types::check_text(&field, k).map_err(SpError::from)?;
            check_strings(v, &field)
        }),
        _ => Ok(()),
    }
}

/// A time as RFC 3339 in UTC.
pub fn time(t: time::OffsetDateTime) -> String {
    use time::format_description::well_known::Rfc3339;
    let utc = t.to_offset(time::UtcOffset::UTC);
    // Only years outside 0..=9999 fail to format; no stored time is one.
    utc.format(&Rfc3339).unwrap_or_else(|_| utc.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let pairs = parse_form("grant_type=refresh_token&refresh_token=Atzr|a%7Cb+c&x=%zz&y");
        assert_eq!(pairs[1], ("refresh_token".into(), "Atzr|a|b c".into()));
        assert_eq!(pairs[2], ("x".into(), "%zz".into()));
        assert_eq!(pairs[3], ("y".into(), String::new()));
        assert_eq!(percent_decode("%4"), "%4");
        assert_eq!(percent_decode("a%41"), "aA");
    }

    #[test]
    fn errors_have_the_marketplace_shape() {
        let e = SpError::from(DomainError::not_found("no such SKU"));
        assert_eq!(e.status, StatusCode::NOT_FOUND);
        assert_eq!(e.code, "NotFound");
        let e = SpError::from(DomainError::invalid("price", "bad"));
        assert_eq!(e.code, "InvalidInput");
        assert_eq!(e.details, "INVALID_REQUEST (field price)");
    }
}

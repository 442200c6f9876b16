//! Extractors of the HTTP door: who is calling (bearer tokens and roles), path and query
//! parameters, and JSON bodies read under the 1 MiB limit. Every rejection is an
//! [`ApiError`], so no framework text answer ever reaches a client.

use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::header::{AUTHORIZATION, CONTENT_LENGTH};
use axum::http::request::Parts;
use futures_util::StreamExt;
use onestock_core::error::ErrorCode;
use onestock_core::types::SellerId;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::error::{ApiError, ApiResult};
use crate::server::AppState;
use crate::service::Principal;

/// Largest JSON body (SPEC 4.2). Upload files do not go through this limit.
pub const JSON_BODY_BYTES_MAX: usize = 1024 * 1024;
/// How much of a too-large body is read and dropped before answering 413: enough for
/// the usual client to finish sending and read the answer, bounded so that a huge body
/// costs little.
const DRAIN_BYTES_MAX: usize = 32 * 1024 * 1024;

/// The bearer token of the request, or `UNAUTHENTICATED`.
fn bearer_token(parts: &Parts) -> ApiResult<&str> {
    let unauthenticated = |message: &str| ApiError::new(ErrorCode::Unauthenticated, message);
    let Some(value) = parts.headers.get(AUTHORIZATION) else {
        return Err(unauthenticated(
            "This call needs a token: send Authorization: Bearer <token>.",
        ));
    };
    let value = value.to_str().map_err(|_| {
        unauthenticated(
            "The Authorization header is not readable; send Authorization: Bearer <token>.",
        )
    })?;
    let value = value.trim();
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() || token.contains(' ') {
        return Err(unauthenticated(
            "The Authorization header must be Bearer <token>.",
        ));
    }
    Ok(token)
}

async fn principal(parts: &Parts, state: &AppState) -> ApiResult<Principal> {
    let token = bearer_token(parts)?;
    let principal = state.service.authenticate(token).await?;
    // Counted per known seller token only: unknown tokens were refused above, and the
    // operator's token, which carries every storefront's orders, is not limited (SPEC 4.2).
    if matches!(principal, Principal::Seller(_))
        && !state.limiter.allow(token, std::time::Instant::now())
    {
        return Err(ApiError::new(
            ErrorCode::RateLimited,
            format!(
                "This token sent more than {} requests in a second; wait a moment and retry.",
                state.limiter.per_second()
            ),
        ));
    }
    Ok(principal)
}

fn forbidden(message: &str) -> ApiError {
    ApiError::new(ErrorCode::Forbidden, message)
}

/// Any known token: the operator or a seller.
pub struct Anyone(#[allow(dead_code)] pub Principal);

impl FromRequestParts<AppState> for Anyone {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Anyone> {
        Ok(Anyone(principal(parts, state).await?))
    }
}

/// A seller's token; the operator is `FORBIDDEN`.
pub struct Seller(pub SellerId);

impl FromRequestParts<AppState> for Seller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Seller> {
        match principal(parts, state).await? {
            Principal::Seller(id) => Ok(Seller(id)),
            Principal::Operator => Err(forbidden(
                "This call is for sellers; the operator's token may not make it.",
            )),
        }
    }
}

/// The operator's token; a seller is `FORBIDDEN`.
pub struct Operator;

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Operator> {
        match principal(parts, state).await? {
            Principal::Operator => Ok(Operator),
            Principal::Seller(_) => Err(forbidden(
                "This call is for the marketplace operator; a seller's token may not make it.",
            )),
        }
    }
}

/// Path parameters, percent-decoded; a path that cannot be decoded is `INVALID_REQUEST`.
pub struct PathParams<T>(pub T);

impl<S, T> FromRequestParts<S> for PathParams<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> ApiResult<PathParams<T>> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(t)) => Ok(PathParams(t)),
            Err(rejection) => Err(ApiError::bad_request(format!(
                "The path could not be read: {}",
                rejection.body_text()
            ))),
        }
    }
}

/// Query parameters; a query that cannot be read is `INVALID_REQUEST`. Unknown
/// parameters are ignored.
pub struct QueryParams<T>(pub T);

impl<S, T> FromRequestParts<S> for QueryParams<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> ApiResult<QueryParams<T>> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(t)) => Ok(QueryParams(t)),
            Err(rejection) => Err(ApiError::bad_request(format!(
                "The query string could not be read: {}",
                rejection.body_text()
            ))),
        }
    }
}

fn too_large() -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!(
            "A JSON body is at most {} bytes (1 MiB).",
            JSON_BODY_BYTES_MAX
        ),
    )
}

/// A JSON body, at most [`JSON_BODY_BYTES_MAX`] bytes, parsed into a `Value`: the
/// handlers read their fields from it with [`Obj`], so every mistake names its field.
pub struct JsonBody(pub Value);

impl<S> FromRequest<S> for JsonBody
where
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> ApiResult<JsonBody> {
        let declared_too_large = req
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .is_some_and(|len| len > JSON_BODY_BYTES_MAX as u64);
        let mut stream = req.into_body().into_data_stream();
        let mut bytes: Vec<u8> = Vec::new();
        let mut seen: usize = 0;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| {
                ApiError::bad_request(format!("The request body could not be read: {e}"))
            })?;
            seen = seen.saturating_add(chunk.len());
            if declared_too_large || seen > JSON_BODY_BYTES_MAX {
                // Read on (and drop) what the client is still sending, so it gets to
                // read the 413 instead of a broken connection; give up past a bound.
                if seen > DRAIN_BYTES_MAX {
                    break;
                }
                continue;
            }
            bytes.extend_from_slice(&chunk);
        }
        if declared_too_large || seen > JSON_BODY_BYTES_MAX {
            return Err(too_large());
        }
        let value = parse_json(&bytes)?;
        check_strings(&value, "")?;
        Ok(JsonBody(value))
    }
}

/// Refuses control characters in every string and key of a JSON body, naming the field
/// (see `onestock_core::types::check_text`).
pub fn check_strings(value: &Value, path: &str) -> ApiResult<()> {
    match value {
        Value::String(s) => {
            let field = if path.is_empty() { "body" } else { path };
            onestock_core::types::check_text(field, s).map_err(ApiError::from)
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, v)| check_strings(v, &format!("{path}[{i}]"))),
        Value::Object(map) => map.iter().try_for_each(|(k, v)| {
            let field = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            onestock_core::types::check_text(&field, k).map_err(ApiError::from)?;
            check_strings(v, &field)
        }),
        _ => Ok(()),
    }
}

/// Whether a percent-encoded path or query, once decoded, holds a control character.
pub fn uri_has_control(raw: &str) -> bool {
    let b = raw.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let byte = if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
            match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                Some(v) => {
                    i += 2;
                    v
                }
                None => b[i],
            }
        } else {
            b[i]
        };
        if byte < 0x20 || byte == 0x7f {
            return true;
        }
        i += 1;
    }
    false
}

/// Parses a body's bytes as JSON (`INVALID_REQUEST` with serde_json's reason otherwise).
pub fn parse_json(bytes: &[u8]) -> ApiResult<Value> {
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(ApiError::bad_request(
            "The request body is empty; send a JSON object.",
        ));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("The request body is not valid JSON: {e}.")))
}

/// A JSON object whose fields are taken one by one, each mistake naming its field (with
/// its path inside the body: `price.amount`, `lines[2].sku`).
pub struct Obj {
    map: Map<String, Value>,
    prefix: String,
}

impl Obj {
    /// Checks that `value` is an object with no field outside `allowed`.
    pub fn new(value: Value, prefix: &str, allowed: &[&str]) -> ApiResult<Obj> {
        let Value::Object(map) = value else {
            return Err(if prefix.is_empty() {
                ApiError::bad_request(format!(
                    "The request body must be a JSON object with the fields {}.",
                    allowed.join(", ")
                ))
            } else {
                ApiError::invalid(
                    prefix,
                    format!(
                        "{prefix} must be a JSON object with the fields {}.",
                        allowed.join(", ")
                    ),
                )
            });
        };
        let obj = Obj {
            map,
            prefix: prefix.to_owned(),
        };
        if let Some(unknown) = obj.map.keys().find(|k| !allowed.contains(&k.as_str())) {
            let field = obj.path(unknown);
            return Err(ApiError::invalid(
                &field,
                format!(
                    "Unknown field {field:?}; the fields here are {}.",
                    allowed.join(", ")
                ),
            ));
        }
        Ok(obj)
    }

    /// The full name of a field, for messages.
    pub fn path(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{name}", self.prefix)
        }
    }

    /// The field as given, `null` included; None when absent.
    pub fn take(&mut self, name: &str) -> Option<Value> {
        self.map.remove(name)
    }

    /// The field unless absent or `null`.
    pub fn take_some(&mut self, name: &str) -> Option<Value> {
        self.take(name).filter(|v| !v.is_null())
    }

    fn missing(&self, name: &str, what: &str) -> ApiError {
        let field = self.path(name);
        ApiError::invalid(&field, format!("Missing field {field:?} ({what})."))
    }

    fn wrong_type(&self, name: &str, what: &str, got: &Value) -> ApiError {
        let field = self.path(name);
        ApiError::invalid(
            &field,
            format!("Field {field:?} must be {what}; got {}.", type_name(got)),
        )
    }

    pub fn opt_str(&mut self, name: &str) -> ApiResult<Option<String>> {
        match self.take_some(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(self.wrong_type(name, "a string", &other)),
        }
    }

    pub fn req_str(&mut self, name: &str) -> ApiResult<String> {
        self.opt_str(name)?
            .ok_or_else(|| self.missing(name, "a string"))
    }

    pub fn opt_bool(&mut self, name: &str) -> ApiResult<Option<bool>> {
        match self.take_some(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(other) => Err(self.wrong_type(name, "true or false", &other)),
        }
    }

    pub fn opt_array(&mut self, name: &str) -> ApiResult<Option<Vec<Value>>> {
        match self.take_some(name) {
            None => Ok(None),
            Some(Value::Array(items)) => Ok(Some(items)),
            Some(other) => Err(self.wrong_type(name, "an array", &other)),
        }
    }

    pub fn req_array(&mut self, name: &str) -> ApiResult<Vec<Value>> {
        self.opt_array(name)?
            .ok_or_else(|| self.missing(name, "an array"))
    }
}

/// How a JSON value is called in messages.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field_of(e: ApiError) -> Option<String> {
        match e {
            ApiError::Domain(d) => d.field,
            _ => None,
        }
    }

    #[test]
    fn unknown_fields_are_named() {
        let e = Obj::new(json!({"name": "x", "nmae": "y"}), "", &["name"])
            .err()
            .map(field_of);
        assert_eq!(e, Some(Some("nmae".into())));
        let e = Obj::new(json!({"amount": "1", "x": 1}), "price", &["amount"])
            .err()
            .map(field_of);
        assert_eq!(e, Some(Some("price.x".into())));
    }

    #[test]
    fn missing_and_wrong_types() {
        let mut o = Obj::new(json!({"name": 5}), "", &["name", "other"]).unwrap();
        let e = o.req_str("name").unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidRequest);
        assert_eq!(field_of(e), Some("name".into()));
        let e = o.req_str("other").unwrap_err();
        assert_eq!(field_of(e), Some("other".into()));
        assert!(Obj::new(json!([1]), "", &["name"]).is_err());
    }

    #[test]
    fn bodies() {
        assert!(parse_json(b"").is_err());
        assert!(parse_json(b"{").is_err());
        assert!(parse_json(b"{\"a\":1}").is_ok());
    }
}

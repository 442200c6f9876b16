//! `POST /auth/o2/token`, as Login with Amazon answers it, and the access tokens it
//! issues.
//!
//! The refresh token is the seller's onestock token. Access tokens live one hour and
//! are kept in this process's memory only, as SHA-256 digests: a restart ends them, and
//! clients then ask for a new one, as they do every hour anyway. At most
//! [`ACCESS_TOKENS_MAX`] are kept; past that, the one that expires first is dropped.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use onestock_core::types::SellerId;
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

use super::{SpState, body_bytes, parse_form};
use crate::service::{Principal, new_token, token_digest};

/// How long an access token is valid, in seconds (Login with Amazon's hour).
pub const ACCESS_TOKEN_SECONDS: i64 = 3600;
/// Access tokens kept at once: a client asks for one an hour per seller, so this covers
/// tens of thousands of sellers while bounding memory (about 150 bytes a token).
pub const ACCESS_TOKENS_MAX: usize = 100_000;

/// Live access tokens: digest → (seller, expiry).
#[derive(Default)]
pub struct AccessTokens {
    live: Mutex<HashMap<String, (SellerId, OffsetDateTime)>>,
}

impl AccessTokens {
    /// A new access token for `seller`, valid until `now` + an hour.
    pub fn issue(&self, seller: SellerId, now: OffsetDateTime) -> String {
        let token = new_token("Atza|onestock");
        let expires = now + Duration::seconds(ACCESS_TOKEN_SECONDS);
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        live.retain(|_, (_, until)| *until > now);
        while live.len() >= ACCESS_TOKENS_MAX {
            let first = live
                .iter()
                .min_by_key(|(_, (_, until))| *until)
                .map(|(k, _)| k.clone());
            match first {
                Some(k) => {
                    live.remove(&k);
                }
                None => break,
            }
        }
        live.insert(token_digest(&token), (seller, expires));
        token
    }

    /// The seller of a live token.
    pub fn seller(&self, token: &str, now: OffsetDateTime) -> Option<SellerId> {
        let live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        live.get(&token_digest(token))
            .filter(|(_, until)| *until > now)
            .map(|(s, _)| s.clone())
    }
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

/// `POST /auth/o2/token`: `grant_type=refresh_token` with `refresh_token`, `client_id`
/// and `client_secret` (the client's pair is accepted as given), form-encoded or JSON.
pub async fn token(State(state): State<SpState>, headers: HeaderMap, body: Body) -> Response {
    let bytes = match body_bytes(body).await {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("json"))
        || bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    let fields: Vec<(String, String)> = if is_json {
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(map)) => map
                .into_iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k, s.to_owned())))
                .collect(),
            _ => {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "The body is not a JSON object of strings.",
                );
            }
        }
    } else {
        parse_form(&String::from_utf8_lossy(&bytes))
    };
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_owned())
    };
    match field("grant_type").as_deref() {
        Some("refresh_token") => {}
        Some(_) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "Only grant_type=refresh_token is supported.",
            );
        }
        None => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "The request is missing grant_type=refresh_token.",
            );
        }
    }
    let Some(refresh) = field("refresh_token").filter(|t| !t.is_empty()) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The request is missing refresh_token (the seller's onestock token).",
        );
    };
    let seller = match state.app.service.authenticate(&refresh).await {
        Ok(Principal::Seller(s)) => s,
        Ok(Principal::Operator) | Err(_) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                "The refresh token is not a seller's token known to this server.",
            );
        }
    };
    let access = state.tokens.issue(seller, state.app.service.now());
    (
        StatusCode::OK,
        Json(json!({
            "access_token": access,
            "refresh_token": refresh,
            "token_type": "bearer",
            "expires_in": ACCESS_TOKEN_SECONDS,
        })),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn tokens_expire_and_are_bounded() {
        let tokens = AccessTokens::default();
        let now = datetime!(2030-01-01 00:00 UTC);
        let t = tokens.issue(SellerId("sel_1".into()), now);
        assert!(t.starts_with("Atza|"));
        assert_eq!(
            tokens.seller(&t, now + Duration::seconds(3599)),
            Some(SellerId("sel_1".into()))
        );
        assert_eq!(tokens.seller(&t, now + Duration::seconds(3600)), None);
        assert_eq!(tokens.seller("Atza|other", now), None);
        let live = tokens.live.lock().map(|l| l.len()).unwrap_or(0);
        assert_eq!(live, 1);
    }
}

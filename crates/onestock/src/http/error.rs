//! The one error type of the HTTP door: every 4xx and 5xx answer is
//! `{"error": {"code", "message", "field"?, "matches"?}}` with the status of SPEC 4.2.

use std::any::Any;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use onestock_core::error::{DomainError, ErrorCode};
use serde_json::Value;

use super::schema;

use crate::service::AppError;

/// What a client is told when the server itself failed; details go to the log only.
const INTERNAL_MESSAGE: &str =
    "The server failed to answer this request; the failure has been logged. Try again later.";

/// An answer that is not a success.
#[derive(Debug)]
pub enum ApiError {
    /// A code of SPEC 4.2, with its message and field.
    Domain(DomainError),
    /// The path exists but not with this method (405, code `INVALID_REQUEST`).
    MethodNotAllowed,
    /// The server's own failure: 500, logged, never detailed to the client.
    Internal(String),
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// `INVALID_REQUEST` naming the field at fault.
    pub fn invalid(field: &str, message: impl Into<String>) -> ApiError {
        ApiError::Domain(DomainError::invalid(field, message))
    }

    /// `INVALID_REQUEST` about the request as a whole.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::Domain(DomainError::new(ErrorCode::InvalidRequest, message))
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::Domain(DomainError::not_found(message))
    }

    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError::Domain(DomainError::new(code, message))
    }

    /// The code answered.
    pub fn code(&self) -> ErrorCode {
        match self {
            ApiError::Domain(e) => e.code,
            ApiError::MethodNotAllowed => ErrorCode::InvalidRequest,
            ApiError::Internal(_) => ErrorCode::Internal,
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Domain(e) => status_of(e.code),
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The JSON body of the answer.
    pub fn body(&self) -> Value {
        let (message, field, matches) = match self {
            ApiError::Domain(e) => {
                let matches =
                    (e.code == ErrorCode::PossibleMatch || !e.matches.is_empty()).then(|| {
                        e.matches
                            .iter()
                            .map(|m| schema::Match {
                                asin: m.asin.clone(),
                                store: m.store.clone(),
                                title: m.title.clone(),
                            })
                            .collect()
                    });
                (e.message.clone(), e.field.clone(), matches)
            }
            ApiError::MethodNotAllowed => (
                "This path does not take this method; see the API's endpoint table.".to_owned(),
                None,
                None,
            ),
            ApiError::Internal(_) => (INTERNAL_MESSAGE.to_owned(), None, None),
        };
        let body = schema::ErrorBody {
            error: schema::ErrorDetail {
                code: self.code().as_str().to_owned(),
                message,
                field,
                matches,
            },
        };
        // A struct of strings always serializes.
        serde_json::to_value(body).unwrap_or(Value::Null)
    }
}

/// The HTTP status of every code (SPEC 4.2).
pub fn status_of(code: ErrorCode) -> StatusCode {
    use ErrorCode::*;
    match code {
        InvalidRequest
        | InvalidIdentifier
        | InvalidPrice
        | InvalidQuantity
        | LanguageNotSupported
        | LanguageMismatch
        | PriceRequired
        | CurrencyMismatch
        | SharedFieldNotEditable
        | UnknownStore
        | UnknownColumn => StatusCode::BAD_REQUEST,
        Unauthenticated => StatusCode::UNAUTHORIZED,
        Forbidden => StatusCode::FORBIDDEN,
        NotFound => StatusCode::NOT_FOUND,
        SkuAsinMismatch
        | AsinNotInStore
        | PossibleMatch
        | ProductDataConflict
        | SharingNotAvailable
        | SharingModeImmutable
        | FulfillmentCannotShare
        | RestrictedInStore
        | ListingNotBuyable
        | InsufficientStock
        | OrderIdReused => StatusCode::CONFLICT,
        VersionMismatch => StatusCode::PRECONDITION_FAILED,
        PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        RateLimited => StatusCode::TOO_MANY_REQUESTS,
        Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> ApiError {
        ApiError::Domain(e)
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> ApiError {
        match e {
            AppError::Domain(d) => ApiError::Domain(d),
            AppError::Internal(m) => ApiError::Internal(m),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(detail) = &self {
            tracing::error!(error = %detail, "internal error answered with 500");
        }
        let status = self.status();
        let mut response = (status, axum::Json(self.body())).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if status == StatusCode::TOO_MANY_REQUESTS
            && !response.headers().contains_key(header::RETRY_AFTER)
        {
            // The rate limit refills every second (SPEC 4.2: 429 with Retry-After).
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

/// For `CatchPanicLayer`: a panic is a defect, answered as the JSON 500.
pub fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let detail = if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else {
        "unknown panic".to_owned()
    };
    ApiError::Internal(format!("handler panicked: {detail}")).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use onestock_core::error::Match;
    use serde_json::json;

    #[test]
    fn error_shape() {
        let e = ApiError::invalid("sku", "bad sku");
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            e.body(),
            json!({"error": {"code": "INVALID_REQUEST", "message": "bad sku", "field": "sku"}})
        );
    }

    #[test]
    fn possible_match_carries_matches() {
        let mut d = DomainError::new(ErrorCode::PossibleMatch, "same product");
        d.matches.push(Match {
            asin: "B000000001".into(),
            store: "US".into(),
            title: "Mug".into(),
        });
        let e = ApiError::from(d);
        assert_eq!(e.status(), StatusCode::CONFLICT);
        assert_eq!(
            e.body()["error"]["matches"],
            json!([{"asin": "B000000001", "store": "US", "title": "Mug"}])
        );
        assert!(e.body()["error"].get("field").is_none());
    }

    #[test]
    fn internal_hides_details() {
        let e = ApiError::from(AppError::Internal("disk on fire at /var/db".into()));
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let text = e.body().to_string();
        assert!(!text.contains("disk"), "{text}");
        assert_eq!(e.body()["error"]["code"], "INTERNAL");
    }

    #[test]
    fn statuses() {
        assert_eq!(
            status_of(ErrorCode::Unauthenticated),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(status_of(ErrorCode::Forbidden), StatusCode::FORBIDDEN);
        assert_eq!(
            status_of(ErrorCode::VersionMismatch),
            StatusCode::PRECONDITION_FAILED
        );
        assert_eq!(
            status_of(ErrorCode::PayloadTooLarge),
            StatusCode::PAYLOAD_TOO_LARGE
        );
        assert_eq!(
            status_of(ErrorCode::RateLimited),
            StatusCode::TOO_MANY_REQUESTS
        );
        assert_eq!(status_of(ErrorCode::UnknownStore), StatusCode::BAD_REQUEST);
        assert_eq!(status_of(ErrorCode::OrderIdReused), StatusCode::CONFLICT);
        assert_eq!(
            ApiError::MethodNotAllowed.status(),
            StatusCode::METHOD_NOT_ALLOWED
        );
    }
}

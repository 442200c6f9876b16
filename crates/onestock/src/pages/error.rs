//! The error page: a refusal shown in words with its SPEC code, never a JSON body and
//! never a 500 (a failure of the server itself is a 503 page asking to try again).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use onestock_core::error::{DomainError, ErrorCode};

use super::layout;
use crate::service::AppError;

/// What a person is told when the server itself failed; details go to the log only.
const INTERNAL_MESSAGE: &str = "The server could not answer this page just now; the failure has been logged. Try again in a moment.";

#[derive(Debug)]
pub enum PageError {
    /// No session: go to the sign-in page.
    SignIn,
    Page {
        status: StatusCode,
        code: String,
        message: String,
    },
}

impl PageError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> PageError {
        PageError::Page {
            status,
            code: code.to_owned(),
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> PageError {
        PageError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidRequest.as_str(),
            message,
        )
    }
}

impl From<DomainError> for PageError {
    fn from(e: DomainError) -> PageError {
        PageError::new(crate::http::status_of(e.code), e.code.as_str(), e.message)
    }
}

impl From<AppError> for PageError {
    fn from(e: AppError) -> PageError {
        match e {
            AppError::Domain(d) => d.into(),
            AppError::Internal(detail) => {
                tracing::error!(error = %detail, "internal error on a page");
                PageError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorCode::Internal.as_str(),
                    INTERNAL_MESSAGE,
                )
            }
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            PageError::SignIn => Redirect::to("/").into_response(),
            PageError::Page {
                status,
                code,
                message,
            } => {
                let status = if status.is_server_error() {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    status
                };
                let body = html! {
                    section.card {
                        h1 { "Something went wrong" }
                        div.notice.error role="alert" {
                            strong.code { (code) } " " (message)
                        }
                        p { a href="/" { "Back to Manage Inventory" } }
                    }
                };
                (status, layout::bare("Something went wrong", body)).into_response()
            }
        }
    }
}

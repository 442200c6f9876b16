//! A request id on every answer and on every log line written while a request is served.
//!
//! [`assign`] (outermost layer of the router) takes the client's `x-request-id` when it
//! is short and printable ([`is_valid`]), else makes one, keeps it in the request's
//! extensions ([`RequestId`]) and writes it into the answer's `x-request-id` header,
//! errors and pages included. [`trace_layer`] then opens the request's span with
//! `request_id`, `method` and `route`, so every log line inside the request carries them
//! (as span fields in `--log-format json`), and writes one INFO line per answer with its
//! status and latency.

use std::time::Duration;

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::trace::{DefaultOnFailure, TraceLayer};
use tracing::Span;

/// The header a request id comes in and goes out by.
pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");
/// Longest request id taken from a client; longer ones are replaced.
pub const REQUEST_ID_CHARS_MAX: usize = 64;

/// The target of the line per answer: its own, so that `RUST_LOG=onestock::access=warn`
/// drops those lines while the request's span (target `onestock::request_id`) and its
/// fields stay on every other line.
pub const ACCESS_LOG_TARGET: &str = "onestock::access";

/// The id of the request being served, in the request's extensions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestId(pub String);

/// Whether a client's request id is taken as it is: 1 to 64 characters of
/// `[A-Za-z0-9._-]`, so it cannot break a log line or a header, nor fill the log.
pub fn is_valid(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= REQUEST_ID_CHARS_MAX
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// A new request id: 64 random bits, 16 hex digits.
pub fn generate() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// Middleware: the request id of this request, in its extensions and its answer.
pub async fn assign(mut req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(&HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_valid(v))
        .map(str::to_owned)
        .unwrap_or_else(generate);
    let value = HeaderValue::from_str(&id).ok();
    req.extensions_mut().insert(RequestId(id));
    let mut response = next.run(req).await;
    if let Some(value) = value {
        response.headers_mut().insert(HEADER, value);
    }
    response
}

/// The request's span: its id, method and route template (`unmatched` for the fallback).
fn make_span(req: &Request) -> Span {
    let id = req
        .extensions()
        .get::<RequestId>()
        .map(|r| r.0.as_str())
        .unwrap_or("-");
    tracing::info_span!(
        "request",
        request_id = %id,
        method = %req.method(),
        route = %crate::metrics::route_label(req),
    )
}

/// One line per answer, inside the request's span.
fn on_response(response: &Response, latency: Duration, _span: &Span) {
    tracing::info!(
        target: ACCESS_LOG_TARGET,
        status = response.status().as_u16(),
        // Milliseconds to the microsecond.
        latency_ms = latency.as_micros() as f64 / 1000.0,
        "answered"
    );
}

/// The tracing layer of the router: [`make_span`], [`on_response`], and tower-http's
/// ERROR line for a 5xx.
#[allow(clippy::type_complexity)]
pub fn trace_layer() -> TraceLayer<
    SharedClassifier<ServerErrorsAsFailures>,
    fn(&Request) -> Span,
    (),
    fn(&Response, Duration, &Span),
    (),
    (),
    DefaultOnFailure,
> {
    TraceLayer::new_for_http()
        .make_span_with(make_span as fn(&Request) -> Span)
        .on_request(())
        .on_response(on_response as fn(&Response, Duration, &Span))
        .on_body_chunk(())
        .on_eos(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_printable_ids_are_taken_and_others_are_not() {
        assert!(is_valid("abc-123_X.y"));
        assert!(is_valid(&"a".repeat(REQUEST_ID_CHARS_MAX)));
        assert!(!is_valid(""));
        assert!(!is_valid(&"a".repeat(REQUEST_ID_CHARS_MAX + 1)));
        assert!(!is_valid("has space"));
        assert!(!is_valid("new\nline"));
        assert!(!is_valid("quote\""));
        assert!(!is_valid("é"));
    }

    #[test]
    fn generated_ids_are_valid_and_differ() {
        let (a, b) = (generate(), generate());
        assert_eq!(a.len(), 16);
        assert!(is_valid(&a));
        assert_ne!(a, b);
    }
}

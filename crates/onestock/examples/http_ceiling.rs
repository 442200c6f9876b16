//! The ceiling of `scripts/bench-http` on the machine it runs on: an HTTP server that
//! does no work at all, driven by the same load generator, script and connections.
//!
//! It answers every `POST /v1/stores/{store}/orders` with `201` and the body's
//! `order_id` (which `scripts/bench-http.lua` needs to match its answers), on the same
//! HTTP stack as `onestock serve` (hyper's HTTP/1.1, keep-alive, `TCP_NODELAY`, tokio's
//! multi-threaded runtime, mimalloc), and keeps nothing. No orders server on this machine
//! can answer faster than this with wrk beside it: `scripts/bench-http --ceiling` prints
//! it beside the real figure, so the ratio a run reaches can be read against the most
//! the machine allows (docs/scaling.md, "The ceiling").
//!
//!     cargo run --release -p onestock --example http_ceiling -- 127.0.0.1:8080

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tower::ServiceExt;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The `order_id` of a bench body, found by its key rather than by parsing the JSON: the
/// ceiling should cost as little as a server can.
fn order_id(body: &[u8]) -> Option<&[u8]> {
    const KEY: &[u8] = b"\"order_id\":\"";
    let start = body.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let len = body[start..].iter().position(|&b| b == b'"')?;
    Some(&body[start..start + len])
}

async fn order(Path(_store): Path<String>, body: Bytes) -> Response {
    match order_id(&body) {
        Some(id) => {
            let mut out = Vec::with_capacity(id.len() + 32);
            out.extend_from_slice(b"{\"order_id\":\"");
            out.extend_from_slice(id);
            out.extend_from_slice(b"\",\"status\":\"ACCEPTED\"}");
            (
                StatusCode::CREATED,
                [("content-type", "application/json")],
                out,
            )
                .into_response()
        }
        None => StatusCode::BAD_REQUEST.into_response(),
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("http_ceiling: listening on {}", listener.local_addr()?);
    let router = axum::Router::new().route("/v1/stores/{store}/orders", post(order));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).keep_alive(true);
    let http = std::sync::Arc::new(http);
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let http = http.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                let router = router.clone();
                async move {
                    let response = router.oneshot(req.map(Body::new)).await;
                    Ok::<_, Infallible>(response.unwrap_or_else(|e| match e {}))
                }
            });
            let _ = http.serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

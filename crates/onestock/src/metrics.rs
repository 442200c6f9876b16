//! Counters and gauges for `GET /metrics` (Prometheus text format, version 0.0.4), kept in
//! process-wide atomics: counting costs one relaxed add, and nothing here can fail.
//!
//! Counted by [`count_requests`] (a middleware on every door): requests by status class,
//! orders accepted and refused, uploads queued. Counted by the connection loop of
//! `server.rs`: open connections. Read at scrape time: the writer's batches, commands and
//! busy time (`Service::writer_stats`).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use axum::http::{Method, StatusCode};

/// Every figure of `/metrics` that is counted as it happens.
pub struct Metrics {
    /// Answers by status class: 1xx, 2xx, 3xx, 4xx, 5xx.
    responses: [AtomicU64; 5],
    orders_accepted: AtomicU64,
    orders_replayed: AtomicU64,
    orders_refused: AtomicU64,
    uploads_queued: AtomicU64,
    uploads_refused: AtomicU64,
    uploads_done: AtomicU64,
    uploads_fatal: AtomicU64,
    upload_rows: AtomicU64,
    upload_rows_failed: AtomicU64,
    open_connections: AtomicI64,
    connections_accepted: AtomicU64,
}

/// The process's metrics (one server per process in production; tests that run several
/// servers in one process see their sum).
pub static METRICS: Metrics = Metrics {
    responses: [const { AtomicU64::new(0) }; 5],
    orders_accepted: AtomicU64::new(0),
    orders_replayed: AtomicU64::new(0),
    orders_refused: AtomicU64::new(0),
    uploads_queued: AtomicU64::new(0),
    uploads_refused: AtomicU64::new(0),
    uploads_done: AtomicU64::new(0),
    uploads_fatal: AtomicU64::new(0),
    upload_rows: AtomicU64::new(0),
    upload_rows_failed: AtomicU64::new(0),
    open_connections: AtomicI64::new(0),
    connections_accepted: AtomicU64::new(0),
};

/// Counts one connection as open while it lives.
pub struct OpenConnection(());

impl OpenConnection {
    pub fn new() -> OpenConnection {
        METRICS.open_connections.fetch_add(1, Ordering::Relaxed);
        METRICS.connections_accepted.fetch_add(1, Ordering::Relaxed);
        OpenConnection(())
    }
}

impl Default for OpenConnection {
    fn default() -> Self {
        OpenConnection::new()
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        METRICS.open_connections.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Whether a path is `/v1/stores/{store}/orders` (a new order, not a cancel).
fn is_order_path(path: &str) -> bool {
    let mut parts = path.trim_end_matches('/').split('/');
    matches!(
        (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next()
        ),
        (
            Some(""),
            Some("v1"),
            Some("stores"),
            Some(_),
            Some("orders"),
            None
        )
    )
}

impl Metrics {
    /// An upload this process finished: `DONE` (with its rows) or `FATAL`.
    pub fn upload_finished(&self, fatal: bool, done: bool, rows: i64, failed: i64) {
        if fatal {
            self.uploads_fatal.fetch_add(1, Ordering::Relaxed);
        } else if done {
            self.uploads_done.fetch_add(1, Ordering::Relaxed);
        } else {
            return;
        }
        self.upload_rows
            .fetch_add(u64::try_from(rows).unwrap_or(0), Ordering::Relaxed);
        self.upload_rows_failed
            .fetch_add(u64::try_from(failed).unwrap_or(0), Ordering::Relaxed);
    }

    /// Counts one answer to `method path`.
    pub fn record(&self, method: &Method, path: &str, status: StatusCode) {
        let class = (status.as_u16() / 100).clamp(1, 5) as usize - 1;
        self.responses[class].fetch_add(1, Ordering::Relaxed);
        if method != Method::POST {
            return;
        }
        if is_order_path(path) {
            let counter = match status.as_u16() {
                201 => &self.orders_accepted,
                200 => &self.orders_replayed,
                400..=499 => &self.orders_refused,
                _ => return,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        } else if path.trim_end_matches('/') == "/v1/uploads" {
            let counter = match status.as_u16() {
                202 => &self.uploads_queued,
                400..=499 => &self.uploads_refused,
                _ => return,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The text of `GET /metrics`.
    pub fn render(&self, writer: &crate::service::WriterStats) -> String {
        let mut out = String::with_capacity(2048);
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "# HELP onestock_http_responses_total HTTP answers by status class."
        );
        let _ = writeln!(out, "# TYPE onestock_http_responses_total counter");
        for (i, n) in self.responses.iter().enumerate() {
            let _ = writeln!(
                out,
                "onestock_http_responses_total{{class=\"{}xx\"}} {}",
                i + 1,
                get(n)
            );
        }
        let _ = writeln!(
            out,
            "# HELP onestock_orders_total Store orders by outcome: accepted (201), replayed (200, R19), refused (4xx)."
        );
        let _ = writeln!(out, "# TYPE onestock_orders_total counter");
        for (outcome, n) in [
            ("accepted", &self.orders_accepted),
            ("replayed", &self.orders_replayed),
            ("refused", &self.orders_refused),
        ] {
            let _ = writeln!(
                out,
                "onestock_orders_total{{outcome=\"{outcome}\"}} {}",
                get(n)
            );
        }
        let _ = writeln!(
            out,
            "# HELP onestock_uploads_total Upload files: queued (202), refused (4xx), and finished by this process as done or fatal."
        );
        let _ = writeln!(out, "# TYPE onestock_uploads_total counter");
        for (outcome, n) in [
            ("queued", &self.uploads_queued),
            ("refused", &self.uploads_refused),
            ("done", &self.uploads_done),
            ("fatal", &self.uploads_fatal),
        ] {
            let _ = writeln!(
                out,
                "onestock_uploads_total{{outcome=\"{outcome}\"}} {}",
                get(n)
            );
        }
        let _ = writeln!(
            out,
            "# HELP onestock_upload_rows_total Data rows of the uploads this process finished, and those that failed."
        );
        let _ = writeln!(out, "# TYPE onestock_upload_rows_total counter");
        let _ = writeln!(
            out,
            "onestock_upload_rows_total{{outcome=\"processed\"}} {}",
            get(&self.upload_rows)
        );
        let _ = writeln!(
            out,
            "onestock_upload_rows_total{{outcome=\"failed\"}} {}",
            get(&self.upload_rows_failed)
        );
        let _ = writeln!(
            out,
            "# HELP onestock_open_connections HTTP connections open now."
        );
        let _ = writeln!(out, "# TYPE onestock_open_connections gauge");
        let _ = writeln!(
            out,
            "onestock_open_connections {}",
            self.open_connections.load(Ordering::Relaxed).max(0)
        );
        let _ = writeln!(
            out,
            "# HELP onestock_connections_accepted_total HTTP connections accepted."
        );
        let _ = writeln!(out, "# TYPE onestock_connections_accepted_total counter");
        let _ = writeln!(
            out,
            "onestock_connections_accepted_total {}",
            get(&self.connections_accepted)
        );
        let _ = writeln!(
            out,
            "# HELP onestock_writer_batches_total Write transactions committed by the writer (group commit)."
        );
        let _ = writeln!(out, "# TYPE onestock_writer_batches_total counter");
        let _ = writeln!(out, "onestock_writer_batches_total {}", writer.batches);
        let _ = writeln!(
            out,
            "# HELP onestock_writer_commands_total Commands applied by the writer."
        );
        let _ = writeln!(out, "# TYPE onestock_writer_commands_total counter");
        let _ = writeln!(out, "onestock_writer_commands_total {}", writer.commands);
        let _ = writeln!(
            out,
            "# HELP onestock_writer_busy_seconds_total Time the writer spent inside write transactions, commit included."
        );
        let _ = writeln!(out, "# TYPE onestock_writer_busy_seconds_total counter");
        let _ = writeln!(
            out,
            "onestock_writer_busy_seconds_total {}",
            writer.busy_us as f64 / 1e6
        );
        out
    }
}

/// Middleware: counts every answer of the router it wraps.
pub async fn count_requests(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let response = next.run(req).await;
    METRICS.record(&method, &path, response.status());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_paths_are_recognised() {
        assert!(is_order_path("/v1/stores/US/orders"));
        assert!(is_order_path("/v1/stores/us/orders/"));
        assert!(!is_order_path("/v1/stores/US/orders/o-1/cancel"));
        assert!(!is_order_path("/v1/stores/US/items/B000000001/offers"));
        assert!(!is_order_path("/v1/uploads"));
    }
}

//! The figures of `GET /metrics` (Prometheus text format, version 0.0.4), from two sources
//! rendered one after the other:
//!
//! - process-wide atomics ([`METRICS`]): counting costs one relaxed add, and nothing here
//!   can fail. Counted by [`count_requests`] (a middleware on every door): requests by
//!   status class, uploads queued. Counted by the writer as it decides them
//!   ([`order_decided`]), in one place: orders accepted, replayed and refused by the
//!   rules, also those whose client hung up before the answer (an order refused before
//!   the rules, for a bad body or a missing token, is a 4xx of the orders route). Counted by the connection
//!   loop of `server.rs`: open connections. Read at scrape time: the writer's batches,
//!   commands and busy time (`Service::writer_stats`).
//! - the `metrics` crate's recorder ([`prometheus`], installed once per process), for
//!   what has labels or buckets: requests by route, method and status, request latency by
//!   route, the writer's batch sizes and transaction times, upload rows committed, the
//!   upload queue. `docs/operations.md` lists every name.

use std::fmt::Write as _;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::MatchedPath;
use axum::http::{Method, StatusCode};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Request latency, in seconds: the histogram's upper bounds, from half a millisecond (a
/// cached read) to 10 s (a long poll's default wait is longer and lands in `+Inf`).
pub const LATENCY_BUCKETS_SECONDS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Commands per writer batch: powers of two up to `BATCH_COMMANDS_MAX` (1,024) and beyond.
pub const BATCH_SIZE_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0,
];
/// How often the recorder's histogram samples are folded into their buckets between
/// scrapes, so that samples do not pile up in memory when nobody scrapes.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Requests by route template, method and status code (counter).
pub const HTTP_REQUESTS: &str = "onestock_http_requests_total";
/// Time from a request's head to its answer's head, by route template and method
/// (histogram, seconds). A streamed body (a report, a long poll's answer) is not included.
pub const HTTP_REQUEST_DURATION: &str = "onestock_http_request_duration_seconds";
/// Commands in one write transaction of the writer (histogram).
pub const WRITER_BATCH_COMMANDS: &str = "onestock_writer_batch_commands";
/// Time of one batch's write transaction, from BEGIN to the end of COMMIT, fsync
/// included (histogram, seconds).
pub const WRITER_COMMIT_DURATION: &str = "onestock_writer_commit_seconds";
/// Upload rows committed by the writer, applied or reported as failed (counter; its
/// rate is rows per second).
pub const UPLOAD_ROWS_COMMITTED: &str = "onestock_upload_rows_committed_total";
/// Uploads not finished yet, by status (`IN_QUEUE`, `IN_PROGRESS`), read at scrape time
/// (gauge).
pub const UPLOAD_QUEUE_DEPTH: &str = "onestock_upload_queue_depth";

/// The process's Prometheus recorder, installed as the `metrics` crate's global recorder
/// on first use. Tests run several servers in one process: they share it (and see the sum
/// of their figures), and installing twice is a no-op. Where another recorder was
/// installed first, this one still renders, with nothing recorded into it.
pub fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Suffix("_seconds".into()),
                LATENCY_BUCKETS_SECONDS,
            )
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full(WRITER_BATCH_COMMANDS.into()),
                    BATCH_SIZE_BUCKETS,
                )
            })
            .expect("histogram buckets are not empty");
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was installed before onestock's; /metrics shows only its own counters");
        }
        describe();
        let upkeep = handle.clone();
        // A plain thread, not a task: it outlives any one Tokio runtime (tests start many).
        let _ = std::thread::Builder::new()
            .name("onestock-metrics".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(UPKEEP_INTERVAL);
                    upkeep.run_upkeep();
                }
            });
        handle
    })
}

/// The HELP lines of the recorder's figures.
fn describe() {
    metrics::describe_counter!(
        HTTP_REQUESTS,
        "HTTP answers by route template (or unmatched), method and status code."
    );
    metrics::describe_histogram!(
        HTTP_REQUEST_DURATION,
        metrics::Unit::Seconds,
        "Time from a request's head to its answer's head, by route template and method."
    );
    metrics::describe_histogram!(
        WRITER_BATCH_COMMANDS,
        metrics::Unit::Count,
        "Commands in one write transaction of the writer (group commit)."
    );
    metrics::describe_histogram!(
        WRITER_COMMIT_DURATION,
        metrics::Unit::Seconds,
        "Time of one write transaction of the writer, BEGIN to the end of COMMIT (fsync included)."
    );
    metrics::describe_counter!(
        UPLOAD_ROWS_COMMITTED,
        "Upload rows committed by the writer, applied or reported as failed; its rate is rows per second."
    );
    metrics::describe_gauge!(
        UPLOAD_QUEUE_DEPTH,
        "Uploads not finished yet, by status, read when /metrics is scraped."
    );
}

/// A batch the writer has committed: its size and the time its transaction took.
pub fn writer_batch_committed(commands: usize, upload_rows: usize, elapsed: Duration) {
    metrics::histogram!(WRITER_BATCH_COMMANDS).record(commands as f64);
    metrics::histogram!(WRITER_COMMIT_DURATION).record(elapsed.as_secs_f64());
    if upload_rows > 0 {
        metrics::counter!(UPLOAD_ROWS_COMMITTED).increment(upload_rows as u64);
    }
}

/// The uploads not finished yet, as `/metrics` is scraped.
pub fn upload_queue(in_queue: usize, in_progress: usize) {
    metrics::gauge!(UPLOAD_QUEUE_DEPTH, "status" => "IN_QUEUE").set(in_queue as f64);
    metrics::gauge!(UPLOAD_QUEUE_DEPTH, "status" => "IN_PROGRESS").set(in_progress as f64);
}

/// The method as a label: the standard ones by name, any other as `OTHER`, so a client
/// inventing methods cannot make new series.
fn method_label(method: &Method) -> &'static str {
    const KNOWN: &[Method] = &[
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::OPTIONS,
        Method::CONNECT,
        Method::TRACE,
    ];
    KNOWN
        .iter()
        .find(|m| *m == method)
        .map(|m| m.as_str())
        .unwrap_or("OTHER")
}

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

/// What the writer decided about a store order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderOutcome {
    /// Placed now (answered 201).
    Accepted,
    /// Placed before under the same id (answered 200, R19).
    Replayed,
    /// Refused by the rules (answered 4xx).
    Refused,
}

/// A store order the writer has decided, counted there: its caller may have gone away
/// (the client hung up, so the answer is never sent) and the order still counts.
pub fn order_decided(outcome: OrderOutcome) {
    let counter = match outcome {
        OrderOutcome::Accepted => &METRICS.orders_accepted,
        OrderOutcome::Replayed => &METRICS.orders_replayed,
        OrderOutcome::Refused => &METRICS.orders_refused,
    };
    counter.fetch_add(1, Ordering::Relaxed);
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

    /// Counts one answer to `method path`. Store orders are not counted here but where
    /// the writer decides them ([`order_decided`]), once, whether or not the caller waits.
    pub fn record(&self, method: &Method, path: &str, status: StatusCode) {
        let class = (status.as_u16() / 100).clamp(1, 5) as usize - 1;
        self.responses[class].fetch_add(1, Ordering::Relaxed);
        if method != Method::POST {
            return;
        }
        if path.trim_end_matches('/') == "/v1/uploads" {
            let counter = match status.as_u16() {
                202 => &self.uploads_queued,
                400..=499 => &self.uploads_refused,
                _ => return,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The text of `GET /metrics`: the atomics, then the recorder's figures.
    pub fn render(&self, writer: &crate::service::WriterStats) -> String {
        let mut out = self.render_counters(writer);
        let handle = prometheus();
        // Fold the histogram samples recorded since the last upkeep into their buckets.
        handle.run_upkeep();
        // Without the exporter's blank line after each family: every line of the answer
        // is a comment or a sample.
        for line in handle.render().lines().filter(|l| !l.is_empty()) {
            out.push_str(line);
            out.push('\n');
        }
        out
    }

    /// The figures kept in atomics.
    fn render_counters(&self, writer: &crate::service::WriterStats) -> String {
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
            "# HELP onestock_orders_total Store orders the rules decided: accepted (201), replayed (200, R19), refused by a rule (4xx); counted when decided, also if the client hung up first. Requests refused before the rules (no token, a malformed body) count in onestock_http_requests_total."
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

/// Middleware: counts every answer of the router it wraps, and times it by route. Added
/// with `Router::layer`, it runs after routing, so the route's template (`MatchedPath`,
/// such as `/v1/listings/{sku}`) is known; the fallback's answers are `unmatched`.
pub async fn count_requests(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let route = route_label(&req);
    let response = next.run(req).await;
    let status = response.status();
    METRICS.record(&method, &path, status);
    let method = method_label(&method);
    metrics::counter!(
        HTTP_REQUESTS,
        "route" => route.clone(),
        "method" => method,
        "status" => status.as_str().to_owned(),
    )
    .increment(1);
    metrics::histogram!(HTTP_REQUEST_DURATION, "route" => route, "method" => method)
        .record(started.elapsed().as_secs_f64());
    response
}

/// The route template of a request, or `unmatched`.
pub fn route_label(req: &axum::extract::Request) -> String {
    req.extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invented_methods_share_one_label() {
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        let invented = Method::from_bytes(b"BREW").expect("a token");
        assert_eq!(method_label(&invented), "OTHER");
    }
}

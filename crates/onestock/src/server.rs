//! Putting the service together: open the database, settle the operator's token, start
//! the writer and the upload worker, and serve HTTP on a bound listener (so tests can
//! run the real server on port 0).

use std::collections::VecDeque;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::body::Body;
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use onestock_core::clock::Clock;
use onestock_core::region::Region;
use onestock_store::Database;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tower::ServiceExt;

use crate::http::limit::RateLimiter;
use crate::service::{Service, new_token, token_digest};
use crate::upload::Uploads;

/// The setting that keeps the digest of a generated operator token.
const OPERATOR_TOKEN_SETTING: &str = "operator_token_sha256";

pub struct ServerConfig {
    /// `sqlite:PATH` or `postgres://...`.
    pub database_url: String,
    pub region: Region,
    pub clock: Arc<dyn Clock>,
    /// `ONESTOCK_OPERATOR_TOKEN`; None generates one on first start.
    pub operator_token: Option<String>,
    /// Where upload files are kept until processed.
    pub upload_dir: PathBuf,
    /// Requests per second and token before `RATE_LIMITED`; 0 turns the limit off.
    pub rate_limit_per_second: u32,
}

/// Requests per second and token by default: far above what one storefront or seller
/// tool sends, low enough that a runaway loop cannot take the server for itself.
pub const RATE_LIMIT_DEFAULT: u32 = 5_000;

/// Everything the HTTP handlers need. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub service: Arc<Service>,
    pub uploads: Arc<Uploads>,
    pub limiter: Arc<RateLimiter>,
    /// The address SP-API document URLs name (SPEC 8): `serve --public-url`, else the
    /// listen address (set by `serve_with`), never a request's `Host`.
    pub public_url: Arc<std::sync::OnceLock<String>>,
}

pub struct App {
    pub state: AppState,
    /// A token generated at this start, to be shown once.
    pub generated_operator_token: Option<String>,
}

/// Opens the database (applying migrations) and starts the background workers.
pub async fn build(config: ServerConfig) -> anyhow::Result<App> {
    // Before the writer and the router record anything: figures recorded with no
    // recorder installed are lost.
    crate::metrics::prometheus();
    let url = config.database_url.clone();
    let db = tokio::task::spawn_blocking(move || Database::open(&url))
        .await?
        .with_context(|| format!("open database {}", shown_url(&config.database_url)))?;
    let (digest, generated) = match &config.operator_token {
        Some(t) if !t.trim().is_empty() => (token_digest(t.trim()), None),
        _ => {
            let db2 = db.clone();
            tokio::task::spawn_blocking(move || {
                db2.write(|tx| {
                    if let Some(d) = tx.setting(OPERATOR_TOKEN_SETTING)? {
                        return Ok((d, None));
                    }
                    let token = new_token("op");
                    let d = token_digest(&token);
                    tx.set_setting(OPERATOR_TOKEN_SETTING, &d)?;
                    Ok((d, Some(token)))
                })
            })
            .await?
            .context("store the operator token")?
        }
    };
    let service = Service::start(db, Arc::new(config.region), config.clock, digest);
    let uploads = Uploads::start(service.clone(), config.upload_dir)
        .await
        .context("start the upload worker")?;
    Ok(App {
        state: AppState {
            service,
            uploads,
            limiter: Arc::new(RateLimiter::new(config.rate_limit_per_second)),
            public_url: Arc::new(std::sync::OnceLock::new()),
        },
        generated_operator_token: generated,
    })
}

/// Connections served at once at most. Each costs a file descriptor and a little memory.
/// When all places are taken, a new connection takes the place of the oldest connection
/// that has no request in progress (silent, half-sent head, or idle keep-alive): a flood
/// of such connections cannot lock real clients out. When every connection has a request
/// in progress, the new one is refused at once (see [`refuse`]) instead of the process
/// running out of descriptors, which stops every accept, `/healthz` included. Lowered to
/// the process's open-file limit less [`FDS_RESERVED`] where that is smaller.
pub const CONNECTIONS_MAX: usize = 10_000;
/// File descriptors kept free of connections: database files and connections, upload
/// files being written or read, the listener itself. A quarter of a lower limit.
pub const FDS_RESERVED: usize = 256;
/// Whole request head (request line and headers) within this, or the connection is
/// closed. hyper runs the same timer from the end of one response to the next request's
/// head, so it is also the keep-alive idle timeout. 10 s is far above what any client on a
/// working network needs to send a head, and short enough that a flood of silent or
/// slow-header connections ("slowloris") only ever holds a slot for 10 s.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// After a stop was asked, requests already received get this long to finish; then the
/// connections left are dropped, so a stop takes at most this (plus the writer's drain)
/// even with stuck clients. Below the 10 s a supervisor usually waits before SIGKILL.
pub const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(8);
/// How long a new connection waits for the place of the connection closed for it.
const EVICTION_WAIT: Duration = Duration::from_millis(100);
/// How often a connection that is stopping checks whether it still serves a request;
/// one that does not (idle, silent, or half-sent head) is dropped at the next check.
const SHUTDOWN_CHECK_INTERVAL: Duration = Duration::from_millis(20);
/// Pause after an accept error such as EMFILE ("too many open files"): the error clears
/// only when connections close, so retrying at once would spin a core.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);
/// Refusals and accept errors are logged at most this often, so a flood cannot fill the
/// log.
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(5);
/// The answer to a connection beyond [`CONNECTIONS_MAX`], written without reading the
/// request; then the connection is closed. 503 (the server, not this client, is over its
/// limit) with the SPEC's error shape, `RATE_LIMITED` and `Retry-After` as for a 429.
/// Its head is completed by an `x-request-id` line (`refuse`), as on every answer.
const REFUSAL_HEAD: &str = concat!(
    "HTTP/1.1 503 Service Unavailable\r\n",
    "content-type: application/json\r\n",
    "retry-after: 1\r\n",
    "connection: close\r\n",
    "content-length: 106\r\n",
);
const REFUSAL_BODY: &str = "{\"error\":{\"code\":\"RATE_LIMITED\",\"message\":\"The server has too many open connections; retry in a moment.\"}}";
const _: () = assert!(REFUSAL_BODY.len() == 106, "content-length of REFUSAL_HEAD");

/// The connection limits of [`serve_with`]. [`Default`] gives the constants above; tests
/// make them small.
#[derive(Clone, Debug)]
pub struct ConnectionLimits {
    /// Connections served at once; more are refused with 503.
    pub max_connections: usize,
    /// Time for a request head, and keep-alive idle time.
    pub header_read_timeout: Duration,
    /// Time in-flight requests get after a stop was asked.
    pub shutdown_deadline: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> ConnectionLimits {
        let fds = open_files_limit()
            .map(|n| n - FDS_RESERVED.min(n / 4))
            .unwrap_or(CONNECTIONS_MAX);
        ConnectionLimits {
            max_connections: CONNECTIONS_MAX.min(fds).max(1),
            header_read_timeout: HEADER_READ_TIMEOUT,
            shutdown_deadline: SHUTDOWN_DEADLINE,
        }
    }
}

/// The soft limit of open files of this process (Linux: `/proc/self/limits`); None where
/// it cannot be read or is unlimited.
fn open_files_limit() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line.trim_start_matches("Max open files")
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Serves the API on `listener` until `shutdown` completes, with the default
/// [`ConnectionLimits`].
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    serve_with(listener, state, shutdown, ConnectionLimits::default()).await
}

/// Serves the API on `listener` (HTTP/1.1, keep-alive) until `shutdown` completes; then
/// stops accepting, lets the requests already received finish (long polls are answered
/// at once), drops idle and half-sent connections, and returns within
/// `limits.shutdown_deadline`, dropping whatever connection is still open by then.
pub async fn serve_with(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
    limits: ConnectionLimits,
) -> anyhow::Result<()> {
    let service = state.service.clone();
    if let Ok(addr) = listener.local_addr() {
        // Unless `--public-url` named the address already.
        let _ = state.public_url.set(format!("http://{addr}"));
    }
    let router = crate::http::router(state);
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    let http = Arc::new(http);
    let mut connections: JoinSet<()> = JoinSet::new();
    let mut slots = Slots::default();
    let mut refused: u64 = 0;
    let mut last_log: Option<Instant> = None;
    let log_now = |last: &mut Option<Instant>| {
        let now = Instant::now();
        let due = last.is_none_or(|t| now.duration_since(t) >= REFUSAL_LOG_INTERVAL);
        if due {
            *last = Some(now);
        }
        due
    };
    let shutdown = std::pin::pin!(shutdown);
    let mut shutdown = shutdown;
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            // Reap finished connections so the set does not grow.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let mut permit = permits.clone().try_acquire_owned().ok();
                    if permit.is_none() && slots.evict_oldest_idle(limits.max_connections) {
                        permit = tokio::time::timeout(EVICTION_WAIT, permits.clone().acquire_owned())
                            .await
                            .ok()
                            .and_then(Result::ok);
                    }
                    if let Some(permit) = permit {
                        let slot = slots.add();
                        let router = router.clone();
                        let http = http.clone();
                        let stop = stop_rx.clone();
                        connections.spawn(async move {
                            let _open = crate::metrics::OpenConnection::new();
                            serve_connection(stream, router, &http, stop, slot, permit).await;
                        });
                    } else {
                        refused += 1;
                        if log_now(&mut last_log) {
                            tracing::warn!(
                                limit = limits.max_connections,
                                refused,
                                "connection limit reached with a request in progress on every connection; refusing new connections with 503"
                            );
                        }
                        refuse(stream);
                    }
                }
                Err(e) => {
                    // Per-connection failures (reset before accept) need no pause;
                    // resource exhaustion (EMFILE, ENFILE, ENOBUFS) does.
                    if !is_connection_error(&e) {
                        if log_now(&mut last_log) {
                            tracing::error!(error = %e, "accept failed; pausing before the next accept");
                        }
                        tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    }
                }
            },
        }
    }
    drop(listener);
    let started = Instant::now();
    tracing::info!(
        connections = connections.len(),
        "stopping: no new connections; finishing the requests in flight"
    );
    service.begin_shutdown();
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(limits.shutdown_deadline, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            connections = connections.len(),
            "stop deadline reached; dropping the connections still open"
        );
        connections.shutdown().await;
    }
    tracing::info!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "HTTP stopped"
    );
    Ok(())
}

/// Errors of one connection that came and went before it was accepted.
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset | Interrupted
    )
}

/// Answers a connection beyond the limit with a short 503 and closes it, without a task
/// or a wait: the socket is fresh, so its send buffer takes the answer at once. What the
/// client already sent is read first (best effort) so that closing does not reset the
/// connection before the client reads the answer.
fn refuse(stream: TcpStream) {
    use std::io::{Read, Write};
    let Ok(mut stream) = stream.into_std() else {
        return;
    };
    let mut scratch = [0u8; 4096];
    let _ = stream.read(&mut scratch);
    let id = crate::request_id::generate();
    let answer = format!("{REFUSAL_HEAD}x-request-id: {id}\r\n\r\n{REFUSAL_BODY}");
    let _ = stream.write(answer.as_bytes());
    let _ = stream.shutdown(std::net::Shutdown::Write);
}

/// One connection: HTTP/1.1 until the client goes, the head timeout fires, or a stop is
/// asked. On a stop, a request in progress finishes (its answer closes the connection);
/// a connection without one is dropped.
async fn serve_connection(
    stream: TcpStream,
    router: axum::Router,
    http: &hyper::server::conn::http1::Builder,
    mut stop: watch::Receiver<bool>,
    slot: Arc<Slot>,
    _permit: OwnedSemaphorePermit,
) {
    let _ = stream.set_nodelay(true);
    let _ended = Ended(slot.clone());
    let counter = slot.clone();
    let unread = Arc::new(crate::unread_body::Unread::default());
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let guard = ActiveRequest::new(counter.clone());
        let router = router.clone();
        let unread = unread.clone();
        async move {
            let expects_continue = req.headers().contains_key(axum::http::header::EXPECT);
            let response = router.oneshot(unread.watch(req)).await?;
            let response = unread.settle(expects_continue, response).await;
            Ok::<_, std::convert::Infallible>(response.map(|body| {
                Body::new(Counted {
                    body,
                    _guard: guard,
                })
            }))
        }
    });
    let conn = http.serve_connection(TokioIo::new(stream), service);
    let mut conn = std::pin::pin!(conn);
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            _ = async { let _ = stop.wait_for(|stopping| *stopping).await; } => break,
            _ = slot.evict.notified() => {
                // Its place is wanted by a new connection; a request that started
                // meanwhile keeps it.
                if slot.active.load(Ordering::Acquire) == 0 {
                    return;
                }
            }
        }
    }
    // Keep-alive off: an idle connection closes now, a busy one after its answer.
    conn.as_mut().graceful_shutdown();
    let mut check = tokio::time::interval(SHUTDOWN_CHECK_INTERVAL);
    loop {
        tokio::select! {
            _ = conn.as_mut() => return,
            _ = check.tick() => {
                if slot.active.load(Ordering::Acquire) == 0 {
                    return;
                }
            }
        }
    }
}

/// One served connection as the accept loop sees it.
#[derive(Default)]
struct Slot {
    /// Requests in progress: from the head received to the answer's body sent.
    active: AtomicUsize,
    /// Close now: a new connection needs this place.
    evict: Notify,
    /// The connection's task has ended.
    ended: AtomicBool,
}

/// Marks the slot ended when the connection's task ends, however it ends.
struct Ended(Arc<Slot>);

impl Drop for Ended {
    fn drop(&mut self) {
        self.0.ended.store(true, Ordering::Release);
    }
}

/// The connections in the order they were accepted (only the accept loop touches it).
#[derive(Default)]
struct Slots {
    order: VecDeque<Arc<Slot>>,
}

impl Slots {
    fn add(&mut self) -> Arc<Slot> {
        let slot = Arc::new(Slot::default());
        self.order.push_back(slot.clone());
        slot
    }

    /// Tells the oldest connection without a request in progress to close; false when
    /// every connection has one.
    fn evict_oldest_idle(&mut self, max_connections: usize) -> bool {
        if self.order.len() > 2 * max_connections {
            self.order.retain(|s| !s.ended.load(Ordering::Acquire));
        }
        while self
            .order
            .front()
            .is_some_and(|s| s.ended.load(Ordering::Acquire))
        {
            self.order.pop_front();
        }
        let idle = self.order.iter().position(|s| {
            !s.ended.load(Ordering::Acquire) && s.active.load(Ordering::Acquire) == 0
        });
        match idle.and_then(|i| self.order.remove(i)) {
            Some(slot) => {
                slot.evict.notify_one();
                true
            }
            None => false,
        }
    }
}

/// Counts a request as in progress from its head until its answer's body is sent.
struct ActiveRequest(Arc<Slot>);

impl ActiveRequest {
    fn new(slot: Arc<Slot>) -> ActiveRequest {
        slot.active.fetch_add(1, Ordering::AcqRel);
        ActiveRequest(slot)
    }
}

impl Drop for ActiveRequest {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::AcqRel);
    }
}

/// An answer's body that keeps its request counted until the body is done.
struct Counted {
    body: Body,
    _guard: ActiveRequest,
}

impl HttpBody for Counted {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A database URL as it may be printed: a password in it is replaced by `***`.
pub fn shown_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((user, host)) if user.contains(':') => {
            let name = user.split(':').next().unwrap_or_default();
            format!("{scheme}://{name}:***@{host}")
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod shown_url_tests {
    use super::shown_url;

    #[test]
    fn a_password_is_never_shown() {
        assert_eq!(
            shown_url("postgres://app:s3cret@db.example:5432/onestock"),
            "postgres://app:***@db.example:5432/onestock"
        );
        assert_eq!(
            shown_url("postgres://postgres@127.0.0.1/test"),
            "postgres://postgres@127.0.0.1/test"
        );
        assert_eq!(shown_url("sqlite:onestock.db"), "sqlite:onestock.db");
    }
}

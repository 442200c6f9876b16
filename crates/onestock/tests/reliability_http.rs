//! Reliability at the connection and request level (issue 7, defects 4, 7, 8 and 9),
//! through the real server: truncated and badly chunked upload bodies, floods of idle
//! and slow-header connections, the connection limit, SIGTERM under load (the real
//! binary), and the upload size and queue quotas. Raw TCP where a well-behaved client
//! could not send what is tested.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{Backend, Client, OPERATOR_TOKEN, usd};
use onestock::server::{ConnectionLimits, ServerConfig, build, serve_with};
use onestock::upload::{UPLOAD_BYTES_MAX, UPLOADS_QUEUED_PER_SELLER_MAX};
use onestock_core::clock::ManualClock;
use serde_json::{Value, json};

// ------------------------------------------------------------------------ harness

/// The real server on port 0 with limits of the test's choosing, and what the tests look
/// at behind it: its database and its upload folder.
struct Server {
    base: String,
    addr: SocketAddr,
    database_url: String,
    upload_dir: PathBuf,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    /// Dropped after the server is stopped.
    _postgres: Option<common::PgDatabase>,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn start(backend: Backend, limits: ConnectionLimits) -> Option<Server> {
        let dir = tempfile::tempdir().expect("temp dir");
        let (database_url, postgres) = match backend {
            Backend::Sqlite => (
                format!("sqlite:{}", dir.path().join("t.db").display()),
                None,
            ),
            Backend::Postgres => {
                let db = common::PgDatabase::create().await?;
                (db.url.clone(), Some(db))
            }
        };
        let upload_dir = dir.path().join("uploads");
        let app = build(ServerConfig {
            database_url: database_url.clone(),
            region: common::default_region(),
            clock: Arc::new(ManualClock::new(common::START)),
            operator_token: Some(OPERATOR_TOKEN.into()),
            upload_dir: upload_dir.clone(),
            rate_limit_per_second: 0,
        })
        .await
        .expect("build the server");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(serve_with(
            listener,
            app.state,
            async {
                let _ = rx.await;
            },
            limits,
        ));
        Some(Server {
            base: format!("http://{addr}"),
            addr,
            database_url,
            upload_dir,
            shutdown: Some(tx),
            handle: Some(handle),
            _postgres: postgres,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .expect("http client"),
            _dir: dir,
        })
    }

    fn client(&self, token: Option<&str>) -> Client {
        Client {
            http: self.http.clone(),
            base: self.base.clone(),
            token: token.map(str::to_owned),
            seller_id: Value::Null,
        }
    }

    async fn new_seller(&self, name: &str) -> Client {
        let r = self
            .client(Some(OPERATOR_TOKEN))
            .post("/v1/sellers", json!({ "name": name }))
            .await;
        assert_eq!(r.status, 201, "create seller: {}", r.text);
        Client {
            seller_id: r.body["seller_id"].clone(),
            ..self.client(r.body["token"].as_str())
        }
    }

    /// Files in the upload folder: received, not yet processed (or partial).
    fn files(&self) -> usize {
        std::fs::read_dir(&self.upload_dir)
            .map(|d| d.filter_map(Result::ok).count())
            .unwrap_or(0)
    }

    /// Uploads the database holds as not DONE or FATAL.
    async fn unfinished_uploads(&self) -> usize {
        let url = self.database_url.clone();
        tokio::task::spawn_blocking(move || {
            let db = onestock_store::Database::open(&url).expect("open the database");
            db.read(|tx| tx.unfinished_uploads()).expect("read").len()
        })
        .await
        .expect("join")
    }

    /// Asks the server to stop and waits for `serve_with` to return.
    async fn stop(&mut self) -> Duration {
        let started = Instant::now();
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            let r = tokio::time::timeout(Duration::from_secs(15), h)
                .await
                .expect("serve returns within its deadline")
                .expect("join");
            assert!(r.is_ok(), "serve: {r:?}");
        }
        started.elapsed()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            h.abort();
        }
    }
}

/// Limits small enough for tests.
fn quick_limits() -> ConnectionLimits {
    ConnectionLimits {
        header_read_timeout: Duration::from_millis(600),
        shutdown_deadline: Duration::from_secs(3),
        ..ConnectionLimits::default()
    }
}

/// An answer read off a raw connection.
#[derive(Debug)]
struct RawAnswer {
    status: u16,
    headers: String,
    body: String,
}

impl RawAnswer {
    fn code(&self) -> String {
        serde_json::from_str::<Value>(&self.body)
            .ok()
            .and_then(|v| v["error"]["code"].as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    fn header(&self, name: &str) -> Option<String> {
        self.headers.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    s
}

/// Reads one answer: the head, then `content-length` bytes (or to the end).
fn read_answer(s: &mut TcpStream) -> Option<RawAnswer> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let mut answer = RawAnswer {
        status,
        headers: head,
        body: String::new(),
    };
    let length: Option<usize> = answer.header("content-length").and_then(|v| v.parse().ok());
    let mut body = buf[head_end + 4..].to_vec();
    while length.is_none_or(|n| body.len() < n) {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
        }
    }
    answer.body = String::from_utf8_lossy(&body).into_owned();
    Some(answer)
}

/// Whether the server closed the connection (end of stream or reset) within `within`.
fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).expect("read timeout");
    let mut b = [0u8; 1024];
    loop {
        match s.read(&mut b) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false;
            }
            Err(_) => return true,
        }
    }
}

fn upload_head(addr: SocketAddr, token: &str, extra: &str) -> String {
    format!(
        "POST /v1/uploads?store=US HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {token}\r\ncontent-type: text/tab-separated-values\r\n{extra}\r\n"
    )
}

fn token(c: &Client) -> String {
    c.token.clone().expect("a seller token")
}

/// Runs blocking socket work off the async threads.
async fn blocking<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    tokio::task::spawn_blocking(f).await.expect("join")
}

const GOOD_FILE: &str = "sku\tproduct-id\tproduct-id-type\tprice\tquantity\n";

// ------------------------------------------------------ defect 4: truncated bodies

async fn truncated_upload_body_is_400_and_nothing_is_queued(backend: Backend) {
    let Some(server) = Server::start(backend, quick_limits()).await else {
        return;
    };
    let seller = server.new_seller("Truncated").await;
    let (addr, t) = (server.addr, token(&seller));
    let cases: Vec<(&str, String)> = vec![
        (
            "Content-Length 100, 13 bytes, then the client closes",
            format!(
                "{}{}",
                upload_head(addr, &t, "content-length: 100\r\n"),
                "sku\tquantity\n"
            ),
        ),
        (
            "chunk size zz",
            format!(
                "{}zz\r\nsku\tquantity\n\r\n0\r\n\r\n",
                upload_head(addr, &t, "transfer-encoding: chunked\r\n")
            ),
        ),
        (
            "chunked, the client closes before the last chunk",
            format!(
                "{}d\r\nsku\tquantity\n\r\n",
                upload_head(addr, &t, "transfer-encoding: chunked\r\n")
            ),
        ),
    ];
    for (what, request) in cases {
        let answer = blocking(move || {
            let mut s = connect(addr);
            s.write_all(request.as_bytes()).expect("send");
            // The client is done sending: the rest of the body never comes.
            let _ = s.shutdown(std::net::Shutdown::Write);
            read_answer(&mut s)
        })
        .await;
        let answer = answer.unwrap_or_else(|| panic!("{what}: no answer"));
        assert_eq!(
            (answer.status, answer.code().as_str()),
            (400, "INVALID_REQUEST"),
            "{what}: {answer:?}"
        );
        assert!(
            answer.body.contains("did not arrive whole"),
            "{what}: a message that says what happened: {}",
            answer.body
        );
    }
    // Nothing queued, no file left behind.
    assert_eq!(server.unfinished_uploads().await, 0, "nothing queued");
    assert_eq!(server.files(), 0, "partial files removed");
    // A whole body still goes through.
    let r = seller
        .raw(
            reqwest::Method::POST,
            "/v1/uploads?store=US",
            Some(GOOD_FILE.as_bytes().to_vec()),
            "text/tab-separated-values",
            &[],
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
}

/// A request dropped while its body streams (the client vanishes without closing
/// cleanly, here: the connection reset) leaves no file and no upload.
async fn upload_cut_mid_body_leaves_nothing(backend: Backend) {
    let Some(server) = Server::start(backend, quick_limits()).await else {
        return;
    };
    let seller = server.new_seller("Cut").await;
    let (addr, t) = (server.addr, token(&seller));
    blocking(move || {
        let mut s = connect(addr);
        let head = upload_head(addr, &t, "content-length: 100000\r\n");
        s.write_all(head.as_bytes()).expect("send");
        s.write_all(&[b'x'; 5000]).expect("send");
        std::thread::sleep(Duration::from_millis(200));
        drop(s);
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.files() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(server.files(), 0, "the partial file is removed");
    assert_eq!(server.unfinished_uploads().await, 0);
}

// -------------------------------------------------------- defect 9: upload quotas

async fn declared_length_above_the_limit_is_413_before_the_body(backend: Backend) {
    let Some(server) = Server::start(backend, quick_limits()).await else {
        return;
    };
    let seller = server.new_seller("Big").await;
    let (addr, t) = (server.addr, token(&seller));
    let started = Instant::now();
    let answer = blocking(move || {
        let mut s = connect(addr);
        let head = upload_head(
            addr,
            &t,
            &format!("content-length: {}\r\n", UPLOAD_BYTES_MAX + 1),
        );
        // The head only: not one byte of the body is sent.
        s.write_all(head.as_bytes()).expect("send");
        read_answer(&mut s)
    })
    .await
    .expect("an answer before any body byte");
    assert_eq!(
        (answer.status, answer.code().as_str()),
        (413, "PAYLOAD_TOO_LARGE"),
        "{answer:?}"
    );
    // Too large to read away (unread_body.rs): the answer says the connection closes.
    assert_eq!(
        answer.header("connection").as_deref(),
        Some("close"),
        "{answer:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    // The same with Expect: 100-continue: the refusal comes instead of the 100.
    let t = token(&seller);
    let answer = blocking(move || {
        let mut s = connect(addr);
        let head = upload_head(
            addr,
            &t,
            "content-length: 99999999999\r\nexpect: 100-continue\r\n",
        );
        s.write_all(head.as_bytes()).expect("send");
        read_answer(&mut s)
    })
    .await
    .expect("an answer");
    assert_eq!(answer.status, 413, "{answer:?}");
    assert_eq!(server.files(), 0);
    assert_eq!(server.unfinished_uploads().await, 0);
}

// ------------------------- refusals before the body: the connection says it closes

/// A refusal answered before its body is read (an unknown feed-document URL, an upload
/// without a token) reads a small rest of the body away before answering, so the client
/// still sending gets the refusal (not "broken pipe") and its connection stays usable:
/// before, a pooling client reused the connection hyper was closing and its next request
/// failed with "connection closed before message completed" (seen in CI).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_before_the_body_reads_it_away_and_keeps_the_connection() {
    let Some(server) = Server::start(Backend::Sqlite, quick_limits()).await else {
        return;
    };
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .timeout(Duration::from_secs(20))
        .build()
        .expect("http client");
    let big = vec![b'x'; 1 << 20];
    for round in 0..20 {
        let refused = http
            .put(format!("{}/spapi/feed-documents/up_nope", server.base))
            .body(big.clone())
            .send()
            .await
            .expect("put answered");
        assert_eq!(refused.status(), 403, "round {round}");
        assert!(
            refused.headers().get("connection").is_none(),
            "round {round}"
        );
        let refused = http
            .post(format!("{}/v1/uploads?store=US", server.base))
            .body(big.clone())
            .send()
            .await
            .expect("upload answered");
        assert_eq!(refused.status(), 401, "round {round}");
        let next = http
            .get(format!("{}/healthz", server.base))
            .send()
            .await
            .expect("the next request on the pool is answered");
        assert_eq!(next.status(), 200, "round {round}");
    }
    let read = http
        .post(format!("{}/v1/sellers", server.base))
        .bearer_auth(OPERATOR_TOKEN)
        .json(&json!({"name": "Kept alive"}))
        .send()
        .await
        .expect("create seller");
    assert_eq!(read.status(), 201);
    assert!(
        read.headers().get("connection").is_none(),
        "a read body keeps the connection"
    );
}

/// Opens an upload whose body is not finished (the handler has taken its place in the
/// quota and is writing the file), and waits until its file exists.
async fn open_partial_upload(server: &Server, seller: &Client, declared: u64) -> TcpStream {
    let (addr, t) = (server.addr, token(seller));
    let before = server.files();
    let s = blocking(move || {
        let mut s = connect(addr);
        let head = upload_head(addr, &t, &format!("content-length: {declared}\r\n"));
        s.write_all(head.as_bytes()).expect("send");
        s.write_all(GOOD_FILE.as_bytes()).expect("send");
        s
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.files() <= before {
        assert!(
            Instant::now() < deadline,
            "the partial upload's file appears"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    s
}

async fn upload_queue_quota_is_429_with_retry_after(backend: Backend) {
    let Some(server) = Server::start(backend, quick_limits()).await else {
        return;
    };
    let seller = server.new_seller("Busy").await;
    let other = server.new_seller("Other").await;
    let mut open = Vec::new();
    for _ in 0..UPLOADS_QUEUED_PER_SELLER_MAX {
        open.push(open_partial_upload(&server, &seller, 1_000_000).await);
    }
    let over = seller
        .raw(
            reqwest::Method::POST,
            "/v1/uploads?store=US",
            Some(GOOD_FILE.as_bytes().to_vec()),
            "text/tab-separated-values",
            &[],
        )
        .await;
    assert_eq!(
        (over.status, over.code()),
        (429, "RATE_LIMITED"),
        "{}",
        over.text
    );
    let retry: u64 = over
        .headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!(retry > 0);
    let message = over.body["error"]["message"].as_str().unwrap_or("");
    assert!(message.contains("wait"), "says what to do: {message}");
    // Another seller is not held back by this one's queue.
    let r = other
        .raw(
            reqwest::Method::POST,
            "/v1/uploads?store=US",
            Some(GOOD_FILE.as_bytes().to_vec()),
            "text/tab-separated-values",
            &[],
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    // The unfinished ones go away (their files too), and the seller may send again.
    drop(open);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = seller
            .raw(
                reqwest::Method::POST,
                "/v1/uploads?store=US",
                Some(GOOD_FILE.as_bytes().to_vec()),
                "text/tab-separated-values",
                &[],
            )
            .await;
        if r.status == 202 {
            break;
        }
        assert_eq!(r.status, 429, "{}", r.text);
        assert!(Instant::now() < deadline, "the quota frees up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn upload_bytes_quota_is_429(backend: Backend) {
    let Some(server) = Server::start(backend, quick_limits()).await else {
        return;
    };
    let seller = server.new_seller("Heavy").await;
    // Two files at the largest size being received fill the seller's byte quota.
    let _a = open_partial_upload(&server, &seller, UPLOAD_BYTES_MAX).await;
    let _b = open_partial_upload(&server, &seller, UPLOAD_BYTES_MAX).await;
    let over = seller
        .raw(
            reqwest::Method::POST,
            "/v1/uploads?store=US",
            Some(GOOD_FILE.as_bytes().to_vec()),
            "text/tab-separated-values",
            &[],
        )
        .await;
    assert_eq!(
        (over.status, over.code()),
        (429, "RATE_LIMITED"),
        "{}",
        over.text
    );
    assert!(over.headers.get("retry-after").is_some());
}

// --------------------------------------------------- defect 7: connections

/// How long `GET /healthz` takes on a new connection (the flood's connections are all
/// new too).
async fn healthz_time(base: &str) -> Duration {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    let started = Instant::now();
    let r = http
        .get(format!("{base}/healthz"))
        .send()
        .await
        .expect("healthz answers");
    assert_eq!(r.status(), 200);
    started.elapsed()
}

/// Silent connections: connected, nothing sent.
fn silent_flood(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|_| TcpStream::connect(addr).expect("connect"))
        .collect()
}

/// Connections that sent part of a head and wait.
fn slow_header_flood(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|_| {
            let mut s = TcpStream::connect(addr).expect("connect");
            let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n");
            s
        })
        .collect()
}

/// The flood: more connections than the server has descriptors (it runs with the usual
/// default `ulimit -n 1024`), a fifth of them slow-header ones.
const FLOOD_SILENT: usize = 2_000;
const FLOOD_SLOW: usize = 500;
const FLOOD_SERVER_OPEN_FILES: u32 = 1024;

/// Connects up to `n` times, each within 500 ms (a server that stopped accepting lets
/// connects hang in SYN retries); gives up after a few failures in a row.
fn flood_connect(addr: SocketAddr, n: usize, head: &[u8]) -> Vec<TcpStream> {
    let mut v = Vec::with_capacity(n);
    let mut failures = 0;
    while v.len() < n && failures < 5 {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(500)) {
            Ok(mut s) => {
                let _ = s.write_all(head);
                v.push(s);
                failures = 0;
            }
            Err(_) => failures += 1,
        }
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_answers_within_a_second_under_a_connection_flood() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut bin = start_binary_with_open_files(dir.path(), FLOOD_SERVER_OPEN_FILES, None);
    let base = bin.base.clone();
    let addr: SocketAddr = base.trim_start_matches("http://").parse().expect("address");
    let flood = blocking(move || {
        let mut v = flood_connect(addr, FLOOD_SILENT, b"");
        v.extend(flood_connect(
            addr,
            FLOOD_SLOW,
            b"GET /healthz HTTP/1.1\r\nhost: x\r\n",
        ));
        v
    })
    .await;
    let stop = Arc::new(AtomicBool::new(false));
    // One header line every 100 ms on the slow ones, as a slowloris client does.
    let trickle = {
        let stop = stop.clone();
        let mut slow: Vec<TcpStream> = flood
            .iter()
            .skip(FLOOD_SILENT)
            .filter_map(|s| s.try_clone().ok())
            .collect();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                for s in &mut slow {
                    let _ = s.write_all(b"x-slow: 1\r\n");
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let mut worst = Duration::ZERO;
    for _ in 0..20 {
        worst = worst.max(healthz_time(&base).await);
    }
    stop.store(true, Ordering::Relaxed);
    let _ = trickle.join();
    println!(
        "flood of {} connections ({FLOOD_SILENT} silent, {FLOOD_SLOW} slow-header) on a server \
         with {FLOOD_SERVER_OPEN_FILES} descriptors: worst /healthz {worst:?}",
        flood.len()
    );
    assert_eq!(
        flood.len(),
        FLOOD_SILENT + FLOOD_SLOW,
        "every connection taken"
    );
    assert!(worst < Duration::from_secs(1), "worst /healthz {worst:?}");
    drop(flood);
    bin.signal("TERM");
    let (status, took) = blocking(move || bin.wait(Duration::from_secs(12))).await;
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_slow_and_idle_connections_are_closed_after_the_header_timeout() {
    let Some(server) = Server::start(Backend::Sqlite, quick_limits()).await else {
        return;
    };
    let addr = server.addr;
    let timeout = quick_limits().header_read_timeout;
    blocking(move || {
        let started = Instant::now();
        let mut silent = connect(addr);
        let mut slow = connect(addr);
        // A slowloris: a header line every 100 ms, never the end of the head.
        slow.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")
            .expect("send");
        let mut slow_closed = false;
        slow.set_read_timeout(Some(Duration::from_millis(100)))
            .expect("t");
        while started.elapsed() < timeout * 5 {
            if slow.write_all(b"x-slow: 1\r\n").is_err()
                || closed_within(&mut slow, Duration::from_millis(100))
            {
                slow_closed = true;
                break;
            }
        }
        let slow_at = started.elapsed();
        assert!(slow_closed, "the slow-header connection is closed");
        assert!(
            slow_at >= timeout - Duration::from_millis(100),
            "not before the timeout: {slow_at:?}"
        );
        assert!(
            closed_within(&mut silent, timeout * 3),
            "the silent connection is closed"
        );
        // Keep-alive works, and an idle kept-alive connection is closed after the timeout.
        let mut kept = connect(addr);
        for _ in 0..3 {
            kept.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
                .expect("send");
            let a = read_answer(&mut kept).expect("an answer on the same connection");
            assert_eq!(a.status, 200);
        }
        let idle = Instant::now();
        assert!(
            closed_within(&mut kept, timeout * 3),
            "the idle connection is closed"
        );
        assert!(idle.elapsed() >= timeout - Duration::from_millis(100));
    })
    .await;
}

/// Limits with 50 places and no head timeout to speak of: what holds a place is seen.
fn fifty_places() -> ConnectionLimits {
    ConnectionLimits {
        max_connections: 50,
        header_read_timeout: Duration::from_secs(30),
        ..quick_limits()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_the_limit_a_new_connection_takes_the_place_of_an_idle_one() {
    let Some(server) = Server::start(Backend::Sqlite, fifty_places()).await else {
        return;
    };
    let addr = server.addr;
    // Ten times the limit in silent and half-sent connections.
    let flood = blocking(move || {
        let mut v = silent_flood(addr, 400);
        v.extend(slow_header_flood(addr, 100));
        v
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut worst = Duration::ZERO;
    for _ in 0..20 {
        worst = worst.max(healthz_time(&server.base).await);
    }
    println!("500 idle connections on 50 places: worst /healthz {worst:?}");
    assert!(worst < Duration::from_secs(1), "worst /healthz {worst:?}");
    drop(flood);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_the_limit_with_every_connection_busy_new_ones_are_refused_with_503() {
    let Some(server) = Server::start(Backend::Sqlite, fifty_places()).await else {
        return;
    };
    let seller = server.new_seller("Poller").await;
    let (addr, t) = (server.addr, token(&seller));
    // Fifty long polls: a request in progress on every place.
    let busy = blocking(move || {
        (0..50)
            .map(|_| {
                let mut s = connect(addr);
                let head = format!(
                    "GET /v1/events?after=0&wait=20 HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {t}\r\n\r\n"
                );
                s.write_all(head.as_bytes()).expect("send");
                s
            })
            .collect::<Vec<_>>()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (answer, took) = blocking(move || {
        let started = Instant::now();
        let mut s = connect(addr);
        let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n");
        (read_answer(&mut s), started.elapsed())
    })
    .await;
    let answer = answer.expect("a refusal, not silence");
    assert_eq!(answer.status, 503, "{answer:?}");
    assert_eq!(answer.header("retry-after").as_deref(), Some("1"));
    assert_eq!(answer.code(), "RATE_LIMITED");
    assert!(took < Duration::from_secs(1), "refused promptly: {took:?}");
    drop(busy);
    // Their places free up as they close.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = reqwest::get(format!("{}/healthz", server.base)).await;
        if r.as_ref().is_ok_and(|r| r.status() == 200) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "served again after the flood: {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A stop with idle, silent and half-sent connections open, and a long poll waiting,
/// returns at once; the long poll is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_closes_idle_connections_and_answers_long_polls() {
    let limits = ConnectionLimits {
        header_read_timeout: Duration::from_secs(30),
        shutdown_deadline: Duration::from_secs(8),
        ..ConnectionLimits::default()
    };
    let Some(mut server) = Server::start(Backend::Sqlite, limits).await else {
        return;
    };
    let seller = server.new_seller("Poller").await;
    let addr = server.addr;
    let held = blocking(move || {
        let mut v = silent_flood(addr, 20);
        v.extend(slow_header_flood(addr, 20));
        let mut kept = connect(addr);
        kept.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
            .expect("send");
        assert_eq!(read_answer(&mut kept).map(|a| a.status), Some(200));
        v.push(kept);
        v
    })
    .await;
    let poll = tokio::spawn(async move {
        let started = Instant::now();
        let r = seller.get("/v1/events?after=0&wait=30").await;
        (r.status, started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let took = server.stop().await;
    assert!(took < Duration::from_secs(2), "stop took {took:?}");
    let (status, waited) = poll.await.expect("join");
    assert_eq!(status, 200);
    assert!(
        waited < Duration::from_secs(5),
        "long poll answered at the stop: {waited:?}"
    );
    drop(held);
}

// ------------------------------------------------ defect 8: SIGTERM, real binary

/// The `onestock` binary serving on a free port.
struct Binary {
    child: Child,
    base: String,
}

fn start_binary(dir: &std::path::Path) -> Binary {
    start_binary_with(dir, Command::new(env!("CARGO_BIN_EXE_onestock")))
}

/// The binary under a shell that lowers its open-file limit to `fds`, with
/// `--max-connections` when given (above `fds`, accepts fail with EMFILE).
fn start_binary_with_open_files(
    dir: &std::path::Path,
    fds: u32,
    max_connections: Option<u32>,
) -> Binary {
    let extra = max_connections
        .map(|n| format!(" --max-connections {n}"))
        .unwrap_or_default();
    let mut sh = Command::new("sh");
    sh.args([
        "-c",
        &format!("ulimit -n {fds} && exec \"$0\" \"$@\"{extra}"),
        env!("CARGO_BIN_EXE_onestock"),
    ]);
    start_binary_with(dir, sh)
}

fn start_binary_with(dir: &std::path::Path, mut command: Command) -> Binary {
    let mut child = command
        .args(["serve", "--listen", "127.0.0.1:0", "--rate-limit", "0"])
        .env(
            "ONESTOCK_DATABASE_URL",
            format!("sqlite:{}", dir.join("bin.db").display()),
        )
        .env("ONESTOCK_UPLOAD_DIR", dir.join("uploads"))
        .env("ONESTOCK_OPERATOR_TOKEN", OPERATOR_TOKEN)
        .env("RUST_LOG", "onestock=info")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the binary");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            println!("[onestock] {line}");
            if let Some(rest) = line.strip_prefix("onestock serving on ") {
                let base = rest.split_whitespace().next().unwrap_or("").to_owned();
                let _ = tx.send(base);
            }
        }
    });
    let base = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the binary says where it serves");
    Binary { child, base }
}

impl Binary {
    fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill -{name}");
    }

    /// Waits for the exit, at most `max`: the exit status and the time taken.
    fn wait(&mut self, max: Duration) -> (Option<std::process::ExitStatus>, Duration) {
        let started = Instant::now();
        while started.elapsed() < max {
            if let Ok(Some(status)) = self.child.try_wait() {
                return (Some(status), started.elapsed());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        (None, started.elapsed())
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn binary_client(base: &str, token: Option<&str>) -> Client {
    Client {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .expect("client"),
        base: base.to_owned(),
        token: token.map(str::to_owned),
        seller_id: Value::Null,
    }
}

/// CPU time (user and system) of a process, from `/proc/PID/stat`, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field(11) + field(12)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_errors_emfile_neither_kill_nor_spin_the_server() {
    if !std::path::Path::new("/proc/self/stat").exists() {
        println!("skipped: no /proc");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let mut bin = start_binary_with_open_files(dir.path(), 128, Some(5_000));
    let addr: SocketAddr = bin
        .base
        .trim_start_matches("http://")
        .parse()
        .expect("address");
    // More connections than the server has descriptors: the kernel completes them,
    // the server's accepts fail with EMFILE.
    let flood = blocking(move || silent_flood(addr, 300)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pid = bin.child.id();
    let before = cpu_ticks(pid);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let spent = cpu_ticks(pid).saturating_sub(before);
    println!("server CPU while out of descriptors: {spent} ticks in 1 s");
    // Clock ticks are 1/100 s: a spinning accept loop would spend about 100.
    assert!(spent < 30, "the accept loop spins: {spent} ticks in 1 s");
    assert!(
        matches!(bin.child.try_wait(), Ok(None)),
        "the server is still running"
    );
    drop(flood);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = reqwest::get(format!("{}/healthz", bin.base)).await;
        if r.as_ref().is_ok_and(|r| r.status() == 200) {
            break;
        }
        assert!(Instant::now() < deadline, "served again: {r:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bin.signal("TERM");
    let (status, _) = blocking(move || bin.wait(Duration::from_secs(12))).await;
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
}

const STOCK: i64 = 1_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_under_load_finishes_answered_orders_and_exits_0() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut bin = start_binary(dir.path());
    let operator = binary_client(&bin.base, Some(OPERATOR_TOKEN));
    let r = operator
        .post("/v1/sellers", json!({"name": "Loaded"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let seller = Client {
        seller_id: r.body["seller_id"].clone(),
        ..binary_client(&bin.base, r.body["token"].as_str())
    };
    let asin = seller
        .product(
            "US",
            "Enamel Camping Mug",
            "Acme",
            "en",
            &[("UPC", "036000291452")],
        )
        .await;
    let r = seller
        .list(
            "MUG",
            "US",
            json!({"asin": asin, "price": usd("9.99"), "quantity": STOCK}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);

    // An idle connection and a half-sent head stay open through the stop.
    let addr: SocketAddr = bin
        .base
        .trim_start_matches("http://")
        .parse()
        .expect("address");
    let held = blocking(move || {
        let mut v = silent_flood(addr, 1);
        v.extend(slow_header_flood(addr, 1));
        v
    })
    .await;
    // A long poll waits through the stop.
    let poller = seller.clone();
    let poll = tokio::spawn(async move {
        poller
            .http
            .get(format!("{}/v1/events?after=999999&wait=30", poller.base))
            .bearer_auth(poller.token.clone().unwrap_or_default())
            .send()
            .await
            .map(|r| r.status().as_u16())
    });

    // Load: concurrent storefronts placing one-unit orders until the server goes.
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for w in 0..16 {
        let base = bin.base.clone();
        let seller_id = seller.seller_id.clone();
        let stop = stop.clone();
        workers.push(tokio::spawn(async move {
            let http = reqwest::Client::builder()
                .timeout(Duration::from_secs(15))
                .build()
                .expect("client");
            let mut answered: Vec<String> = Vec::new();
            let mut failures = 0u32;
            for i in 0.. {
                if stop.load(Ordering::Relaxed) || failures > 20 {
                    break;
                }
                let order_id = format!("w{w}-{i}");
                let r = http
                    .post(format!("{base}/v1/stores/US/orders"))
                    .bearer_auth(OPERATOR_TOKEN)
                    .json(&json!({
                        "order_id": order_id,
                        "lines": [{"seller_id": seller_id, "sku": "MUG", "quantity": 1}],
                    }))
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status().as_u16() == 201 => answered.push(order_id),
                    Ok(r) => panic!("order {order_id}: {}", r.status()),
                    Err(_) => {
                        failures += 1;
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
            answered
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    bin.signal("TERM");
    let (status, took) = blocking(move || {
        let r = bin.wait(Duration::from_secs(12));
        drop(bin);
        r
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    let mut answered = Vec::new();
    for w in workers {
        answered.extend(w.await.expect("worker"));
    }
    println!(
        "SIGTERM under load (16 concurrent order clients, {} answered orders): stopped in {took:?}",
        answered.len()
    );
    let status = status.expect("exits within 10 s");
    assert!(took < Duration::from_secs(10), "stop took {took:?}");
    assert!(status.success(), "exit status {status:?}");
    assert!(!answered.is_empty(), "the load ran");
    let polled = poll.await.expect("join");
    assert_eq!(
        polled.ok(),
        Some(200),
        "the long poll is answered at the stop"
    );
    drop(held);

    // Every answered order is applied; nothing unanswered is.
    let mut bin = start_binary(dir.path());
    let seller = Client {
        base: bin.base.clone(),
        ..seller
    };
    let quantity = seller.quantity("MUG", "US").await;
    let ledger = seller.ledger("MUG").await;
    let sum: i64 = ledger.iter().filter_map(|e| e["delta"].as_i64()).sum();
    assert_eq!(sum, quantity, "ledger deltas add up to the quantity");
    let orders: std::collections::HashSet<String> = ledger
        .iter()
        .filter(|e| e["delta"].as_i64().is_some_and(|d| d < 0))
        .filter_map(|e| e["reference"].as_str().map(str::to_owned))
        .collect();
    for id in &answered {
        assert!(orders.contains(id), "answered order {id} applied");
    }
    assert_eq!(
        quantity,
        STOCK - answered.len() as i64,
        "exactly the answered orders were applied"
    );
    // An idle server stops at once too, on SIGINT.
    bin.signal("INT");
    let (status, took) = blocking(move || bin.wait(Duration::from_secs(12))).await;
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    assert!(took < Duration::from_secs(3), "idle stop took {took:?}");
}

// ------------------------------------------------------------ both databases

mod sqlite {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn truncated_upload_body_is_400_and_nothing_is_queued() {
        super::truncated_upload_body_is_400_and_nothing_is_queued(Backend::Sqlite).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn upload_cut_mid_body_leaves_nothing() {
        super::upload_cut_mid_body_leaves_nothing(Backend::Sqlite).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn declared_length_above_the_limit_is_413_before_the_body() {
        super::declared_length_above_the_limit_is_413_before_the_body(Backend::Sqlite).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn upload_queue_quota_is_429_with_retry_after() {
        super::upload_queue_quota_is_429_with_retry_after(Backend::Sqlite).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn upload_bytes_quota_is_429() {
        super::upload_bytes_quota_is_429(Backend::Sqlite).await;
    }
}

mod postgres {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn truncated_upload_body_is_400_and_nothing_is_queued() {
        super::truncated_upload_body_is_400_and_nothing_is_queued(Backend::Postgres).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn upload_cut_mid_body_leaves_nothing() {
        super::upload_cut_mid_body_leaves_nothing(Backend::Postgres).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn declared_length_above_the_limit_is_413_before_the_body() {
        super::declared_length_above_the_limit_is_413_before_the_body(Backend::Postgres).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn upload_queue_quota_is_429_with_retry_after() {
        super::upload_queue_quota_is_429_with_retry_after(Backend::Postgres).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn upload_bytes_quota_is_429() {
        super::upload_bytes_quota_is_429(Backend::Postgres).await;
    }
}

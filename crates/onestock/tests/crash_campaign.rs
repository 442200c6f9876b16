//! The crash campaign of issue 7 ("what CI must keep proving"): the real `onestock serve`
//! binary under concurrent orders, replays, cancels and an upload, killed with SIGKILL at a
//! random moment, started again on the same database, for several rounds, on SQLite and
//! on PostgreSQL. Afterwards:
//!
//! - every order answered 201 or 200 is applied exactly once: one `order` ledger entry per
//!   SKU of the order, and sending it again answers 200 with the first answer's body (R19);
//!   an order refused is not applied; an order whose answer a kill cut off is sent again
//!   after the restart and is then applied once (201 if it was not, 200 if it was);
//! - a cancel answered (or sent again after a kill) returns its units once (R19);
//! - for every pool the ledger deltas add up to its quantity, each entry's
//!   `quantity_after` is the running sum and never below zero (R18, R20), and the quantity
//!   equals the one the answered orders and cancels predict;
//! - a pool's quantity is the same in each of its stores (R11);
//! - each upload ends `DONE` with every row applied once: each row's SKU has exactly one
//!   `upload` quantity event, sampled ledgers hold one `upload` entry (R23, SPEC 5).
//!
//! The random choices (kill moments, orders) come from one seed, printed at the start;
//! `CRASH_SEED=N` runs the same choices again (the timing of the kill still varies).
//! `CRASH_ROUNDS` (default 10) and `CRASH_SECONDS` (default 40: after it no new round
//! starts, once 3 are done) bound the run. PostgreSQL is at `ONESTOCK_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`); the test fails when it cannot be reached.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

const POSTGRES_ENV: &str = "ONESTOCK_TEST_POSTGRES_URL";
const POSTGRES_DEFAULT: &str = "postgres://postgres@127.0.0.1:5432/test";
const OPERATOR_TOKEN: &str = "crash-campaign-operator-token";
const UPC: &str = "036000291452";
const STORES: [&str; 3] = ["US", "CA", "MX"];
/// The shared pools (one SKU each, listed in US, CA and MX) and their first quantity.
/// HOT runs out during the campaign, so refusals for stock happen too.
const POOLS: [(&str, i64); 4] = [
    ("HOT", 400),
    ("WARM", 100_000),
    ("COOL", 1_000_000),
    ("COLD", 1_000_000),
];
/// Concurrent order clients per round.
const CLIENTS: usize = 12;
/// Rows of each round's upload: three chunks (`onestock::upload::ROWS_PER_CHUNK`; the
/// writer applies a chunk in one transaction, so orders wait while it runs).
const UPLOAD_ROWS: usize = 3 * onestock::upload::ROWS_PER_CHUNK;
/// Ledgers of upload SKUs read per upload (the events cover every row).
const UPLOAD_LEDGER_SAMPLE: usize = 25;

// ---------------------------------------------------------------------------
// A small seeded generator, so a failing campaign can be replayed from its seed.

#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a whole number, got {v:?}")),
        _ => default,
    }
}

// ---------------------------------------------------------------------------
// The server process.

struct Server {
    child: Child,
    base: String,
    log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind port 0")
        .local_addr()
        .expect("local addr")
        .port()
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

fn spawn_server(dir: &Path, url: &str, run: usize) -> Server {
    let port = free_port();
    let log = dir.join(format!("server-{run}.log"));
    let out = File::create(&log).expect("log file");
    let err = out.try_clone().expect("log file");
    let child = Command::new(env!("CARGO_BIN_EXE_onestock"))
        .arg("serve")
        .arg("--database-url")
        .arg(url)
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--upload-dir")
        .arg(dir.join("uploads"))
        .env("ONESTOCK_OPERATOR_TOKEN", OPERATOR_TOKEN)
        .env("RUST_LOG", "onestock=warn")
        .env_remove("ONESTOCK_DATABASE_URL")
        .env_remove("ONESTOCK_LISTEN")
        .env_remove("ONESTOCK_UPLOAD_DIR")
        .env_remove("ONESTOCK_RATE_LIMIT")
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .spawn()
        .expect("start onestock serve");
    Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
        log,
    }
}

/// Starts the binary and waits for `/healthz`, retrying when the port was taken meanwhile.
async fn start_server(dir: &Path, url: &str, run: &mut usize, http: &reqwest::Client) -> Server {
    for _ in 0..5 {
        *run += 1;
        let mut server = spawn_server(dir, url, *run);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                eprintln!(
                    "{} exited with {status} before answering:\n{}",
                    server.base,
                    tail(&server.log)
                );
                break;
            }
            if let Ok(r) = http.get(format!("{}/healthz", server.base)).send().await
                && r.status().as_u16() == 200
            {
                return server;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not answer /healthz within 60 s:\n{}",
                server.base,
                tail(&server.log)
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
    panic!("the server did not start after 5 attempts");
}

/// SIGKILL, as a crash would.
fn crash(mut server: Server) {
    server.child.kill().expect("SIGKILL");
    server.child.wait().expect("reap");
}

// ---------------------------------------------------------------------------
// HTTP.

#[derive(Debug, Clone)]
struct Resp {
    status: u16,
    body: Value,
}

impl Resp {
    fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

/// One call; `Err` when no whole answer arrived (the server was killed meanwhile).
async fn call(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> Result<Resp, String> {
    let mut rb = http
        .request(method, format!("{base}{path}"))
        .bearer_auth(token);
    if let Some(b) = body {
        rb = rb.json(b);
    }
    let r = rb.send().await.map_err(|e| e.to_string())?;
    let status = r.status().as_u16();
    let text = r.text().await.map_err(|e| e.to_string())?;
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    Ok(Resp { status, body })
}

/// A call to a server that is not being killed: it must answer.
async fn must(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> Resp {
    call(http, base, token, method.clone(), path, body)
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

fn expect(r: Resp, status: u16, what: &str) -> Value {
    assert_eq!(r.status, status, "{what}: {}", r.body);
    r.body
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("http client")
}

// ---------------------------------------------------------------------------
// What the clients sent and heard.

#[derive(Debug, Clone, PartialEq)]
enum Answer {
    /// Sent, no answer: the kill cut it off. Sent again after the restart.
    Unknown,
    /// 201 (or 200 to its first send after a restart): the body every replay must give.
    Accepted(Value),
    /// Refused with this code: not applied.
    Refused(String),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Cancel {
    None,
    /// Sent, no answer.
    Unknown,
    Done,
}

#[derive(Debug, Clone)]
struct Order {
    id: String,
    store: &'static str,
    /// (SKU, units), SKUs distinct.
    lines: Vec<(&'static str, i64)>,
    answer: Answer,
    cancel: Cancel,
}

impl Order {
    fn body(&self, seller_id: &Value) -> Value {
        let lines: Vec<Value> = self
            .lines
            .iter()
            .map(|(sku, q)| json!({"seller_id": seller_id, "sku": sku, "quantity": q}))
            .collect();
        json!({"order_id": self.id, "lines": lines})
    }
}

#[derive(Default)]
struct Counts {
    rounds: usize,
    kills: usize,
    kills_during_upload: usize,
    orders_sent: usize,
    /// 201 or 200 while the load ran.
    orders_answered: usize,
    refused: usize,
    cut_off: usize,
    recovered_applied_before: usize,
    recovered_applied_now: usize,
    recovered_refused: usize,
    replays_during_load: usize,
    cancels: usize,
    cancels_cut_off: usize,
    orders_checked: usize,
    replays_checked: usize,
    upload_rows_checked: usize,
    events: usize,
}

struct Shared {
    http: reqwest::Client,
    base: String,
    seller_id: Value,
    stop: AtomicBool,
    problems: std::sync::Mutex<Vec<String>>,
}

impl Shared {
    fn problem(&self, p: String) {
        self.problems.lock().unwrap().push(p);
    }
}

/// One client: new orders, some replays of its own answered orders and some cancels,
/// until a call gets no answer (the server is gone) or the round says stop.
async fn client_loop(
    shared: Arc<Shared>,
    round: usize,
    client: usize,
    mut rng: Rng,
) -> (Vec<Order>, usize) {
    let mut orders: Vec<Order> = Vec::new();
    let mut replays = 0usize;
    let cancel_path = |o: &Order| format!("/v1/stores/{}/orders/{}/cancel", o.store, o.id);
    let mut k = 0usize;
    while !shared.stop.load(Ordering::Relaxed) {
        let accepted: Vec<usize> = orders
            .iter()
            .enumerate()
            .filter(|(_, o)| matches!(o.answer, Answer::Accepted(_)))
            .map(|(i, _)| i)
            .collect();
        let roll = rng.below(100);
        if roll < 8 && !accepted.is_empty() {
            // Replay an answered order: 200, the first answer's body.
            let i = accepted[rng.below(accepted.len() as u64) as usize];
            let o = &orders[i];
            let path = format!("/v1/stores/{}/orders", o.store);
            let Ok(r) = call(
                &shared.http,
                &shared.base,
                OPERATOR_TOKEN,
                Method::POST,
                &path,
                Some(&o.body(&shared.seller_id)),
            )
            .await
            else {
                break;
            };
            replays += 1;
            let Answer::Accepted(first) = &o.answer else {
                unreachable!()
            };
            if r.status != 200 || r.body != *first {
                shared.problem(format!(
                    "replay of {} answered {} {}; first answer {first}",
                    o.id, r.status, r.body
                ));
            }
            continue;
        }
        if roll < 16 && !accepted.is_empty() {
            // Cancel an answered order (or send its cancel again).
            let i = accepted[rng.below(accepted.len() as u64) as usize];
            let path = cancel_path(&orders[i]);
            let before = orders[i].cancel;
            orders[i].cancel = if before == Cancel::Done {
                Cancel::Done
            } else {
                Cancel::Unknown
            };
            let Ok(r) = call(
                &shared.http,
                &shared.base,
                OPERATOR_TOKEN,
                Method::POST,
                &path,
                Some(&json!({})),
            )
            .await
            else {
                break;
            };
            if r.status == 200 && r.body["status"] == "cancelled" {
                orders[i].cancel = Cancel::Done;
            } else {
                shared.problem(format!(
                    "cancel of {} answered {} {}",
                    orders[i].id, r.status, r.body
                ));
            }
            continue;
        }
        // A new order of 1 to 3 lines on distinct pools.
        k += 1;
        let store = STORES[rng.below(3) as usize];
        // HOT in about one order of five, so it runs out slowly.
        let hot = rng.below(5) == 0;
        let mut skus: Vec<&'static str> = POOLS
            .iter()
            .map(|p| p.0)
            .filter(|s| hot || *s != "HOT")
            .collect();
        let mut lines = Vec::new();
        for _ in 0..rng.range(1, 3) {
            let sku = skus.remove(rng.below(skus.len() as u64) as usize);
            lines.push((sku, rng.range(1, 3) as i64));
        }
        let mut order = Order {
            id: format!("r{round}-c{client}-{k}"),
            store,
            lines,
            answer: Answer::Unknown,
            cancel: Cancel::None,
        };
        let path = format!("/v1/stores/{store}/orders");
        let sent = call(
            &shared.http,
            &shared.base,
            OPERATOR_TOKEN,
            Method::POST,
            &path,
            Some(&order.body(&shared.seller_id)),
        )
        .await;
        let Ok(r) = sent else {
            orders.push(order);
            break;
        };
        order.answer = judge_first_answer(&shared, &order, &r, 201);
        orders.push(order);
    }
    (orders, replays)
}

/// The answer to an order's first send (`created` 201) or to its send after a restart
/// when the first was cut off (201 or 200).
fn judge_first_answer(shared: &Shared, order: &Order, r: &Resp, created: u16) -> Answer {
    match (r.status, r.code()) {
        (s, _) if s == created || (created == 0 && (s == 200 || s == 201)) => {
            if r.body["order_id"] != json!(order.id) || r.body["status"] != "accepted" {
                shared.problem(format!("order {} answered {s} {}", order.id, r.body));
            }
            let lines = r.body["lines"].as_array().map(Vec::len).unwrap_or(0);
            if lines != order.lines.len() {
                shared.problem(format!(
                    "order {} answered {lines} lines for {}: {}",
                    order.id,
                    order.lines.len(),
                    r.body
                ));
            }
            Answer::Accepted(r.body.clone())
        }
        (409, "INSUFFICIENT_STOCK") => Answer::Refused("INSUFFICIENT_STOCK".into()),
        (s, c) => {
            shared.problem(format!(
                "order {} ({:?} in {}) answered {s} {c}: {}",
                order.id, order.lines, order.store, r.body
            ));
            Answer::Refused(format!("{s} {c}"))
        }
    }
}

// ---------------------------------------------------------------------------
// The campaign.

struct Upload {
    id: String,
    round: usize,
    /// (SKU, quantity) of each row.
    rows: Vec<(String, i64)>,
}

fn upload_file(round: usize, rng: &mut Rng) -> (String, Vec<(String, i64)>) {
    let mut file = String::from("sku\tproduct-id\tproduct-id-type\tprice\tquantity\n");
    let mut rows = Vec::with_capacity(UPLOAD_ROWS);
    for i in 0..UPLOAD_ROWS {
        let sku = format!("U{round}-{i:05}");
        let q = rng.range(1, 9) as i64;
        file.push_str(&format!("{sku}\t{UPC}\tUPC\t3.50\t{q}\n"));
        rows.push((sku, q));
    }
    (file, rows)
}

/// After a restart: every order whose answer was cut off is sent again (now it must be
/// answered: 201 if the kill came before it was applied, 200 if after), and every cancel
/// cut off is sent again.
async fn recover(shared: &Shared, orders: &mut [Order], counts: &mut Counts) {
    for o in orders.iter_mut() {
        if o.answer == Answer::Unknown {
            let r = must(
                &shared.http,
                &shared.base,
                OPERATOR_TOKEN,
                Method::POST,
                &format!("/v1/stores/{}/orders", o.store),
                Some(&o.body(&shared.seller_id)),
            )
            .await;
            o.answer = judge_first_answer(shared, o, &r, 0);
            match (&o.answer, r.status) {
                (Answer::Accepted(_), 200) => counts.recovered_applied_before += 1,
                (Answer::Accepted(_), _) => counts.recovered_applied_now += 1,
                _ => counts.recovered_refused += 1,
            }
        }
        if o.cancel == Cancel::Unknown {
            let r = must(
                &shared.http,
                &shared.base,
                OPERATOR_TOKEN,
                Method::POST,
                &format!("/v1/stores/{}/orders/{}/cancel", o.store, o.id),
                Some(&json!({})),
            )
            .await;
            if r.status == 200 && r.body["status"] == "cancelled" {
                o.cancel = Cancel::Done;
            } else {
                shared.problem(format!(
                    "cancel of {} sent again after a restart answered {} {}",
                    o.id, r.status, r.body
                ));
            }
        }
    }
}

async fn campaign(backend: &str, url: &str) {
    let started = Instant::now();
    let seed = match std::env::var("CRASH_SEED") {
        Ok(s) if !s.trim().is_empty() => s.trim().parse().expect("CRASH_SEED: a number"),
        _ => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_nanos() as u64,
    };
    let rounds_max = env_number("CRASH_ROUNDS", 10).max(1) as usize;
    let budget = Duration::from_secs(env_number("CRASH_SECONDS", 40));
    eprintln!("crash campaign on {backend}: seed {seed} (CRASH_SEED={seed} replays its choices)");
    println!("crash campaign on {backend}: seed {seed}");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("uploads")).expect("upload dir");
    let http = http_client();
    let mut run = 0usize;
    let mut counts = Counts::default();

    // --- Setup: a seller, one product with a page in each store, four shared pools.
    let server = start_server(dir.path(), url, &mut run, &http).await;
    let base = server.base.clone();
    let seller = expect(
        must(
            &http,
            &base,
            OPERATOR_TOKEN,
            Method::POST,
            "/v1/sellers",
            Some(&json!({"name": "Crash Campaign"})),
        )
        .await,
        201,
        "create seller",
    );
    let token = seller["token"].as_str().expect("token").to_owned();
    let seller_id = seller["seller_id"].clone();
    let mut asin = String::new();
    for (store, title, language) in [
        ("US", "Blue ceramic mug", "en"),
        ("CA", "Blue ceramic mug", "en"),
        ("MX", "Taza de cerámica azul", "es"),
    ] {
        let body = json!({"store": store, "product_type": "KITCHEN", "title": title,
            "brand": "Acme", "language": language,
            "identifiers": [{"type": "UPC", "value": UPC}]});
        let r = expect(
            must(
                &http,
                &base,
                &token,
                Method::POST,
                "/v1/catalog/items",
                Some(&body),
            )
            .await,
            201,
            "product",
        );
        if asin.is_empty() {
            asin = r["asin"].as_str().expect("asin").to_owned();
        }
        assert_eq!(r["asin"], json!(asin), "{store}: {r}");
    }
    for (sku, quantity) in POOLS {
        for (store, currency, amount) in [
            ("US", "USD", "9.99"),
            ("CA", "CAD", "12.99"),
            ("MX", "MXN", "199.00"),
        ] {
            let mut body = json!({"asin": asin, "price": {"amount": amount, "currency": currency}});
            if store == "US" {
                body["quantity"] = json!(quantity);
            } else {
                body["share"] = json!("existing");
            }
            expect(
                must(
                    &http,
                    &base,
                    &token,
                    Method::PUT,
                    &format!("/v1/listings/{sku}/stores/{store}"),
                    Some(&body),
                )
                .await,
                201,
                &format!("list {sku} in {store}"),
            );
        }
    }
    let mut server = Some(server);

    // --- Rounds: load, kill, restart, recover.
    let mut orders: Vec<Order> = Vec::new();
    let mut uploads: Vec<Upload> = Vec::new();
    let mut problems: Vec<String> = Vec::new();
    for round in 0..rounds_max {
        if round >= 3 && started.elapsed() > budget {
            break;
        }
        let live = match server.take() {
            Some(s) => s,
            None => start_server(dir.path(), url, &mut run, &http).await,
        };
        let shared = Arc::new(Shared {
            http: http_client(),
            base: live.base.clone(),
            seller_id: seller_id.clone(),
            stop: AtomicBool::new(false),
            problems: std::sync::Mutex::new(Vec::new()),
        });
        recover(&shared, &mut orders, &mut counts).await;

        // The load; this round's upload (queued behind the seller's earlier ones) sent
        // at a random moment of it; the kill at a random moment after that.
        let load_started = Instant::now();
        let tasks: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let rng = Rng(rng.next());
                tokio::spawn(client_loop(shared.clone(), round, c, rng))
            })
            .collect();
        let kill_after = Duration::from_millis(rng.range(300, 2500));
        let upload_after = Duration::from_millis(rng.below(kill_after.as_millis() as u64 / 2));
        let (file, rows) = upload_file(round, &mut rng);
        tokio::time::sleep(upload_after).await;
        let r = shared
            .http
            .post(format!("{}/v1/uploads?store=US", live.base))
            .bearer_auth(&token)
            .header("content-type", "text/tab-separated-values")
            .body(file)
            .send()
            .await
            .expect("upload");
        assert_eq!(r.status().as_u16(), 202, "upload");
        let b: Value = r.json().await.expect("upload json");
        uploads.push(Upload {
            id: b["upload_id"].as_str().expect("upload_id").to_owned(),
            round,
            rows,
        });
        if round % 2 == 1 {
            // Every other round the kill waits for the upload to be under way (a chunk
            // in, more to come), up to the random moment chosen.
            let id = &uploads[round].id;
            while load_started.elapsed() < kill_after {
                let b = call(
                    &http,
                    &live.base,
                    &token,
                    Method::GET,
                    &format!("/v1/uploads/{id}"),
                    None,
                )
                .await
                .map(|r| r.body)
                .unwrap_or(Value::Null);
                if b["status"] != "IN_QUEUE" && b["records_processed"] != json!(0) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        } else {
            tokio::time::sleep(kill_after.saturating_sub(load_started.elapsed())).await;
        }
        // Where the upload stands just before the kill (it may move on a little more).
        let at_kill = call(
            &http,
            &live.base,
            &token,
            Method::GET,
            &format!("/v1/uploads/{}", uploads[round].id),
            None,
        )
        .await
        .map(|r| r.body)
        .unwrap_or(Value::Null);
        let killed_at = load_started.elapsed();
        crash(live);
        let upload_at_kill = format!(
            "upload {} {}/{UPLOAD_ROWS}",
            at_kill["status"].as_str().unwrap_or("?"),
            at_kill["records_processed"]
        );
        if at_kill["status"] == "IN_PROGRESS" {
            counts.kills_during_upload += 1;
        }
        counts.kills += 1;
        shared.stop.store(true, Ordering::Relaxed);
        let mut cut = 0;
        for t in tasks {
            let (mut got, replays) = t.await.expect("client task");
            counts.replays_during_load += replays;
            for o in &got {
                counts.orders_sent += 1;
                match &o.answer {
                    Answer::Accepted(_) => counts.orders_answered += 1,
                    Answer::Refused(_) => counts.refused += 1,
                    Answer::Unknown => cut += 1,
                }
                match o.cancel {
                    Cancel::Done => counts.cancels += 1,
                    Cancel::Unknown => counts.cancels_cut_off += 1,
                    Cancel::None => {}
                }
            }
            orders.append(&mut got);
        }
        counts.cut_off += cut;
        counts.rounds += 1;
        problems.extend(shared.problems.lock().unwrap().drain(..));
        println!(
            "round {round}: killed after {:?} ({upload_at_kill}); {} orders so far, {cut} cut off",
            killed_at,
            orders.len()
        );
    }

    // --- The last run: recover, let the uploads finish, check everything.
    let live = start_server(dir.path(), url, &mut run, &http).await;
    let base = live.base.clone();
    let shared = Shared {
        http: http_client(),
        base: base.clone(),
        seller_id: seller_id.clone(),
        stop: AtomicBool::new(false),
        problems: std::sync::Mutex::new(Vec::new()),
    };
    recover(&shared, &mut orders, &mut counts).await;
    problems.extend(shared.problems.lock().unwrap().drain(..));

    let deadline = Instant::now() + Duration::from_secs(180);
    for u in &uploads {
        loop {
            let b = expect(
                must(
                    &http,
                    &base,
                    &token,
                    Method::GET,
                    &format!("/v1/uploads/{}", u.id),
                    None,
                )
                .await,
                200,
                "upload status",
            );
            match b["status"].as_str() {
                Some("DONE") => {
                    let n = json!(u.rows.len());
                    if b["records_processed"] != n
                        || b["records_successful"] != n
                        || b["records_failed"] != json!(0)
                    {
                        problems.push(format!("upload of round {}: {b}", u.round));
                    }
                    break;
                }
                Some("IN_QUEUE" | "IN_PROGRESS") => {}
                _ => {
                    problems.push(format!("upload of round {}: {b}", u.round));
                    break;
                }
            }
            if Instant::now() > deadline {
                problems.push(format!(
                    "upload of round {} did not finish within 180 s: {b}",
                    u.round
                ));
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    // Every accepted order sent again: 200 and the first answer, several at a time.
    let accepted: Vec<(usize, Value)> = orders
        .iter()
        .enumerate()
        .filter_map(|(i, o)| match &o.answer {
            Answer::Accepted(_) => Some((i, o.body(&seller_id))),
            _ => None,
        })
        .collect();
    let replays = futures_util::stream::iter(accepted.into_iter().map(|(i, body)| {
        let (http, base, store) = (http.clone(), base.clone(), orders[i].store);
        async move {
            let r = call(
                &http,
                &base,
                OPERATOR_TOKEN,
                Method::POST,
                &format!("/v1/stores/{store}/orders"),
                Some(&body),
            )
            .await;
            (i, r)
        }
    }));
    let answers: Vec<(usize, Result<Resp, String>)> =
        futures_util::StreamExt::collect(futures_util::StreamExt::buffer_unordered(replays, 16))
            .await;
    for (i, r) in answers {
        let o = &orders[i];
        let Answer::Accepted(first) = &o.answer else {
            unreachable!()
        };
        counts.replays_checked += 1;
        match r {
            Ok(r) if r.status == 200 && r.body == *first => {}
            Ok(r) => problems.push(format!(
                "order {} sent again at the end answered {} {}; first answer {first}",
                o.id, r.status, r.body
            )),
            Err(e) => problems.push(format!("order {} sent again at the end: {e}", o.id)),
        }
    }

    counts.orders_checked = orders
        .iter()
        .filter(|o| matches!(o.answer, Answer::Accepted(_)))
        .count();

    // Ledgers and quantities of the pools.
    for (sku, start) in POOLS {
        let view = expect(
            must(
                &http,
                &base,
                &token,
                Method::GET,
                &format!("/v1/listings/{sku}"),
                None,
            )
            .await,
            200,
            "listing",
        );
        let listings = view["listings"].as_array().expect("listings");
        let quantities: Vec<i64> = listings
            .iter()
            .map(|l| l["quantity"].as_i64().unwrap_or(-1))
            .collect();
        let stores: Vec<&str> = listings
            .iter()
            .filter_map(|l| l["store"].as_str())
            .collect();
        let pools: HashSet<String> = listings.iter().map(|l| l["pool_id"].to_string()).collect();
        if stores != STORES || pools.len() != 1 || quantities.iter().any(|q| *q != quantities[0]) {
            problems.push(format!(
                "{sku}: stores {stores:?}, pools {pools:?}, quantities {quantities:?}"
            ));
        }
        let quantity = quantities.first().copied().unwrap_or(-1);

        let ledger = expect(
            must(
                &http,
                &base,
                &token,
                Method::GET,
                &format!("/v1/listings/{sku}/ledger"),
                None,
            )
            .await,
            200,
            "ledger",
        );
        let mut entries = ledger["entries"].as_array().expect("entries").clone();
        entries.sort_by_key(|e| e["seq"].as_i64().unwrap_or(0));
        let mut running = 0i64;
        let mut seen: HashMap<(String, String), Vec<Value>> = HashMap::new();
        for e in &entries {
            running += e["delta"].as_i64().unwrap_or(0);
            if e["quantity_after"].as_i64() != Some(running) || running < 0 {
                problems.push(format!(
                    "{sku}: ledger entry {e}: quantity_after is not the running sum {running} (or below zero)"
                ));
            }
            let reason = e["reason"].as_str().unwrap_or("?").to_owned();
            let reference = e["reference"].as_str().unwrap_or("").to_owned();
            seen.entry((reason, reference)).or_default().push(e.clone());
        }
        if running != quantity {
            problems.push(format!(
                "{sku}: ledger deltas sum to {running}, the quantity is {quantity}"
            ));
        }
        // What the answered orders and cancels predict.
        let mut expected = start;
        let mut expected_keys: HashSet<(String, String)> = HashSet::new();
        expected_keys.insert(("set".into(), String::new()));
        for o in &orders {
            let Some((_, units)) = o.lines.iter().find(|(s, _)| *s == sku) else {
                continue;
            };
            let applied = matches!(o.answer, Answer::Accepted(_));
            let cancelled = o.cancel == Cancel::Done;
            for (reason, want, delta) in [
                ("order", applied, -units),
                ("cancel", applied && cancelled, *units),
            ] {
                let key = (reason.to_owned(), o.id.clone());
                let got = seen.get(&key).map(Vec::as_slice).unwrap_or(&[]);
                if want {
                    expected += delta;
                    expected_keys.insert(key);
                    let ok = got.len() == 1
                        && got[0]["delta"].as_i64() == Some(delta)
                        && got[0]["store"] == o.store;
                    if !ok {
                        problems.push(format!(
                            "{sku}: order {} ({:?}, {reason}): expected one entry of {delta} in {}, found {got:?}",
                            o.id, o.answer, o.store
                        ));
                    }
                } else if !got.is_empty() {
                    problems.push(format!(
                        "{sku}: order {} ({:?}, cancel {:?}) has {reason} entries {got:?}",
                        o.id, o.answer, o.cancel
                    ));
                }
            }
        }
        for (key, es) in &seen {
            if !expected_keys.contains(key) {
                problems.push(format!("{sku}: unexpected ledger entries {es:?}"));
            }
        }
        if quantity != expected {
            problems.push(format!(
                "{sku}: quantity {quantity}, the answered orders and cancels give {expected}"
            ));
        }
    }

    // Uploads: each row's SKU has exactly one `upload` quantity event; every seq once.
    let mut upload_events: HashMap<String, Vec<i64>> = HashMap::new();
    let mut seqs: Vec<i64> = Vec::new();
    let mut after = 0i64;
    loop {
        let page = expect(
            must(
                &http,
                &base,
                &token,
                Method::GET,
                &format!("/v1/events?after={after}"),
                None,
            )
            .await,
            200,
            "events",
        );
        let events = page["events"].as_array().expect("events");
        if events.is_empty() {
            break;
        }
        for e in events {
            let seq = e["seq"].as_i64().expect("seq");
            seqs.push(seq);
            after = seq;
            if e["type"] == "quantity_changed" && e["reason"] == "upload" {
                let sku = e["sku"].as_str().unwrap_or("").to_owned();
                upload_events
                    .entry(sku)
                    .or_default()
                    .push(e["delta"].as_i64().unwrap_or(0));
            }
        }
    }
    counts.events = seqs.len();
    if seqs != (1..=seqs.len() as i64).collect::<Vec<_>>() {
        problems.push(format!(
            "event seqs are not 1..{} without gaps or repeats",
            seqs.len()
        ));
    }
    let mut upload_skus = 0usize;
    for u in &uploads {
        for (sku, q) in &u.rows {
            upload_skus += 1;
            let got = upload_events.get(sku).map(Vec::as_slice).unwrap_or(&[]);
            if got != [*q] {
                problems.push(format!(
                    "upload of round {}: {sku} (quantity {q}) has upload events {got:?}",
                    u.round
                ));
            }
            counts.upload_rows_checked += 1;
        }
        for _ in 0..UPLOAD_LEDGER_SAMPLE {
            let (sku, q) = &u.rows[rng.below(u.rows.len() as u64) as usize];
            let r = must(
                &http,
                &base,
                &token,
                Method::GET,
                &format!("/v1/listings/{sku}/ledger"),
                None,
            )
            .await;
            let entries = r.body["entries"].as_array().cloned().unwrap_or_default();
            let ok = r.status == 200
                && entries.len() == 1
                && entries[0]["reason"] == "upload"
                && entries[0]["delta"].as_i64() == Some(*q)
                && entries[0]["reference"] == json!(u.id);
            if !ok {
                problems.push(format!(
                    "upload of round {}: ledger of {sku}: {} {}",
                    u.round, r.status, r.body
                ));
            }
        }
    }
    if upload_events.len() != upload_skus {
        problems.push(format!(
            "{} SKUs have upload events, the uploads have {upload_skus} rows",
            upload_events.len()
        ));
    }
    let by_round: BTreeMap<usize, usize> =
        uploads.iter().map(|u| (u.round, u.rows.len())).collect();

    let summary = format!(
        "crash campaign on {backend}: seed {seed}; {} rounds, {} kills ({} while an upload was in progress); {} orders sent, {} answered \
         201 during the load ({} refused for stock, {} cut off by a kill: {} applied before the kill, \
         {} applied when sent again, {} refused when sent again); {} cancels ({} cut off); \
         {} replays during the load; {} orders checked (ledger, replay {}); {} uploads {by_round:?} rows, \
         {} rows checked; {} events; {:.1?}",
        counts.rounds,
        counts.kills,
        counts.kills_during_upload,
        counts.orders_sent,
        counts.orders_answered,
        counts.refused,
        counts.cut_off,
        counts.recovered_applied_before,
        counts.recovered_applied_now,
        counts.recovered_refused,
        counts.cancels,
        counts.cancels_cut_off,
        counts.replays_during_load,
        counts.orders_checked,
        counts.replays_checked,
        uploads.len(),
        counts.upload_rows_checked,
        counts.events,
        started.elapsed()
    );
    // libtest captures `print!` and `eprint!` of a passing test; a write to the process's
    // stderr is not captured, so the one-line summary shows in every `cargo test` run.
    println!("{summary}");
    let _ = std::io::Write::write_all(&mut std::io::stderr(), format!("{summary}\n").as_bytes());
    if !problems.is_empty() {
        eprintln!("--- server log:\n{}", tail(&live.log));
        let shown: Vec<&String> = problems.iter().take(40).collect();
        panic!(
            "crash campaign on {backend} (seed {seed}): {} problems:\n{}",
            problems.len(),
            shown
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    assert!(counts.kills >= 1 && counts.orders_answered > 0, "{summary}");
    drop(live);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn crash_campaign_sqlite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite:{}", dir.path().join("onestock.db").display());
    campaign("SQLite", &url).await;
}

/// Drops the throwaway database at the end, whatever happens.
struct PgDatabase {
    admin: String,
    url: String,
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let (admin, url) = (self.admin.clone(), self.url.clone());
        let _ = std::thread::spawn(move || onestock_store::postgres::drop_database(&admin, &url))
            .join();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn crash_campaign_postgres() {
    let admin = match std::env::var(POSTGRES_ENV) {
        Ok(a) if !a.trim().is_empty() => a,
        _ => POSTGRES_DEFAULT.to_owned(),
    };
    let a = admin.clone();
    let url = std::thread::spawn(move || onestock_store::postgres::create_test_database(&a))
        .join()
        .expect("join")
        .unwrap_or_else(|e| {
            panic!("PostgreSQL at {admin} cannot be reached ({e}); the campaign needs it")
        });
    let db = PgDatabase { admin, url };
    campaign("PostgreSQL", &db.url).await;
}

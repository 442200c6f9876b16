//! Two onestock server processes on one PostgreSQL database, many clients through both.
//! R11 (one quantity), R18 (never below zero), R19 (once only, cancels once), R20 (ledger),
//! R21 (lost updates) and the event feed's numbering, across processes.
//!
//! Needs `ONESTOCK_TEST_POSTGRES_URL` (an admin URL such as
//! `postgres://postgres@127.0.0.1:5432/test`); skipped when it is unset.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const POSTGRES_ENV: &str = "ONESTOCK_TEST_POSTGRES_URL";
const OPERATOR_TOKEN: &str = "two-process-operator-token";
const UPC: &str = "036000291452";
const STORES: [&str; 3] = ["US", "CA", "MX"];
const CLIENTS: usize = 64;
const ORDERS: usize = 400;
const UNITS: i64 = 120;
const CANCELS: usize = 20;
const RESTOCK_START: i64 = 50;
/// Read-then-PATCH rounds per client on RESTOCK.
const RESTOCK_ROUNDS: usize = 3;

// ---------------------------------------------------------------------------
// Processes and database, cleaned up on drop (panics included).

struct Server {
    child: Child,
    base: String,
    log: std::path::PathBuf,
}

struct Harness {
    servers: Vec<Server>,
    /// (admin URL, test database URL)
    database: Option<(String, String)>,
    dir: tempfile::TempDir,
}

impl Drop for Harness {
    fn drop(&mut self) {
        for s in &mut self.servers {
            let _ = s.child.kill();
            let _ = s.child.wait();
        }
        if let Some((admin, url)) = self.database.take() {
            // The postgres client runs its own runtime: keep it off any tokio thread.
            let r =
                std::thread::spawn(move || onestock_store::postgres::drop_database(&admin, &url))
                    .join();
            if let Ok(Err(e)) = r {
                eprintln!("could not drop the test database: {e}");
            }
        }
    }
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    l.local_addr().expect("local addr").port()
}

fn spawn_server(dir: &Path, name: &str, url: &str, attempt: usize) -> Server {
    let port = free_port();
    let uploads = dir.join(name);
    std::fs::create_dir_all(&uploads).expect("upload dir");
    let log = dir.join(format!("{name}-{attempt}.log"));
    let out = File::create(&log).expect("log file");
    let err = out.try_clone().expect("log file");
    let child = Command::new(env!("CARGO_BIN_EXE_onestock"))
        .arg("serve")
        .arg("--database-url")
        .arg(url)
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--upload-dir")
        .arg(&uploads)
        .env("ONESTOCK_OPERATOR_TOKEN", OPERATOR_TOKEN)
        .env_remove("ONESTOCK_DATABASE_URL")
        .env_remove("ONESTOCK_LISTEN")
        .env_remove("ONESTOCK_UPLOAD_DIR")
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

/// Waits for `/healthz`; `false` when the process ended first (a port taken meanwhile).
async fn wait_healthy(http: &reqwest::Client, server: &mut Server) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(Some(status)) = server.child.try_wait() {
            eprintln!(
                "{} exited with {status} before answering:\n{}",
                server.base,
                tail(&server.log)
            );
            return false;
        }
        if let Ok(r) = http.get(format!("{}/healthz", server.base)).send().await
            && r.status() == StatusCode::OK
        {
            return true;
        }
        if Instant::now() > deadline {
            panic!(
                "{} did not answer /healthz within 30 s:\n{}",
                server.base,
                tail(&server.log)
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Starts the two processes together (both migrate at start), retrying on a lost port.
async fn start_both(h: &mut Harness, url: &str, http: &reqwest::Client) {
    let mut pending: Vec<(usize, &str)> = vec![(0, "p1"), (1, "p2")];
    let mut slots: Vec<Option<Server>> = vec![None, None];
    for attempt in 0..5 {
        let mut started: Vec<(usize, &str, Server)> = pending
            .iter()
            .map(|(i, name)| (*i, *name, spawn_server(h.dir.path(), name, url, attempt)))
            .collect();
        let mut failed = Vec::new();
        for (i, name, server) in &mut started {
            if !wait_healthy(http, server).await {
                failed.push((*i, *name));
            }
        }
        for (i, _, server) in started {
            if failed.iter().any(|(f, _)| *f == i) {
                let mut s = server;
                let _ = s.child.kill();
                let _ = s.child.wait();
            } else {
                slots[i] = Some(server);
            }
        }
        if failed.is_empty() {
            break;
        }
        pending = failed;
    }
    for s in slots {
        h.servers
            .push(s.expect("a server process did not start after 5 attempts"));
    }
}

// ---------------------------------------------------------------------------
// HTTP.

#[derive(Debug, Clone)]
struct Resp {
    status: u16,
    etag: Option<String>,
    body: Value,
}

impl Resp {
    fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
    fn ok(self, status: u16, what: &str) -> Value {
        assert_eq!(self.status, status, "{what}: {}", self.body);
        self.body
    }
}

async fn call(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
    if_match: Option<&str>,
) -> Resp {
    let mut rb = http
        .request(method.clone(), format!("{base}{path}"))
        .bearer_auth(token);
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    if let Some(v) = if_match {
        rb = rb.header("If-Match", v);
    }
    let r = rb
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {base}{path}: {e}"));
    let status = r.status().as_u16();
    let etag = r
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let text = r.text().await.unwrap_or_default();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    Resp { status, etag, body }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("http client")
}

fn price(amount: &str, currency: &str) -> Value {
    json!({"amount": amount, "currency": currency})
}

/// Runs `work(client_index, http, item)` on `CLIENTS` tasks pulling items from one queue.
async fn run_clients<T, R, F, Fut>(items: Vec<T>, work: F) -> Vec<R>
where
    T: Send + 'static,
    R: Send + 'static,
    F: Fn(usize, reqwest::Client, T) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = R> + Send,
{
    let queue = Arc::new(Mutex::new(items.into_iter().collect::<Vec<T>>()));
    queue.lock().unwrap().reverse();
    let work = Arc::new(work);
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let queue = queue.clone();
        let work = work.clone();
        tasks.push(tokio::spawn(async move {
            let http = client();
            let mut out = Vec::new();
            loop {
                let Some(item) = queue.lock().unwrap().pop() else {
                    break;
                };
                out.push(work(c, http.clone(), item).await);
            }
            out
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("client task"));
    }
    all
}

async fn ledger(http: &reqwest::Client, base: &str, token: &str, sku: &str) -> Vec<Value> {
    let body = call(
        http,
        base,
        token,
        Method::GET,
        &format!("/v1/listings/{sku}/ledger"),
        None,
        None,
    )
    .await
    .ok(200, "ledger");
    body["entries"].as_array().expect("entries").clone()
}

async fn listings(http: &reqwest::Client, base: &str, token: &str, sku: &str) -> Vec<Value> {
    let body = call(
        http,
        base,
        token,
        Method::GET,
        &format!("/v1/listings/{sku}"),
        None,
        None,
    )
    .await
    .ok(200, "listings");
    body["listings"].as_array().expect("listings").clone()
}

// ---------------------------------------------------------------------------
// The test.

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_one_postgres_database() {
    let admin = match std::env::var(POSTGRES_ENV) {
        Ok(a) if !a.trim().is_empty() => a,
        _ => {
            println!("skipped: {POSTGRES_ENV} is not set");
            return;
        }
    };
    let started = Instant::now();
    let a = admin.clone();
    let url = std::thread::spawn(move || onestock_store::postgres::create_test_database(&a))
        .join()
        .expect("join")
        .expect("create a test database");
    let mut h = Harness {
        servers: Vec::new(),
        database: Some((admin, url.clone())),
        dir: tempfile::tempdir().expect("temp dir"),
    };
    let http = client();
    start_both(&mut h, &url, &http).await;
    let bases: [String; 2] = [h.servers[0].base.clone(), h.servers[1].base.clone()];
    let (pa, pb) = (bases[0].as_str(), bases[1].as_str());
    println!("processes: A {pa}, B {pb} on {url}");

    // --- Setup through A.
    let seller = call(
        &http,
        pa,
        OPERATOR_TOKEN,
        Method::POST,
        "/v1/sellers",
        Some(json!({"name": "Two Process"})),
        None,
    )
    .await
    .ok(201, "create seller");
    let seller_id = seller["seller_id"].clone();
    let token = seller["token"].as_str().expect("token").to_owned();

    let product = |store: &str, title: &str, language: &str| {
        json!({
            "store": store, "product_type": "KITCHEN", "title": title, "brand": "Acme",
            "language": language, "identifiers": [{"type": "UPC", "value": UPC}],
        })
    };
    let us = call(
        &http,
        pa,
        &token,
        Method::POST,
        "/v1/catalog/items",
        Some(product("US", "Blue mug", "en")),
        None,
    )
    .await
    .ok(201, "product in US");
    let asin = us["asin"].as_str().expect("asin").to_owned();
    for (store, title, lang) in [("CA", "Blue mug", "en"), ("MX", "Taza azul", "es")] {
        let r = call(
            &http,
            pa,
            &token,
            Method::POST,
            "/v1/catalog/items",
            Some(product(store, title, lang)),
            None,
        )
        .await
        .ok(201, "product in another store");
        assert_eq!(r["asin"], json!(asin), "{store}: {r}");
        assert_eq!(r["matched"], json!(true), "{store}: {r}");
    }
    let put = |sku: &str, store: &str, body: Value| {
        let (http, token, sku, store) = (
            http.clone(),
            token.clone(),
            sku.to_owned(),
            store.to_owned(),
        );
        async move {
            call(
                &http,
                pa,
                &token,
                Method::PUT,
                &format!("/v1/listings/{sku}/stores/{store}"),
                Some(body),
                None,
            )
            .await
            .ok(201, &format!("list {sku} in {store}"))
        }
    };
    put(
        "HOT",
        "US",
        json!({"asin": asin, "price": price("9.99", "USD"), "quantity": UNITS}),
    )
    .await;
    put(
        "HOT",
        "CA",
        json!({"asin": asin, "price": price("12.99", "CAD"), "share": "existing"}),
    )
    .await;
    let mx = put(
        "HOT",
        "MX",
        json!({"asin": asin, "price": price("199.00", "MXN"), "share": "existing"}),
    )
    .await;
    assert_eq!(mx["quantity"], json!(UNITS), "{mx}");
    assert_eq!(mx["pool_stores"], json!(["US", "CA", "MX"]), "{mx}");
    put(
        "RESTOCK",
        "US",
        json!({"asin": asin, "price": price("4.99", "USD"), "quantity": RESTOCK_START}),
    )
    .await;
    let setup_done = Instant::now();

    // Problems found, all reported together at the end.
    let problems: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));

    // --- Phase 1: 400 orders, each sent to one process and replayed to the other at once.
    let b2 = bases.clone();
    let sid = seller_id.clone();
    let results = run_clients((0..ORDERS).collect(), move |c, http, i| {
        let bases = b2.clone();
        let sid = sid.clone();
        async move {
            let store = STORES[i % 3];
            let path = format!("/v1/stores/{store}/orders");
            let body = json!({
                "order_id": format!("hot-{i}"),
                "lines": [{"seller_id": sid, "sku": "HOT", "quantity": 1}],
            });
            let (first, other) = (&bases[c % 2], &bases[(c + 1) % 2]);
            let (r1, r2) = tokio::join!(
                call(
                    &http,
                    first,
                    OPERATOR_TOKEN,
                    Method::POST,
                    &path,
                    Some(body.clone()),
                    None
                ),
                call(
                    &http,
                    other,
                    OPERATOR_TOKEN,
                    Method::POST,
                    &path,
                    Some(body),
                    None
                ),
            );
            (i, r1, r2)
        }
    })
    .await;

    let mut accepted: BTreeMap<usize, Value> = BTreeMap::new();
    let mut refused = 0usize;
    let mut outcome_kinds: BTreeMap<String, usize> = BTreeMap::new();
    for (i, r1, r2) in &results {
        let kind = format!("{}/{} + {}/{}", r1.status, r1.code(), r2.status, r2.code());
        let mut pair = [
            (r1.status, r1.code().to_owned()),
            (r2.status, r2.code().to_owned()),
        ];
        pair.sort();
        *outcome_kinds
            .entry(format!(
                "{}{} + {}{}",
                pair[0].0, pair[0].1, pair[1].0, pair[1].1
            ))
            .or_default() += 1;
        match (r1.status, r2.status) {
            (201, 200) | (200, 201) => {
                if r1.body != r2.body {
                    problems.lock().unwrap().push(format!(
                        "order hot-{i}: the replay's body differs from the 201's: {} vs {}",
                        r1.body, r2.body
                    ));
                }
                let body = if r1.status == 201 { &r1.body } else { &r2.body };
                accepted.insert(*i, body.clone());
            }
            (409, 409)
                if r1.code() == "INSUFFICIENT_STOCK" && r2.code() == "INSUFFICIENT_STOCK" =>
            {
                refused += 1
            }
            _ => {
                problems.lock().unwrap().push(format!(
                    "order hot-{i} sent to both processes at once: {kind}: {} | {}",
                    r1.body, r2.body
                ));
                if r1.status == 201 || r2.status == 201 || r1.status == 200 || r2.status == 200 {
                    let body = if r1.status == 201 || r1.status == 200 {
                        &r1.body
                    } else {
                        &r2.body
                    };
                    accepted.insert(*i, body.clone());
                }
            }
        }
    }
    let order_phase = setup_done.elapsed();
    println!(
        "orders: {} accepted, {refused} refused, outcomes {outcome_kinds:?}, {:.2?}",
        accepted.len(),
        order_phase
    );
    if accepted.len() != UNITS as usize {
        problems.lock().unwrap().push(format!(
            "{} distinct orders accepted, expected exactly {UNITS}",
            accepted.len()
        ));
    }
    // Every accepted order saw a distinct quantity_after, 0..UNITS-1 once each.
    let mut afters: Vec<i64> = accepted
        .values()
        .filter_map(|b| b["lines"][0]["quantity_after"].as_i64())
        .collect();
    afters.sort();
    if afters != (0..UNITS).collect::<Vec<_>>() {
        problems.lock().unwrap().push(format!(
            "quantity_after of the accepted orders is not 0..{UNITS} once each: {afters:?}"
        ));
    }
    for (i, b) in &accepted {
        let stores = &b["lines"][0]["stores"];
        if stores != &json!(["US", "CA", "MX"]) {
            problems.lock().unwrap().push(format!(
                "order hot-{i}: line stores {stores}, expected US, CA, MX"
            ));
            break;
        }
    }
    let mid = listings(&http, pb, &token, "HOT").await;
    for l in &mid {
        assert_eq!(
            l["quantity"],
            json!(0),
            "HOT after the sale, read through B: {l}"
        );
    }

    // --- Phase 2: cancel 20 accepted orders, each cancel sent to both processes at once.
    let to_cancel: Vec<usize> = accepted
        .keys()
        .copied()
        .step_by((accepted.len() / CANCELS).max(1))
        .take(CANCELS)
        .collect();
    assert_eq!(to_cancel.len(), CANCELS.min(accepted.len()));
    let b2 = bases.clone();
    let cancel_results = run_clients(to_cancel.clone(), move |_, http, i| {
        let bases = b2.clone();
        async move {
            let path = format!("/v1/stores/{}/orders/hot-{i}/cancel", STORES[i % 3]);
            let (r1, r2) = tokio::join!(
                call(
                    &http,
                    &bases[0],
                    OPERATOR_TOKEN,
                    Method::POST,
                    &path,
                    None,
                    None
                ),
                call(
                    &http,
                    &bases[1],
                    OPERATOR_TOKEN,
                    Method::POST,
                    &path,
                    None,
                    None
                ),
            );
            (i, r1, r2)
        }
    })
    .await;
    for (i, r1, r2) in &cancel_results {
        let want = json!({"order_id": format!("hot-{i}"), "status": "cancelled"});
        for (who, r) in [("A", r1), ("B", r2)] {
            if r.status != 200 || r.body != want {
                problems.lock().unwrap().push(format!(
                    "cancel hot-{i} through {who}: {} {}, expected 200 {want}",
                    r.status, r.body
                ));
            }
        }
    }

    // --- Phase 3: read-then-PATCH with If-Match on RESTOCK from both processes.
    let b2 = bases.clone();
    let tok = token.clone();
    let p2 = problems.clone();
    let patch_results = run_clients(
        (0..CLIENTS * RESTOCK_ROUNDS).collect(),
        move |c, http, _| {
            let base = b2[c % 2].clone();
            let tok = tok.clone();
            let problems = p2.clone();
            async move {
                let read = call(
                    &http,
                    &base,
                    &tok,
                    Method::GET,
                    "/v1/listings/RESTOCK",
                    None,
                    None,
                )
                .await;
                assert_eq!(read.status, 200, "read RESTOCK: {}", read.body);
                // GET /v1/listings/{sku} answers a list; the pool version is in the view (and
                // in the ETag where the server gives one).
                let version = match &read.etag {
                    Some(e) => e.clone(),
                    None => format!("\"{}\"", read.body["listings"][0]["pool_version"]),
                };
                let r = call(
                    &http,
                    &base,
                    &tok,
                    Method::PATCH,
                    "/v1/listings/RESTOCK/stores/US",
                    Some(json!({"quantity_delta": 1})),
                    Some(&version),
                )
                .await;
                match (r.status, r.code()) {
                    (200, _) => {
                        let view = &r.body["listing"];
                        let want = format!("\"{}\"", view["pool_version"]);
                        if r.etag.as_deref() != Some(want.as_str())
                            || r.body["affected_stores"] != json!(["US"])
                            || format!("\"{}\"", view["pool_version"]) == version
                        {
                            problems.lock().unwrap().push(format!(
                                "PATCH RESTOCK If-Match {version}: ETag {:?}, body {}",
                                r.etag, r.body
                            ));
                        }
                    }
                    (412, "VERSION_MISMATCH") => {}
                    _ => problems.lock().unwrap().push(format!(
                        "PATCH RESTOCK If-Match {version}: {} {}",
                        r.status, r.body
                    )),
                }
                (version, r)
            }
        },
    )
    .await;
    let oks: Vec<&(String, Resp)> = patch_results
        .iter()
        .filter(|(_, r)| r.status == 200)
        .collect();
    let mismatches = patch_results
        .iter()
        .filter(|(_, r)| r.status == 412)
        .count();
    // No two successful changes were based on the same version (no lost update).
    let mut based_on = HashSet::new();
    for (v, r) in &oks {
        if !based_on.insert(v.clone()) {
            problems.lock().unwrap().push(format!(
                "two PATCHes with If-Match {v} both succeeded (lost update); one answered {}",
                r.body
            ));
        }
    }
    println!(
        "RESTOCK PATCH with If-Match: {} ok, {mismatches} VERSION_MISMATCH",
        oks.len()
    );
    if oks.is_empty() {
        problems
            .lock()
            .unwrap()
            .push("no PATCH with If-Match succeeded".into());
    }

    // --- Afterwards, read through both processes.
    for base in [pa, pb] {
        let hot = listings(&http, base, &token, "HOT").await;
        let stores: Vec<&str> = hot.iter().filter_map(|l| l["store"].as_str()).collect();
        assert_eq!(stores, ["US", "CA", "MX"], "{hot:?}");
        let q: Vec<i64> = hot
            .iter()
            .map(|l| l["quantity"].as_i64().expect("quantity"))
            .collect();
        if q.iter().any(|x| *x != q[0]) || q[0] < 0 {
            problems
                .lock()
                .unwrap()
                .push(format!("HOT quantities through {base}: {q:?}"));
        }
        if q[0] != to_cancel.len() as i64 {
            problems.lock().unwrap().push(format!(
                "HOT quantity through {base} is {}, expected {} (one unit back per cancelled order)",
                q[0],
                to_cancel.len()
            ));
        }
        let pools: HashSet<String> = hot.iter().map(|l| l["pool_id"].to_string()).collect();
        if pools.len() != 1 {
            problems
                .lock()
                .unwrap()
                .push(format!("HOT pools through {base}: {pools:?}"));
        }

        let restock = listings(&http, base, &token, "RESTOCK").await;
        let rq = restock[0]["quantity"].as_i64().expect("quantity");
        if rq != RESTOCK_START + oks.len() as i64 {
            problems.lock().unwrap().push(format!(
                "RESTOCK quantity through {base} is {rq}, expected {RESTOCK_START} + {} successful PATCHes",
                oks.len()
            ));
        }
    }

    // HOT's ledger.
    let hot_quantity = listings(&http, pa, &token, "HOT").await[0]["quantity"]
        .as_i64()
        .unwrap();
    let entries = ledger(&http, pb, &token, "HOT").await;
    let sum: i64 = entries
        .iter()
        .map(|e| e["delta"].as_i64().expect("delta"))
        .sum();
    if sum != hot_quantity {
        problems.lock().unwrap().push(format!(
            "HOT ledger deltas sum to {sum}, quantity is {hot_quantity}"
        ));
    }
    let mut by_reason: BTreeMap<String, usize> = BTreeMap::new();
    let mut order_refs: HashMap<String, usize> = HashMap::new();
    let mut cancel_refs: HashMap<String, usize> = HashMap::new();
    for e in &entries {
        let reason = e["reason"].as_str().unwrap_or("?").to_owned();
        *by_reason.entry(reason.clone()).or_default() += 1;
        let reference = e["reference"].as_str().unwrap_or("").to_owned();
        match reason.as_str() {
            "order" => *order_refs.entry(reference).or_default() += 1,
            "cancel" => *cancel_refs.entry(reference).or_default() += 1,
            _ => {}
        }
    }
    for i in accepted.keys() {
        let n = order_refs.get(&format!("hot-{i}")).copied().unwrap_or(0);
        if n != 1 {
            problems.lock().unwrap().push(format!(
                "accepted order hot-{i} has {n} `order` ledger entries"
            ));
        }
    }
    if order_refs.len() != accepted.len() {
        let extra: Vec<&String> = order_refs
            .keys()
            .filter(|r| !accepted.keys().any(|i| **r == format!("hot-{i}")))
            .collect();
        problems.lock().unwrap().push(format!(
            "`order` ledger entries for orders not accepted: {extra:?}"
        ));
    }
    for i in &to_cancel {
        let n = cancel_refs.get(&format!("hot-{i}")).copied().unwrap_or(0);
        if n != 1 {
            problems.lock().unwrap().push(format!(
                "cancelled order hot-{i} has {n} `cancel` ledger entries"
            ));
        }
    }
    if cancel_refs.len() != to_cancel.len() {
        problems.lock().unwrap().push(format!(
            "{} orders have `cancel` entries, {} were cancelled",
            cancel_refs.len(),
            to_cancel.len()
        ));
    }
    // In seq order, each entry's quantity_after is the running sum of the deltas.
    let mut sorted = entries.clone();
    sorted.sort_by_key(|e| e["seq"].as_i64().unwrap_or(0));
    let mut running = 0i64;
    for e in &sorted {
        running += e["delta"].as_i64().unwrap_or(0);
        if e["quantity_after"].as_i64() != Some(running) {
            problems.lock().unwrap().push(format!(
                "HOT ledger entry {e}: quantity_after is not the running sum {running}"
            ));
            break;
        }
    }

    // RESTOCK's ledger.
    let rentries = ledger(&http, pa, &token, "RESTOCK").await;
    let adjusts = rentries
        .iter()
        .filter(|e| e["reason"] == json!("adjust"))
        .count();
    if adjusts != oks.len() {
        problems.lock().unwrap().push(format!(
            "RESTOCK has {adjusts} `adjust` ledger entries, {} PATCHes succeeded",
            oks.len()
        ));
    }
    let rsum: i64 = rentries
        .iter()
        .map(|e| e["delta"].as_i64().unwrap_or(0))
        .sum();
    if rsum != RESTOCK_START + oks.len() as i64 {
        problems.lock().unwrap().push(format!(
            "RESTOCK ledger deltas sum to {rsum}, expected {}",
            RESTOCK_START + oks.len() as i64
        ));
    }

    // Events: seq 1..n, no gaps, no duplicates, paged alternately through A and B.
    let mut seqs: Vec<i64> = Vec::new();
    let mut quantity_events = 0usize;
    let mut after = 0i64;
    for page in 0.. {
        let base = &bases[page % 2];
        let r = call(
            &http,
            base,
            &token,
            Method::GET,
            &format!("/v1/events?after={after}"),
            None,
            None,
        )
        .await
        .ok(200, "events");
        let events = r["events"].as_array().expect("events").clone();
        if events.is_empty() {
            break;
        }
        assert!(events.len() <= 500, "{} events in one call", events.len());
        for e in &events {
            seqs.push(e["seq"].as_i64().expect("seq"));
            if e["type"] == json!("quantity_changed") {
                quantity_events += 1;
            }
        }
        after = *seqs.last().unwrap();
        assert!(page < 1000, "the event feed does not end");
    }
    if seqs != (1..=seqs.len() as i64).collect::<Vec<_>>() {
        let mut seen = HashSet::new();
        let dups: Vec<i64> = seqs.iter().copied().filter(|s| !seen.insert(*s)).collect();
        let max = seqs.iter().copied().max().unwrap_or(0);
        let missing: Vec<i64> = (1..=max).filter(|s| !seen.contains(s)).collect();
        problems.lock().unwrap().push(format!(
            "event seqs are not 1..{}: duplicates {dups:?}, missing {missing:?}",
            seqs.len()
        ));
    }
    let ledger_total = entries.len() + rentries.len();
    if quantity_events != ledger_total {
        problems.lock().unwrap().push(format!(
            "{quantity_events} quantity_changed events, {ledger_total} ledger entries"
        ));
    }

    println!(
        "summary: {} orders accepted, {refused} refused; {} cancelled; RESTOCK {} ok / {mismatches} VERSION_MISMATCH; \
         HOT ledger {by_reason:?}; {} events; setup+startup {:.2?}, total {:.2?}",
        accepted.len(),
        to_cancel.len(),
        oks.len(),
        seqs.len(),
        setup_done.duration_since(started),
        started.elapsed()
    );
    let problems = problems.lock().unwrap().clone();
    if !problems.is_empty() {
        for s in &h.servers {
            eprintln!("--- log of {}:\n{}", s.base, tail(&s.log));
        }
        panic!("{} problems:\n{}", problems.len(), problems.join("\n"));
    }
}

/// An upload received by A while B polls the same database: B's worker may pick the
/// upload too (it can read A's file on this machine). However the two share the work,
/// every row is applied once and the upload ends DONE, not FATAL.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_upload_with_two_processes_running_is_applied_once() {
    const ROWS: usize = 6_000;
    let admin = match std::env::var(POSTGRES_ENV) {
        Ok(a) if !a.trim().is_empty() => a,
        _ => {
            println!("skipped: {POSTGRES_ENV} is not set");
            return;
        }
    };
    let a = admin.clone();
    let url = std::thread::spawn(move || onestock_store::postgres::create_test_database(&a))
        .join()
        .expect("join")
        .expect("create a test database");
    let mut h = Harness {
        servers: Vec::new(),
        database: Some((admin, url.clone())),
        dir: tempfile::tempdir().expect("temp dir"),
    };
    let http = client();
    start_both(&mut h, &url, &http).await;
    let (pa, pb) = (h.servers[0].base.clone(), h.servers[1].base.clone());
    let seller = call(
        &http,
        &pa,
        OPERATOR_TOKEN,
        Method::POST,
        "/v1/sellers",
        Some(json!({"name": "Upload Seller"})),
        None,
    )
    .await
    .ok(201, "create seller");
    let token = seller["token"].as_str().expect("token").to_owned();
    call(
        &http,
        &pa,
        &token,
        Method::POST,
        "/v1/catalog/items",
        Some(
            json!({"store": "US", "product_type": "KITCHEN", "title": "Blue mug",
            "brand": "Acme", "language": "en", "identifiers": [{"type": "UPC", "value": UPC}]}),
        ),
        None,
    )
    .await
    .ok(201, "product");
    let mut file = String::from("sku\tproduct-id\tproduct-id-type\tprice\tquantity\n");
    for i in 0..ROWS {
        file.push_str(&format!("U-{i:05}\t{UPC}\t3\t9.99\t1\n"));
    }
    let r = http
        .post(format!("{pa}/v1/uploads?store=US"))
        .bearer_auth(&token)
        .body(file)
        .send()
        .await
        .expect("upload");
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let body: Value = r.json().await.expect("json");
    let id = body["upload_id"].as_str().expect("upload_id").to_owned();
    let deadline = Instant::now() + Duration::from_secs(120);
    let state = loop {
        // Poll through B: both processes read the same progress.
        let s = call(
            &http,
            &pb,
            &token,
            Method::GET,
            &format!("/v1/uploads/{id}"),
            None,
            None,
        )
        .await
        .ok(200, "upload status");
        if s["status"] == "DONE" || s["status"] == "FATAL" {
            break s;
        }
        assert!(Instant::now() < deadline, "upload did not finish: {s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(state["status"], "DONE", "{state}");
    assert_eq!(state["records_processed"], json!(ROWS), "{state}");
    assert_eq!(state["records_successful"], json!(ROWS), "{state}");
    // Every SKU once, each with one upload entry in its ledger.
    let mut cursor: Option<String> = None;
    let mut skus = Vec::new();
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/listings?limit=1000&cursor={c}"),
            None => "/v1/listings?limit=1000".into(),
        };
        let page = call(&http, &pa, &token, Method::GET, &path, None, None)
            .await
            .ok(200, "listing page");
        for it in page["items"].as_array().expect("items") {
            assert_eq!(it["quantity"], json!(1), "{it}");
            skus.push(it["sku"].as_str().expect("sku").to_owned());
        }
        match &page["next_cursor"] {
            Value::String(c) => cursor = Some(c.clone()),
            _ => break,
        }
    }
    let distinct: HashSet<&String> = skus.iter().collect();
    assert_eq!(skus.len(), ROWS);
    assert_eq!(distinct.len(), ROWS);
    for i in [0, 1999, 2000, 2001, ROWS - 1] {
        let entries = ledger(&http, &pa, &token, &format!("U-{i:05}")).await;
        let uploads = entries.iter().filter(|e| e["reason"] == "upload").count();
        assert_eq!(uploads, 1, "U-{i:05}: {entries:?}");
    }
}

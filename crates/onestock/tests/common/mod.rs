//! The harness of the HTTP tests: the real server on port 0, on a throwaway SQLite file
//! or a throwaway PostgreSQL database, a clock the tests move, and small clients so each
//! test reads like the rule of SPEC.md it proves.
#![allow(dead_code)]

pub mod python;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use onestock::server::{ServerConfig, build, serve};
use onestock_core::clock::{Clock, ManualClock};
use onestock_core::region::Region;
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::datetime;

pub const OPERATOR_TOKEN: &str = "test-operator-token";
pub const POSTGRES_ENV: &str = "ONESTOCK_TEST_POSTGRES_URL";

/// Where "now" stands when a test starts.
pub const START: OffsetDateTime = datetime!(2025-06-01 12:00 UTC);

/// The region file of SPEC.md section 2: the default one with FIREWORKS restricted in CA.
pub const RESTRICTED_REGION_TOML: &str = r#"
name = "North America"

[[stores]]
code = "US"
name = "United States"
currency = "USD"
languages = ["en"]
marketplace_id = "ATVPDKIKX0DER"

[[stores]]
code = "CA"
name = "Canada"
currency = "CAD"
languages = ["en", "fr"]
marketplace_id = "A2EUQ1WTGCTBG2"
restricted_product_types = ["FIREWORKS"]   # may not be listed in this store

[[stores]]
code = "MX"
name = "Mexico"
currency = "MXN"
languages = ["es"]
marketplace_id = "A1AM78C64UM0Y8"
"#;

pub fn default_region() -> Region {
    Region::north_america()
}

pub fn restricted_region() -> Region {
    Region::from_toml(RESTRICTED_REGION_TOML).expect("the SPEC's example region file")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// One running server with its own database.
pub struct TestApp {
    pub base: String,
    pub clock: Arc<ManualClock>,
    pub http: reqwest::Client,
    pub backend: Backend,
    database_url: String,
    region: Region,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
    /// The PostgreSQL test database, dropped at the end.
    postgres: Option<PgDatabase>,
    /// Requests per second and token; takes effect at the next `restart`.
    pub rate_limit: u32,
    _dir: tempfile::TempDir,
}

impl TestApp {
    /// Starts the server; `None` (after saying so) when the backend is not available.
    pub async fn spawn(backend: Backend, region: Region) -> Option<TestApp> {
        let dir = tempfile::tempdir().expect("temp dir");
        let (database_url, postgres) = match backend {
            Backend::Sqlite => (
                format!("sqlite:{}", dir.path().join("t.db").display()),
                None,
            ),
            Backend::Postgres => {
                let db = PgDatabase::create().await?;
                (db.url.clone(), Some(db))
            }
        };
        let upload_dir = dir.path().join("uploads");
        std::fs::create_dir_all(&upload_dir).expect("upload dir");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(64)
            .build()
            .expect("http client");
        let mut app = TestApp {
            rate_limit: onestock::server::RATE_LIMIT_DEFAULT,
            base: String::new(),
            clock: Arc::new(ManualClock::new(START)),
            http,
            backend,
            database_url,
            region,
            shutdown: None,
            server: None,
            postgres,
            _dir: dir,
        };
        app.start_server("127.0.0.1:0").await;
        Some(app)
    }

    async fn start_server(&mut self, addr: &str) {
        let app = build(ServerConfig {
            database_url: self.database_url.clone(),
            region: self.region.clone(),
            clock: self.clock.clone() as Arc<dyn Clock>,
            operator_token: Some(OPERATOR_TOKEN.into()),
            upload_dir: self._dir.path().join("uploads"),
            rate_limit_per_second: self.rate_limit,
        })
        .await
        .expect("build the server");
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let state = app.state.clone();
        let server = tokio::spawn(async move {
            let _ = serve(listener, state, async {
                let _ = rx.await;
            })
            .await;
        });
        self.base = format!("http://{addr}");
        self.shutdown = Some(tx);
        self.server = Some(server);
    }

    /// Stops the server and starts it again on the same database and address: what
    /// was committed must still be there.
    pub async fn restart(&mut self) {
        let addr = self.base.trim_start_matches("http://").to_string();
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(mut h) = self.server.take() {
            // Graceful: open connections are closed before the listener goes.
            if tokio::time::timeout(Duration::from_secs(10), &mut h)
                .await
                .is_err()
            {
                h.abort();
                let _ = h.await;
            }
        }
        // Connections of the old server are gone; so are the pooled ones.
        self.http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("http client");
        self.start_server(&addr).await;
    }

    /// The database the server runs on (for tests that look behind the API).
    pub fn database_url(&self) -> &str {
        &self.database_url
    }

    /// A client without a token.
    pub fn anonymous(&self) -> Client {
        Client {
            http: self.http.clone(),
            base: self.base.clone(),
            token: None,
            seller_id: Value::Null,
        }
    }

    /// A client with any token.
    pub fn with_token(&self, token: &str) -> Client {
        Client {
            token: Some(token.to_string()),
            ..self.anonymous()
        }
    }

    pub fn operator(&self) -> Client {
        self.with_token(OPERATOR_TOKEN)
    }

    /// `POST /v1/sellers` → a client with the new seller's token.
    pub async fn new_seller(&self, name: &str) -> Client {
        let r = self
            .operator()
            .post("/v1/sellers", json!({ "name": name }))
            .await;
        assert_eq!(r.status, 201, "create seller: {}", r.body);
        let token = r.body["token"].as_str().expect("token").to_string();
        let seller_id = r.body["seller_id"].clone();
        assert!(
            seller_id.is_string() || seller_id.is_number(),
            "seller_id: {}",
            r.body
        );
        Client {
            token: Some(token),
            seller_id,
            ..self.anonymous()
        }
    }

    /// `POST /v1/stores/{store}/orders` as the operator.
    pub async fn order(&self, store: &str, order_id: &str, lines: &[(&Client, &str, i64)]) -> Resp {
        let lines: Vec<Value> = lines
            .iter()
            .map(|(s, sku, q)| json!({ "seller_id": s.seller_id, "sku": sku, "quantity": q }))
            .collect();
        self.operator()
            .post(
                &format!("/v1/stores/{store}/orders"),
                json!({ "order_id": order_id, "lines": lines }),
            )
            .await
    }

    pub async fn cancel(&self, store: &str, order_id: &str) -> Resp {
        self.operator()
            .post(
                &format!("/v1/stores/{store}/orders/{order_id}/cancel"),
                json!({}),
            )
            .await
    }

    /// `GET /healthz` answers 200: the server is still serving.
    pub async fn assert_healthy(&self) {
        let r = self.anonymous().get("/healthz").await;
        assert_eq!(r.status, 200, "healthz: {}", r.body);
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.server.take() {
            h.abort();
        }
        // The database (a field, `PgDatabase`) is dropped after the server is stopped.
    }
}

/// An answer: status, JSON body (Null when empty or not JSON), headers.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub body: Value,
    pub headers: HeaderMap,
    pub text: String,
}

impl Resp {
    /// `error.code`, or "" when the body is not an error.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    /// The `ETag` header as a number (quotes and `W/` removed).
    pub fn etag(&self) -> Option<u64> {
        let raw = self.headers.get("etag")?.to_str().ok()?;
        raw.trim()
            .trim_start_matches("W/")
            .trim_matches('"')
            .parse()
            .ok()
    }

    /// The raw `ETag` header, to send back as `If-Match`.
    pub fn etag_raw(&self) -> String {
        self.headers
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    }

    /// Asserts the status and, for errors, the SPEC's error shape and code.
    #[track_caller]
    pub fn expect(&self, status: u16, code: &str) -> &Self {
        assert_eq!(
            (self.status, self.code()),
            (status, code),
            "expected {status} {code}, got {} {}",
            self.status,
            self.text
        );
        if !code.is_empty() {
            assert!(
                self.body["error"]["message"]
                    .as_str()
                    .is_some_and(|m| !m.is_empty()),
                "error without a message: {}",
                self.text
            );
        }
        self
    }

    #[track_caller]
    pub fn ok(&self, status: u16) -> &Value {
        assert_eq!(self.status, status, "expected {status}, got {}", self.text);
        &self.body
    }
}

/// A caller of the API: a token and, for sellers, the seller id.
#[derive(Clone)]
pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    pub token: Option<String>,
    /// As the API gave it in `POST /v1/sellers`.
    pub seller_id: Value,
}

impl Client {
    /// `GET /v1/uploads/{id}`, expected 200 and well formed.
    pub async fn upload_status(&self, id: &str) -> Value {
        let r = self.get(&format!("/v1/uploads/{id}")).await;
        assert_eq!(r.status, 200, "GET upload {id}: {}", r.text);
        let b = r.body;
        assert_eq!(b["upload_id"], json!(id), "{b}");
        for k in ["records_processed", "records_successful", "records_failed"] {
            assert!(b[k].as_i64().is_some_and(|n| n >= 0), "{k}: {b}");
        }
        assert!(
            b["records_successful"].as_i64().unwrap() + b["records_failed"].as_i64().unwrap()
                <= b["records_processed"].as_i64().unwrap(),
            "{b}"
        );
        b
    }

    /// Polls the upload (each answer well formed) until it is DONE or FATAL, for two
    /// minutes at most.
    pub async fn wait_upload(&self, id: &str) -> Value {
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        loop {
            let b = self.upload_status(id).await;
            match b["status"].as_str().unwrap_or("") {
                "DONE" | "FATAL" => return b,
                "IN_QUEUE" | "IN_PROGRESS" => {}
                other => panic!("upload status {other:?}: {b}"),
            }
            assert!(
                std::time::Instant::now() < deadline,
                "upload {id} never finished: {b}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let bytes = body.map(|b| serde_json::to_vec(&b).expect("json"));
        self.raw(method, path, bytes, "application/json", headers)
            .await
    }

    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        content_type: &str,
        headers: &[(&str, &str)],
    ) -> Resp {
        let mut req = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.header("content-type", content_type).body(b);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.expect("the server answers");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        assert_ne!(status, 500, "a 500 is a defect: {path}: {text}");
        Resp {
            status,
            body,
            headers,
            text,
        }
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send(Method::GET, path, None, &[]).await
    }
    pub async fn delete(&self, path: &str) -> Resp {
        self.send(Method::DELETE, path, None, &[]).await
    }
    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.send(Method::POST, path, Some(body), &[]).await
    }
    pub async fn put(&self, path: &str, body: Value) -> Resp {
        self.send(Method::PUT, path, Some(body), &[]).await
    }
    pub async fn patch(&self, path: &str, body: Value) -> Resp {
        self.send(Method::PATCH, path, Some(body), &[]).await
    }

    // ---- catalog ----

    /// `POST /v1/catalog/items` with product type HOME.
    pub async fn create_product(
        &self,
        store: &str,
        title: &str,
        brand: &str,
        language: &str,
        identifiers: &[(&str, &str)],
    ) -> Resp {
        self.post(
            "/v1/catalog/items",
            product_body(store, "HOME", title, brand, language, identifiers),
        )
        .await
    }

    /// Creates a product (201) and returns its ASIN.
    pub async fn product(
        &self,
        store: &str,
        title: &str,
        brand: &str,
        language: &str,
        identifiers: &[(&str, &str)],
    ) -> String {
        let r = self
            .create_product(store, title, brand, language, identifiers)
            .await;
        assert_eq!(r.status, 201, "create product: {}", r.text);
        r.body["asin"].as_str().expect("asin").to_string()
    }

    /// A product with a detail page in US, CA and MX, matched by one UPC (R3).
    pub async fn product_everywhere(&self, upc: &str) -> String {
        let title = format!("Stainless Steel Water Bottle {upc}");
        let asin = self
            .product("US", &title, "Acme", "en", &[("UPC", upc)])
            .await;
        let ca = self
            .product("CA", &title, "Acme", "en", &[("UPC", upc)])
            .await;
        assert_eq!(ca, asin, "CA page matched by identifier");
        let mx_title = format!("Botella de agua de acero inoxidable para la escuela {upc}");
        let mx = self
            .product("MX", &mx_title, "Acme", "es", &[("UPC", upc)])
            .await;
        assert_eq!(mx, asin, "MX page matched by identifier");
        asin
    }

    // ---- listings ----

    /// `PUT /v1/listings/{sku}/stores/{store}`.
    pub async fn list(&self, sku: &str, store: &str, body: Value) -> Resp {
        self.put(&format!("/v1/listings/{sku}/stores/{store}"), body)
            .await
    }

    /// `PATCH /v1/listings/{sku}/stores/{store}`.
    pub async fn change(&self, sku: &str, store: &str, body: Value) -> Resp {
        self.patch(&format!("/v1/listings/{sku}/stores/{store}"), body)
            .await
    }

    pub async fn close(&self, sku: &str, store: &str) -> Resp {
        self.post(
            &format!("/v1/listings/{sku}/stores/{store}/close"),
            json!({}),
        )
        .await
    }

    pub async fn relist(&self, sku: &str, store: &str) -> Resp {
        self.post(
            &format!("/v1/listings/{sku}/stores/{store}/relist"),
            json!({}),
        )
        .await
    }

    /// `GET /v1/listings/{sku}`, expected 200.
    pub async fn listings(&self, sku: &str) -> Value {
        let r = self.get(&format!("/v1/listings/{sku}")).await;
        assert_eq!(r.status, 200, "GET listing {sku}: {}", r.text);
        r.body
    }

    /// The listing view of (sku, store), read afresh.
    pub async fn view(&self, sku: &str, store: &str) -> Value {
        let all = self.listings(sku).await;
        all["listings"]
            .as_array()
            .expect("listings")
            .iter()
            .find(|l| l["store"] == store)
            .unwrap_or_else(|| panic!("no {store} listing for {sku}: {all}"))
            .clone()
    }

    pub async fn quantity(&self, sku: &str, store: &str) -> i64 {
        self.view(sku, store).await["quantity"]
            .as_i64()
            .expect("quantity")
    }

    /// `GET /v1/listings/{sku}/ledger` entries.
    pub async fn ledger(&self, sku: &str) -> Vec<Value> {
        let r = self.get(&format!("/v1/listings/{sku}/ledger")).await;
        assert_eq!(r.status, 200, "ledger {sku}: {}", r.text);
        r.body["entries"].as_array().expect("entries").clone()
    }

    /// `GET /v1/events?after=N` (no wait).
    pub async fn events(&self, after: u64) -> Value {
        let r = self.get(&format!("/v1/events?after={after}")).await;
        assert_eq!(r.status, 200, "events: {}", r.text);
        r.body
    }
}

pub fn product_body(
    store: &str,
    product_type: &str,
    title: &str,
    brand: &str,
    language: &str,
    identifiers: &[(&str, &str)],
) -> Value {
    json!({
        "store": store,
        "product_type": product_type,
        "title": title,
        "brand": brand,
        "language": language,
        "identifiers": identifiers
            .iter()
            .map(|(t, v)| json!({ "type": t, "value": v }))
            .collect::<Vec<_>>(),
    })
}

pub fn price(amount: &str, currency: &str) -> Value {
    json!({ "amount": amount, "currency": currency })
}
pub fn usd(amount: &str) -> Value {
    price(amount, "USD")
}
pub fn cad(amount: &str) -> Value {
    price(amount, "CAD")
}
pub fn mxn(amount: &str) -> Value {
    price(amount, "MXN")
}

/// The store's currency, for tests that loop over stores.
pub fn currency(store: &str) -> &'static str {
    match store {
        "US" => "USD",
        "CA" => "CAD",
        "MX" => "MXN",
        other => panic!("no store {other}"),
    }
}

/// A valid UPC-A made from `n` (11 digits and a check digit), for tests that need many
/// products.
pub fn upc(n: u64) -> String {
    let body = format!("{:011}", n % 100_000_000_000);
    let mut sum = 0;
    for (i, c) in body.chars().rev().enumerate() {
        let d = c.to_digit(10).unwrap();
        sum += if i % 2 == 0 { d * 3 } else { d };
    }
    format!("{body}{}", (10 - sum % 10) % 10)
}

/// `Value` array of strings as `Vec<&str>`.
pub fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|x| {
            x.as_str()
                .unwrap_or_else(|| panic!("not a string: {x}"))
                .to_string()
        })
        .collect()
}

/// Runs `f` after `delay`, in the background.
pub fn after<F: Future<Output = ()> + Send + 'static>(delay: Duration, f: F) {
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        f.await;
    });
}

/// Every test body twice: once on SQLite, once on PostgreSQL (skipped without
/// `ONESTOCK_TEST_POSTGRES_URL`). `fn name(app)` uses the default region,
/// `fn name(app: restricted_region)` the region given by that function.
#[macro_export]
macro_rules! backend_tests {
    ($( fn $name:ident($app:ident $(: $region:ident)?) $body:block )*) => {
        mod sqlite {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let region = $crate::backend_tests!(@region $($region)?);
                    let Some($app) = common::TestApp::spawn(common::Backend::Sqlite, region).await
                    else { return };
                    $body
                }
            )*
        }
        mod postgres {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let region = $crate::backend_tests!(@region $($region)?);
                    let Some($app) = common::TestApp::spawn(common::Backend::Postgres, region).await
                    else { return };
                    $body
                }
            )*
        }
    };
    (@region) => { common::default_region() };
    (@region $region:ident) => { common::$region() };
}

/// A test database made by `create_test_database`, dropped at the end whatever happens
/// (on a thread of its own: the synchronous PostgreSQL client may not run on a runtime
/// thread).
pub struct PgDatabase {
    pub admin: String,
    pub url: String,
}

impl PgDatabase {
    /// A fresh database on the server of `POSTGRES_ENV`, or None (said on stdout) when
    /// it is not set.
    pub async fn create() -> Option<PgDatabase> {
        let admin = match std::env::var(POSTGRES_ENV) {
            Ok(a) if !a.trim().is_empty() => a,
            _ => {
                println!("skipped: {POSTGRES_ENV} is not set");
                return None;
            }
        };
        let a = admin.clone();
        let url =
            tokio::task::spawn_blocking(move || onestock_store::postgres::create_test_database(&a))
                .await
                .expect("join")
                .expect("create a test database");
        Some(PgDatabase { admin, url })
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let (admin, url) = (self.admin.clone(), self.url.clone());
        let _ = std::thread::spawn(move || onestock_store::postgres::drop_database(&admin, &url))
            .join();
    }
}

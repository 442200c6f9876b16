//! Uploads are applied exactly once across crashes (SPEC.md section 5, R23): the real
//! `onestock serve` binary runs as a subprocess, is killed with SIGKILL while a large
//! file is being applied, and is started again on the same database and upload folder.
//! Every row of the file creates its own SKU, so a row applied twice or lost shows in
//! the listing count, the quantities, the ledgers and the report.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Client;
use reqwest::Method;
use serde_json::{Value, json};

const TOKEN: &str = "restart-test-operator-token";
const UPC: &str = "036000291452";
/// Rows of the file: five chunks (`onestock::upload::ROWS_PER_CHUNK`), so that both kills
/// land with the file part applied.
const ROWS: usize = 5 * onestock::upload::ROWS_PER_CHUNK;
/// Every this many rows, one with a bad quantity (a report line, not applied).
const BAD_EVERY: usize = 1000;

/// A running `onestock serve`, killed when dropped.
struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Starts the binary and waits until `/healthz` answers.
async fn start_server(database_url: &str, dir: &Path) -> Server {
    let port = free_port();
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("server.log"))
        .expect("log file");
    let child = Command::new(env!("CARGO_BIN_EXE_onestock"))
        .args([
            "serve",
            "--database-url",
            database_url,
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--upload-dir",
            &dir.join("up").display().to_string(),
        ])
        .env("ONESTOCK_OPERATOR_TOKEN", TOKEN)
        .env("RUST_LOG", "onestock=warn")
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("start onestock serve");
    let server = Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = http.get(format!("{}/healthz", server.base)).send().await
            && r.status().as_u16() == 200
        {
            return server;
        }
        assert!(
            Instant::now() < deadline,
            "the server did not start: {}",
            std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn client(server: &Server, token: &str, seller_id: Value) -> Client {
    Client {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("http client"),
        base: server.base.clone(),
        token: Some(token.to_string()),
        seller_id,
    }
}

fn count(b: &Value, k: &str) -> i64 {
    b[k].as_i64().unwrap_or_else(|| panic!("{k}: {b}"))
}

/// Waits until the upload has applied more than `after` rows and is not finished.
async fn wait_processed_beyond(s: &Client, id: &str, after: i64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let b = s.upload_status(id).await;
        assert!(
            !matches!(b["status"].as_str(), Some("DONE" | "FATAL")),
            "the upload finished before it could be interrupted; make the file larger: {b}"
        );
        if count(&b, "records_processed") > after {
            return b;
        }
        assert!(Instant::now() < deadline, "no progress: {b}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Kills the server with SIGKILL, as a crash would.
fn crash(mut server: Server) {
    server.child.kill().expect("SIGKILL");
    server.child.wait().expect("reap");
}

/// The whole scenario on one database.
async fn exactly_once_across_crashes(database_url: &str, dir: &Path) {
    std::fs::create_dir_all(dir.join("up")).expect("upload dir");
    let server = start_server(database_url, dir).await;
    let op = client(&server, TOKEN, Value::Null);
    let r = op.post("/v1/sellers", json!({"name": "Crash Test"})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let token = r.body["token"].as_str().unwrap().to_string();
    let seller_id = r.body["seller_id"].clone();
    let s = client(&server, &token, seller_id.clone());
    let asin = s
        .product("US", "Blue Ceramic Mug", "Acme", "en", &[("UPC", UPC)])
        .await;

    // Every row a new SKU with quantity 1; every BAD_EVERY-th row fails; one unknown
    // column gives one warning.
    let mut file = String::from("sku\tproduct-id\tproduct-id-type\tprice\tquantity\tcolour\n");
    let mut bad: Vec<i64> = Vec::new();
    for i in 1..=ROWS {
        let quantity = if i % BAD_EVERY == 0 {
            bad.push(i as i64);
            "abc"
        } else {
            "1"
        };
        file.push_str(&format!("R-{i:06}\t{asin}\tASIN\t5.00\t{quantity}\tblue\n"));
    }
    let r = s
        .raw(
            Method::POST,
            "/v1/uploads?store=US",
            Some(file.into_bytes()),
            "text/tab-separated-values",
            &[],
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let id = r.body["upload_id"].as_str().unwrap().to_string();

    // First crash: after the first chunk is in, most likely in the middle of the next.
    let b = wait_processed_beyond(&s, &id, 0).await;
    crash(server);
    let first = count(&b, "records_processed");
    println!("killed once at {b}");

    // Second crash: after some more progress in the second run.
    let server = start_server(database_url, dir).await;
    let s = client(&server, &token, seller_id.clone());
    let b = s.upload_status(&id).await;
    assert!(
        count(&b, "records_processed") >= first,
        "progress lost: {b}"
    );
    let b = wait_processed_beyond(&s, &id, count(&b, "records_processed")).await;
    crash(server);
    println!("killed again at {b}");

    // Third run: to the end.
    let server = start_server(database_url, dir).await;
    let s = client(&server, &token, seller_id);
    let deadline = Instant::now() + Duration::from_secs(300);
    let b = loop {
        let b = s.upload_status(&id).await;
        match b["status"].as_str() {
            Some("DONE") => break b,
            Some("IN_QUEUE" | "IN_PROGRESS") => {}
            other => panic!("status {other:?}: {b}"),
        }
        assert!(Instant::now() < deadline, "never finished: {b}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let rows = ROWS as i64;
    let failed = bad.len() as i64;
    assert_eq!(count(&b, "records_processed"), rows, "{b}");
    assert_eq!(count(&b, "records_failed"), failed, "{b}");
    assert_eq!(count(&b, "records_successful"), rows - failed, "{b}");

    // The report: the summary, one warning, and each failing record exactly once.
    let r = s.get(&format!("/v1/uploads/{id}/report")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let head = format!(
        "Feed Processing Summary:\n\tNumber of records processed\t\t{rows}\n\tNumber of records successful\t\t{}\n\noriginal-record-number\tsku\terror-code\terror-type\terror-message\n",
        rows - failed
    );
    assert!(
        r.text.starts_with(&head),
        "report head:\n{}",
        &r.text[..r.text.len().min(400)]
    );
    let lines: Vec<Vec<&str>> = r.text[head.len()..]
        .lines()
        .map(|l| l.split('\t').collect())
        .collect();
    assert!(lines.iter().all(|f| f.len() == 5), "five fields per line");
    let warnings: Vec<&Vec<&str>> = lines.iter().filter(|f| f[3] == "Warning").collect();
    assert_eq!(
        warnings.len(),
        1,
        "one UNKNOWN_COLUMN warning: {warnings:?}"
    );
    assert_eq!(warnings[0][..4], ["0", "", "UNKNOWN_COLUMN", "Warning"]);
    let errors: Vec<(i64, &str, &str)> = lines
        .iter()
        .filter(|f| f[3] == "Error")
        .map(|f| (f[0].parse().unwrap(), f[1], f[2]))
        .collect();
    let records: Vec<i64> = errors.iter().map(|e| e.0).collect();
    assert_eq!(records, bad, "each failing record once, in order");
    for (record, sku, code) in &errors {
        assert_eq!(*sku, format!("R-{record:06}"));
        assert_eq!(*code, "INVALID_QUANTITY");
    }

    // Every good row made its SKU exactly once, with quantity 1.
    let mut skus: Vec<String> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            None => "/v1/listings?store=US&limit=1000".to_string(),
            Some(c) => format!("/v1/listings?store=US&limit=1000&cursor={c}"),
        };
        let r = s.get(&path).await;
        assert_eq!(r.status, 200, "{}", r.text);
        for item in r.body["items"].as_array().unwrap() {
            assert_eq!(item["quantity"], 1, "{item}");
            skus.push(item["sku"].as_str().unwrap().to_string());
        }
        match r.body["next_cursor"].as_str() {
            Some(c) if !c.is_empty() => cursor = Some(c.to_string()),
            _ => break,
        }
    }
    let want: Vec<String> = (1..=ROWS)
        .filter(|i| i % BAD_EVERY != 0)
        .map(|i| format!("R-{i:06}"))
        .collect();
    assert_eq!(skus.len(), want.len(), "listing count");
    assert_eq!(skus, want, "every SKU once, none missing");

    // Ledgers: one upload entry each, around the chunk edges and the crash points.
    let chunk = onestock::upload::ROWS_PER_CHUNK;
    let mut sample: Vec<usize> = vec![
        1,
        chunk - 1,
        chunk,
        chunk + 1,
        2 * chunk,
        2 * chunk + 1,
        ROWS - 1,
    ];
    for p in [first as usize, count(&b, "records_processed") as usize] {
        sample.extend([p.saturating_sub(1).max(1), p, (p + 1).min(ROWS)]);
    }
    for i in sample {
        if i % BAD_EVERY == 0 {
            continue;
        }
        let sku = format!("R-{i:06}");
        let r = s.get(&format!("/v1/listings/{sku}/ledger")).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let entries = r.body["entries"].as_array().unwrap();
        assert_eq!(entries.len(), 1, "{sku}: {entries:?}");
        assert_eq!(entries[0]["reason"], "upload");
        assert_eq!(entries[0]["delta"], 1);
        assert_eq!(entries[0]["reference"], json!(id));
    }
    // A failed row made nothing.
    let r = s.get(&format!("/v1/listings/R-{BAD_EVERY:06}")).await;
    assert_eq!(r.status, 404, "{}", r.text);
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_upload_is_applied_exactly_once_across_crashes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite:{}", dir.path().join("onestock.db").display());
    exactly_once_across_crashes(&url, dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_upload_is_applied_exactly_once_across_crashes() {
    let Some(db) = common::PgDatabase::create().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    exactly_once_across_crashes(&db.url, dir.path()).await;
}

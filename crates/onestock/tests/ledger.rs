//! A ledger longer than one storage read is answered whole, page after page, on SQLite
//! and PostgreSQL: every entry once, in order, its deltas adding up to the quantity.

mod common;

use common::{Backend, TestApp, upc};
use reqwest::Method;
use serde_json::json;

/// More entries than one page of the handler (5,000), so the answer is streamed.
const ENTRIES: usize = 12_345;

async fn long_ledger_is_answered_whole(backend: Backend) {
    let Some(app) = TestApp::spawn(backend, common::default_region()).await else {
        return;
    };
    let s = app.new_seller("ledger-seller").await;
    let product = upc(5151);
    let asin = s.product_everywhere(&product).await;
    let r = s
        .list(
            "LONG-1",
            "US",
            json!({"asin": asin, "price": {"amount": "5.00", "currency": "USD"}, "quantity": 0}),
        )
        .await;
    assert!(r.status == 201, "{}", r.text);
    // One upload row per change: quantity 1, 2, 1, 2, ... (each row a ledger entry).
    let mut file = String::from("sku\tproduct-id\tprice\tquantity\n");
    for i in 0..ENTRIES {
        file.push_str(&format!("LONG-1\t{product}\t5.00\t{}\n", 1 + i % 2));
    }
    let r = s
        .raw(
            Method::POST,
            "/v1/uploads?store=US",
            Some(file.into_bytes()),
            "application/octet-stream",
            &[],
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let id = r.body["upload_id"].as_str().expect("upload_id").to_owned();
    let b = s.wait_upload(&id).await;
    assert_eq!(b["status"], "DONE", "{b}");
    assert_eq!(b["records_failed"], 0, "{b}");
    let entries = s.ledger("LONG-1").await;
    assert_eq!(entries.len(), ENTRIES, "one entry per change");
    let mut sum = 0;
    let mut last_seq = 0;
    for e in &entries {
        let seq = e["seq"].as_i64().expect("seq");
        assert!(seq > last_seq, "entries in seq order, each once");
        last_seq = seq;
        sum += e["delta"].as_i64().expect("delta");
        assert_eq!(e["quantity_after"].as_i64(), Some(sum), "running sum");
    }
    let listing = s.listings("LONG-1").await;
    assert_eq!(listing["listings"][0]["quantity"].as_i64(), Some(sum));
    app.assert_healthy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_ledger_is_answered_whole_on_sqlite() {
    long_ledger_is_answered_whole(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_ledger_is_answered_whole_on_postgres() {
    long_ledger_is_answered_whole(Backend::Postgres).await;
}

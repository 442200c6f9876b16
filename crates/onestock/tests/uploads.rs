//! Upload files (SPEC.md section 5, R23) through the real HTTP API: the same tests on
//! SQLite and on PostgreSQL. A file is posted as the raw body of `POST /v1/uploads`,
//! the background worker applies its rows, and the tests read the upload's status, its
//! processing report and the listings, pools and ledgers the rows made.

mod common;

use std::time::{Duration, Instant};

use common::{Client, Resp, cad, mxn, strs, usd};
use reqwest::Method;
use serde_json::{Value, json};

const UPC_MUG: &str = "036000291452";
const UPC_RED: &str = "073400123457";
const EAN_CHAIR: &str = "4006381333931";
const UPC_CREME: &str = "042100005264";
const EAN_EPICES: &str = "5901234123457";
const GTIN_CRATE: &str = "10036000291459";
const UPC_BAD: &str = "036000291453";

/// The layout of the report up to its rows (SPEC section 5).
const REPORT_HEADER: &str = "original-record-number\tsku\terror-code\terror-type\terror-message";

/// Every error code of SPEC section 4.2 (and the upload-only warning).
const SPEC_CODES: &[&str] = &[
    "INVALID_REQUEST",
    "INVALID_IDENTIFIER",
    "INVALID_PRICE",
    "INVALID_QUANTITY",
    "LANGUAGE_NOT_SUPPORTED",
    "LANGUAGE_MISMATCH",
    "PRICE_REQUIRED",
    "CURRENCY_MISMATCH",
    "SHARED_FIELD_NOT_EDITABLE",
    "UNKNOWN_STORE",
    "UNAUTHENTICATED",
    "FORBIDDEN",
    "NOT_FOUND",
    "SKU_ASIN_MISMATCH",
    "ASIN_NOT_IN_STORE",
    "POSSIBLE_MATCH",
    "SHARING_NOT_AVAILABLE",
    "SHARING_MODE_IMMUTABLE",
    "FULFILLMENT_CANNOT_SHARE",
    "RESTRICTED_IN_STORE",
    "LISTING_NOT_BUYABLE",
    "INSUFFICIENT_STOCK",
    "ORDER_ID_REUSED",
    "VERSION_MISMATCH",
    "PAYLOAD_TOO_LARGE",
    "RATE_LIMITED",
    "UNKNOWN_COLUMN",
];

// ------------------------------------------------------------------------ helpers

/// A file of `examples/` at the workspace root.
fn example(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// `POST /v1/uploads?store=S` with the file as the raw body.
async fn post_upload(s: &Client, query: &str, body: Vec<u8>) -> Resp {
    s.raw(
        Method::POST,
        &format!("/v1/uploads{query}"),
        Some(body),
        "application/octet-stream",
        &[],
    )
    .await
}

/// Posts a file for `store` (202) and returns the upload id.
async fn start_upload(s: &Client, store: &str, body: impl Into<Vec<u8>>) -> String {
    let r = post_upload(s, &format!("?store={store}"), body.into()).await;
    assert_eq!(r.status, 202, "POST /v1/uploads: {}", r.text);
    assert_eq!(r.body["store"], json!(store), "{}", r.text);
    let status = r.body["status"].as_str().unwrap_or("");
    assert!(
        ["IN_QUEUE", "IN_PROGRESS", "DONE", "FATAL"].contains(&status),
        "status of a new upload: {}",
        r.text
    );
    let id = r.body["upload_id"].as_str().expect("upload_id").to_string();
    assert!(!id.is_empty());
    id
}

/// Posts a file, waits for it to end DONE, and checks its counts.
async fn upload_done(
    s: &Client,
    store: &str,
    body: impl Into<Vec<u8>>,
    processed: i64,
    successful: i64,
) -> String {
    let id = start_upload(s, store, body).await;
    let b = s.wait_upload(&id).await;
    assert_eq!(b["status"], "DONE", "{b}");
    assert_eq!(b["store"], json!(store), "{b}");
    assert!(
        b.get("error").is_none_or(Value::is_null),
        "DONE with an error: {b}"
    );
    assert_eq!(
        (
            b["records_processed"].as_i64(),
            b["records_successful"].as_i64(),
            b["records_failed"].as_i64()
        ),
        (
            Some(processed),
            Some(successful),
            Some(processed - successful)
        ),
        "counts of {id}: {b}"
    );
    id
}

/// `GET /v1/uploads/{id}/report` (200, tab-separated text).
async fn report(s: &Client, id: &str) -> String {
    let r = s.get(&format!("/v1/uploads/{id}/report")).await;
    assert_eq!(r.status, 200, "report {id}: {}", r.text);
    let ct = r
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(
        ct.starts_with("text/tab-separated-values") || ct.starts_with("text/plain"),
        "report content type {ct:?}"
    );
    r.text
}

/// One row of a report: record, sku, code, kind, message.
type ReportRow = (i64, String, String, String, String);

/// Splits a report into its summary and rows, asserting the layout of SPEC section 5
/// byte for byte (the messages, which are for people, are only required to be there).
fn parse_report(text: &str) -> (i64, i64, Vec<ReportRow>) {
    let head = "Feed Processing Summary:\n\tNumber of records processed\t\t";
    let rest = text
        .strip_prefix(head)
        .unwrap_or_else(|| panic!("report does not start with the summary:\n{text:?}"));
    let (processed, rest) = rest.split_once('\n').expect("processed line");
    let rest = rest
        .strip_prefix("\tNumber of records successful\t\t")
        .unwrap_or_else(|| panic!("no successful line:\n{text:?}"));
    let (successful, rest) = rest.split_once('\n').expect("successful line");
    let rest = rest
        .strip_prefix('\n')
        .unwrap_or_else(|| panic!("no blank line after the summary:\n{text:?}"));
    // SPEC 5: a report without errors or warnings ends after the summary's blank line.
    let rest = if rest.is_empty() {
        rest
    } else {
        rest.strip_prefix(&format!("{REPORT_HEADER}\n"))
            .unwrap_or_else(|| panic!("no column names:\n{text:?}"))
    };
    assert!(
        rest.is_empty() || rest.ends_with('\n'),
        "last line not ended: {text:?}"
    );
    assert!(!rest.contains('\r'), "CR in the report: {text:?}");
    let rows: Vec<ReportRow> = rest
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 5, "a report line has 5 fields: {l:?}");
            let record = f[0]
                .parse::<i64>()
                .unwrap_or_else(|_| panic!("record number {l:?}"));
            assert!(["Error", "Warning"].contains(&f[3]), "error-type {l:?}");
            assert!(SPEC_CODES.contains(&f[2]), "not a SPEC code: {l:?}");
            assert!(!f[4].trim().is_empty(), "no message: {l:?}");
            (
                record,
                f[1].to_string(),
                f[2].to_string(),
                f[3].to_string(),
                f[4].to_string(),
            )
        })
        .collect();
    (
        processed.parse().expect("processed is a number"),
        successful.parse().expect("successful is a number"),
        rows,
    )
}

/// Asserts the whole report text: the summary and the rows (record, sku, code, type) in
/// this order, rebuilt with the report's own messages and compared byte for byte.
#[track_caller]
fn assert_report(text: &str, processed: i64, successful: i64, want: &[(i64, &str, &str, &str)]) {
    let (p, ok, rows) = parse_report(text);
    let got: Vec<(i64, &str, &str, &str)> = rows
        .iter()
        .map(|r| (r.0, r.1.as_str(), r.2.as_str(), r.3.as_str()))
        .collect();
    assert_eq!((p, ok), (processed, successful), "summary of:\n{text}");
    assert_eq!(got, want, "report rows of:\n{text}");
    let mut rebuilt = format!(
        "Feed Processing Summary:\n\tNumber of records processed\t\t{processed}\n\tNumber of records successful\t\t{successful}\n\n"
    );
    if !want.is_empty() {
        rebuilt.push_str(&format!("{REPORT_HEADER}\n"));
    }
    for ((record, sku, code, kind), row) in want.iter().zip(&rows) {
        rebuilt.push_str(&format!("{record}\t{sku}\t{code}\t{kind}\t{}\n", row.4));
    }
    assert_eq!(text.as_bytes(), rebuilt.as_bytes(), "report bytes");
}

/// `GET /v1/listings/{sku}` answers 404 NOT_FOUND: the SKU has no listing anywhere.
async fn assert_no_sku(s: &Client, sku: &str) {
    let r = s.get(&format!("/v1/listings/{}", path_segment(sku))).await;
    assert_eq!(
        (r.status, r.code()),
        (404, "NOT_FOUND"),
        "{sku} should not exist: {}",
        r.text
    );
}

/// The listing views of a SKU (200).
async fn listings_of(s: &Client, sku: &str) -> Vec<Value> {
    s.listings(&path_segment(sku)).await["listings"]
        .as_array()
        .expect("listings")
        .clone()
}

/// The view of (sku, store).
async fn view(s: &Client, sku: &str, store: &str) -> Value {
    s.view(&path_segment(sku), store).await
}

async fn ledger(s: &Client, sku: &str) -> Vec<Value> {
    s.ledger(&path_segment(sku)).await
}

/// A SKU as a path segment: characters the URL parser would take as syntax escaped
/// (non-ASCII is percent-encoded as UTF-8 by the URL parser itself).
fn path_segment(sku: &str) -> String {
    let mut out = String::new();
    for c in sku.chars() {
        match c {
            '/' | '?' | '#' | '%' | ' ' | ',' | '"' => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// Every listing of the seller in `store` (all pages, limit 1000).
async fn all_listings(s: &Client, store: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            None => format!("/v1/listings?store={store}&limit=1000"),
            Some(c) => format!("/v1/listings?store={store}&limit=1000&cursor={c}"),
        };
        let r = s.get(&path).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text);
        items.extend(r.body["items"].as_array().expect("items").iter().cloned());
        match r.body["next_cursor"].as_str() {
            Some(c) if !c.is_empty() => cursor = Some(c.to_string()),
            _ => return items,
        }
    }
}

fn ledger_sum(entries: &[Value]) -> i64 {
    entries.iter().map(|e| e["delta"].as_i64().unwrap()).sum()
}

fn sorted_reasons(v: &Value) -> Vec<String> {
    let mut r = strs(&v["reasons"]);
    r.sort();
    r
}

/// A product with a page in `store` only (distinct brand and title per identifier, so no
/// near-identical match).
async fn product_in(s: &Client, store: &str, kind: &str, value: &str, title: &str) -> String {
    s.product(
        store,
        title,
        &format!("Brand {value}"),
        "en",
        &[(kind, value)],
    )
    .await
}

/// Tab-separated text from rows of cells, `\n` line ends.
fn tsv(rows: &[&[&str]]) -> Vec<u8> {
    let mut out = String::new();
    for r in rows {
        out.push_str(&r.join("\t"));
        out.push('\n');
    }
    out.into_bytes()
}

// ------------------------------------------------------------------------ the tests

backend_tests! {

// ------------------------------------------------- 1. the CA inventory-loader sample

fn ca_inventory_loader_sample(app) {
    let s = app.new_seller("Maple Goods").await;
    let mug = product_in(&s, "CA", "UPC", UPC_MUG, "Blue Ceramic Mug").await;
    let red = product_in(&s, "CA", "UPC", UPC_RED, "Red Enamel Camping Cup").await;
    let chair = product_in(&s, "CA", "EAN", EAN_CHAIR, "Folding Garden Chair").await;

    let file = example("inventory-loader-CA.txt");
    assert!(file.windows(2).any(|w| w == b"\r\n"), "the sample has CRLF line ends");
    let id = upload_done(&s, "CA", file.clone(), 5, 3).await;

    // Row 1: UPC → the CA page's ASIN, 24.99 CAD, quantity 12, new; sharing left empty
    // starts the SKU's shared pool.
    let all = listings_of(&s, "MUG-BLUE-350").await;
    assert_eq!(all.len(), 1, "CA only: {all:?}");
    let v = &all[0];
    assert_eq!(v["store"], "CA");
    assert_eq!(v["asin"], json!(mug));
    assert_eq!(v["price"], cad("24.99"));
    assert_eq!(v["quantity"], 12);
    assert_eq!(v["condition"], "new");
    assert_eq!(v["share"], "existing");
    assert_eq!(strs(&v["pool_stores"]), ["CA"]);
    assert_eq!(v["fulfillment"], "merchant");
    assert_eq!(v["start_selling_at"], Value::Null);
    assert_eq!(v["closed"], false);
    assert_eq!(v["status"], "active", "{v}");

    // Row 2: "24,99", quantity 0, unique, a start date in the future.
    let v = view(&s, "MUG-RED-350", "CA").await;
    assert_eq!(v["asin"], json!(red));
    assert_eq!(v["price"], cad("24.99"));
    assert_eq!(v["quantity"], 0);
    assert_eq!(v["share"], "unique");
    assert_eq!(v["start_selling_at"], "2026-12-15T00:00:00Z");
    assert_eq!(v["status"], "inactive");
    assert_eq!(sorted_reasons(&v), ["NOT_YET_STARTED", "OUT_OF_STOCK"], "{v}");

    // Row 3: EAN, 89.00, used like new (code 1), no quantity (0), shared pool.
    let v = view(&s, "CHAIR-FOLD", "CA").await;
    assert_eq!(v["asin"], json!(chair));
    assert_eq!(v["price"], cad("89.00"));
    assert_eq!(v["quantity"], 0);
    assert_eq!(v["condition"], "used_like_new");
    assert_eq!(v["share"], "existing");

    // Rows 4 and 5: d and x for SKUs that do not exist.
    assert_no_sku(&s, "OLD-SKU-1").await;
    assert_no_sku(&s, "GONE-EVERYWHERE").await;

    // The ledger: the quantity of row 1, reason upload, reference the upload id.
    let l = ledger(&s, "MUG-BLUE-350").await;
    assert_eq!(l.len(), 1, "{l:?}");
    assert_eq!(l[0]["reason"], "upload");
    assert_eq!(l[0]["delta"], 12);
    assert_eq!(l[0]["quantity_after"], 12);
    assert_eq!(l[0]["store"], "CA");
    assert_eq!(l[0]["reference"], json!(id));
    assert!(ledger(&s, "MUG-RED-350").await.is_empty(), "quantity 0 changes nothing");

    assert_report(
        &report(&s, &id).await,
        5,
        3,
        &[
            (4, "OLD-SKU-1", "NOT_FOUND", "Error"),
            (5, "GONE-EVERYWHERE", "NOT_FOUND", "Error"),
        ],
    );

    // The same file again changes nothing: the rows set what is already there.
    let again = upload_done(&s, "CA", file, 5, 3).await;
    assert_eq!(view(&s, "MUG-BLUE-350", "CA").await["quantity"], 12);
    assert_eq!(ledger(&s, "MUG-BLUE-350").await.len(), 1);
    assert_report(
        &report(&s, &again).await,
        5,
        3,
        &[
            (4, "OLD-SKU-1", "NOT_FOUND", "Error"),
            (5, "GONE-EVERYWHERE", "NOT_FOUND", "Error"),
        ],
    );
    // Nothing leaked into the other stores.
    assert!(all_listings(&s, "US").await.is_empty());
    app.assert_healthy().await;
}

// ------------------------------------------------- 2. encodings and formats

fn windows_1252_csv_sample(app) {
    let s = app.new_seller("Café du Nord").await;
    let ean = product_in(&s, "CA", "EAN", EAN_CHAIR, "Ground Coffee Bag").await;
    let upc = product_in(&s, "CA", "UPC", UPC_MUG, "Green Tea Tin").await;
    let file = example("price-quantity-CA-windows1252.csv");
    assert!(std::str::from_utf8(&file).is_err(), "the sample is not UTF-8");
    let id = upload_done(&s, "CA", file, 2, 2).await;
    assert_report(&report(&s, &id).await, 2, 2, &[]);

    let v = view(&s, "CAFÉ-MOULU-250", "CA").await;
    assert_eq!(v["sku"], "CAFÉ-MOULU-250");
    assert_eq!(v["asin"], json!(ean));
    assert_eq!(v["price"], cad("12.50"));
    assert_eq!(v["quantity"], 30);
    assert_eq!(v["condition"], "new");
    let v = view(&s, "THÉ-VERT-100", "CA").await;
    assert_eq!(v["asin"], json!(upc));
    assert_eq!(v["price"], cad("8.75"));
    assert_eq!(v["quantity"], 0);
    assert_eq!(v["condition"], "new");

    // The page of listings carries the SKUs as proper UTF-8 (JSON is UTF-8).
    let r = s.get("/v1/listings?store=CA").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let skus: Vec<&str> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["sku"].as_str().unwrap())
        .collect();
    assert_eq!(skus, ["CAFÉ-MOULU-250", "THÉ-VERT-100"]);
    assert!(
        r.text.contains("CAFÉ-MOULU-250") || r.text.contains("CAF\\u00c9-MOULU-250"),
        "{}",
        r.text
    );
}

fn windows_1252_tsv_with_preamble_and_euro_sign(app) {
    let s = app.new_seller("Épicerie").await;
    product_in(&s, "US", "UPC", UPC_MUG, "Coffee Beans").await;
    product_in(&s, "US", "EAN", EAN_CHAIR, "Green Tea Leaves").await;
    product_in(&s, "US", "UPC", UPC_CREME, "Creme Brulee Torch Kit").await;
    product_in(&s, "US", "EAN", EAN_EPICES, "Spice Sampler Set").await;
    let file = example("inventory-windows1252.tsv");
    assert!(file.contains(&0x80), "the euro sign in Windows-1252");
    let id = upload_done(&s, "US", file, 4, 4).await;
    assert_report(&report(&s, &id).await, 4, 4, &[]);

    let v = view(&s, "CAFÉ-1", "US").await;
    assert_eq!((v["price"].clone(), v["quantity"].clone()), (usd("12.50"), json!(30)));
    let v = view(&s, "THÉ-VERT-100", "US").await;
    assert_eq!((v["price"].clone(), v["quantity"].clone()), (usd("8.75"), json!(0)));
    let v = view(&s, "CRÈME-BRÛLÉE-KIT", "US").await;
    assert_eq!(v["condition"], "used_like_new");
    assert_eq!(v["quantity"], 5);
    let v = view(&s, "ÉPICES-€-SET", "US").await;
    assert_eq!(v["sku"], "ÉPICES-€-SET");
    assert_eq!((v["price"].clone(), v["quantity"].clone()), (usd("15.00"), json!(12)));
    let skus: Vec<String> = all_listings(&s, "US")
        .await
        .iter()
        .map(|i| i["sku"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(skus.len(), 4, "{skus:?}");
    for want in ["CAFÉ-1", "THÉ-VERT-100", "CRÈME-BRÛLÉE-KIT", "ÉPICES-€-SET"] {
        assert!(skus.iter().any(|k| k == want), "{want} in {skus:?}");
    }
}

fn csv_with_quoted_fields(app) {
    let s = app.new_seller("Lamps & Co").await;
    let mug = product_in(&s, "US", "UPC", UPC_MUG, "Blue Ceramic Mug").await;
    let lamp = product_in(&s, "US", "EAN", EAN_CHAIR, "Desk Lamp With Arm").await;
    let crate6 = product_in(&s, "US", "GTIN", GTIN_CRATE, "Wooden Crate Six Pack").await;
    let id = upload_done(&s, "US", example("inventory.csv"), 4, 3).await;
    // item-note is a template column: accepted, no warning.
    assert_report(&report(&s, &id).await, 4, 3, &[(4, "OLD-MUG", "NOT_FOUND", "Error")]);

    let v = view(&s, "MUG-BLUE-350", "US").await;
    assert_eq!(v["asin"], json!(mug));
    assert_eq!((v["price"].clone(), v["quantity"].clone()), (usd("19.99"), json!(25)));
    let v = view(&s, "LAMP, DESK", "US").await;
    assert_eq!(v["sku"], "LAMP, DESK");
    assert_eq!(v["asin"], json!(lamp));
    assert_eq!(v["price"], usd("34.90"));
    assert_eq!(v["quantity"], 3);
    assert_eq!(v["share"], "unique");
    assert_eq!(v["start_selling_at"], "2026-12-15T00:00:00Z");
    let v = view(&s, "CRATE-6", "US").await;
    assert_eq!(v["asin"], json!(crate6));
    assert_eq!(v["fulfillment"], "marketplace");
    assert_eq!(v["condition"], "collectible_good");
    assert_eq!(v["quantity"], 2);
    assert_eq!(v["share"], "unique", "a marketplace listing never shares: {v}");
    assert_no_sku(&s, "OLD-MUG").await;
}

fn xlsx_example_and_generated_workbook(app) {
    let s = app.new_seller("Sheets Inc").await;
    let mug = product_in(&s, "US", "UPC", UPC_MUG, "Blue Ceramic Mug").await;
    let kettle = product_in(&s, "US", "EAN", EAN_CHAIR, "Electric Kettle One Litre").await;
    let id = upload_done(&s, "US", example("inventory.xlsx"), 3, 2).await;
    // The blank row takes no record number: the d row is record 3.
    assert_report(&report(&s, &id).await, 3, 2, &[(3, "OLD-MUG", "NOT_FOUND", "Error")]);
    let v = view(&s, "MUG-BLUE-350", "US").await;
    assert_eq!(v["asin"], json!(mug));
    assert_eq!(v["price"], usd("24.99"));
    assert_eq!(v["quantity"], 12);
    assert_eq!(v["condition"], "new");
    assert_eq!(v["share"], "existing");
    let v = view(&s, "KETTLE-1L", "US").await;
    assert_eq!(v["asin"], json!(kettle));
    assert_eq!(v["price"], usd("39.50"));
    assert_eq!(v["condition"], "used_like_new");
    assert_eq!(v["quantity"], 0);
    assert_eq!(v["share"], "unique");
    assert_eq!(v["fulfillment"], "marketplace");
    assert_eq!(v["start_selling_at"], "2026-12-15T00:00:00Z");

    // A workbook made here: mixed-case names, an unknown column, a UPC as text with its
    // leading zero, numbers as numbers, an EAN as a number, a date cell.
    use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    for (c, h) in ["SKU", "Product-Id", "PRICE", "Quantity", "Colour", "start_selling_date"]
        .iter()
        .enumerate()
    {
        ws.write_string(0, c as u16, *h).unwrap();
    }
    ws.write_string(1, 0, "MUG-BLUE-350").unwrap();
    ws.write_string(1, 1, UPC_MUG).unwrap();
    ws.write_number(1, 3, 7).unwrap();
    ws.write_string(1, 4, "blue").unwrap();
    ws.write_string(2, 0, "GREEN-MUG").unwrap();
    ws.write_number(2, 1, 4006381333931.0).unwrap();
    ws.write_number(2, 2, 17.5).unwrap();
    ws.write_number(2, 3, 4).unwrap();
    let date = Format::new().set_num_format("yyyy-mm-dd");
    ws.write_datetime_with_format(2, 5, ExcelDateTime::from_ymd(2025, 5, 1).unwrap(), &date)
        .unwrap();
    let book = wb.save_to_buffer().unwrap();
    let id = upload_done(&s, "US", book, 2, 2).await;
    assert_report(
        &report(&s, &id).await,
        2,
        2,
        &[(0, "", "UNKNOWN_COLUMN", "Warning")],
    );
    let v = view(&s, "MUG-BLUE-350", "US").await;
    assert_eq!(v["quantity"], 7);
    assert_eq!(v["price"], usd("24.99"), "an absent price leaves it unchanged");
    let v = view(&s, "GREEN-MUG", "US").await;
    assert_eq!(v["asin"], json!(kettle), "the numeric EAN resolves");
    assert_eq!(v["price"], usd("17.50"));
    assert_eq!(v["quantity"], 4);
    assert_eq!(v["start_selling_at"], "2025-05-01T00:00:00Z");
    assert_eq!(v["status"], "active", "a start date in the past: {v}");
}

fn utf8_with_and_without_bom(app) {
    let s = app.new_seller("Boutique").await;
    let asin = product_in(&s, "CA", "UPC", UPC_MUG, "Summer Tea Cup").await;
    let mut file = b"\xEF\xBB\xBF".to_vec();
    file.extend_from_slice(
        format!("sku\tproduct-id\tprice\tquantity\r\nTASSE-ÉTÉ\t{UPC_MUG}\t9,99\t4\r\n").as_bytes(),
    );
    let id = upload_done(&s, "CA", file, 1, 1).await;
    // The BOM is not part of the first column's name: no warning.
    assert_report(&report(&s, &id).await, 1, 1, &[]);
    let v = view(&s, "TASSE-ÉTÉ", "CA").await;
    assert_eq!(v["sku"], "TASSE-ÉTÉ");
    assert_eq!(v["asin"], json!(asin));
    assert_eq!(v["price"], cad("9.99"));
    assert_eq!(v["quantity"], 4);

    // UTF-8 without a BOM is read as UTF-8 too (not as Windows-1252 mojibake).
    let file = format!("SKU,Product-ID,Price,Quantity\nBOL-CRÈME,{asin},\"5,50\",2\n");
    let id = upload_done(&s, "CA", file.into_bytes(), 1, 1).await;
    assert_report(&report(&s, &id).await, 1, 1, &[]);
    let v = view(&s, "BOL-CRÈME", "CA").await;
    assert_eq!(v["sku"], "BOL-CRÈME");
    assert_eq!(v["price"], cad("5.50"));
    let skus: Vec<String> = all_listings(&s, "CA")
        .await
        .iter()
        .map(|i| i["sku"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(skus, ["BOL-CRÈME", "TASSE-ÉTÉ"]);
}

// ------------------------------------------------- 3. shared pools and row errors

fn empty_sharing_joins_the_shared_pool_and_sets_it_everywhere(app) {
    let s = app.new_seller("Acme").await;
    let asin = s.product_everywhere(UPC_MUG).await;
    s.list("SHARED-1", "US", json!({"asin": asin, "price": usd("19.99"), "quantity": 10}))
        .await
        .ok(201);
    let file = tsv(&[
        &["sku", "product-id", "product-id-type", "price", "quantity", "inventory-sharing"],
        &["SHARED-1", &asin, "ASIN", "24.99", "7", ""],
    ]);
    let id = upload_done(&s, "CA", file, 1, 1).await;
    assert_report(&report(&s, &id).await, 1, 1, &[]);

    let us = view(&s, "SHARED-1", "US").await;
    let ca = view(&s, "SHARED-1", "CA").await;
    assert_eq!(us["quantity"], 7, "{us}");
    assert_eq!(ca["quantity"], 7, "{ca}");
    assert_eq!(us["pool_id"], ca["pool_id"]);
    assert_eq!(strs(&us["pool_stores"]), ["US", "CA"]);
    assert_eq!(strs(&ca["pool_stores"]), ["US", "CA"]);
    assert_eq!(ca["share"], "existing");
    assert_eq!(us["share"], "existing");
    assert_eq!(ca["price"], cad("24.99"));
    assert_eq!(us["price"], usd("19.99"));

    let l = ledger(&s, "SHARED-1").await;
    assert_eq!(l.len(), 2, "{l:?}");
    assert_eq!(l[0]["reason"], "set");
    assert_eq!(l[0]["delta"], 10);
    assert_eq!(l[1]["reason"], "upload");
    assert_eq!(l[1]["delta"], -3);
    assert_eq!(l[1]["quantity_after"], 7);
    assert_eq!(l[1]["store"], "CA");
    assert_eq!(l[1]["reference"], json!(id));
    assert_eq!(l[1]["pool_id"], us["pool_id"]);
    assert_eq!(ledger_sum(&l), 7);
    // The change is an event naming every store of the pool.
    let ev = s.events(0).await;
    let changed: Vec<&Value> = ev["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "quantity_changed" && e["reason"] == "upload")
        .collect();
    assert_eq!(changed.len(), 1, "{ev}");
    assert_eq!(changed[0]["sku"], "SHARED-1");
    assert_eq!(changed[0]["quantity"], 7);
    assert_eq!(changed[0]["delta"], -3);
    assert_eq!(strs(&changed[0]["stores"]), ["US", "CA"]);

    // A later row on the pool (quantity and condition) sets it in every store; a row with
    // `existing` joins too (MX), and its quantity is the pool's.
    let file = tsv(&[
        &["sku", "product-id", "price", "quantity", "item-condition", "inventory-sharing"],
        &["SHARED-1", "", "", "4", "used_good", ""],
    ]);
    upload_done(&s, "CA", file, 1, 1).await;
    let file = tsv(&[
        &["sku", "product-id", "price", "quantity", "inventory-sharing"],
        &["SHARED-1", &asin, "349.00", "5", "existing"],
    ]);
    upload_done(&s, "MX", file, 1, 1).await;
    for store in ["US", "CA", "MX"] {
        let v = view(&s, "SHARED-1", store).await;
        assert_eq!(v["quantity"], 5, "{store}: {v}");
        assert_eq!(v["condition"], "used_good", "{store}: {v}");
        assert_eq!(v["pool_id"], us["pool_id"], "{store}: {v}");
        assert_eq!(strs(&v["pool_stores"]), ["US", "CA", "MX"]);
    }
    assert_eq!(view(&s, "SHARED-1", "MX").await["price"], mxn("349.00"));
    let file = tsv(&[
        &["sku", "quantity", "inventory-sharing"],
        &["SHARED-1", "6", "existing"],
    ]);
    upload_done(&s, "MX", file, 1, 1).await;
    assert_eq!(s.quantity("SHARED-1", "US").await, 6);
    let file = tsv(&[
        &["sku", "quantity", "inventory-sharing"],
        &["SHARED-1", "5", "existing"],
    ]);
    upload_done(&s, "US", file, 1, 1).await;
    let l = ledger(&s, "SHARED-1").await;
    assert_eq!(ledger_sum(&l), 5, "{l:?}");
    let stores: Vec<&str> = l.iter().rev().take(3).map(|e| e["store"].as_str().unwrap()).collect();
    assert_eq!(stores, ["US", "MX", "MX"], "{l:?}");
    // A sale in CA lowers the pool everywhere.
    app.order("CA", "o-1", &[(&s, "SHARED-1", 2)]).await.ok(201);
    assert_eq!(s.quantity("SHARED-1", "US").await, 3);
    assert_eq!(s.quantity("SHARED-1", "MX").await, 3);
}

fn unique_sharing_makes_an_own_pool(app) {
    let s = app.new_seller("Acme").await;
    let asin = s.product_everywhere(UPC_MUG).await;
    s.list("UNIQ-1", "US", json!({"asin": asin, "price": usd("19.99"), "quantity": 10}))
        .await
        .ok(201);
    let file = tsv(&[
        &["sku", "product-id", "price", "quantity", "item-condition", "inventory-sharing"],
        &["UNIQ-1", UPC_MUG, "24.99", "3", "refurbished", "unique"],
    ]);
    let id = upload_done(&s, "CA", file, 1, 1).await;
    let us = view(&s, "UNIQ-1", "US").await;
    let ca = view(&s, "UNIQ-1", "CA").await;
    assert_eq!(us["quantity"], 10);
    assert_eq!(us["condition"], "new");
    assert_eq!(ca["quantity"], 3);
    assert_eq!(ca["condition"], "refurbished");
    assert_eq!(ca["share"], "unique");
    assert_eq!(us["share"], "existing");
    assert_ne!(us["pool_id"], ca["pool_id"]);
    assert_eq!(strs(&ca["pool_stores"]), ["CA"]);
    assert_eq!(strs(&us["pool_stores"]), ["US"]);
    let l = ledger(&s, "UNIQ-1").await;
    let up: Vec<&Value> = l.iter().filter(|e| e["reason"] == "upload").collect();
    assert_eq!(up.len(), 1, "{l:?}");
    assert_eq!(up[0]["pool_id"], ca["pool_id"]);
    assert_eq!(up[0]["delta"], 3);
    assert_eq!(up[0]["reference"], json!(id));

    // A later row with `existing` on this listing cannot change its sharing mode.
    let file = tsv(&[
        &["sku", "quantity", "inventory-sharing"],
        &["UNIQ-1", "9", "existing"],
    ]);
    let id = upload_done(&s, "CA", file, 1, 0).await;
    assert_report(
        &report(&s, &id).await,
        1,
        0,
        &[(1, "UNIQ-1", "SHARING_MODE_IMMUTABLE", "Error")],
    );
    assert_eq!(s.quantity("UNIQ-1", "CA").await, 3);
    assert_eq!(s.quantity("UNIQ-1", "US").await, 10);
}

fn failing_rows_fail_alone_with_their_record_numbers(app) {
    let s = app.new_seller("Acme").await;
    let asin = s.product_everywhere(UPC_MUG).await;
    let other = product_in(&s, "CA", "EAN", EAN_CHAIR, "Folding Garden Chair").await;
    let us_only = product_in(&s, "US", "UPC", UPC_RED, "Red Enamel Camping Cup").await;
    s.list("TAKEN", "US", json!({"asin": asin, "price": usd("5.00"), "quantity": 1}))
        .await
        .ok(201);
    let file = tsv(&[
        &["sku", "product-id", "product-id-type", "price", "quantity", "inventory-sharing", "colour", "size"],
        &["GOOD-1", UPC_MUG, "UPC", "10.00", "1", "", "red", "L"],
        &["NOSHARE", UPC_MUG, "UPC", "10.00", "", "existing", "", ""],
        &["BADID", UPC_BAD, "UPC", "10.00", "1", "", "", ""],
        &["BADPRICE", UPC_MUG, "UPC", "abc", "1", "", "", ""],
        &["BADPRICE-2", UPC_MUG, "UPC", "1,234.50", "1", "", "", ""],
        &["BADQTY", UPC_MUG, "UPC", "10.00", "abc", "", "", ""],
        &["NEGQTY", UPC_MUG, "UPC", "10.00", "-1", "", "", ""],
        &["NOPAGE", &us_only, "ASIN", "10.00", "1", "", "", ""],
        &["TAKEN", &other, "ASIN", "10.00", "1", "", "", ""],
        &["NOPRICE", UPC_MUG, "UPC", "", "1", "", "", ""],
        &["GOOD-2", &asin, "ASIN", "11,00", "2", "unique", "", ""],
        &["GOOD-1", &other, "ASIN", "10.00", "1", "", "", ""],
        &["ZEROPRICE", UPC_MUG, "UPC", "0", "1", "", "", ""],
        &["HUGEQTY", UPC_MUG, "UPC", "10.00", "1000000001", "", "", ""],
        &["TYPEMISMATCH", &asin, "UPC", "10.00", "1", "", "", ""],
        &["BADSHARE", UPC_MUG, "UPC", "10.00", "1", "sometimes", "", ""],
        &["", UPC_MUG, "UPC", "10.00", "1", "", "", ""],
        &["SKU-THAT-IS-FAR-TOO-LONG-FOR-THE-MARKETPLACE-41", UPC_MUG, "UPC", "10.00", "1", "", "", ""],
        &["MAXQTY", UPC_MUG, "UPC", "10.00", "1000000000", "", "", ""],
    ]);
    let id = upload_done(&s, "CA", file, 19, 3).await;
    assert_report(
        &report(&s, &id).await,
        19,
        3,
        &[
            (0, "", "UNKNOWN_COLUMN", "Warning"),
            (2, "NOSHARE", "SHARING_NOT_AVAILABLE", "Error"),
            (3, "BADID", "INVALID_IDENTIFIER", "Error"),
            (4, "BADPRICE", "INVALID_PRICE", "Error"),
            (5, "BADPRICE-2", "INVALID_PRICE", "Error"),
            (6, "BADQTY", "INVALID_QUANTITY", "Error"),
            (7, "NEGQTY", "INVALID_QUANTITY", "Error"),
            (8, "NOPAGE", "ASIN_NOT_IN_STORE", "Error"),
            (9, "TAKEN", "SKU_ASIN_MISMATCH", "Error"),
            (10, "NOPRICE", "PRICE_REQUIRED", "Error"),
            (12, "GOOD-1", "SKU_ASIN_MISMATCH", "Error"),
            (13, "ZEROPRICE", "INVALID_PRICE", "Error"),
            (14, "HUGEQTY", "INVALID_QUANTITY", "Error"),
            (15, "TYPEMISMATCH", "INVALID_IDENTIFIER", "Error"),
            (16, "BADSHARE", "INVALID_REQUEST", "Error"),
            (17, "", "INVALID_REQUEST", "Error"),
            (18, "SKU-THAT-IS-FAR-TOO-LONG-FOR-THE-MARKETPLACE-41", "INVALID_REQUEST", "Error"),
        ],
    );
    assert_eq!(view(&s, "MAXQTY", "CA").await["quantity"], 1_000_000_000);
    let warning = parse_report(&report(&s, &id).await).2[0].4.clone();
    assert!(
        warning.contains("colour") && warning.contains("size"),
        "the warning names the columns: {warning}"
    );
    assert_eq!(view(&s, "GOOD-1", "CA").await["quantity"], 1);
    assert_eq!(view(&s, "GOOD-2", "CA").await["price"], cad("11.00"));
    for sku in ["NOSHARE", "BADID", "BADPRICE", "BADPRICE-2", "BADQTY", "NEGQTY", "NOPAGE", "NOPRICE"] {
        assert_no_sku(&s, sku).await;
    }
    assert_eq!(listings_of(&s, "TAKEN").await.len(), 1, "TAKEN stays in US only");
    assert_eq!(view(&s, "GOOD-1", "CA").await["asin"], json!(asin), "row 12 changed nothing");
    for sku in ["ZEROPRICE", "HUGEQTY", "TYPEMISMATCH", "BADSHARE"] {
        assert_no_sku(&s, sku).await;
    }
    assert_eq!(all_listings(&s, "CA").await.len(), 3);
}

fn a_row_longer_than_a_mib_fails_alone(app) {
    let s = app.new_seller("Acme").await;
    let asin = product_in(&s, "US", "UPC", UPC_MUG, "Blue Ceramic Mug").await;
    let mut file = format!("sku\tproduct-id\tprice\tquantity\titem-note\nBEFORE\t{asin}\t1.00\t1\tx\n");
    file.push_str(&format!("LONG\t{asin}\t1.00\t1\t{}\n", "n".repeat(1_500_000)));
    file.push_str(&format!("AFTER\t{asin}\t1.00\t1\tx\n"));
    let id = upload_done(&s, "US", file.into_bytes(), 3, 2).await;
    assert_report(&report(&s, &id).await, 3, 2, &[(2, "LONG", "INVALID_REQUEST", "Error")]);
    assert_eq!(s.quantity("BEFORE", "US").await, 1);
    assert_eq!(s.quantity("AFTER", "US").await, 1);
    assert_no_sku(&s, "LONG").await;
}

fn inventory_small_example(app) {
    let s = app.new_seller("Acme").await;
    let mug = product_in(&s, "US", "UPC", UPC_MUG, "Blue Ceramic Mug").await;
    product_in(&s, "US", "EAN", EAN_CHAIR, "Electric Kettle One Litre").await;
    let book = product_in(&s, "US", "ISBN", "0306406152", "Programming Book Second Edition").await;
    product_in(&s, "US", "GTIN", GTIN_CRATE, "Wooden Crate Six Pack").await;
    let id = upload_done(&s, "US", example("inventory-small.tsv"), 6, 3).await;
    // KETTLE-1L asks for `existing` with no shared pool to join; TEA-TIN's ASIN has no
    // page in US; OLD-MUG does not exist.
    assert_report(
        &report(&s, &id).await,
        6,
        3,
        &[
            (2, "KETTLE-1L", "SHARING_NOT_AVAILABLE", "Error"),
            (5, "TEA-TIN", "ASIN_NOT_IN_STORE", "Error"),
            (6, "OLD-MUG", "NOT_FOUND", "Error"),
        ],
    );
    let v = view(&s, "MUG-BLUE-350", "US").await;
    assert_eq!((v["asin"].clone(), v["quantity"].clone()), (json!(mug), json!(25)));
    let v = view(&s, "BOOK-CPP", "US").await;
    assert_eq!(v["asin"], json!(book));
    assert_eq!(v["condition"], "used_good");
    assert_eq!(v["share"], "unique");
    let v = view(&s, "CRATE-6", "US").await;
    assert_eq!(v["fulfillment"], "marketplace");
    assert_eq!(v["quantity"], 40);
    assert_eq!(v["start_selling_at"], "2026-12-15T14:00:00Z", "RFC 3339 with an offset, in UTC");
    for sku in ["KETTLE-1L", "TEA-TIN", "OLD-MUG"] {
        assert_no_sku(&s, sku).await;
    }
}

fn fulfilment_and_restriction_rules_apply_to_rows(app: restricted_region) {
    let s = app.new_seller("Acme").await;
    let asin = s.product_everywhere(UPC_MUG).await;
    let r = s
        .post("/v1/catalog/items", common::product_body("US", "FIREWORKS", "Rocket Fountain Pack", "Boom", "en", &[("UPC", UPC_RED)]))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let rocket = r.body["asin"].as_str().unwrap().to_string();
    s.list("FBA-1", "US", json!({"asin": asin, "price": usd("9.00"), "quantity": 5, "fulfillment": "marketplace"}))
        .await
        .ok(201);
    s.list("SHARED-1", "US", json!({"asin": asin, "price": usd("9.00"), "quantity": 5}))
        .await
        .ok(201);
    s.list("ROCKET", "US", json!({"asin": rocket, "price": usd("9.00"), "quantity": 5}))
        .await
        .ok(201);
    let file = tsv(&[
        &["sku", "product-id", "price", "quantity", "inventory-sharing", "fulfillment-channel"],
        &["FBA-1", &asin, "12.00", "", "existing", ""],
        &["NEW-FBA", &asin, "12.00", "3", "existing", "AMAZON_NA"],
        &["SHARED-1", &asin, "12.00", "", "", ""],
        &["SHARED-1", "", "", "", "", "marketplace"],
        &["ROCKET", &rocket, "12.00", "1", "", ""],
        &["ROCKET-2", &rocket, "12.00", "1", "unique", ""],
        &["FBA-1", &asin, "12.00", "4", "", ""],
    ]);
    let id = upload_done(&s, "CA", file, 7, 2).await;
    assert_report(
        &report(&s, &id).await,
        7,
        2,
        &[
            (1, "FBA-1", "FULFILLMENT_CANNOT_SHARE", "Error"),
            (2, "NEW-FBA", "FULFILLMENT_CANNOT_SHARE", "Error"),
            (4, "SHARED-1", "FULFILLMENT_CANNOT_SHARE", "Error"),
            (5, "ROCKET", "RESTRICTED_IN_STORE", "Error"),
            (6, "ROCKET-2", "RESTRICTED_IN_STORE", "Error"),
        ],
    );
    // Row 3 joined the shared pool; row 7 (sharing left empty, merchant) started the
    // FBA-1 SKU's shared pool in CA, its US marketplace pool untouched.
    let ca = view(&s, "SHARED-1", "CA").await;
    assert_eq!(strs(&ca["pool_stores"]), ["US", "CA"]);
    assert_eq!(ca["fulfillment"], "merchant");
    let us = view(&s, "FBA-1", "US").await;
    let ca = view(&s, "FBA-1", "CA").await;
    assert_ne!(us["pool_id"], ca["pool_id"]);
    assert_eq!((us["quantity"].clone(), ca["quantity"].clone()), (json!(5), json!(4)));
    assert_eq!(listings_of(&s, "ROCKET").await.len(), 1);
    assert_no_sku(&s, "ROCKET-2").await;
    assert_no_sku(&s, "NEW-FBA").await;
}

fn restricted_product_by_identifier_is_restricted_in_store(app: restricted_region) {
    // R17 and R23: a row that lists a FIREWORKS product in CA fails with
    // RESTRICTED_IN_STORE whether it names the product by ASIN or by its UPC (the API
    // answers RESTRICTED_IN_STORE for the ASIN; the catalog refuses a CA page for it, so
    // "create the product first" cannot be followed).
    let s = app.new_seller("Acme").await;
    let r = s
        .post("/v1/catalog/items", common::product_body("US", "FIREWORKS", "Rocket Fountain Pack", "Boom", "en", &[("UPC", UPC_RED)]))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let rocket = r.body["asin"].as_str().unwrap().to_string();
    s.list("ROCKET", "CA", json!({"asin": rocket, "price": cad("9.00")}))
        .await
        .expect(409, "RESTRICTED_IN_STORE");
    let file = tsv(&[
        &["sku", "product-id", "product-id-type", "price", "quantity"],
        &["BY-ASIN", &rocket, "ASIN", "12.00", "1"],
        &["BY-UPC", UPC_RED, "UPC", "12.00", "1"],
    ]);
    let id = upload_done(&s, "CA", file, 2, 0).await;
    assert_report(
        &report(&s, &id).await,
        2,
        0,
        &[
            (1, "BY-ASIN", "RESTRICTED_IN_STORE", "Error"),
            (2, "BY-UPC", "RESTRICTED_IN_STORE", "Error"),
        ],
    );
}

fn duplicate_skus_in_one_file_apply_in_order(app) {
    let s = app.new_seller("Acme").await;
    let rival = app.new_seller("Rival").await;
    let asin = s.product_everywhere(UPC_MUG).await;
    rival.list("DUP-1", "US", json!({"asin": asin, "price": usd("99.00"), "quantity": 77})).await.ok(201);
    let file = tsv(&[
        &["sku", "product-id", "price", "quantity"],
        &["DUP-1", &asin, "10.00", "5"],
        &["DUP-1", "", "12.00", "9"],
        &["DUP-1", "", "", "2"],
    ]);
    let id = upload_done(&s, "US", file, 3, 3).await;
    let v = view(&s, "DUP-1", "US").await;
    assert_eq!(v["quantity"], 2, "the last quantity wins");
    assert_eq!(v["price"], usd("12.00"));
    let l = ledger(&s, "DUP-1").await;
    let got: Vec<(i64, i64)> = l
        .iter()
        .map(|e| (e["delta"].as_i64().unwrap(), e["quantity_after"].as_i64().unwrap()))
        .collect();
    assert_eq!(got, [(5, 5), (4, 9), (-7, 2)]);
    assert!(l.iter().all(|e| e["reason"] == "upload" && e["reference"] == json!(id)));

    assert_eq!(ledger_sum(&l), 2);
    // Another seller's SKU of the same name is untouched (R22).
    let v = view(&rival, "DUP-1", "US").await;
    assert_eq!((v["quantity"].clone(), v["price"].clone()), (json!(77), usd("99.00")));
    assert_eq!(ledger(&rival, "DUP-1").await.len(), 1);
}

fn queued_uploads_are_applied_in_arrival_order(app) {
    // SPEC section 5: "Uploads of one seller are applied in the order they arrived."
    // Several small files queue up behind a large one; each sets the same SKU's quantity.
    let s = app.new_seller("Acme").await;
    let asin = s.product_everywhere(UPC_MUG).await;
    s.list("ORDERED", "US", json!({"asin": asin, "price": usd("5.00"), "quantity": 1}))
        .await
        .ok(201);
    let mut busy = String::from("sku\tproduct-id\tprice\tquantity\n");
    for i in 0..6000 {
        busy.push_str(&format!("BUSY-{i:05}\t{asin}\t1.00\t1\n"));
    }
    let big = start_upload(&s, "US", busy.into_bytes()).await;
    let mut ids = Vec::new();
    for q in 10..18 {
        let file = tsv(&[&["sku", "quantity"], &["ORDERED", &q.to_string()]]);
        ids.push(start_upload(&s, "US", file).await);
    }
    let before = s.upload_status(&big).await;
    for id in &ids {
        assert_eq!(s.wait_upload(id).await["status"], "DONE");
    }
    assert_eq!(s.wait_upload(&big).await["status"], "DONE");
    let l = ledger(&s, "ORDERED").await;
    let refs: Vec<String> = l
        .iter()
        .filter(|e| e["reason"] == "upload")
        .map(|e| e["reference"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        refs, ids,
        "applied in another order than they arrived (the large upload was {before} when the last was queued): {l:?}"
    );
    assert_eq!(s.quantity("ORDERED", "US").await, 17, "the last upload's quantity");
}

fn x_deletes_everywhere_and_d_only_in_this_store(app) {
    let s = app.new_seller("Acme").await;
    let asin = s.product_everywhere(UPC_MUG).await;
    for sku in ["DEL-D", "DEL-X"] {
        s.list(sku, "US", json!({"asin": asin, "price": usd("9.00"), "quantity": 6}))
            .await
            .ok(201);
        s.list(sku, "CA", json!({"asin": asin, "price": cad("12.00"), "share": "existing"}))
            .await
            .ok(201);
        s.list(sku, "MX", json!({"asin": asin, "price": mxn("150.00"), "share": "unique", "quantity": 2}))
            .await
            .ok(201);
    }
    for sku in ["US-ONLY-D", "US-ONLY-X"] {
        s.list(sku, "US", json!({"asin": asin, "price": usd("9.00"), "quantity": 1}))
            .await
            .ok(201);
    }
    let file = tsv(&[
        &["sku", "add-delete", "price"],
        &["DEL-D", "d", "not a price: ignored on d rows"],
        &["DEL-X", "X", ""],
        &["DEL-X", "x", ""],
        &["US-ONLY-D", "d", ""],
        &["US-ONLY-X", "x", ""],
    ]);
    let id = upload_done(&s, "CA", file, 5, 3).await;
    assert_report(
        &report(&s, &id).await,
        5,
        3,
        &[(3, "DEL-X", "NOT_FOUND", "Error"), (4, "US-ONLY-D", "NOT_FOUND", "Error")],
    );
    assert_eq!(s.quantity("US-ONLY-D", "US").await, 1, "d in CA leaves US alone");
    assert_no_sku(&s, "US-ONLY-X").await;

    // d: the CA listing only; the shared pool stays with US.
    let all = listings_of(&s, "DEL-D").await;
    let stores: Vec<&str> = all.iter().map(|l| l["store"].as_str().unwrap()).collect();
    assert_eq!(stores, ["US", "MX"]);
    let us = view(&s, "DEL-D", "US").await;
    assert_eq!(us["quantity"], 6);
    assert_eq!(strs(&us["pool_stores"]), ["US"]);
    app.order("CA", "o-d-ca", &[(&s, "DEL-D", 1)]).await.expect(409, "LISTING_NOT_BUYABLE");
    app.order("US", "o-d-us", &[(&s, "DEL-D", 1)]).await.ok(201);

    // x: every store, every pool; the ledger stays readable and adds up to zero.
    assert_no_sku(&s, "DEL-X").await;
    app.order("US", "o-x-us", &[(&s, "DEL-X", 1)]).await.expect(409, "LISTING_NOT_BUYABLE");
    let l = ledger(&s, "DEL-X").await;
    let deletes: Vec<&Value> = l.iter().filter(|e| e["reason"] == "delete").collect();
    assert_eq!(deletes.len(), 2, "two pools removed: {l:?}");
    assert!(deletes.iter().all(|e| e["reference"] == json!(id)), "{l:?}");
    assert_eq!(ledger_sum(&l), 0);

    // A d row in a store where the pool's only listing is deleted removes its pool.
    let file = tsv(&[&["sku", "add-delete"], &["DEL-D", "d"]]);
    let id = upload_done(&s, "MX", file, 1, 1).await;
    let l = ledger(&s, "DEL-D").await;
    let mx_delete: Vec<&Value> = l
        .iter()
        .filter(|e| e["reason"] == "delete" && e["reference"] == json!(id))
        .collect();
    assert_eq!(mx_delete.len(), 1, "{l:?}");
    assert_eq!(mx_delete[0]["delta"], -2);
    assert_eq!(ledger_sum(&l), 5, "US pool (6 - 1 sold) is what is left: {l:?}");
    assert_eq!(listings_of(&s, "DEL-D").await.len(), 1);
}

// ------------------------------------------------- 4. FATAL files and access

fn unreadable_files_are_fatal_and_apply_nothing(app) {
    let s = app.new_seller("Acme").await;
    product_in(&s, "CA", "UPC", UPC_MUG, "Blue Ceramic Mug").await;
    let good_row = format!("GOOD-1\t{UPC_MUG}\t9.99\t1\n");
    let header = "sku\tproduct-id\tprice\tquantity\n";

    let mut garbage: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    garbage[10] = 0;
    let mut nul_after_rows = format!("{header}{good_row}").into_bytes();
    nul_after_rows.extend_from_slice(b"BIN\x00ARY\t1\t2\t3\n");
    let mut bom_invalid = b"\xEF\xBB\xBF".to_vec();
    bom_invalid.extend_from_slice(format!("{header}{good_row}").as_bytes());
    bom_invalid.extend_from_slice(b"CAF\xC9-1\t036000291452\t9.99\t1\n");
    let mut utf16 = vec![0xFF, 0xFE];
    for u in format!("{header}{good_row}").encode_utf16() {
        utf16.extend_from_slice(&u.to_le_bytes());
    }
    let mut xls = vec![0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];
    xls.extend_from_slice(&[0x41; 600]);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("binary garbage", garbage),
        ("rows then a NUL byte", nul_after_rows),
        ("empty file", Vec::new()),
        ("only blank lines", b"\n\r\n\n".to_vec()),
        ("no sku column", format!("product-id\tprice\tquantity\n{UPC_MUG}\t9.99\t1\n").into_bytes()),
        ("preamble without a header", b"TemplateType=InventoryLoader\n# notes\n".to_vec()),
        ("BOM with invalid UTF-8", bom_invalid),
        ("UTF-16", utf16),
        ("an .xls workbook", xls),
        ("a zip that is no workbook", b"PK\x03\x04this is not a workbook at all".to_vec()),
    ];
    for (what, bytes) in cases {
        let id = start_upload(&s, "CA", bytes).await;
        let b = s.wait_upload(&id).await;
        assert_eq!(b["status"], "FATAL", "{what}: {b}");
        assert!(
            b["error"].as_str().is_some_and(|e| !e.trim().is_empty()),
            "{what}: FATAL without an error: {b}"
        );
        assert_eq!(b["records_successful"], 0, "{what}: {b}");
        assert_eq!(b["records_failed"], 0, "{what}: {b}");
        assert_eq!(b["records_processed"], 0, "{what}: {b}");
        let text = report(&s, &id).await;
        let (_, ok, rows) = parse_report(&text);
        assert_eq!(ok, 0, "{what}: {text}");
        assert!(rows.iter().all(|r| r.0 == 0 && r.3 == "Error"), "{what}: {text}");
        assert_no_sku(&s, "GOOD-1").await;
    }
    assert!(all_listings(&s, "CA").await.is_empty(), "no row of a FATAL file is applied");

    // Header only (with a preamble): DONE with no records.
    let id = upload_done(
        &s,
        "CA",
        format!("TemplateType=InventoryLoader\tVersion=2026.1\n# notes\n{header}\n\n").into_bytes(),
        0,
        0,
    )
    .await;
    assert_report(&report(&s, &id).await, 0, 0, &[]);
    let id = upload_done(&s, "CA", "sku".as_bytes().to_vec(), 0, 0).await;
    assert_report(&report(&s, &id).await, 0, 0, &[]);

    // The server still serves, and the next good file is applied.
    app.assert_healthy().await;
    upload_done(&s, "CA", format!("{header}{good_row}").into_bytes(), 1, 1).await;
    assert_eq!(s.quantity("GOOD-1", "CA").await, 1);
}

fn upload_access_and_store_rules(app) {
    let s = app.new_seller("Acme").await;
    let other = app.new_seller("Rival").await;
    let file = b"sku\tquantity\nX-1\t1\n".to_vec();

    post_upload(&s, "?store=ZZ", file.clone()).await.expect(400, "UNKNOWN_STORE");
    let r = post_upload(&s, "?store=", file.clone()).await;
    assert_eq!(r.status, 400, "empty store: {}", r.text);
    let r = post_upload(&s, "", file.clone()).await;
    assert_eq!(r.status, 400, "no store: {}", r.text);
    post_upload(&app.operator(), "?store=US", file.clone())
        .await
        .expect(403, "FORBIDDEN");
    post_upload(&app.anonymous(), "?store=US", file.clone())
        .await
        .expect(401, "UNAUTHENTICATED");
    post_upload(&app.with_token("nope"), "?store=US", file.clone())
        .await
        .expect(401, "UNAUTHENTICATED");

    // Store codes are matched without regard to case, answered in capitals.
    let r = post_upload(&s, "?store=ca", file.clone()).await;
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(r.body["store"], "CA");
    let id = r.body["upload_id"].as_str().unwrap().to_string();
    let b = s.wait_upload(&id).await;
    assert_eq!(b["status"], "DONE");
    assert_eq!(b["store"], "CA");
    assert_eq!(b["records_failed"], 1, "X-1 has no listing and no product: {b}");

    // Another seller's upload is NOT_FOUND, as a missing one.
    other.get(&format!("/v1/uploads/{id}")).await.expect(404, "NOT_FOUND");
    other.get(&format!("/v1/uploads/{id}/report")).await.expect(404, "NOT_FOUND");
    s.get("/v1/uploads/upl_0000000000000000").await.expect(404, "NOT_FOUND");
    s.get("/v1/uploads/upl_0000000000000000/report").await.expect(404, "NOT_FOUND");
    let r = s.get("/v1/uploads/%00%ff").await;
    assert!([400, 404].contains(&r.status), "a malformed id: {}", r.text);
    app.operator().get(&format!("/v1/uploads/{id}")).await.expect(403, "FORBIDDEN");
    app.anonymous().get(&format!("/v1/uploads/{id}")).await.expect(401, "UNAUTHENTICATED");

    // A file larger than the 1 MiB JSON limit is accepted (uploads have their own).
    let mut big = String::from("sku\tquantity\titem-note\n");
    let note = "n".repeat(500);
    for i in 0..2500 {
        big.push_str(&format!("BIG-{i}\t1\t{note}\n"));
    }
    assert!(big.len() > 1 << 20);
    let id = start_upload(&s, "US", big.into_bytes()).await;
    let b = s.wait_upload(&id).await;
    assert_eq!((b["status"].as_str(), b["records_processed"].as_i64()), (Some("DONE"), Some(2500)), "{b}");
    app.assert_healthy().await;
}

// ------------------------------------------------- 5. orders keep flowing

fn orders_keep_flowing_while_a_large_upload_runs(app) {
    let s = app.new_seller("Acme").await;
    let asin = s.product_everywhere(UPC_MUG).await;
    // The orders' SKU: one shared pool in US, CA and MX.
    s.list("POOL", "US", json!({"asin": asin, "price": usd("10.00"), "quantity": 150})).await.ok(201);
    s.list("POOL", "CA", json!({"asin": asin, "price": cad("13.00"), "share": "existing"})).await.ok(201);
    s.list("POOL", "MX", json!({"asin": asin, "price": mxn("200.00"), "share": "existing"})).await.ok(201);

    const ROWS: usize = 20_000;
    let mut file = String::from("sku\tproduct-id\tproduct-id-type\tprice\tquantity\n");
    for i in 0..ROWS {
        file.push_str(&format!("BULK-{i:05}\t{asin}\tASIN\t9.99\t3\n"));
    }
    let id = start_upload(&s, "US", file.into_bytes()).await;
    // Wait until the worker has applied a first chunk.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let b = s.upload_status(&id).await;
        if b["records_processed"].as_i64().unwrap() > 0 || b["status"] != "IN_QUEUE" {
            break;
        }
        assert!(Instant::now() < deadline, "the upload never started: {b}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let before = s.upload_status(&id).await;

    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..200 {
        let app_base = (app.operator(), s.seller_id.clone());
        tasks.push(tokio::spawn(async move {
            let (op, seller) = app_base;
            let store = ["US", "CA", "MX"][i % 3];
            let t = Instant::now();
            let r = op
                .post(
                    &format!("/v1/stores/{store}/orders"),
                    json!({"order_id": format!("flow-{i}"), "lines": [{"seller_id": seller, "sku": "POOL", "quantity": 1}]}),
                )
                .await;
            (r.status, r.code().to_string(), t.elapsed())
        }));
    }
    let mut accepted = 0;
    let mut refused = 0;
    let mut slowest = Duration::ZERO;
    for t in tasks {
        let (status, code, took) = t.await.expect("order task");
        slowest = slowest.max(took);
        match (status, code.as_str()) {
            (201, "") => accepted += 1,
            (409, "INSUFFICIENT_STOCK") => refused += 1,
            other => panic!("order answered {other:?}"),
        }
    }
    let orders_took = started.elapsed();
    let during = s.upload_status(&id).await;
    println!(
        "200 orders in {orders_took:?} (slowest {slowest:?}); upload before: {before}, after orders: {during}"
    );
    assert_eq!((accepted, refused), (150, 50));
    assert!(slowest < Duration::from_secs(20), "an order waited {slowest:?}");

    let b = s.wait_upload(&id).await;
    assert_eq!(b["status"], "DONE", "{b}");
    assert_eq!(b["records_processed"], ROWS as i64);
    assert_eq!(b["records_successful"], ROWS as i64);
    assert_report(&report(&s, &id).await, ROWS as i64, ROWS as i64, &[]);

    for store in ["US", "CA", "MX"] {
        assert_eq!(s.quantity("POOL", store).await, 0, "{store}");
    }
    let l = ledger(&s, "POOL").await;
    assert_eq!(ledger_sum(&l), 0);
    assert_eq!(l.iter().filter(|e| e["reason"] == "order").count(), 150);
    let mut seen_after: Vec<i64> = l
        .iter()
        .filter(|e| e["reason"] == "order")
        .map(|e| e["quantity_after"].as_i64().unwrap())
        .collect();
    seen_after.sort();
    assert_eq!(seen_after, (0..150).collect::<Vec<i64>>(), "each order took one unit, none twice");

    let us = all_listings(&s, "US").await;
    assert_eq!(us.len(), ROWS + 1);
    let bulk: Vec<&Value> = us.iter().filter(|v| v["sku"] != "POOL").collect();
    assert!(bulk.iter().all(|v| v["quantity"] == 3), "every bulk SKU holds 3");
    for i in [0, 1999, 2000, 9_999, ROWS - 1] {
        let sku = format!("BULK-{i:05}");
        let l = ledger(&s, &sku).await;
        assert_eq!(l.len(), 1, "{sku}: {l:?}");
        assert_eq!((l[0]["reason"].as_str(), l[0]["delta"].as_i64()), (Some("upload"), Some(3)));
        assert_eq!(l[0]["reference"], json!(id));
    }
}

}

//! The operator's and the newcomer's view: the OpenAPI document against the real router,
//! `/metrics`, and the command line driving a real server through the API.

mod common;

use std::collections::BTreeSet;

use common::{Backend, OPERATOR_TOKEN, TestApp, default_region, usd};
use reqwest::Method;
use serde_json::{Value, json};

/// The router's table, as written in the source the binary is built from.
const ROUTER_SOURCE: &str = include_str!("../src/http/mod.rs");
/// The document `GET /openapi.json` serves.
const OPENAPI: &str = include_str!("../../../docs/openapi.json");

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// (path, method) of every `.route("PATH", get(..).delete(..))` under `/v1` and
/// `/healthz`, `/openapi.json`, `/metrics`, from the router's source.
fn router_routes() -> BTreeSet<(String, String)> {
    let mut routes = BTreeSet::new();
    let mut rest = ROUTER_SOURCE;
    while let Some(at) = rest.find(".route(") {
        rest = &rest[at + ".route(".len()..];
        let Some(open) = rest.find('"') else { break };
        let after = &rest[open + 1..];
        let Some(close) = after.find('"') else { break };
        let path = after[..close].to_owned();
        // The handlers' part: up to the parenthesis that closes `.route(`.
        let mut depth = 1usize;
        let mut end = 0;
        for (i, c) in rest.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = i;
                        break;
                    }
                }
                _ => {}
            }
        }
        let handlers = &after[close + 1..end.max(close + 1)];
        let known = path.starts_with("/v1/")
            || path == "/v1"
            || ["/healthz", "/openapi.json", "/metrics"].contains(&path.as_str());
        if !known {
            continue;
        }
        for m in METHODS {
            let called = handlers.match_indices(&format!("{m}(")).any(|(i, _)| {
                i == 0 || !handlers[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_')
            });
            if called {
                routes.insert((path.clone(), m.to_owned()));
            }
        }
    }
    routes
}

fn document_routes(doc: &Value) -> BTreeSet<(String, String)> {
    let mut routes = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for m in METHODS {
            if item.get(m).is_some() {
                routes.insert((path.clone(), m.to_owned()));
            }
        }
    }
    routes
}

/// A concrete address for a templated path: every `{param}` becomes `x1`.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|s| if s.starts_with('{') { "x1" } else { s })
        .collect::<Vec<_>>()
        .join("/")
}

#[test]
fn openapi_document_names_every_route_of_the_router_and_no_other() {
    let doc: Value = serde_json::from_str(OPENAPI).expect("docs/openapi.json is JSON");
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "an OpenAPI 3.1 document"
    );
    let router = router_routes();
    assert!(
        router.len() >= 23,
        "the router's table was read: {router:?}"
    );
    let documented = document_routes(&doc);
    let undocumented: Vec<_> = router.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&router).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from docs/openapi.json: {undocumented:?}"
    );
    assert!(
        unrouted.is_empty(),
        "docs/openapi.json names routes the router lacks: {unrouted:?}"
    );
    // Every $ref points at a component that exists.
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r.clone());
                }
                m.values().for_each(|x| refs(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(&doc, &mut all);
    for r in all {
        let pointer = r.trim_start_matches('#');
        assert!(doc.pointer(pointer).is_some(), "dangling $ref {r}");
    }
    // Every templated parameter of a path is declared.
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for seg in path.split('/').filter(|s| s.starts_with('{')) {
            let name = seg.trim_matches(|c| c == '{' || c == '}');
            for (m, op) in item.as_object().expect("path item") {
                let declared = op["parameters"].as_array().is_some_and(|ps| {
                    ps.iter()
                        .any(|p| p["name"] == name && p["in"] == "path" && p["required"] == true)
                });
                assert!(declared, "{m} {path}: path parameter {name} not declared");
            }
        }
    }
}

#[tokio::test]
async fn served_document_is_the_repository_file_and_every_route_answers_on_the_real_server() {
    let Some(app) = TestApp::spawn(Backend::Sqlite, default_region()).await else {
        return;
    };
    let anyone = app.anonymous();
    let r = anyone.get("/openapi.json").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.text, OPENAPI, "the served document is docs/openapi.json");
    let doc: Value = serde_json::from_str(OPENAPI).expect("json");
    let op = app.operator();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        let address = concrete(path);
        for m in METHODS {
            let method = Method::from_bytes(m.to_uppercase().as_bytes()).expect("method");
            let r = op
                .send(method.clone(), &address, Some(json!({})), &[])
                .await;
            if item.get(m).is_some() {
                assert_ne!(r.status, 405, "{m} {address}: documented, but 405");
                let fallback = r.status == 404
                    && r.body["error"]["message"]
                        .as_str()
                        .is_some_and(|t| t.starts_with("There is no such path"));
                assert!(!fallback, "{m} {address}: documented, but no route");
            } else {
                assert_eq!(
                    r.status, 405,
                    "{m} {address}: not documented, yet answered {}",
                    r.text
                );
                assert_eq!(r.body["error"]["code"], "METHOD_NOT_ALLOWED", "{}", r.text);
                let allow = r
                    .headers
                    .get("allow")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_lowercase();
                for documented in METHODS.iter().filter(|d| item.get(**d).is_some()) {
                    assert!(
                        allow.contains(documented),
                        "{m} {address}: Allow {allow:?} lacks {documented}"
                    );
                }
            }
        }
    }
    // Beyond the API: the fallback names where the API is, inside the repository.
    let r = anyone.get("/v2/nothing").await;
    assert_eq!(r.status, 404);
    let message = r.body["error"]["message"].as_str().unwrap_or_default();
    assert!(!message.contains("SPEC"), "{message}");
    assert!(message.contains("/openapi.json"), "{message}");
}

/// One value of a Prometheus text exposition: `name{labels} value`.
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            (name == series)
                .then(|| value.parse::<f64>().ok())
                .flatten()
        })
        .unwrap_or_else(|| panic!("{series} missing from:\n{text}"))
}

#[tokio::test]
async fn metrics_are_prometheus_text_for_the_operator_only_and_count_orders() {
    let Some(app) = TestApp::spawn(Backend::Sqlite, default_region()).await else {
        return;
    };
    let seller = app.new_seller("metrics").await;
    assert_eq!(app.anonymous().get("/metrics").await.status, 401);
    assert_eq!(seller.get("/metrics").await.status, 403);

    let asin = seller.product_everywhere("036000291452").await;
    seller
        .list(
            "MUG",
            "US",
            json!({"asin": asin, "price": usd("9.99"), "quantity": 5}),
        )
        .await
        .ok(201);
    let before = app.operator().get("/metrics").await;
    assert_eq!(before.status, 200);
    let content_type = before
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    // Every line is a comment or `series value` with a number.
    for line in before.text.lines() {
        if line.starts_with('#') {
            assert!(
                line.starts_with("# HELP ") || line.starts_with("# TYPE "),
                "{line}"
            );
            continue;
        }
        let (_, value) = line.rsplit_once(' ').expect("series value");
        assert!(value.parse::<f64>().is_ok(), "{line}");
    }
    let accepted = metric(&before.text, "onestock_orders_total{outcome=\"accepted\"}");
    let refused = metric(&before.text, "onestock_orders_total{outcome=\"refused\"}");
    let ok2xx = metric(&before.text, "onestock_http_responses_total{class=\"2xx\"}");
    let commands = metric(&before.text, "onestock_writer_commands_total");
    assert!(metric(&before.text, "onestock_writer_batches_total") >= 1.0);
    assert!(metric(&before.text, "onestock_open_connections") >= 1.0);

    app.order("US", "m-1", &[(&seller, "MUG", 2)]).await.ok(201);
    app.order("US", "m-2", &[(&seller, "MUG", 99)])
        .await
        .expect(409, "INSUFFICIENT_STOCK");
    let done = metric(&before.text, "onestock_uploads_total{outcome=\"done\"}");
    let rows = metric(
        &before.text,
        "onestock_upload_rows_total{outcome=\"processed\"}",
    );
    let file = format!("{HEADER}\nMUG\t{asin}\tASIN\t9.99\t\t7\ta\t\tmerchant\t\n");
    let r = seller
        .raw(
            Method::POST,
            "/v1/uploads?store=US",
            Some(file.into_bytes()),
            "text/plain",
            &[],
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let id = r.body["upload_id"].as_str().expect("upload_id").to_owned();
    let u = seller.wait_upload(&id).await;
    assert_eq!(u["status"], "DONE", "{u}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    // Counted just after the status is written: give the worker its moment.
    let mut after = app.operator().get("/metrics").await;
    while metric(&after.text, "onestock_uploads_total{outcome=\"done\"}") < done + 1.0 {
        assert!(std::time::Instant::now() < deadline, "{}", after.text);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        after = app.operator().get("/metrics").await;
    }
    let text = &after.text;
    assert!(metric(text, "onestock_upload_rows_total{outcome=\"processed\"}") >= rows + 1.0);
    assert!(metric(text, "onestock_uploads_total{outcome=\"queued\"}") >= 1.0);
    assert!(metric(text, "onestock_orders_total{outcome=\"accepted\"}") >= accepted + 1.0);
    assert!(metric(text, "onestock_orders_total{outcome=\"refused\"}") >= refused + 1.0);
    assert!(metric(text, "onestock_http_responses_total{class=\"2xx\"}") >= ok2xx + 2.0);
    assert!(metric(text, "onestock_writer_commands_total") >= commands + 1.0);
    assert!(metric(text, "onestock_http_responses_total{class=\"4xx\"}") >= 3.0);
    let _ = OPERATOR_TOKEN;
}

// ---- the command line, against a real server ----

/// Runs the real binary in `dir` with `args`; (exit code, stdout, stderr).
async fn cli(dir: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_onestock"))
        .args(args)
        .current_dir(dir)
        .env_remove("ONESTOCK_URL")
        .env_remove("ONESTOCK_TOKEN")
        .env_remove("ONESTOCK_DATABASE_URL")
        .output()
        .await
        .expect("run onestock");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `--url BASE --token TOKEN`
fn remote<'a>(app: &'a TestApp, token: &'a str) -> [&'a str; 4] {
    ["--url", app.base.as_str(), "--token", token]
}

fn seller_token(client: &common::Client) -> String {
    client.token.clone().expect("a seller token")
}

/// The line of `out` that starts with `key:`, after the colon.
fn field(out: &str, key: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .map(|v| v.trim().to_owned())
        .unwrap_or_else(|| panic!("no {key}: in {out}"))
}

/// The report file `onestock upload` names in its output, in `dir`.
fn saved(dir: &std::path::Path, out: &str) -> std::path::PathBuf {
    let name = out
        .lines()
        .find_map(|l| l.strip_prefix("report saved to "))
        .unwrap_or_else(|| panic!("no report in {out}"));
    dir.join(name.trim())
}

#[tokio::test]
async fn cli_seller_create_goes_through_the_server_and_opens_no_database() {
    let Some(app) = TestApp::spawn(Backend::Sqlite, default_region()).await else {
        return;
    };
    let dir = tempfile::tempdir().expect("dir");
    let mut args = vec!["seller", "create", "Acme Goods"];
    args.extend(remote(&app, OPERATOR_TOKEN));
    let (code, out, err) = cli(dir.path(), &args).await;
    assert_eq!(code, 0, "{out}{err}");
    let token = field(&out, "token");
    // The running server knows the new seller.
    let seller = app.with_token(&token);
    assert_eq!(seller.get("/v1/listings").await.status, 200);
    // Nothing was written in the working folder: no database behind the server's back.
    let left: Vec<_> = std::fs::read_dir(dir.path()).expect("dir").collect();
    assert!(left.is_empty(), "files left: {left:?}");

    // `--name` still works; a seller's token is refused with the server's own words.
    let mut args = vec!["seller", "create", "--name", "Other"];
    args.extend(remote(&app, &token));
    let (code, _, err) = cli(dir.path(), &args).await;
    assert_ne!(code, 0);
    assert!(err.contains("FORBIDDEN"), "{err}");
    // No server there: the message says what to check.
    let (code, _, err) = cli(
        dir.path(),
        &[
            "seller",
            "create",
            "X",
            "--url",
            "http://127.0.0.1:9",
            "--token",
            "t",
        ],
    )
    .await;
    assert_ne!(code, 0);
    assert!(err.contains("onestock serve"), "{err}");
}

/// `GET /v1/sellers`: every seller, in id order, a page at a time; operator only; no
/// token shown.
async fn seller_list_story(backend: Backend) {
    let Some(app) = TestApp::spawn(backend, default_region()).await else {
        return;
    };
    let op = app.operator();
    let r = op.get("/v1/sellers").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body, json!({"sellers": [], "next_cursor": null}));

    let mut made = Vec::new();
    for name in ["Acme Goods", "Borealis", "Cedar & Co", "Dune"] {
        let s = app.new_seller(name).await;
        made.push((s.seller_id.as_str().expect("id").to_owned(), name));
    }
    made.sort();

    let r = op.get("/v1/sellers").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["next_cursor"], Value::Null);
    let listed: Vec<(String, &str)> = r.body["sellers"]
        .as_array()
        .expect("sellers")
        .iter()
        .map(|s| {
            let keys: BTreeSet<&str> = s
                .as_object()
                .expect("object")
                .keys()
                .map(|k| k.as_str())
                .collect();
            assert_eq!(
                keys,
                BTreeSet::from(["seller_id", "name", "created_at"]),
                "{s}"
            );
            let at = s["created_at"].as_str().expect("created_at");
            assert!(
                time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
                    .is_ok()
                    && at.ends_with('Z'),
                "{at}"
            );
            let name = made
                .iter()
                .find(|(_, n)| *n == s["name"])
                .expect("a made seller")
                .1;
            (s["seller_id"].as_str().expect("id").to_owned(), name)
        })
        .collect();
    assert_eq!(listed, made, "every seller, in id order");

    // Pages of 3 then 1; the cursor is the last id of the page before.
    let r = op.get("/v1/sellers?limit=3").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["sellers"].as_array().expect("page").len(), 3);
    assert_eq!(r.body["next_cursor"], json!(made[2].0));
    let r = op
        .get(&format!("/v1/sellers?limit=3&cursor={}", made[2].0))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["sellers"][0]["seller_id"], json!(made[3].0));
    assert_eq!(r.body["sellers"].as_array().expect("page").len(), 1);
    assert_eq!(r.body["next_cursor"], Value::Null);
    // A page that ends exactly at the last seller has no next page.
    let r = op.get("/v1/sellers?limit=4").await;
    assert_eq!(r.body["next_cursor"], Value::Null, "{}", r.text);

    for bad in ["0", "1001", "x", "-1"] {
        let r = op.get(&format!("/v1/sellers?limit={bad}")).await;
        assert_eq!(r.status, 400, "limit={bad}: {}", r.text);
        assert_eq!(r.body["error"]["code"], "INVALID_REQUEST");
        assert_eq!(r.body["error"]["field"], "limit");
    }
    let seller = app.new_seller("Nosy").await;
    let r = seller.get("/v1/sellers").await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(r.body["error"]["code"], "FORBIDDEN");
    let r = app.anonymous().get("/v1/sellers").await;
    assert_eq!(r.status, 401, "{}", r.text);
}

#[tokio::test]
async fn sellers_list_in_id_order_a_page_at_a_time_on_sqlite() {
    seller_list_story(Backend::Sqlite).await;
}

#[tokio::test]
async fn sellers_list_in_id_order_a_page_at_a_time_on_postgres() {
    seller_list_story(Backend::Postgres).await;
}

#[tokio::test]
async fn cli_seller_list_prints_every_seller_through_the_server() {
    let Some(app) = TestApp::spawn(Backend::Sqlite, default_region()).await else {
        return;
    };
    let mut ids = Vec::new();
    for name in ["Zeta", "Alpha"] {
        let s = app.new_seller(name).await;
        ids.push((s.seller_id.as_str().expect("id").to_owned(), name));
    }
    ids.sort();
    let dir = tempfile::tempdir().expect("dir");
    let mut args = vec!["seller", "list"];
    args.extend(remote(&app, OPERATOR_TOKEN));
    let (code, out, err) = cli(dir.path(), &args).await;
    assert_eq!(code, 0, "{out}{err}");
    let lines: Vec<Vec<&str>> = out.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(lines[0], ["seller_id", "name", "created"], "{out}");
    assert_eq!(lines.len(), 3, "{out}");
    for (row, (id, name)) in lines[1..].iter().zip(&ids) {
        assert_eq!(row[0], id, "{out}");
        assert_eq!(row[1], *name, "{out}");
        assert!(row[2].ends_with('Z'), "{out}");
    }
    let left: Vec<_> = std::fs::read_dir(dir.path()).expect("dir").collect();
    assert!(left.is_empty(), "files left: {left:?}");
    // The seller's own token is refused with the server's words.
    let seller = app.new_seller("Nosy").await;
    let token = seller_token(&seller);
    let mut args = vec!["seller", "list"];
    args.extend(remote(&app, &token));
    let (code, _, err) = cli(dir.path(), &args).await;
    assert_ne!(code, 0);
    assert!(err.contains("FORBIDDEN"), "{err}");
}

const HEADER: &str = "sku\tproduct-id\tproduct-id-type\tprice\titem-condition\tquantity\tadd-delete\tinventory-sharing\tfulfillment-channel\tstart-selling-date";

#[tokio::test]
async fn cli_upload_fails_when_rows_fail_and_reports_never_overwrite_each_other() {
    let Some(app) = TestApp::spawn(Backend::Sqlite, default_region()).await else {
        return;
    };
    let seller = app.new_seller("uploader").await;
    let token = seller_token(&seller);
    let asin = seller.product_everywhere("036000291452").await;
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("inventory.tsv");
    std::fs::write(
        &file,
        format!(
            "{HEADER}\nMUG\t{asin}\tASIN\t9.99\tnew\t5\ta\t\tmerchant\t\nBAD\t036000291453\tUPC\t9.99\tnew\t5\ta\t\tmerchant\t\nLONE\t{asin}\tASIN\t9.99\t\t\ta\texisting\tmerchant\t\n"
        ),
    )
    .expect("write");
    let mut args = vec!["upload", "--store", "US", "inventory.tsv"];
    args.extend(remote(&app, &token));
    let (code, out, err) = cli(dir.path(), &args).await;
    assert_eq!(code, 1, "a failed row fails the command: {out}{err}");
    assert!(err.contains("2 row(s) failed"), "{err}");
    let first = saved(dir.path(), &out);
    let name = first.file_name().map(|n| n.to_string_lossy().into_owned());
    assert!(
        name.is_some_and(|n| n.starts_with("inventory.tsv.") && n.ends_with(".report.txt")),
        "{first:?}"
    );

    // The same file again (every row now applies but BAD): another report, the first kept.
    std::fs::write(
        &file,
        format!("{HEADER}\nMUG\t{asin}\tASIN\t9.99\tnew\t6\ta\t\tmerchant\t\n"),
    )
    .expect("write");
    let (code, out, err) = cli(dir.path(), &args).await;
    assert_eq!(code, 0, "{out}{err}");
    let second = saved(dir.path(), &out);
    assert_ne!(first, second);
    assert!(first.exists(), "{first:?}");
    assert!(second.exists(), "{second:?}");
    let report = std::fs::read_to_string(&first).expect("first report");
    assert!(report.contains("INVALID_IDENTIFIER"), "{report}");
    // A sharing refusal speaks of the file's column, not of the API's field.
    let lone = report
        .lines()
        .find(|l| l.contains("\tLONE\t"))
        .unwrap_or_else(|| panic!("{report}"));
    assert!(lone.contains("SHARING_NOT_AVAILABLE"), "{lone}");
    assert!(
        lone.contains("inventory-sharing") && !lone.contains("share:"),
        "{lone}"
    );

    // uploads list: both, newest first; uploads report: the server's report.
    let mut args = vec!["uploads", "list"];
    args.extend(remote(&app, &token));
    let (code, out, err) = cli(dir.path(), &args).await;
    assert_eq!(code, 0, "{err}");
    let rows: Vec<&str> = out.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{out}");
    assert!(rows[0].contains("\tDONE\t1\t1\t0"), "{out}");
    assert!(rows[1].contains("\tDONE\t3\t1\t2"), "{out}");
    let old_id = rows[1].split('\t').next().expect("id").to_owned();
    let mut args = vec!["uploads", "report", old_id.as_str()];
    args.extend(remote(&app, &token));
    let (code, out, _) = cli(dir.path(), &args).await;
    assert_eq!(code, 0);
    assert_eq!(out, report);
}

const SKUS: [&str; 3] = ["MUG, BLUE", "BOTTLE", "BOTTLE-MP"];

async fn views(seller: &common::Client, skus: &[&str]) -> Vec<Value> {
    let mut out = Vec::new();
    for sku in skus {
        out.push(seller.listings(sku).await);
    }
    out
}

#[tokio::test]
async fn cli_listings_export_uploads_back_unchanged_and_ledger_lists_changes() {
    let Some(app) = TestApp::spawn(Backend::Sqlite, default_region()).await else {
        return;
    };
    let seller = app.new_seller("exporter").await;
    let token = seller_token(&seller);
    let mug = seller.product_everywhere("036000291452").await;
    let bottle = seller.product_everywhere("012000161155").await;
    // A shared pool in US and CA, a unique offer, a closed listing, a later start.
    seller
        .list(
            "MUG, BLUE",
            "US",
            json!({"asin": mug, "price": usd("12.50"), "quantity": 7, "condition": "used_good"}),
        )
        .await
        .ok(201);
    seller
        .list(
            "MUG, BLUE",
            "CA",
            json!({"asin": mug, "price": {"amount": "16.99", "currency": "CAD"}, "share": "existing"}),
        )
        .await
        .ok(201);
    seller
        .list(
            "BOTTLE",
            "US",
            json!({"asin": bottle, "price": usd("19.00"), "quantity": 3, "share": "unique",
                   "start_selling_at": "2030-01-01T00:00:00Z"}),
        )
        .await
        .ok(201);
    seller
        .list(
            "BOTTLE-MP",
            "US",
            json!({"asin": bottle, "price": usd("21.00"), "quantity": 2, "fulfillment": "marketplace"}),
        )
        .await
        .ok(201);
    seller.close("BOTTLE-MP", "US").await.ok(200);
    let before = views(&seller, &SKUS).await;

    let dir = tempfile::tempdir().expect("dir");
    let mut args = vec!["listings", "export", "--store", "US"];
    args.extend(remote(&app, &token));
    let (code, exported, err) = cli(dir.path(), &args).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(exported.lines().count(), 4, "{exported}");
    assert!(exported.starts_with("sku\tproduct-id\t"), "{exported}");
    std::fs::write(dir.path().join("us.txt"), &exported).expect("write");

    let mut args = vec!["upload", "--store", "US", "us.txt"];
    args.extend(remote(&app, &token));
    let (code, out, err) = cli(dir.path(), &args).await;
    assert_eq!(
        code, 0,
        "the export uploads back without a failed row: {out}{err}"
    );
    let after = views(&seller, &SKUS).await;
    // Nothing a seller sees changed (pool versions aside: a row that sets a quantity
    // counts as a change of the pool even when the value is the same).
    let strip = |vs: &[Value]| -> Vec<Value> {
        vs.iter()
            .map(|v| {
                let mut v = v.clone();
                if let Some(ls) = v["listings"].as_array_mut() {
                    for l in ls {
                        if let Some(o) = l.as_object_mut() {
                            o.remove("pool_version");
                        }
                    }
                }
                v
            })
            .collect()
    };
    assert_eq!(strip(&before), strip(&after));
    let (code, again, _) = cli(
        dir.path(),
        &[
            "listings", "export", "--store", "US", "--url", &app.base, "--token", &token,
        ],
    )
    .await;
    assert_eq!(code, 0);
    assert_eq!(again, exported, "a second export is the same file");

    // listings list: every store's listings; ledger: the pool's entries.
    let mut args = vec!["listings", "list"];
    args.extend(remote(&app, &token));
    let (code, out, _) = cli(dir.path(), &args).await;
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 5, "{out}");
    let mut args = vec!["ledger", "MUG, BLUE"];
    args.extend(remote(&app, &token));
    let (code, out, err) = cli(dir.path(), &args).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("seq\tat\tpool_id\tstore\treason\tdelta"),
        "{out}"
    );
    assert!(
        out.lines()
            .nth(1)
            .is_some_and(|l| l.contains("\tset\t7\t7")),
        "{out}"
    );
    // Another seller's SKU is NOT_FOUND, as the API says.
    let other = app.new_seller("other").await;
    let other_token = seller_token(&other);
    let mut args = vec!["ledger", "MUG, BLUE"];
    args.extend(remote(&app, &other_token));
    let (code, _, err) = cli(dir.path(), &args).await;
    assert_ne!(code, 0);
    assert!(err.contains("NOT_FOUND"), "{err}");
}

#[tokio::test]
async fn cli_template_writes_a_real_workbook_that_uploads_and_every_subcommand_helps() {
    let Some(app) = TestApp::spawn(Backend::Sqlite, default_region()).await else {
        return;
    };
    let seller = app.new_seller("templates").await;
    let token = seller_token(&seller);
    let dir = tempfile::tempdir().expect("dir");
    let (code, out, err) = cli(dir.path(), &["template", "t.xlsx"]).await;
    assert_eq!(code, 0, "{out}{err}");
    let bytes = std::fs::read(dir.path().join("t.xlsx")).expect("t.xlsx");
    assert!(bytes.starts_with(b"PK\x03\x04"), "a zip workbook");
    let mut args = vec!["upload", "--store", "US", "t.xlsx"];
    args.extend(remote(&app, &token));
    let (code, out, err) = cli(dir.path(), &args).await;
    assert_eq!(
        code, 0,
        "the empty workbook template is read, not FATAL: {out}{err}"
    );
    assert!(out.contains("DONE"), "{out}");

    let (code, _, _) = cli(dir.path(), &["template", "t.txt"]).await;
    assert_eq!(code, 0);
    let text = std::fs::read_to_string(dir.path().join("t.txt")).expect("t.txt");
    assert!(text.starts_with("TemplateType="), "{text}");
    let (code, _, err) = cli(dir.path(), &["template", "t.xls"]).await;
    assert_ne!(code, 0);
    assert!(err.contains(".xlsx"), "{err}");
    assert!(!dir.path().join("t.xls").exists());

    for sub in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["migrate", "--help"],
        vec!["seller", "create", "--help"],
        vec!["seller", "list", "--help"],
        vec!["upload", "--help"],
        vec!["uploads", "list", "--help"],
        vec!["uploads", "report", "--help"],
        vec!["listings", "list", "--help"],
        vec!["listings", "export", "--help"],
        vec!["ledger", "--help"],
        vec!["template", "--help"],
    ] {
        let (code, out, err) = cli(dir.path(), &sub).await;
        assert_eq!(code, 0, "{sub:?}: {err}");
        assert!(out.contains("Usage:"), "{sub:?}: {out}");
    }
    let (_, out, _) = cli(dir.path(), &["upload", "--help"]).await;
    assert!(out.contains("Exit status"), "{out}");
}

#[tokio::test]
async fn cli_migrate_on_a_missing_postgres_database_says_to_create_it() {
    let Ok(admin) = std::env::var(common::POSTGRES_ENV) else {
        println!("skipped: {} is not set", common::POSTGRES_ENV);
        return;
    };
    let Some((server, _)) = admin.rsplit_once('/') else {
        return;
    };
    let missing = format!("{server}/onestock_never_created_{}", std::process::id());
    let dir = tempfile::tempdir().expect("dir");
    let (code, _, err) = cli(dir.path(), &["migrate", "--database-url", &missing]).await;
    assert_ne!(code, 0);
    assert!(err.contains("does not exist"), "{err}");
    assert!(err.contains("createdb -h"), "{err}");
    assert!(err.contains("onestock_never_created_"), "{err}");
}

/// `migrate` on PostgreSQL applies the migrations and exits 0, twice (it exited 101: the
/// client was closed on a runtime thread).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_migrate_on_postgres_exits_zero() {
    let Some(db) = common::PgDatabase::create().await else {
        return;
    };
    let url = db.url.clone();
    let dir = tempfile::tempdir().expect("dir");
    for round in 0..2 {
        let (code, out, err) = cli(dir.path(), &["migrate", "--database-url", &url]).await;
        assert_eq!(code, 0, "round {round}: {out}{err}");
        assert!(out.contains("is up to date"), "{out}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

/// `bench` on PostgreSQL whose setup fails after the database opened (a trigger refuses
/// every seller) reports the error and exits 1 (it exited 101: the database was dropped
/// on a runtime thread).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_bench_setup_error_on_postgres_is_reported_not_a_panic() {
    let Some(db) = common::PgDatabase::create().await else {
        return;
    };
    let url = db.url.clone();
    let dir = tempfile::tempdir().expect("dir");
    let (code, out, err) = cli(dir.path(), &["migrate", "--database-url", &url]).await;
    assert_eq!(code, 0, "{out}{err}");
    let refuse = "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'no sellers here'; END $$ LANGUAGE plpgsql;
         CREATE TRIGGER refuse BEFORE INSERT ON seller FOR EACH ROW EXECUTE FUNCTION refuse();";
    let psql = std::process::Command::new("psql")
        .args([url.as_str(), "-q", "-v", "ON_ERROR_STOP=1", "-c", refuse])
        .output()
        .expect("psql");
    assert!(
        psql.status.success(),
        "{}",
        String::from_utf8_lossy(&psql.stderr)
    );
    let (code, out, err) = cli(
        dir.path(),
        &[
            "bench",
            "--clients",
            "1",
            "--naive-clients",
            "1",
            "--seconds",
            "1",
            "--database-url",
            &url,
        ],
    )
    .await;
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("no sellers here"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[tokio::test]
async fn log_lines_carry_no_colour_codes_when_written_to_a_file() {
    let dir = tempfile::tempdir().expect("dir");
    let url = format!("sqlite:{}", dir.path().join("m.db").display());
    let (code, out, err) = cli(dir.path(), &["migrate", "--database-url", &url]).await;
    assert_eq!(code, 0, "{out}{err}");
    // migrate logs each migration it applies at INFO, to standard error (a pipe here).
    assert!(err.contains("migration"), "{err}");
    assert!(!err.contains('\u{1b}'), "ANSI escape in {err:?}");
}

#[tokio::test]
async fn cli_bench_upload_runs_a_file_to_done_and_checks_it() {
    let dir = tempfile::tempdir().expect("dir");
    let (code, out, err) = cli(dir.path(), &["bench-upload", "--rows", "2000"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("status \"DONE\""), "{out}");
    assert!(out.contains("invariants: ok"), "{out}");
}

#[tokio::test]
async fn cli_bench_upload_says_so_when_its_server_stops_before_listening() {
    let dir = tempfile::tempdir().expect("dir");
    let url = format!(
        "sqlite:{}",
        dir.path().join("missing").join("b.db").display()
    );
    let (code, out, err) = cli(
        dir.path(),
        &["bench-upload", "--rows", "100", "--database-url", &url],
    )
    .await;
    assert_eq!(code, 1, "{out}{err}");
    // The server's own reason, then the benchmark's, at once rather than after a wait.
    assert!(err.contains("check that its folder exists"), "{err}");
    assert!(err.contains("stopped before it listened"), "{err}");
}

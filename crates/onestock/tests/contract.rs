//! The served OpenAPI document against the real server, on SQLite and PostgreSQL, by
//! schemathesis (pinned in `contract/requirements.txt`, installed into a virtual
//! environment under `target/`). It generates requests from `/v1/openapi.json` and
//! checks every answer: no 5xx, a status the document lists, the content type, the
//! headers and the body's schema, and that invalid requests are refused.
//!
//! Bounded: a fixed seed, a fixed number of cases per operation, a time limit per run.
//! Left out: `GET /v1/events`, whose `wait` would hold a request up to 60 s (its answers
//! are checked against the same types by `tests/api.rs`), and the check that every
//! schema-valid request is accepted (the rules refuse many well-formed requests, such as
//! a listing for an ASIN that has no page in the store, and the document cannot say so).

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Backend, TestApp, upc};
use serde_json::json;

/// One schemathesis run; a run here takes about 15 s.
const RUN_TIMEOUT: Duration = Duration::from_secs(300);
/// Cases per operation and phase.
const EXAMPLES: &str = "25";
/// Fewer generated cases than this means the run tested (almost) nothing: each run
/// covers at least 12 operations.
const CASES_PER_RUN_MIN: u64 = 200;
/// The checks of the issue: no 5xx, and every answer as the document says.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
response_headers_conformance,response_schema_conformance,negative_data_rejection";

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/contract")
}

/// The schemathesis command of the pinned environment, made once for both tests.
async fn schemathesis() -> PathBuf {
    static VENV: tokio::sync::OnceCell<PathBuf> = tokio::sync::OnceCell::const_new();
    let venv = VENV
        .get_or_init(|| async {
            common::python::venv("contract-venv", &dir().join("requirements.txt")).await
        })
        .await;
    venv.join("bin/schemathesis")
}

/// A seller with a product in every store and a shared listing, so generated requests
/// meet real data as well as refusals.
async fn seed(app: &TestApp) -> String {
    let seller = app.new_seller("contract-seller").await;
    let asin = seller.product_everywhere(&upc(4242)).await;
    for store in ["US", "CA", "MX"] {
        let currency = match store {
            "US" => "USD",
            "CA" => "CAD",
            _ => "MXN",
        };
        seller
            .list(
                "0",
                store,
                json!({"asin": asin, "price": {"amount": "10.00", "currency": currency},
                       "share": "existing", "quantity": 1000}),
            )
            .await;
    }
    seller.token.clone().unwrap_or_default()
}

async fn check(backend: Backend) {
    // One schemathesis at a time: two at once on 2 cores only slow each other, and a
    // cold virtual environment once failed inside schemathesis while both compiled it.
    static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _turn = ONE_AT_A_TIME.lock().await;
    let st = schemathesis().await;
    let Some(app) = TestApp::spawn(backend, common::default_region()).await else {
        return;
    };
    let seller_token = seed(&app).await;
    let document = format!("{}/v1/openapi.json", app.base);
    let runs = [
        ("seller", seller_token.as_str(), "seller"),
        ("operator", common::OPERATOR_TOKEN, "operator"),
    ];
    let mut failures = Vec::new();
    for (who, token, tag) in runs {
        // Its own folder: schemathesis keeps its example database and reports in the
        // working folder, which must not be the repository.
        let report = std::env::temp_dir().join(format!("onestock-contract-{who}-{backend:?}"));
        std::fs::create_dir_all(&report).expect("report folder");
        let (ok, out) = common::python::run(
            tokio::process::Command::new(&st)
                .arg("run")
                .arg(&document)
                .args(["-H", &format!("Authorization: Bearer {token}")])
                .args(["--include-tag", tag, "--include-tag", "anyone"])
                .args(["--exclude-operation-id", "listEvents"])
                .args(["--checks", CHECKS])
                .args(["-n", EXAMPLES, "--seed", "20261201"])
                .args(["--request-timeout", "10", "--max-failures", "20"])
                // One worker: CPython 3.11.7's ast.parse fails in threads ("AST
                // constructor recursion depth mismatch", CPython gh-106905), which
                // hypothesis calls while describing a strategy.
                .args(["--workers", "1", "--no-color"])
                .current_dir(&report)
                .env("NO_COLOR", "1"),
            RUN_TIMEOUT,
            "schemathesis run",
        )
        .await;
        let summary: Vec<&str> = out
            .lines()
            .filter(|l| l.contains("generated") || l.contains("Operations:"))
            .collect();
        println!("schemathesis ({who}, {backend:?}): {}", summary.join(" | "));
        // A run that selected nothing would pass too: it must have sent real cases.
        let generated: u64 = out
            .lines()
            .find_map(|l| l.trim().split_once(" generated,")?.0.parse().ok())
            .unwrap_or(0);
        assert!(
            generated >= CASES_PER_RUN_MIN,
            "schemathesis ({who}) generated {generated} cases, fewer than {CASES_PER_RUN_MIN}:\n{out}"
        );
        if ok {
            // Kept only when the run failed, for its reports.
            let _ = std::fs::remove_dir_all(&report);
        } else {
            failures.push(format!("--- {who} ---\n{out}"));
        }
    }
    assert!(
        failures.is_empty(),
        "schemathesis found answers that break the document:\n{}",
        failures.join("\n")
    );
    app.assert_healthy().await;
}

/// The reference page is served from the binary and reads the served document.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_page_is_served_and_reads_the_document() {
    let Some(app) = TestApp::spawn(Backend::Sqlite, common::default_region()).await else {
        return;
    };
    let page = app
        .http
        .get(format!("{}/v1/docs/", app.base))
        .send()
        .await
        .expect("GET /v1/docs/");
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("body");
    assert!(html.contains("swagger-ui"), "{html}");
    let init = app
        .http
        .get(format!("{}/v1/docs/swagger-initializer.js", app.base))
        .send()
        .await
        .expect("GET initializer")
        .text()
        .await
        .expect("body");
    assert!(init.contains("\"/v1/openapi.json\""), "{init}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_document_holds_for_generated_requests_on_sqlite() {
    check(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_document_holds_for_generated_requests_on_postgres() {
    check(Backend::Postgres).await;
}

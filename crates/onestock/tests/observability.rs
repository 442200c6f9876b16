//! What an operator sees of a running server (docs/operations.md): `/metrics` by route
//! with latency histograms and the writer's figures, the `x-request-id` of every answer,
//! and the log formats of `serve --log-format`, read from the real binary's standard
//! error.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Backend, OPERATOR_TOKEN, TestApp, default_region};
use reqwest::Method;
use serde_json::Value;

async fn app() -> TestApp {
    TestApp::spawn(Backend::Sqlite, default_region())
        .await
        .expect("a SQLite test server")
}

/// The lines of a Prometheus text that start with `name{` and hold every label given.
fn series<'a>(text: &'a str, name: &str, labels: &[&str]) -> Vec<&'a str> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .filter(|l| labels.iter().all(|label| l.contains(label)))
        .collect()
}

/// The value at the end of a sample line.
fn value(line: &str) -> f64 {
    line.rsplit(' ')
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no value in {line:?}"))
}

#[tokio::test]
async fn metrics_count_requests_by_route_method_and_status_with_latency_histograms() {
    let app = app().await;
    let seller = app.new_seller("observability-metrics").await;
    for _ in 0..3 {
        seller
            .get("/v1/listings/NO-SUCH-SKU")
            .await
            .expect(404, "NOT_FOUND");
    }
    app.anonymous().get("/no/such/path").await;
    let scrape = app.operator().get("/metrics").await;
    assert_eq!(scrape.status, 200, "{}", scrape.text);
    let text = &scrape.text;

    let route = "route=\"/v1/listings/{sku}\"";
    let counted = series(
        text,
        "onestock_http_requests_total",
        &[route, "method=\"GET\"", "status=\"404\""],
    );
    assert_eq!(counted.len(), 1, "{text}");
    assert!(value(counted[0]) >= 3.0, "{}", counted[0]);
    assert!(
        !series(
            text,
            "onestock_http_requests_total",
            &["route=\"unmatched\"", "status=\"404\""]
        )
        .is_empty(),
        "{text}"
    );
    // The seller was created through the API: its POST is counted under its template.
    assert!(
        !series(
            text,
            "onestock_http_requests_total",
            &["route=\"/v1/sellers\"", "method=\"POST\""]
        )
        .is_empty(),
        "{text}"
    );

    let duration = "onestock_http_request_duration_seconds";
    assert!(
        text.contains(&format!("# TYPE {duration} histogram")),
        "{text}"
    );
    let buckets = series(
        text,
        &format!("{duration}_bucket"),
        &[route, "method=\"GET\""],
    );
    for le in ["le=\"0.0005\"", "le=\"0.01\"", "le=\"10\"", "le=\"+Inf\""] {
        assert!(
            buckets.iter().any(|l| l.contains(le)),
            "{le} of {buckets:?}"
        );
    }
    let inf = buckets
        .iter()
        .find(|l| l.contains("le=\"+Inf\""))
        .expect("+Inf bucket");
    assert!(value(inf) >= 3.0, "{inf}");
    let count = series(text, &format!("{duration}_count"), &[route]);
    assert_eq!(count.len(), 1, "{text}");
    assert!(value(count[0]) >= 3.0, "{}", count[0]);
    assert_eq!(series(text, &format!("{duration}_sum"), &[route]).len(), 1);

    // The writer committed at least the seller's creation.
    for histogram in [
        "onestock_writer_batch_commands",
        "onestock_writer_commit_seconds",
    ] {
        assert!(
            text.contains(&format!("# TYPE {histogram} histogram")),
            "{histogram}: {text}"
        );
        let count = text
            .lines()
            .find(|l| l.starts_with(&format!("{histogram}_count ")))
            .unwrap_or_else(|| panic!("{histogram}_count in {text}"));
        assert!(value(count) >= 1.0, "{count}");
    }
    assert!(
        text.contains("onestock_writer_batch_commands_bucket{le=\"4096\"}"),
        "{text}"
    );
    assert!(
        !series(
            text,
            "onestock_upload_queue_depth",
            &["status=\"IN_QUEUE\""]
        )
        .is_empty(),
        "{text}"
    );
    // The figures kept before the route labels are still there.
    for name in [
        "onestock_http_responses_total{class=\"4xx\"}",
        "onestock_open_connections ",
        "onestock_writer_batches_total ",
    ] {
        assert!(text.contains(name), "{name}: {text}");
    }
}

#[tokio::test]
async fn upload_rows_committed_are_counted() {
    let app = app().await;
    let seller = app.new_seller("observability-upload").await;
    let asin = seller.product_everywhere("036000291452").await;
    let header = "sku\tproduct-id\tproduct-id-type\tprice\titem-condition\tquantity\tadd-delete\tinventory-sharing\tfulfillment-channel\tstart-selling-date";
    let file = format!("{header}\nOBS-1\t{asin}\tASIN\t9.99\t\t3\ta\t\tmerchant\t\n");
    let queued = seller
        .raw(
            Method::POST,
            "/v1/uploads?store=US",
            Some(file.into_bytes()),
            "text/plain",
            &[],
        )
        .await;
    assert_eq!(queued.status, 202, "{}", queued.text);
    let upload_id = queued.body["upload_id"]
        .as_str()
        .expect("upload_id")
        .to_owned();
    let u = seller.wait_upload(&upload_id).await;
    assert_eq!(u["status"], "DONE", "{u}");
    let text = app.operator().get("/metrics").await.text;
    let rows = text
        .lines()
        .find(|l| l.starts_with("onestock_upload_rows_committed_total "))
        .unwrap_or_else(|| panic!("onestock_upload_rows_committed_total in {text}"));
    assert!(value(rows) >= 1.0, "{rows}");
}

#[tokio::test]
async fn every_answer_carries_a_request_id_and_a_valid_incoming_one_is_echoed() {
    let app = app().await;
    let seller = app.new_seller("observability-ids").await;
    let anonymous = app.anonymous();
    let answers = [
        anonymous.get("/healthz").await,
        anonymous.get("/no/such/path").await,
        anonymous.get("/metrics").await,
        seller.get("/metrics").await,
        seller.get("/v1/listings/NO-SUCH-SKU").await,
        seller.delete("/v1/stores").await,
        anonymous.get("/").await,
        anonymous.get("/openapi.json").await,
    ];
    let mut seen = std::collections::HashSet::new();
    for answer in &answers {
        let id = answer
            .headers
            .get("x-request-id")
            .unwrap_or_else(|| panic!("no x-request-id on a {}: {}", answer.status, answer.text))
            .to_str()
            .expect("ascii");
        assert_eq!(id.len(), 16, "{id}");
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
        assert!(seen.insert(id.to_owned()), "{id} twice");
    }
    let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    assert!(statuses.contains(&404) && statuses.contains(&401) && statuses.contains(&405));

    let given = "trace-42.abc_DEF";
    for path in ["/healthz", "/no/such/path", "/v1/listings/NO-SUCH-SKU"] {
        let answer = seller
            .send(Method::GET, path, None, &[("x-request-id", given)])
            .await;
        assert_eq!(answer.headers["x-request-id"], given, "{path}");
    }
    let too_long = "a".repeat(65);
    for bad in [too_long.as_str(), "has space", "semi;colon", ""] {
        let answer = seller
            .send(Method::GET, "/healthz", None, &[("x-request-id", bad)])
            .await;
        let id = answer.headers["x-request-id"].to_str().expect("ascii");
        assert_ne!(id, bad);
        assert_eq!(id.len(), 16, "{id}");
    }
}

/// `onestock serve` on a fresh SQLite file and a free port, standard error into `log`.
struct Served {
    child: Child,
    base: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn serve(dir: &Path, log: &Path, extra: &[&str]) -> Served {
    let http = reqwest::Client::new();
    for _attempt in 0..3 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind port 0")
            .local_addr()
            .expect("local addr")
            .port();
        let err = std::fs::File::create(log).expect("log file");
        let mut child = Command::new(env!("CARGO_BIN_EXE_onestock"))
            .arg("serve")
            .arg("--database-url")
            .arg(format!("sqlite:{}", dir.join("o.db").display()))
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--upload-dir")
            .arg(dir.join("uploads"))
            .args(extra)
            .env("ONESTOCK_OPERATOR_TOKEN", OPERATOR_TOKEN)
            .env_remove("ONESTOCK_DATABASE_URL")
            .env_remove("ONESTOCK_LISTEN")
            .env_remove("ONESTOCK_UPLOAD_DIR")
            .env_remove("ONESTOCK_LOG_FORMAT")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(err))
            .spawn()
            .expect("start onestock serve");
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                // The port was taken meanwhile: try another.
                break;
            }
            if let Ok(r) = http.get(format!("{base}/healthz")).send().await
                && r.status() == 200
            {
                return Served { child, base };
            }
            assert!(
                Instant::now() < deadline,
                "onestock serve did not answer: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    panic!(
        "onestock serve exited at every start: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// SIGTERM, then waits for the process to exit (its stop is logged too).
fn stop(mut served: Served) {
    let pid = served.child.id().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = served.child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A few requests: one with a request id of its own, the others with generated ones.
/// Returns every id the answers carried.
async fn some_requests(base: &str, own_id: &str) -> Vec<String> {
    let http = reqwest::Client::new();
    let mut ids = Vec::new();
    let requests = [
        http.get(format!("{base}/healthz"))
            .header("x-request-id", own_id),
        http.get(format!("{base}/no/such/path")),
        http.get(format!("{base}/v1/listings/NO-SUCH-SKU"))
            .bearer_auth(OPERATOR_TOKEN),
        http.get(format!("{base}/metrics"))
            .bearer_auth(OPERATOR_TOKEN),
    ];
    for request in requests {
        let answer = request.send().await.expect("an answer");
        let id = answer.headers()["x-request-id"]
            .to_str()
            .expect("ascii")
            .to_owned();
        let _ = answer.bytes().await;
        ids.push(id);
    }
    assert_eq!(ids[0], own_id);
    ids
}

#[tokio::test]
async fn json_logs_are_one_object_a_line_and_request_lines_carry_the_request_id() {
    let dir = tempfile::tempdir().expect("dir");
    let log = dir.path().join("serve.log");
    let served = serve(dir.path(), &log, &["--log-format", "json"]).await;
    let ids = some_requests(&served.base, "json-log-check-1").await;
    stop(served);

    let text = std::fs::read_to_string(&log).expect("the log");
    let lines: Vec<Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}\n{text}"))
        })
        .collect();
    assert!(lines.len() >= ids.len(), "{text}");
    for line in &lines {
        assert!(line.is_object(), "{line}");
        assert!(
            line["level"].is_string() && line["timestamp"].is_string(),
            "{line}"
        );
    }
    for id in &ids {
        let answered: Vec<&Value> = lines
            .iter()
            .filter(|l| l["span"]["request_id"] == id.as_str())
            .filter(|l| l["fields"]["message"] == "answered")
            .collect();
        assert_eq!(answered.len(), 1, "one answered line for {id}:\n{text}");
        let line = answered[0];
        assert!(line["fields"]["status"].is_u64(), "{line}");
        assert!(line["fields"]["latency_ms"].is_number(), "{line}");
        assert!(line["span"]["method"] == "GET", "{line}");
        assert!(line["span"]["route"].is_string(), "{line}");
    }
    let unmatched = lines
        .iter()
        .find(|l| l["span"]["request_id"] == ids[1].as_str())
        .expect("the unmatched request's line");
    assert_eq!(unmatched["span"]["route"], "unmatched", "{unmatched}");
    assert_eq!(unmatched["fields"]["status"], 404, "{unmatched}");
    let listing = lines
        .iter()
        .find(|l| l["span"]["request_id"] == ids[2].as_str())
        .expect("the listing request's line");
    assert_eq!(listing["span"]["route"], "/v1/listings/{sku}", "{listing}");
}

#[tokio::test]
async fn text_logs_written_to_a_file_have_no_colour_codes_and_carry_the_request_id() {
    let dir = tempfile::tempdir().expect("dir");
    let log = dir.path().join("serve.log");
    let served = serve(dir.path(), &log, &[]).await;
    let ids = some_requests(&served.base, "text-log-check-1").await;
    stop(served);

    let text = std::fs::read_to_string(&log).expect("the log");
    assert!(!text.contains("\u{1b}["), "ANSI escape in {text:?}");
    for id in &ids {
        assert!(
            text.lines()
                .any(|l| l.contains(&format!("request_id={id}")) && l.contains("answered")),
            "no answered line for {id}:\n{text}"
        );
    }
}

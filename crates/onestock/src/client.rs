//! The command line's HTTP client. Every subcommand that acts on data goes through a
//! running server's API (`--url`, `--token`), never a database file: `onestock upload`
//! sends a file, follows its processing with a progress bar and saves the report beside
//! the file; `seller`, `uploads`, `listings` and `ledger` are one or a few API calls each.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use indicatif::{ProgressBar, ProgressStyle};
use reqwest::{Method, Url};
use serde_json::{Value, json};

/// Data rows in a text file (lines that are not blank, not preamble, minus the header):
/// only for the progress bar's length, so an estimate is fine.
fn estimate_rows(bytes: &[u8]) -> Option<u64> {
    if bytes.starts_with(b"PK\x03\x04") {
        return None;
    }
    let rows = bytes
        .split(|b| *b == b'\n')
        .filter(|l| {
            let t = l.trim_ascii();
            !t.is_empty() && !t.starts_with(b"#") && !t.starts_with(b"TemplateType=")
        })
        .count() as u64;
    Some(rows.saturating_sub(1))
}

fn error_text(body: &Value) -> String {
    match (
        body["error"]["code"].as_str(),
        body["error"]["message"].as_str(),
    ) {
        (Some(c), Some(m)) => format!("{c}: {m}"),
        _ => body.to_string(),
    }
}

/// How an upload ended, for the exit status of `onestock upload`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadOutcome {
    pub upload_id: String,
    pub status: String,
    pub records_failed: u64,
    pub report_path: PathBuf,
}

impl UploadOutcome {
    /// Every row applied: `DONE` without a failed row.
    pub fn succeeded(&self) -> bool {
        self.status == "DONE" && self.records_failed == 0
    }
}

/// Where the report of `file`'s upload `upload_id` is saved: beside the file, named after
/// the file and the upload, so no upload's report replaces another's
/// (`inventory.csv` → `inventory.csv.U123.report.txt`).
pub fn report_path(file: &Path, upload_id: &str) -> PathBuf {
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "upload".to_owned());
    let safe: String = upload_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    file.with_file_name(format!("{name}.{safe}.report.txt"))
}

pub async fn upload(
    url: &str,
    token: &str,
    store: &str,
    file: &Path,
    poll: Duration,
) -> anyhow::Result<UploadOutcome> {
    let bytes = tokio::fs::read(file)
        .await
        .with_context(|| format!("read {}", file.display()))?;
    let total = estimate_rows(&bytes);
    let client = reqwest::Client::new();
    let base = url.trim_end_matches('/');
    let resp = client
        .post(format!("{base}/v1/uploads?store={store}"))
        .bearer_auth(token)
        .body(bytes)
        .send()
        .await
        .with_context(|| format!("send the file to {base}"))?;
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    if status.as_u16() != 202 {
        bail!(
            "the server refused the file ({status}): {}",
            error_text(&body)
        );
    }
    let upload_id = body["upload_id"]
        .as_str()
        .ok_or_else(|| anyhow!("the server's answer has no upload_id: {body}"))?
        .to_owned();
    let bar = match total {
        Some(n) => ProgressBar::new(n),
        None => ProgressBar::new_spinner(),
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} rows {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(upload_id.clone());
    let final_state = loop {
        let resp = client
            .get(format!("{base}/v1/uploads/{upload_id}"))
            .bearer_auth(token)
            .send()
            .await
            .context("ask the upload's status")?;
        let state: Value = resp.json().await.context("read the upload's status")?;
        bar.set_position(state["records_processed"].as_u64().unwrap_or(0));
        match state["status"].as_str() {
            Some("DONE") | Some("FATAL") => break state,
            Some(_) => tokio::time::sleep(poll).await,
            None => bail!("unexpected answer: {}", error_text(&state)),
        }
    };
    bar.finish_and_clear();
    let report = client
        .get(format!("{base}/v1/uploads/{upload_id}/report"))
        .bearer_auth(token)
        .send()
        .await
        .context("fetch the report")?
        .text()
        .await?;
    let report_path = report_path(file, &upload_id);
    tokio::fs::write(&report_path, &report)
        .await
        .with_context(|| format!("write {}", report_path.display()))?;
    println!(
        "upload {upload_id}: {} — {} processed, {} successful, {} failed",
        final_state["status"].as_str().unwrap_or("?"),
        final_state["records_processed"],
        final_state["records_successful"],
        final_state["records_failed"]
    );
    if let Some(e) = final_state["error"].as_str() {
        println!("error: {e}");
    }
    println!("report saved to {}", report_path.display());
    Ok(UploadOutcome {
        upload_id,
        status: final_state["status"].as_str().unwrap_or("?").to_owned(),
        records_failed: final_state["records_failed"].as_u64().unwrap_or(0),
        report_path,
    })
}

/// A running server and the token to call it with.
pub struct Remote {
    base: Url,
    token: String,
    http: reqwest::Client,
}

/// A refusal by the server, with its HTTP status and the SPEC error's code and message.
fn refusal(status: reqwest::StatusCode, body: &Value, text: &str) -> anyhow::Error {
    if body["error"].is_object() {
        anyhow!("the server answered {status}: {}", error_text(body))
    } else {
        anyhow!("the server answered {status}: {}", text.trim())
    }
}

impl Remote {
    pub fn new(url: &str, token: &str) -> anyhow::Result<Remote> {
        let mut base = Url::parse(url).with_context(|| format!("--url {url:?} is not a URL"))?;
        if base.cannot_be_a_base() {
            bail!("--url {url:?} is not an http:// address");
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        if token.trim().is_empty() {
            bail!("no token: give --token or set ONESTOCK_TOKEN");
        }
        Ok(Remote {
            base,
            token: token.trim().to_owned(),
            http: reqwest::Client::new(),
        })
    }

    /// The address of `segments` (each percent-encoded as one path segment) with `query`.
    pub fn address(&self, segments: &[&str], query: &[(&str, &str)]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty();
            path.extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    async fn call(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, &str)],
        body: Option<Value>,
    ) -> anyhow::Result<(reqwest::StatusCode, String)> {
        let url = self.address(segments, query);
        let mut req = self
            .http
            .request(method.clone(), url.clone())
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.with_context(|| {
            format!(
                "reach the server at {} (is `onestock serve` running there?)",
                self.base
            )
        })?;
        let status = resp.status();
        let text = resp.text().await.context("read the server's answer")?;
        if !status.is_success() {
            let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            return Err(refusal(status, &body, &text));
        }
        Ok((status, text))
    }

    /// A JSON answer of a successful call; an error answer becomes the error.
    pub async fn json(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, &str)],
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let (_, text) = self.call(method, segments, query, body).await?;
        serde_json::from_str(&text).context("the server's answer is not JSON")
    }

    /// A text answer (the processing report).
    pub async fn text(&self, segments: &[&str]) -> anyhow::Result<String> {
        Ok(self.call(Method::GET, segments, &[], None).await?.1)
    }

    /// Every item of a paged list (`items`, `next_cursor`).
    pub async fn all_pages(
        &self,
        segments: &[&str],
        query: &[(&str, &str)],
    ) -> anyhow::Result<Vec<Value>> {
        self.all_pages_of("items", segments, query).await
    }

    /// Every item of a paged list whose items come under `key` (`sellers`, say).
    pub async fn all_pages_of(
        &self,
        key: &str,
        segments: &[&str],
        query: &[(&str, &str)],
    ) -> anyhow::Result<Vec<Value>> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut q: Vec<(&str, &str)> = query.to_vec();
            q.push(("limit", "1000"));
            if let Some(c) = cursor.as_deref() {
                q.push(("cursor", c));
            }
            let page = self.json(Method::GET, segments, &q, None).await?;
            if let Some(list) = page[key].as_array() {
                items.extend(list.iter().cloned());
            }
            match page["next_cursor"].as_str() {
                Some(c) if !c.is_empty() && cursor.as_deref() != Some(c) => {
                    cursor = Some(c.to_owned())
                }
                _ => break,
            }
        }
        Ok(items)
    }
}

/// A JSON value as a table cell: strings bare, null empty, the rest as JSON.
fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Rows of tab-separated text with a header: readable, and `cut`/spreadsheets take it.
fn table(out: &mut impl Write, header: &[&str], rows: &[Vec<String>]) -> anyhow::Result<()> {
    writeln!(out, "{}", header.join("\t"))?;
    for row in rows {
        writeln!(out, "{}", row.join("\t"))?;
    }
    Ok(())
}

/// `onestock seller create NAME`: `POST /v1/sellers` with the operator's token.
pub async fn seller_create(remote: &Remote, name: &str) -> anyhow::Result<(String, String)> {
    let body = remote
        .json(
            Method::POST,
            &["v1", "sellers"],
            &[],
            Some(json!({ "name": name })),
        )
        .await?;
    let id = cell(&body["seller_id"]);
    let token = body["token"]
        .as_str()
        .ok_or_else(|| anyhow!("the server's answer has no token: {body}"))?
        .to_owned();
    Ok((id, token))
}

/// `onestock seller list`: `GET /v1/sellers` with the operator's token, every page,
/// in id order.
pub async fn seller_list(remote: &Remote, out: &mut impl Write) -> anyhow::Result<()> {
    let sellers = remote
        .all_pages_of("sellers", &["v1", "sellers"], &[])
        .await?;
    let rows: Vec<Vec<String>> = sellers
        .iter()
        .map(|s| {
            ["seller_id", "name", "created_at"]
                .iter()
                .map(|k| cell(&s[*k]))
                .collect()
        })
        .collect();
    table(out, &["seller_id", "name", "created"], &rows)
}

/// `onestock uploads list`: the seller's uploads, newest first.
pub async fn uploads_list(
    remote: &Remote,
    store: Option<&str>,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let query: Vec<(&str, &str)> = store.map(|s| ("store", s)).into_iter().collect();
    let items = remote.all_pages(&["v1", "uploads"], &query).await?;
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|u| {
            [
                "upload_id",
                "store",
                "status",
                "records_processed",
                "records_successful",
                "records_failed",
                "error",
            ]
            .iter()
            .map(|k| cell(&u[*k]))
            .collect()
        })
        .collect();
    table(
        out,
        &[
            "upload_id",
            "store",
            "status",
            "processed",
            "successful",
            "failed",
            "error",
        ],
        &rows,
    )
}

/// `onestock uploads report ID`: the processing report as the server keeps it.
pub async fn uploads_report(remote: &Remote, upload_id: &str) -> anyhow::Result<String> {
    remote.text(&["v1", "uploads", upload_id, "report"]).await
}

/// `onestock listings list`: the seller's store listings, in SKU order.
pub async fn listings_list(
    remote: &Remote,
    store: Option<&str>,
    status: Option<&str>,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let mut query: Vec<(&str, &str)> = Vec::new();
    if let Some(s) = store {
        query.push(("store", s));
    }
    if let Some(s) = status {
        query.push(("status", s));
    }
    let items = remote.all_pages(&["v1", "listings"], &query).await?;
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|l| {
            vec![
                cell(&l["sku"]),
                cell(&l["store"]),
                cell(&l["asin"]),
                cell(&l["share"]),
                cell(&l["quantity"]),
                cell(&l["condition"]),
                format!(
                    "{} {}",
                    cell(&l["price"]["amount"]),
                    cell(&l["price"]["currency"])
                ),
                cell(&l["fulfillment"]),
                cell(&l["status"]),
                l["reasons"]
                    .as_array()
                    .map(|r| r.iter().map(cell).collect::<Vec<_>>().join(","))
                    .unwrap_or_default(),
                cell(
                    &l["pool_stores"]
                        .as_array()
                        .map(|r| json!(r.iter().map(cell).collect::<Vec<_>>().join(",")))
                        .unwrap_or(Value::Null),
                ),
            ]
        })
        .collect();
    table(
        out,
        &[
            "sku",
            "store",
            "asin",
            "share",
            "quantity",
            "condition",
            "price",
            "fulfillment",
            "status",
            "reasons",
            "pool_stores",
        ],
        &rows,
    )
}

/// The columns of an exported inventory-loader file: the upload format's own, in the
/// template's order, so the export uploads back unchanged.
pub const EXPORT_COLUMNS: [&str; 10] = crate::upload::parse::KNOWN_COLUMNS;

/// A cell of a tab-separated file: tabs and line ends cannot be in one (SKUs are
/// printable), but a value that holds one is refused rather than written broken.
fn tsv_cell(v: &str) -> anyhow::Result<&str> {
    if v.contains(['\t', '\n', '\r']) {
        bail!("{v:?} holds a tab or a line end and cannot be written to a tab-separated file");
    }
    Ok(v)
}

/// `onestock listings export --store S`: the store's listings as an inventory-loader
/// file (tab-separated UTF-8, one row per listing) that uploads back to the same store
/// without changing anything. Closed listings are exported too (the file format has no
/// column for closing; uploading leaves them closed).
pub async fn listings_export(
    remote: &Remote,
    store: &str,
    out: &mut impl Write,
) -> anyhow::Result<usize> {
    let items = remote
        .all_pages(&["v1", "listings"], &[("store", store)])
        .await?;
    writeln!(out, "{}", EXPORT_COLUMNS.join("\t"))?;
    for l in &items {
        let row = [
            cell(&l["sku"]),
            cell(&l["asin"]),
            "ASIN".to_owned(),
            cell(&l["price"]["amount"]),
            cell(&l["condition"]),
            cell(&l["quantity"]),
            "a".to_owned(),
            cell(&l["share"]),
            cell(&l["fulfillment"]),
            cell(&l["start_selling_at"]),
        ];
        let cells: Vec<&str> = row
            .iter()
            .map(|c| tsv_cell(c))
            .collect::<anyhow::Result<_>>()?;
        writeln!(out, "{}", cells.join("\t"))?;
    }
    Ok(items.len())
}

/// `onestock ledger SKU`: every change of the SKU's pools' quantities.
pub async fn ledger(remote: &Remote, sku: &str, out: &mut impl Write) -> anyhow::Result<()> {
    let body = remote
        .json(Method::GET, &["v1", "listings", sku, "ledger"], &[], None)
        .await?;
    let rows: Vec<Vec<String>> = body["entries"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .map(|e| {
                    [
                        "seq",
                        "at",
                        "pool_id",
                        "store",
                        "reason",
                        "delta",
                        "quantity_after",
                        "reference",
                    ]
                    .iter()
                    .map(|k| cell(&e[*k]))
                    .collect()
                })
                .collect()
        })
        .unwrap_or_default();
    table(
        out,
        &[
            "seq",
            "at",
            "pool_id",
            "store",
            "reason",
            "delta",
            "quantity_after",
            "reference",
        ],
        &rows,
    )
}

/// `onestock template FILE.xlsx`: the template as a workbook whose sheet `Template`
/// holds the column names (row 1) and whose sheet `Instructions` explains them.
pub fn template_xlsx(path: &Path) -> anyhow::Result<()> {
    use rust_xlsxwriter::{Format, Workbook};
    let text = crate::upload::report::template();
    let header: Vec<&str> = text
        .lines()
        .last()
        .map(|l| l.split('\t').collect())
        .unwrap_or_default();
    let mut book = Workbook::new();
    let bold = Format::new().set_bold();
    let sheet = book.add_worksheet();
    sheet.set_name("Template")?;
    for (col, name) in header.iter().enumerate() {
        let col = u16::try_from(col).context("too many columns")?;
        sheet.write_string_with_format(0, col, *name, &bold)?;
        sheet.set_column_width(col, 18)?;
    }
    let notes = book.add_worksheet();
    notes.set_name("Instructions")?;
    let lines = text
        .lines()
        .filter(|l| l.starts_with('#'))
        .map(|l| l.trim_start_matches('#').trim());
    for (row, line) in lines.enumerate() {
        let row = u32::try_from(row).context("too many lines")?;
        notes.write_string(row, 0, line)?;
    }
    notes.set_column_width(0, 120)?;
    book.save(path)
        .with_context(|| format!("write {}", path.display()))?;
    Ok(())
}

//! Add Products via Upload: a file for the chosen store ("Upload file", "Upload"), the
//! progress of the upload being applied, its counts and processing report, the
//! seller's past uploads, and the template.
//!
//! The file goes to the same `Uploads::receive` as `POST /v1/uploads`; its rows are
//! applied by the same upload worker and rules.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use onestock_core::error::{DomainError, ErrorCode};
use onestock_core::model::{ReportKind, ReportLine, Upload, UploadStatus};
use onestock_core::types::SellerId;
use serde::Deserialize;
use serde_json::json;

use super::Pages;
use super::error::PageError;
use super::forms::{PageQuery, enc};
use super::layout::{self, Chrome, Section, StoreChoice};
use super::session::Session;
use super::words;
use crate::upload::report;

/// Largest file the page takes. A browser's form sends the file inside a
/// `multipart/form-data` body, which the page reads into memory to take the file out;
/// larger files go through `POST /v1/uploads` (or `onestock upload`), which streams
/// them to disk.
pub const PAGE_UPLOAD_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Uploads remembered per seller for the "past uploads" table.
const UPLOADS_REMEMBERED_MAX: usize = 50;
/// Sellers whose uploads are remembered; past that, one is forgotten to make room.
const SELLERS_REMEMBERED_MAX: usize = 10_000;
/// Report lines shown in the page's table; the download has them all.
const REPORT_ROWS_MAX: usize = 500;
/// Past uploads listed on the page (the API pages through all of them).
const PAST_UPLOADS_MAX: usize = 50;

/// The uploads each seller sent through the pages since the server started (the
/// storage has no "uploads of a seller" read yet): ids, newest last, with the number
/// of rows the file seemed to hold, for the progress bar.
#[derive(Default)]
pub struct UploadLog {
    map: Mutex<HashMap<SellerId, VecDeque<Remembered>>>,
}

/// An upload id and the rows its file seemed to hold.
type Remembered = (String, Option<i64>);

impl UploadLog {
    fn add(&self, seller: &SellerId, id: String, rows: Option<i64>) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if !map.contains_key(seller)
            && map.len() >= SELLERS_REMEMBERED_MAX
            && let Some(k) = map.keys().next().cloned()
        {
            map.remove(&k);
        }
        let list = map.entry(seller.clone()).or_default();
        list.push_back((id, rows));
        while list.len() > UPLOADS_REMEMBERED_MAX {
            list.pop_front();
        }
    }

    fn rows(&self, seller: &SellerId, id: &str) -> Option<i64> {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.get(seller)?
            .iter()
            .find(|(i, _)| i == id)
            .and_then(|(_, r)| *r)
    }
}

/// About how many data rows a text file holds (for the progress bar only): lines that
/// are not empty, not a preamble, not a header.
fn estimate_rows(file: &[u8]) -> Option<i64> {
    if file.starts_with(b"PK") {
        return None; // a workbook: unknown until read
    }
    let text = String::from_utf8_lossy(file);
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let mut templated = false;
    let mut count: i64 = 0;
    let mut header_seen = false;
    for l in lines.by_ref() {
        if l.starts_with('#') {
            continue;
        }
        if l.starts_with("TemplateType=") {
            templated = true;
            continue;
        }
        if !header_seen {
            header_seen = true;
            continue;
        }
        count += 1;
    }
    if templated && count > 0 {
        // The label row and the attribute row.
        count -= 1;
    }
    Some(count.max(0))
}

#[derive(Deserialize, Default)]
pub struct UploadQuery {
    store: Option<String>,
    id: Option<String>,
}

fn finished(u: &Upload) -> bool {
    matches!(u.status, UploadStatus::Done | UploadStatus::Fatal)
}

/// `GET /upload-products?store=&id=`
pub async fn page(
    State(pages): State<Pages>,
    session: Session,
    PageQuery(q): PageQuery<UploadQuery>,
) -> Result<Response, PageError> {
    let region = pages.app.service.region();
    let store = layout::choose_store(&pages, &session, q.store.as_deref())
        .one(region)
        .ok_or_else(|| PageError::bad_request("This region has no store."))?
        .clone();
    let shown_id = q.id.clone().filter(|s| !s.trim().is_empty());
    let seller = session.seller.clone();
    let wanted = shown_id.clone();
    let (uploads, shown, lines) = pages
        .app
        .service
        .read(move |tx, _| {
            let uploads = tx.uploads_of_seller(&seller, None, None, PAST_UPLOADS_MAX)?;
            let shown = match wanted {
                Some(w) => tx.upload(&w)?.filter(|u| u.seller_id == seller),
                None => None,
            };
            // One line more than shown, to know whether the download has more.
            let lines: Vec<ReportLine> = match &shown {
                Some(u) if finished(u) => tx
                    .report_page(&u.upload_id, None, REPORT_ROWS_MAX + 1)?
                    .into_iter()
                    .map(|(_, l)| l)
                    .collect(),
                _ => Vec::new(),
            };
            Ok((uploads, shown, lines))
        })
        .await?;
    if shown_id.is_some() && shown.is_none() {
        return Err(DomainError::not_found("You have no such upload.").into());
    }
    let body = html! {
        h1 { "Add Products via Upload" }
        div.card {
            p { "One file per store: this one is for " strong { (store.name) " (" (store.code) ")" } ". Tab-separated or comma-separated text, or an .xlsx workbook, in the inventory loader's columns. "
                a href="/upload-products/template" { "Download template" } }
            form method="post" action="/upload-products" enctype="multipart/form-data" {
                (layout::csrf(&session))
                input type="hidden" name="store" value=(store.code.as_str());
                div.field {
                    label for="file" { "Upload file" }
                    input #file type="file" name="file" required accept=".txt,.tsv,.csv,.xlsx,text/plain,text/csv,text/tab-separated-values";
                    p.hint { "At most " (PAGE_UPLOAD_BYTES_MAX / (1024 * 1024)) " MiB here; larger files go through the API." }
                }
                button.primary type="submit" { "Upload" }
            }
        }
        @if let Some(u) = &shown {
            div.card #upload {
                h2 { "Upload " (u.upload_id) }
                p { "Store " (u.store.as_str()) " · Status: " strong #upload-status { (words::upload_status(u.status)) } }
                @if !finished(u) {
                    div #upload-progress data-upload=(u.upload_id) {
                        @let total = pages.upload_log.rows(&session.seller, &u.upload_id);
                        @match total {
                            Some(t) if t > 0 => progress max=(t) value=(u.records_processed.min(t)) {}
                            _ => progress {}
                        }
                        p { "Records processed: " span data-processed { (u.records_processed) } }
                        p.muted { "This page follows the upload; without scripts, " a href={ "/upload-products?id=" (enc(&u.upload_id)) } { "reload it" } "." }
                    }
                }
                div.counts {
                    div { "Records processed" strong #records-processed { (u.records_processed) } }
                    div { "Records successful" strong #records-successful { (u.records_successful) } }
                    div { "Records failed" strong #records-failed { (u.records_failed) } }
                }
                @if let Some(e) = u.error.as_ref().filter(|_| u.status == UploadStatus::Fatal) {
                    div.notice.error role="alert" { strong.code { "FATAL" } " " (e) }
                }
                @if finished(u) {
                    h3 { "Processing report" }
                    @if lines.is_empty() {
                        p { "Every record was applied without an error or warning." }
                    } @else {
                        table.report {
                            thead { tr { th { "Record" } th { "SKU" } th { "Error code" } th { "Type" } th { "Message" } } }
                            tbody {
                                @for l in lines.iter().take(REPORT_ROWS_MAX) {
                                    tr {
                                        td { (l.record) } td { (l.sku) } td { span.code { (l.code) } }
                                        td { (match l.kind { ReportKind::Error => "Error", ReportKind::Warning => "Warning" }) }
                                        td { (l.message) }
                                    }
                                }
                            }
                        }
                        @if lines.len() > REPORT_ROWS_MAX {
                            p.muted { "The first " (REPORT_ROWS_MAX) " lines; the download has them all." }
                        }
                    }
                    p { a.button href={ "/upload-products/report?id=" (enc(&u.upload_id)) } { "Download processing report" } }
                }
            }
        }
        h2 { "Past uploads" }
        @if uploads.is_empty() {
            p.muted { "No upload yet." }
        } @else {
            table.uploads {
                thead { tr { th { "Upload" } th { "Store" } th { "Sent" } th { "Status" } th.num { "Records processed" } th.num { "Records successful" } th.num { "Records failed" } } }
                tbody {
                    @for u in &uploads {
                        tr {
                            td { a href={ "/upload-products?id=" (enc(&u.upload_id)) } { (u.upload_id) } }
                            td { (u.store.as_str()) }
                            td { (words::time(u.created_at)) }
                            td { (words::upload_status(u.status)) }
                            td.num { (u.records_processed) }
                            td.num { (u.records_successful) }
                            td.num { (u.records_failed) }
                        }
                    }
                }
            }
            p.muted { "Uploads sent through these pages since the server started, and any still being applied." }
        }
    };
    let chrome = Chrome {
        pages: &pages,
        session: &session,
        section: Section::Upload,
        store: StoreChoice::One(store.code.clone()),
        path: "/upload-products",
        all_stores: false,
        flash: pages.sessions.take_flash(&session),
    };
    Ok(layout::page("Add Products via Upload", chrome, body).into_response())
}

/// Where `needle` first occurs in `hay` at or after `from` (Horspool: a file of
/// dashes costs no more than any other).
fn find_bytes(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    let n = needle.len();
    let last = n.checked_sub(1)?;
    let mut skip = [n; 256];
    for (i, b) in needle[..last].iter().enumerate() {
        skip[usize::from(*b)] = last - i;
    }
    let mut at = from;
    while at + n <= hay.len() {
        if hay[at..at + n] == *needle {
            return Some(at);
        }
        at += skip[usize::from(hay[at + last])];
    }
    None
}

/// One part of a `multipart/form-data` body: its field name, file name, and where its
/// content lies in the body.
struct Part {
    name: String,
    filename: Option<String>,
    content: std::ops::Range<usize>,
}

/// The parts of a `multipart/form-data` body.
fn multipart_parts(body: &[u8], boundary: &str) -> Vec<Part> {
    let delimiter = format!("--{boundary}");
    let d = delimiter.as_bytes();
    let mut parts = Vec::new();
    let Some(mut pos) = find_bytes(body, d, 0) else {
        return parts;
    };
    loop {
        let start = pos + d.len();
        if body.get(start..start + 2) == Some(b"--") {
            break;
        }
        let Some(head_end) = find_bytes(body, b"\r\n\r\n", start) else {
            break;
        };
        let head = String::from_utf8_lossy(&body[start..head_end]).to_string();
        let content_start = head_end + 4;
        let Some(next) = find_bytes(body, d, content_start) else {
            break;
        };
        // The content ends with the CRLF before the next delimiter.
        let content_end = next.saturating_sub(2).max(content_start);
        let mut name = String::new();
        let mut filename = None;
        for line in head.lines() {
            if line
                .to_ascii_lowercase()
                .starts_with("content-disposition:")
            {
                for item in line.split(';').skip(1) {
                    if let Some((k, v)) = item.trim().split_once('=') {
                        let v = v.trim().trim_matches('"').to_owned();
                        match k.trim() {
                            "name" => name = v,
                            "filename" => filename = Some(v),
                            _ => {}
                        }
                    }
                }
            }
        }
        parts.push(Part {
            name,
            filename,
            content: content_start..content_end,
        });
        pos = next;
    }
    parts
}

/// `POST /upload-products` (multipart): the file for the store, then its progress.
pub async fn create(
    State(pages): State<Pages>,
    session: Session,
    request: Request,
) -> Result<Response, PageError> {
    let content_type = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let boundary = content_type
        .split(';')
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| k.eq_ignore_ascii_case("boundary"))
        .map(|(_, v)| v.trim_matches('"').to_owned())
        .filter(|_| {
            content_type
                .to_ascii_lowercase()
                .starts_with("multipart/form-data")
        })
        .ok_or_else(|| {
            PageError::bad_request("Send the file with the page's form (multipart/form-data).")
        })?;
    let bytes: Bytes = axum::body::to_bytes(request.into_body(), PAGE_UPLOAD_BYTES_MAX)
        .await
        .map_err(|_| {
            PageError::from(DomainError::new(
                ErrorCode::PayloadTooLarge,
                format!(
                    "A file uploaded through this page is at most {} MiB; send larger files through the API (POST /v1/uploads) or onestock upload.",
                    PAGE_UPLOAD_BYTES_MAX / (1024 * 1024)
                ),
            ))
        })?;
    let (bytes, parts) = {
        let b = bytes.clone();
        let parts = tokio::task::spawn_blocking(move || multipart_parts(&b, &boundary))
            .await
            .map_err(|e| PageError::from(crate::service::AppError::Internal(e.to_string())))?;
        (bytes, parts)
    };
    let field = |n: &str| {
        parts
            .iter()
            .find(|p| p.name == n)
            .map(|p| String::from_utf8_lossy(&bytes[p.content.clone()]).to_string())
    };
    session.check_csrf(field("csrf").as_deref().unwrap_or(""))?;
    let region = pages.app.service.region();
    let store = region
        .store(field("store").as_deref().unwrap_or(""))
        .map_err(PageError::from)?
        .code
        .clone();
    let Some(part) = parts
        .iter()
        .find(|p| p.name == "file" && p.filename.is_some())
    else {
        return Err(PageError::bad_request("Choose a file to upload."));
    };
    let file = bytes.slice(part.content.clone());
    if file.is_empty() {
        return Err(PageError::bad_request(
            "The file is empty: choose the file to upload.",
        ));
    }
    let rows = estimate_rows(&file);
    let upload = pages
        .app
        .uploads
        .receive(session.seller.clone(), store.clone(), Body::from(file))
        .await?;
    pages
        .upload_log
        .add(&session.seller, upload.upload_id.clone(), rows);
    Ok(Redirect::to(&format!(
        "/upload-products?store={}&id={}",
        store.as_str(),
        enc(&upload.upload_id)
    ))
    .into_response())
}

#[derive(Deserialize)]
pub struct IdQuery {
    #[serde(default)]
    id: String,
}

/// `GET /upload-products/status?id=`: the counts, for the progress bar's script.
pub async fn status(
    State(pages): State<Pages>,
    session: Session,
    PageQuery(q): PageQuery<IdQuery>,
) -> Result<Response, PageError> {
    let u = pages.app.uploads.get(&session.seller, q.id.trim()).await?;
    let total = pages
        .upload_log
        .rows(&session.seller, &u.upload_id)
        .unwrap_or(0);
    Ok(Json(json!({
        "status": words::upload_status(u.status),
        "records_processed": u.records_processed,
        "records_successful": u.records_successful,
        "records_failed": u.records_failed,
        "records_total": total,
        "finished": finished(&u),
    }))
    .into_response())
}

/// `GET /upload-products/report?id=`: "Download processing report".
pub async fn report_download(
    State(pages): State<Pages>,
    session: Session,
    PageQuery(q): PageQuery<IdQuery>,
) -> Result<Response, PageError> {
    let id = q.id.trim().to_owned();
    // Streamed a page at a time, as the API's report is: a report of millions of lines
    // never sits in memory.
    let text = pages.app.uploads.report_body(&session.seller, &id).await?;
    let safe: String = id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    Ok((
        StatusCode::OK,
        [
            (
                CONTENT_TYPE,
                "text/tab-separated-values; charset=utf-8".to_owned(),
            ),
            (
                CONTENT_DISPOSITION,
                format!("attachment; filename=\"{safe}-processing-report.txt\""),
            ),
        ],
        text,
    )
        .into_response())
}

/// `GET /upload-products/template`: "Download template".
pub async fn template(_session: Session) -> Response {
    (
        [
            (CONTENT_TYPE, "text/tab-separated-values; charset=utf-8"),
            (
                CONTENT_DISPOSITION,
                "attachment; filename=\"inventory-loader-template.txt\"",
            ),
        ],
        report::template(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_of_a_form() {
        let body = b"--XY\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\nabc\r\n--XY\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nsku\tprice\r\nA\t1\r\n\r\n--XY--\r\n";
        let parts = multipart_parts(body, "XY");
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].name, "csrf");
        assert_eq!(&body[parts[0].content.clone()], b"abc");
        assert_eq!(parts[1].filename.as_deref(), Some("a.txt"));
        assert_eq!(&body[parts[1].content.clone()], b"sku\tprice\r\nA\t1\r\n");
        assert!(multipart_parts(b"garbage", "XY").is_empty());
        assert_eq!(find_bytes(b"----a--XY", b"--XY", 0), Some(5));
        assert_eq!(find_bytes(b"abc", b"", 0), None);
        assert_eq!(find_bytes(b"ab", b"abc", 0), None);
    }

    #[test]
    fn row_estimates() {
        assert_eq!(estimate_rows(b"sku\tprice\nA\t1\nB\t2\n"), Some(2));
        assert_eq!(
            estimate_rows(b"TemplateType=x\nSKU\tPrice\nsku\tprice\nA\t1\n"),
            Some(1)
        );
        assert_eq!(estimate_rows(b"PK\x03\x04"), None);
    }
}

//! Feeds 2021-06-30 for the flat files of SPEC 5: a feed is an upload underneath
//! (`crate::upload::Uploads`: same worker, same order, same rules), its id the upload's
//! id, and its result document the upload's processing report.
//!
//! Feed documents wait in this process's memory between their upload and `createFeed`
//! (bounded by [`FEED_DOCUMENT_BYTES_MAX`] each and [`FEED_BYTES_HELD_MAX`] in all);
//! upload and download URLs are single-use capabilities that live
//! [`DOCUMENT_URL_SECONDS`], kept as SHA-256 digests. A restart forgets documents not yet
//! made into feeds, and the feed type of earlier feeds (then read as the inventory
//! loader's).

use std::collections::HashMap;
use std::sync::Mutex;

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use onestock_core::model::{Upload, UploadStatus};
use onestock_core::rules::Command;
use onestock_core::types::SellerId;
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

use super::{
    MARKETPLACE_PARAMS, RawQuery, SpError, SpResult, SpSeller, SpState, body_bytes, json_body,
    stores_of, time,
};
use crate::service::{new_token, token_digest};

/// How long an upload or download URL works (the marketplace's five minutes).
pub const DOCUMENT_URL_SECONDS: i64 = 300;
/// Largest feed document: feeds are for the day-to-day files of seller tools; bigger
/// files go to `POST /v1/uploads` (512 MiB), which streams them to disk.
pub const FEED_DOCUMENT_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Feed documents held in memory at once, in bytes, across every seller.
pub const FEED_BYTES_HELD_MAX: usize = 512 * 1024 * 1024;
/// Documents and download URLs remembered at once; expired ones are dropped first.
pub const DOCUMENTS_MAX: usize = 10_000;
/// `getFeeds` pages: the marketplace's default and largest `pageSize`.
const PAGE_SIZE_DEFAULT: usize = 10;
const PAGE_SIZE_MAX: usize = 100;
/// What a cancelled feed's upload records as its end.
const CANCELLED: &str = "Cancelled by cancelFeed before processing began.";

const INVLOADER: &str = "POST_FLAT_FILE_INVLOADER_DATA";
const PRICE_QUANTITY: &str = "POST_FLAT_FILE_PRICEANDQUANTITYONLY_UPDATE_DATA";
const JSON_LISTINGS: &str = "JSON_LISTINGS_FEED";
const FEED_TYPES: &[&str] = &[INVLOADER, PRICE_QUANTITY, JSON_LISTINGS];

struct Document {
    seller: SellerId,
    upload_digest: String,
    expires: OffsetDateTime,
    content: Option<Vec<u8>>,
}

#[derive(Default)]
pub struct Feeds {
    /// feedDocumentId → document.
    documents: Mutex<HashMap<String, Document>>,
    /// digest of a download token → (seller, upload id, expiry).
    downloads: Mutex<HashMap<String, (SellerId, String, OffsetDateTime)>>,
    /// feedId → feedType.
    types: Mutex<HashMap<String, String>>,
    /// feedId → the messages of a JSON feed.
    messages: Mutex<HashMap<String, super::json_feed::Messages>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn public_url(st: &SpState) -> String {
    st.app
        .public_url
        .get()
        .cloned()
        .unwrap_or_else(|| "http://127.0.0.1:8080".to_owned())
}

/// `POST /feeds/2021-06-30/documents` `{contentType}` → 201 `{feedDocumentId, url}`.
pub async fn create_document(
    State(st): State<SpState>,
    SpSeller(seller): SpSeller,
    body: Body,
) -> SpResult<Response> {
    let value = json_body(&body_bytes(body).await?)?;
    if value.get("contentType").and_then(Value::as_str).is_none() {
        return Err(SpError::invalid(
            "The body needs contentType, such as \"text/tab-separated-values; charset=UTF-8\".",
        ));
    }
    let now = st.app.service.now();
    let id = format!(
        "amzn1.tortuga.onestock.{}",
        hex::encode(rand::random::<[u8; 16]>())
    );
    let token = new_token("up");
    {
        let mut docs = lock(&st.feeds.documents);
        docs.retain(|_, d| d.expires > now || d.content.is_some());
        if docs.len() >= DOCUMENTS_MAX {
            return Err(SpError {
                status: StatusCode::TOO_MANY_REQUESTS,
                code: "QuotaExceeded",
                message: "Too many feed documents wait to be made into feeds; create feeds from them first.".into(),
                details: String::new(),
            });
        }
        docs.insert(
            id.clone(),
            Document {
                seller,
                upload_digest: token_digest(&token),
                expires: now + Duration::seconds(DOCUMENT_URL_SECONDS),
                content: None,
            },
        );
    }
    let url = format!("{}/spapi/feed-documents/{token}", public_url(&st));
    Ok((
        StatusCode::CREATED,
        Json(json!({"feedDocumentId": id, "url": url})),
    )
        .into_response())
}

/// `PUT /spapi/feed-documents/{token}`: the document's content, once, within five
/// minutes, without an access token (the URL is the capability).
pub async fn upload_document(
    State(st): State<SpState>,
    path: Result<Path<String>, PathRejection>,
    body: Body,
) -> SpResult<StatusCode> {
    let token = path.map(|Path(t)| t).unwrap_or_default();
    let digest = token_digest(&token);
    let now = st.app.service.now();
    let denied = || {
        SpError::unauthorized(
            "This upload URL is unknown, expired or already used; create another feed document.",
        )
    };
    let id = {
        let docs = lock(&st.feeds.documents);
        docs.iter()
            .find(|(_, d)| d.content.is_none() && d.expires > now && d.upload_digest == digest)
            .map(|(id, _)| id.clone())
            .ok_or_else(denied)?
    };
    let bytes = axum::body::to_bytes(body, FEED_DOCUMENT_BYTES_MAX)
        .await
        .map_err(|_| SpError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: "InvalidInput",
            message: format!(
                "A feed document is at most {FEED_DOCUMENT_BYTES_MAX} bytes; send bigger files to POST /v1/uploads."
            ),
            details: String::new(),
        })?;
    let mut docs = lock(&st.feeds.documents);
    let held: usize = docs
        .values()
        .filter_map(|d| d.content.as_ref().map(Vec::len))
        .sum();
    if held + bytes.len() > FEED_BYTES_HELD_MAX {
        return Err(SpError {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: "QuotaExceeded",
            message: "The server holds too many feed documents not yet made into feeds; retry in a minute.".into(),
            details: String::new(),
        });
    }
    match docs.get_mut(&id) {
        // Checked again under the lock: two uploads to one URL, one wins.
        Some(d) if d.content.is_none() => {
            d.content = Some(bytes.to_vec());
            Ok(StatusCode::OK)
        }
        _ => Err(denied()),
    }
}

/// `POST /feeds/2021-06-30/feeds` `{feedType, marketplaceIds, inputFeedDocumentId}`.
pub async fn create_feed(
    State(st): State<SpState>,
    SpSeller(seller): SpSeller,
    body: Body,
) -> SpResult<Response> {
    let value = json_body(&body_bytes(body).await?)?;
    let feed_type = value
        .get("feedType")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    if !FEED_TYPES.contains(&feed_type.as_str()) {
        return Err(SpError::invalid(format!(
            "feedType {feed_type:?} is not supported; onestock takes {}.",
            FEED_TYPES.join(", ")
        )));
    }
    let ids: Vec<String> = match value.get("marketplaceIds") {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    };
    let stores = stores_of(st.app.service.region(), &ids)?;
    if stores.len() != 1 {
        return Err(SpError::invalid(
            "A flat-file feed is for one marketplace (SPEC 5: a file is for one store).",
        ));
    }
    let doc_id = value
        .get("inputFeedDocumentId")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let content = {
        let mut docs = lock(&st.feeds.documents);
        match docs.get(&doc_id) {
            Some(d) if d.seller == seller && d.content.is_some() => {
                docs.remove(&doc_id).and_then(|d| d.content)
            }
            Some(d) if d.seller == seller => {
                return Err(SpError::invalid(
                    "This feed document has no content yet; PUT the file to its url first.",
                ));
            }
            _ => None,
        }
    };
    let Some(content) = content else {
        return Err(SpError::invalid(format!(
            "inputFeedDocumentId {doc_id:?} is not a feed document of yours waiting for a feed."
        )));
    };
    let mut messages = None;
    let content = if feed_type == PRICE_QUANTITY {
        modify_only(content)
    } else if feed_type == JSON_LISTINGS {
        let store = st
            .app
            .service
            .region()
            .store(stores[0].as_str())
            .map_err(SpError::from)?;
        let (file, meta) = super::json_feed::to_file(&content, store).map_err(SpError::invalid)?;
        messages = Some(meta);
        file
    } else {
        content
    };
    let upload = st
        .app
        .uploads
        .receive(seller, stores[0].clone(), Body::from(content))
        .await?;
    lock(&st.feeds.types).insert(upload.upload_id.clone(), feed_type);
    if let Some(meta) = messages {
        let mut held = lock(&st.feeds.messages);
        if held.len() >= DOCUMENTS_MAX {
            // The oldest feeds' message ids go first; their reports then name records.
            if let Some(k) = held.keys().min().cloned() {
                held.remove(&k);
            }
        }
        held.insert(upload.upload_id.clone(), meta);
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"feedId": upload.upload_id})),
    )
        .into_response())
}

/// A price-and-quantity feed changes listings that exist and never creates one (SPEC 8:
/// a row for a SKU not listed in the store fails with `NOT_FOUND`). A text file says so
/// in SPEC 5's own words: an `update_delete` column of `PartialUpdate` on every row.
/// Header rows are the first row, or the two rows after a `TemplateType=` line; `#`
/// lines are left as they are. A workbook (binary) is passed on unchanged.
fn modify_only(content: Vec<u8>) -> Vec<u8> {
    let is_zip = content.starts_with(b"PK");
    if is_zip {
        return content;
    }
    let mut out: Vec<u8> = Vec::with_capacity(content.len() + content.len() / 8);
    let mut headers_left: usize = 1;
    let mut delimiter: Option<u8> = None;
    for line in content.split_inclusive(|b| *b == b'\n') {
        let end = line
            .iter()
            .rposition(|b| *b != b'\n' && *b != b'\r')
            .map_or(0, |i| i + 1);
        let (body, eol) = line.split_at(end);
        let text = String::from_utf8_lossy(body);
        let trimmed = text.trim_start_matches('\u{feff}');
        if trimmed.starts_with("TemplateType=") {
            headers_left = 2;
            out.extend_from_slice(line);
            continue;
        }
        if trimmed.starts_with('#') || body.is_empty() {
            out.extend_from_slice(line);
            continue;
        }
        let d = *delimiter.get_or_insert(if body.contains(&b'\t') { b'\t' } else { b',' });
        out.extend_from_slice(body);
        out.push(d);
        if headers_left > 0 {
            headers_left -= 1;
            out.extend_from_slice(b"update_delete");
        } else {
            out.extend_from_slice(b"PartialUpdate");
        }
        out.extend_from_slice(eol);
    }
    out
}

fn status_of(u: &Upload) -> &'static str {
    match u.status {
        UploadStatus::InQueue => "IN_QUEUE",
        UploadStatus::InProgress => "IN_PROGRESS",
        UploadStatus::Done => "DONE",
        UploadStatus::Fatal if u.error.as_deref() == Some(CANCELLED) => "CANCELLED",
        UploadStatus::Fatal => "FATAL",
    }
}

fn feed_json(st: &SpState, u: &Upload) -> Value {
    let mp = st
        .app
        .service
        .region()
        .stores
        .iter()
        .find(|s| s.code == u.store)
        .map(|s| s.marketplace_id.clone())
        .unwrap_or_default();
    let feed_type = lock(&st.feeds.types)
        .get(&u.upload_id)
        .cloned()
        .unwrap_or_else(|| INVLOADER.to_owned());
    let status = status_of(u);
    let mut feed = json!({
        "feedId": u.upload_id,
        "feedType": feed_type,
        "marketplaceIds": [mp],
        "createdTime": time(u.created_at),
        "processingStatus": status,
    });
    if let Some(obj) = feed.as_object_mut()
        && matches!(status, "DONE" | "FATAL")
    {
        obj.insert(
            "resultFeedDocumentId".into(),
            json!(format!("result-{}", u.upload_id)),
        );
    }
    feed
}

type IdPath = Result<Path<String>, PathRejection>;

fn id_of(path: IdPath) -> SpResult<String> {
    path.map(|Path(s)| s)
        .map_err(|e| SpError::invalid(format!("The path could not be read: {}", e.body_text())))
}

/// `GET /feeds/2021-06-30/feeds/{feedId}`
pub async fn get_feed(
    State(st): State<SpState>,
    SpSeller(seller): SpSeller,
    path: IdPath,
) -> SpResult<Json<Value>> {
    let id = id_of(path)?;
    let u = st.app.uploads.get(&seller, &id).await?;
    Ok(Json(feed_json(&st, &u)))
}

/// `GET /feeds/2021-06-30/feeds`: the seller's feeds (its uploads), newest first.
pub async fn get_feeds(
    State(st): State<SpState>,
    SpSeller(seller): SpSeller,
    q: RawQuery,
) -> SpResult<Json<Value>> {
    let region = st.app.service.region().clone();
    let ids = q.list(MARKETPLACE_PARAMS);
    let store = if ids.is_empty() {
        None
    } else {
        Some(stores_of(&region, &ids)?[0].clone())
    };
    let limit = match q.one(&["pageSize"]) {
        None => PAGE_SIZE_DEFAULT,
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=PAGE_SIZE_MAX).contains(n))
            .ok_or_else(|| {
                SpError::invalid(format!("pageSize is 1 to {PAGE_SIZE_MAX}; got {raw:?}."))
            })?,
    };
    let before = q.one(&["nextToken"]);
    let types = q.list(&["feedTypes"]);
    let statuses = q.list(&["processingStatuses"]);
    let mut uploads = st
        .app
        .service
        .read(move |tx, _| {
            tx.uploads_of_seller(&seller, store.as_ref(), before.as_deref(), limit + 1)
        })
        .await?;
    let next = if uploads.len() > limit {
        uploads.truncate(limit);
        uploads.last().map(|u| u.upload_id.clone())
    } else {
        None
    };
    let feeds: Vec<Value> = uploads
        .iter()
        .map(|u| feed_json(&st, u))
        .filter(|f| types.is_empty() || types.iter().any(|t| f["feedType"] == t.as_str()))
        .filter(|f| {
            statuses.is_empty() || statuses.iter().any(|s| f["processingStatus"] == s.as_str())
        })
        .collect();
    let mut body = json!({ "feeds": feeds });
    if let (Some(n), Some(obj)) = (next, body.as_object_mut()) {
        obj.insert("nextToken".into(), json!(n));
    }
    Ok(Json(body))
}

/// `DELETE /feeds/2021-06-30/feeds/{feedId}`: only while `IN_QUEUE`.
pub async fn cancel_feed(
    State(st): State<SpState>,
    SpSeller(seller): SpSeller,
    path: IdPath,
) -> SpResult<StatusCode> {
    let id = id_of(path)?;
    let u = st.app.uploads.get(&seller, &id).await?;
    if u.status != UploadStatus::InQueue {
        return Err(SpError::invalid(format!(
            "Feed {id} is {} and can no longer be cancelled; only IN_QUEUE feeds can.",
            status_of(&u)
        )));
    }
    st.app
        .service
        .execute(Command::FailUpload {
            upload_id: id,
            error: CANCELLED.to_owned(),
        })
        .await?;
    Ok(StatusCode::OK)
}

/// `GET /feeds/2021-06-30/documents/{feedDocumentId}`: a result document's download URL
/// (five minutes, no token needed).
pub async fn get_document(
    State(st): State<SpState>,
    SpSeller(seller): SpSeller,
    path: IdPath,
) -> SpResult<Json<Value>> {
    let id = id_of(path)?;
    let not_found = || SpError::not_found(format!("There is no result document {id:?} of yours."));
    let upload_id = id.strip_prefix("result-").ok_or_else(not_found)?;
    let u = st.app.uploads.get(&seller, upload_id).await?;
    if !matches!(u.status, UploadStatus::Done | UploadStatus::Fatal) {
        return Err(not_found());
    }
    let token = new_token("down");
    let now = st.app.service.now();
    {
        let mut downloads = lock(&st.feeds.downloads);
        downloads.retain(|_, (_, _, until)| *until > now);
        if downloads.len() >= DOCUMENTS_MAX {
            return Err(SpError {
                status: StatusCode::TOO_MANY_REQUESTS,
                code: "QuotaExceeded",
                message: "Too many download URLs are open; retry in a few minutes.".into(),
                details: String::new(),
            });
        }
        downloads.insert(
            token_digest(&token),
            (
                seller,
                u.upload_id.clone(),
                now + Duration::seconds(DOCUMENT_URL_SECONDS),
            ),
        );
    }
    Ok(Json(json!({
        "feedDocumentId": id,
        "url": format!("{}/spapi/feed-results/{token}", public_url(&st)),
    })))
}

/// `GET /spapi/feed-results/{token}`: the processing report (SPEC 5's layout).
pub async fn download(
    State(st): State<SpState>,
    path: Result<Path<String>, PathRejection>,
) -> SpResult<Response> {
    let token = path.map(|Path(t)| t).unwrap_or_default();
    let now = st.app.service.now();
    let entry = lock(&st.feeds.downloads)
        .get(&token_digest(&token))
        .cloned();
    let Some((seller, upload_id, _)) = entry.filter(|(_, _, until)| *until > now) else {
        return Err(SpError::unauthorized(
            "This download URL is unknown or expired; call getFeedDocument again.",
        ));
    };
    let is_json = lock(&st.feeds.types).get(&upload_id).map(String::as_str) == Some(JSON_LISTINGS);
    if is_json {
        let upload = st.app.uploads.get(&seller, &upload_id).await?;
        let id = upload_id.clone();
        let lines = st.app.service.read(move |tx, _| tx.report(&id)).await?;
        let meta = lock(&st.feeds.messages)
            .get(&upload_id)
            .cloned()
            .unwrap_or_default();
        return Ok(Json(super::json_feed::report(&upload, &lines, &meta)).into_response());
    }
    // Streamed a page at a time, as /v1's report is.
    let report = st.app.uploads.report_body(&seller, &upload_id).await?;
    Ok((
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/tab-separated-values; charset=UTF-8",
        )],
        report,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn price_and_quantity_files_are_modify_only() {
        let out = modify_only(b"sku\tprice\r\nA\t1.00\r\n\r\nB\t2\n".to_vec());
        assert_eq!(
            String::from_utf8_lossy(&out),
            "sku\tprice\tupdate_delete\r\nA\t1.00\tPartialUpdate\r\n\r\nB\t2\tPartialUpdate\n"
        );
        let out = modify_only(
            b"TemplateType=PriceInventory\tVersion=1\nSKU\tPrice\nsku\tprice\nA\t1\n".to_vec(),
        );
        assert_eq!(
            String::from_utf8_lossy(&out),
            "TemplateType=PriceInventory\tVersion=1\nSKU\tPrice\tupdate_delete\nsku\tprice\tupdate_delete\nA\t1\tPartialUpdate\n"
        );
        let out = modify_only(b"sku,price\nA,1\n".to_vec());
        assert_eq!(
            String::from_utf8_lossy(&out),
            "sku,price,update_delete\nA,1,PartialUpdate\n"
        );
        assert_eq!(modify_only(b"PK\x03\x04".to_vec()), b"PK\x03\x04".to_vec());
    }
}

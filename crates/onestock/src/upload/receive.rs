//! Receiving an upload: the body streamed to a file, under the file limit and the
//! seller's queue quota, and queued only once it arrived whole.
//!
//! A body that does not arrive whole (the client closed early, broken chunked encoding,
//! a stall) is the client's fault: `INVALID_REQUEST`, and its partial file is removed. So
//! is the file of a request dropped mid-way (the connection cut at a stop's deadline):
//! nothing is queued from a body that did not arrive whole.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use axum::body::{Body, HttpBody};
use futures_util::StreamExt;
use onestock_core::error::{DomainError, ErrorCode};
use onestock_core::model::{Upload, UploadStatus};
use onestock_core::rules::{Command, Outcome};
use onestock_core::types::{SellerId, StoreCode};
use tokio::io::AsyncWriteExt;

use super::{UPLOAD_BYTES_MAX, Uploads, next_upload_id};
use crate::service::AppError;

/// Uploads one seller may have waiting (received and not yet `DONE` or `FATAL`, those
/// being received included). A seller sends one file per store and change, a handful at
/// a time; 20 leaves room for several stores' files in a row, and stops a runaway loop
/// from filling the disk and the queue (666 uploads in 9 s were seen) and delaying every
/// other seller's uploads.
pub const UPLOADS_QUEUED_PER_SELLER_MAX: usize = 20;
/// Bytes of upload files one seller may have waiting (their sizes on disk, plus the
/// declared length of those being received): two files at the largest size. Checked
/// against the declared `Content-Length` before any byte is read, and for a chunked body
/// as it arrives.
pub const UPLOAD_BYTES_QUEUED_PER_SELLER_MAX: u64 = 2 * UPLOAD_BYTES_MAX;
/// `Retry-After` of a quota refusal, in seconds: a queued upload of usual size is
/// processed within this.
pub const UPLOAD_QUEUE_RETRY_AFTER_SECONDS: u64 = 30;
/// Longest pause between two pieces of an upload body: a client that stops sending
/// for this long is taken to be gone, and its partial file removed.
const BODY_STALL_MAX: Duration = Duration::from_secs(60);

/// The uploads being received in this process, per upload folder (one per server) and
/// seller: counted against the quota until they are in the database.
static RECEIVING: Mutex<Option<HashMap<(PathBuf, SellerId), InFlight>>> = Mutex::new(None);
/// Admissions one at a time, so two requests of one seller cannot both pass the quota
/// on the same count. Held for one database read; uploads are rare.
static ADMISSION: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[derive(Default, Clone, Copy)]
struct InFlight {
    count: usize,
    bytes: u64,
}

fn receiving<R>(f: impl FnOnce(&mut HashMap<(PathBuf, SellerId), InFlight>) -> R) -> R {
    let mut guard = RECEIVING.lock().unwrap_or_else(|e| e.into_inner());
    f(guard.get_or_insert_with(HashMap::new))
}

/// One upload counted as being received, until dropped.
struct Reservation {
    key: (PathBuf, SellerId),
    bytes: u64,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        receiving(|map| {
            if let Some(r) = map.get_mut(&self.key) {
                r.count = r.count.saturating_sub(1);
                r.bytes = r.bytes.saturating_sub(self.bytes);
                if r.count == 0 {
                    map.remove(&self.key);
                }
            }
        });
    }
}

/// A file being written: removed when dropped unless kept, so an error, a refusal or a
/// request dropped mid-way leaves nothing behind.
struct PartialFile {
    path: PathBuf,
    keep: bool,
}

impl Drop for PartialFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// `PAYLOAD_TOO_LARGE` for a file above [`UPLOAD_BYTES_MAX`].
pub fn too_large() -> AppError {
    DomainError::new(
        ErrorCode::PayloadTooLarge,
        format!(
            "An upload file is at most {} MiB; split the file by rows and send the parts one by one.",
            UPLOAD_BYTES_MAX / (1024 * 1024)
        ),
    )
    .into()
}

fn queue_full(message: String) -> AppError {
    DomainError::new(ErrorCode::RateLimited, message).into()
}

fn incomplete(detail: &str) -> AppError {
    DomainError::new(
        ErrorCode::InvalidRequest,
        format!(
            "The upload file did not arrive whole ({detail}); nothing was queued. Send the whole file again."
        ),
    )
    .into()
}

/// Counts this seller's waiting uploads and reserves a place for one more, or refuses
/// with `RATE_LIMITED` (or `PAYLOAD_TOO_LARGE` for a declared size above the file
/// limit). Returns the reservation and the bytes this upload may still take.
async fn admit(
    uploads: &Uploads,
    seller: &SellerId,
    declared: Option<u64>,
) -> Result<(Reservation, u64), AppError> {
    if declared.is_some_and(|n| n > UPLOAD_BYTES_MAX) {
        return Err(too_large());
    }
    let _one_at_a_time = ADMISSION.lock().await;
    let key = (uploads.dir.clone(), seller.clone());
    // Read before the database: an upload leaves this table only after its row is
    // written, so it is counted at least once (twice at worst, which only refuses
    // earlier).
    let receiving_now = receiving(|map| map.get(&key).copied().unwrap_or_default());
    let s = seller.clone();
    let (queued, queued_bytes) = uploads
        .service
        .read(move |tx, _| {
            let mine: Vec<_> = tx
                .unfinished_uploads()?
                .into_iter()
                .filter(|u| u.seller_id == s)
                .collect();
            let bytes = mine
                .iter()
                .map(|u| std::fs::metadata(&u.path).map(|m| m.len()).unwrap_or(0))
                .sum::<u64>();
            Ok((mine.len(), bytes))
        })
        .await?;
    let count = queued + receiving_now.count;
    if count >= UPLOADS_QUEUED_PER_SELLER_MAX {
        return Err(queue_full(format!(
            "You have {count} uploads waiting to be processed, the most one seller may have \
             (at most {UPLOADS_QUEUED_PER_SELLER_MAX}); wait until one is DONE (GET /v1/uploads) \
             and send this file again."
        )));
    }
    let waiting = queued_bytes + receiving_now.bytes;
    let own = declared.unwrap_or(0);
    let budget = UPLOAD_BYTES_QUEUED_PER_SELLER_MAX.saturating_sub(waiting);
    if own > budget {
        return Err(queue_full(format!(
            "Your uploads waiting to be processed hold {} MiB; with this file they would pass \
             the {} MiB one seller may have waiting. Wait until they are DONE \
             (GET /v1/uploads) and send this file again.",
            waiting / (1024 * 1024),
            UPLOAD_BYTES_QUEUED_PER_SELLER_MAX / (1024 * 1024)
        )));
    }
    receiving(|map| {
        let r = map.entry(key.clone()).or_default();
        r.count += 1;
        r.bytes += own;
    });
    Ok((Reservation { key, bytes: own }, budget))
}

/// Streams `body` to `path`: `Ok(size)`, or the refusal. A stream error is the
/// client's; a file error the server's.
async fn write_body(path: &Path, body: Body, budget: u64) -> Result<u64, AppError> {
    let internal = |e: std::io::Error| AppError::Internal(format!("write upload file: {e}"));
    let mut file = tokio::fs::File::create(path).await.map_err(internal)?;
    let mut stream = body.into_data_stream();
    let mut size: u64 = 0;
    loop {
        let next = match tokio::time::timeout(BODY_STALL_MAX, stream.next()).await {
            Ok(next) => next,
            Err(_) => {
                return Err(incomplete(&format!(
                    "nothing arrived for {} s",
                    BODY_STALL_MAX.as_secs()
                )));
            }
        };
        let Some(chunk) = next else { break };
        let chunk = chunk.map_err(|e| {
            tracing::info!(error = %e, "upload body did not arrive whole");
            incomplete("the connection closed early, or the chunked encoding is broken")
        })?;
        size += chunk.len() as u64;
        if size > UPLOAD_BYTES_MAX {
            return Err(too_large());
        }
        if size > budget {
            return Err(queue_full(format!(
                "With this file your uploads waiting to be processed would pass the {} MiB one \
                 seller may have waiting. Wait until they are DONE (GET /v1/uploads) and send \
                 this file again.",
                UPLOAD_BYTES_QUEUED_PER_SELLER_MAX / (1024 * 1024)
            )));
        }
        file.write_all(&chunk).await.map_err(internal)?;
    }
    file.sync_all().await.map_err(internal)?;
    Ok(size)
}

/// Writes the body to disk as it arrives and queues it (`IN_QUEUE`); see the module.
pub(super) async fn receive(
    uploads: &Uploads,
    seller: SellerId,
    store: StoreCode,
    body: Body,
) -> Result<Upload, AppError> {
    let declared = HttpBody::size_hint(&body).exact();
    let (_reservation, budget) = admit(uploads, &seller, declared).await?;
    let upload_id = next_upload_id();
    let path = uploads.dir.join(format!("{upload_id}.dat"));
    let mut partial = PartialFile {
        path: path.clone(),
        keep: false,
    };
    write_body(&path, body, budget).await?;
    // Whole and on disk: from here the file stays. Should this request be dropped while
    // the row is written, an upload row never points at a missing file (a stray file
    // is harmless).
    partial.keep = true;
    let upload = Upload {
        upload_id,
        seller_id: seller,
        store,
        status: UploadStatus::InQueue,
        path: path.to_string_lossy().into_owned(),
        records_processed: 0,
        records_successful: 0,
        records_failed: 0,
        checkpoint: 0,
        error: None,
        created_at: uploads.service.now(),
    };
    match uploads.service.execute(Command::CreateUpload(upload)).await {
        Ok(Outcome::Upload(u)) => {
            uploads.wake.notify_one();
            Ok(u)
        }
        Ok(_) => Err(AppError::Internal("unexpected outcome".into())),
        Err(e) => {
            // Not queued: the file has no use.
            let _ = tokio::fs::remove_file(&path).await;
            Err(e)
        }
    }
}

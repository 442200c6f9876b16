//! Upload files (SPEC section 5, R23): receive a file to disk as it arrives, queue it,
//! and apply its rows in the background through the same commands as the API.
//!
//! Exactly once: rows are applied in chunks, each chunk in one command whose
//! transaction also moves the upload's checkpoint; after a crash the worker starts again
//! after the checkpoint, so no row is applied twice or lost.

pub mod parse;
mod receive;
pub mod report;
pub mod xlsx;

pub use receive::{
    UPLOAD_BYTES_QUEUED_PER_SELLER_MAX, UPLOAD_QUEUE_RETRY_AFTER_SECONDS,
    UPLOADS_QUEUED_PER_SELLER_MAX, too_large,
};

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use onestock_core::error::{DomainError, ErrorCode};
use onestock_core::model::{ReportKind, ReportLine, Upload, UploadStatus};
use onestock_core::rules::{Command, Outcome, UploadRecord};
use onestock_core::types::{SellerId, StoreCode};
use tokio::sync::Notify;

use crate::service::{AppError, Service};

/// Largest upload file: a million-row inventory file is about 100 MiB.
pub const UPLOAD_BYTES_MAX: u64 = 512 * 1024 * 1024;
/// Rows applied per transaction while no orders flow. A commit writes every page the
/// chunk dirtied, and the pages of an index on a few hot values (a file's rows listing
/// the same products) are dirtied by every chunk again: measured on a million-row file,
/// 2,000 rows a chunk took 12.0 s on SQLite and 42.1 s on PostgreSQL, 8,000 took 9.6 s
/// and 27.6 s (16,000: 9.5 s, no further gain). The price: an order queued behind a
/// chunk waits for it, about 75 ms on SQLite and 220 ms on PostgreSQL on a 2-core
/// machine, hence [`ROWS_PER_CHUNK_WHILE_ORDERS`] (docs/scaling.md, "Upload chunks").
pub const ROWS_PER_CHUNK: usize = 8000;
/// Rows per transaction while orders flow (`Service::orders_flowing`): about 20 ms on
/// SQLite and 85 ms on PostgreSQL. The chunk already sent when the first order comes
/// may still be a full `ROWS_PER_CHUNK` one.
pub const ROWS_PER_CHUNK_WHILE_ORDERS: usize = 2000;

/// Attempts at an upload that end without moving its checkpoint (an error, a panic, or
/// the process dying while it runs) before the upload is given up as `FATAL`. Enough to
/// ride out a restart or two during a file; few enough that a file that kills its worker
/// cannot keep the seller's later uploads waiting, or the server restarting, for long.
pub const UPLOAD_ATTEMPTS_MAX: u32 = 5;
/// The setting that keeps an unfinished upload's attempts: `"{attempts} {checkpoint}"`.
/// Written before each attempt starts, so a process that dies while processing still
/// counts the attempt.
fn attempts_setting(upload_id: &str) -> String {
    format!("upload_attempts:{upload_id}")
}

/// Upload ids grow in the order uploads arrive, so uploads received at the same
/// `created_at` (a coarse or stepped clock) are still applied in arrival order. Seeded
/// from the system clock so ids keep growing across restarts.
fn next_upload_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0);
    // Never below the clock, never repeating within the process.
    let mut current = NEXT.load(Ordering::Relaxed);
    loop {
        let next = current.max(seed) + 1;
        match NEXT.compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return format!("upl_{next:016x}"),
            Err(actual) => current = actual,
        }
    }
}

pub struct Uploads {
    service: Arc<Service>,
    dir: PathBuf,
    wake: Notify,
}

impl Uploads {
    /// Creates the upload folder and starts the worker, which first finishes any upload
    /// left unfinished by an earlier run.
    pub async fn start(service: Arc<Service>, dir: PathBuf) -> anyhow::Result<Arc<Uploads>> {
        tokio::fs::create_dir_all(&dir).await?;
        let uploads = Arc::new(Uploads {
            service,
            dir,
            wake: Notify::new(),
        });
        let worker = uploads.clone();
        tokio::spawn(async move { worker.run().await });
        Ok(uploads)
    }

    /// Writes the body to disk as it arrives and queues it (`IN_QUEUE`), under the file
    /// limit and the seller's queue quota (`receive.rs`).
    pub async fn receive(
        &self,
        seller: SellerId,
        store: StoreCode,
        body: Body,
    ) -> Result<Upload, AppError> {
        receive::receive(self, seller, store, body).await
    }

    /// The seller's upload (`NOT_FOUND` for another seller's, as for a missing one).
    pub async fn get(&self, seller: &SellerId, upload_id: &str) -> Result<Upload, AppError> {
        let id = upload_id.to_owned();
        let upload = self.service.read(move |tx, _| tx.upload(&id)).await?;
        match upload {
            Some(u) if &u.seller_id == seller => Ok(u),
            _ => Err(DomainError::not_found(format!("You have no upload {upload_id:?}.")).into()),
        }
    }

    /// The processing report in the marketplace's layout, as a body streamed a page of
    /// [`REPORT_PAGE_LINES`] lines at a time: a report of millions of lines never sits in
    /// memory whole, and a client that reads slowly only holds back its own stream.
    pub async fn report_body(&self, seller: &SellerId, upload_id: &str) -> Result<Body, AppError> {
        let upload = self.get(seller, upload_id).await?;
        let id = upload.upload_id.clone();
        let first = self
            .service
            .read(move |tx, _| tx.report_page(&id, None, REPORT_PAGE_LINES))
            .await?;
        if first.len() < REPORT_PAGE_LINES {
            let lines: Vec<ReportLine> = first.into_iter().map(|(_, l)| l).collect();
            return Ok(Body::from(report_text(&upload, &lines)));
        }
        let (send, body) = crate::streamed::body();
        let service = self.service.clone();
        tokio::spawn(async move {
            let mut head = Vec::new();
            let _ = report::write_report(
                &mut head,
                upload.records_processed,
                upload.records_successful,
                first.iter().map(|(_, l)| l),
            );
            let mut after = first.last().map(|(c, _)| *c);
            if send.send(Ok(head)).await.is_err() {
                return;
            }
            while let Some(cursor) = after {
                let id = upload.upload_id.clone();
                let page = service
                    .read(move |tx, _| tx.report_page(&id, Some(cursor), REPORT_PAGE_LINES))
                    .await;
                let chunk = match page {
                    Ok(page) => {
                        after = (page.len() == REPORT_PAGE_LINES)
                            .then(|| page.last().map(|(c, _)| *c))
                            .flatten();
                        let mut buf = Vec::with_capacity(page.len() * 80);
                        let _ = report::write_lines(&mut buf, page.iter().map(|(_, l)| l));
                        Ok(buf)
                    }
                    Err(e) => {
                        after = None;
                        tracing::error!(error = %e, "read a report page");
                        Err(std::io::Error::other(
                            "the report could not be read to its end",
                        ))
                    }
                };
                if send.send(chunk).await.is_err() {
                    return;
                }
            }
        });
        Ok(body)
    }

    async fn run(self: Arc<Self>) {
        loop {
            let pending = self
                .service
                .read(|tx, _| tx.unfinished_uploads())
                .await
                .unwrap_or_else(|e| {
                    tracing::error!(error = %e, "list unfinished uploads");
                    Vec::new()
                });
            let mut idle = true;
            // A seller whose upload failed in this pass: their later uploads wait, so
            // that uploads of one seller are applied in the order they arrived (SPEC 5).
            let mut held: Vec<onestock_core::types::SellerId> = Vec::new();
            for upload in pending {
                // The file lies on the disk of the process that received it (or on an
                // upload folder several processes share): another process's upload is
                // left to that process.
                if !std::path::Path::new(&upload.path).exists() || held.contains(&upload.seller_id)
                {
                    continue;
                }
                idle = false;
                let id = upload.upload_id.clone();
                let seller = upload.seller_id.clone();
                if let Err(e) = self.clone().attempt(upload).await {
                    tracing::error!(upload_id = %id, error = %e, "upload processing failed; will retry");
                    held.push(seller);
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                } else {
                    self.count_finished(id).await;
                }
            }
            if idle {
                // Also poll now and then: on PostgreSQL another process may queue work.
                let _ =
                    tokio::time::timeout(std::time::Duration::from_secs(2), self.wake.notified())
                        .await;
            }
        }
    }

    /// `/metrics`: an upload that reached `DONE` or `FATAL`, and its rows.
    async fn count_finished(&self, upload_id: String) {
        let read = self.service.read(move |tx, _| tx.upload(&upload_id)).await;
        if let Ok(Some(u)) = read {
            crate::metrics::METRICS.upload_finished(
                u.status == UploadStatus::Fatal,
                u.status == UploadStatus::Done,
                u.records_processed,
                u.records_failed,
            );
        }
    }

    /// One attempt at an upload: counted (durably) before it starts, and given up as
    /// `FATAL` once [`UPLOAD_ATTEMPTS_MAX`] attempts in a row ended at the same checkpoint.
    async fn attempt(self: Arc<Self>, upload: Upload) -> Result<(), AppError> {
        let key = attempts_setting(&upload.upload_id);
        let checkpoint = upload.checkpoint;
        let db = self.service.database().clone();
        let attempts = tokio::task::spawn_blocking(move || {
            db.write(|tx| {
                let before = tx.setting(&key)?;
                let attempts = match before.as_deref().and_then(|v| v.split_once(' ')) {
                    Some((n, at)) if at.parse::<i64>().ok() == Some(checkpoint) => {
                        n.parse::<u32>().unwrap_or(0) + 1
                    }
                    _ => 1,
                };
                tx.set_setting(&key, &format!("{attempts} {checkpoint}"))?;
                Ok(attempts)
            })
        })
        .await
        .map_err(|e| AppError::Internal(format!("upload attempt: {e}")))??;
        if attempts > UPLOAD_ATTEMPTS_MAX {
            let applied = if checkpoint > 0 {
                format!("records 1 to {checkpoint} were applied; ")
            } else {
                "no record was applied; ".to_owned()
            };
            tracing::error!(upload_id = %upload.upload_id, attempts, "upload given up");
            let _ = std::fs::remove_file(&upload.path);
            return self
                .service
                .execute(Command::FailUpload {
                    upload_id: upload.upload_id.clone(),
                    error: format!(
                        "processing stopped {UPLOAD_ATTEMPTS_MAX} times at record {} without getting further, so the upload was given up ({applied}the file may be damaged); check the file, or save it as tab-separated text, and upload it again",
                        checkpoint + 1
                    ),
                })
                .await
                .map(|_| ());
        }
        self.process(upload).await
    }

    /// Applies the upload's rows after its checkpoint, chunk by chunk.
    async fn process(self: Arc<Self>, upload: Upload) -> Result<(), AppError> {
        let service = self.service.clone();
        let handle = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || process_blocking(service, &handle, upload))
            .await
            .map_err(|e| AppError::Internal(format!("upload task: {e}")))?
    }
}

fn process_blocking(
    service: Arc<Service>,
    handle: &tokio::runtime::Handle,
    upload: Upload,
) -> Result<(), AppError> {
    let answer = |result: Result<Outcome, AppError>| -> Result<(), AppError> {
        match result {
            Ok(_) => Ok(()),
            Err(AppError::Domain(e)) if e.code == ErrorCode::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    };
    let run = |cmd: Command| answer(handle.block_on(service.execute(cmd)));
    // The chunk the writer is applying while the next one is read and parsed: parsing
    // takes the other core instead of waiting. One at a time, so a chunk is sent only
    // after the one before it is applied (a failed chunk stops the upload at its
    // checkpoint, and no later chunk can pass it).
    let mut applying: Option<tokio::task::JoinHandle<Result<Outcome, AppError>>> = None;
    let wait =
        |applying: &mut Option<tokio::task::JoinHandle<Result<Outcome, AppError>>>| match applying
            .take()
        {
            Some(task) => answer(
                handle
                    .block_on(task)
                    .map_err(|e| AppError::Internal(format!("upload chunk task: {e}")))?,
            ),
            None => Ok(()),
        };
    let reader = match parse::open(std::path::Path::new(&upload.path)) {
        Ok(r) => r,
        // A disk that fails to read is no fault of the file: try again later.
        Err(e @ parse::FileError::Io(_)) => {
            return Err(AppError::Internal(format!("read upload file: {e}")));
        }
        Err(e) => {
            return run(Command::FailUpload {
                upload_id: upload.upload_id.clone(),
                error: e.to_string(),
            });
        }
    };
    let mut warnings: Vec<ReportLine> = Vec::new();
    if upload.checkpoint == 0 && !reader.unknown_columns().is_empty() {
        warnings.push(ReportLine {
            record: 0,
            sku: String::new(),
            code: ErrorCode::UnknownColumn.as_str().into(),
            kind: ReportKind::Warning,
            message: format!(
                "Unknown columns were ignored: {}.",
                reader.unknown_columns().join(", ")
            ),
        });
    }
    let mut reader = reader;
    reader.skip_to(upload.checkpoint + 1);
    let mut chunk: Vec<UploadRecord> = Vec::with_capacity(ROWS_PER_CHUNK);
    for raw in reader.by_ref() {
        if raw.record <= upload.checkpoint {
            continue;
        }
        chunk.push(to_record(raw));
        let full = chunk.len() >= ROWS_PER_CHUNK
            || (chunk.len() >= ROWS_PER_CHUNK_WHILE_ORDERS && service.orders_flowing());
        if full {
            wait(&mut applying)?;
            let cmd = Command::ApplyUploadRows {
                upload_id: upload.upload_id.clone(),
                warnings: std::mem::take(&mut warnings),
                records: std::mem::take(&mut chunk),
                done: false,
            };
            let service = service.clone();
            applying = Some(handle.spawn(async move { service.execute(cmd).await }));
        }
    }
    wait(&mut applying)?;
    if let Some(e) = reader.error() {
        // The file could not be read to its end (a disk error, say): leave the upload
        // unfinished so the worker tries again from its checkpoint.
        return Err(AppError::Internal(format!("read upload file: {e}")));
    }
    run(Command::ApplyUploadRows {
        upload_id: upload.upload_id.clone(),
        warnings,
        records: chunk,
        done: true,
    })?;
    // The file has served its purpose; the report and counts are in the database.
    let _ = std::fs::remove_file(&upload.path);
    Ok(())
}

/// A file row as the core's upload record.
fn to_record(raw: parse::RawRow) -> UploadRecord {
    let sku = raw.fields.sku.clone().unwrap_or_default();
    let row = match raw.problem {
        Some(e) => Err(e),
        None => parse::parse_row(&raw.fields),
    };
    UploadRecord {
        record: raw.record,
        sku,
        row,
    }
}

/// Report lines read from storage at a time when a report is streamed: about 400 KiB of
/// text, few enough reads for a million lines.
pub const REPORT_PAGE_LINES: usize = 5_000;

/// A whole report, with the FATAL reason as its record-0 line when no line was written.
fn report_text(upload: &Upload, lines: &[ReportLine]) -> String {
    if let Some(e) = &upload.error
        && upload.status == UploadStatus::Fatal
        && lines.is_empty()
    {
        return report::format_report(
            0,
            0,
            &[ReportLine {
                record: 0,
                sku: String::new(),
                code: ErrorCode::InvalidRequest.as_str().into(),
                kind: ReportKind::Error,
                message: e.clone(),
            }],
        );
    }
    report::format_report(upload.records_processed, upload.records_successful, lines)
}

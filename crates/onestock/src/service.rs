//! The service every door calls: commands go to one writer thread that gathers the
//! commands waiting at that moment into one durable transaction (group commit), reads
//! go to reader connections. Also who is calling: tokens and roles.
//!
//! Why one writer: on SQLite there is only one writer anyway, and gathering concurrent
//! commands into one commit pays the fsync once per batch instead of once per order,
//! with each command still all-or-nothing (the rules write nothing before their last
//! check). On PostgreSQL each process has its own writer; row locks order the processes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use onestock_core::clock::Clock;
use onestock_core::error::{DomainError, ErrorCode};
use onestock_core::region::Region;
use onestock_core::rules::{self, Command, Ctx, Outcome};
use onestock_core::storage::{StoreError, StoreResult, Tx};
use onestock_core::types::{SellerId, StoreCode};
use onestock_store::{Commit, Database};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot, watch};

/// Commands gathered into one transaction at most. Large enough that a flash sale's
/// orders share commits; small enough that one batch stays a few milliseconds.
pub const BATCH_COMMANDS_MAX: usize = 1024;
/// A batch smaller than this waits for the previous batch's fsync (at most
/// `PIPELINE_WAIT_MAX`) before it starts. Starting at once would overlap the two, but
/// when the machine's cores are busy anyway (serving HTTP) many small batches cost more
/// CPU per order than fewer large ones: measured over HTTP, starting at once gave 14
/// orders a batch and 9 % fewer orders a second. With 32 or more waiting, overlapping
/// wins (in-process, 64 clients: +26 %).
const PIPELINE_BATCH_MIN: usize = 32;
/// Longest a small batch waits for the previous fsync: a slow disk must not stall it.
const PIPELINE_WAIT_MAX: Duration = Duration::from_millis(2);
/// An order within this long counts as orders flowing (`Service::orders_flowing`).
const ORDERS_FLOWING_WITHIN: Duration = Duration::from_secs(2);
/// Commands waiting for the writer at most; past that, callers wait to enqueue.
const QUEUE_DEPTH: usize = 16 * 1024;

/// A failure as the doors see it.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> AppError {
        AppError::Internal(e.to_string())
    }
}

impl AppError {
    pub fn code(&self) -> ErrorCode {
        match self {
            AppError::Domain(e) => e.code,
            AppError::Internal(_) => ErrorCode::Internal,
        }
    }
}

/// Who is calling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    Operator,
    Seller(SellerId),
}

struct Job {
    cmd: Command,
    reply: oneshot::Sender<Result<Outcome, AppError>>,
}

/// Figures of the writer, for the benchmark.
#[derive(Clone, Copy, Debug, Default)]
pub struct WriterStats {
    pub batches: u64,
    pub commands: u64,
    /// Time spent inside write transactions (including commit), in microseconds.
    pub busy_us: u64,
}

pub struct Service {
    db: Database,
    region: Arc<Region>,
    clock: Arc<dyn Clock>,
    queue: mpsc::Sender<Job>,
    /// Bumped after every commit that may have added events, to wake long polls.
    events: watch::Sender<u64>,
    operator_token_sha256: String,
    seller_tokens: RwLock<HashMap<String, SellerId>>,
    stats: Arc<RwLock<WriterStats>>,
    /// Commands handed to the writer so far; with `stats.commands`, tells when the
    /// writer has caught up (`drain_writer`).
    submitted: AtomicU64,
    /// When the last order was handed to the writer, in milliseconds since `started`
    /// (0: none yet): upload chunks shrink while orders flow (`orders_flowing`).
    last_order_ms: AtomicU64,
    started: Instant,
    /// True once the server stops: long polls answer at once.
    stopping: watch::Sender<bool>,
}

/// SHA-256 of a token, hex. Tokens carry 256 random bits, so a fast hash is enough
/// (a password hash would cost milliseconds per request).
pub fn token_digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A new random bearer token.
pub fn new_token(prefix: &str) -> String {
    let bytes: [u8; 32] = rand::random();
    format!("{prefix}_{}", hex::encode(bytes))
}

/// Compares two digests in constant time.
fn digest_eq(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

impl Service {
    /// Starts the writer thread. `operator_token_sha256` is the digest the operator's
    /// token must match.
    pub fn start(
        db: Database,
        region: Arc<Region>,
        clock: Arc<dyn Clock>,
        operator_token_sha256: String,
    ) -> Arc<Service> {
        let (queue, rx) = mpsc::channel(QUEUE_DEPTH);
        let (events, _) = watch::channel(0u64);
        let stats = Arc::new(RwLock::new(WriterStats::default()));
        let service = Arc::new(Service {
            db: db.clone(),
            region: region.clone(),
            clock: clock.clone(),
            queue,
            events: events.clone(),
            operator_token_sha256,
            seller_tokens: RwLock::new(HashMap::new()),
            stats: stats.clone(),
            submitted: AtomicU64::new(0),
            last_order_ms: AtomicU64::new(0),
            started: Instant::now(),
            stopping: watch::channel(false).0,
        });
        std::thread::Builder::new()
            .name("onestock-writer".into())
            .spawn(move || writer_loop(db, region, clock, rx, events, stats))
            .expect("spawn the writer thread");
        service
    }

    pub fn region(&self) -> &Region {
        &self.region
    }

    pub fn now(&self) -> time::OffsetDateTime {
        self.clock.now()
    }

    pub fn database(&self) -> &Database {
        &self.db
    }

    /// Whether an order reached the writer in the last `ORDERS_FLOWING_WITHIN`.
    pub fn orders_flowing(&self) -> bool {
        let last = self.last_order_ms.load(Ordering::Relaxed);
        last != 0
            && self.elapsed_ms().saturating_sub(last) <= ORDERS_FLOWING_WITHIN.as_millis() as u64
    }

    /// Milliseconds since the service started, at least 1.
    fn elapsed_ms(&self) -> u64 {
        (self.started.elapsed().as_millis() as u64).max(1)
    }

    pub fn writer_stats(&self) -> WriterStats {
        *self.stats.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs a command through the writer and waits for its durable answer.
    pub async fn execute(&self, cmd: Command) -> Result<Outcome, AppError> {
        let (reply, answer) = oneshot::channel();
        self.submitted.fetch_add(1, Ordering::AcqRel);
        if matches!(
            cmd,
            Command::PlaceOrder { .. } | Command::CancelOrder { .. }
        ) {
            self.last_order_ms
                .store(self.elapsed_ms(), Ordering::Relaxed);
        }
        self.queue
            .send(Job { cmd, reply })
            .await
            .map_err(|_| AppError::Internal("the writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| AppError::Internal("the writer dropped the command".into()))?
    }

    /// Runs `f` on a reader connection, off the async threads.
    pub async fn read<R, F>(&self, f: F) -> Result<R, AppError>
    where
        R: Send + 'static,
        F: FnOnce(&mut dyn Tx, Ctx<'_>) -> StoreResult<R> + Send + 'static,
    {
        let db = self.db.clone();
        let region = self.region.clone();
        let now = self.clock.now();
        tokio::task::spawn_blocking(move || {
            db.read(|tx| {
                f(
                    tx,
                    Ctx {
                        region: &region,
                        now,
                    },
                )
            })
        })
        .await
        .map_err(|e| AppError::Internal(format!("reader task failed: {e}")))?
        .map_err(AppError::from)
    }

    /// The server is stopping: waits (long polls) end now.
    pub fn begin_shutdown(&self) {
        self.stopping.send_replace(true);
    }

    /// Becomes true when the server stops (`begin_shutdown`).
    pub fn stopping(&self) -> watch::Receiver<bool> {
        self.stopping.subscribe()
    }

    /// Waits, at most `max`, until the writer has run every command queued before this
    /// call (answered or not: a caller may have gone away). For a stop: what was
    /// accepted is written before the process exits.
    pub async fn drain_writer(&self, max: Duration) -> bool {
        let target = self.submitted.load(Ordering::Acquire);
        let deadline = Instant::now() + max;
        loop {
            if self.writer_stats().commands >= target {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// A receiver that changes after every commit that may carry new events.
    pub fn event_changes(&self) -> watch::Receiver<u64> {
        self.events.subscribe()
    }

    /// Who holds this bearer token (`UNAUTHENTICATED` when nobody).
    pub async fn authenticate(&self, token: &str) -> Result<Principal, AppError> {
        let digest = token_digest(token);
        if digest_eq(&digest, &self.operator_token_sha256) {
            return Ok(Principal::Operator);
        }
        if let Some(id) = self
            .seller_tokens
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&digest)
        {
            return Ok(Principal::Seller(id.clone()));
        }
        let d = digest.clone();
        let seller = self.read(move |tx, _| tx.seller_by_token(&d)).await?;
        match seller {
            Some(s) => {
                self.seller_tokens
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(digest, s.seller_id.clone());
                Ok(Principal::Seller(s.seller_id))
            }
            None => Err(DomainError::new(
                ErrorCode::Unauthenticated,
                "This token is not known; send Authorization: Bearer <token> with a seller or operator token.",
            )
            .into()),
        }
    }
}

/// Runs `f`, turning a panic into a storage error: a panic is a defect, but it must not
/// take the writer (and so every later write) down with it.
fn caught<R>(f: impl FnOnce() -> StoreResult<R>) -> StoreResult<R> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|_| {
        tracing::error!("a write transaction panicked");
        Err(StoreError::Other("a write transaction panicked".into()))
    })
}

/// Counts a store order's outcome in `/metrics` once the writer knows it, whether or not
/// its caller is still there to be answered. A storage failure (500) is not counted.
fn count_order(cmd: &Command, answer: &Result<Outcome, AppError>) {
    use crate::metrics::OrderOutcome;
    if !matches!(cmd, Command::PlaceOrder { .. }) {
        return;
    }
    let outcome = match answer {
        Ok(Outcome::Order { replay: false, .. }) => OrderOutcome::Accepted,
        Ok(Outcome::Order { replay: true, .. }) => OrderOutcome::Replayed,
        Err(AppError::Domain(_)) => OrderOutcome::Refused,
        Ok(_) | Err(AppError::Internal(_)) => return,
    };
    crate::metrics::order_decided(outcome);
}

fn writer_loop(
    db: Database,
    region: Arc<Region>,
    clock: Arc<dyn Clock>,
    mut rx: mpsc::Receiver<Job>,
    events: watch::Sender<u64>,
    stats: Arc<RwLock<WriterStats>>,
) {
    let mut batch: Vec<Job> = Vec::with_capacity(BATCH_COMMANDS_MAX);
    while let Some(first) = rx.blocking_recv() {
        if rx.len() + 1 < PIPELINE_BATCH_MIN {
            db.settle(PIPELINE_WAIT_MAX);
        }
        batch.push(first);
        while batch.len() < BATCH_COMMANDS_MAX {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let started = Instant::now();
        let now = clock.now();
        let ctx = Ctx {
            region: &region,
            now,
        };
        let orders: Vec<(StoreCode, String)> = batch
            .iter()
            .filter_map(|job| match &job.cmd {
                Command::PlaceOrder {
                    store, order_id, ..
                } => Some((store.clone(), order_id.clone())),
                _ => None,
            })
            .collect();
        let result = caught(|| {
            db.write_pipelined(|tx| {
                tx.prefetch_orders(&orders)?;
                let mut answers = Vec::with_capacity(batch.len());
                for job in &batch {
                    answers.push(rules::execute(tx, ctx, &job.cmd)?);
                }
                Ok(answers)
            })
        });
        // The batch's commit may not be on disk yet (SQLite: the fsync runs beside this
        // thread): its answers go out from `commit.then`, while this thread goes on.
        let (answers, commit): (Vec<Result<Outcome, AppError>>, Option<Commit>) = match result {
            Ok((answers, commit)) => (
                answers
                    .into_iter()
                    .map(|a| a.map_err(AppError::Domain))
                    .collect(),
                Some(commit),
            ),
            Err(e) if batch.len() > 1 => {
                // One command may have broken the batch: run each alone so the others
                // still get their answers.
                tracing::warn!(error = %e, size = batch.len(), "batch failed; running its commands one by one");
                let answers = batch
                    .iter()
                    .map(|job| {
                        caught(|| db.write(|tx| rules::execute(tx, ctx, &job.cmd)))
                            .map_err(AppError::from)
                            .and_then(|a| a.map_err(AppError::Domain))
                    })
                    .collect();
                (answers, None)
            }
            Err(e) => {
                tracing::error!(error = %e, "write transaction failed");
                (vec![Err(AppError::from(e))], None)
            }
        };
        let elapsed = started.elapsed();
        {
            let mut s = stats.write().unwrap_or_else(|e| e.into_inner());
            s.batches += 1;
            s.busy_us += elapsed.as_micros() as u64;
        }
        let upload_rows: usize = batch
            .iter()
            .zip(&answers)
            .filter_map(|(job, answer)| match (&job.cmd, answer) {
                (Command::ApplyUploadRows { records, .. }, Ok(_)) => Some(records.len()),
                _ => None,
            })
            .sum();
        crate::metrics::writer_batch_committed(batch.len(), upload_rows, elapsed);
        for (job, answer) in batch.iter().zip(&answers) {
            count_order(&job.cmd, answer);
        }
        let replies: Vec<_> = batch.drain(..).map(|job| job.reply).collect();
        let events = events.clone();
        let stats = stats.clone();
        let answer = move || {
            events.send_modify(|n| *n += 1);
            let done = replies.len() as u64;
            for (reply, answer) in replies.into_iter().zip(answers) {
                // A caller that went away (client disconnected) is no error.
                let _ = reply.send(answer);
            }
            // Counted once on disk and answered, so that `drain_writer` returning means
            // the answers are out, not only the commit.
            stats.write().unwrap_or_else(|e| e.into_inner()).commands += done;
        };
        match commit {
            // Work is waiting: answer from the fsync thread and go on with it.
            Some(commit) if rx.len() >= PIPELINE_BATCH_MIN => commit.then(answer),
            // Little is waiting: fsync here, as one thread, and answer.
            Some(commit) => {
                commit.wait();
                answer();
            }
            None => answer(),
        }
    }
}
